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
use sea_orm::{ConnectionTrait, DatabaseTransaction};
use serde_json::json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::executions::{
    INSERT_LOGS_FROM_BATCH, STEP_COLUMNS, insert_logs, log_batch, parse_label, state_from_row,
    step_from_row,
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

fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

/// The transaction-local lock a worker's write takes: the run's row, only while the worker still
/// holds it.
const LOCK_HELD_RUN: &str = "SELECT coalesce(status, 'pending')::text AS status, \
     waiting_step_id FROM executions WHERE id = $1 AND lease_owner = $2 FOR NO KEY UPDATE";

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
        // Ready: waiting runs, runs whose worker let go or was lost (its lease ran out), and
        // approvals whose time is up. A pending run still leased is one resumed while its worker
        // finishes a step: that worker goes on with it. The claim returns what the worker needs
        // of the run, its version's definition included, in the same statement.
        let claimed = conn
            .query_all_raw(statement(
                "WITH ready AS ( \
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
                 RETURNING e.id, r.status::text AS previous_status, \
                     coalesce(e.status, 'pending')::text AS status, e.waiting_step_id, \
                     v.definition, coalesce(e.input_data, '{}') AS input_data, e.recoveries, \
                     e.started_at, e.created_at",
                [
                    worker.as_str().into(),
                    seconds(lease).into(),
                    i64::from(limit).into(),
                ],
            ))
            .await
            .map_err(storage("claiming runs"))?;
        if claimed.is_empty() {
            commit(txn).await?;
            return Ok(Vec::new());
        }
        let get = storage("reading claimed runs");
        let mut runs = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let id = ExecutionId::from_uuid(row.try_get("", "id").map_err(&get)?);
            let previous: String = row.try_get("", "previous_status").map_err(&get)?;
            let previous_status: ExecutionStatus = parse_label(&previous, "reading claimed runs")?;
            let state = state_from_row(row)?;
            let created_at: Option<OffsetDateTime> = row.try_get("", "created_at").map_err(&get)?;
            let run = ClaimedRun {
                lease: Lease {
                    execution_id: id,
                    worker: worker.clone(),
                },
                previous_status,
                awaiting: state.awaiting,
                definition: row.try_get("", "definition").map_err(&get)?,
                input: row.try_get("", "input_data").map_err(&get)?,
                steps: Vec::new(),
                recoveries: row.try_get("", "recoveries").map_err(&get)?,
                started_at: row.try_get("", "started_at").map_err(&get)?,
            };
            runs.push((created_at, state, run));
        }
        // Oldest first, as claimed, whatever order the update returned them in.
        runs.sort_by_key(|(created_at, _, _)| *created_at);
        let ids: Vec<Uuid> = runs
            .iter()
            .map(|(_, _, run)| run.lease.execution_id.as_uuid())
            .collect();
        let steps = conn
            .query_all_raw(statement(
                &format!(
                    "SELECT {STEP_COLUMNS} FROM execution_steps s \
                     WHERE s.execution_id = ANY($1::uuid[]) ORDER BY s.execution_id, s.step_index"
                ),
                [ids.into()],
            ))
            .await
            .map_err(storage("reading claimed runs' steps"))?
            .iter()
            .map(step_from_row)
            .collect::<Result<Vec<_>, _>>()?;
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
        let row = txn
            .connection()
            .query_one_raw(statement(
                "UPDATE executions SET lease_expires_at = now() + make_interval(secs => $3) \
                 WHERE id = $1 AND lease_owner = $2 \
                 RETURNING coalesce(status, 'pending')::text AS status, waiting_step_id",
                [
                    lease.execution_id.as_uuid().into(),
                    lease.worker.as_str().into(),
                    seconds(duration).into(),
                ],
            ))
            .await
            .map_err(storage("renewing a lease"))?;
        commit(txn).await?;
        row.as_ref()
            .map(|row| state_from_row(row).map(|state| state.status))
            .transpose()
    }

    async fn commit(&self, lease: &Lease, change: RunChange) -> Result<Committed, StorageError> {
        let txn = self.begin().await?;
        let conn = txn.connection();
        let id = lease.execution_id;
        let Some(row) = conn
            .query_one_raw(statement(
                LOCK_HELD_RUN,
                [id.as_uuid().into(), lease.worker.as_str().into()],
            ))
            .await
            .map_err(storage("locking a held run"))?
        else {
            txn.rollback()
                .await
                .map_err(|error| store_error("rolling back", error))?;
            return Ok(Committed::LeaseLost);
        };
        let state = state_from_row(&row)?;
        let committed = apply_change(conn, id, state, &[], change, Vec::new()).await?;
        commit(txn).await?;
        Ok(committed)
    }

    async fn release(&self, lease: &Lease) -> Result<(), StorageError> {
        let txn = self.begin().await?;
        // One statement: let go of the run if still held, and wake another worker now rather
        // than at its next poll.
        txn.connection()
            .execute_raw(statement(
                "WITH released AS ( \
                     UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL \
                     WHERE id = $1 AND lease_owner = $2 RETURNING id) \
                 SELECT pg_notify('ipa_executions', 'pending:' || id::text) FROM released",
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

async fn release(conn: &DatabaseTransaction, id: ExecutionId) -> Result<(), StorageError> {
    conn.execute_raw(statement(
        "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL WHERE id = $1",
        [id.as_uuid().into()],
    ))
    .await
    .map_err(storage("releasing a run"))?;
    Ok(())
}

async fn set_status(
    conn: &DatabaseTransaction,
    id: ExecutionId,
    status: ExecutionStatus,
) -> Result<(), StorageError> {
    conn.execute_raw(statement(
        "UPDATE executions SET status = $2::execution_status WHERE id = $1",
        [id.as_uuid().into(), status.as_str().into()],
    ))
    .await
    .map_err(storage("changing a run's status"))?;
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
                set_status(conn, id, ExecutionStatus::Running).await?;
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
    let get = storage(CONTEXT);
    let changed: i64 = conn
        .query_one_raw(statement(
            &format!(
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
                 logged AS (INSERT INTO execution_logs {INSERT_LOGS_FROM_BATCH}) \
                 SELECT count(*) AS changed FROM changed"
            ),
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
        .await
        .map_err(&get)?
        .ok_or_else(|| StorageError::new(CONTEXT, "the step change answered nothing"))?
        .try_get("", "changed")
        .map_err(&get)?;
    if changed == 1 {
        return Ok(());
    }
    // Not applied: say why, as the state machine sees it.
    let current = match known_steps.iter().find(|step| step.id == change.step_id) {
        Some(step) => Some(step.status),
        None => conn
            .query_one_raw(statement(
                "SELECT coalesce(status, 'pending')::text AS status FROM execution_steps \
                 WHERE id = $1 AND execution_id = $2",
                [change.step_id.as_uuid().into(), execution.as_uuid().into()],
            ))
            .await
            .map_err(storage(CONTEXT))?
            .map(|row| {
                let status: String = row.try_get("", "status").map_err(storage(CONTEXT))?;
                parse_label::<StepStatus>(&status, CONTEXT)
            })
            .transpose()?,
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
    match outcome {
        RunOutcome::Complete(output) => {
            state.apply(RunAction::Complete).map_err(illegal)?;
            conn.execute_raw(statement(
                "UPDATE executions SET status = 'completed', output_data = $2, \
                     completed_at = now(), lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1",
                [id.as_uuid().into(), output.clone().into()],
            ))
            .await
            .map_err(storage(CONTEXT))?;
            lines.push(run_event(
                ExecutionStatus::Completed,
                "Execution completed",
                json!({}),
            ));
        }
        RunOutcome::Fail(error) => {
            state.apply(RunAction::Fail).map_err(illegal)?;
            conn.execute_raw(statement(
                "UPDATE executions SET status = 'failed', error_message = $2, \
                     completed_at = now(), waiting_step_id = NULL, wake_at = NULL, \
                     lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1",
                [id.as_uuid().into(), error.clone().into()],
            ))
            .await
            .map_err(storage(CONTEXT))?;
            lines.push(run_event(
                ExecutionStatus::Failed,
                format!("Execution failed: {error}"),
                json!({"error": error}),
            ));
        }
        RunOutcome::AwaitApproval { step, deadline } => {
            state
                .apply(RunAction::AwaitApproval(*step))
                .map_err(illegal)?;
            conn.execute_raw(statement(
                "UPDATE executions SET status = 'paused', waiting_step_id = $2, wake_at = $3, \
                     lease_owner = NULL, lease_expires_at = NULL \
                 WHERE id = $1",
                [
                    id.as_uuid().into(),
                    step.as_uuid().into(),
                    (*deadline).into(),
                ],
            ))
            .await
            .map_err(storage(CONTEXT))?;
            lines.push(run_event(
                ExecutionStatus::Paused,
                "Execution waits for an approval decision",
                json!({"step_id": step.as_uuid()}),
            ));
        }
    }
    Ok(())
}
