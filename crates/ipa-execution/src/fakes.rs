//! An in-memory fake of the execution context's [`ExecutionRepository`], for unit tests of the
//! service in milliseconds, without a database.
//!
//! It keeps the contracts the port documents and PostgreSQL enforces: a run is visible to who
//! started it, to its workflow's owner, to superusers and to whoever was asked to decide one of
//! its approval steps, and one the actor may not see behaves as missing; starting applies [`version_to_run`] and honours idempotency keys per user; every
//! change goes through the run's state machine under one lock; a decision is judged on the run as
//! its decider may see it, and nothing is written when the judgement refuses. Row level
//! security itself, audit rows and concurrency between processes are for the schema tests.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use ipa_kernel::{
    Actor, ExecutionId, ExecutionStepId, Page, PageRequest, StorageError, UserId, WorkflowId,
    WorkflowVersionId,
};
use ipa_workflow::{VersionNumber, WorkflowStatus};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::approval::{ApprovalContext, Judged};
use crate::error::{ControlError, DecisionError, ExecutionQueryError, StartError};
use crate::model::{
    Decision, DecisionRequest, Execution, ExecutionFilter, ExecutionStep, LogEntry, LogFilter,
    StartRun, Started, StatsPosition, WorkflowStats,
};
use crate::ports::{ExecutionRepository, LogPage};
use crate::start::{VersionToRun, version_to_run};
use crate::state::{RunState, Steering};
use crate::{ExecutionStatus, LogLevel, StepKind, StepStatus};

/// A version as the fake knows it: its number, id and steps (name and kind).
pub(crate) type FakeVersion = (VersionNumber, WorkflowVersionId, Vec<(String, StepKind)>);

/// A workflow as the fake knows it: enough to start runs of it.
#[derive(Clone, Debug)]
pub(crate) struct FakeWorkflow {
    pub(crate) owner: UserId,
    pub(crate) status: WorkflowStatus,
    pub(crate) current: Option<WorkflowVersionId>,
    pub(crate) versions: Vec<FakeVersion>,
}

#[derive(Debug)]
struct FakeRun {
    execution: Execution,
    steps: Vec<ExecutionStep>,
    owner: UserId,
    /// Who was asked to decide one of its approval steps.
    asked: Vec<UserId>,
    logs: Vec<LogEntry>,
}

#[derive(Debug, Default)]
struct State {
    workflows: HashMap<WorkflowId, FakeWorkflow>,
    runs: Vec<FakeRun>,
    idempotency: HashMap<(UserId, String), (ExecutionId, Value)>,
    next_line: i64,
    decisions_written: usize,
    now: Option<OffsetDateTime>,
}

impl State {
    fn tick(&mut self) -> OffsetDateTime {
        let next = self
            .now
            .map_or(OffsetDateTime::UNIX_EPOCH, |now| now + Duration::seconds(1));
        self.now = Some(next);
        next
    }

    fn visible(&self, actor: &Actor, id: ExecutionId) -> Option<usize> {
        self.runs
            .iter()
            .position(|run| run.execution.id == id && may_see(actor, run))
    }

    fn log(&mut self, run: usize, step: Option<ExecutionStepId>, level: LogLevel, message: &str) {
        self.next_line += 1;
        let line = LogEntry {
            id: self.next_line,
            execution_id: self.runs[run].execution.id,
            step_id: step,
            level,
            message: message.to_owned(),
            context: json!({}),
            created_at: self.now.unwrap_or(OffsetDateTime::UNIX_EPOCH),
        };
        self.runs[run].logs.push(line);
    }
}

/// A level's rank, as the `log_level` enum orders them (`LogLevel::ALL` lists them so).
fn severity(level: LogLevel) -> usize {
    LogLevel::ALL
        .iter()
        .position(|candidate| *candidate == level)
        .unwrap_or(0)
}

fn may_see(actor: &Actor, run: &FakeRun) -> bool {
    actor.is_superuser()
        || actor.user_id().is_some_and(|user| {
            user == run.execution.triggered_by || user == run.owner || run.asked.contains(&user)
        })
}

/// An [`ExecutionRepository`] in memory.
#[derive(Debug, Default)]
pub(crate) struct FakeExecutions {
    state: Mutex<State>,
}

impl FakeExecutions {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a workflow runs can be started of.
    pub(crate) fn add_workflow(&self, workflow: FakeWorkflow) -> WorkflowId {
        let id = WorkflowId::new_random();
        self.state().workflows.insert(id, workflow);
        id
    }

    /// Makes the run's step `index` begin waiting for a decision by `approvers`, as the engine
    /// does when it reaches an approval step.
    pub(crate) fn await_approval(
        &self,
        id: ExecutionId,
        index: usize,
        approvers: &[UserId],
    ) -> ExecutionStepId {
        let mut state = self.state();
        let run = state
            .runs
            .iter_mut()
            .find(|run| run.execution.id == id)
            .unwrap_or_else(|| panic!("no run {id:?}"));
        let step = &mut run.steps[index];
        step.status = StepStatus::Running;
        step.input = Some(json!({"approvers": approvers, "message": "go on?"}));
        let step_id = step.id;
        run.execution.state = RunState::awaiting(step_id);
        run.asked.extend_from_slice(approvers);
        step_id
    }

    /// How many decisions were written.
    pub(crate) fn decisions_written(&self) -> usize {
        self.state().decisions_written
    }
}

impl ExecutionRepository for FakeExecutions {
    async fn start(
        &self,
        actor: &Actor,
        workflow: WorkflowId,
        request: &StartRun,
    ) -> Result<Started, StartError> {
        let user = actor
            .user_id()
            .ok_or_else(|| StorageError::new("starting a run", "no acting user"))?;
        let stored_request = json!({
            "input": request.input,
            "version_number": request.version_number.map(|number| number.get()),
        });
        let mut state = self.state();
        if let Some(key) = &request.idempotency_key
            && let Some((id, earlier)) = state.idempotency.get(&(user, key.as_str().to_owned()))
        {
            if *earlier != stored_request {
                return Err(StartError::IdempotencyMismatch);
            }
            let id = *id;
            let run = state
                .runs
                .iter()
                .find(|run| run.execution.id == id)
                .ok_or_else(|| StorageError::new("replaying a start", "the run is gone"))?;
            return Ok(Started {
                execution: run.execution.clone(),
                replayed: true,
            });
        }
        let found = state
            .workflows
            .get(&workflow)
            .filter(|found| actor.is_superuser() || found.owner == user)
            .cloned()
            .ok_or(StartError::WorkflowNotFound)?;
        let (number, version_id, steps) =
            match version_to_run(found.status, found.current, request.version_number)? {
                VersionToRun::Numbered(number) => found
                    .versions
                    .iter()
                    .find(|version| version.0 == number)
                    .ok_or(StartError::VersionNotFound(number))?,
                VersionToRun::Current(current) => found
                    .versions
                    .iter()
                    .find(|version| version.1 == current)
                    .ok_or(StartError::NoCurrentVersion)?,
            }
            .clone();
        let now = state.tick();
        let id = ExecutionId::new_random();
        let execution = Execution {
            id,
            workflow_id: workflow,
            workflow_version_id: version_id,
            version_number: Some(number),
            triggered_by: user,
            state: RunState::new(ExecutionStatus::Pending),
            input: Value::Object(request.input.clone()),
            output: None,
            error: None,
            started_at: None,
            completed_at: None,
            duration_ms: None,
            retry_count: 0,
            recoveries: 0,
            created_at: now,
            updated_at: now,
        };
        let steps = steps
            .into_iter()
            .zip(0..)
            .map(|((name, kind), index)| ExecutionStep {
                id: ExecutionStepId::new_random(),
                execution_id: id,
                name,
                index,
                kind,
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
        state.runs.push(FakeRun {
            execution: execution.clone(),
            steps,
            owner: found.owner,
            asked: Vec::new(),
            logs: Vec::new(),
        });
        let run = state.runs.len() - 1;
        state.log(run, None, LogLevel::Info, "Execution started");
        if let Some(key) = &request.idempotency_key {
            state
                .idempotency
                .insert((user, key.as_str().to_owned()), (id, stored_request));
        }
        Ok(Started {
            execution,
            replayed: false,
        })
    }

    async fn list(
        &self,
        actor: &Actor,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<Page<Execution>, StorageError> {
        let state = self.state();
        let mut rows: Vec<Execution> = state
            .runs
            .iter()
            .filter(|run| may_see(actor, run))
            .map(|run| run.execution.clone())
            .filter(|run| {
                filter.workflow.is_none_or(|id| run.workflow_id == id)
                    && filter
                        .status
                        .is_none_or(|status| run.state.status == status)
                    && filter
                        .triggered_by
                        .is_none_or(|user| run.triggered_by == user)
                    && filter
                        .created_from
                        .is_none_or(|from| run.created_at >= from)
                    && filter
                        .created_before
                        .is_none_or(|before| run.created_at < before)
                    && page.after.is_none_or(|after| {
                        (run.created_at, run.id.as_uuid()) < (after.created_at(), after.id())
                    })
            })
            .collect();
        rows.sort_by_key(|run| std::cmp::Reverse((run.created_at, run.id.as_uuid())));
        rows.truncate(usize::from(page.limit.get()) + 1);
        Ok(Page::from_overfetched(rows, page.limit, Execution::keyset))
    }

    async fn get(
        &self,
        actor: &Actor,
        id: ExecutionId,
    ) -> Result<(Execution, Vec<ExecutionStep>), ExecutionQueryError> {
        let state = self.state();
        let run = state
            .visible(actor, id)
            .ok_or(ExecutionQueryError::NotFound)?;
        Ok((
            state.runs[run].execution.clone(),
            state.runs[run].steps.clone(),
        ))
    }

    async fn logs(
        &self,
        actor: &Actor,
        id: ExecutionId,
        filter: LogFilter,
        page: PageRequest<i64>,
    ) -> Result<LogPage, ExecutionQueryError> {
        let state = self.state();
        let run = state
            .visible(actor, id)
            .ok_or(ExecutionQueryError::NotFound)?;
        let rows: Vec<LogEntry> = state.runs[run]
            .logs
            .iter()
            .filter(|line| {
                page.after.is_none_or(|after| line.id > after)
                    && filter
                        .min_level
                        .is_none_or(|level| severity(line.level) >= severity(level))
                    && filter.step.is_none_or(|step| line.step_id == Some(step))
            })
            .take(usize::from(page.limit.get()) + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetched(rows, page.limit, |line| line.id))
    }

    async fn events(
        &self,
        actor: &Actor,
        id: ExecutionId,
        after: i64,
        limit: u16,
    ) -> Result<(ExecutionStatus, Vec<LogEntry>), ExecutionQueryError> {
        let state = self.state();
        let run = state
            .visible(actor, id)
            .ok_or(ExecutionQueryError::NotFound)?;
        let lines = state.runs[run]
            .logs
            .iter()
            .filter(|line| line.id > after)
            .take(usize::from(limit))
            .cloned()
            .collect();
        Ok((state.runs[run].execution.state.status, lines))
    }

    async fn control(
        &self,
        actor: &Actor,
        id: ExecutionId,
        steering: Steering,
    ) -> Result<Execution, ControlError> {
        let mut state = self.state();
        let run = state.visible(actor, id).ok_or(ControlError::NotFound)?;
        let next = state.runs[run].execution.state.apply(steering.action())?;
        state.runs[run].execution.state = next;
        state.log(run, None, LogLevel::Info, "Execution steered");
        Ok(state.runs[run].execution.clone())
    }

    async fn decide<F>(
        &self,
        actor: &Actor,
        id: ExecutionId,
        step: ExecutionStepId,
        decision: &DecisionRequest,
        judge: F,
    ) -> Result<Execution, DecisionError>
    where
        F: FnOnce(&ApprovalContext) -> Result<Judged, DecisionError> + Send,
    {
        let mut state = self.state();
        let run = state.visible(actor, id).ok_or(DecisionError::NotFound)?;
        let found = &state.runs[run];
        // As under row level security: the workflow's owner is known to who may see it.
        let sees_workflow =
            actor.is_superuser() || actor.user_id().is_some_and(|user| user == found.owner);
        let context = ApprovalContext {
            state: found.execution.state,
            triggered_by: found.execution.triggered_by,
            owner: Some(found.owner).filter(|_| sees_workflow),
            step: found
                .steps
                .iter()
                .find(|candidate| candidate.id == step)
                .cloned(),
        };
        let Judged { step, next } = judge(&context)?;
        let decided = state.runs[run]
            .steps
            .iter_mut()
            .find(|candidate| candidate.id == step.id)
            .ok_or(DecisionError::StepNotFound)?;
        decided.status = match decision.decision {
            Decision::Approve => StepStatus::Completed,
            Decision::Reject => StepStatus::Failed,
        };
        decided.output = Some(json!({
            "decision": decision.decision.as_str(),
            "decided_by": actor.user_id().map(|user| user.as_uuid()),
        }));
        state.runs[run].execution.state = next;
        state.decisions_written += 1;
        state.log(run, Some(step.id), LogLevel::Info, "Step decided");
        Ok(state.runs[run].execution.clone())
    }

    async fn stats(
        &self,
        actor: &Actor,
        page: PageRequest<StatsPosition>,
    ) -> Result<Page<WorkflowStats, StatsPosition>, StorageError> {
        let state = self.state();
        let mut stats: Vec<WorkflowStats> = Vec::new();
        for run in state.runs.iter().filter(|run| may_see(actor, run)) {
            let index = match stats
                .iter()
                .position(|row| row.workflow_id == run.execution.workflow_id)
            {
                Some(index) => index,
                None => {
                    stats.push(WorkflowStats {
                        workflow_id: run.execution.workflow_id,
                        workflow_name: String::new(),
                        total_executions: 0,
                        successful_count: 0,
                        failed_count: 0,
                        avg_duration_ms: None,
                    });
                    stats.len() - 1
                }
            };
            let row = &mut stats[index];
            row.total_executions += 1;
            match run.execution.state.status {
                ExecutionStatus::Completed => row.successful_count += 1,
                ExecutionStatus::Failed => row.failed_count += 1,
                _ => {}
            }
        }
        // By name, then id, after the page's position, as the store lists them.
        let key = |row: &WorkflowStats| (row.workflow_name.clone(), row.workflow_id.as_uuid());
        stats.sort_by_key(key);
        let rows = stats
            .into_iter()
            .filter(|row| {
                page.after.as_ref().is_none_or(|after| {
                    key(row)
                        > (
                            after.workflow_name().to_owned(),
                            after.workflow_id().as_uuid(),
                        )
                })
            })
            .take(usize::from(page.limit.get()) + 1)
            .collect();
        Ok(Page::from_overfetched(rows, page.limit, StatsPosition::of))
    }
}
