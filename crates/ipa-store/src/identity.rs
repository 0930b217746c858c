//! The identity context's repositories on PostgreSQL: accounts ([`PgUsers`]) and sessions with
//! sign-in attempts ([`PgSessions`]).
//!
//! Every statement runs in a transaction scoped to its actor, or to one of the two narrow
//! pre-authentication contexts the schema's policies know: a sign-in sees only the account its
//! identifier names and that identifier's attempts; a token authentication sees only the
//! presented token's session and its account.
//!
//! A token's authentication is remembered briefly by the process's [`SessionCache`] when one is
//! attached; every change made here that ends or alters a session or an account forgets that
//! account's tokens as it commits.
//!
//! Statements go through the generated entities and SeaORM's query builder; a row becomes a
//! domain value in one place (`TryFrom<UserRow> for User`). The few statements the builder cannot
//! say well are named constants, each saying why it is raw.

use ipa_identity::{
    AttemptId, CreateUserError, Credentials, Email, FullName, LoginIdentifier, NewUser,
    PasswordHash, Principal, Session, SessionLifetimes, SessionRepository, SignInFailure,
    SignInLookup, ThrottleCheck, ThrottlePolicy, TokenDigest, UniqueField, UpdateUserError, User,
    UserChanges, UserFilter, UserRepository, Username,
};
use ipa_kernel::{Actor, ClientInfo, Page, PageRequest, SessionId, StorageError, UserId};
use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, Query};
use sea_orm::{
    ActiveValue, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, DerivePartialModel,
    EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect, SelectExt, SqlErr,
    Statement, StatementBuilder,
};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::audit::{self, AuditAction};
use crate::entity::{login_attempts, sessions, users};
use crate::session_cache::{CachedSession, SessionCache};
use crate::sql::{
    commit, db_error, from_store, like_literal, newest_first, query_one_alone, read_rows_page,
    statement, storage,
};
use crate::store::{ActorTransaction, Store, TransactionScope};

/// The id a sign-in attempt's insert returns.
#[derive(Debug, FromQueryResult)]
struct AttemptRow {
    id: i64,
}

/// A session is touched (idle expiry pushed forward) at most this often, so authenticating is a
/// read on almost every request rather than a write.
const TOUCH_INTERVAL_SECONDS: f64 = 60.0;

fn seconds(duration: Duration) -> f64 {
    duration.as_seconds_f64()
}

/// An account's row as the store reads it: every column but the password hash, so lookups and
/// lists never fetch it (the sign-in reads the whole `users::Model`).
#[derive(Debug, DerivePartialModel)]
#[sea_orm(entity = "users::Entity")]
struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    full_name: Option<String>,
    is_active: Option<bool>,
    is_superuser: Option<bool>,
    created_at: Option<OffsetDateTime>,
    updated_at: Option<OffsetDateTime>,
    last_login_at: Option<OffsetDateTime>,
}

impl From<users::Model> for UserRow {
    fn from(model: users::Model) -> Self {
        Self {
            id: model.id,
            email: model.email,
            username: model.username,
            full_name: model.full_name,
            is_active: model.is_active,
            is_superuser: model.is_superuser,
            created_at: model.created_at,
            updated_at: model.updated_at,
            last_login_at: model.last_login_at,
        }
    }
}

/// The one place an account's row becomes a [`User`]. The seed's schema leaves `is_active`,
/// `is_superuser`, `created_at` and `updated_at` nullable (with defaults, so only a hand-written
/// NULL leaves one empty): a NULL flag is false, as `IS TRUE` reads it in the policies, and a
/// missing time is the creation time or, failing that, now.
impl TryFrom<UserRow> for User {
    type Error = StorageError;

    fn try_from(row: UserRow) -> Result<Self, StorageError> {
        let invalid =
            |error: ipa_identity::ValueError| StorageError::new("reading a user row", error);
        let created_at = row.created_at.unwrap_or_else(OffsetDateTime::now_utc);
        Ok(User {
            id: UserId::from_uuid(row.id),
            email: Email::parse(&row.email).map_err(invalid)?,
            username: Username::parse(&row.username).map_err(invalid)?,
            // A name the rules no longer accept is shown as none rather than failing the account.
            full_name: row.full_name.and_then(|name| FullName::parse(&name).ok()),
            is_active: row.is_active == Some(true),
            is_superuser: row.is_superuser == Some(true),
            created_at,
            updated_at: row.updated_at.unwrap_or(created_at),
            last_login_at: row.last_login_at,
        })
    }
}

fn parse_hash(phc: &str) -> Result<PasswordHash, StorageError> {
    PasswordHash::parse(phc).map_err(|error| StorageError::new("reading a password hash", error))
}

/// An account with its password hash, as a sign-in reads it.
fn credentials(model: users::Model) -> Result<Credentials, StorageError> {
    let hash = parse_hash(&model.hashed_password)?;
    Ok(Credentials {
        user: UserRow::from(model).try_into()?,
        hash,
    })
}

fn duplicate_field(error: &DbErr) -> Option<UniqueField> {
    match error.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(message)) if message.contains("users_email_key") => {
            Some(UniqueField::Email)
        }
        Some(SqlErr::UniqueConstraintViolation(message))
            if message.contains("users_username_key") =>
        {
            Some(UniqueField::Username)
        }
        _ => None,
    }
}

async fn insert_user(
    conn: &impl ConnectionTrait,
    user: &NewUser,
    hash: &PasswordHash,
) -> Result<User, CreateUserError> {
    // Only these columns are written; the others take the schema's defaults.
    let row = users::ActiveModel {
        email: ActiveValue::Set(user.email.as_str().to_owned()),
        username: ActiveValue::Set(user.username.as_str().to_owned()),
        full_name: ActiveValue::Set(user.full_name.as_ref().map(|name| name.as_str().to_owned())),
        hashed_password: ActiveValue::Set(hash.as_str().to_owned()),
        is_superuser: ActiveValue::Set(Some(user.is_superuser)),
        ..Default::default()
    };
    let created = users::Entity::insert(row)
        .exec_with_returning(conn)
        .await
        .map_err(|error| match duplicate_field(&error) {
            Some(field) => CreateUserError::Duplicate(field),
            None => CreateUserError::Storage(db_error("creating a user", error)),
        })?;
    Ok(UserRow::from(created).try_into()?)
}

async fn find_user(
    conn: &impl ConnectionTrait,
    id: UserId,
    lock: bool,
) -> Result<Option<User>, StorageError> {
    let mut select = users::Entity::find_by_id(id.as_uuid());
    if lock {
        select = select.lock_exclusive();
    }
    select
        .into_partial_model::<UserRow>()
        .one(conn)
        .await
        .map_err(storage("reading a user"))?
        .map(User::try_from)
        .transpose()
}

/// A `LIKE` pattern matching every text that starts with `text`, wildcards in it taken literally
/// (sea-orm's `starts_with` would let them match anything).
fn like_prefix(text: &str) -> LikeExpr {
    LikeExpr::new(format!("{}%", like_literal(text))).escape('\\')
}

/// The statement of one page of the accounts `filter` selects ([`newest_first`]): each filter is
/// a condition only when given, so each query is planned for the indexes it can use, and the
/// password hash is never among the columns.
fn users_page(filter: &UserFilter, page: PageRequest) -> Statement {
    let mut select = users::Entity::find();
    if let Some(active) = filter.is_active {
        // A NULL flag counts as inactive, as everywhere else. `TRUE` is written as a constant
        // because `IS` takes no parameter.
        let is_active = users::Column::IsActive.into_expr();
        let true_ = Expr::Constant(true.into());
        select = select.filter(if active {
            is_active.is(true_)
        } else {
            is_active.is_not(true_)
        });
    }
    if let Some(prefix) = &filter.search_prefix {
        // Email addresses are stored in lower case; usernames compare exactly.
        select = select.filter(
            Condition::any()
                .add(users::Column::Email.like(like_prefix(&prefix.as_str().to_lowercase())))
                .add(users::Column::Username.like(like_prefix(prefix.as_str()))),
        );
    }
    newest_first(select, users::Column::CreatedAt, users::Column::Id, page)
        .into_partial_model::<UserRow>()
        .into_statement(DbBackend::Postgres)
}

/// Two servers starting together create one superuser, not two. Raw: an advisory lock is a
/// function call with no table behind it.
const FIRST_SUPERUSER_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('ipa.first_superuser', 0))";

/// Accounts on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgUsers {
    store: Store,
    cache: SessionCache,
}

impl PgUsers {
    /// Accounts kept in `store`.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: SessionCache::disabled(),
        }
    }

    /// The same, forgetting in `cache` the tokens of accounts it deactivates, promotes or demotes
    /// and the sessions a password change ends.
    pub fn with_cache(self, cache: SessionCache) -> Self {
        Self { cache, ..self }
    }
}

impl UserRepository for PgUsers {
    async fn create(
        &self,
        actor: &Actor,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> Result<User, CreateUserError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let created = insert_user(txn.connection(), user, hash).await?;
        commit(txn).await?;
        Ok(created)
    }

    async fn create_first_superuser(
        &self,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> Result<Option<User>, CreateUserError> {
        let txn = self
            .store
            .begin(&Actor::system())
            .await
            .map_err(from_store)?;
        let conn = txn.connection();
        conn.execute_raw(statement(FIRST_SUPERUSER_LOCK, []))
            .await
            .map_err(storage("locking the first superuser's creation"))?;
        let exists = users::Entity::find()
            .filter(users::Column::IsSuperuser.eq(true))
            .filter(users::Column::IsActive.eq(true))
            .exists(conn)
            .await
            .map_err(storage("looking for a superuser"))?;
        if exists {
            return Ok(None);
        }
        let created = insert_user(conn, user, hash).await?;
        commit(txn).await?;
        Ok(Some(created))
    }

    async fn find(&self, actor: &Actor, id: UserId) -> Result<Option<User>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let user = find_user(txn.connection(), id, false).await?;
        commit(txn).await?;
        Ok(user)
    }

    async fn list(
        &self,
        actor: &Actor,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<Page<User>, StorageError> {
        read_rows_page::<UserRow, _>(
            &self.store,
            actor,
            users_page(filter, page),
            page,
            "listing users",
            User::try_from,
            User::keyset,
        )
        .await
    }

    async fn update(
        &self,
        actor: &Actor,
        id: UserId,
        changes: &UserChanges,
    ) -> Result<User, UpdateUserError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        let may_demote = changes.is_active == Some(false) || changes.is_superuser == Some(false);
        if may_demote {
            // Lock every active superuser first, in a fixed order, so two administrators demoting
            // each other at once cannot both succeed.
            let superusers: Vec<Uuid> = users::Entity::find()
                .select_only()
                .column(users::Column::Id)
                .filter(users::Column::IsSuperuser.eq(true))
                .filter(users::Column::IsActive.eq(true))
                .order_by_asc(users::Column::Id)
                .lock_exclusive()
                .into_tuple()
                .all(conn)
                .await
                .map_err(storage("locking the superusers"))?;
            let current = find_user(conn, id, true)
                .await?
                .ok_or(UpdateUserError::NotFound)?;
            if changes.demotes(&current) && superusers.len() <= 1 {
                return Err(UpdateUserError::LastSuperuser);
            }
        }
        // Every column is set, to its new value or to itself, so an empty change still updates
        // the row: its `updated_at` and its audit row say someone saved it.
        let full_name = match &changes.full_name {
            Some(name) => Expr::val(name.as_ref().map(|name| name.as_str().to_owned())),
            None => users::Column::FullName.into_expr(),
        };
        let is_active = match changes.is_active {
            Some(active) => Expr::val(active),
            None => users::Column::IsActive.into_expr(),
        };
        let is_superuser = match changes.is_superuser {
            Some(superuser) => Expr::val(superuser),
            None => users::Column::IsSuperuser.into_expr(),
        };
        let updated = users::Entity::update_many()
            .col_expr(users::Column::FullName, full_name)
            .col_expr(users::Column::IsActive, is_active)
            .col_expr(users::Column::IsSuperuser, is_superuser)
            .filter(users::Column::Id.eq(id.as_uuid()))
            .exec_with_returning(conn)
            .await
            .map_err(storage("updating a user"))?
            .into_iter()
            .next()
            .ok_or(UpdateUserError::NotFound)?;
        let user = User::try_from(UserRow::from(updated))?;
        commit(txn).await?;
        self.cache.forget_user(id.as_uuid());
        Ok(user)
    }

    async fn password_hash(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<Option<PasswordHash>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let hash: Option<String> = users::Entity::find_by_id(id.as_uuid())
            .select_only()
            .column(users::Column::HashedPassword)
            .into_tuple()
            .one(txn.connection())
            .await
            .map_err(storage("reading a password hash"))?;
        let hash = hash.as_deref().map(parse_hash).transpose()?;
        commit(txn).await?;
        Ok(hash)
    }

    async fn change_password(
        &self,
        actor: &Actor,
        id: UserId,
        hash: &PasswordHash,
        keep: SessionId,
    ) -> Result<(), StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let conn = txn.connection();
        users::Entity::update_many()
            .col_expr(users::Column::HashedPassword, Expr::val(hash.as_str()))
            .filter(users::Column::Id.eq(id.as_uuid()))
            .exec(conn)
            .await
            .map_err(storage("changing a password"))?;
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::current_timestamp())
            .filter(sessions::Column::UserId.eq(id.as_uuid()))
            .filter(sessions::Column::Id.ne(keep.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(conn)
            .await
            .map_err(storage("ending the other sessions"))?;
        commit(txn).await?;
        self.cache.forget_user(id.as_uuid());
        Ok(())
    }
}

/// Sessions and sign-in attempts on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgSessions {
    store: Store,
    cache: SessionCache,
}

impl PgSessions {
    /// Sessions kept in `store`, every token authenticated by the database.
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: SessionCache::disabled(),
        }
    }

    /// The same, remembering authenticated tokens in `cache` (see [`SessionCache`]).
    pub fn with_cache(self, cache: SessionCache) -> Self {
        Self { cache, ..self }
    }

    /// A transaction acting as `actor` in the narrow context of a sign-in with `identifier`,
    /// which row level security lets read and settle that identifier's attempts.
    async fn signing_in(
        &self,
        actor: &Actor,
        identifier: &LoginIdentifier,
    ) -> Result<ActorTransaction, StorageError> {
        self.store
            .begin_with(TransactionScope {
                login_identifier: Some(identifier.as_str()),
                ..TransactionScope::acting(actor)
            })
            .await
            .map_err(from_store)
    }
}

/// How long an unsettled attempt (admitted, its password not yet checked) counts as a failure.
/// It covers the check and the two short transactions around it, so concurrent guesses count
/// each other. An attempt still unsettled after that was left so by a failure of the platform
/// (the database went away, an internal error), which is not the client's failure.
const UNSETTLED_ATTEMPT_SECONDS: f64 = 60.0;

/// Attempts on one identifier queue here (`$1`) for the few milliseconds of the check and the
/// record, so concurrent guesses cannot all slip under the limit. Raw: an advisory lock is a
/// function call with no table behind it.
const SIGN_IN_LOCK: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('ipa.sign_in:' || $1, 0))";

/// The throttle's verdict in one statement: the lockout lasts until the oldest failure that
/// keeps a counter at its limit leaves the window. Failures of an identifier count only after
/// its last success; failures of an address count whatever identifier they tried, read through
/// `ipa_address_failure_at`, which answers with a time and never shows other identifiers. A
/// failure is a settled failed attempt, or an unsettled one younger than
/// [`UNSETTLED_ATTEMPT_SECONDS`]. Raw: one statement of CTEs around a function of the schema,
/// with interval arithmetic on the database's clock, which the builder would only spell worse.
const THROTTLE_SQL: &str = "\
WITH last_success AS (
    SELECT max(attempted_at) AS at FROM login_attempts WHERE identifier = $1 AND succeeded
), account AS (
    SELECT attempted_at FROM login_attempts
     WHERE identifier = $1
       AND (succeeded IS FALSE OR (succeeded IS NULL AND attempted_at > now() - $5 * interval '1 second'))
       AND attempted_at > now() - $2 * interval '1 second'
       AND attempted_at > coalesce((SELECT at FROM last_success), '-infinity')
     ORDER BY attempted_at DESC OFFSET $3 - 1 LIMIT 1
), address AS (
    SELECT ipa_address_failure_at($2, $4, $5) AS attempted_at
)
SELECT extract(epoch FROM greatest((SELECT attempted_at FROM account), (SELECT attempted_at FROM address))
                         + $2 * interval '1 second' - clock_timestamp())::float8 AS locked_for";

/// [`THROTTLE_SQL`]'s answer: how long the identifier or the address stays locked, if it is.
#[derive(Debug, FromQueryResult)]
struct Lockout {
    locked_for: Option<f64>,
}

/// A new session for `$1` with the token digest `$2`, idle for `$3` seconds at most and living
/// `$4` seconds at most. Raw: its expiries are computed on the database's clock, and its client
/// comes from the schema's `ipa_client_ip()` and `ipa_user_agent()` (the transaction's settings),
/// neither of which an `ActiveModel` can hold.
const INSERT_SESSION: &str = "\
INSERT INTO sessions (user_id, token_hash, idle_expires_at, expires_at, ip_address, user_agent)
VALUES ($1, $2, now() + $3 * interval '1 second', now() + $4 * interval '1 second',
        ipa_client_ip(), ipa_user_agent())
RETURNING id, created_at, idle_expires_at, expires_at";

/// [`INSERT_SESSION`]'s answer.
#[derive(Debug, FromQueryResult)]
struct NewSession {
    id: Uuid,
    created_at: OffsetDateTime,
    idle_expires_at: OffsetDateTime,
    expires_at: OffsetDateTime,
}

/// The session and account behind the token digest `$1`, the idle expiry pushed `$2` seconds
/// ahead when it was last pushed more than `$3` seconds ago. Raw: one call of the schema's
/// `ipa_authenticate`, which takes the application role and the token's context itself, so that
/// authenticating stays one statement and one round trip.
/// It also answers how many seconds the session stays good at most (`seconds_left`).
const AUTHENTICATE: &str =
    "SELECT session_id, user_id, is_superuser, seconds_left FROM ipa_authenticate($1, $2, $3)";

/// [`AUTHENTICATE`]'s answer.
#[derive(Debug, FromQueryResult)]
struct Authenticated {
    session_id: Uuid,
    user_id: Uuid,
    is_superuser: bool,
    seconds_left: f64,
}

/// Settles sign-in attempt `attempt` as `succeeded`.
async fn settle_attempt(
    conn: &impl ConnectionTrait,
    attempt: AttemptId,
    succeeded: bool,
) -> Result<(), DbErr> {
    login_attempts::Entity::update_many()
        .col_expr(login_attempts::Column::Succeeded, Expr::val(succeeded))
        .filter(login_attempts::Column::Id.eq(attempt.get()))
        .exec(conn)
        .await?;
    Ok(())
}

impl SessionRepository for PgSessions {
    async fn admit_attempt(
        &self,
        identifier: &LoginIdentifier,
        client: &ClientInfo,
        policy: &ThrottlePolicy,
    ) -> Result<SignInLookup, StorageError> {
        let anonymous = Actor::anonymous(client.clone());
        let txn = self.signing_in(&anonymous, identifier).await?;
        let conn = txn.connection();
        conn.execute_raw(statement(SIGN_IN_LOCK, [identifier.as_str().into()]))
            .await
            .map_err(storage("serialising sign-in attempts"))?;

        // The same account the sign-in policy shows: emails are stored in lower case, usernames
        // compare exactly.
        let account = users::Entity::find()
            .filter(
                Condition::any()
                    .add(
                        users::Column::Email
                            .into_expr()
                            .eq(Func::lower(Expr::val(identifier.as_str()))),
                    )
                    .add(users::Column::Username.eq(identifier.as_str())),
            )
            .one(conn)
            .await
            .map_err(storage("looking up an account"))?
            .map(credentials)
            .transpose()?;

        let locked_for = Lockout::find_by_statement(statement(
            THROTTLE_SQL,
            [
                identifier.as_str().into(),
                seconds(policy.window()).into(),
                i64::from(policy.max_per_account()).into(),
                i64::from(policy.max_per_address()).into(),
                UNSETTLED_ATTEMPT_SECONDS.into(),
            ],
        ))
        .one(conn)
        .await
        .map_err(storage("counting failed sign-ins"))?
        .and_then(|lockout| lockout.locked_for);

        let check = match locked_for {
            Some(remaining) if remaining > 0.0 => {
                ThrottleCheck::LockedFor(Duration::seconds_f64(remaining))
            }
            _ => {
                // Unsettled (`succeeded` NULL), from the request's own address: the schema's
                // `ipa_client_ip()`, which the policy on attempts compares it with.
                let mut insert = Query::insert();
                insert
                    .into_table(login_attempts::Entity)
                    .columns([
                        login_attempts::Column::Identifier,
                        login_attempts::Column::IpAddress,
                        login_attempts::Column::Succeeded,
                    ])
                    .values([
                        Expr::val(identifier.as_str()),
                        Func::cust("ipa_client_ip").into(),
                        Expr::val(Option::<bool>::None),
                    ])
                    .map_err(|error| StorageError::new("recording a sign-in attempt", error))?
                    .returning_col(login_attempts::Column::Id);
                let id = AttemptRow::find_by_statement(StatementBuilder::build(
                    &insert,
                    &DbBackend::Postgres,
                ))
                .one(conn)
                .await
                .map_err(storage("recording a sign-in attempt"))?
                .ok_or_else(|| StorageError::new("recording a sign-in attempt", "no row returned"))?
                .id;
                ThrottleCheck::Admitted(AttemptId::new(id))
            }
        };
        commit(txn).await?;
        Ok(SignInLookup { check, account })
    }

    async fn record_failure(
        &self,
        attempt: Option<AttemptId>,
        identifier: &LoginIdentifier,
        client: &ClientInfo,
        account: Option<UserId>,
        reason: SignInFailure,
    ) -> Result<(), StorageError> {
        let anonymous = Actor::anonymous(client.clone());
        let txn = self.signing_in(&anonymous, identifier).await?;
        if let Some(attempt) = attempt {
            settle_attempt(txn.connection(), attempt, false)
                .await
                .map_err(storage("settling a failed sign-in"))?;
        }
        audit::record(
            txn.connection(),
            AuditAction::Login,
            "user",
            account.map(|id| id.as_uuid()),
            serde_json::json!({
                "outcome": "failure",
                "reason": reason.label(),
                "identifier": identifier.as_str(),
            }),
        )
        .await?;
        commit(txn).await
    }

    async fn start_session(
        &self,
        attempt: AttemptId,
        identifier: &LoginIdentifier,
        user: &User,
        client: &ClientInfo,
        digest: &TokenDigest,
        lifetimes: SessionLifetimes,
    ) -> Result<Session, StorageError> {
        let actor = Actor::user(user.id, user.is_superuser, client.clone());
        let txn = self.signing_in(&actor, identifier).await?;
        let conn = txn.connection();
        settle_attempt(conn, attempt, true)
            .await
            .map_err(storage("marking a sign-in successful"))?;
        let created = NewSession::find_by_statement(statement(
            INSERT_SESSION,
            [
                user.id.as_uuid().into(),
                digest.as_bytes().to_vec().into(),
                seconds(lifetimes.idle()).into(),
                seconds(lifetimes.absolute()).into(),
            ],
        ))
        .one(conn)
        .await
        .map_err(storage("starting a session"))?
        .ok_or_else(|| StorageError::new("starting a session", "no row returned"))?;
        let session = Session {
            id: SessionId::from_uuid(created.id),
            user_id: user.id,
            created_at: created.created_at,
            idle_expires_at: created.idle_expires_at,
            expires_at: created.expires_at,
        };
        users::Entity::update_many()
            .col_expr(users::Column::LastLoginAt, Expr::current_timestamp())
            .filter(users::Column::Id.eq(user.id.as_uuid()))
            .exec(conn)
            .await
            .map_err(storage("stamping the last sign-in"))?;
        audit::record(
            conn,
            AuditAction::Login,
            "user",
            Some(user.id.as_uuid()),
            serde_json::json!({"outcome": "success", "session_id": session.id}),
        )
        .await?;
        commit(txn).await?;
        Ok(session)
    }

    async fn authenticate(
        &self,
        digest: &TokenDigest,
        client: &ClientInfo,
        lifetimes: SessionLifetimes,
    ) -> Result<Option<Principal>, StorageError> {
        let principal = |session: CachedSession| Principal {
            user_id: UserId::from_uuid(session.user_id),
            is_superuser: session.is_superuser,
            session_id: SessionId::from_uuid(session.session_id),
            client: client.clone(),
        };
        if let Some(session) = self.cache.get(digest.as_bytes()) {
            return Ok(Some(principal(session)));
        }
        let ticket = self.cache.ticket();
        // One statement: the lookup and, when due, the touch.
        let Some(row) = query_one_alone(
            &self.store,
            &Actor::anonymous(client.clone()),
            statement(
                AUTHENTICATE,
                [
                    digest.as_bytes().to_vec().into(),
                    seconds(lifetimes.idle()).into(),
                    TOUCH_INTERVAL_SECONDS.into(),
                ],
            ),
            "authenticating a token",
        )
        .await?
        else {
            return Ok(None);
        };
        let found =
            Authenticated::from_query_result(&row, "").map_err(storage("reading a session"))?;
        let session = CachedSession {
            session_id: found.session_id,
            user_id: found.user_id,
            is_superuser: found.is_superuser,
        };
        if let Some(ticket) = ticket {
            self.cache
                .remember(ticket, *digest.as_bytes(), session, found.seconds_left);
        }
        Ok(Some(principal(session)))
    }

    async fn end_session(&self, principal: &Principal) -> Result<(), StorageError> {
        let txn = self
            .store
            .begin(&principal.actor())
            .await
            .map_err(from_store)?;
        let conn = txn.connection();
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::current_timestamp())
            .filter(sessions::Column::Id.eq(principal.session_id.as_uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(conn)
            .await
            .map_err(storage("ending a session"))?;
        audit::record(
            conn,
            AuditAction::Logout,
            "user",
            Some(principal.user_id.as_uuid()),
            serde_json::json!({"session_id": principal.session_id}),
        )
        .await?;
        commit(txn).await?;
        self.cache.forget_user(principal.user_id.as_uuid());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::QueryTrait;

    use super::*;

    #[test]
    fn like_prefixes_match_literally() {
        let sql = |text: &str| {
            users::Entity::find()
                .filter(users::Column::Email.like(like_prefix(text)))
                .build(DbBackend::Postgres)
                .to_string()
        };
        assert!(
            sql("a_b%c\\")
                .ends_with(r#"WHERE "users"."email" LIKE E'a\\_b\\%c\\\\%' ESCAPE E'\\'"#),
            "{}",
            sql("a_b%c\\")
        );
        assert!(
            sql("alice").ends_with(r#"LIKE 'alice%' ESCAPE E'\\'"#),
            "{}",
            sql("alice")
        );
    }

    /// The list's one statement: only the filters given, the keyset continuation, newest first,
    /// one row over the page.
    #[test]
    fn user_pages_filter_then_continue_newest_first() {
        use ipa_identity::SearchPrefix;
        use ipa_kernel::Keyset;

        let filter = UserFilter {
            is_active: Some(false),
            search_prefix: Some(SearchPrefix::parse("Al_").unwrap()),
        };
        let after = Keyset::new(OffsetDateTime::UNIX_EPOCH, Uuid::nil());
        let page = PageRequest {
            after: Some(after),
            ..PageRequest::default()
        };
        // The statement as it is sent: values bound, constants written out.
        let statement = users_page(&filter, page);
        let sql = statement.sql;
        let expected = r#"FROM "users" WHERE "users"."is_active" IS NOT TRUE AND ("users"."email" LIKE $1 ESCAPE E'\\' OR "users"."username" LIKE $2 ESCAPE E'\\') AND ("users"."created_at", "users"."id") < ($3, $4) ORDER BY "users"."created_at" DESC, "users"."id" DESC LIMIT $5"#;
        assert!(sql.ends_with(expected), "{sql}");
        let values = statement.values.unwrap().0;
        assert_eq!(
            values,
            [
                sea_orm::Value::from(r"al\_%"),
                sea_orm::Value::from(r"Al\_%"),
                sea_orm::Value::from(OffsetDateTime::UNIX_EPOCH),
                sea_orm::Value::from(Uuid::nil()),
                sea_orm::Value::from(51_u64),
            ]
        );
        // Never the password hash.
        assert!(!sql.contains("hashed_password"), "{sql}");
    }
}
