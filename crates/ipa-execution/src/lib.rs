//! The execution context: runs of workflow versions, their steps and their log lines; the state
//! machines that say how runs and steps may move ([`state`]); and the ports through which people
//! steer runs and the engine's workers record them ([`ports`]).

pub mod error;
pub mod model;
pub mod ports;
pub mod state;

pub use error::{ControlError, DecisionError, ExecutionQueryError, StartError};
pub use model::{
    Decision, DecisionRequest, Execution, ExecutionFilter, ExecutionStep, IdempotencyKey, LogEntry,
    LogFilter, NewLogLine, RUN_EVENT, STEP_EVENT, StartRun, Started, WorkflowStats, may_decide,
    run_event, step_event,
};
pub use ports::{
    Claimed, ClaimedRun, Committed, ExecutionRepository, Lease, LogPage, RunChange, RunJournal,
    RunOutcome, StepChange, WorkerId,
};
pub use state::{IllegalTransition, RunAction, RunState, StepAction};

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
