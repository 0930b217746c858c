//! Migration `m20251201_000017_listing_without_full_scans`: the indexes and the run visibility policy that let the
//! documented list filters be answered from indexes, whatever the volume. The SQL is in
//! `sql/m20251201_000017_listing_without_full_scans.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251201_000017_listing_without_full_scans",
    up: include_str!("sql/m20251201_000017_listing_without_full_scans.up.sql"),
    down: include_str!("sql/m20251201_000017_listing_without_full_scans.down.sql"),
};
