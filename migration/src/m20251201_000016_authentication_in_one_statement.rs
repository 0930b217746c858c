//! Migration `m20251201_000016_authentication_in_one_statement`: `ipa_authenticate`, the session
//! lookup and touch of a bearer token in one statement, so that authenticating a request costs one
//! round trip. The SQL is in `sql/m20251201_000016_authentication_in_one_statement.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251201_000016_authentication_in_one_statement",
    up: include_str!("sql/m20251201_000016_authentication_in_one_statement.up.sql"),
    down: include_str!("sql/m20251201_000016_authentication_in_one_statement.down.sql"),
};
