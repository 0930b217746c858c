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
pub async fn refresh_workflow_stats(store: &Store) -> Result<(), StoreError> {
    let txn = store.begin_maintenance().await?;
    txn.connection()
        .execute_unprepared("REFRESH MATERIALIZED VIEW CONCURRENTLY workflow_execution_stats")
        .await
        .map_err(StoreError::database("refreshing workflow_execution_stats"))?;
    txn.commit().await
}
