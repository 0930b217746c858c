//! The connection pool and the request-scoped transaction.
//!
//! The pool connects as the schema's owner. Each unit of request work runs in a transaction that
//! first switches to the non-owner role `ipa_app` and records the actor, all with
//! `set_config(..., true)`: the settings end with the transaction, so nothing leaks into the next
//! user of the connection and the same code works behind PgBouncer's transaction pooling. Row
//! level security and the audit triggers read these settings.

use std::time::Duration;

use ipa_kernel::Actor;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    Statement, TransactionTrait,
};

use crate::error::StoreError;

/// Sizing of the connection pool.
#[derive(Clone, Copy, Debug)]
pub struct PoolOptions {
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long a request waits for a connection before failing as unavailable: for a free one
    /// of the pool, or for a new one to be opened (connecting, retries of a refused connection
    /// included, happens within this wait). During an outage every request fails within it.
    pub acquire_timeout: Duration,
}

impl PoolOptions {
    /// The default [`PoolOptions::acquire_timeout`]: long enough for a busy pool to free a
    /// connection or a healthy server to accept one, short enough that an outage is answered
    /// before clients give up.
    pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
}

impl Default for PoolOptions {
    fn default() -> Self {
        Self {
            max_connections: 10,
            acquire_timeout: Self::DEFAULT_ACQUIRE_TIMEOUT,
        }
    }
}

/// A pool of connections to the platform's database, connected as the schema's owner.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects to `url` (a `postgres://` URL; a unix socket directory goes in `?host=`).
    pub async fn connect(url: &str, options: PoolOptions) -> Result<Self, StoreError> {
        let mut connect = ConnectOptions::new(url);
        connect
            .max_connections(options.max_connections)
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            // Statements are logged by our own spans, never with their bound values (which may be
            // secrets).
            .sqlx_logging(false);
        let db = Database::connect(connect)
            .await
            .map_err(|source| StoreError::Connect {
                target: redact_url(url),
                source,
            })?;
        Ok(Self { db })
    }

    /// The owner's connection: for migrations and maintenance only. Request work goes through
    /// [`Store::begin`].
    pub fn owner_connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Begins a transaction acting as `actor` through the `ipa_app` role.
    pub async fn begin(&self, actor: &Actor) -> Result<ActorTransaction, StoreError> {
        self.begin_with(TransactionScope::acting(actor)).await
    }

    /// Begins a transaction as the owner itself, with the system actor's context: for maintenance
    /// that needs ownership (refreshing the materialized view) and must still see every row
    /// through the forced row level security.
    pub async fn begin_maintenance(&self) -> Result<ActorTransaction, StoreError> {
        let system = Actor::system();
        self.begin_with(TransactionScope {
            role: None,
            ..TransactionScope::acting(&system)
        })
        .await
    }

    /// Begins a transaction in `scope`.
    pub(crate) async fn begin_with(
        &self,
        scope: TransactionScope<'_>,
    ) -> Result<ActorTransaction, StoreError> {
        let txn = self
            .db
            .begin()
            .await
            .map_err(StoreError::database("beginning a transaction"))?;
        txn.execute_raw(scope.settings())
            .await
            .map_err(StoreError::database("setting the transaction's actor"))?;
        Ok(ActorTransaction { txn })
    }

    /// Closes every connection of the pool.
    pub async fn close(self) -> Result<(), StoreError> {
        self.db
            .close()
            .await
            .map_err(StoreError::database("closing the pool"))
    }
}

/// What a transaction acts as: the role, the actor, and the two narrow pre-authentication
/// contexts row level security knows (the identifier a sign-in looks up, the digest of the token
/// a request presents).
pub(crate) struct TransactionScope<'a> {
    /// The role to switch to; `None` acts as the session's user (the owner).
    pub(crate) role: Option<&'static str>,
    /// Who acts.
    pub(crate) actor: &'a Actor,
    /// The identifier being signed in with (`app.login_identifier`).
    pub(crate) login_identifier: Option<&'a str>,
    /// The hex SHA-256 of the presented bearer token (`app.session_token_hash`).
    pub(crate) token_digest_hex: Option<String>,
}

impl<'a> TransactionScope<'a> {
    /// `actor` acting through `ipa_app`, with no pre-authentication context.
    pub(crate) fn acting(actor: &'a Actor) -> Self {
        Self {
            role: Some(migration::APP_ROLE),
            actor,
            login_identifier: None,
            token_digest_hex: None,
        }
    }

    /// One statement that sets the role and every setting, transaction-locally.
    fn settings(&self) -> Statement {
        let actor = self.actor;
        let user_id = actor.user_id().map(|id| id.to_string()).unwrap_or_default();
        let client_ip = actor
            .client()
            .ip()
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        let user_agent = actor
            .client()
            .user_agent()
            .map(|agent| agent.as_str().to_owned())
            .unwrap_or_default();
        // `none` is PostgreSQL's own value for "act as the session's user" (SET ROLE NONE).
        let role = self.role.unwrap_or("none");
        Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config('role', $1, true), set_config('app.current_user_id', $2, true), \
             set_config('app.is_superuser', $3, true), set_config('app.client_ip', $4, true), \
             set_config('app.user_agent', $5, true), set_config('app.login_identifier', $6, true), \
             set_config('app.session_token_hash', $7, true)",
            [
                role.into(),
                user_id.into(),
                actor.is_superuser().to_string().into(),
                client_ip.into(),
                user_agent.into(),
                self.login_identifier.unwrap_or_default().into(),
                self.token_digest_hex.clone().unwrap_or_default().into(),
            ],
        )
    }
}

/// A transaction acting for one actor. Dropping it without [`ActorTransaction::commit`] rolls it
/// back.
#[derive(Debug)]
pub struct ActorTransaction {
    txn: DatabaseTransaction,
}

impl ActorTransaction {
    /// The transaction, for the store's adapters (and tests) to run statements on.
    pub fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Commits the work.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.txn
            .commit()
            .await
            .map_err(StoreError::database("committing"))
    }

    /// Rolls the work back.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.txn
            .rollback()
            .await
            .map_err(StoreError::database("rolling back"))
    }
}

/// A single connection for administrative statements (provisioning roles and databases): no pool
/// to speak of, and no statement logging.
pub(crate) async fn admin_connection(url: &str) -> Result<DatabaseConnection, StoreError> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(30));
    Database::connect(options)
        .await
        .map_err(|source| StoreError::Connect {
            target: redact_url(url),
            source,
        })
}

/// A database URL fit for logs and error messages: the password removed.
pub(crate) fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Setting a password only fails for URLs that cannot have one.
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "<unparseable database URL>".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        let redacted = redact_url("postgres://ipa:hunter2@db.example:5432/ipa");
        assert!(!redacted.contains("hunter2"), "{redacted}");
        assert!(redacted.contains("db.example"));
        assert_eq!(redact_url("not a url"), "<unparseable database URL>");
    }
}
