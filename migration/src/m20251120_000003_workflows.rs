//! Migration `m20251120_000003_workflows`: the workflows schema. The SQL is in `sql/m20251120_000003_workflows.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000003_workflows",
    up: include_str!("sql/m20251120_000003_workflows.up.sql"),
    down: include_str!("sql/m20251120_000003_workflows.down.sql"),
};
