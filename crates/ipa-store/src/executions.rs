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
    StartRun, Started, Steering, StepStatus, VersionToRun, WorkflowStats, run_event, step_event,
    version_to_run,
};
use ipa_kernel::{
    Actor, ExecutionId, ExecutionStepId, Page, PageRequest, StorageError, UserId, WorkflowId,
    WorkflowVersionId,
};
use ipa_workflow::WorkflowDefinition;
use sea_orm::{ConnectionTrait, QueryResult, Value};
use serde_json::json;
use uuid::Uuid;

use crate::audit;
use crate::sql::{ListQuery, commit, explain, from_store, read_page, statement, storage};
use crate::store::Store;
use crate::workflows::version_number;

/// The columns of an [`Execution`] from `executions e` and its version `v`.
pub(crate) const EXECUTION_COLUMNS: &str = "e.id, e.workflow_id, e.workflow_version_id, \
     v.version_number, e.triggered_by, coalesce(e.status, 'pending')::text AS status, \
     e.waiting_step_id, coalesce(e.input_data, '{}') AS input_data, e.output_data, \
     e.error_message, e.started_at, e.completed_at, e.duration_ms::bigint AS duration_ms, \
     coalesce(e.retry_count, 0) AS retry_count, e.recoveries, \
     coalesce(e.created_at, now()) AS created_at, \
     coalesce(e.updated_at, e.created_at, now()) AS updated_at";

/// `executions e` with its version, for [`EXECUTION_COLUMNS`].
pub(crate) const EXECUTION_FROM: &str =
    "executions e LEFT JOIN workflow_versions v ON v.id = e.workflow_version_id";

/// The columns of an [`ExecutionStep`] from `execution_steps s`.
pub(crate) const STEP_COLUMNS: &str = "s.id, s.execution_id, s.step_name, s.step_index, \
     s.step_type, coalesce(s.status, 'pending')::text AS status, s.input_data, s.output_data, \
     s.error_message, s.started_at, s.completed_at, s.duration_ms::bigint AS duration_ms, \
     coalesce(s.retry_count, 0) AS retry_count";

/// The columns of a [`LogEntry`] from `execution_logs`.
const LOG_COLUMNS: &str = "id, execution_id, execution_step_id, level::text AS level, message, \
     coalesce(context, '{}') AS context, created_at";

/// Locks a run's row for a change (see the module's comment on ordering) and reads its state.
pub(crate) const LOCK_RUN: &str = "SELECT coalesce(status, 'pending')::text AS status, \
     waiting_step_id FROM executions WHERE id = $1 FOR NO KEY UPDATE";

/// Locks a run for a decision and reads who started it and, when the caller may see the
/// workflow, who owns it (a listed approver sees the run, not its workflow: hence the outer join).
/// Raw because `FOR NO KEY UPDATE OF e` locks only the run's row, not the workflow's.
const LOCK_RUN_FOR_DECISION: &str = "SELECT coalesce(e.status, 'pending')::text AS status, \
     e.waiting_step_id, e.triggered_by, w.created_by AS owner \
     FROM executions e LEFT JOIN workflows w ON w.id = e.workflow_id \
     WHERE e.id = $1 FOR NO KEY UPDATE OF e";

/// Parses a stored label (a status, a level), reporting a stranger as storage's fault.
pub(crate) fn parse_label<T: std::str::FromStr>(
    text: &str,
    context: &'static str,
) -> Result<T, StorageError>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    text.parse::<T>()
        .map_err(|error| StorageError::new(context, error))
}

/// The run state of a row with `status` and `waiting_step_id`.
pub(crate) fn state_from_row(row: &QueryResult) -> Result<RunState, StorageError> {
    const CONTEXT: &str = "reading a run's state";
    let get = storage(CONTEXT);
    let status: String = row.try_get("", "status").map_err(&get)?;
    let waiting: Option<Uuid> = row.try_get("", "waiting_step_id").map_err(&get)?;
    Ok(RunState {
        status: parse_label(&status, CONTEXT)?,
        awaiting: waiting.map(ExecutionStepId::from_uuid),
    })
}

pub(crate) fn execution_from_row(row: &QueryResult) -> Result<Execution, StorageError> {
    const CONTEXT: &str = "reading an execution row";
    let get = storage(CONTEXT);
    Ok(Execution {
        id: ExecutionId::from_uuid(row.try_get("", "id").map_err(&get)?),
        workflow_id: WorkflowId::from_uuid(row.try_get("", "workflow_id").map_err(&get)?),
        workflow_version_id: WorkflowVersionId::from_uuid(
            row.try_get("", "workflow_version_id").map_err(&get)?,
        ),
        version_number: row
            .try_get::<Option<i32>>("", "version_number")
            .map_err(&get)?
            .map(version_number)
            .transpose()?,
        triggered_by: UserId::from_uuid(row.try_get("", "triggered_by").map_err(&get)?),
        state: state_from_row(row)?,
        input: row.try_get("", "input_data").map_err(&get)?,
        output: row.try_get("", "output_data").map_err(&get)?,
        error: row.try_get("", "error_message").map_err(&get)?,
        started_at: row.try_get("", "started_at").map_err(&get)?,
        completed_at: row.try_get("", "completed_at").map_err(&get)?,
        duration_ms: row.try_get("", "duration_ms").map_err(&get)?,
        retry_count: row.try_get("", "retry_count").map_err(&get)?,
        recoveries: row.try_get("", "recoveries").map_err(&get)?,
        created_at: row.try_get("", "created_at").map_err(&get)?,
        updated_at: row.try_get("", "updated_at").map_err(&get)?,
    })
}

pub(crate) fn step_from_row(row: &QueryResult) -> Result<ExecutionStep, StorageError> {
    const CONTEXT: &str = "reading an execution step row";
    let get = storage(CONTEXT);
    let status: String = row.try_get("", "status").map_err(&get)?;
    let step_type: String = row.try_get("", "step_type").map_err(&get)?;
    Ok(ExecutionStep {
        id: ExecutionStepId::from_uuid(row.try_get("", "id").map_err(&get)?),
        execution_id: ExecutionId::from_uuid(row.try_get("", "execution_id").map_err(&get)?),
        name: row.try_get("", "step_name").map_err(&get)?,
        index: row.try_get("", "step_index").map_err(&get)?,
        kind: parse_label(&step_type, CONTEXT)?,
        status: parse_label(&status, CONTEXT)?,
        input: row.try_get("", "input_data").map_err(&get)?,
        output: row.try_get("", "output_data").map_err(&get)?,
        error: row.try_get("", "error_message").map_err(&get)?,
        started_at: row.try_get("", "started_at").map_err(&get)?,
        completed_at: row.try_get("", "completed_at").map_err(&get)?,
        duration_ms: row.try_get("", "duration_ms").map_err(&get)?,
        retry_count: row.try_get("", "retry_count").map_err(&get)?,
    })
}

fn log_from_row(row: &QueryResult) -> Result<LogEntry, StorageError> {
    const CONTEXT: &str = "reading a log line";
    let get = storage(CONTEXT);
    let level: String = row.try_get("", "level").map_err(&get)?;
    let step: Option<Uuid> = row.try_get("", "execution_step_id").map_err(&get)?;
    Ok(LogEntry {
        id: row.try_get("", "id").map_err(&get)?,
        execution_id: ExecutionId::from_uuid(row.try_get("", "execution_id").map_err(&get)?),
        step_id: step.map(ExecutionStepId::from_uuid),
        level: parse_label(&level, CONTEXT)?,
        message: row.try_get("", "message").map_err(&get)?,
        context: row.try_get("", "context").map_err(&get)?,
        created_at: row.try_get("", "created_at").map_err(&get)?,
    })
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
        &format!("INSERT INTO execution_logs {INSERT_LOGS_FROM_BATCH}"),
        [execution.as_uuid().into(), log_batch(lines).into()],
    ))
    .await
    .map_err(storage("writing log lines"))?;
    Ok(())
}

/// The columns and rows of an `INSERT INTO execution_logs` of a run's (`$1`) lines given as one
/// JSON array ([`log_batch`], `$2`), written in their order so their ids follow it.
pub(crate) const INSERT_LOGS_FROM_BATCH: &str = "(execution_id, execution_step_id, level, \
     message, context) \
     SELECT $1, (l.line->>'step_id')::uuid, (l.line->>'level')::log_level, \
            l.line->>'message', coalesce(l.line->'context', '{}') \
     FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS l(line, position) \
     ORDER BY l.position";

/// `lines` as one JSON array, for [`INSERT_LOGS_FROM_BATCH`]: one parameter however many lines.
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
    conn.query_one_raw(statement(
        &format!("SELECT {EXECUTION_COLUMNS} FROM {EXECUTION_FROM} WHERE e.id = $1"),
        [id.as_uuid().into()],
    ))
    .await
    .map_err(storage("reading an execution"))?
    .as_ref()
    .map(execution_from_row)
    .transpose()
}

/// Reads a run's steps in order.
pub(crate) async fn read_steps(
    conn: &impl ConnectionTrait,
    id: ExecutionId,
) -> Result<Vec<ExecutionStep>, StorageError> {
    conn.query_all_raw(statement(
        &format!(
            "SELECT {STEP_COLUMNS} FROM execution_steps s WHERE s.execution_id = $1 \
             ORDER BY s.step_index"
        ),
        [id.as_uuid().into()],
    ))
    .await
    .map_err(storage("reading execution steps"))?
    .iter()
    .map(step_from_row)
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
        let (sql, values) = list_query(filter, page);
        explain(&self.store, actor, &sql, values).await
    }
}

/// The stored form of a start request, compared when its idempotency key comes again.
fn idempotency_request(request: &StartRun) -> serde_json::Value {
    let version_number = request.version_number.map(|number| number.get());
    json!({"input": request.input, "version_number": version_number})
}

/// Finds the run the actor started with `key`: the run when `request` matches the one it was
/// started with, a mismatch error when it does not, `None` when the key is new.
async fn replay(
    conn: &impl ConnectionTrait,
    actor: UserId,
    key: &IdempotencyKey,
    request: &serde_json::Value,
) -> Result<Option<Started>, StartError> {
    let Some(row) = conn
        .query_one_raw(statement(
            "SELECT id, idempotency_request = $3::jsonb AS same FROM executions \
             WHERE triggered_by = $1 AND idempotency_key = $2",
            [
                actor.as_uuid().into(),
                key.as_str().into(),
                request.clone().into(),
            ],
        ))
        .await
        .map_err(storage("looking up an idempotency key"))?
    else {
        return Ok(None);
    };
    let get = storage("reading an idempotency key's run");
    let same: Option<bool> = row.try_get("", "same").map_err(&get)?;
    if same != Some(true) {
        return Err(StartError::IdempotencyMismatch);
    }
    let id = ExecutionId::from_uuid(row.try_get("", "id").map_err(&get)?);
    let execution = read_execution(conn, id).await?.ok_or_else(|| {
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

fn list_query(filter: &ExecutionFilter, page: PageRequest) -> (String, Vec<Value>) {
    let mut query = ListQuery::default();
    if let Some(workflow) = filter.workflow {
        let workflow = query.bind(workflow.as_uuid());
        query.condition(format!("e.workflow_id = ${workflow}"));
    }
    if let Some(status) = filter.status {
        let status = query.bind(status.as_str());
        query.condition(format!("e.status = ${status}::execution_status"));
    }
    if let Some(user) = filter.triggered_by {
        let user = query.bind(user.as_uuid());
        query.condition(format!("e.triggered_by = ${user}"));
    }
    if let Some(from) = filter.created_from {
        let from = query.bind(from);
        query.condition(format!("e.created_at >= ${from}"));
    }
    if let Some(before) = filter.created_before {
        let before = query.bind(before);
        query.condition(format!("e.created_at < ${before}"));
    }
    query.newest_first(EXECUTION_COLUMNS, EXECUTION_FROM, "e.", page)
}

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
        let row = conn
            .query_one_raw(statement(
                "SELECT coalesce(status, 'draft')::text AS status, current_version_id \
                 FROM workflows WHERE id = $1 FOR KEY SHARE",
                [workflow.as_uuid().into()],
            ))
            .await
            .map_err(storage("reading the workflow to run"))?
            .ok_or(StartError::WorkflowNotFound)?;
        const CONTEXT: &str = "reading the workflow to run";
        let get = storage(CONTEXT);
        let status: String = row.try_get("", "status").map_err(&get)?;
        let current: Option<Uuid> = row.try_get("", "current_version_id").map_err(&get)?;
        let version = match version_to_run(
            parse_label(&status, CONTEXT)?,
            current.map(WorkflowVersionId::from_uuid),
            request.version_number,
        )? {
            VersionToRun::Numbered(number) => conn
                .query_one_raw(statement(
                    "SELECT id, definition FROM workflow_versions \
                     WHERE workflow_id = $1 AND version_number = $2",
                    [workflow.as_uuid().into(), number.as_i32().into()],
                ))
                .await
                .map_err(storage("reading the version to run"))?
                .ok_or(StartError::VersionNotFound(number))?,
            VersionToRun::Current(current) => conn
                .query_one_raw(statement(
                    "SELECT id, definition FROM workflow_versions WHERE id = $1",
                    [current.as_uuid().into()],
                ))
                .await
                .map_err(storage("reading the version to run"))?
                .ok_or(StartError::NoCurrentVersion)?,
        };
        let version_id: Uuid = version.try_get("", "id").map_err(&get)?;
        let document: serde_json::Value = version.try_get("", "definition").map_err(&get)?;
        // Published definitions were checked; one that no longer parses is storage's fault.
        let definition = WorkflowDefinition::parse(&document).map_err(|problems| {
            StorageError::new(
                "reading the definition to run",
                format!("a published definition does not parse: {problems:?}"),
            )
        })?;
        let steps: Vec<serde_json::Value> = definition
            .steps()
            .iter()
            .map(|step| json!({"name": step.name.as_str(), "type": step.kind.label()}))
            .collect();
        let key = request
            .idempotency_key
            .as_ref()
            .map(|key| key.as_str().to_owned());
        let inserted = conn
            .query_one_raw(statement(
                "INSERT INTO executions (workflow_id, workflow_version_id, triggered_by, status, \
                     input_data, metadata, idempotency_key, idempotency_request) \
                 VALUES ($1, $2, $3, 'pending', $4, '{}', $5, $6) \
                 ON CONFLICT (triggered_by, idempotency_key) WHERE idempotency_key IS NOT NULL \
                 DO NOTHING RETURNING id",
                [
                    workflow.as_uuid().into(),
                    version_id.into(),
                    user.as_uuid().into(),
                    serde_json::Value::Object(request.input.clone()).into(),
                    key.into(),
                    request
                        .idempotency_key
                        .as_ref()
                        .map(|_| stored_request.clone())
                        .into(),
                ],
            ))
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
        let id = ExecutionId::from_uuid(inserted.try_get("", "id").map_err(&get)?);
        conn.execute_raw(statement(
            "INSERT INTO execution_steps (execution_id, step_name, step_index, step_type, status) \
             SELECT $1, s.step->>'name', (s.position - 1)::int, s.step->>'type', 'pending' \
             FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS s(step, position)",
            [id.as_uuid().into(), serde_json::Value::Array(steps).into()],
        ))
        .await
        .map_err(storage("creating a run's steps"))?;
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
            "execute",
            "execution",
            Some(id.as_uuid()),
            json!({
                "workflow_id": workflow.as_uuid(),
                "workflow_version_id": version_id,
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
        let query = list_query(filter, page);
        read_page(
            &self.store,
            actor,
            query,
            page,
            "listing executions",
            execution_from_row,
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
        let steps = read_steps(conn, id).await?;
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
        let visible = conn
            .query_one_raw(statement(
                "SELECT 1 AS one FROM executions WHERE id = $1",
                [id.as_uuid().into()],
            ))
            .await
            .map_err(storage("reading an execution"))?;
        if visible.is_none() {
            return Err(ExecutionQueryError::NotFound);
        }
        let mut conditions = vec!["execution_id = $1".to_owned()];
        let mut values: Vec<Value> = vec![id.as_uuid().into()];
        if let Some(level) = filter.min_level {
            values.push(level.as_str().into());
            // The enum's order is its severity.
            conditions.push(format!("level >= ${}::log_level", values.len()));
        }
        if let Some(step) = filter.step {
            values.push(step.as_uuid().into());
            conditions.push(format!("execution_step_id = ${}", values.len()));
        }
        if let Some(after) = page.after {
            values.push(after.into());
            conditions.push(format!("id > ${}", values.len()));
        }
        values.push(i64::from(page.limit.get() + 1).into());
        let sql = format!(
            "SELECT {LOG_COLUMNS} FROM execution_logs WHERE {} ORDER BY id LIMIT ${}",
            conditions.join(" AND "),
            values.len()
        );
        let rows = conn
            .query_all_raw(statement(&sql, values))
            .await
            .map_err(storage("reading log lines"))?;
        commit(txn).await?;
        let lines = rows
            .iter()
            .map(log_from_row)
            .collect::<Result<Vec<_>, _>>()?;
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
        let row = conn
            .query_one_raw(statement(
                "SELECT coalesce(status, 'pending')::text AS status, waiting_step_id \
                 FROM executions WHERE id = $1",
                [id.as_uuid().into()],
            ))
            .await
            .map_err(storage("reading an execution's status"))?
            .ok_or(ExecutionQueryError::NotFound)?;
        let status = state_from_row(&row)?.status;
        let lines = conn
            .query_all_raw(statement(
                &format!(
                    "SELECT {LOG_COLUMNS} FROM execution_logs \
                     WHERE execution_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                ),
                [id.as_uuid().into(), after.into(), i64::from(limit).into()],
            ))
            .await
            .map_err(storage("reading an execution's events"))?
            .iter()
            .map(log_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        commit(txn).await?;
        Ok((status, lines))
    }

    async fn control(
        &self,
        actor: &Actor,
        id: ExecutionId,
        steering: Steering,
    ) -> Result<Execution, ControlError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let row = conn
            .query_one_raw(statement(LOCK_RUN, [id.as_uuid().into()]))
            .await
            .map_err(storage("locking an execution"))?
            .ok_or(ControlError::NotFound)?;
        let current = state_from_row(&row)?;
        let next = current.apply(steering.action())?;
        let by = json!({"by": actor.user_id().map(|user| user.as_uuid())});
        let mut lines = Vec::new();
        match steering {
            Steering::Cancel => {
                // The step in flight is interrupted: its worker learns of it from the
                // notification this status change sends, and its later writes are refused.
                let interrupted = conn
                    .query_all_raw(statement(
                        &format!(
                            "UPDATE execution_steps s SET status = 'failed', \
                                 error_message = 'interrupted: the execution was cancelled', \
                                 completed_at = now() \
                             WHERE s.execution_id = $1 AND s.status = 'running' \
                             RETURNING {STEP_COLUMNS}"
                        ),
                        [id.as_uuid().into()],
                    ))
                    .await
                    .map_err(storage("interrupting a cancelled run's step"))?;
                for row in &interrupted {
                    let step = step_from_row(row)?;
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
                conn.execute_raw(statement(
                    "UPDATE executions SET status = 'cancelled', completed_at = now(), \
                         started_at = coalesce(started_at, now()), waiting_step_id = NULL, \
                         wake_at = NULL, error_message = 'cancelled' \
                     WHERE id = $1",
                    [id.as_uuid().into()],
                ))
                .await
                .map_err(storage("cancelling an execution"))?;
                audit::record(
                    conn,
                    "cancel",
                    "execution",
                    Some(id.as_uuid()),
                    json!({"from_status": current.status.as_str()}),
                )
                .await?;
                lines.push(run_event(next.status, "Execution cancelled", by));
            }
            Steering::Pause => {
                conn.execute_raw(statement(
                    "UPDATE executions SET status = 'paused' WHERE id = $1",
                    [id.as_uuid().into()],
                ))
                .await
                .map_err(storage("pausing an execution"))?;
                let message = if current.status == ExecutionStatus::Running {
                    "Execution paused: it stops after the step in flight"
                } else {
                    "Execution paused"
                };
                lines.push(run_event(next.status, message, by));
            }
            Steering::Resume => {
                conn.execute_raw(statement(
                    "UPDATE executions SET status = 'pending' WHERE id = $1",
                    [id.as_uuid().into()],
                ))
                .await
                .map_err(storage("resuming an execution"))?;
                lines.push(run_event(next.status, "Execution resumed", by));
            }
            Steering::Retry => {
                conn.execute_raw(statement(
                    "UPDATE execution_steps SET status = 'pending', error_message = NULL, \
                         completed_at = NULL, duration_ms = NULL, output_data = NULL \
                     WHERE execution_id = $1 AND status = 'failed'",
                    [id.as_uuid().into()],
                ))
                .await
                .map_err(storage("putting a failed step back in line"))?;
                conn.execute_raw(statement(
                    "UPDATE executions SET status = 'pending', \
                         retry_count = coalesce(retry_count, 0) + 1, error_message = NULL, \
                         output_data = NULL, completed_at = NULL, duration_ms = NULL, \
                         recoveries = 0, lease_owner = NULL, lease_expires_at = NULL \
                     WHERE id = $1",
                    [id.as_uuid().into()],
                ))
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
        let row = conn
            .query_one_raw(statement(LOCK_RUN_FOR_DECISION, [id.as_uuid().into()]))
            .await
            .map_err(storage("locking an execution"))?
            .ok_or(DecisionError::NotFound)?;
        let get = storage("reading an approval");
        let state = state_from_row(&row)?;
        let triggered_by = UserId::from_uuid(row.try_get("", "triggered_by").map_err(&get)?);
        let owner = row
            .try_get::<Option<Uuid>>("", "owner")
            .map_err(&get)?
            .map(UserId::from_uuid);
        let step = conn
            .query_one_raw(statement(
                &format!(
                    "SELECT {STEP_COLUMNS} FROM execution_steps s \
                     WHERE s.id = $1 AND s.execution_id = $2"
                ),
                [step_id.as_uuid().into(), id.as_uuid().into()],
            ))
            .await
            .map_err(storage("reading an approval step"))?;
        let context = ApprovalContext {
            state,
            triggered_by,
            owner,
            step: step.as_ref().map(step_from_row).transpose()?,
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
        let mut lines = Vec::new();
        match decision.decision {
            Decision::Approve => {
                conn.execute_raw(statement(
                    "UPDATE execution_steps SET status = 'completed', output_data = $2, \
                         completed_at = now() WHERE id = $1",
                    [step.id.as_uuid().into(), record.clone().into()],
                ))
                .await
                .map_err(storage("approving a step"))?;
                conn.execute_raw(statement(
                    "UPDATE executions SET status = 'pending', waiting_step_id = NULL, \
                         wake_at = NULL WHERE id = $1",
                    [id.as_uuid().into()],
                ))
                .await
                .map_err(storage("approving a step"))?;
                lines.push(step_event(
                    &step,
                    StepStatus::Completed,
                    format!("Step '{}' approved", step.name),
                    record.clone(),
                ));
                lines.push(run_event(
                    next.status,
                    "Execution continues after approval",
                    json!({}),
                ));
            }
            Decision::Reject => {
                let error = match &decision.comment {
                    Some(comment) => format!("step '{}' was rejected: {comment}", step.name),
                    None => format!("step '{}' was rejected", step.name),
                };
                conn.execute_raw(statement(
                    "UPDATE execution_steps SET status = 'failed', output_data = $2, \
                         error_message = $3, completed_at = now() WHERE id = $1",
                    [
                        step.id.as_uuid().into(),
                        record.clone().into(),
                        error.clone().into(),
                    ],
                ))
                .await
                .map_err(storage("rejecting a step"))?;
                conn.execute_raw(statement(
                    "UPDATE executions SET status = 'failed', waiting_step_id = NULL, \
                         wake_at = NULL, error_message = $2, completed_at = now() WHERE id = $1",
                    [id.as_uuid().into(), error.clone().into()],
                ))
                .await
                .map_err(storage("rejecting a step"))?;
                lines.push(step_event(
                    &step,
                    StepStatus::Failed,
                    format!("Step '{}' rejected", step.name),
                    record.clone(),
                ));
                lines.push(run_event(next.status, error, json!({})));
            }
        }
        insert_logs(conn, id, &lines).await?;
        audit::record(
            conn,
            "update",
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

    async fn stats(&self, actor: &Actor) -> Result<Vec<WorkflowStats>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        // The materialized view has no row level security of its own and the request role may
        // not read it; this view joins it to workflows, whose policies decide what comes back.
        let rows = txn
            .connection()
            .query_all_raw(statement(
                "SELECT workflow_id, workflow_name AS name, total_executions, successful_count, \
                        failed_count, avg_duration_ms::float8 AS avg_duration_ms \
                 FROM visible_workflow_execution_stats \
                 ORDER BY workflow_name, workflow_id",
                [],
            ))
            .await
            .map_err(storage("reading workflow statistics"))?;
        commit(txn).await?;
        let get = storage("reading workflow statistics");
        rows.iter()
            .map(|row| {
                Ok(WorkflowStats {
                    workflow_id: WorkflowId::from_uuid(
                        row.try_get("", "workflow_id").map_err(&get)?,
                    ),
                    workflow_name: row.try_get("", "name").map_err(&get)?,
                    total_executions: row.try_get("", "total_executions").map_err(&get)?,
                    successful_count: row.try_get("", "successful_count").map_err(&get)?,
                    failed_count: row.try_get("", "failed_count").map_err(&get)?,
                    avg_duration_ms: row.try_get("", "avg_duration_ms").map_err(&get)?,
                })
            })
            .collect()
    }
}
