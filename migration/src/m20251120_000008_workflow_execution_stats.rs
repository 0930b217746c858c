//! Migration `m20251120_000008_workflow_execution_stats`: the workflow execution stats schema. The SQL is in `sql/m20251120_000008_workflow_execution_stats.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000008_workflow_execution_stats",
    up: include_str!("sql/m20251120_000008_workflow_execution_stats.up.sql"),
    down: include_str!("sql/m20251120_000008_workflow_execution_stats.down.sql"),
};
