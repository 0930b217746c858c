//! The workers: each claims a ready run from the [`RunJournal`], holds it with a lease it renews,
//! runs its unfinished steps in order and commits every step's result (with its log lines) in
//! one transaction, so a completed step never runs again.
//!
//! Workers wake on [`Signal::Ready`] (the server forwards PostgreSQL notifications) and poll as
//! a fallback; [`Signal::Stop`] interrupts the step in flight of a cancelled run. A step in flight
//! is also interrupted when the lease turns out to be lost, and when the engine shuts down (the
//! run is then released for another worker at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use ipa_agent::{AgentRepository, SecretOpener};
use ipa_execution::{
    ClaimedRun, Committed, ExecutionStatus, ExecutionStep, LogLevel, NewLogLine, RunChange,
    RunJournal, RunOutcome, StepAction, StepChange, StepStatus, WorkerId, step_event,
};
use ipa_kernel::ExecutionId;
use ipa_workflow::WorkflowDefinition;
use ipa_workflow::definition::{AgentStep, ApprovalStep, Step, StepKind, WebhookStep};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::task::JoinSet;

use crate::agent::{AgentRunner, OPENAI_BASE_URL, Recorder, StepCall};
use crate::templates::Templates;
use crate::webhook::{WebhookClient, WebhookFailure, render_request};

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
    webhooks: WebhookClient,
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
            webhooks: self.webhooks.clone(),
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

/// A failure to reach storage: the worker lets go of the run and another attempt picks it up.
#[derive(Debug)]
struct Lost(String);

impl From<ipa_kernel::StorageError> for Lost {
    fn from(error: ipa_kernel::StorageError) -> Self {
        Self(error.to_string())
    }
}

impl<J: RunJournal, A: AgentRepository> Engine<J, A> {
    /// An engine over `journal`, reading the agents of agent steps from `agents` and opening
    /// their secrets with `secrets`.
    pub fn new(
        journal: J,
        agents: A,
        secrets: Arc<dyn SecretOpener>,
        options: EngineOptions,
    ) -> Result<Self, String> {
        let templates = Templates::new();
        let webhooks = WebhookClient::new(crate::webhook::MAX_RESPONSE_BYTES)?;
        let agents = AgentRunner::new(
            Arc::new(agents),
            secrets,
            webhooks.clone(),
            templates.clone(),
            options.openai_base_url.clone(),
        );
        Ok(Self {
            journal: Arc::new(journal),
            templates,
            webhooks,
            agents,
            options,
            ready: Arc::new(Notify::new()),
            in_flight: Arc::default(),
        })
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
                    Ok(Signal::Ready) => self.ready.notify_waiters(),
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
            match self.journal.claim(&worker, self.options.lease, 1).await {
                Ok(runs) if !runs.is_empty() => {
                    for run in runs {
                        self.execute(run).await;
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

    /// Runs one claimed run until the worker is done with it, renewing the lease meanwhile.
    async fn execute(&self, run: ClaimedRun) {
        let id = run.lease.execution_id;
        let (sender, interrupts) = watch::channel(None);
        self.lock_in_flight().insert(id, sender);
        let heartbeat = tokio::spawn(self.clone().heartbeat(run.lease.clone()));
        let lease = run.lease.clone();
        let result = self.drive(run, interrupts.clone()).await;
        heartbeat.abort();
        self.lock_in_flight().remove(&id);
        let shutting_down = *interrupts.borrow() == Some(Interrupt::Shutdown);
        if let Err(Lost(reason)) = &result {
            tracing::warn!(execution = %id.as_uuid(), %reason, "letting go of a run");
        }
        if (result.is_err() || shutting_down)
            && let Err(error) = self.journal.release(&lease).await
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

    async fn fail_run(
        &self,
        run: &ClaimedRun,
        step: Option<StepChange>,
        error: String,
        mut logs: Vec<NewLogLine>,
    ) -> Result<(), Lost> {
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
        self.commit(
            run,
            RunChange {
                step,
                outcome: Some(RunOutcome::Fail(error)),
                logs,
            },
        )
        .await?;
        Ok(())
    }

    /// Goes through the run's steps from its first unfinished one.
    async fn drive(
        &self,
        run: ClaimedRun,
        interrupts: watch::Receiver<Option<Interrupt>>,
    ) -> Result<(), Lost> {
        let definition = match WorkflowDefinition::parse(&run.definition) {
            Ok(definition) => definition,
            Err(problems) => {
                let error = format!(
                    "the workflow version's definition no longer parses ({} problems); publish a \
                     corrected version",
                    problems.0.len()
                );
                self.fail_run(&run, None, error, Vec::new()).await?;
                return Ok(());
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
                self.fail_run(&run, None, error, Vec::new()).await?;
                return Ok(());
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
            self.fail_run(&run, Some(change), error, logs).await?;
            return Ok(());
        }
        let deadline = definition.timeout_ms().map(|ms| {
            (
                run.started_at
                    + time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX)),
                ms,
            )
        });
        let mut outputs = Map::new();
        let mut steps_context = Map::new();
        for row in &run.steps {
            if row.status.is_settled() {
                steps_context.insert(
                    row.name.clone(),
                    step_context(row.output.clone(), row.status),
                );
                if row.status == StepStatus::Completed {
                    outputs.insert(row.name.clone(), row.output.clone().unwrap_or(Value::Null));
                }
            }
        }
        for (step, row) in definition.steps().iter().zip(&run.steps) {
            if row.status.is_settled() {
                continue;
            }
            if let Some((deadline, ms)) = deadline
                && OffsetDateTime::now_utc() >= deadline
            {
                let error = format!("the run exceeded its time limit of {ms} ms");
                self.fail_run(&run, None, error, std::mem::take(&mut logs))
                    .await?;
                return Ok(());
            }
            let context = json!({"input": run.input, "steps": steps_context});
            let turn = StepTurn {
                run: &run,
                step,
                row,
                context: &context,
                deadline,
                interrupts: &interrupts,
            };
            let outcome = self.run_step(turn, std::mem::take(&mut logs)).await?;
            match outcome {
                StepEnd::Completed(output) => {
                    steps_context.insert(
                        row.name.clone(),
                        step_context(Some(output.clone()), StepStatus::Completed),
                    );
                    outputs.insert(row.name.clone(), output);
                }
                StepEnd::Skipped => {
                    steps_context.insert(row.name.clone(), step_context(None, StepStatus::Skipped));
                }
                StepEnd::Stop => return Ok(()),
            }
        }
        self.commit(
            &run,
            RunChange {
                step: None,
                outcome: Some(RunOutcome::Complete(Value::Object(outputs))),
                logs,
            },
        )
        .await?;
        Ok(())
    }

    /// Runs one step: its condition, then what it does.
    async fn run_step(
        &self,
        turn: StepTurn<'_>,
        mut logs: Vec<NewLogLine>,
    ) -> Result<StepEnd, Lost> {
        let StepTurn {
            run,
            step,
            row,
            context,
            ..
        } = turn;
        if let Some(condition) = &step.when {
            match self.templates.evaluate(&condition.source, context) {
                Ok(true) => {}
                Ok(false) => {
                    logs.push(step_event(
                        row,
                        StepStatus::Skipped,
                        format!("Step '{}' skipped: its condition is false", row.name),
                        json!({"when": condition.source}),
                    ));
                    let change = StepChange::new(row.id, StepAction::Skip, 0);
                    let goes_on = self.commit(run, RunChange::step(change, logs)).await?;
                    return Ok(if goes_on {
                        StepEnd::Skipped
                    } else {
                        StepEnd::Stop
                    });
                }
                Err(error) => {
                    let message = format!("its condition could not be evaluated: {error}");
                    self.start_and_fail(run, row, None, message, logs).await?;
                    return Ok(StepEnd::Stop);
                }
            }
        }
        match &step.kind {
            StepKind::Webhook(webhook) => self.run_webhook(turn, webhook, logs).await,
            StepKind::Approval(approval) => self.await_approval(turn, approval, logs).await,
            StepKind::Agent(agent) => self.run_agent(turn, agent, logs).await,
        }
    }

    /// Records `row` started and then failed with `message`, failing the run.
    async fn start_and_fail(
        &self,
        run: &ClaimedRun,
        row: &ExecutionStep,
        input: Option<Value>,
        message: String,
        mut logs: Vec<NewLogLine>,
    ) -> Result<(), Lost> {
        logs.push(step_event(
            row,
            StepStatus::Running,
            format!("Step '{}' started", row.name),
            json!({}),
        ));
        let started = StepChange {
            input,
            ..StepChange::new(row.id, StepAction::Start, 1)
        };
        if !self.commit(run, RunChange::step(started, logs)).await? {
            return Ok(());
        }
        let failed = StepChange {
            error: Some(message.clone()),
            ..StepChange::new(row.id, StepAction::Fail, 1)
        };
        let error = format!("step '{}' failed: {message}", row.name);
        self.fail_run(run, Some(failed), error, Vec::new()).await?;
        Ok(())
    }

    async fn await_approval(
        &self,
        turn: StepTurn<'_>,
        approval: &ApprovalStep,
        mut logs: Vec<NewLogLine>,
    ) -> Result<StepEnd, Lost> {
        let StepTurn {
            run,
            step,
            row,
            context,
            ..
        } = turn;
        let message = match self.templates.render(&approval.message.source, context) {
            Ok(message) => message,
            Err(error) => {
                let message = format!("its message could not be rendered: {error}");
                self.start_and_fail(run, row, None, message, logs).await?;
                return Ok(StepEnd::Stop);
            }
        };
        let approvers: Vec<_> = approval.approvers.iter().map(|id| id.as_uuid()).collect();
        let decided_by = if approvers.is_empty() {
            "the workflow's owner or a superuser"
        } else {
            "a listed approver"
        };
        let deadline = step.timeout_ms.map(|ms| {
            OffsetDateTime::now_utc()
                + time::Duration::milliseconds(i64::try_from(ms).unwrap_or(i64::MAX))
        });
        logs.push(step_event(
            row,
            StepStatus::Running,
            format!("Step '{}' waits for a decision by {decided_by}", row.name),
            json!({"message": message, "approvers": approvers}),
        ));
        let change = StepChange {
            input: Some(json!({"message": message, "approvers": approvers})),
            ..StepChange::new(row.id, StepAction::Start, 1)
        };
        self.commit(
            run,
            RunChange {
                step: Some(change),
                outcome: Some(RunOutcome::AwaitApproval {
                    step: row.id,
                    deadline,
                }),
                logs,
            },
        )
        .await?;
        Ok(StepEnd::Stop)
    }

    async fn run_webhook(
        &self,
        turn: StepTurn<'_>,
        webhook: &WebhookStep,
        mut logs: Vec<NewLogLine>,
    ) -> Result<StepEnd, Lost> {
        let StepTurn {
            run,
            step,
            row,
            context,
            deadline,
            interrupts,
        } = turn;
        // The same key on every attempt, after a lost worker too: receivers can de-duplicate.
        let key = format!("{}:{}", run.lease.execution_id.as_uuid(), row.id.as_uuid());
        let request = match render_request(webhook, &self.templates, context, &key) {
            Ok(request) => request,
            Err(error) => {
                self.start_and_fail(run, row, None, error, logs).await?;
                return Ok(StepEnd::Stop);
            }
        };
        // Header values may carry credentials: only their names are kept.
        let header_names: Vec<&str> = request
            .headers
            .iter()
            .map(|(name, _)| name.as_str())
            .collect();
        let input = json!({
            "method": request.method.as_str(),
            "url": request.url,
            "headers": header_names,
            "body": request.body,
            "idempotency_key": key,
        });
        let max_attempts = u32::from(webhook.retry.max_attempts.max(1));
        let first_attempt = u32::try_from(row.retry_count).unwrap_or(0) + 1;
        let step_timeout = step
            .timeout_ms
            .map_or(self.options.default_step_timeout, Duration::from_millis);
        logs.push(step_event(
            row,
            StepStatus::Running,
            format!("Step '{}' started", row.name),
            json!({"method": request.method.as_str(), "url": request.url, "max_attempts": max_attempts}),
        ));
        let started = StepChange {
            input: Some(input),
            ..StepChange::new(row.id, StepAction::Start, first_attempt)
        };
        if !self
            .commit(run, RunChange::step(started, std::mem::take(&mut logs)))
            .await?
        {
            return Ok(StepEnd::Stop);
        }
        // A retried run gets the step's whole policy again; the recorded count goes on from the
        // attempts already made.
        let mut attempt = 1;
        loop {
            let mut timeout = step_timeout;
            let mut run_deadline_hit = false;
            if let Some((deadline, _)) = deadline {
                let left = deadline - OffsetDateTime::now_utc();
                let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
                if left < timeout {
                    timeout = left;
                    run_deadline_hit = true;
                }
            }
            let began = Instant::now();
            let result = tokio::select! {
                result = self.webhooks.call(&request, timeout) => Ok(result),
                why = wait_interrupt(interrupts.clone()) => Err(why),
            };
            let elapsed = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
            let result = match result {
                Ok(result) => result,
                Err(why) => {
                    self.interrupted(run, row, why, attempt, elapsed).await?;
                    return Ok(StepEnd::Stop);
                }
            };
            match result {
                Ok(response) => {
                    logs.push(NewLogLine::step(
                        row.id,
                        LogLevel::Info,
                        format!("Attempt {attempt} succeeded: HTTP {}", response.status),
                        json!({"attempt": attempt, "status_code": response.status, "duration_ms": elapsed, "bytes": response.bytes, "truncated": response.truncated}),
                    ));
                    logs.push(step_event(
                        row,
                        StepStatus::Completed,
                        format!("Step '{}' completed", row.name),
                        json!({"attempts": attempt}),
                    ));
                    let completed = StepChange {
                        output: Some(response.body.clone()),
                        ..StepChange::new(row.id, StepAction::Complete, first_attempt + attempt - 1)
                    };
                    let goes_on = self.commit(run, RunChange::step(completed, logs)).await?;
                    return Ok(if goes_on {
                        StepEnd::Completed(response.body)
                    } else {
                        StepEnd::Stop
                    });
                }
                Err(failure) => {
                    let mut detail = json!({"attempt": attempt, "duration_ms": elapsed, "error": failure.to_string()});
                    if let WebhookFailure::Status(response) = &failure {
                        detail["status_code"] = json!(response.status);
                        // One line per attempt: each quotes the answer clipped; the failed
                        // step's output keeps the last one whole.
                        detail["response"] = crate::clip_value(&response.body);
                    }
                    let out_of_time =
                        run_deadline_hit && matches!(failure, WebhookFailure::TimedOut(_));
                    let retryable =
                        !matches!(failure, WebhookFailure::InvalidRequest(_)) && !out_of_time;
                    if retryable && attempt < max_attempts {
                        let delay = webhook.retry.backoff.delay_ms(attempt);
                        logs.push(NewLogLine::step(
                            row.id,
                            LogLevel::Warning,
                            format!("Attempt {attempt} of {max_attempts} failed: {failure}; retrying in {delay} ms"),
                            detail,
                        ));
                        if !self
                            .commit(run, RunChange::logs(std::mem::take(&mut logs)))
                            .await?
                        {
                            return Ok(StepEnd::Stop);
                        }
                        let slept = tokio::select! {
                            () = tokio::time::sleep(Duration::from_millis(delay)) => None,
                            why = wait_interrupt(interrupts.clone()) => Some(why),
                        };
                        if let Some(why) = slept {
                            self.interrupted(run, row, why, attempt, 0).await?;
                            return Ok(StepEnd::Stop);
                        }
                        attempt += 1;
                        continue;
                    }
                    logs.push(NewLogLine::step(
                        row.id,
                        LogLevel::Error,
                        format!("Attempt {attempt} of {max_attempts} failed: {failure}"),
                        detail,
                    ));
                    let message = if out_of_time {
                        let ms = deadline.map_or(0, |(_, ms)| ms);
                        format!("the run exceeded its time limit of {ms} ms")
                    } else if attempt > 1 {
                        format!("{failure} (after {attempt} attempts)")
                    } else {
                        failure.to_string()
                    };
                    let failed = StepChange {
                        output: match &failure {
                            WebhookFailure::Status(response) => Some(response.body.clone()),
                            _ => None,
                        },
                        error: Some(message.clone()),
                        ..StepChange::new(row.id, StepAction::Fail, first_attempt + attempt - 1)
                    };
                    let error = format!("step '{}' failed: {message}", step.name.as_str());
                    self.fail_run(run, Some(failed), error, logs).await?;
                    return Ok(StepEnd::Stop);
                }
            }
        }
    }

    /// Runs an agent step: the agent answers the rendered prompt while its calls' log lines are
    /// committed as they come; the step's `timeout_ms` bounds the whole conversation.
    async fn run_agent(
        &self,
        turn: StepTurn<'_>,
        agent: &AgentStep,
        mut logs: Vec<NewLogLine>,
    ) -> Result<StepEnd, Lost> {
        let StepTurn {
            run,
            step,
            row,
            context,
            deadline,
            interrupts,
        } = turn;
        let prompt = match self.templates.render(&agent.prompt.source, context) {
            Ok(prompt) => prompt,
            Err(error) => {
                let message = format!("its prompt could not be rendered: {}", error.message());
                self.start_and_fail(run, row, None, message, logs).await?;
                return Ok(StepEnd::Stop);
            }
        };
        let attempt = u32::try_from(row.retry_count).unwrap_or(0) + 1;
        let agent_id = agent.agent_id.as_uuid();
        logs.push(step_event(
            row,
            StepStatus::Running,
            format!("Step '{}' started", row.name),
            json!({"agent_id": agent_id}),
        ));
        let started = StepChange {
            input: Some(json!({"agent_id": agent_id, "prompt": prompt})),
            ..StepChange::new(row.id, StepAction::Start, attempt)
        };
        if !self.commit(run, RunChange::step(started, logs)).await? {
            return Ok(StepEnd::Stop);
        }
        // The step's own limit and the run's, whichever comes first.
        let now = Instant::now();
        let step_limit = step.timeout_ms.map(|ms| {
            (
                now + Duration::from_millis(ms),
                format!("the step exceeded its time limit of {ms} ms"),
            )
        });
        let run_limit = deadline.map(|(at, ms)| {
            let left = Duration::try_from(at - OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
            (
                now + left,
                format!("the run exceeded its time limit of {ms} ms"),
            )
        });
        let limit = match (step_limit, run_limit) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        };
        let (sender, mut lines) = mpsc::unbounded_channel();
        let recorder = Recorder::new(row.id, sender);
        let call = StepCall {
            execution_id: run.lease.execution_id,
            step_name: &row.name,
            context,
            limit: limit.as_ref().map(|(at, _)| *at),
            recorder: &recorder,
        };
        let conversation = self.agents.run(agent.agent_id, prompt, &call);
        tokio::pin!(conversation);
        let expired = async {
            match &limit {
                Some((at, _)) => tokio::time::sleep_until((*at).into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(expired);
        let began = Instant::now();
        let result = loop {
            tokio::select! {
                result = &mut conversation => break result,
                Some(line) = lines.recv() => {
                    let mut batch = vec![line];
                    while let Ok(line) = lines.try_recv() {
                        batch.push(line);
                    }
                    if !self.commit(run, RunChange::logs(batch)).await? {
                        return Ok(StepEnd::Stop);
                    }
                }
                () = &mut expired => {
                    break Err(limit.as_ref().map_or_else(String::new, |(_, why)| why.clone()));
                }
                why = wait_interrupt(interrupts.clone()) => {
                    let elapsed = u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.interrupted(run, row, why, 1, elapsed).await?;
                    return Ok(StepEnd::Stop);
                }
            }
        };
        let mut logs = Vec::new();
        while let Ok(line) = lines.try_recv() {
            logs.push(line);
        }
        match result {
            Ok(output) => {
                logs.push(step_event(
                    row,
                    StepStatus::Completed,
                    format!("Step '{}' completed", row.name),
                    json!({"usage": output.get("usage")}),
                ));
                let completed = StepChange {
                    output: Some(output.clone()),
                    ..StepChange::new(row.id, StepAction::Complete, attempt)
                };
                let goes_on = self.commit(run, RunChange::step(completed, logs)).await?;
                Ok(if goes_on {
                    StepEnd::Completed(output)
                } else {
                    StepEnd::Stop
                })
            }
            Err(message) => {
                let failed = StepChange {
                    error: Some(message.clone()),
                    ..StepChange::new(row.id, StepAction::Fail, attempt)
                };
                let error = format!("step '{}' failed: {message}", step.name.as_str());
                self.fail_run(run, Some(failed), error, logs).await?;
                Ok(StepEnd::Stop)
            }
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

/// A step about to run, with what every kind of step needs from its run.
#[derive(Clone, Copy)]
struct StepTurn<'a> {
    /// The claimed run.
    run: &'a ClaimedRun,
    /// The step as defined.
    step: &'a Step,
    /// Its row in the run.
    row: &'a ExecutionStep,
    /// What its templates read: `{"input", "steps"}`.
    context: &'a Value,
    /// When the run runs out of time, and its limit in milliseconds.
    deadline: Option<(OffsetDateTime, u64)>,
    /// Cancel, shutdown or a lost lease, which stop a step in flight.
    interrupts: &'a watch::Receiver<Option<Interrupt>>,
}

/// How a step ended, for the run's loop.
enum StepEnd {
    /// With this output: go on.
    Completed(Value),
    /// Skipped: go on.
    Skipped,
    /// The worker is done with the run.
    Stop,
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
