//! Migration `m20251124_000010_identity_access`: what authentication needs beyond migration 9: the account a
//! presented token belongs to, the throttle's per-address count and success marking, revocation
//! of a deactivated account's sessions, and the indexes of the user list. The SQL is in
//! `sql/m20251124_000010_identity_access.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251124_000010_identity_access",
    up: include_str!("sql/m20251124_000010_identity_access.up.sql"),
    down: include_str!("sql/m20251124_000010_identity_access.down.sql"),
};
