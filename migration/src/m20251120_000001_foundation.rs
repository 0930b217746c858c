//! Migration `m20251120_000001_foundation`: the foundation schema. The SQL is in `sql/m20251120_000001_foundation.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000001_foundation",
    up: include_str!("sql/m20251120_000001_foundation.up.sql"),
    down: include_str!("sql/m20251120_000001_foundation.down.sql"),
};
