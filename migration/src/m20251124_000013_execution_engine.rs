//! Migration `m20251124_000013_execution_engine`: what the engine and the executions API need
//! beyond the seed: workers' leases, the approval a paused run waits on, idempotent starts, the
//! indexes behind claiming, listing and streaming, and the notifications that wake workers and
//! event streams. The SQL is in `sql/m20251124_000013_execution_engine.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251124_000013_execution_engine",
    up: include_str!("sql/m20251124_000013_execution_engine.up.sql"),
    down: include_str!("sql/m20251124_000013_execution_engine.down.sql"),
};
