//! The errors of each operation on runs, one enum per operation.

use ipa_kernel::StorageError;

use ipa_workflow::{VersionNumber, WorkflowStatus};

use crate::state::IllegalTransition;

/// Why a run could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// No such workflow, as far as the actor can see.
    #[error("workflow not found")]
    WorkflowNotFound,
    /// Only active workflows run.
    #[error("the workflow is {0}; only active workflows can be run")]
    WorkflowNotActive(WorkflowStatus),
    /// The workflow has no version with that number.
    #[error("the workflow has no version {0}")]
    VersionNotFound(VersionNumber),
    /// The workflow has no current version to run.
    #[error("the workflow has no current version; publish one or name a version_number")]
    NoCurrentVersion,
    /// The idempotency key was used for a different request.
    #[error(
        "this Idempotency-Key was already used to start a run with a different body; use a new \
         key for a new run"
    )]
    IdempotencyMismatch,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a run could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ExecutionQueryError {
    /// No such run, as far as the actor can see.
    #[error("execution not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why a run could not be cancelled, paused, resumed or retried.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No such run, as far as the actor can see.
    #[error("execution not found")]
    NotFound,
    /// The run's state does not allow it.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Why an approval decision was refused.
#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    /// No such run, as far as the actor can see.
    #[error("execution not found")]
    NotFound,
    /// The run has no such step.
    #[error("the execution has no step with this id")]
    StepNotFound,
    /// The step is not an approval step.
    #[error("step '{0}' is not an approval step")]
    NotAnApproval(String),
    /// The actor may not decide this step.
    #[error("you are not an approver of this step")]
    NotAnApprover,
    /// The run does not wait on this step.
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
