//! Migration `m20251124_000011_workflow_versions`: what workflows and their versions need beyond
//! the seed: activation only with a current version, the list's index, reference checks of
//! approvers and agents by id, and one audit row for a delete that cascades to versions or tools.
//! The SQL is in `sql/m20251124_000011_workflow_versions.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251124_000011_workflow_versions",
    up: include_str!("sql/m20251124_000011_workflow_versions.up.sql"),
    down: include_str!("sql/m20251124_000011_workflow_versions.down.sql"),
};
