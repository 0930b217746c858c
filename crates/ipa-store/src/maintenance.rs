//! Scheduled upkeep of the schema: monthly partitions created ahead of time, and the dashboard's
//! materialized view refreshed. Both need the owner, so they run on the owner's connection.

use sea_orm::{ConnectionTrait, DbBackend, FromQueryResult, Statement};

use crate::error::StoreError;
use crate::store::Store;

/// How many months of partitions exist ahead of time: this month and the next three.
pub const PARTITION_MONTHS: i32 = 4;

/// Creates any missing monthly partition of `execution_logs` and `audit_logs`, from this month
/// (in UTC, like the partition bounds) on.
/// Returns how many it created.
pub async fn ensure_partitions(store: &Store) -> Result<i32, StoreError> {
    let created = Created::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        ENSURE_PARTITIONS,
        [PARTITION_MONTHS.into()],
    ))
    .one(store.owner_connection())
    .await
    .map_err(StoreError::database("creating monthly partitions"))?;
    Ok(created.map_or(0, |row| row.created))
}

/// Creates the missing monthly partitions of both partitioned tables, `$1` months from this one,
/// and answers how many. Raw: calls of the schema's function `ipa_ensure_monthly_partitions`.
const ENSURE_PARTITIONS: &str = "SELECT \
     ipa_ensure_monthly_partitions('execution_logs', (now() AT TIME ZONE 'UTC')::date, $1) \
     + ipa_ensure_monthly_partitions('audit_logs', (now() AT TIME ZONE 'UTC')::date, $1) AS created";

#[derive(Debug, FromQueryResult)]
struct Created {
    created: i32,
}

/// Whether the statistics view holds data. Raw: a query of PostgreSQL's catalogs.
const STATS_POPULATED: &str = "SELECT relispopulated AS populated FROM pg_catalog.pg_class \
     WHERE oid = 'workflow_execution_stats'::regclass";

#[derive(Debug, FromQueryResult)]
struct Populated {
    populated: bool,
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
    let populated =
        Populated::find_by_statement(Statement::from_string(DbBackend::Postgres, STATS_POPULATED))
            .one(conn)
            .await
            .map_err(StoreError::database("reading workflow_execution_stats"))?
            .is_none_or(|row| row.populated);
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
