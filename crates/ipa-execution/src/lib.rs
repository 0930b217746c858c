#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`state`]: the state machines that say how runs and steps may move;
//! - [`start`]: whether a workflow may be run now, and which of its versions a request runs;
//! - [`approval`]: the rules of deciding an approval;
//! - [`model`]: runs, their steps and log lines, the requests that start and steer them, and the
//!   filters that find them;
//! - [`ports`]: the ports through which people steer runs and the engine's workers record them;
//! - [`service`]: the service people's requests go through;
//! - [`error`]: the errors of each operation on runs.

pub mod approval;
pub mod error;
#[cfg(test)]
mod fakes;
pub mod model;
pub mod ports;
pub mod service;
pub mod start;
pub mod state;

pub use approval::{ApprovalContext, Judged};

pub use error::{ControlError, DecisionError, ExecutionQueryError, StartError};
pub use model::{
    Decision, DecisionRequest, Execution, ExecutionFilter, ExecutionStep, IdempotencyKey, LogEntry,
    LogFilter, NewLogLine, RUN_EVENT, STEP_EVENT, StartRun, Started, StatsPosition, WorkflowStats,
    may_decide, run_event, step_event,
};
pub use ports::{
    Claimed, ClaimedRun, Committed, ExecutionRepository, Lease, LogPage, RunChange, RunJournal,
    RunOutcome, StepChange, WorkerId,
};
pub use service::ExecutionService;
pub use start::{VersionToRun, version_to_run};
pub use state::{IllegalTransition, RunAction, RunState, Steering, StepAction};

ipa_kernel::label_enum!(
    /// Where a run is. Stored as the `execution_status` enum.
    ExecutionStatus, "execution status" {
        /// Waiting for a worker.
        Pending => "pending",
        /// A worker is running it.
        Running => "running",
        /// Stopped on request; resumable.
        Paused => "paused",
        /// Finished successfully.
        Completed => "completed",
        /// Finished with an error.
        Failed => "failed",
        /// Stopped for good on request.
        Cancelled => "cancelled",
    }
);

ipa_kernel::label_enum!(
    /// Where one step of a run is. Stored as the `step_status` enum.
    StepStatus, "step status" {
        /// Not started.
        Pending => "pending",
        /// Started.
        Running => "running",
        /// Finished successfully.
        Completed => "completed",
        /// Finished with an error.
        Failed => "failed",
        /// Not run (its condition was false).
        Skipped => "skipped",
    }
);

ipa_kernel::label_enum!(
    /// The severity of a log line. Stored as the `log_level` enum.
    LogLevel, "log level" {
        /// Detail for diagnosing.
        Debug => "debug",
        /// Normal progress.
        Info => "info",
        /// Something unexpected that the run survived.
        Warning => "warning",
        /// A failure.
        Error => "error",
        /// A failure that needs a person.
        Critical => "critical",
    }
);

ipa_kernel::label_enum!(
    /// What a step does. Stored as text in `execution_steps.step_type`, from the definition.
    StepKind, "step kind" {
        /// Calls a URL.
        Webhook => "webhook",
        /// Waits for a person's decision.
        Approval => "approval",
        /// Has a language model agent work on a prompt.
        Agent => "agent",
    }
);
