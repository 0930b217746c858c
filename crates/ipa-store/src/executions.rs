//! The execution context's repository on PostgreSQL ([`PgExecutions`]): starting runs (with
//! their steps, idempotently), listing and reading them, their log lines, steering them and
//! deciding their approvals, and the statistics view.
//!
//! Row level security decides visibility (a run is visible to who started it, to whoever sees its
//! workflow, and to superusers). Every change to a run locks its row first, the engine's writes
//! included, so one run's log lines commit in the order of their ids: a reader that has seen line
//! `n` has seen every earlier line of that run, which is what event streams resume from.

use ipa_execution::{
    ApprovalContext, ControlError, Decision, DecisionError, DecisionRequest, Execution,
    ExecutionFilter, ExecutionQueryError, ExecutionRepository, ExecutionStatus, ExecutionStep,
    IdempotencyKey, Judged, LogEntry, LogFilter, LogPage, NewLogLine, RunState, StartError,
    StartRun, Started, StatsPosition, Steering, StepStatus, VersionToRun, WorkflowStats, run_event,
    step_event, version_to_run,
};
use ipa_kernel::{
    Actor, ExecutionId, ExecutionStepId, Page, PageRequest, StorageError, UserId, WorkflowId,
    WorkflowVersionId,
};
use ipa_workflow::{WorkflowDefinition, WorkflowStatus};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LockType, OnConflict};
use sea_orm::{
    ActiveValue, ColumnTrait, ConnectionTrait, DbBackend, DerivePartialModel, EntityTrait,
    FromQueryResult, JoinType, QueryFilter, QueryOrder, QuerySelect, QueryTrait, RelationDef,
    Select, StatementBuilder, UpdateMany,
};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::audit::{self, AuditAction};
use crate::entity::sea_orm_active_enums::{
    ExecutionStatus as StoredStatus, LogLevel as StoredLevel, StepStatus as StoredStepStatus,
    WorkflowStatus as StoredWorkflowStatus,
};
use crate::entity::{execution_logs, execution_steps, executions, workflow_versions, workflows};
use crate::sql::{
    commit, explain_statement, from_store, newest_first, read_rows_page, statement, storage,
};
use crate::store::Store;
use crate::workflows::version_number;

/// A run's row as reads show it, with its version's number (from [`runs`]' outer join).
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "executions::Entity")]
struct RunRow {
    id: Uuid,
    workflow_id: Uuid,
    workflow_version_id: Uuid,
    triggered_by: Uuid,
    status: Option<StoredStatus>,
    waiting_step_id: Option<Uuid>,
    input_data: Option<serde_json::Value>,
    output_data: Option<serde_json::Value>,
    error_message: Option<String>,
    started_at: Option<OffsetDateTime>,
    completed_at: Option<OffsetDateTime>,
    duration_ms: Option<i32>,
    retry_count: Option<i32>,
    recoveries: i32,
    created_at: Option<OffsetDateTime>,
    updated_at: Option<OffsetDateTime>,
    #[sea_orm(
        from_expr = "Expr::col((workflow_versions::Entity, workflow_versions::Column::VersionNumber))"
    )]
    version_number: Option<i32>,
}

/// A run's state as its row says: the seed's nullable `status` reads as pending when NULL.
pub(crate) fn run_state(status: Option<StoredStatus>, waiting: Option<Uuid>) -> RunState {
    RunState {
        status: status.map_or(ExecutionStatus::Pending, ExecutionStatus::from),
        awaiting: waiting.map(ExecutionStepId::from_uuid),
    }
}

/// A run's status and the step it waits on, as locks and status reads take them.
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "executions::Entity")]
pub(crate) struct StateRow {
    status: Option<StoredStatus>,
    waiting_step_id: Option<Uuid>,
}

impl From<StateRow> for RunState {
    fn from(row: StateRow) -> Self {
        run_state(row.status, row.waiting_step_id)
    }
}

/// The one place a run's row becomes an [`Execution`]. The seed's schema leaves `status`,
/// `input_data`, `retry_count`, `created_at` and `updated_at` nullable (with defaults, so only a
/// hand-written NULL leaves one empty): they read as pending, `{}`, 0, now and the creation time.
impl TryFrom<RunRow> for Execution {
    type Error = StorageError;

    fn try_from(row: RunRow) -> Result<Self, StorageError> {
        let created_at = row.created_at.unwrap_or_else(OffsetDateTime::now_utc);
        Ok(Execution {
            id: ExecutionId::from_uuid(row.id),
            workflow_id: WorkflowId::from_uuid(row.workflow_id),
            workflow_version_id: WorkflowVersionId::from_uuid(row.workflow_version_id),
            version_number: row.version_number.map(version_number).transpose()?,
            triggered_by: UserId::from_uuid(row.triggered_by),
            state: run_state(row.status, row.waiting_step_id),
            input: row.input_data.unwrap_or_else(|| json!({})),
            output: row.output_data,
            error: row.error_message,
            started_at: row.started_at,
            completed_at: row.completed_at,
            duration_ms: row.duration_ms.map(i64::from),
            retry_count: row.retry_count.unwrap_or(0),
            recoveries: row.recoveries,
            created_at,
            updated_at: row.updated_at.unwrap_or(created_at),
        })
    }
}

/// The one place a step's row becomes an [`ExecutionStep`] (a NULL status, which only a
/// hand-written row has, reads as pending; a NULL retry count as 0).
pub(crate) fn step_from(row: execution_steps::Model) -> Result<ExecutionStep, StorageError> {
    Ok(ExecutionStep {
        id: ExecutionStepId::from_uuid(row.id),
        execution_id: ExecutionId::from_uuid(row.execution_id),
        name: row.step_name,
        index: row.step_index,
        kind: row
            .step_type
            .parse()
            .map_err(|error| StorageError::new("reading an execution step row", error))?,
        status: row.status.map_or(StepStatus::Pending, StepStatus::from),
        input: row.input_data,
        output: row.output_data,
        error: row.error_message,
        started_at: row.started_at,
        completed_at: row.completed_at,
        duration_ms: row.duration_ms.map(i64::from),
        retry_count: row.retry_count.unwrap_or(0),
    })
}

/// The one place a log line's row becomes a [`LogEntry`] (a NULL context reads as `{}`).
fn log_from(row: execution_logs::Model) -> LogEntry {
    LogEntry {
        id: row.id,
        execution_id: ExecutionId::from_uuid(row.execution_id),
        step_id: row.execution_step_id.map(ExecutionStepId::from_uuid),
        level: row.level.into(),
        message: row.message,
        context: row.context.unwrap_or_else(|| json!({})),
        created_at: row.created_at,
    }
}

/// Runs with their version's number: `executions` left-joined to the version it runs (by the
/// version's primary key).
fn runs() -> Select<executions::Entity> {
    let version: RelationDef = executions::Entity::belongs_to(workflow_versions::Entity)
        .from(executions::Column::WorkflowVersionId)
        .to(workflow_versions::Column::Id)
        .into();
    executions::Entity::find().join(JoinType::LeftJoin, version)
}

/// Locks a run's row for a change (see the module's comment on ordering) and reads its state.
/// `FOR NO KEY UPDATE`: the run's key does not change, so rows referring to it (steps, log
/// lines) may still be written meanwhile.
pub(crate) async fn lock_run(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
) -> Result<Option<RunState>, StorageError> {
    Ok(executions::Entity::find_by_id(id.as_uuid())
        .lock(LockType::NoKeyUpdate)
        .into_partial_model::<StateRow>()
        .one(conn)
        .await
        .map_err(storage("locking an execution"))?
        .map(RunState::from))
}

/// Writes `lines` for `execution` in one statement, in order. The caller holds the run's lock.
pub(crate) async fn insert_logs(
    conn: &impl ConnectionTrait,
    execution: ExecutionId,
    lines: &[NewLogLine],
) -> Result<(), StorageError> {
    if lines.is_empty() {
        return Ok(());
    }
    conn.execute_raw(statement(
        INSERT_LOGS,
        [execution.as_uuid().into(), log_batch(lines).into()],
    ))
    .await
    .map_err(storage("writing log lines"))?;
    Ok(())
}

/// The columns and rows of an `INSERT INTO execution_logs` of a run's (`$1`) lines given as one
/// JSON array ([`log_batch`], `$2`), written in their order so their ids follow it. A macro, so
/// that statements embedding it are single constants (`concat!`). Raw: the builder cannot say
/// `jsonb_array_elements(..) WITH ORDINALITY`, and one parameter for any number of lines keeps a
/// batch one statement whatever its size.
macro_rules! insert_logs_from_batch {
    () => {
        "(execution_id, execution_step_id, level, message, context) \
         SELECT $1, (l.line->>'step_id')::uuid, (l.line->>'level')::log_level, \
                l.line->>'message', coalesce(l.line->'context', '{}') \
         FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS l(line, position) \
         ORDER BY l.position"
    };
}
pub(crate) use insert_logs_from_batch;

/// A run's lines in one statement (see [`insert_logs_from_batch`]).
const INSERT_LOGS: &str = concat!("INSERT INTO execution_logs ", insert_logs_from_batch!());

/// `lines` as one JSON array, for [`insert_logs_from_batch`]: one parameter however many lines.
pub(crate) fn log_batch(lines: &[NewLogLine]) -> serde_json::Value {
    serde_json::Value::Array(
        lines
            .iter()
            .map(|line| {
                json!({
                    "step_id": line.step_id.map(|id| id.as_uuid()),
                    "level": line.level.as_str(),
                    "message": line.message,
                    "context": line.context,
                })
            })
            .collect(),
    )
}

/// Reads one run (as the transaction's actor sees it).
pub(crate) async fn read_execution(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
) -> Result<Option<Execution>, StorageError> {
    runs()
        .filter(executions::Column::Id.eq(id.as_uuid()))
        .into_partial_model::<RunRow>()
        .one(conn)
        .await
        .map_err(storage("reading an execution"))?
        .map(Execution::try_from)
        .transpose()
}

/// The steps of the runs `ids`, in order.
pub(crate) async fn read_steps_of(
    conn: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<ExecutionStep>, StorageError> {
    execution_steps::Entity::find()
        .filter(execution_steps::Column::ExecutionId.is_in(ids))
        .order_by_asc(execution_steps::Column::ExecutionId)
        .order_by_asc(execution_steps::Column::StepIndex)
        .all(conn)
        .await
        .map_err(storage("reading execution steps"))?
        .into_iter()
        .map(step_from)
        .collect()
}

/// The executions repository.
#[derive(Clone, Debug)]
pub struct PgExecutions {
    store: Store,
}

impl PgExecutions {
    /// A repository over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// PostgreSQL's plan for listing runs with `filter` as `actor` (`EXPLAIN`, text form, one
    /// line per plan node): for operators checking that a filter is served by its index.
    pub async fn explain_list(
        &self,
        actor: &Actor,
        filter: &ExecutionFilter,
        page: PageRequest,
    ) -> Result<String, StorageError> {
        explain_statement(&self.store, actor, list_query(filter, page)).await
    }
}

/// The stored form of a start request, compared when its idempotency key comes again.
fn idempotency_request(request: &StartRun) -> serde_json::Value {
    let version_number = request.version_number.map(|number| number.get());
    json!({"input": request.input, "version_number": version_number})
}

/// The run an idempotency key started, and whether it was started with the same request.
#[derive(Debug, FromQueryResult)]
struct KeyedRun {
    id: Uuid,
    same: Option<bool>,
}

/// Finds the run the actor started with `key`: the run when `request` matches the one it was
/// started with, a mismatch error when it does not, `None` when the key is new.
async fn replay(
    conn: &impl ConnectionTrait,
    actor: UserId,
    key: &IdempotencyKey,
    request: &serde_json::Value,
) -> Result<Option<Started>, StartError> {
    let Some(keyed) = executions::Entity::find()
        .select_only()
        .column(executions::Column::Id)
        .column_as(
            executions::Column::IdempotencyRequest
                .into_expr()
                .eq(Expr::val(request.clone())),
            "same",
        )
        .filter(executions::Column::TriggeredBy.eq(actor.as_uuid()))
        .filter(executions::Column::IdempotencyKey.eq(key.as_str()))
        .into_model::<KeyedRun>()
        .one(conn)
        .await
        .map_err(storage("looking up an idempotency key"))?
    else {
        return Ok(None);
    };
    if keyed.same != Some(true) {
        return Err(StartError::IdempotencyMismatch);
    }
    let execution = read_execution(conn, ExecutionId::from_uuid(keyed.id))
        .await?
        .ok_or_else(|| {
            StorageError::new(
                "replaying an idempotent start",
                "the run of an idempotency key is not visible",
            )
        })?;
    Ok(Some(Started {
        execution,
        replayed: true,
    }))
}

/// A run list: only the conditions given, so each query is planned for the indexes it can use.
fn list_query(filter: &ExecutionFilter, page: PageRequest) -> sea_orm::Statement {
    let mut select = runs();
    if let Some(workflow) = filter.workflow {
        select = select.filter(executions::Column::WorkflowId.eq(workflow.as_uuid()));
    }
    if let Some(status) = filter.status {
        select = select.filter(executions::Column::Status.eq(StoredStatus::from(status)));
    }
    if let Some(user) = filter.triggered_by {
        select = select.filter(executions::Column::TriggeredBy.eq(user.as_uuid()));
    }
    if let Some(from) = filter.created_from {
        select = select.filter(executions::Column::CreatedAt.gte(from));
    }
    if let Some(before) = filter.created_before {
        select = select.filter(executions::Column::CreatedAt.lt(before));
    }
    newest_first(
        select,
        executions::Column::CreatedAt,
        executions::Column::Id,
        page,
    )
    .into_partial_model::<RunRow>()
    .into_statement(DbBackend::Postgres)
}

/// The id a start's insert returned, when it inserted.
#[derive(Debug, FromQueryResult)]
struct Inserted {
    id: Uuid,
}

/// A new run of `version` of `workflow` by `user`, pending, unless the user already started one
/// with the same idempotency key (`ON CONFLICT` on the partial unique index over
/// `(triggered_by, idempotency_key)`: then nothing is inserted and nothing returned).
fn insert_run(
    workflow: WorkflowId,
    version: Uuid,
    user: UserId,
    request: &StartRun,
    stored_request: &serde_json::Value,
) -> sea_orm::Statement {
    let run = executions::ActiveModel {
        workflow_id: ActiveValue::Set(workflow.as_uuid()),
        workflow_version_id: ActiveValue::Set(version),
        triggered_by: ActiveValue::Set(user.as_uuid()),
        status: ActiveValue::Set(Some(StoredStatus::Pending)),
        input_data: ActiveValue::Set(Some(serde_json::Value::Object(request.input.clone()))),
        metadata: ActiveValue::Set(Some(json!({}))),
        idempotency_key: ActiveValue::Set(
            request
                .idempotency_key
                .as_ref()
                .map(|key| key.as_str().to_owned()),
        ),
        idempotency_request: ActiveValue::Set(
            request
                .idempotency_key
                .as_ref()
                .map(|_| stored_request.clone()),
        ),
        ..Default::default()
    };
    let mut insert = executions::Entity::insert(run).into_query();
    insert
        .on_conflict(
            OnConflict::columns([
                executions::Column::TriggeredBy,
                executions::Column::IdempotencyKey,
            ])
            .target_and_where(executions::Column::IdempotencyKey.is_not_null())
            .do_nothing()
            .to_owned(),
        )
        .returning_col(executions::Column::Id);
    StatementBuilder::build(&insert, &DbBackend::Postgres)
}

/// Locks a run for a decision and reads who started it and, when the caller may see the
/// workflow, who owns it (a listed approver sees the run, not its workflow: hence the outer
/// join). Only the run's row is locked.
#[derive(Debug, FromQueryResult)]
struct DecisionRow {
    status: Option<StoredStatus>,
    waiting_step_id: Option<Uuid>,
    triggered_by: Uuid,
    owner: Option<Uuid>,
}

/// The workflow a start reads: its status and current version, locked `FOR KEY SHARE` so it
/// cannot be deleted while the run is written.
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "workflows::Entity")]
struct WorkflowToRun {
    status: Option<StoredWorkflowStatus>,
    current_version_id: Option<Uuid>,
}

/// The version a start runs: its id and definition.
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "workflow_versions::Entity")]
struct VersionRow {
    id: Uuid,
    definition: serde_json::Value,
}

/// A row of the statistics view, which has no entity: the view is read through `workflows`'
/// visibility (ADR 0002 §15) and is not a table sea-orm-cli generates.
#[derive(Debug, FromQueryResult)]
struct StatsRow {
    workflow_id: Uuid,
    name: String,
    total_executions: i64,
    successful_count: i64,
    failed_count: i64,
    avg_duration_ms: Option<f64>,
}

/// A page of the per-workflow statistics the caller may see, by name and id, after the workflow
/// named `$1` with id `$2` (from the start when `$1` is NULL), at most `$3` rows. Raw: the view is
/// not an entity.
const WORKFLOW_STATS: &str = "SELECT workflow_id, workflow_name AS name, total_executions, \
     successful_count, failed_count, avg_duration_ms::float8 AS avg_duration_ms \
     FROM visible_workflow_execution_stats \
     WHERE $1::text IS NULL OR (workflow_name, workflow_id) > ($1::text, $2::uuid) \
     ORDER BY workflow_name, workflow_id LIMIT $3";

impl ExecutionRepository for PgExecutions {
    async fn start(
        &self,
        actor: &Actor,
        workflow: WorkflowId,
        request: &StartRun,
    ) -> Result<Started, StartError> {
        let user = actor.user_id().ok_or_else(|| {
            StorageError::new("starting a run", "a run is started by a signed-in user")
        })?;
        let stored_request = idempotency_request(request);
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        if let Some(key) = &request.idempotency_key
            && let Some(started) = replay(conn, user, key, &stored_request).await?
        {
            commit(txn).await?;
            return Ok(started);
        }
        let found = workflows::Entity::find_by_id(workflow.as_uuid())
            .lock(LockType::KeyShare)
            .into_partial_model::<WorkflowToRun>()
            .one(conn)
            .await
            .map_err(storage("reading the workflow to run"))?
            .ok_or(StartError::WorkflowNotFound)?;
        let versions = workflow_versions::Entity::find();
        let version = match version_to_run(
            found
                .status
                .map_or(WorkflowStatus::Draft, WorkflowStatus::from),
            found.current_version_id.map(WorkflowVersionId::from_uuid),
            request.version_number,
        )? {
            VersionToRun::Numbered(number) => versions
                .filter(workflow_versions::Column::WorkflowId.eq(workflow.as_uuid()))
                .filter(workflow_versions::Column::VersionNumber.eq(number.as_i32()))
                .into_partial_model::<VersionRow>()
                .one(conn)
                .await
                .map_err(storage("reading the version to run"))?
                .ok_or(StartError::VersionNotFound(number))?,
            VersionToRun::Current(current) => versions
                .filter(workflow_versions::Column::Id.eq(current.as_uuid()))
                .into_partial_model::<VersionRow>()
                .one(conn)
                .await
                .map_err(storage("reading the version to run"))?
                .ok_or(StartError::NoCurrentVersion)?,
        };
        // Published definitions were checked; one that no longer parses is storage's fault.
        let definition = WorkflowDefinition::parse(&version.definition).map_err(|problems| {
            StorageError::new(
                "reading the definition to run",
                format!("a published definition does not parse: {problems:?}"),
            )
        })?;
        let inserted = Inserted::find_by_statement(insert_run(
            workflow,
            version.id,
            user,
            request,
            &stored_request,
        ))
        .one(conn)
        .await
        .map_err(storage("starting a run"))?;
        let Some(inserted) = inserted else {
            // A concurrent request with the same key won the race; it has committed by now.
            let Some(key) = &request.idempotency_key else {
                return Err(StorageError::new("starting a run", "no row was inserted").into());
            };
            let started = replay(conn, user, key, &stored_request)
                .await?
                .ok_or_else(|| StorageError::new("starting a run", "no row was inserted"))?;
            commit(txn).await?;
            return Ok(started);
        };
        let id = ExecutionId::from_uuid(inserted.id);
        // The run's plan, one pending step per step of the definition, so it shows before it runs.
        let steps = definition
            .steps()
            .iter()
            .enumerate()
            .map(|(index, step)| {
                Ok(execution_steps::ActiveModel {
                    execution_id: ActiveValue::Set(id.as_uuid()),
                    step_name: ActiveValue::Set(step.name.as_str().to_owned()),
                    step_index: ActiveValue::Set(
                        i32::try_from(index)
                            .map_err(|error| StorageError::new("creating a run's steps", error))?,
                    ),
                    step_type: ActiveValue::Set(step.kind.label().to_owned()),
                    status: ActiveValue::Set(Some(StoredStepStatus::Pending)),
                    ..Default::default()
                })
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        if !steps.is_empty() {
            execution_steps::Entity::insert_many(steps)
                .exec_without_returning(conn)
                .await
                .map_err(storage("creating a run's steps"))?;
        }
        let execution = read_execution(conn, id)
            .await?
            .ok_or_else(|| StorageError::new("starting a run", "the new run is not visible"))?;
        insert_logs(
            conn,
            id,
            &[run_event(
                ExecutionStatus::Pending,
                "Execution started",
                json!({
                    "triggered_by": user.as_uuid(),
                    "version_number": execution.version_number.map(|number| number.get()),
                }),
            )],
        )
        .await?;
        audit::record(
            conn,
            AuditAction::Execute,
            "execution",
            Some(id.as_uuid()),
            json!({
                "workflow_id": workflow.as_uuid(),
                "workflow_version_id": version.id,
                "version_number": execution.version_number.map(|number| number.get()),
                "idempotency_key": request.idempotency_key.as_ref().map(IdempotencyKey::as_str),
            }),
        )
        .await?;
        commit(txn).await?;
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
        read_rows_page::<RunRow, _>(
            &self.store,
            actor,
            list_query(filter, page),
            page,
            "listing executions",
            Execution::try_from,
            Execution::keyset,
        )
        .await
    }

    async fn get(
        &self,
        actor: &Actor,
        id: ExecutionId,
    ) -> Result<(Execution, Vec<ExecutionStep>), ExecutionQueryError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let execution = read_execution(conn, id)
            .await?
            .ok_or(ExecutionQueryError::NotFound)?;
        let steps = read_steps_of(conn, vec![id.as_uuid()]).await?;
        commit(txn).await?;
        Ok((execution, steps))
    }

    async fn logs(
        &self,
        actor: &Actor,
        id: ExecutionId,
        filter: LogFilter,
        page: PageRequest<i64>,
    ) -> Result<LogPage, ExecutionQueryError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let visible = executions::Entity::find_by_id(id.as_uuid())
            .select_only()
            .column(executions::Column::Id)
            .into_tuple::<Uuid>()
            .one(conn)
            .await
            .map_err(storage("reading an execution"))?;
        if visible.is_none() {
            return Err(ExecutionQueryError::NotFound);
        }
        let mut lines = execution_logs::Entity::find()
            .filter(execution_logs::Column::ExecutionId.eq(id.as_uuid()));
        if let Some(level) = filter.min_level {
            // The enum's order is its severity.
            lines = lines.filter(execution_logs::Column::Level.gte(StoredLevel::from(level)));
        }
        if let Some(step) = filter.step {
            lines = lines.filter(execution_logs::Column::ExecutionStepId.eq(step.as_uuid()));
        }
        if let Some(after) = page.after {
            lines = lines.filter(execution_logs::Column::Id.gt(after));
        }
        let rows = lines
            .order_by_asc(execution_logs::Column::Id)
            .limit(u64::from(page.limit.get()) + 1)
            .all(conn)
            .await
            .map_err(storage("reading log lines"))?;
        commit(txn).await?;
        let lines = rows.into_iter().map(log_from).collect();
        Ok(Page::from_overfetched(lines, page.limit, |line| line.id))
    }

    async fn events(
        &self,
        actor: &Actor,
        id: ExecutionId,
        after: i64,
        limit: u16,
    ) -> Result<(ExecutionStatus, Vec<LogEntry>), ExecutionQueryError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let state: RunState = executions::Entity::find_by_id(id.as_uuid())
            .into_partial_model::<StateRow>()
            .one(conn)
            .await
            .map_err(storage("reading an execution's status"))?
            .ok_or(ExecutionQueryError::NotFound)?
            .into();
        let lines = execution_logs::Entity::find()
            .filter(execution_logs::Column::ExecutionId.eq(id.as_uuid()))
            .filter(execution_logs::Column::Id.gt(after))
            .order_by_asc(execution_logs::Column::Id)
            .limit(u64::from(limit))
            .all(conn)
            .await
            .map_err(storage("reading an execution's events"))?
            .into_iter()
            .map(log_from)
            .collect();
        commit(txn).await?;
        Ok((state.status, lines))
    }

    async fn control(
        &self,
        actor: &Actor,
        id: ExecutionId,
        steering: Steering,
    ) -> Result<Execution, ControlError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let current = lock_run(conn, id).await?.ok_or(ControlError::NotFound)?;
        let next = current.apply(steering.action())?;
        let by = json!({"by": actor.user_id().map(|user| user.as_uuid())});
        let this_run = executions::Column::Id.eq(id.as_uuid());
        let mut lines = Vec::new();
        match steering {
            Steering::Cancel => {
                // The step in flight is interrupted: its worker learns of it from the
                // notification this status change sends, and its later writes are refused.
                let interrupted = execution_steps::Entity::update_many()
                    .col_expr(
                        execution_steps::Column::Status,
                        Expr::val(StoredStepStatus::Failed),
                    )
                    .col_expr(
                        execution_steps::Column::ErrorMessage,
                        Expr::val("interrupted: the execution was cancelled"),
                    )
                    .col_expr(
                        execution_steps::Column::CompletedAt,
                        Expr::current_timestamp(),
                    )
                    .filter(execution_steps::Column::ExecutionId.eq(id.as_uuid()))
                    .filter(execution_steps::Column::Status.eq(StoredStepStatus::Running))
                    .exec_with_returning(conn)
                    .await
                    .map_err(storage("interrupting a cancelled run's step"))?;
                for step in interrupted {
                    let step = step_from(step)?;
                    lines.push(step_event(
                        &step,
                        StepStatus::Failed,
                        format!(
                            "Step '{}' interrupted: the execution was cancelled",
                            step.name
                        ),
                        json!({}),
                    ));
                }
                stop_waiting(executions::Entity::update_many())
                    .col_expr(
                        executions::Column::Status,
                        Expr::val(StoredStatus::Cancelled),
                    )
                    .col_expr(executions::Column::CompletedAt, Expr::current_timestamp())
                    .col_expr(
                        executions::Column::StartedAt,
                        Func::coalesce([
                            executions::Column::StartedAt.into_expr(),
                            Expr::current_timestamp(),
                        ])
                        .into(),
                    )
                    .col_expr(executions::Column::ErrorMessage, Expr::val("cancelled"))
                    .filter(this_run)
                    .exec(conn)
                    .await
                    .map_err(storage("cancelling an execution"))?;
                audit::record(
                    conn,
                    AuditAction::Cancel,
                    "execution",
                    Some(id.as_uuid()),
                    json!({"from_status": current.status.as_str()}),
                )
                .await?;
                lines.push(run_event(next.status, "Execution cancelled", by));
            }
            Steering::Pause => {
                set_status(conn, id, ExecutionStatus::Paused, "pausing an execution").await?;
                let message = if current.status == ExecutionStatus::Running {
                    "Execution paused: it stops after the step in flight"
                } else {
                    "Execution paused"
                };
                lines.push(run_event(next.status, message, by));
            }
            Steering::Resume => {
                set_status(conn, id, ExecutionStatus::Pending, "resuming an execution").await?;
                lines.push(run_event(next.status, "Execution resumed", by));
            }
            Steering::Retry => {
                execution_steps::Entity::update_many()
                    .col_expr(
                        execution_steps::Column::Status,
                        Expr::val(StoredStepStatus::Pending),
                    )
                    .col_expr(execution_steps::Column::ErrorMessage, Expr::null())
                    .col_expr(execution_steps::Column::CompletedAt, Expr::null())
                    .col_expr(
                        execution_steps::Column::DurationMs,
                        Expr::val(Option::<i32>::None),
                    )
                    .col_expr(execution_steps::Column::OutputData, Expr::null())
                    .filter(execution_steps::Column::ExecutionId.eq(id.as_uuid()))
                    .filter(execution_steps::Column::Status.eq(StoredStepStatus::Failed))
                    .exec(conn)
                    .await
                    .map_err(storage("putting a failed step back in line"))?;
                let_go(executions::Entity::update_many())
                    .col_expr(executions::Column::Status, Expr::val(StoredStatus::Pending))
                    .col_expr(
                        executions::Column::RetryCount,
                        Func::coalesce([executions::Column::RetryCount.into_expr(), Expr::val(0)])
                            .add(1),
                    )
                    .col_expr(executions::Column::ErrorMessage, Expr::null())
                    .col_expr(executions::Column::OutputData, Expr::null())
                    .col_expr(executions::Column::CompletedAt, Expr::null())
                    .col_expr(
                        executions::Column::DurationMs,
                        Expr::val(Option::<i32>::None),
                    )
                    .col_expr(executions::Column::Recoveries, Expr::val(0))
                    .filter(this_run)
                    .exec(conn)
                    .await
                    .map_err(storage("retrying an execution"))?;
                lines.push(run_event(
                    next.status,
                    "Execution retried from its failed step",
                    by,
                ));
            }
        }
        insert_logs(conn, id, &lines).await?;
        let execution = read_execution(conn, id)
            .await?
            .ok_or(ControlError::NotFound)?;
        commit(txn).await?;
        Ok(execution)
    }

    async fn decide<F>(
        &self,
        actor: &Actor,
        id: ExecutionId,
        step_id: ExecutionStepId,
        decision: &DecisionRequest,
        judge: F,
    ) -> Result<Execution, DecisionError>
    where
        F: FnOnce(&ApprovalContext) -> Result<Judged, DecisionError> + Send,
    {
        let user = actor.user_id().ok_or(DecisionError::NotFound)?;
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        // Row level security decides who may see the run: its starter, its workflow's owner, a
        // superuser, or a user asked to decide one of its approval steps (migration 000018).
        let workflow: RelationDef = executions::Entity::belongs_to(workflows::Entity)
            .from(executions::Column::WorkflowId)
            .to(workflows::Column::Id)
            .into();
        let mut locking = executions::Entity::find_by_id(id.as_uuid())
            .select_only()
            .columns([
                executions::Column::Status,
                executions::Column::WaitingStepId,
                executions::Column::TriggeredBy,
            ])
            .column_as(workflows::Column::CreatedBy, "owner")
            .join(JoinType::LeftJoin, workflow);
        // The run's row only: the workflow's side of the outer join cannot be locked.
        QueryTrait::query(&mut locking)
            .lock_with_tables(LockType::NoKeyUpdate, [executions::Entity]);
        let row = locking
            .into_model::<DecisionRow>()
            .one(conn)
            .await
            .map_err(storage("locking an execution"))?
            .ok_or(DecisionError::NotFound)?;
        let step = execution_steps::Entity::find_by_id(step_id.as_uuid())
            .filter(execution_steps::Column::ExecutionId.eq(id.as_uuid()))
            .one(conn)
            .await
            .map_err(storage("reading an approval step"))?;
        let context = ApprovalContext {
            state: run_state(row.status, row.waiting_step_id),
            triggered_by: UserId::from_uuid(row.triggered_by),
            owner: row.owner.map(UserId::from_uuid),
            step: step.map(step_from).transpose()?,
        };
        let Judged { step, next } = judge(&context)?;
        let record = json!({
            "decision": decision.decision.as_str(),
            "comment": decision.comment,
            "decided_by": user.as_uuid(),
            "decided_at": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        });
        let (step_status, error) = match decision.decision {
            Decision::Approve => (StepStatus::Completed, None),
            Decision::Reject => (
                StepStatus::Failed,
                Some(match &decision.comment {
                    Some(comment) => format!("step '{}' was rejected: {comment}", step.name),
                    None => format!("step '{}' was rejected", step.name),
                }),
            ),
        };
        execution_steps::Entity::update_many()
            .col_expr(
                execution_steps::Column::Status,
                Expr::val(StoredStepStatus::from(step_status)),
            )
            .col_expr(
                execution_steps::Column::OutputData,
                Expr::val(record.clone()),
            )
            .col_expr(
                execution_steps::Column::ErrorMessage,
                Expr::val(error.clone()),
            )
            .col_expr(
                execution_steps::Column::CompletedAt,
                Expr::current_timestamp(),
            )
            .filter(execution_steps::Column::Id.eq(step.id.as_uuid()))
            .exec(conn)
            .await
            .map_err(storage("recording a decision on a step"))?;
        let mut run = stop_waiting(executions::Entity::update_many()).col_expr(
            executions::Column::Status,
            Expr::val(StoredStatus::from(next.status)),
        );
        if let Some(error) = &error {
            run = run
                .col_expr(executions::Column::ErrorMessage, Expr::val(error.clone()))
                .col_expr(executions::Column::CompletedAt, Expr::current_timestamp());
        }
        run.filter(executions::Column::Id.eq(id.as_uuid()))
            .exec(conn)
            .await
            .map_err(storage("recording a decision on a run"))?;
        let lines = match decision.decision {
            Decision::Approve => vec![
                step_event(
                    &step,
                    StepStatus::Completed,
                    format!("Step '{}' approved", step.name),
                    record.clone(),
                ),
                run_event(next.status, "Execution continues after approval", json!({})),
            ],
            Decision::Reject => vec![
                step_event(
                    &step,
                    StepStatus::Failed,
                    format!("Step '{}' rejected", step.name),
                    record.clone(),
                ),
                run_event(next.status, error.unwrap_or_default(), json!({})),
            ],
        };
        insert_logs(conn, id, &lines).await?;
        audit::record(
            conn,
            AuditAction::Update,
            "execution_step",
            Some(step.id.as_uuid()),
            json!({
                "execution_id": id.as_uuid(),
                "step": step.name,
                "decision": decision.decision.as_str(),
                "comment": decision.comment,
            }),
        )
        .await?;
        let execution = read_execution(conn, id)
            .await?
            .ok_or(DecisionError::NotFound)?;
        commit(txn).await?;
        Ok(execution)
    }

    async fn stats(
        &self,
        actor: &Actor,
        page: PageRequest<StatsPosition>,
    ) -> Result<Page<WorkflowStats, StatsPosition>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        // The materialized view has no row level security of its own and the request role may
        // not read it; this view joins it to workflows, whose policies decide what comes back.
        let after_name = page
            .after
            .as_ref()
            .map(|after| after.workflow_name().to_owned());
        let after_id = page
            .after
            .as_ref()
            .map(|after| after.workflow_id().as_uuid());
        let rows = StatsRow::find_by_statement(statement(
            WORKFLOW_STATS,
            [
                after_name.into(),
                after_id.into(),
                (i64::from(page.limit.get()) + 1).into(),
            ],
        ))
        .all(txn.connection())
        .await
        .map_err(storage("reading workflow statistics"))?;
        commit(txn).await?;
        let stats = rows
            .into_iter()
            .map(|row| WorkflowStats {
                workflow_id: WorkflowId::from_uuid(row.workflow_id),
                workflow_name: row.name,
                total_executions: row.total_executions,
                successful_count: row.successful_count,
                failed_count: row.failed_count,
                avg_duration_ms: row.avg_duration_ms,
            })
            .collect();
        Ok(Page::from_overfetched(stats, page.limit, StatsPosition::of))
    }
}

/// `update` also ends the run's wait for an approval (`waiting_step_id`, `wake_at`).
pub(crate) fn stop_waiting(
    update: UpdateMany<executions::Entity>,
) -> UpdateMany<executions::Entity> {
    update
        .col_expr(executions::Column::WaitingStepId, Expr::null())
        .col_expr(executions::Column::WakeAt, Expr::null())
}

/// `update` also lets go of the run's lease (`lease_owner`, `lease_expires_at`).
pub(crate) fn let_go(update: UpdateMany<executions::Entity>) -> UpdateMany<executions::Entity> {
    update
        .col_expr(executions::Column::LeaseOwner, Expr::null())
        .col_expr(executions::Column::LeaseExpiresAt, Expr::null())
}

/// Sets run `id`'s status (the caller holds its lock and checked the transition).
pub(crate) async fn set_status(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
    status: ExecutionStatus,
    context: &'static str,
) -> Result<(), StorageError> {
    executions::Entity::update_many()
        .col_expr(
            executions::Column::Status,
            Expr::val(StoredStatus::from(status)),
        )
        .filter(executions::Column::Id.eq(id.as_uuid()))
        .exec(conn)
        .await
        .map_err(storage(context))?;
    Ok(())
}
