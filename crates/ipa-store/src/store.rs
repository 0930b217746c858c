//! The connection pool and the request-scoped transaction.
//!
//! The pool connects as the schema's owner. Each unit of request work runs in a transaction that
//! first switches to the non-owner role `ipa_app` and records the actor, all with
//! `set_config(..., true)`: the settings end with the transaction, so nothing leaks into the next
//! user of the connection. Row level security and the audit triggers read these settings.
//!
//! The pool may reach PostgreSQL through a pooler in transaction mode (PgBouncer's
//! `pool_mode = transaction`, [`Pooling::Transaction`]), which lends a server connection to a
//! client only for one transaction. Then the pool is used for nothing but transactions, and no
//! prepared statement outlives its transaction: the driver names every statement it prepares
//! (`sqlx_s_<n>`, counted per client connection) and would otherwise reuse names another client
//! left on the same server connection, or bind a statement prepared on another one. So the
//! client's statement cache is off, each transaction starts by deallocating whatever an earlier
//! one left on its server connection (in the same round trip as its settings), and deallocates
//! its own before it commits. What needs a session of its own (migrations, `LISTEN`) uses the
//! direct connection ([`Store::owner_connection`]), which goes to PostgreSQL itself.
use std::time::Duration;

use ipa_kernel::Actor;
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, Statement, TransactionTrait,
};

use crate::error::{StoreError, is_broken_connection};

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

/// The most connections the direct pool opens when it is a pool of its own: the notification
/// listener holds one, migrations and upkeep use another now and then.
const DIRECT_MAX_CONNECTIONS: u32 = 3;

/// What a pooler between the pool and PostgreSQL keeps of a connection's session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pooling {
    /// Every connection of the pool is one PostgreSQL session: straight to PostgreSQL, or through
    /// a pooler in session mode.
    #[default]
    Session,
    /// Through a pooler in transaction mode (PgBouncer's `pool_mode = transaction`): one
    /// connection's consecutive transactions may run on different server connections, and
    /// nothing may be sent outside a transaction.
    Transaction,
}

/// Where the store connects: the URL of its pool, and the direct URL of sessions of its own.
#[derive(Clone, Debug)]
pub struct DatabaseTarget {
    url: String,
    direct_url: Option<String>,
    pooling: Pooling,
}

impl DatabaseTarget {
    /// Everything through `url`, whose connections are sessions of their own.
    pub fn direct(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            direct_url: None,
            pooling: Pooling::Session,
        }
    }

    /// The pool through `url`, pooled as `pooling` says; migrations and `LISTEN` through
    /// `direct_url`, which must reach the same database as the same role, on PostgreSQL itself.
    pub fn pooled(url: impl Into<String>, direct_url: impl Into<String>, pooling: Pooling) -> Self {
        Self {
            url: url.into(),
            direct_url: Some(direct_url.into()),
            pooling,
        }
    }

    /// How the pool's connections are pooled.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The URL of the pool's connections.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A pool of connections to the platform's database, connected as the schema's owner, and the
/// direct connection for what needs a session.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    /// How many connections a first statement may find broken before it gives up: one more than
    /// the pool holds (see [`Store::on_a_live_connection`]).
    begin_attempts: u32,
    /// The same pool as `db`, unless the target names a direct URL of its own.
    direct: DatabaseConnection,
    pooling: Pooling,
}

impl Store {
    /// Connects to `url` (a `postgres://` URL; a unix socket directory goes in `?host=`).
    pub async fn connect(url: &str, options: PoolOptions) -> Result<Self, StoreError> {
        Self::connect_to(&DatabaseTarget::direct(url), options).await
    }

    /// Connects to `target`: its pool with `options`, and its direct URL, if it has one of its
    /// own, with a small pool of its own.
    pub async fn connect_to(
        target: &DatabaseTarget,
        options: PoolOptions,
    ) -> Result<Self, StoreError> {
        let db = open_pool(&target.url, options, target.pooling).await?;
        let direct = match &target.direct_url {
            Some(direct_url) => {
                let direct_options = PoolOptions {
                    max_connections: DIRECT_MAX_CONNECTIONS,
                    ..options
                };
                match open_pool(direct_url, direct_options, Pooling::Session).await {
                    Ok(direct) => direct,
                    Err(err) => {
                        let _ = db.close().await;
                        return Err(err);
                    }
                }
            }
            None => db.clone(),
        };
        Ok(Self {
            db,
            begin_attempts: options.max_connections.saturating_add(1),
            direct,
            pooling: target.pooling,
        })
    }

    /// How the pool's connections are pooled.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }

    /// The owner's direct connection, a session of its own on PostgreSQL itself: for migrations,
    /// `LISTEN` and maintenance only. Request work goes through [`Store::begin`].
    pub fn owner_connection(&self) -> &DatabaseConnection {
        &self.direct
    }

    /// The pool itself, for a single statement sent outside an explicit transaction, connected as
    /// the owner with no settings: only for statements that take the role and context they need
    /// themselves ([`crate::sql::query_one_alone`]).
    pub(crate) fn statement_connection(&self) -> &DatabaseConnection {
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
        let settings = scope
            .settings(self.pooling)
            .map_err(StoreError::database("setting the transaction's actor"))?;
        let txn = self.begin_on_a_live_connection().await?;
        match settings {
            Settings::Prepared(statement) => txn.execute_raw(statement).await,
            Settings::Simple(sql) => txn.execute_unprepared(&sql).await,
        }
        .map_err(StoreError::database("setting the transaction's actor"))?;
        Ok(ActorTransaction {
            txn,
            pooling: self.pooling,
        })
    }

    /// `BEGIN` on a pooled connection ([`Store::on_a_live_connection`]).
    async fn begin_on_a_live_connection(&self) -> Result<DatabaseTransaction, StoreError> {
        self.on_a_live_connection(|| self.db.begin())
            .await
            .map_err(StoreError::database("beginning a transaction"))
    }

    /// Runs `first`, the first statement sent on a pooled connection, which must change nothing
    /// that sending it twice would harm (a `BEGIN`, a lone statement such as
    /// `ipa_authenticate`). The pool does not ping a connection before lending it (a round trip
    /// on every use); that statement is the test instead: one that finds its connection broken
    /// (reset while idle, its backend terminated by a restart) is sent again on another, since
    /// the broken connection is discarded as it goes back, at most once per connection the pool
    /// holds. No connection at all (the database is down) is not retried: the pool's bounded wait
    /// already happened.
    pub(crate) async fn on_a_live_connection<T, F>(
        &self,
        mut first: impl FnMut() -> F,
    ) -> Result<T, DbErr>
    where
        F: Future<Output = Result<T, DbErr>>,
    {
        let mut attempt = 1;
        loop {
            match first().await {
                Err(error) if attempt < self.begin_attempts && is_broken_connection(&error) => {
                    tracing::debug!(%error, attempt, "a pooled connection was broken; trying another");
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Closes every connection of the pool (and of the direct pool).
    pub async fn close(self) -> Result<(), StoreError> {
        let closed = self
            .db
            .close()
            .await
            .map_err(StoreError::database("closing the pool"));
        // Closing a pool twice (when the direct pool is the pool itself) is harmless.
        let direct = self
            .direct
            .close()
            .await
            .map_err(StoreError::database("closing the direct pool"));
        closed.and(direct)
    }
}

/// Opens a pool of connections to `url`.
async fn open_pool(
    url: &str,
    options: PoolOptions,
    pooling: Pooling,
) -> Result<DatabaseConnection, StoreError> {
    let mut connect = ConnectOptions::new(url);
    connect
        .max_connections(options.max_connections)
        .min_connections(0)
        .acquire_timeout(options.acquire_timeout)
        .connect_timeout(options.acquire_timeout)
        // No ping before lending a connection: it would cost a round trip per transaction. The
        // driver tests each connection as it comes back, and a `BEGIN` that finds one broken
        // while idle is sent again on another (`Store::begin_on_a_live_connection`).
        .test_before_acquire(false)
        // Statements are logged by our own spans, never with their bound values (which may be
        // secrets).
        .sqlx_logging(false);
    if pooling == Pooling::Transaction {
        // A cached statement lives on the server connection that prepared it, which the next
        // transaction may not get. Without the cache every statement is prepared anew in its
        // transaction (the driver still names it: see the module's documentation).
        connect.map_sqlx_postgres_opts(|options| options.statement_cache_capacity(0));
    }
    Database::connect(connect)
        .await
        .map_err(|source| StoreError::Connect {
            target: redact_url(url),
            source,
        })
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

    /// The first statement of the transaction: it sets the role and every setting,
    /// transaction-locally, in one round trip. Straight to PostgreSQL it is a prepared statement
    /// with the values bound ([`PREPARED_SETTINGS`]), parsed and planned once per connection.
    /// Under transaction pooling it is sent in the simple protocol with the values as escaped
    /// literals, after a `DEALLOCATE ALL` that clears what earlier transactions left on the
    /// server connection: no prepared statement of its own, so it runs before anything else can
    /// collide with a leftover name.
    fn settings(&self, pooling: Pooling) -> Result<Settings, DbErr> {
        let values = self.setting_values();
        match pooling {
            Pooling::Session => Ok(Settings::Prepared(Statement::from_sql_and_values(
                DbBackend::Postgres,
                PREPARED_SETTINGS,
                values.map(sea_orm::Value::from),
            ))),
            Pooling::Transaction => {
                let mut sql = String::from("DEALLOCATE ALL; SELECT ");
                for (index, (name, value)) in SETTING_NAMES.iter().zip(&values).enumerate() {
                    if index > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str("set_config(");
                    sql.push_str(&quote_literal(name)?);
                    sql.push_str(", ");
                    sql.push_str(&quote_literal(value)?);
                    sql.push_str(", true)");
                }
                Ok(Settings::Simple(sql))
            }
        }
    }

    /// The value of each of [`SETTING_NAMES`], in order.
    fn setting_values(&self) -> [String; SETTING_NAMES.len()] {
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
        let is_superuser = if actor.is_superuser() {
            "true"
        } else {
            "false"
        };
        [
            role.to_owned(),
            user_id,
            is_superuser.to_owned(),
            client_ip,
            user_agent,
            self.login_identifier.unwrap_or_default().to_owned(),
            self.token_digest_hex.clone().unwrap_or_default(),
            "off".to_owned(),
        ]
    }
}

/// The settings every transaction makes, in the order of [`PREPARED_SETTINGS`]'s parameters.
///
/// `jit` is off: the platform's statements are short, and PostgreSQL's cost model, inflated by
/// row level security's subplans over millions of rows, chose to compile some of them (a page of
/// a run's log lines under a generic plan) for 20 to 50 ms each, for queries that run in a
/// millisecond.
const SETTING_NAMES: [&str; 8] = [
    "role",
    "app.current_user_id",
    "app.is_superuser",
    "app.client_ip",
    "app.user_agent",
    "app.login_identifier",
    "app.session_token_hash",
    "jit",
];

/// [`SETTING_NAMES`] set transaction-locally to `$1` to `$8`.
const PREPARED_SETTINGS: &str = "SELECT set_config('role', $1, true), \
     set_config('app.current_user_id', $2, true), set_config('app.is_superuser', $3, true), \
     set_config('app.client_ip', $4, true), set_config('app.user_agent', $5, true), \
     set_config('app.login_identifier', $6, true), set_config('app.session_token_hash', $7, true), \
     set_config('jit', $8, true)";

/// A transaction's first statement ([`TransactionScope::settings`]).
enum Settings {
    /// Sent as a prepared statement with its values bound.
    Prepared(Statement),
    /// Sent in the simple protocol, values inlined as literals.
    Simple(String),
}

/// `text` as a PostgreSQL string literal, as libpq's `PQescapeLiteral` writes it: an escape
/// string (`E'...'`) with quotes and backslashes doubled, so its meaning does not depend on
/// `standard_conforming_strings`. The connection's encoding is UTF-8 (the driver asks for it),
/// where no byte of a multi-byte character can pass for a quote or a backslash. PostgreSQL
/// cannot store NUL, and the protocol ends a query at one, so text with NUL is refused.
fn quote_literal(text: &str) -> Result<String, DbErr> {
    if text.contains('\0') {
        return Err(DbErr::Custom(
            "a transaction setting contains a NUL character".to_owned(),
        ));
    }
    let mut quoted = String::with_capacity(text.len() + 4);
    quoted.push_str("E'");
    for character in text.chars() {
        match character {
            '\'' => quoted.push_str("''"),
            '\\' => quoted.push_str("\\\\"),
            other => quoted.push(other),
        }
    }
    quoted.push('\'');
    Ok(quoted)
}

/// A transaction acting for one actor. Dropping it without [`ActorTransaction::commit`] rolls it
/// back.
#[derive(Debug)]
pub struct ActorTransaction {
    txn: DatabaseTransaction,
    pooling: Pooling,
}

impl ActorTransaction {
    /// The transaction, for the store's adapters (and tests) to run statements on.
    pub fn connection(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// Commits the work.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.deallocate().await;
        self.txn
            .commit()
            .await
            .map_err(StoreError::database("committing"))
    }

    /// Rolls the work back.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.deallocate().await;
        self.txn
            .rollback()
            .await
            .map_err(StoreError::database("rolling back"))
    }

    /// Under transaction pooling, deallocates the statements this transaction prepared before
    /// the server connection goes back to the pooler. It fails only where the transaction
    /// already failed (PostgreSQL then refuses everything but its end, and `COMMIT` rolls back
    /// as it always does) or the connection is lost (which the end reports): either way what
    /// is left is deallocated by the next transaction's first statement, so the failure is not
    /// the caller's.
    async fn deallocate(&self) {
        if self.pooling == Pooling::Transaction
            && let Err(error) = self.txn.execute_unprepared("DEALLOCATE ALL").await
        {
            tracing::debug!(%error, "cannot deallocate the transaction's statements");
        }
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

    #[test]
    fn literals_are_quoted_whatever_they_hold() {
        assert_eq!(quote_literal("plain").unwrap(), "E'plain'");
        assert_eq!(quote_literal("").unwrap(), "E''");
        assert_eq!(quote_literal("it's").unwrap(), "E'it''s'");
        assert_eq!(quote_literal(r"a\'b").unwrap(), r"E'a\\''b'");
        assert_eq!(quote_literal("日本 $$ ;").unwrap(), "E'日本 $$ ;'");
        assert!(quote_literal("a\0b").is_err());
    }

    #[test]
    fn transaction_pooling_deallocates_before_anything_else() {
        let actor = Actor::system();
        let scope = TransactionScope::acting(&actor);
        let Settings::Simple(pooled) = scope.settings(Pooling::Transaction).unwrap() else {
            panic!("transaction pooling sends literals");
        };
        assert!(
            pooled.starts_with("DEALLOCATE ALL; SELECT set_config(E'role', E'ipa_app', true)"),
            "{pooled}"
        );
        assert_eq!(
            pooled.matches("set_config(").count(),
            SETTING_NAMES.len(),
            "{pooled}"
        );
    }

    #[test]
    fn the_prepared_settings_set_every_setting_in_order() {
        for (index, name) in SETTING_NAMES.iter().enumerate() {
            let call = format!("set_config('{name}', ${}, true)", index + 1);
            assert!(PREPARED_SETTINGS.contains(&call), "{call}");
        }
        assert_eq!(
            PREPARED_SETTINGS.matches("set_config(").count(),
            SETTING_NAMES.len()
        );
        let actor = Actor::system();
        let Settings::Prepared(statement) = TransactionScope::acting(&actor)
            .settings(Pooling::Session)
            .unwrap()
        else {
            panic!("straight to PostgreSQL the settings are prepared");
        };
        let values = statement.values.unwrap().0;
        assert_eq!(values.len(), SETTING_NAMES.len());
        assert_eq!(values[0], sea_orm::Value::from("ipa_app".to_owned()));
    }
}
