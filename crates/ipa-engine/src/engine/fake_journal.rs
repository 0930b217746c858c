//! An in-memory [`RunJournal`] ([`FakeJournal`]), so the engine's rules (claiming, the lease and
//! its heartbeat, recovery of runs whose worker was lost, cancellation, pause, shutdown) can be
//! tested alone, in milliseconds, without PostgreSQL.
//!
//! It owns runs (status, the approval step awaited and when it times out, lease owner and expiry,
//! recoveries, output or error, log lines) and their steps, behind one [`Mutex`], with a clock the
//! test moves forward ([`FakeJournal::advance`]) on top of the real one. Tests insert runs of a
//! definition ([`FakeJournal::insert`]), steer them as people would through the API
//! ([`FakeJournal::cancel`], [`FakeJournal::pause`], [`FakeJournal::resume`],
//! [`FakeJournal::approve`]), make the next commits fail as during a database outage
//! ([`FakeJournal::fail_commits`]), read runs back ([`FakeJournal::run`]) and read every call the
//! engine made ([`FakeJournal::calls`]).
//!
//! Why it is faithful enough: it keeps the port's contracts as `ipa-store`'s `PgRunJournal`
//! implements them:
//! - claimable runs are, oldest first, those `pending` or `running` and those waiting on an
//!   approval whose time is up, each only when it is not leased or its lease ran out; a pending
//!   run still leased (resumed while its worker finishes a step) is left to that worker;
//! - a claim leases the run to the worker for the given time, moves a pending run to `running`,
//!   sets its start time once, and counts a recovery when the run was `running` and still had an
//!   owner (its worker was lost, not released); the first change is applied with the claim, and
//!   when applying it fails nothing of the claim is written;
//! - `renew`, `commit` and `release` act only while the worker is still the run's owner (as in
//!   PostgreSQL, an expired lease no other worker took yet is still the worker's); a commit on a
//!   run held by another answers [`Committed::LeaseLost`] and writes nothing;
//! - a change applies as `apply_change` does: on a finished run (a cancel) only its log lines are
//!   kept and the run is let go ([`Committed::Cancelled`]); on a run paused on request the step
//!   change and lines are written and the run is let go ([`Committed::Paused`]); on a run resumed
//!   while held it goes on `running`; an outcome moves the run through [`RunState::apply`] and
//!   lets it go ([`Committed::Released`]); a step change moves its step through
//!   [`StepStatus::apply`] with the same fields written (input kept unless given, output only on
//!   finishing, attempts beyond the first), and a move the step's state machine refuses fails the
//!   whole write;
//! - every call takes the lock once for its whole body and never awaits while holding it: the
//!   row locks of a transaction become one critical section, so two workers never claim the same
//!   run and a cancel never interleaves with a claim's first write;
//! - every call yields to the runtime once before answering, as a round trip to the database
//!   would, so a worker looping on the journal (claiming and letting go of a run it cannot
//!   write, say) never starves a test's deadline.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ipa_execution::{
    Claimed, ClaimedRun, Committed, ExecutionStatus, ExecutionStep, Lease, NewLogLine, RunAction,
    RunChange, RunJournal, RunOutcome, RunState, StepAction, StepChange, StepStatus, WorkerId,
    run_event, step_event,
};
use ipa_kernel::{ExecutionId, ExecutionStepId, StorageError};
use ipa_workflow::WorkflowDefinition;
use ipa_workflow::definition::StepKind;
use serde_json::{Value, json};
use time::OffsetDateTime;

/// The journal: cheap to clone, every clone sees the same runs.
#[derive(Clone, Default)]
pub(super) struct FakeJournal {
    inner: Arc<Mutex<Journal>>,
}

#[derive(Default)]
struct Journal {
    /// Runs, oldest first.
    runs: Vec<FakeRun>,
    /// How far the test moved the clock ahead of the real one.
    ahead: time::Duration,
    /// Every call of the port, in order.
    calls: Vec<Call>,
    /// How many commits from now on fail as if the database were unreachable.
    unavailable_commits: u32,
    /// How many commits from now on the database refuses (a failed statement).
    refused_commits: u32,
}

impl Journal {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + self.ahead
    }

    fn find(&mut self, id: ExecutionId) -> Option<&mut FakeRun> {
        self.runs.iter_mut().find(|run| run.id == id)
    }
}

/// A run as the journal holds it.
#[derive(Clone, Debug)]
pub(super) struct FakeRun {
    pub(super) id: ExecutionId,
    pub(super) status: ExecutionStatus,
    /// The approval step a paused run waits on.
    pub(super) awaiting: Option<ExecutionStepId>,
    /// When the approval awaited times out.
    pub(super) wake_at: Option<OffsetDateTime>,
    pub(super) lease_owner: Option<WorkerId>,
    pub(super) lease_expires_at: Option<OffsetDateTime>,
    pub(super) definition: Value,
    pub(super) input: Value,
    pub(super) steps: Vec<ExecutionStep>,
    pub(super) recoveries: i32,
    pub(super) started_at: Option<OffsetDateTime>,
    pub(super) completed_at: Option<OffsetDateTime>,
    pub(super) output: Option<Value>,
    pub(super) error: Option<String>,
    pub(super) logs: Vec<NewLogLine>,
}

impl FakeRun {
    fn state(&self) -> RunState {
        RunState {
            status: self.status,
            awaiting: self.awaiting,
        }
    }

    /// Whether a worker may claim the run at `now`.
    fn ready(&self, now: OffsetDateTime) -> bool {
        let wanted = matches!(
            self.status,
            ExecutionStatus::Pending | ExecutionStatus::Running
        ) || (self.awaiting.is_some() && self.wake_at.is_some_and(|at| at <= now));
        let free = self.lease_expires_at.is_none_or(|expires| expires < now);
        wanted && free
    }

    fn held_by(&self, worker: &WorkerId) -> bool {
        self.lease_owner.as_ref() == Some(worker)
    }

    fn let_go(&mut self) {
        self.lease_owner = None;
        self.lease_expires_at = None;
    }

    /// The step `id`, which must be the run's.
    pub(super) fn step(&self, id: ExecutionStepId) -> &ExecutionStep {
        self.steps
            .iter()
            .find(|step| step.id == id)
            .expect("the step is the run's")
    }

    /// Whether one of its log lines says `text`.
    pub(super) fn logged(&self, text: &str) -> bool {
        self.logs.iter().any(|line| line.message.contains(text))
    }
}

/// One call of the port, and what it answered.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Call {
    /// A run was claimed, from `previous` status.
    Claim {
        worker: WorkerId,
        id: ExecutionId,
        previous: ExecutionStatus,
    },
    /// A renewal; `held` when the worker still held the run.
    Renew {
        worker: WorkerId,
        id: ExecutionId,
        held: bool,
    },
    /// A commit, and its answer (`None` when it failed).
    Commit {
        worker: WorkerId,
        id: ExecutionId,
        committed: Option<Committed>,
    },
    /// A release; `held` when the worker still held the run.
    Release {
        worker: WorkerId,
        id: ExecutionId,
        held: bool,
    },
}

impl Call {
    /// The worker and run it was about.
    pub(super) fn of(&self) -> (&WorkerId, ExecutionId) {
        match self {
            Self::Claim { worker, id, .. }
            | Self::Renew { worker, id, .. }
            | Self::Commit { worker, id, .. }
            | Self::Release { worker, id, .. } => (worker, *id),
        }
    }
}

impl FakeJournal {
    pub(super) fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Journal> {
        // A panicking test thread leaves nothing half-written: every call writes at its end.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a pending run of `definition` (which must parse) with `input`, its steps pending.
    pub(super) fn insert(&self, definition: Value, input: Value) -> ExecutionId {
        let parsed = WorkflowDefinition::parse(&definition).expect("the definition parses");
        let id = ExecutionId::new_random();
        let steps = parsed
            .steps()
            .iter()
            .enumerate()
            .map(|(index, step)| ExecutionStep {
                id: ExecutionStepId::new_random(),
                execution_id: id,
                name: step.name.as_str().to_owned(),
                index: i32::try_from(index).expect("few steps"),
                kind: match step.kind {
                    StepKind::Webhook(_) => ipa_execution::StepKind::Webhook,
                    StepKind::Approval(_) => ipa_execution::StepKind::Approval,
                    StepKind::Agent(_) => ipa_execution::StepKind::Agent,
                },
                status: StepStatus::Pending,
                input: None,
                output: None,
                error: None,
                started_at: None,
                completed_at: None,
                duration_ms: None,
                retry_count: 0,
            })
            .collect();
        self.lock().runs.push(FakeRun {
            id,
            status: ExecutionStatus::Pending,
            awaiting: None,
            wake_at: None,
            lease_owner: None,
            lease_expires_at: None,
            definition,
            input,
            steps,
            recoveries: 0,
            started_at: None,
            completed_at: None,
            output: None,
            error: None,
            logs: Vec::new(),
        });
        id
    }

    /// The run `id` as it is now.
    pub(super) fn run(&self, id: ExecutionId) -> FakeRun {
        self.lock()
            .find(id)
            .cloned()
            .expect("the run is in the journal")
    }

    /// Every call of the port so far, in order.
    pub(super) fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Moves the journal's clock `by` forward: leases and approval deadlines run out sooner.
    pub(super) fn advance(&self, by: Duration) {
        let by = time::Duration::try_from(by).expect("a short duration");
        self.lock().ahead += by;
    }

    /// Cancels the run as a person would (`ExecutionRepository::control`): its running step
    /// fails as interrupted, the run is cancelled, its lease is left as it is.
    pub(super) fn cancel(&self, id: ExecutionId) {
        let mut journal = self.lock();
        let now = journal.now();
        let run = journal.find(id).expect("the run is in the journal");
        let next = run
            .state()
            .apply(RunAction::Cancel)
            .expect("the run may be cancelled");
        for step in &mut run.steps {
            if step.status == StepStatus::Running {
                step.status = StepStatus::Failed;
                step.error = Some("interrupted: the execution was cancelled".to_owned());
                step.completed_at = Some(now);
                let line = step_event(
                    step,
                    StepStatus::Failed,
                    format!(
                        "Step '{}' interrupted: the execution was cancelled",
                        step.name
                    ),
                    json!({}),
                );
                run.logs.push(line);
            }
        }
        run.status = next.status;
        run.awaiting = None;
        run.wake_at = None;
        run.completed_at = Some(now);
        run.started_at.get_or_insert(now);
        run.error = Some("cancelled".to_owned());
        run.logs
            .push(run_event(next.status, "Execution cancelled", json!({})));
    }

    /// Pauses the run as a person would: it stops after the step in flight.
    pub(super) fn pause(&self, id: ExecutionId) {
        let mut journal = self.lock();
        let run = journal.find(id).expect("the run is in the journal");
        let next = run
            .state()
            .apply(RunAction::Pause)
            .expect("the run may be paused");
        run.status = next.status;
        run.logs
            .push(run_event(next.status, "Execution paused", json!({})));
    }

    /// Resumes a run paused on request, as a person would: it is pending again (its lease, if
    /// its worker still holds it, is left as it is).
    pub(super) fn resume(&self, id: ExecutionId) {
        let mut journal = self.lock();
        let run = journal.find(id).expect("the run is in the journal");
        let next = run
            .state()
            .apply(RunAction::Resume)
            .expect("the run may be resumed");
        run.status = next.status;
        run.logs
            .push(run_event(next.status, "Execution resumed", json!({})));
    }

    /// Makes the next `count` commits fail as if the database could not be reached, writing
    /// nothing.
    pub(super) fn fail_commits(&self, count: u32) {
        self.lock().unavailable_commits = count;
    }

    /// Makes the next `count` commits fail as a statement the database refused, writing nothing.
    pub(super) fn refuse_commits(&self, count: u32) {
        self.lock().refused_commits = count;
    }

    /// Approves the approval step `step` the run waits on, as an approver would: the step
    /// completes and the run is pending again.
    pub(super) fn approve(&self, id: ExecutionId, step: ExecutionStepId) {
        let mut journal = self.lock();
        let now = journal.now();
        let run = journal.find(id).expect("the run is in the journal");
        let next = run
            .state()
            .apply(RunAction::Approve(step))
            .expect("the run waits on the step");
        let row = run
            .steps
            .iter_mut()
            .find(|row| row.id == step)
            .expect("the step is the run's");
        row.status = StepStatus::Completed;
        row.output = Some(json!({"decision": "approve"}));
        row.completed_at = Some(now);
        let line = step_event(
            row,
            StepStatus::Completed,
            format!("Step '{}' approved", row.name),
            json!({}),
        );
        run.logs.push(line);
        run.status = next.status;
        run.awaiting = None;
        run.wake_at = None;
        run.logs.push(run_event(
            next.status,
            "Execution continues after approval",
            json!({}),
        ));
    }

    fn claim_now<F>(
        &self,
        worker: &WorkerId,
        lease: Duration,
        limit: u32,
        first: &mut F,
    ) -> Result<Vec<Claimed>, StorageError>
    where
        F: FnMut(&ClaimedRun) -> Option<RunChange>,
    {
        let mut journal = self.lock();
        let now = journal.now();
        let lease = time::Duration::try_from(lease)
            .map_err(|error| StorageError::new("claiming runs", error))?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // The claim is one transaction: it works on a copy, kept only when all of it succeeded.
        let mut runs = journal.runs.clone();
        let mut calls = Vec::new();
        let mut claimed = Vec::new();
        for run in runs.iter_mut().filter(|run| run.ready(now)).take(limit) {
            let previous = run.status;
            if previous == ExecutionStatus::Running && run.lease_owner.is_some() {
                run.recoveries += 1;
            }
            run.lease_owner = Some(worker.clone());
            run.lease_expires_at = Some(now + lease);
            if previous == ExecutionStatus::Pending {
                run.status = ExecutionStatus::Running;
            }
            let started_at = *run.started_at.get_or_insert(now);
            let read = ClaimedRun {
                lease: Lease {
                    execution_id: run.id,
                    worker: worker.clone(),
                },
                previous_status: previous,
                awaiting: run.awaiting,
                definition: run.definition.clone(),
                input: run.input.clone(),
                steps: run.steps.clone(),
                recoveries: run.recoveries,
                started_at,
            };
            let mut lines = Vec::new();
            if previous == ExecutionStatus::Pending {
                lines.push(run_event(
                    ExecutionStatus::Running,
                    "Execution running",
                    json!({"worker": worker.as_str()}),
                ));
            }
            let opened = match first(&read) {
                Some(change) => Some(apply_change(run, change, lines, now)?),
                None => {
                    run.logs.append(&mut lines);
                    None
                }
            };
            calls.push(Call::Claim {
                worker: worker.clone(),
                id: run.id,
                previous,
            });
            claimed.push(Claimed {
                run: read,
                first: opened,
            });
        }
        journal.runs = runs;
        journal.calls.append(&mut calls);
        Ok(claimed)
    }

    fn renew_now(&self, lease: &Lease, duration: Duration) -> Option<ExecutionStatus> {
        let mut journal = self.lock();
        let now = journal.now();
        let status = journal
            .find(lease.execution_id)
            .filter(|run| run.held_by(&lease.worker))
            .map(|run| {
                run.lease_expires_at =
                    Some(now + time::Duration::try_from(duration).unwrap_or(time::Duration::MAX));
                run.status
            });
        journal.calls.push(Call::Renew {
            worker: lease.worker.clone(),
            id: lease.execution_id,
            held: status.is_some(),
        });
        status
    }

    fn commit_now(&self, lease: &Lease, change: RunChange) -> Result<Committed, StorageError> {
        let mut journal = self.lock();
        if journal.unavailable_commits > 0 {
            journal.unavailable_commits -= 1;
            journal.calls.push(Call::Commit {
                worker: lease.worker.clone(),
                id: lease.execution_id,
                committed: None,
            });
            return Err(StorageError::unavailable(
                "committing a change",
                "the database cannot be reached",
            ));
        }
        if journal.refused_commits > 0 {
            journal.refused_commits -= 1;
            journal.calls.push(Call::Commit {
                worker: lease.worker.clone(),
                id: lease.execution_id,
                committed: None,
            });
            return Err(StorageError::new(
                "committing a change",
                "the statement was refused",
            ));
        }
        let now = journal.now();
        let held = journal
            .find(lease.execution_id)
            .filter(|run| run.held_by(&lease.worker))
            .cloned();
        let committed = match held {
            None => Ok(Committed::LeaseLost),
            Some(mut run) => {
                let committed = apply_change(&mut run, change, Vec::new(), now);
                // Written only when all of it applied.
                if committed.is_ok()
                    && let Some(stored) = journal.find(lease.execution_id)
                {
                    *stored = run;
                }
                committed
            }
        };
        journal.calls.push(Call::Commit {
            worker: lease.worker.clone(),
            id: lease.execution_id,
            committed: committed.as_ref().ok().copied(),
        });
        committed
    }

    fn release_now(&self, lease: &Lease) {
        let mut journal = self.lock();
        let held = journal
            .find(lease.execution_id)
            .filter(|run| run.held_by(&lease.worker))
            .map(FakeRun::let_go)
            .is_some();
        journal.calls.push(Call::Release {
            worker: lease.worker.clone(),
            id: lease.execution_id,
            held,
        });
    }
}

impl RunJournal for FakeJournal {
    async fn claim<F>(
        &self,
        worker: &WorkerId,
        lease: Duration,
        limit: u32,
        mut first: F,
    ) -> Result<Vec<Claimed>, StorageError>
    where
        F: FnMut(&ClaimedRun) -> Option<RunChange> + Send,
    {
        tokio::task::yield_now().await;
        self.claim_now(worker, lease, limit, &mut first)
    }

    async fn renew(
        &self,
        lease: &Lease,
        duration: Duration,
    ) -> Result<Option<ExecutionStatus>, StorageError> {
        tokio::task::yield_now().await;
        Ok(self.renew_now(lease, duration))
    }

    async fn commit(&self, lease: &Lease, change: RunChange) -> Result<Committed, StorageError> {
        tokio::task::yield_now().await;
        self.commit_now(lease, change)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StorageError> {
        tokio::task::yield_now().await;
        self.release_now(lease);
        Ok(())
    }
}

/// Applies `change` to `run` (held by the writing worker), after writing `lines`; says where
/// that left the run. On an error the caller drops `run`: nothing is written.
fn apply_change(
    run: &mut FakeRun,
    change: RunChange,
    mut lines: Vec<NewLogLine>,
    now: OffsetDateTime,
) -> Result<Committed, StorageError> {
    let RunChange {
        step,
        outcome,
        mut logs,
    } = change;
    lines.append(&mut logs);
    let (committed, step) = match run.status {
        ExecutionStatus::Cancelled | ExecutionStatus::Completed | ExecutionStatus::Failed => {
            // Finished by someone else (a cancel): only what the worker has to say is kept.
            run.let_go();
            (Committed::Cancelled, None)
        }
        ExecutionStatus::Paused if run.awaiting.is_none() => {
            run.let_go();
            (Committed::Paused, step)
        }
        _ => {
            if run.status == ExecutionStatus::Pending {
                // Resumed while this worker finished a step: it simply goes on.
                run.status = ExecutionStatus::Running;
                lines.push(run_event(
                    ExecutionStatus::Running,
                    "Execution running",
                    json!({}),
                ));
            }
            match &outcome {
                Some(outcome) => {
                    apply_outcome(run, outcome, &mut lines, now)?;
                    (Committed::Released, step)
                }
                None => (Committed::Continue, step),
            }
        }
    };
    if let Some(step) = &step {
        apply_step(run, step, now)?;
    }
    run.logs.append(&mut lines);
    Ok(committed)
}

/// Moves the step of `change` as its state machine allows, or says why it cannot.
fn apply_step(
    run: &mut FakeRun,
    change: &StepChange,
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    const CONTEXT: &str = "changing a step";
    let row = run
        .steps
        .iter_mut()
        .find(|row| row.id == change.step_id)
        .ok_or_else(|| StorageError::new(CONTEXT, "the step is not part of the run"))?;
    let next = row.status.apply(change.action).ok_or_else(|| {
        StorageError::new(
            CONTEXT,
            format!("a {} step cannot {:?}", row.status, change.action),
        )
    })?;
    let finishing = matches!(
        next,
        StepStatus::Completed | StepStatus::Failed | StepStatus::Skipped
    );
    row.status = next;
    if let Some(input) = &change.input {
        row.input = Some(input.clone());
    }
    if finishing {
        row.output.clone_from(&change.output);
    }
    row.error.clone_from(&change.error);
    if change.action == StepAction::Start {
        row.started_at = Some(now);
    } else {
        row.started_at.get_or_insert(now);
    }
    row.completed_at = finishing.then_some(now);
    if !finishing {
        row.duration_ms = None;
    }
    row.retry_count = i32::try_from(change.attempts.saturating_sub(1)).unwrap_or(i32::MAX);
    Ok(())
}

/// Applies the run's `outcome` as the run's state machine allows, and lets the run go.
fn apply_outcome(
    run: &mut FakeRun,
    outcome: &RunOutcome,
    lines: &mut Vec<NewLogLine>,
    now: OffsetDateTime,
) -> Result<(), StorageError> {
    const CONTEXT: &str = "recording a run's outcome";
    let illegal = |error: ipa_execution::IllegalTransition| StorageError::new(CONTEXT, error);
    match outcome {
        RunOutcome::Complete(output) => {
            run.state().apply(RunAction::Complete).map_err(illegal)?;
            run.status = ExecutionStatus::Completed;
            run.output = Some(output.clone());
            run.completed_at = Some(now);
            lines.push(run_event(
                ExecutionStatus::Completed,
                "Execution completed",
                json!({}),
            ));
        }
        RunOutcome::Fail(error) => {
            run.state().apply(RunAction::Fail).map_err(illegal)?;
            run.status = ExecutionStatus::Failed;
            run.error = Some(error.clone());
            run.completed_at = Some(now);
            run.awaiting = None;
            run.wake_at = None;
            lines.push(run_event(
                ExecutionStatus::Failed,
                format!("Execution failed: {error}"),
                json!({"error": error}),
            ));
        }
        RunOutcome::AwaitApproval { step, deadline } => {
            run.state()
                .apply(RunAction::AwaitApproval(*step))
                .map_err(illegal)?;
            run.status = ExecutionStatus::Paused;
            run.awaiting = Some(*step);
            run.wake_at = *deadline;
            lines.push(run_event(
                ExecutionStatus::Paused,
                "Execution waits for an approval decision",
                json!({"step_id": step.as_uuid()}),
            ));
        }
    }
    run.let_go();
    Ok(())
}
