//! Migration `m20251124_000009_identity_sessions`: sessions, sign-in attempts and the sign-in
//! lookup policy. The SQL is in `sql/m20251124_000009_identity_sessions.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251124_000009_identity_sessions",
    up: include_str!("sql/m20251124_000009_identity_sessions.up.sql"),
    down: include_str!("sql/m20251124_000009_identity_sessions.down.sql"),
};
