//! The execution context: runs of workflow versions, their steps and their log lines. Later work
//! adds the execution state machine and its ports; today it holds the vocabulary the schema stores.

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
