//! What the execution context needs from storage: the runs people start, read and steer
//! ([`ExecutionRepository`]), and the journal the engine's workers claim runs from and record
//! every step in ([`RunJournal`]). `ipa-store` implements both.

use std::future::Future;
use std::time::Duration;

use ipa_kernel::{
    Actor, ExecutionId, ExecutionStepId, Page, PageRequest, StorageError, WorkflowId,
};
use serde_json::Value;
use time::OffsetDateTime;

use crate::ExecutionStatus;
use crate::approval::{ApprovalContext, Judged};
use crate::error::{ControlError, DecisionError, ExecutionQueryError, StartError};
use crate::model::{
    DecisionRequest, Execution, ExecutionFilter, ExecutionStep, LogEntry, LogFilter, NewLogLine,
    StartRun, Started, StatsPosition, WorkflowStats,
};
use crate::state::{Steering, StepAction};

/// A page of log lines, in the order they were written, continued after the last id shown.
pub type LogPage = Page<LogEntry, i64>;

/// Runs as people see them. Every method acts for an [`Actor`]; storage enforces visibility
/// (a run is visible to who started it, to its workflow's owner and to superusers), so a run the
/// actor may not see is indistinguishable from a missing one.
pub trait ExecutionRepository: Send + Sync + 'static {
    /// Starts a run of `workflow` (it must be active) with its steps pending, and records an
    /// `execute` audit row. With an idempotency key already used by the actor, returns that run
    /// when the request is the same and refuses it when it differs.
    fn start(
        &self,
        actor: &Actor,
        workflow: WorkflowId,
        request: &StartRun,
    ) -> impl Future<Output = Result<Started, StartError>> + Send;

    /// Runs matching `filter`, newest first.
    fn list(
        &self,
        actor: &Actor,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Execution>, StorageError>> + Send;

    /// A run with its steps in order.
    fn get(
        &self,
        actor: &Actor,
        id: ExecutionId,
    ) -> impl Future<Output = Result<(Execution, Vec<ExecutionStep>), ExecutionQueryError>> + Send;

    /// A run's log lines after `page.after` (a line id), oldest first.
    fn logs(
        &self,
        actor: &Actor,
        id: ExecutionId,
        filter: LogFilter,
        page: PageRequest<i64>,
    ) -> impl Future<Output = Result<LogPage, ExecutionQueryError>> + Send;

    /// A run's status and its log lines after line `after` (at most `limit`), read in that order
    /// so that when the status is final, every line of the run is among those returned or
    /// earlier: what an event stream needs to know it may end.
    fn events(
        &self,
        actor: &Actor,
        id: ExecutionId,
        after: i64,
        limit: u16,
    ) -> impl Future<Output = Result<(ExecutionStatus, Vec<LogEntry>), ExecutionQueryError>> + Send;

    /// Cancels, pauses, resumes or retries a run, as the state machine allows. Cancelling
    /// records a `cancel` audit row and interrupts the step in flight; retrying puts the failed
    /// step back in line and counts the retry.
    fn control(
        &self,
        actor: &Actor,
        id: ExecutionId,
        steering: Steering,
    ) -> impl Future<Output = Result<Execution, ControlError>> + Send;

    /// Decides an approval step of the run: under a lock on the run, reads the
    /// [`ApprovalContext`] (the run itself whether or not the actor could otherwise see it, and
    /// the step `step` if it is the run's), lets `judge` say what the decision does, writes that
    /// and records the decision in an audit row. Nothing is written when `judge` refuses.
    fn decide<F>(
        &self,
        actor: &Actor,
        id: ExecutionId,
        step: ExecutionStepId,
        decision: &DecisionRequest,
        judge: F,
    ) -> impl Future<Output = Result<Execution, DecisionError>> + Send
    where
        F: FnOnce(&ApprovalContext) -> Result<Judged, DecisionError> + Send;

    /// One page of the run figures of the workflows the actor sees, from the statistics view,
    /// by workflow name and id.
    fn stats(
        &self,
        actor: &Actor,
        page: PageRequest<StatsPosition>,
    ) -> impl Future<Output = Result<Page<WorkflowStats, StatsPosition>, StorageError>> + Send;
}

/// Who holds a run: one engine worker, by a name unique among live workers.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkerId(String);

impl WorkerId {
    /// A worker named `name` (for example `host:pid:3`).
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A worker's hold on a run: writes succeed only while it still holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The run.
    pub execution_id: ExecutionId,
    /// The worker holding it.
    pub worker: WorkerId,
}

/// A run a worker has just claimed, with everything needed to go on with it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimedRun {
    /// The hold on it.
    pub lease: Lease,
    /// The status it had before the claim: `pending` (new, resumed, retried or approved),
    /// `running` (its worker was lost) or `paused` (an approval whose time ran out).
    pub previous_status: ExecutionStatus,
    /// The approval step a paused run waits on.
    pub awaiting: Option<ExecutionStepId>,
    /// The version's definition document.
    pub definition: Value,
    /// The run's input.
    pub input: Value,
    /// Its steps, in order.
    pub steps: Vec<ExecutionStep>,
    /// Times it was picked up again after losing its worker (this claim included).
    pub recoveries: i32,
    /// When it first started.
    pub started_at: OffsetDateTime,
}

/// A run claimed by a worker, with where its first change (written with the claim) left it.
#[derive(Clone, Debug, PartialEq)]
pub struct Claimed {
    /// The run as read under the claim (before its first change).
    pub run: ClaimedRun,
    /// Where the first change left the run; `None` when there was none to write.
    pub first: Option<Committed>,
}

/// A change to one step, made in the same transaction as the rest of a [`RunChange`].
#[derive(Clone, Debug, PartialEq)]
pub struct StepChange {
    /// The step.
    pub step_id: ExecutionStepId,
    /// What happens to it.
    pub action: StepAction,
    /// What it was given, when that is known now.
    pub input: Option<Value>,
    /// What it produced.
    pub output: Option<Value>,
    /// Why it failed.
    pub error: Option<String>,
    /// Attempts made so far (1 for the first); stored as attempts beyond the first.
    pub attempts: u32,
}

impl StepChange {
    /// `action` on the step `step_id` after `attempts` attempts (0 when none were made),
    /// carrying no input, output or error.
    pub fn new(step_id: ExecutionStepId, action: StepAction, attempts: u32) -> Self {
        Self {
            step_id,
            action,
            input: None,
            output: None,
            error: None,
            attempts,
        }
    }
}

/// What the engine does to a run when it commits.
#[derive(Clone, Debug, PartialEq)]
pub enum RunOutcome {
    /// Every step is settled: the run completed with `output`.
    Complete(Value),
    /// The run failed with `error`.
    Fail(String),
    /// The run waits for a decision on `step`, until `deadline` when there is one.
    AwaitApproval {
        /// The approval step.
        step: ExecutionStepId,
        /// When it times out.
        deadline: Option<OffsetDateTime>,
    },
}

/// One atomic write of the engine: a step change, a run outcome and log lines, all or nothing.
/// A step's output is thus committed with its completion, so a completed step never runs twice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunChange {
    /// The step change.
    pub step: Option<StepChange>,
    /// The run's outcome.
    pub outcome: Option<RunOutcome>,
    /// Log lines, written in one statement.
    pub logs: Vec<NewLogLine>,
}

impl RunChange {
    /// A step change with its log lines.
    pub fn step(change: StepChange, logs: Vec<NewLogLine>) -> Self {
        Self {
            step: Some(change),
            outcome: None,
            logs,
        }
    }

    /// Log lines alone.
    pub fn logs(logs: Vec<NewLogLine>) -> Self {
        Self {
            step: None,
            outcome: None,
            logs,
        }
    }
}

/// Where a run is after a commit, which tells the worker what to do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Committed {
    /// Written; go on with the run.
    Continue,
    /// Written; the run reached its outcome and the worker no longer holds it.
    Released,
    /// A person paused the run: the step change and logs were written, and the worker no longer
    /// holds it (pause takes effect between steps).
    Paused,
    /// A person cancelled the run: only the log lines were written.
    Cancelled,
    /// Another worker holds the run now (this one's lease expired): nothing was written.
    LeaseLost,
}

/// The engine's side of storage.
pub trait RunJournal: Send + Sync + 'static {
    /// Claims up to `limit` runs ready for a worker (skipping rows other workers are claiming),
    /// holding each for `lease`, and writes each run's first change in the same transaction.
    ///
    /// `first` is asked once per claimed run, with the run as read under the claim, for the
    /// change the worker would otherwise commit right after claiming it (its next step's start,
    /// say); it decides without waiting on anything, since the run's row is locked meanwhile.
    /// The change is applied as [`RunJournal::commit`] would apply it, and the answer says where
    /// that left the run (`None` when `first` had nothing to write).
    fn claim<F>(
        &self,
        worker: &WorkerId,
        lease: Duration,
        limit: u32,
        first: F,
    ) -> impl Future<Output = Result<Vec<Claimed>, StorageError>> + Send
    where
        F: FnMut(&ClaimedRun) -> Option<RunChange> + Send;

    /// Extends the hold on a run by `lease`; returns the run's status, or `None` when the worker
    /// no longer holds it.
    fn renew(
        &self,
        lease: &Lease,
        duration: Duration,
    ) -> impl Future<Output = Result<Option<ExecutionStatus>, StorageError>> + Send;

    /// Writes `change` if the worker still holds the run.
    fn commit(
        &self,
        lease: &Lease,
        change: RunChange,
    ) -> impl Future<Output = Result<Committed, StorageError>> + Send;

    /// Lets go of a run without changing it (a worker shutting down): another worker may take
    /// it at once.
    fn release(&self, lease: &Lease) -> impl Future<Output = Result<(), StorageError>> + Send;
}
