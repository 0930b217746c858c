//! The identity context's repositories on PostgreSQL: accounts ([`PgUsers`]) and sessions with
//! sign-in attempts ([`PgSessions`]).
//!
//! Every statement runs in a transaction scoped to its actor, or to one of the two narrow
//! pre-authentication contexts the schema's policies know: a sign-in sees only the account its
//! identifier names and that identifier's attempts; a token authentication sees only the
//! presented token's session and its account.

use ipa_identity::{
    AttemptId, CreateUserError, Credentials, Email, FullName, LoginIdentifier, NewUser,
    PasswordHash, Principal, Session, SessionLifetimes, SessionRepository, SignInFailure,
    SignInLookup, ThrottleCheck, ThrottlePolicy, TokenDigest, UniqueField, UpdateUserError, User,
    UserChanges, UserFilter, UserRepository, Username,
};
use ipa_kernel::{Actor, ClientInfo, Page, PageRequest, SessionId, StorageError, UserId};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, SqlErr};
use time::Duration;
use uuid::Uuid;

use crate::audit;
use crate::sql::{
    ListQuery, commit, db_error, from_store, like_literal, query_one_alone, read_page, statement,
    storage,
};
use crate::store::{ActorTransaction, Store, TransactionScope};

/// The columns of a [`User`], NULLs of the seed's nullable columns read as their defaults.
const USER_COLUMNS: &str = "id, email, username, full_name, is_active IS TRUE AS is_active, \
     is_superuser IS TRUE AS is_superuser, coalesce(created_at, now()) AS created_at, \
     coalesce(updated_at, created_at, now()) AS updated_at, last_login_at";

/// A session is touched (idle expiry pushed forward) at most this often, so authenticating is a
/// read on almost every request rather than a write.
const TOUCH_INTERVAL_SECONDS: f64 = 60.0;

fn seconds(duration: Duration) -> f64 {
    duration.as_seconds_f64()
}

fn user_from_row(row: &QueryResult) -> Result<User, StorageError> {
    let get = storage("reading a user row");
    let email: String = row.try_get("", "email").map_err(&get)?;
    let username: String = row.try_get("", "username").map_err(&get)?;
    let full_name: Option<String> = row.try_get("", "full_name").map_err(&get)?;
    let invalid = |error: ipa_identity::ValueError| StorageError::new("reading a user row", error);
    Ok(User {
        id: UserId::from_uuid(row.try_get("", "id").map_err(&get)?),
        email: Email::parse(&email).map_err(invalid)?,
        username: Username::parse(&username).map_err(invalid)?,
        // A name the rules no longer accept is shown as none rather than failing the account.
        full_name: full_name.and_then(|name| FullName::parse(&name).ok()),
        is_active: row.try_get("", "is_active").map_err(&get)?,
        is_superuser: row.try_get("", "is_superuser").map_err(&get)?,
        created_at: row.try_get("", "created_at").map_err(&get)?,
        updated_at: row.try_get("", "updated_at").map_err(&get)?,
        last_login_at: row.try_get("", "last_login_at").map_err(&get)?,
    })
}

fn hash_from_row(row: &QueryResult) -> Result<PasswordHash, StorageError> {
    let phc: String = row
        .try_get("", "hashed_password")
        .map_err(storage("reading a password hash"))?;
    PasswordHash::parse(&phc).map_err(|error| StorageError::new("reading a password hash", error))
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
    let row = conn
        .query_one_raw(statement(
            &format!(
                "INSERT INTO users (email, username, full_name, hashed_password, is_superuser) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING {USER_COLUMNS}"
            ),
            [
                user.email.as_str().into(),
                user.username.as_str().into(),
                user.full_name
                    .as_ref()
                    .map(|name| name.as_str().to_owned())
                    .into(),
                hash.as_str().into(),
                user.is_superuser.into(),
            ],
        ))
        .await
        .map_err(|error| match duplicate_field(&error) {
            Some(field) => CreateUserError::Duplicate(field),
            None => CreateUserError::Storage(db_error("creating a user", error)),
        })?
        .ok_or_else(|| {
            CreateUserError::Storage(StorageError::new(
                "creating a user",
                "the insert returned no row",
            ))
        })?;
    Ok(user_from_row(&row)?)
}

async fn find_user(
    conn: &impl ConnectionTrait,
    id: UserId,
    lock: bool,
) -> Result<Option<User>, StorageError> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    conn.query_one_raw(statement(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1{lock}"),
        [id.as_uuid().into()],
    ))
    .await
    .map_err(storage("reading a user"))?
    .map(|row| user_from_row(&row))
    .transpose()
}

/// A `LIKE` pattern matching every text that starts with `text`.
fn like_prefix(text: &str) -> String {
    format!("{}%", like_literal(text))
}

/// Accounts on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgUsers {
    store: Store,
}

impl PgUsers {
    /// Accounts kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
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
        // Two servers starting together create one superuser, not two.
        conn.execute_raw(statement(
            "SELECT pg_advisory_xact_lock(hashtextextended('ipa.first_superuser', 0))",
            [],
        ))
        .await
        .map_err(storage("locking the first superuser's creation"))?;
        let exists = conn
            .query_one_raw(statement(
                "SELECT EXISTS (SELECT 1 FROM users WHERE is_superuser AND is_active) AS found",
                [],
            ))
            .await
            .map_err(storage("looking for a superuser"))?
            .map(|row| row.try_get::<bool>("", "found"))
            .transpose()
            .map_err(storage("looking for a superuser"))?
            .unwrap_or(false);
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
        let mut query = ListQuery::default();
        if let Some(active) = filter.is_active {
            let active = query.bind(active);
            query.condition(format!("(is_active IS TRUE) = ${active}"));
        }
        if let Some(prefix) = &filter.search_prefix {
            let email = query.bind(like_prefix(&prefix.as_str().to_lowercase()));
            let username = query.bind(like_prefix(prefix.as_str()));
            query.condition(format!(
                "(email LIKE ${email} ESCAPE '\\' OR username LIKE ${username} ESCAPE '\\')"
            ));
        }
        let query = query.newest_first(USER_COLUMNS, "users", "", page);
        read_page(
            &self.store,
            actor,
            query,
            page,
            "listing users",
            user_from_row,
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
            let superusers = conn
                .query_all_raw(statement(
                    "SELECT id FROM users WHERE is_superuser AND is_active ORDER BY id FOR UPDATE",
                    [],
                ))
                .await
                .map_err(storage("locking the superusers"))?;
            let current = find_user(conn, id, true)
                .await?
                .ok_or(UpdateUserError::NotFound)?;
            if changes.demotes(&current) && superusers.len() <= 1 {
                return Err(UpdateUserError::LastSuperuser);
            }
        }
        let row = conn
            .query_one_raw(statement(
                &format!(
                    "UPDATE users SET \
                     full_name = CASE WHEN $2 THEN $3 ELSE full_name END, \
                     is_active = coalesce($4, is_active), \
                     is_superuser = coalesce($5, is_superuser) \
                     WHERE id = $1 RETURNING {USER_COLUMNS}"
                ),
                [
                    id.as_uuid().into(),
                    changes.full_name.is_some().into(),
                    changes
                        .full_name
                        .clone()
                        .flatten()
                        .map(|name| name.as_str().to_owned())
                        .into(),
                    changes.is_active.into(),
                    changes.is_superuser.into(),
                ],
            ))
            .await
            .map_err(storage("updating a user"))?
            .ok_or(UpdateUserError::NotFound)?;
        let user = user_from_row(&row)?;
        commit(txn).await?;
        Ok(user)
    }

    async fn password_hash(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<Option<PasswordHash>, StorageError> {
        let txn = self.store.begin(actor).await.map_err(from_store)?;
        let hash = txn
            .connection()
            .query_one_raw(statement(
                "SELECT hashed_password FROM users WHERE id = $1",
                [id.as_uuid().into()],
            ))
            .await
            .map_err(storage("reading a password hash"))?
            .map(|row| hash_from_row(&row))
            .transpose()?;
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
        conn.execute_raw(statement(
            "UPDATE users SET hashed_password = $2 WHERE id = $1",
            [id.as_uuid().into(), hash.as_str().into()],
        ))
        .await
        .map_err(storage("changing a password"))?;
        conn.execute_raw(statement(
            "UPDATE sessions SET revoked_at = now() \
             WHERE user_id = $1 AND id <> $2 AND revoked_at IS NULL",
            [id.as_uuid().into(), keep.as_uuid().into()],
        ))
        .await
        .map_err(storage("ending the other sessions"))?;
        commit(txn).await
    }
}

/// Sessions and sign-in attempts on PostgreSQL.
#[derive(Clone, Debug)]
pub struct PgSessions {
    store: Store,
}

impl PgSessions {
    /// Sessions kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
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

/// The throttle's verdict in one statement: the lockout lasts until the oldest failure that
/// keeps a counter at its limit leaves the window. Failures of an identifier count only after
/// its last success; failures of an address count whatever identifier they tried, read through
/// `ipa_address_failure_at`, which answers with a time and never shows other identifiers. A
/// failure is a settled failed attempt, or an unsettled one younger than
/// [`UNSETTLED_ATTEMPT_SECONDS`].
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
        // Attempts on one identifier queue here for the few milliseconds of the check and the
        // record, so concurrent guesses cannot all slip under the limit.
        conn.execute_raw(statement(
            "SELECT pg_advisory_xact_lock(hashtextextended('ipa.sign_in:' || $1, 0))",
            [identifier.as_str().into()],
        ))
        .await
        .map_err(storage("serialising sign-in attempts"))?;

        let account = conn
            .query_one_raw(statement(
                &format!(
                    "SELECT {USER_COLUMNS}, hashed_password FROM users \
                     WHERE email = lower($1) OR username = $1"
                ),
                [identifier.as_str().into()],
            ))
            .await
            .map_err(storage("looking up an account"))?
            .map(|row| {
                Ok::<_, StorageError>(Credentials {
                    user: user_from_row(&row)?,
                    hash: hash_from_row(&row)?,
                })
            })
            .transpose()?;

        let locked_for: Option<f64> = conn
            .query_one_raw(statement(
                THROTTLE_SQL,
                [
                    identifier.as_str().into(),
                    seconds(policy.window()).into(),
                    i64::from(policy.max_per_account()).into(),
                    i64::from(policy.max_per_address()).into(),
                    UNSETTLED_ATTEMPT_SECONDS.into(),
                ],
            ))
            .await
            .map_err(storage("counting failed sign-ins"))?
            .map(|row| row.try_get::<Option<f64>>("", "locked_for"))
            .transpose()
            .map_err(storage("counting failed sign-ins"))?
            .flatten();

        let check = match locked_for {
            Some(remaining) if remaining > 0.0 => {
                ThrottleCheck::LockedFor(Duration::seconds_f64(remaining))
            }
            _ => {
                let row = conn
                    .query_one_raw(statement(
                        "INSERT INTO login_attempts (identifier, ip_address, succeeded) \
                         VALUES ($1, ipa_client_ip(), NULL) RETURNING id",
                        [identifier.as_str().into()],
                    ))
                    .await
                    .map_err(storage("recording a sign-in attempt"))?
                    .ok_or_else(|| {
                        StorageError::new("recording a sign-in attempt", "no row returned")
                    })?;
                let id: i64 = row
                    .try_get("", "id")
                    .map_err(storage("recording a sign-in attempt"))?;
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
            txn.connection()
                .execute_raw(statement(
                    "UPDATE login_attempts SET succeeded = false WHERE id = $1",
                    [attempt.get().into()],
                ))
                .await
                .map_err(storage("settling a failed sign-in"))?;
        }
        audit::record(
            txn.connection(),
            "login",
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
        conn.execute_raw(statement(
            "UPDATE login_attempts SET succeeded = true WHERE id = $1",
            [attempt.get().into()],
        ))
        .await
        .map_err(storage("marking a sign-in successful"))?;
        let row = conn
            .query_one_raw(statement(
                "INSERT INTO sessions (user_id, token_hash, idle_expires_at, expires_at, ip_address, user_agent) \
                 VALUES ($1, $2, now() + $3 * interval '1 second', now() + $4 * interval '1 second', \
                         ipa_client_ip(), ipa_user_agent()) \
                 RETURNING id, created_at, idle_expires_at, expires_at",
                [
                    user.id.as_uuid().into(),
                    digest.as_bytes().to_vec().into(),
                    seconds(lifetimes.idle()).into(),
                    seconds(lifetimes.absolute()).into(),
                ],
            ))
            .await
            .map_err(storage("starting a session"))?
            .ok_or_else(|| StorageError::new("starting a session", "no row returned"))?;
        let get = storage("reading a new session");
        let session = Session {
            id: SessionId::from_uuid(row.try_get::<Uuid>("", "id").map_err(&get)?),
            user_id: user.id,
            created_at: row.try_get("", "created_at").map_err(&get)?,
            idle_expires_at: row.try_get("", "idle_expires_at").map_err(&get)?,
            expires_at: row.try_get("", "expires_at").map_err(&get)?,
        };
        conn.execute_raw(statement(
            "UPDATE users SET last_login_at = now() WHERE id = $1",
            [user.id.as_uuid().into()],
        ))
        .await
        .map_err(storage("stamping the last sign-in"))?;
        audit::record(
            conn,
            "login",
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
        // One statement: the lookup and, when due, the touch (`ipa_authenticate`, which takes
        // the application role and the token's context itself).
        let Some(row) = query_one_alone(
            &self.store,
            &Actor::anonymous(client.clone()),
            statement(
                "SELECT session_id, user_id, is_superuser FROM ipa_authenticate($1, $2, $3)",
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
        let get = storage("reading a session");
        Ok(Some(Principal {
            user_id: UserId::from_uuid(row.try_get("", "user_id").map_err(&get)?),
            is_superuser: row.try_get("", "is_superuser").map_err(&get)?,
            session_id: SessionId::from_uuid(row.try_get("", "session_id").map_err(&get)?),
            client: client.clone(),
        }))
    }

    async fn end_session(&self, principal: &Principal) -> Result<(), StorageError> {
        let txn = self
            .store
            .begin(&principal.actor())
            .await
            .map_err(from_store)?;
        let conn = txn.connection();
        conn.execute_raw(statement(
            "UPDATE sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL",
            [principal.session_id.as_uuid().into()],
        ))
        .await
        .map_err(storage("ending a session"))?;
        audit::record(
            conn,
            "logout",
            "user",
            Some(principal.user_id.as_uuid()),
            serde_json::json!({"session_id": principal.session_id}),
        )
        .await?;
        commit(txn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_prefixes_match_literally() {
        assert_eq!(like_prefix("a_b%c\\"), "a\\_b\\%c\\\\%");
        assert_eq!(like_prefix("alice"), "alice%");
    }
}
