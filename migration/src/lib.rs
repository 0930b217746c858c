//! The IPA platform's database schema as sea-orm-migration migrations, one per concern, each with
//! a working `down`.
//!
//! The schema is the user's seed document corrected where, as written, it fails or leaks (see
//! `docs/decisions/0002-departures-from-the-seed-schema.md`). Each migration is plain SQL kept in
//! `src/sql/`, so it reads like the seed it comes from and can be reviewed line by line. Migrations
//! never import the store's entities.

use std::hash::{DefaultHasher, Hash, Hasher};

pub use sea_orm_migration::prelude::*;

mod m20251120_000001_foundation;
mod m20251120_000002_users;
mod m20251120_000003_workflows;
mod m20251120_000004_executions;
mod m20251120_000005_agents;
mod m20251120_000006_audit;
mod m20251120_000007_access_control;
mod m20251120_000008_workflow_execution_stats;
mod m20251124_000009_identity_sessions;
mod m20251124_000010_identity_access;
mod m20251124_000011_workflow_versions;
mod m20251124_000012_agent_catalog;
mod m20251124_000013_execution_engine;
mod m20251201_000014_row_security_without_holes;
mod m20251201_000015_sign_in_attempt_outcomes;
mod m20251201_000016_authentication_in_one_statement;
mod m20251201_000017_listing_without_full_scans;
mod m20251202_000018_approvers_by_policy;
mod m20251202_000019_session_changes_announced;

/// The role every request acts as. Created by the first migration; it owns nothing, is not a
/// superuser and cannot bypass row level security.
pub const APP_ROLE: &str = "ipa_app";

/// One migration: its name and the SQL that applies and reverts it.
struct SqlMigration {
    name: &'static str,
    up: &'static str,
    down: &'static str,
}

/// The migrations in the order they apply.
const MIGRATIONS: &[SqlMigration] = &[
    m20251120_000001_foundation::MIGRATION,
    m20251120_000002_users::MIGRATION,
    m20251120_000003_workflows::MIGRATION,
    m20251120_000004_executions::MIGRATION,
    m20251120_000005_agents::MIGRATION,
    m20251120_000006_audit::MIGRATION,
    m20251120_000007_access_control::MIGRATION,
    m20251120_000008_workflow_execution_stats::MIGRATION,
    m20251124_000009_identity_sessions::MIGRATION,
    m20251124_000010_identity_access::MIGRATION,
    m20251124_000011_workflow_versions::MIGRATION,
    m20251124_000012_agent_catalog::MIGRATION,
    m20251124_000013_execution_engine::MIGRATION,
    m20251201_000014_row_security_without_holes::MIGRATION,
    m20251201_000015_sign_in_attempt_outcomes::MIGRATION,
    m20251201_000016_authentication_in_one_statement::MIGRATION,
    m20251201_000017_listing_without_full_scans::MIGRATION,
    m20251202_000018_approvers_by_policy::MIGRATION,
    m20251202_000019_session_changes_announced::MIGRATION,
];

impl MigrationName for &'static SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

// The trait's signatures elide SchemaManager's lifetime; naming it here would not match them.
#[allow(elided_lifetimes_in_paths)]
#[async_trait::async_trait]
impl MigrationTrait for &'static SqlMigration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(self.up)
            .await
            .map(drop)
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(self.down)
            .await
            .map(drop)
    }
}

/// The schema's migrator.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        MIGRATIONS
            .iter()
            .map(|migration| Box::new(migration) as Box<dyn MigrationTrait>)
            .collect()
    }
}

/// The names of every migration, in order.
pub fn migration_names() -> Vec<&'static str> {
    MIGRATIONS.iter().map(|migration| migration.name).collect()
}

/// A fingerprint of the whole schema (every migration's name and SQL). Databases migrated by the
/// same schema share it, which lets test harnesses reuse a migrated template safely.
pub fn fingerprint() -> u64 {
    let mut hasher = DefaultHasher::new();
    for migration in MIGRATIONS {
        (migration.name, migration.up, migration.down).hash(&mut hasher);
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_named_in_order_and_unique() {
        let names = migration_names();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            names, sorted,
            "migration names must be unique and sorted by timestamp"
        );
        assert!(
            names
                .iter()
                .all(|name| name.starts_with('m') && name.len() > "mYYYYMMDD_HHMMSS_".len())
        );
    }

    #[test]
    fn every_migration_has_a_down() {
        for migration in MIGRATIONS {
            assert!(
                !migration.down.trim().is_empty(),
                "{} has an empty down",
                migration.name
            );
        }
    }
}
