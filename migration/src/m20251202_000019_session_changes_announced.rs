//! Migration `m20251202_000019_session_changes_announced`: changes that end or alter what a
//! bearer token authenticates as are announced on the channel `ipa_sessions`, and the
//! authentication says how long its session stays good at most, so that server processes may
//! remember authenticated tokens briefly. The SQL is in
//! `sql/m20251202_000019_session_changes_announced.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251202_000019_session_changes_announced",
    up: include_str!("sql/m20251202_000019_session_changes_announced.up.sql"),
    down: include_str!("sql/m20251202_000019_session_changes_announced.down.sql"),
};
