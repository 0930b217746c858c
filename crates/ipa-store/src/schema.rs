//! The schema's lifecycle: applying and reverting migrations, telling whether the database is
//! current, and checking that the roles the server uses are safe to serve requests with.

use migration::{Migrator, MigratorTrait};
use sea_orm::{DbBackend, FromQueryResult, Statement};

use crate::error::StoreError;
use crate::store::Store;

/// One migration and whether it is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationState {
    /// The migration's name.
    pub name: String,
    /// Whether the database has it.
    pub applied: bool,
}

/// Applies pending migrations (all of them, or at most `steps`).
pub async fn migrate_up(store: &Store, steps: Option<u32>) -> Result<(), StoreError> {
    Migrator::up(store.owner_connection(), steps)
        .await
        .map_err(StoreError::database("applying migrations"))
}

/// Reverts the last `steps` applied migrations.
pub async fn migrate_down(store: &Store, steps: u32) -> Result<(), StoreError> {
    Migrator::down(store.owner_connection(), Some(steps))
        .await
        .map_err(StoreError::database("reverting migrations"))
}

/// Reverts every applied migration, then applies them all: an empty schema, freshly built.
pub async fn migrate_fresh(store: &Store) -> Result<(), StoreError> {
    Migrator::down(store.owner_connection(), None)
        .await
        .map_err(StoreError::database("reverting migrations"))?;
    migrate_up(store, None).await
}

/// Every migration with its state, in order. Reads only: it never creates the bookkeeping table.
/// It reads through the pool, in a transaction, so that readiness speaks for the path requests
/// take (through the pooler, when there is one).
pub async fn migration_states(store: &Store) -> Result<Vec<MigrationState>, StoreError> {
    let txn = store.begin_maintenance().await?;
    let states = Migrator::get_migration_with_status_read_only(txn.connection())
        .await
        .map_err(StoreError::database("reading migration status"))?;
    txn.commit().await?;
    Ok(states
        .into_iter()
        .map(|migration| MigrationState {
            name: migration.name().to_owned(),
            applied: migration.status() == sea_orm_migration::MigrationStatus::Applied,
        })
        .collect())
}

/// Why the database cannot serve requests yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NotReady {
    /// The database did not answer (within the pool's acquire timeout).
    Unreachable(String),
    /// The database answered, but reading the migrations' state failed.
    Failing(String),
    /// Migrations are pending.
    PendingMigrations(Vec<String>),
}

/// Whether the database answers and has every migration applied. Bounded by the pool's acquire
/// timeout when the database does not answer.
pub async fn readiness(store: &Store) -> Result<(), NotReady> {
    let states = migration_states(store).await.map_err(|err| {
        if err.is_unavailable() {
            NotReady::Unreachable(err.to_string())
        } else {
            NotReady::Failing(err.to_string())
        }
    })?;
    let pending: Vec<String> = states
        .into_iter()
        .filter(|state| !state.applied)
        .map(|state| state.name)
        .collect();
    if pending.is_empty() {
        Ok(())
    } else {
        Err(NotReady::PendingMigrations(pending))
    }
}

/// What the server's roles may do: the role it logs in as, and the role requests act as.
#[derive(Clone, Debug, PartialEq, Eq, FromQueryResult)]
pub struct RoleReport {
    /// The login role's name.
    pub login_role: String,
    /// The login role is a PostgreSQL superuser.
    pub login_is_superuser: bool,
    /// The login role bypasses row level security.
    pub login_bypasses_rls: bool,
    /// The request role exists and the login role may switch to it.
    pub app_role_usable: bool,
    /// The request role is a superuser or bypasses row level security.
    pub app_role_privileged: bool,
    /// Tables, views or sequences of the public schema the request role owns.
    pub app_role_owned_objects: i64,
}

impl RoleReport {
    /// The reasons these roles must not serve requests; empty when they are safe.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.login_is_superuser {
            problems.push(format!(
                "the database role '{}' is a superuser",
                self.login_role
            ));
        }
        if self.login_bypasses_rls {
            problems.push(format!(
                "the database role '{}' has BYPASSRLS",
                self.login_role
            ));
        }
        if !self.app_role_usable {
            problems.push(format!(
                "the role '{}' is missing or '{}' is not a member of it (run the migrations)",
                migration::APP_ROLE,
                self.login_role
            ));
        }
        if self.app_role_privileged {
            problems.push(format!(
                "the role '{}' is a superuser or has BYPASSRLS",
                migration::APP_ROLE
            ));
        }
        if self.app_role_owned_objects > 0 {
            problems.push(format!(
                "the role '{}' owns {} objects of the schema, so row level security would not bind it",
                migration::APP_ROLE,
                self.app_role_owned_objects
            ));
        }
        problems
    }
}

/// Reads the privileges of the login role and of the request role, through the pool (in a
/// transaction): behind a pooler, the role the pooler logs in as is the one requests run as.
pub async fn inspect_roles(store: &Store) -> Result<RoleReport, StoreError> {
    let txn = store.begin_maintenance().await?;
    let report = RoleReport::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        ROLE_REPORT,
        [migration::APP_ROLE.into()],
    ))
    .one(txn.connection())
    .await
    .map_err(StoreError::database("inspecting database roles"))?
    .ok_or_else(|| StoreError::UnsafeRole("the session's role is not in pg_roles".to_owned()))?;
    txn.commit().await?;
    Ok(report)
}

/// The login role (the session's) and the request role (`$1`) as [`RoleReport`] reads them.
/// Raw: a query of PostgreSQL's catalogs, which have no entities.
const ROLE_REPORT: &str = "SELECT login.rolname::text AS login_role, \
        login.rolsuper AS login_is_superuser, login.rolbypassrls AS login_bypasses_rls, \
        (app.oid IS NOT NULL AND pg_has_role(session_user, app.oid, 'MEMBER')) AS app_role_usable, \
        coalesce(app.rolsuper OR app.rolbypassrls, false) AS app_role_privileged, \
        (SELECT count(*) FROM pg_class c \
          WHERE c.relowner = app.oid AND c.relnamespace = 'public'::regnamespace) \
          AS app_role_owned_objects \
   FROM pg_roles login \
   LEFT JOIN pg_roles app ON app.rolname = $1 \
  WHERE login.rolname = session_user";

/// Whether the filter operators' functions are leakproof (NULL when one is missing). Raw: a query
/// of PostgreSQL's catalogs.
const FILTERS_LEAKPROOF: &str = "SELECT bool_and(proleakproof) AS leakproof FROM pg_proc \
  WHERE oid IN ('pg_catalog.arraycontains(anyarray, anyarray)'::regprocedure, \
                'pg_catalog.jsonb_contains(jsonb, jsonb)'::regprocedure, \
                'pg_catalog.texticlike(text, text)'::regprocedure)";

#[derive(Debug, FromQueryResult)]
struct Leakproof {
    leakproof: Option<bool>,
}

/// Whether the functions behind `@>` on arrays and `jsonb` and behind `ILIKE` are leakproof in
/// this database (ADR 0006): without it, row level security keeps the list filters by tag,
/// metadata and name off their GIN indexes. [`crate::cluster::LEAKPROOF_FILTERS_SQL`] makes them so.
pub async fn filters_are_leakproof(store: &Store) -> Result<bool, StoreError> {
    let found = Leakproof::find_by_statement(Statement::from_string(
        DbBackend::Postgres,
        FILTERS_LEAKPROOF,
    ))
    .one(store.owner_connection())
    .await
    .map_err(StoreError::database("reading the filter operators"))?;
    Ok(found.and_then(|row| row.leakproof).unwrap_or(false))
}
