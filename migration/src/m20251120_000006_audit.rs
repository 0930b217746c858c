//! Migration `m20251120_000006_audit`: the audit schema. The SQL is in `sql/m20251120_000006_audit.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000006_audit",
    up: include_str!("sql/m20251120_000006_audit.up.sql"),
    down: include_str!("sql/m20251120_000006_audit.down.sql"),
};
