//! Migration `m20251201_000015_sign_in_attempt_outcomes`: a sign-in attempt's outcome is unknown (`NULL`) from its admission until
//! its password has been checked, so an attempt that a failure of the platform (the database
//! going away, an internal error) leaves unsettled is never counted as a failed sign-in beyond the
//! short time it may still be in progress. The SQL is in `sql/m20251201_000015_sign_in_attempt_outcomes.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251201_000015_sign_in_attempt_outcomes",
    up: include_str!("sql/m20251201_000015_sign_in_attempt_outcomes.up.sql"),
    down: include_str!("sql/m20251201_000015_sign_in_attempt_outcomes.down.sql"),
};
