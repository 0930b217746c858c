//! Scheduled upkeep of the schema: monthly partitions created ahead of time, and the dashboard's
//! materialized view refreshed. Both need the owner, so they run on the owner's connection.

use sea_orm::ConnectionTrait;

use crate::error::StoreError;
use crate::store::Store;

/// How many months of partitions exist ahead of time: this month and the next three.
pub const PARTITION_MONTHS: i32 = 4;

/// Creates any missing monthly partition of `execution_logs` and `audit_logs`, from this month
/// (in UTC, like the partition bounds) on.
/// Returns how many it created.
pub async fn ensure_partitions(store: &Store) -> Result<i32, StoreError> {
    let row = store
        .owner_connection()
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT ipa_ensure_monthly_partitions('execution_logs', (now() AT TIME ZONE 'UTC')::date, $1) \
                  + ipa_ensure_monthly_partitions('audit_logs', (now() AT TIME ZONE 'UTC')::date, $1)",
            [PARTITION_MONTHS.into()],
        ))
        .await
        .map_err(StoreError::database("creating monthly partitions"))?;
    match row {
        Some(row) => row
            .try_get_by_index(0)
            .map_err(StoreError::database("creating monthly partitions")),
        None => Ok(0),
    }
}

/// Refreshes `workflow_execution_stats` without blocking readers. Runs with the system actor so
/// the forced row level security lets the owner see every execution.
///
/// A view that was never computed (a database restored with the view's data left out, as
/// `docs/operations.md` restores) cannot be refreshed `CONCURRENTLY`; it is computed plainly
/// once, which blocks its readers for that one refresh.
pub async fn refresh_workflow_stats(store: &Store) -> Result<(), StoreError> {
    let txn = store.begin_maintenance().await?;
    let conn = txn.connection();
    let populated = conn
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT relispopulated FROM pg_catalog.pg_class \
              WHERE oid = 'workflow_execution_stats'::regclass",
        ))
        .await
        .map_err(StoreError::database("reading workflow_execution_stats"))?
        .map(|row| row.try_get_by_index::<bool>(0))
        .transpose()
        .map_err(StoreError::database("reading workflow_execution_stats"))?
        .unwrap_or(true);
    let refresh = if populated {
        "REFRESH MATERIALIZED VIEW CONCURRENTLY workflow_execution_stats"
    } else {
        "REFRESH MATERIALIZED VIEW workflow_execution_stats"
    };
    conn.execute_unprepared(refresh)
        .await
        .map_err(StoreError::database("refreshing workflow_execution_stats"))?;
    txn.commit().await
}
