//! The workers: each claims a ready run from the [`RunJournal`], holds it with a lease it renews,
//! runs its unfinished steps in order and commits every step's result (with its log lines) in
//! one transaction, so a completed step never runs again.
//!
//! A step is first *opened*: its start (or skip, or the run's end) is decided without waiting on
//! anything and written; then what it started is run. A run's first opening is written by the
//! claim itself, and the run's end with its last step's completion, so a one-step run costs two
//! transactions: claim and start, then completion.
//!
//! Workers wake on [`Signal::Ready`] (the server forwards PostgreSQL notifications) and poll as
//! a fallback; [`Signal::Stop`] interrupts the step in flight of a cancelled run. A step in flight
//! is also interrupted when the lease turns out to be lost, and when the engine shuts down (the
//! run is then released for another worker at once).
//!
//! This module owns that loop: claiming, the lease and its heartbeat, recovery of runs whose
//! worker died, cancellation, and the order of steps. What each kind of step does when it is
//! opened and run lives beside it, one module per kind: [`approval`], [`webhook`], [`agent`].

mod agent;
mod approval;
#[cfg(test)]
mod fake_journal;
#[cfg(test)]
mod tests;
pub(crate) mod webhook;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use ipa_agent::{AgentRepository, SecretOpener};
use ipa_execution::{
    Claimed, ClaimedRun, Committed, ExecutionStatus, ExecutionStep, LogLevel, NewLogLine,
    RunChange, RunJournal, RunOutcome, StepAction, StepChange, StepStatus, WorkerId, step_event,
};
use ipa_kernel::{ExecutionId, StorageError};
use ipa_template::Templates;
use ipa_workflow::WorkflowDefinition;
use ipa_workflow::definition::StepKind;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinSet;

use self::agent::AgentTurn;
use self::webhook::WebhookTurn;
use crate::agent::{AgentRunner, OPENAI_BASE_URL};
use crate::outbound::{OutboundClient, OutboundRequest};

/// How the engine runs.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// Workers in this process (each runs one run at a time); 0 runs none.
    pub workers: usize,
    /// How long a claim holds a run without renewal. A worker renews at a third of it; a run
    /// whose worker died is picked up again once it runs out.
    pub lease: Duration,
    /// How often an idle worker looks for work when no notification arrives.
    pub poll_interval: Duration,
    /// How many times a run is picked up again after losing its worker before it fails.
    pub max_recoveries: i32,
    /// A webhook attempt's time limit when its step sets none.
    pub default_step_timeout: Duration,
    /// Prefix of this process's worker names (host and process id, say).
    pub name: String,
    /// OpenAI's API root, where agents with the `openai` provider are called (a proxy's, say).
    pub openai_base_url: String,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            workers: 2,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(5),
            max_recoveries: 3,
            default_step_timeout: Duration::from_secs(30),
            name: format!("worker-{}", std::process::id()),
            openai_base_url: OPENAI_BASE_URL.to_owned(),
        }
    }
}

/// Something the engine should know now rather than at its next poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// A run may be ready to claim.
    Ready,
    /// A run was cancelled: interrupt its step in flight.
    Stop(ExecutionId),
}

/// Why a step in flight was interrupted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interrupt {
    /// A person cancelled the run.
    Cancelled,
    /// Another worker holds the run now.
    LeaseLost,
    /// This process is shutting down.
    Shutdown,
}

type Interrupts = Arc<Mutex<HashMap<ExecutionId, watch::Sender<Option<Interrupt>>>>>;

/// The execution engine of one process.
pub struct Engine<J, A> {
    journal: Arc<J>,
    templates: Templates,
    /// The outbound client of webhook steps (agent steps reach it through `agents`).
    client: OutboundClient,
    agents: AgentRunner<A>,
    options: EngineOptions,
    ready: Arc<Notify>,
    in_flight: Interrupts,
}

impl<J, A> Clone for Engine<J, A> {
    fn clone(&self) -> Self {
        Self {
            journal: Arc::clone(&self.journal),
            templates: self.templates.clone(),
            client: self.client.clone(),
            agents: self.agents.clone(),
            options: self.options.clone(),
            ready: Arc::clone(&self.ready),
            in_flight: Arc::clone(&self.in_flight),
        }
    }
}

/// The first pause before committing again while the database is unavailable; it doubles up to
/// [`COMMIT_RETRY_MAX_PAUSE`].
const COMMIT_RETRY_FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two commits while the database is unavailable.
const COMMIT_RETRY_MAX_PAUSE: Duration = Duration::from_secs(2);

/// A storage failure that ends the worker's part in a run before the run is done.
#[derive(Debug)]
struct Lost {
    /// What failed.
    reason: String,
    /// The database could not be reached: the worker lets go of the run and another worker may
    /// take it at once. Any other failure (a write the database refused) would most likely meet
    /// the next worker too, so the run stays held until its lease runs out: its next claim then
    /// counts as a recovery, which `max_recoveries` bounds, instead of the run being claimed and
    /// refused again at once, in a loop.
    let_go: bool,
}

impl From<ipa_kernel::StorageError> for Lost {
    fn from(error: ipa_kernel::StorageError) -> Self {
        Self {
            reason: error.to_string(),
            let_go: error.is_unavailable(),
        }
    }
}

impl<J: RunJournal, A: AgentRepository> Engine<J, A> {
    /// An engine over `journal`, reading the agents of agent steps from `agents`, opening
    /// their secrets with `secrets`, and making every outbound call (webhooks, model providers,
    /// tools) with `client`.
    pub fn new(
        journal: J,
        agents: A,
        secrets: Arc<dyn SecretOpener>,
        client: OutboundClient,
        options: EngineOptions,
    ) -> Self {
        let templates = Templates::new();
        let agents = AgentRunner::new(
            Arc::new(agents),
            secrets,
            client.clone(),
            templates.clone(),
            options.openai_base_url.clone(),
        );
        Self {
            journal: Arc::new(journal),
            templates,
            client,
            agents,
            options,
            ready: Arc::new(Notify::new()),
            in_flight: Arc::default(),
        }
    }

    /// Runs the workers until `shutdown` turns true, reacting to `signals` as they come. Returns
    /// once every worker has stopped (runs in flight are interrupted and released).
    pub async fn run(
        self,
        mut signals: broadcast::Receiver<Signal>,
        shutdown: watch::Receiver<bool>,
    ) {
        let mut workers = JoinSet::new();
        for index in 0..self.options.workers {
            let engine = self.clone();
            let worker = WorkerId::new(format!("{}:{index}", self.options.name));
            workers.spawn(engine.work(worker, shutdown.clone()));
        }
        let mut stop = shutdown.clone();
        let mut listening = true;
        loop {
            tokio::select! {
                _ = stop.wait_for(|stopping| *stopping) => break,
                signal = signals.recv(), if listening => match signal {
                    // One idle worker per ready run: it claims at once, and the others stay
                    // asleep instead of all racing to the same row. With none idle, the
                    // wake-up is kept for the next worker that waits.
                    Ok(Signal::Ready) => self.ready.notify_one(),
                    Ok(Signal::Stop(id)) => self.interrupt(id, Interrupt::Cancelled),
                    // Missed notifications are made up by the poll.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.ready.notify_waiters(),
                    // No more signals: the poll alone drives the workers.
                    Err(broadcast::error::RecvError::Closed) => listening = false,
                },
            }
        }
        let running: Vec<ExecutionId> = self.lock_in_flight().keys().copied().collect();
        for id in running {
            self.interrupt(id, Interrupt::Shutdown);
        }
        while workers.join_next().await.is_some() {}
    }

    fn lock_in_flight(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ExecutionId, watch::Sender<Option<Interrupt>>>> {
        // The map holds no invariant a panicking holder could break.
        self.in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn interrupt(&self, id: ExecutionId, why: Interrupt) {
        if let Some(sender) = self.lock_in_flight().get(&id) {
            let _ = sender.send(Some(why));
        }
    }

    /// One worker's loop.
    async fn work(self, worker: WorkerId, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = worker.as_str(), "engine worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            // Listen before looking, so a notification sent while claiming is not missed.
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            match self.claim(&worker).await {
                Ok(runs) if !runs.is_empty() => {
                    for (claimed, plan) in runs {
                        self.execute(claimed, plan).await;
                    }
                    continue;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(worker = worker.as_str(), %error, "claiming runs failed");
                }
            }
            tokio::select! {
                () = &mut ready => {}
                () = tokio::time::sleep(self.options.poll_interval) => {}
                _ = shutdown.wait_for(|stopping| *stopping) => break,
            }
        }
        tracing::info!(worker = worker.as_str(), "engine worker stopped");
    }

    /// Claims a ready run, with its first write (see [`Engine::open_run`]) made by the claim.
    /// When that write fails for another reason than an unavailable database, the run is
    /// claimed without it, and the worker writes it apart as any other, failing as it would.
    async fn claim(&self, worker: &WorkerId) -> Result<Vec<(Claimed, Plan)>, StorageError> {
        match self.claim_with(worker, true).await {
            Err(error) if !error.is_unavailable() => {
                tracing::warn!(worker = worker.as_str(), %error, "claiming a run with its first write failed");
                self.claim_with(worker, false).await
            }
            claimed => claimed,
        }
    }

    /// Claims a ready run, with its first write when `write_first`. The run's interrupts are
    /// registered while its row is still locked by the claim, so a cancel (which waits for that
    /// lock) always finds the step it must stop.
    async fn claim_with(
        &self,
        worker: &WorkerId,
        write_first: bool,
    ) -> Result<Vec<(Claimed, Plan)>, StorageError> {
        let mut plans = Vec::new();
        let claimed = self
            .journal
            .claim(worker, self.options.lease, 1, |run| {
                let (sender, interrupts) = watch::channel(None);
                self.lock_in_flight().insert(run.lease.execution_id, sender);
                let (progress, opening) = self.open_run(run);
                plans.push(Plan {
                    id: run.lease.execution_id,
                    progress,
                    then: opening.then,
                    interrupts,
                });
                write_first.then_some(opening.change)
            })
            .await;
        let claimed = match claimed {
            Ok(claimed) => claimed,
            Err(error) => {
                let mut in_flight = self.lock_in_flight();
                for plan in &plans {
                    in_flight.remove(&plan.id);
                }
                return Err(error);
            }
        };
        let mut runs = Vec::with_capacity(claimed.len());
        for run in claimed {
            let id = run.run.lease.execution_id;
            if let Some(at) = plans.iter().position(|plan| plan.id == id) {
                runs.push((run, plans.swap_remove(at)));
            }
        }
        Ok(runs)
    }

    /// Runs one claimed run until the worker is done with it, renewing the lease meanwhile.
    async fn execute(&self, claimed: Claimed, plan: Plan) {
        let Claimed { run, first } = claimed;
        let Plan {
            id,
            progress,
            then,
            interrupts,
        } = plan;
        let heartbeat = tokio::spawn(self.clone().heartbeat(run.lease.clone()));
        let result = match (first, progress) {
            (Some(Committed::Continue), Some(progress)) => {
                self.drive(&run, progress, then, &interrupts).await
            }
            // Nothing was written with the claim: write the first change now.
            (None, _) => {
                let (progress, opening) = self.open_run(&run);
                match (self.commit(&run, opening.change).await, progress) {
                    (Ok(true), Some(progress)) => {
                        self.drive(&run, progress, opening.then, &interrupts).await
                    }
                    (Ok(_), _) => Ok(()),
                    (Err(lost), _) => Err(lost),
                }
            }
            // The first write ended the worker's part, or found the run cancelled or paused.
            (Some(_), _) => Ok(()),
        };
        heartbeat.abort();
        self.lock_in_flight().remove(&id);
        let shutting_down = *interrupts.borrow() == Some(Interrupt::Shutdown);
        let let_go = match &result {
            Err(Lost { reason, let_go }) => {
                if *let_go {
                    tracing::warn!(execution = %id.as_uuid(), %reason, "letting go of a run");
                } else {
                    tracing::warn!(execution = %id.as_uuid(), %reason, "a write of the run was refused; holding it until its lease runs out");
                }
                *let_go
            }
            Ok(()) => false,
        };
        if (let_go || shutting_down)
            && let Err(error) = self.journal.release(&run.lease).await
        {
            tracing::warn!(execution = %id.as_uuid(), %error, "releasing a run failed");
        }
    }

    /// Renews the lease at a third of its length; interrupts the run when it was cancelled or
    /// the lease was lost.
    async fn heartbeat(self, lease: ipa_execution::Lease) {
        let period = self.options.lease / 3;
        loop {
            tokio::time::sleep(period).await;
            match self.journal.renew(&lease, self.options.lease).await {
                Ok(Some(ExecutionStatus::Cancelled)) => {
                    self.interrupt(lease.execution_id, Interrupt::Cancelled);
                }
                Ok(Some(_)) => {}
                Ok(None) => {
                    self.interrupt(lease.execution_id, Interrupt::LeaseLost);
                    return;
                }
                Err(error) => {
                    tracing::warn!(execution = %lease.execution_id.as_uuid(), %error, "renewing a lease failed");
                }
            }
        }
    }

    /// Commits `change`; says whether the worker goes on with the run (it is done with it once
    /// the run finished, waits, was paused or cancelled, or the lease was lost).
    ///
    /// While the database is unavailable the commit is tried again, for up to one lease length,
    /// so a step that finished during an outage keeps its result instead of running again once
    /// the database is back. Retrying is safe: the commit checks the lease under the run's row
    /// lock, so a run another worker took over meanwhile answers `LeaseLost`, never a second
    /// result. Past that time the worker lets go, and the run is resumed like one whose worker
    /// died.
    async fn commit(&self, run: &ClaimedRun, change: RunChange) -> Result<bool, Lost> {
        let deadline = tokio::time::Instant::now() + self.options.lease;
        let mut pause = COMMIT_RETRY_FIRST_PAUSE;
        loop {
            match self.journal.commit(&run.lease, change.clone()).await {
                Ok(committed) => return Ok(committed == Committed::Continue),
                Err(error)
                    if error.is_unavailable() && tokio::time::Instant::now() + pause < deadline =>
                {
                    tracing::warn!(
                        execution = %run.lease.execution_id.as_uuid(),
                        %error,
                        "the database is unavailable; the step's result is kept and committed again"
                    );
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(COMMIT_RETRY_MAX_PAUSE);
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Fails the run with `error`, with the step change `step` (when a step failed) and `logs`.
    async fn fail_run(
        &self,
        run: &ClaimedRun,
        step: Option<StepChange>,
        error: String,
        logs: Vec<NewLogLine>,
    ) -> Result<(), Lost> {
        self.commit(run, failure(run, step, error, logs)).await?;
        Ok(())
    }

    /// A claimed run's first write, decided from the run alone: its failure when it cannot go
    /// on (its definition no longer parses, it lost its worker too often, the approval it waited
    /// on ran out of time), else what [`Engine::open_next`] says of its steps. With it, what the
    /// run's settled steps leave to the next ones; `None` when the run cannot go on.
    fn open_run(&self, run: &ClaimedRun) -> (Option<Progress>, Opening) {
        let definition = match WorkflowDefinition::parse(&run.definition) {
            Ok(definition) => definition,
            Err(problems) => {
                let error = format!(
                    "the workflow version's definition no longer parses ({} problems); publish a \
                     corrected version",
                    problems.0.len()
                );
                return (None, Opening::stop(failure(run, None, error, Vec::new())));
            }
        };
        let mut logs = Vec::new();
        if run.previous_status == ExecutionStatus::Running {
            let at = first_unfinished(&run.steps).map_or("the end", |step| step.name.as_str());
            if run.recoveries > self.options.max_recoveries {
                let error = format!(
                    "the run lost its worker {} times (last at step '{at}'); it is not picked up \
                     again. Check the workers' logs (crashes, or steps that outlast the lease), \
                     then retry it",
                    run.recoveries
                );
                return (None, Opening::stop(failure(run, None, error, Vec::new())));
            }
            if run.recoveries > 0 {
                logs.push(NewLogLine::run(
                    LogLevel::Warning,
                    format!(
                        "Resumed at step '{at}' after the previous worker was lost (recovery {} of \
                         at most {})",
                        run.recoveries, self.options.max_recoveries
                    ),
                    json!({"recoveries": run.recoveries}),
                ));
            }
        }
        if let Some(waiting) = run.awaiting {
            // Claimed because the approval's time ran out.
            let change = StepChange {
                error: Some("no decision was made before the approval's timeout".to_owned()),
                ..StepChange::new(waiting, StepAction::Fail, 1)
            };
            let name = run
                .steps
                .iter()
                .find(|step| step.id == waiting)
                .map_or("?", |step| step.name.as_str());
            let error = format!("approval step '{name}' timed out without a decision");
            return (None, Opening::stop(failure(run, Some(change), error, logs)));
        }
        let deadline = definition.timeout_ms().map(|ms| {
            (
                run.started_at
                    + time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX)),
                ms,
            )
        });
        let mut progress = Progress {
            definition,
            deadline,
            next: 0,
            outputs: Map::new(),
            steps: Map::new(),
        };
        for row in &run.steps {
            if row.status.is_settled() {
                progress.steps.insert(
                    row.name.clone(),
                    step_context(row.output.clone(), row.status),
                );
                if row.status == StepStatus::Completed {
                    progress
                        .outputs
                        .insert(row.name.clone(), row.output.clone().unwrap_or(Value::Null));
                }
            }
        }
        let opening = self.open_next(run, &mut progress, logs);
        (Some(progress), opening)
    }

    /// The run's next write, decided without waiting on anything, with `logs` written first:
    /// its first unsettled step from `progress.next` on started (or skipped, when its condition
    /// is false; or started and then failed, when it cannot be rendered), the run failed when
    /// out of time, or completed when no step is left.
    fn open_next(
        &self,
        run: &ClaimedRun,
        progress: &mut Progress,
        mut logs: Vec<NewLogLine>,
    ) -> Opening {
        let count = progress.definition.steps().len().min(run.steps.len());
        let Some(index) = (progress.next..count).find(|at| !run.steps[*at].status.is_settled())
        else {
            let outputs = std::mem::take(&mut progress.outputs);
            return Opening::stop(RunChange {
                step: None,
                outcome: Some(RunOutcome::Complete(Value::Object(outputs))),
                logs,
            });
        };
        progress.next = index;
        if let Some((deadline, ms)) = progress.deadline
            && OffsetDateTime::now_utc() >= deadline
        {
            let error = format!("the run exceeded its time limit of {ms} ms");
            return Opening::stop(failure(run, None, error, logs));
        }
        let step = &progress.definition.steps()[index];
        let row = &run.steps[index];
        let context = json!({"input": run.input, "steps": progress.steps});
        if let Some(condition) = &step.when {
            match self.templates.evaluate(&condition.source, &context) {
                Ok(true) => {}
                Ok(false) => {
                    logs.push(step_event(
                        row,
                        StepStatus::Skipped,
                        format!("Step '{}' skipped: its condition is false", row.name),
                        json!({"when": condition.source}),
                    ));
                    progress
                        .steps
                        .insert(row.name.clone(), step_context(None, StepStatus::Skipped));
                    progress.next = index + 1;
                    let change = StepChange::new(row.id, StepAction::Skip, 0);
                    return Opening {
                        change: RunChange::step(change, logs),
                        then: Then::Next,
                    };
                }
                Err(error) => {
                    let message = format!("its condition could not be evaluated: {error}");
                    return start_and_fail(index, row, message, logs);
                }
            }
        }
        match &step.kind {
            StepKind::Webhook(webhook) => self.open_webhook(run, index, webhook, &context, logs),
            StepKind::Approval(approval) => {
                self.open_approval(index, step, row, approval, &context, logs)
            }
            StepKind::Agent(agent) => self.open_agent(index, row, agent, &context, logs),
        }
    }

    /// Goes on with a run whose last write was the opening of `then`: runs what it started,
    /// and writes each next opening, until the worker is done with the run. A step's completion
    /// is written together with the run's end when no step is left after it.
    async fn drive(
        &self,
        run: &ClaimedRun,
        mut progress: Progress,
        mut then: Then,
        interrupts: &watch::Receiver<Option<Interrupt>>,
    ) -> Result<(), Lost> {
        loop {
            let step = |index: usize| {
                let step = progress.definition.steps().get(index);
                let row = run.steps.get(index);
                step.zip(row)
            };
            let finished = match then {
                Then::Stop => return Ok(()),
                Then::Next => None,
                Then::Fail { index, message } => {
                    let Some(row) = run.steps.get(index) else {
                        return Ok(());
                    };
                    let failed = StepChange {
                        error: Some(message.clone()),
                        ..StepChange::new(row.id, StepAction::Fail, 1)
                    };
                    let error = format!("step '{}' failed: {message}", row.name);
                    self.fail_run(run, Some(failed), error, Vec::new()).await?;
                    return Ok(());
                }
                Then::Webhook {
                    index,
                    request,
                    first_attempt,
                    max_attempts,
                } => {
                    let Some((step, row)) = step(index) else {
                        return Ok(());
                    };
                    let StepKind::Webhook(webhook) = &step.kind else {
                        return Ok(());
                    };
                    let call = WebhookTurn {
                        run,
                        step,
                        row,
                        webhook,
                        request,
                        first_attempt,
                        max_attempts,
                        deadline: progress.deadline,
                        interrupts,
                    };
                    match self.call_webhook(call).await? {
                        Some(Completion { output, change }) => Some((index, output, change)),
                        None => return Ok(()),
                    }
                }
                Then::Agent {
                    index,
                    prompt,
                    attempt,
                } => {
                    let Some((step, row)) = step(index) else {
                        return Ok(());
                    };
                    let StepKind::Agent(agent) = &step.kind else {
                        return Ok(());
                    };
                    let turn = AgentTurn {
                        run,
                        step,
                        row,
                        agent,
                        prompt,
                        attempt,
                        progress: &progress,
                        interrupts,
                    };
                    match self.ask_agent(turn).await? {
                        Some(Completion { output, change }) => Some((index, output, change)),
                        None => return Ok(()),
                    }
                }
            };
            let completion = finished.map(|(index, output, change)| {
                let name = run.steps[index].name.clone();
                progress.steps.insert(
                    name.clone(),
                    step_context(Some(output.clone()), StepStatus::Completed),
                );
                progress.outputs.insert(name, output);
                progress.next = index + 1;
                change
            });
            let opening = self.open_next(run, &mut progress, Vec::new());
            if let Some(mut change) = completion {
                if opening.change.step.is_none() && matches!(opening.then, Then::Stop) {
                    // The run's end, written with its last step's completion.
                    change.outcome = opening.change.outcome;
                    change.logs.extend(opening.change.logs);
                    self.commit(run, change).await?;
                    return Ok(());
                }
                if !self.commit(run, change).await? {
                    return Ok(());
                }
            }
            if !self.commit(run, opening.change).await? {
                return Ok(());
            }
            then = opening.then;
        }
    }

    /// Records why a step in flight stopped. A cancelled run's step was already marked by the
    /// cancel; a shutdown leaves the step running for the next worker.
    async fn interrupted(
        &self,
        run: &ClaimedRun,
        row: &ExecutionStep,
        why: Interrupt,
        attempt: u32,
        elapsed: u64,
    ) -> Result<(), Lost> {
        let message = match why {
            Interrupt::Cancelled => {
                format!("Attempt {attempt} interrupted: the execution was cancelled")
            }
            Interrupt::Shutdown => format!(
                "Attempt {attempt} interrupted: the worker is shutting down; another worker will run the step again"
            ),
            Interrupt::LeaseLost => return Ok(()),
        };
        let line = NewLogLine::step(
            row.id,
            LogLevel::Warning,
            message,
            json!({"attempt": attempt, "duration_ms": elapsed}),
        );
        self.commit(run, RunChange::logs(vec![line])).await?;
        Ok(())
    }
}

/// What a run's settled steps leave to the next ones, as its worker goes through it.
struct Progress {
    /// The version's definition.
    definition: WorkflowDefinition,
    /// When the run runs out of time, and its limit in milliseconds.
    deadline: Option<(OffsetDateTime, u64)>,
    /// The first step not yet looked at.
    next: usize,
    /// Completed steps' outputs by name: the run's output.
    outputs: Map<String, Value>,
    /// What templates read of settled steps (`steps.<name>`).
    steps: Map<String, Value>,
}

/// A claimed run's first write, the worker's plan after it, and how to interrupt it.
struct Plan {
    /// The run.
    id: ExecutionId,
    /// Where the run is; `None` when the first write ends it.
    progress: Option<Progress>,
    /// What follows the first write.
    then: Then,
    /// Cancel, shutdown or a lost lease, which stop a step in flight.
    interrupts: watch::Receiver<Option<Interrupt>>,
}

/// A run's next write, decided without waiting on anything, and what follows once it is
/// written.
struct Opening {
    /// The write.
    change: RunChange,
    /// What follows.
    then: Then,
}

impl Opening {
    /// `change`, after which the worker is done with the run.
    fn stop(change: RunChange) -> Self {
        Self {
            change,
            then: Then::Stop,
        }
    }
}

/// What a worker does once an [`Opening`] is written.
enum Then {
    /// Nothing: the run finished, failed or waits for an approval.
    Stop,
    /// Open the next step (this one was skipped).
    Next,
    /// Fail the step at `index` it started (it could not be rendered) with `message`.
    Fail { index: usize, message: String },
    /// Call the webhook of the step at `index` it started.
    Webhook {
        index: usize,
        request: OutboundRequest,
        first_attempt: u32,
        max_attempts: u32,
    },
    /// Ask the agent of the step at `index` it started.
    Agent {
        index: usize,
        prompt: String,
        attempt: u32,
    },
}

/// A called step's success: its output, and the change recording it, not yet written.
struct Completion {
    /// The step's output.
    output: Value,
    /// Its completion, with its log lines.
    change: RunChange,
}

/// The run failed with `error`, with the step change `step` (and its log line) and `logs`.
fn failure(
    run: &ClaimedRun,
    step: Option<StepChange>,
    error: String,
    mut logs: Vec<NewLogLine>,
) -> RunChange {
    if let Some(change) = &step
        && let Some(row) = run.steps.iter().find(|row| row.id == change.step_id)
    {
        logs.push(step_event(
            row,
            StepStatus::Failed,
            format!(
                "Step '{}' failed: {}",
                row.name,
                change.error.as_deref().unwrap_or("")
            ),
            json!({"attempts": change.attempts}),
        ));
    }
    RunChange {
        step,
        outcome: Some(RunOutcome::Fail(error)),
        logs,
    }
}

/// The step at `index` (`row`) started, to be failed with `message` next.
fn start_and_fail(
    index: usize,
    row: &ExecutionStep,
    message: String,
    mut logs: Vec<NewLogLine>,
) -> Opening {
    logs.push(step_event(
        row,
        StepStatus::Running,
        format!("Step '{}' started", row.name),
        json!({}),
    ));
    Opening {
        change: RunChange::step(StepChange::new(row.id, StepAction::Start, 1), logs),
        then: Then::Fail { index, message },
    }
}

/// What later steps see of a step: `steps.<name>.output` and `steps.<name>.status`.
fn step_context(output: Option<Value>, status: StepStatus) -> Value {
    json!({"output": output.unwrap_or(Value::Null), "status": status.as_str()})
}

fn first_unfinished(steps: &[ExecutionStep]) -> Option<&ExecutionStep> {
    steps.iter().find(|step| !step.status.is_settled())
}

/// Resolves when the step in flight must stop.
async fn wait_interrupt(mut interrupts: watch::Receiver<Option<Interrupt>>) -> Interrupt {
    loop {
        if let Some(why) = *interrupts.borrow_and_update() {
            return why;
        }
        if interrupts.changed().await.is_err() {
            // The sender is gone only when the run is over; never interrupt for that.
            std::future::pending::<()>().await;
        }
    }
}
