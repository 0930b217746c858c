//! Migration `m20251202_000018_approvers_by_policy`: who was asked to decide an approval step, kept
//! as rows, and the policies that let those approvers see and decide that run without any raised
//! context. The SQL is in `sql/m20251202_000018_approvers_by_policy.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251202_000018_approvers_by_policy",
    up: include_str!("sql/m20251202_000018_approvers_by_policy.up.sql"),
    down: include_str!("sql/m20251202_000018_approvers_by_policy.down.sql"),
};
