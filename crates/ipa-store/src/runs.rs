//! The engine's journal on PostgreSQL ([`PgRunJournal`]): workers claim runs with
//! `FOR UPDATE SKIP LOCKED`, hold them with a lease they renew, and write each step's change, the
//! run's outcome and log lines in one transaction that first checks the lease is still theirs.
//! A claim writes the run's first change (its next step's start, typically) in the claim's own
//! transaction, so a one-step run costs two transactions: claim and start, then completion.
//!
//! Workers act as the system actor (through `ipa_app`, like requests), which row level security
//! lets see every run.

use std::time::Duration;

use ipa_execution::{
    Claimed, ClaimedRun, Committed, ExecutionStatus, ExecutionStep, Lease, NewLogLine, RunAction,
    RunChange, RunJournal, RunOutcome, RunState, StepAction, StepChange, StepStatus, WorkerId,
    run_event,
};
use ipa_kernel::{Actor, ExecutionId, StorageError};
use sea_orm::sea_query::{Expr, ExprTrait, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, FromQueryResult, QueryFilter,
    QuerySelect,
};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::entity::execution_steps;
use crate::entity::executions;
use crate::entity::sea_orm_active_enums::{
    ExecutionStatus as StoredStatus, StepStatus as StoredStepStatus,
};
use crate::executions::{
    StateRow, insert_logs, insert_logs_from_batch, let_go, log_batch, read_steps_of, run_state,
    set_status, stop_waiting,
};
use crate::sql::{commit, from_store, statement, storage, store_error};
use crate::store::{ActorTransaction, Store};

/// The engine's journal.
#[derive(Clone, Debug)]
pub struct PgRunJournal {
    store: Store,
}

impl PgRunJournal {
    /// A journal over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// A transaction acting as the system (workers act for no one user).
    async fn begin(&self) -> Result<ActorTransaction, StorageError> {
        self.store.begin(&Actor::system()).await.map_err(from_store)
    }
}

/// `now() + duration` on the database's clock, which is the one leases are compared against.
fn from_now(duration: Duration) -> Expr {
    Expr::current_timestamp().add(Expr::cust_with_values(
        "make_interval(secs => $1)",
        [duration.as_secs_f64()],
    ))
}

/// Claims up to `$3` ready runs for worker `$1` for `$2` seconds, oldest first. Ready: waiting
/// runs, runs whose worker let go or was lost (its lease ran out), and approvals whose time is
/// up. A pending run still leased is one resumed while its worker finishes a step: that worker
/// goes on with it. Returns what the worker needs of each run, its version's definition
/// included, in the same statement. Raw: `FOR UPDATE SKIP LOCKED` in a CTE feeding an
/// `UPDATE ... FROM ... RETURNING` is beyond the builder.
const CLAIM: &str = "WITH ready AS ( \
         SELECT id, status, lease_owner FROM executions \
         WHERE (status IN ('pending', 'running') \
                OR (waiting_step_id IS NOT NULL AND wake_at <= now())) \
           AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
         ORDER BY created_at \
         LIMIT $3 \
         FOR UPDATE SKIP LOCKED) \
     UPDATE executions e SET \
         lease_owner = $1, \
         lease_expires_at = now() + make_interval(secs => $2), \
         status = CASE WHEN r.status = 'pending' THEN 'running'::execution_status \
                       ELSE e.status END, \
         started_at = coalesce(e.started_at, now()), \
         recoveries = e.recoveries + CASE WHEN r.status = 'running' \
                                          AND r.lease_owner IS NOT NULL \
                                          THEN 1 ELSE 0 END \
     FROM ready r, workflow_versions v \
     WHERE e.id = r.id AND v.id = e.workflow_version_id \
     RETURNING e.id, r.status::text AS previous_status, e.status::text AS status, \
         e.waiting_step_id, v.definition, e.input_data, e.recoveries, e.started_at, e.created_at";

/// A run as [`CLAIM`] returns it.
#[derive(Debug, FromQueryResult)]
struct ClaimedRow {
    id: Uuid,
    previous_status: Option<StoredStatus>,
    status: Option<StoredStatus>,
    waiting_step_id: Option<Uuid>,
    definition: serde_json::Value,
    input_data: Option<serde_json::Value>,
    recoveries: i32,
    started_at: OffsetDateTime,
    created_at: Option<OffsetDateTime>,
}

/// Lets go of run `$1` if worker `$2` still holds it, and wakes another worker now rather than at
/// its next poll, in one statement. Raw: `pg_notify` over a data-modifying CTE.
const RELEASE_AND_NOTIFY: &str = "WITH released AS ( \
         UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL \
         WHERE id = $1 AND lease_owner = $2 RETURNING id) \
     SELECT pg_notify('ipa_executions', 'pending:' || id::text) FROM released";

/// The transaction-local lock a worker's write takes: the run's row, only while the worker still
/// holds it.
async fn lock_held_run(
    conn: &DatabaseTransaction,
    lease: &Lease,
) -> Result<Option<RunState>, StorageError> {
    Ok(executions::Entity::find_by_id(lease.execution_id.as_uuid())
        .filter(executions::Column::LeaseOwner.eq(lease.worker.as_str()))
        .lock(LockType::NoKeyUpdate)
        .into_partial_model::<StateRow>()
        .one(conn)
        .await
        .map_err(storage("locking a held run"))?
        .map(RunState::from))
}

impl RunJournal for PgRunJournal {
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
        let txn = self.begin().await?;
        let conn = txn.connection();
        let claimed = ClaimedRow::find_by_statement(statement(
            CLAIM,
            [
                worker.as_str().into(),
                lease.as_secs_f64().into(),
                i64::from(limit).into(),
            ],
        ))
        .all(conn)
        .await
        .map_err(storage("claiming runs"))?;
        if claimed.is_empty() {
            commit(txn).await?;
            return Ok(Vec::new());
        }
        let mut runs: Vec<(Option<OffsetDateTime>, RunState, ClaimedRun)> = claimed
            .into_iter()
            .map(|row| {
                let state = run_state(row.status, row.waiting_step_id);
                let run = ClaimedRun {
                    lease: Lease {
                        execution_id: ExecutionId::from_uuid(row.id),
                        worker: worker.clone(),
                    },
                    previous_status: row
                        .previous_status
                        .map_or(ExecutionStatus::Pending, ExecutionStatus::from),
                    awaiting: state.awaiting,
                    definition: row.definition,
                    input: row.input_data.unwrap_or_else(|| json!({})),
                    steps: Vec::new(),
                    recoveries: row.recoveries,
                    started_at: row.started_at,
                };
                (row.created_at, state, run)
            })
            .collect();
        // Oldest first, as claimed, whatever order the update returned them in.
        runs.sort_by_key(|(created_at, _, _)| *created_at);
        let ids: Vec<Uuid> = runs
            .iter()
            .map(|(_, _, run)| run.lease.execution_id.as_uuid())
            .collect();
        let steps = read_steps_of(conn, ids).await?;
        let mut result = Vec::with_capacity(runs.len());
        for (_, state, mut run) in runs {
            let id = run.lease.execution_id;
            run.steps = steps
                .iter()
                .filter(|step| step.execution_id == id)
                .cloned()
                .collect();
            let mut lines = Vec::new();
            if run.previous_status == ExecutionStatus::Pending {
                lines.push(run_event(
                    ExecutionStatus::Running,
                    "Execution running",
                    json!({"worker": worker.as_str()}),
                ));
            }
            let opened = match first(&run) {
                Some(change) => {
                    Some(apply_change(conn, id, state, &run.steps, change, lines).await?)
                }
                None => {
                    insert_logs(conn, id, &lines).await?;
                    None
                }
            };
            result.push(Claimed { run, first: opened });
        }
        commit(txn).await?;
        Ok(result)
    }

    async fn renew(
        &self,
        lease: &Lease,
        duration: Duration,
    ) -> Result<Option<ExecutionStatus>, StorageError> {
        let txn = self.begin().await?;
        let renewed = executions::Entity::update_many()
            .col_expr(executions::Column::LeaseExpiresAt, from_now(duration))
            .filter(executions::Column::Id.eq(lease.execution_id.as_uuid()))
            .filter(executions::Column::LeaseOwner.eq(lease.worker.as_str()))
            .exec_with_returning(txn.connection())
            .await
            .map_err(storage("renewing a lease"))?;
        commit(txn).await?;
        Ok(renewed
            .into_iter()
            .next()
            .map(|run| run_state(run.status, run.waiting_step_id).status))
    }

    async fn commit(&self, lease: &Lease, change: RunChange) -> Result<Committed, StorageError> {
        let txn = self.begin().await?;
        let conn = txn.connection();
        let Some(state) = lock_held_run(conn, lease).await? else {
            txn.rollback()
                .await
                .map_err(|error| store_error("rolling back", error))?;
            return Ok(Committed::LeaseLost);
        };
        let committed =
            apply_change(conn, lease.execution_id, state, &[], change, Vec::new()).await?;
        commit(txn).await?;
        Ok(committed)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StorageError> {
        let txn = self.begin().await?;
        txn.connection()
            .execute_raw(statement(
                RELEASE_AND_NOTIFY,
                [
                    lease.execution_id.as_uuid().into(),
                    lease.worker.as_str().into(),
                ],
            ))
            .await
            .map_err(storage("releasing a run"))?;
        commit(txn).await
    }
}

/// Lets go of run `id` in this transaction (its worker is done with it for now).
async fn release(conn: &DatabaseTransaction, id: ExecutionId) -> Result<(), StorageError> {
    let_go(executions::Entity::update_many())
        .filter(executions::Column::Id.eq(id.as_uuid()))
        .exec(conn)
        .await
        .map_err(storage("releasing a run"))?;
    Ok(())
}

/// Applies `change` to the run `id`, locked by its worker in this transaction and in `state`,
/// and writes `lines` followed by the change's and those of the run events it caused; says where
/// that left the run. The run is changed first, so the step's change and every line are then
/// written by one statement.
async fn apply_change(
    conn: &DatabaseTransaction,
    id: ExecutionId,
    mut state: RunState,
    known_steps: &[ExecutionStep],
    change: RunChange,
    mut lines: Vec<NewLogLine>,
) -> Result<Committed, StorageError> {
    let RunChange {
        step,
        outcome,
        mut logs,
    } = change;
    lines.append(&mut logs);
    let (committed, step) = match state.status {
        ExecutionStatus::Cancelled | ExecutionStatus::Completed | ExecutionStatus::Failed => {
            // Finished by someone else (a cancel): only what the worker has to say is kept.
            release(conn, id).await?;
            (Committed::Cancelled, None)
        }
        ExecutionStatus::Paused if state.awaiting.is_none() => {
            release(conn, id).await?;
            (Committed::Paused, step)
        }
        _ => {
            if state.status == ExecutionStatus::Pending {
                // Resumed while this worker finished a step: it simply goes on.
                set_status(
                    conn,
                    id,
                    ExecutionStatus::Running,
                    "changing a run's status",
                )
                .await?;
                lines.push(run_event(
                    ExecutionStatus::Running,
                    "Execution running",
                    json!({}),
                ));
                state = RunState::new(ExecutionStatus::Running);
            }
            match &outcome {
                Some(outcome) => {
                    apply_outcome(conn, id, state, outcome, &mut lines).await?;
                    (Committed::Released, step)
                }
                None => (Committed::Continue, step),
            }
        }
    };
    match &step {
        Some(step) => apply_step(conn, id, step, known_steps, &lines).await?,
        None => insert_logs(conn, id, &lines).await?,
    }
    Ok(committed)
}

/// Changes step `$3` of run `$1` to status `$4` when its status is one of `$11` (the statuses the
/// change may leave), with its input (`$5`, kept when NULL), output (`$7`, when `$6`: the step
/// finishes), error (`$8`), start time (now when `$9`: the step starts) and retries (`$10`), and
/// writes the run's lines (`$2`, see [`insert_logs_from_batch`]) in the same statement; answers
/// how many steps changed (0 or 1). A NULL status, which only a hand-written row has, counts as
/// pending. Raw: an UPDATE and an INSERT in one statement are a data-modifying CTE, which the
/// builder cannot say.
const APPLY_STEP: &str = concat!(
    "WITH changed AS ( \
         UPDATE execution_steps SET status = $4::step_status, \
             input_data = coalesce($5, input_data), \
             output_data = CASE WHEN $6::boolean THEN $7 ELSE output_data END, \
             error_message = $8, \
             started_at = CASE WHEN $9::boolean THEN now() \
                               ELSE coalesce(started_at, now()) END, \
             completed_at = CASE WHEN $6::boolean THEN now() ELSE NULL END, \
             duration_ms = CASE WHEN $6::boolean THEN duration_ms ELSE NULL END, \
             retry_count = $10 \
         WHERE id = $3 AND execution_id = $1 \
           AND coalesce(status, 'pending')::text = ANY($11::text[]) \
         RETURNING id), \
     logged AS (INSERT INTO execution_logs ",
    insert_logs_from_batch!(),
    ") SELECT count(*) AS changed FROM changed"
);

/// What [`APPLY_STEP`] answers.
#[derive(Debug, FromQueryResult)]
struct StepsChanged {
    changed: i64,
}

/// Applies `change` to its step, as the step's state machine allows, and writes the run's
/// `lines`, in one statement: an update of the step only when its status is one the change may
/// leave (each [`StepAction`] leads to one status). When the update misses, the step is looked up
/// (in `known_steps` when it is there) to say why, and the error rolls the lines back with the
/// rest of the transaction.
async fn apply_step(
    conn: &DatabaseTransaction,
    execution: ExecutionId,
    change: &StepChange,
    known_steps: &[ExecutionStep],
    lines: &[NewLogLine],
) -> Result<(), StorageError> {
    const CONTEXT: &str = "changing a step";
    let mut next = None;
    let mut from = Vec::new();
    for status in StepStatus::ALL {
        if let Some(to) = status.apply(change.action) {
            next = Some(to);
            from.push(status.as_str().to_owned());
        }
    }
    let next =
        next.ok_or_else(|| StorageError::new(CONTEXT, format!("no step can {:?}", change.action)))?;
    let starting = change.action == StepAction::Start;
    let finishing = matches!(
        next,
        StepStatus::Completed | StepStatus::Failed | StepStatus::Skipped
    );
    let retries = i32::try_from(change.attempts.saturating_sub(1)).unwrap_or(i32::MAX);
    let changed = StepsChanged::find_by_statement(statement(
        APPLY_STEP,
        [
            execution.as_uuid().into(),
            log_batch(lines).into(),
            change.step_id.as_uuid().into(),
            next.as_str().into(),
            change.input.clone().into(),
            finishing.into(),
            change.output.clone().into(),
            change.error.clone().into(),
            starting.into(),
            retries.into(),
            from.into(),
        ],
    ))
    .one(conn)
    .await
    .map_err(storage(CONTEXT))?
    .ok_or_else(|| StorageError::new(CONTEXT, "the step change answered nothing"))?
    .changed;
    if changed == 1 {
        return Ok(());
    }
    // Not applied: say why, as the state machine sees it.
    let current = match known_steps.iter().find(|step| step.id == change.step_id) {
        Some(step) => Some(step.status),
        None => execution_steps::Entity::find_by_id(change.step_id.as_uuid())
            .filter(execution_steps::Column::ExecutionId.eq(execution.as_uuid()))
            .select_only()
            .column(execution_steps::Column::Status)
            .into_tuple::<Option<StoredStepStatus>>()
            .one(conn)
            .await
            .map_err(storage(CONTEXT))?
            .map(|status| status.map_or(StepStatus::Pending, StepStatus::from)),
    };
    Err(match current {
        Some(current) => StorageError::new(
            CONTEXT,
            format!("a {current} step cannot {:?}", change.action),
        ),
        None => StorageError::new(CONTEXT, "the step is not part of the run"),
    })
}

/// Applies the run's `outcome`, as the run's state machine allows.
async fn apply_outcome(
    conn: &DatabaseTransaction,
    id: ExecutionId,
    state: RunState,
    outcome: &RunOutcome,
    lines: &mut Vec<NewLogLine>,
) -> Result<(), StorageError> {
    const CONTEXT: &str = "recording a run's outcome";
    let illegal = |error: ipa_execution::IllegalTransition| StorageError::new(CONTEXT, error);
    // Every outcome lets go of the run: the next change is another worker's claim.
    let update =
        let_go(executions::Entity::update_many()).filter(executions::Column::Id.eq(id.as_uuid()));
    let update = match outcome {
        RunOutcome::Complete(output) => {
            state.apply(RunAction::Complete).map_err(illegal)?;
            lines.push(run_event(
                ExecutionStatus::Completed,
                "Execution completed",
                json!({}),
            ));
            update
                .col_expr(
                    executions::Column::Status,
                    Expr::val(StoredStatus::Completed),
                )
                .col_expr(executions::Column::OutputData, Expr::val(output.clone()))
                .col_expr(executions::Column::CompletedAt, Expr::current_timestamp())
        }
        RunOutcome::Fail(error) => {
            state.apply(RunAction::Fail).map_err(illegal)?;
            lines.push(run_event(
                ExecutionStatus::Failed,
                format!("Execution failed: {error}"),
                json!({"error": error}),
            ));
            stop_waiting(update)
                .col_expr(executions::Column::Status, Expr::val(StoredStatus::Failed))
                .col_expr(executions::Column::ErrorMessage, Expr::val(error.clone()))
                .col_expr(executions::Column::CompletedAt, Expr::current_timestamp())
        }
        RunOutcome::AwaitApproval { step, deadline } => {
            state
                .apply(RunAction::AwaitApproval(*step))
                .map_err(illegal)?;
            lines.push(run_event(
                ExecutionStatus::Paused,
                "Execution waits for an approval decision",
                json!({"step_id": step.as_uuid()}),
            ));
            update
                .col_expr(executions::Column::Status, Expr::val(StoredStatus::Paused))
                .col_expr(executions::Column::WaitingStepId, Expr::val(step.as_uuid()))
                .col_expr(executions::Column::WakeAt, Expr::val(*deadline))
        }
    };
    update.exec(conn).await.map_err(storage(CONTEXT))?;
    Ok(())
}
