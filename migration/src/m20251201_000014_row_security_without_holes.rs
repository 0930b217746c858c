//! Migration `m20251201_000014_row_security_without_holes`: closes what raw SQL through the
//! request role could still read or move: a run's workflow, version and starter (and a step's
//! run, a session's account) fixed once written, the statistics view readable only through a
//! view joined to `workflows`, sign-in attempts written and read only for the identifier being
//! signed in with, lookups past row level security that answer only what their caller may know,
//! and partitions that carry their parent's row security (those created later too). The SQL is
//! in `sql/m20251201_000014_row_security_without_holes.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251201_000014_row_security_without_holes",
    up: include_str!("sql/m20251201_000014_row_security_without_holes.up.sql"),
    down: include_str!("sql/m20251201_000014_row_security_without_holes.down.sql"),
};
