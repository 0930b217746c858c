//! Migration `m20251120_000002_users`: the users schema. The SQL is in `sql/m20251120_000002_users.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000002_users",
    up: include_str!("sql/m20251120_000002_users.up.sql"),
    down: include_str!("sql/m20251120_000002_users.down.sql"),
};
