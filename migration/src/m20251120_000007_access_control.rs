//! Migration `m20251120_000007_access_control`: the access control schema. The SQL is in `sql/m20251120_000007_access_control.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000007_access_control",
    up: include_str!("sql/m20251120_000007_access_control.up.sql"),
    down: include_str!("sql/m20251120_000007_access_control.down.sql"),
};
