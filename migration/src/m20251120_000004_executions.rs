//! Migration `m20251120_000004_executions`: the executions schema. The SQL is in `sql/m20251120_000004_executions.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000004_executions",
    up: include_str!("sql/m20251120_000004_executions.up.sql"),
    down: include_str!("sql/m20251120_000004_executions.down.sql"),
};
