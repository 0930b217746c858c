//! The workflow context's errors: one enum per operation, each variant a distinct outcome the API
//! answers differently.

use ipa_kernel::StorageError;

use crate::WorkflowStatus;
use crate::definition::InvalidDefinition;
use crate::version::VersionNumber;

/// A change the workflow's lifecycle does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    /// Not one of the legal transitions.
    #[error("a {from} workflow cannot become {to}")]
    IllegalTransition {
        /// The current status.
        from: WorkflowStatus,
        /// The status asked for.
        to: WorkflowStatus,
    },
    /// Activating a workflow that has no version to run.
    #[error("a workflow becomes active only once it has a current version; publish one first")]
    NoCurrentVersion,
}

/// Reading a workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowQueryError {
    /// No such workflow, or not the actor's.
    #[error("no such workflow")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Changing a workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateWorkflowError {
    /// No such workflow, or not the actor's.
    #[error("no such workflow")]
    NotFound,
    /// The lifecycle forbids the change.
    #[error(transparent)]
    Lifecycle(#[from] LifecycleError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Deleting a workflow failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteWorkflowError {
    /// No such workflow, or not the actor's.
    #[error("no such workflow")]
    NotFound,
    /// Executions refer to it; they are history and keep it alive.
    #[error("executions refer to this workflow; archive it instead")]
    HasExecutions,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Publishing a version failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No such workflow, or not the actor's.
    #[error("no such workflow")]
    NotFound,
    /// The definition has problems, all listed.
    #[error(transparent)]
    Invalid(#[from] InvalidDefinition),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Reading or rolling back to a version failed.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// No such workflow, or not the actor's.
    #[error("no such workflow")]
    WorkflowNotFound,
    /// The workflow has no version with this number.
    #[error("the workflow has no version {0}")]
    VersionNotFound(VersionNumber),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
