//! In-memory fakes of every port the [`crate::IdentityService`] uses, so its rules can be tested
//! alone, in milliseconds, without PostgreSQL.
//!
//! - [`FakeStore`]: accounts, sessions, sign-in attempts and the sign-in audit rows behind one
//!   [`Mutex`]; it implements both [`UserRepository`] and [`SessionRepository`], as the real
//!   store keeps both in one database (deactivating an account ends its sessions, a sign-in
//!   stamps the account);
//! - [`FakeHasher`]: a deterministic, unsalted password "hash" in PHC form that still tells a
//!   wrong password from the right one, and counts its verifications;
//! - [`FakeTokens`]: numbered bearer tokens with a deterministic digest.
//!
//! Why they are faithful enough: each method follows its port's documented contract and what the
//! PostgreSQL repositories (`ipa-store`) and the schema's row level security do, which tests of
//! the service rely on:
//! - visibility by actor: a user sees only their own account, superusers and the platform see
//!   every account, an anonymous actor none; a row the actor may not see behaves as missing, and
//!   an insert only a superuser may make is refused as the policy refuses it (a storage error);
//! - the unique email and username are reported as [`CreateUserError::Duplicate`];
//! - lists are newest first by `(created_at, id)`, continue strictly after the keyset, and are
//!   cut by [`Page::from_overfetched`];
//! - taking away the rights of the last active superuser is [`UpdateUserError::LastSuperuser`];
//!   deactivation ends the account's sessions (the schema's trigger); a password change ends
//!   every session but the one kept;
//! - the throttle counts failed and still-unsettled attempts of an identifier since its last
//!   success, and of a client address, within the window; the lockout lasts until the oldest
//!   failure that keeps a counter at its limit leaves the window, as `THROTTLE_SQL` computes it;
//! - a token authenticates while its session is neither revoked nor past its idle or absolute
//!   expiry and its account is active; use pushes the idle expiry forward (at most once a
//!   minute, never past the absolute expiry), as `ipa_authenticate` does;
//! - each method takes the lock once for its whole body and never awaits while holding it, so
//!   it is as atomic as the transaction (and the row and advisory locks) it stands for.
//!
//! Time is a clock of the store's own ([`FakeStore::advance`]), which every write moves forward
//! by a millisecond so that rows created one after the other have distinct creation times.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ipa_kernel::{Actor, ClientInfo, Page, PageRequest, SessionId, StorageError, UserId};
use time::{Duration, OffsetDateTime};

use crate::error::{CreateUserError, CryptoError, UniqueField, UpdateUserError};
use crate::ports::{
    Credentials, PasswordHasher, SessionRepository, SignInLookup, TokenGenerator, UserRepository,
};
use crate::session::{
    AttemptId, BearerToken, LoginIdentifier, Principal, Session, SessionLifetimes, SignInFailure,
    ThrottleCheck, ThrottlePolicy, TokenDigest,
};
use crate::user::{NewUser, User, UserChanges, UserFilter};
use crate::values::{Password, PasswordHash};

/// How long an unsettled attempt counts as a failure (the store's `UNSETTLED_ATTEMPT_SECONDS`).
const UNSETTLED_ATTEMPT: Duration = Duration::seconds(60);

/// How often a session's idle expiry is pushed forward at most (the store's
/// `TOUCH_INTERVAL_SECONDS`).
const TOUCH_INTERVAL: Duration = Duration::seconds(60);

/// An account with its hash.
#[derive(Clone, Debug)]
struct StoredUser {
    user: User,
    hash: PasswordHash,
}

/// A session with what the sessions table keeps beside it.
#[derive(Clone, Debug)]
struct StoredSession {
    session: Session,
    digest: TokenDigest,
    last_used_at: OffsetDateTime,
    revoked: bool,
}

/// A sign-in attempt: unsettled (`None`), failed or successful.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Its id.
    pub(crate) id: AttemptId,
    /// The identifier tried.
    pub(crate) identifier: String,
    /// The client's address.
    pub(crate) ip: Option<IpAddr>,
    /// When.
    pub(crate) at: OffsetDateTime,
    /// `Some(true)` once successful, `Some(false)` once failed.
    pub(crate) succeeded: Option<bool>,
}

/// A row of the audit trail about signing in and out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AuditEntry {
    /// A failed sign-in, with its reason and the account the identifier named.
    LoginFailed {
        /// The normalised identifier.
        identifier: String,
        /// The account, when one has the identifier.
        account: Option<UserId>,
        /// Why.
        reason: SignInFailure,
    },
    /// A successful sign-in.
    LoginSucceeded {
        /// The account.
        user: UserId,
        /// The session it started.
        session: SessionId,
    },
    /// A sign-out.
    Logout {
        /// The account.
        user: UserId,
        /// The session it ended.
        session: SessionId,
    },
}

#[derive(Debug)]
struct State {
    now: OffsetDateTime,
    users: Vec<StoredUser>,
    sessions: Vec<StoredSession>,
    attempts: Vec<Attempt>,
    audit: Vec<AuditEntry>,
    next_attempt: i64,
}

impl State {
    /// Moves the clock a millisecond forward and answers the new time: each write is a
    /// transaction of its own, later than the one before.
    fn tick(&mut self) -> OffsetDateTime {
        self.now += Duration::milliseconds(1);
        self.now
    }

    fn user_mut(&mut self, id: UserId) -> Option<&mut StoredUser> {
        self.users.iter_mut().find(|stored| stored.user.id == id)
    }

    fn visible_user(&self, actor: &Actor, id: UserId) -> Option<&StoredUser> {
        self.users
            .iter()
            .find(|stored| stored.user.id == id && may_see(actor, &stored.user))
    }

    fn insert_user(
        &mut self,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> Result<User, CreateUserError> {
        for stored in &self.users {
            if stored.user.email == user.email {
                return Err(CreateUserError::Duplicate(UniqueField::Email));
            }
            if stored.user.username == user.username {
                return Err(CreateUserError::Duplicate(UniqueField::Username));
            }
        }
        let now = self.tick();
        let created = User {
            id: UserId::new_random(),
            email: user.email.clone(),
            username: user.username.clone(),
            full_name: user.full_name.clone(),
            is_active: true,
            is_superuser: user.is_superuser,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        };
        self.users.push(StoredUser {
            user: created.clone(),
            hash: hash.clone(),
        });
        Ok(created)
    }

    fn revoke_sessions(&mut self, user: UserId, keep: Option<SessionId>) {
        for stored in &mut self.sessions {
            if stored.session.user_id == user && Some(stored.session.id) != keep {
                stored.revoked = true;
            }
        }
    }

    /// When the `nth` most recent failure among `attempts` happened, if there are that many.
    fn nth_failure<'a>(
        &self,
        attempts: impl Iterator<Item = &'a Attempt>,
        nth: u32,
        window: Duration,
    ) -> Option<OffsetDateTime> {
        let mut failures: Vec<OffsetDateTime> = attempts
            .filter(|attempt| match attempt.succeeded {
                Some(succeeded) => !succeeded,
                None => attempt.at > self.now - UNSETTLED_ATTEMPT,
            })
            .filter(|attempt| attempt.at > self.now - window)
            .map(|attempt| attempt.at)
            .collect();
        failures.sort_unstable_by(|a, b| b.cmp(a));
        let index = usize::try_from(nth).ok()?.checked_sub(1)?;
        failures.get(index).copied()
    }

    fn settle(&mut self, attempt: AttemptId, succeeded: bool) {
        if let Some(found) = self.attempts.iter_mut().find(|a| a.id == attempt) {
            found.succeeded = Some(succeeded);
        }
    }
}

/// Whether row level security lets `actor` see `user`.
fn may_see(actor: &Actor, user: &User) -> bool {
    actor.is_superuser() || actor.user_id() == Some(user.id)
}

/// Accounts, sessions and sign-in attempts in memory; clones share the same state.
#[derive(Clone, Debug)]
pub(crate) struct FakeStore {
    state: Arc<Mutex<State>>,
}

impl Default for FakeStore {
    fn default() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                now: OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
                users: Vec::new(),
                sessions: Vec::new(),
                attempts: Vec::new(),
                audit: Vec::new(),
                next_attempt: 1,
            })),
        }
    }
}

impl FakeStore {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; its state is still
        // the best account of what happened.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Moves the store's clock forward.
    pub(crate) fn advance(&self, by: Duration) {
        self.lock().now += by;
    }

    /// The store's current time.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.lock().now
    }

    /// Every sign-in attempt recorded, oldest first.
    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        self.lock().attempts.clone()
    }

    /// The audit trail of signing in and out, oldest first.
    pub(crate) fn audit(&self) -> Vec<AuditEntry> {
        self.lock().audit.clone()
    }

    /// The account with `id` as stored, whoever may see it.
    pub(crate) fn user(&self, id: UserId) -> Option<User> {
        self.lock()
            .users
            .iter()
            .find(|stored| stored.user.id == id)
            .map(|stored| stored.user.clone())
    }

    /// Stores an account directly (as a seed or an older version would have), with `hash`.
    pub(crate) fn seed(&self, user: &NewUser, hash: &PasswordHash) -> User {
        let mut state = self.lock();
        match state.insert_user(user, hash) {
            Ok(user) => user,
            Err(error) => panic!("seeding {}: {error}", user.username),
        }
    }

    /// Whether the session `id` has been revoked (signed out or ended by a change of the account).
    pub(crate) fn is_revoked(&self, id: SessionId) -> bool {
        self.lock()
            .sessions
            .iter()
            .any(|stored| stored.session.id == id && stored.revoked)
    }
}

impl UserRepository for FakeStore {
    async fn create(
        &self,
        actor: &Actor,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> Result<User, CreateUserError> {
        if !actor.is_superuser() {
            // `users_insert_admin`: the policy refuses the row.
            return Err(CreateUserError::Storage(StorageError::new(
                "creating a user",
                "new row violates row-level security policy for table \"users\"",
            )));
        }
        self.lock().insert_user(user, hash)
    }

    async fn create_first_superuser(
        &self,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> Result<Option<User>, CreateUserError> {
        let mut state = self.lock();
        if state
            .users
            .iter()
            .any(|stored| stored.user.is_superuser && stored.user.is_active)
        {
            return Ok(None);
        }
        state.insert_user(user, hash).map(Some)
    }

    async fn find(&self, actor: &Actor, id: UserId) -> Result<Option<User>, StorageError> {
        Ok(self
            .lock()
            .visible_user(actor, id)
            .map(|stored| stored.user.clone()))
    }

    async fn list(
        &self,
        actor: &Actor,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<Page<User>, StorageError> {
        let state = self.lock();
        let mut rows: Vec<User> = state
            .users
            .iter()
            .map(|stored| &stored.user)
            .filter(|user| may_see(actor, user))
            .filter(|user| {
                filter
                    .is_active
                    .is_none_or(|active| user.is_active == active)
            })
            .filter(|user| {
                filter.search_prefix.as_ref().is_none_or(|prefix| {
                    user.email
                        .as_str()
                        .starts_with(&prefix.as_str().to_lowercase())
                        || user.username.as_str().starts_with(prefix.as_str())
                })
            })
            .filter(|user| {
                page.after.is_none_or(|after| {
                    (user.created_at, user.id.as_uuid()) < (after.created_at(), after.id())
                })
            })
            .cloned()
            .collect();
        rows.sort_unstable_by(|a, b| {
            (b.created_at, b.id.as_uuid()).cmp(&(a.created_at, a.id.as_uuid()))
        });
        rows.truncate(usize::from(page.limit.get()) + 1);
        Ok(Page::from_overfetched(rows, page.limit, User::keyset))
    }

    async fn update(
        &self,
        actor: &Actor,
        id: UserId,
        changes: &UserChanges,
    ) -> Result<User, UpdateUserError> {
        let mut state = self.lock();
        let current = state
            .visible_user(actor, id)
            .ok_or(UpdateUserError::NotFound)?
            .user
            .clone();
        let active_superusers = state
            .users
            .iter()
            .filter(|stored| stored.user.is_superuser && stored.user.is_active)
            .count();
        if changes.demotes(&current) && active_superusers <= 1 {
            return Err(UpdateUserError::LastSuperuser);
        }
        let now = state.tick();
        let stored = state.user_mut(id).ok_or(UpdateUserError::NotFound)?;
        if let Some(full_name) = &changes.full_name {
            stored.user.full_name = full_name.clone();
        }
        if let Some(active) = changes.is_active {
            stored.user.is_active = active;
        }
        if let Some(superuser) = changes.is_superuser {
            stored.user.is_superuser = superuser;
        }
        stored.user.updated_at = now;
        let updated = stored.user.clone();
        if current.is_active && !updated.is_active {
            // The schema's `revoke_sessions_on_deactivation` trigger.
            state.revoke_sessions(id, None);
        }
        Ok(updated)
    }

    async fn password_hash(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<Option<PasswordHash>, StorageError> {
        Ok(self
            .lock()
            .visible_user(actor, id)
            .map(|stored| stored.hash.clone()))
    }

    async fn change_password(
        &self,
        actor: &Actor,
        id: UserId,
        hash: &PasswordHash,
        keep: SessionId,
    ) -> Result<(), StorageError> {
        let mut state = self.lock();
        if state.visible_user(actor, id).is_none() {
            // The UPDATE finds no row it may change: nothing happens.
            return Ok(());
        }
        let now = state.tick();
        if let Some(stored) = state.user_mut(id) {
            stored.hash = hash.clone();
            stored.user.updated_at = now;
        }
        state.revoke_sessions(id, Some(keep));
        Ok(())
    }
}

impl SessionRepository for FakeStore {
    async fn admit_attempt(
        &self,
        identifier: &LoginIdentifier,
        client: &ClientInfo,
        policy: &ThrottlePolicy,
    ) -> Result<SignInLookup, StorageError> {
        let mut state = self.lock();
        let name = identifier.as_str();
        let account = state
            .users
            .iter()
            .find(|stored| {
                stored.user.email.as_str() == name.to_lowercase()
                    || stored.user.username.as_str() == name
            })
            .map(|stored| Credentials {
                user: stored.user.clone(),
                hash: stored.hash.clone(),
            });

        let last_success = state
            .attempts
            .iter()
            .filter(|a| a.identifier == name && a.succeeded == Some(true))
            .map(|a| a.at)
            .max();
        let account_failure = state.nth_failure(
            state.attempts.iter().filter(|a| {
                a.identifier == name && last_success.is_none_or(|success| a.at > success)
            }),
            policy.max_per_account(),
            policy.window(),
        );
        let address_failure = client.ip().and_then(|ip| {
            state.nth_failure(
                state.attempts.iter().filter(|a| a.ip == Some(ip)),
                policy.max_per_address(),
                policy.window(),
            )
        });
        let locked_until = account_failure
            .max(address_failure)
            .map(|at| at + policy.window());
        let check = match locked_until {
            Some(until) if until > state.now => ThrottleCheck::LockedFor(until - state.now),
            _ => {
                let at = state.tick();
                let id = AttemptId::new(state.next_attempt);
                state.next_attempt += 1;
                state.attempts.push(Attempt {
                    id,
                    identifier: name.to_owned(),
                    ip: client.ip(),
                    at,
                    succeeded: None,
                });
                ThrottleCheck::Admitted(id)
            }
        };
        Ok(SignInLookup { check, account })
    }

    async fn record_failure(
        &self,
        attempt: Option<AttemptId>,
        identifier: &LoginIdentifier,
        _client: &ClientInfo,
        account: Option<UserId>,
        reason: SignInFailure,
    ) -> Result<(), StorageError> {
        let mut state = self.lock();
        if let Some(attempt) = attempt {
            state.settle(attempt, false);
        }
        state.audit.push(AuditEntry::LoginFailed {
            identifier: identifier.as_str().to_owned(),
            account,
            reason,
        });
        Ok(())
    }

    async fn start_session(
        &self,
        attempt: AttemptId,
        _identifier: &LoginIdentifier,
        user: &User,
        _client: &ClientInfo,
        digest: &TokenDigest,
        lifetimes: SessionLifetimes,
    ) -> Result<Session, StorageError> {
        let mut state = self.lock();
        state.settle(attempt, true);
        let now = state.tick();
        let session = Session {
            id: SessionId::new_random(),
            user_id: user.id,
            created_at: now,
            idle_expires_at: now + lifetimes.idle(),
            expires_at: now + lifetimes.absolute(),
        };
        state.sessions.push(StoredSession {
            session: session.clone(),
            digest: *digest,
            last_used_at: now,
            revoked: false,
        });
        if let Some(stored) = state.user_mut(user.id) {
            stored.user.last_login_at = Some(now);
        }
        state.audit.push(AuditEntry::LoginSucceeded {
            user: user.id,
            session: session.id,
        });
        Ok(session)
    }

    async fn authenticate(
        &self,
        digest: &TokenDigest,
        client: &ClientInfo,
        lifetimes: SessionLifetimes,
    ) -> Result<Option<Principal>, StorageError> {
        let mut state = self.lock();
        let now = state.now;
        let Some(index) = state.sessions.iter().position(|stored| {
            stored.digest == *digest
                && !stored.revoked
                && stored.session.expires_at > now
                && stored.session.idle_expires_at > now
        }) else {
            return Ok(None);
        };
        let user_id = state.sessions[index].session.user_id;
        let Some(user) = state
            .users
            .iter()
            .find(|stored| stored.user.id == user_id && stored.user.is_active)
            .map(|stored| stored.user.clone())
        else {
            return Ok(None);
        };
        let stored = &mut state.sessions[index];
        if stored.last_used_at < now - TOUCH_INTERVAL {
            stored.last_used_at = now;
            stored.session.idle_expires_at =
                (now + lifetimes.idle()).min(stored.session.expires_at);
        }
        Ok(Some(Principal {
            user_id,
            is_superuser: user.is_superuser,
            session_id: stored.session.id,
            client: client.clone(),
        }))
    }

    async fn end_session(&self, principal: &Principal) -> Result<(), StorageError> {
        let mut state = self.lock();
        for stored in &mut state.sessions {
            if stored.session.id == principal.session_id
                && stored.session.user_id == principal.user_id
            {
                stored.revoked = true;
            }
        }
        state.audit.push(AuditEntry::Logout {
            user: principal.user_id,
            session: principal.session_id,
        });
        Ok(())
    }
}

/// A password "hash" that is a deterministic 256-bit digest of the password inside an
/// argon2id-shaped PHC string: a different password does not verify. It counts verifications (the
/// service promises one per sign-in, whatever the outcome) and can be made to fail.
/// Clones share their counter and switch, so a test keeps one while the service owns another.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeHasher {
    verifications: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl FakeHasher {
    /// The hash [`PasswordHasher::hash`] makes of `password` (for seeding accounts).
    pub(crate) fn hash_of(password: &str) -> PasswordHash {
        let hex = fake_digest(password).to_hex();
        match PasswordHash::parse(&format!("$argon2id$v=19$m=8,t=1,p=1$ZmFrZQ${hex}")) {
            Ok(hash) => hash,
            Err(error) => panic!("the fake hash of a password is not a PHC string: {error}"),
        }
    }

    /// How many verifications were made.
    pub(crate) fn verifications(&self) -> usize {
        self.verifications.load(Ordering::SeqCst)
    }

    /// Makes hashing and verifying fail (as a crashed worker would).
    pub(crate) fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), CryptoError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(CryptoError("the hasher's worker is gone".to_owned()))
        } else {
            Ok(())
        }
    }
}

impl PasswordHasher for FakeHasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, CryptoError> {
        self.check()?;
        let text = String::from_utf8_lossy(password.expose()).into_owned();
        Ok(Self::hash_of(&text))
    }

    async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<bool, CryptoError> {
        self.verifications.fetch_add(1, Ordering::SeqCst);
        self.check()?;
        let text = String::from_utf8_lossy(password.expose()).into_owned();
        Ok(hash.is_some_and(|hash| hash == Self::hash_of(&text)))
    }
}

/// Bearer tokens `tok-1`, `tok-2`, … with a deterministic digest of any presented text;
/// generating can be made to fail.
/// Clones share their counter and switch.
#[derive(Clone, Debug, Default)]
pub(crate) struct FakeTokens {
    issued: Arc<AtomicUsize>,
    failing: Arc<AtomicBool>,
}

impl FakeTokens {
    /// Makes generation fail (as an unavailable random source would).
    pub(crate) fn fail(&self) {
        self.failing.store(true, Ordering::SeqCst);
    }
}

/// 32 bytes from four seeded runs of the standard library's (deterministic) hasher.
fn fake_digest(text: &str) -> TokenDigest {
    let mut bytes = [0_u8; 32];
    for (seed, chunk) in (0_u8..).zip(bytes.chunks_exact_mut(8)) {
        let mut hasher = DefaultHasher::new();
        seed.hash(&mut hasher);
        text.hash(&mut hasher);
        chunk.copy_from_slice(&hasher.finish().to_le_bytes());
    }
    TokenDigest::from_bytes(bytes)
}

impl TokenGenerator for FakeTokens {
    fn generate(&self) -> Result<(BearerToken, TokenDigest), CryptoError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(CryptoError("no randomness".to_owned()));
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("tok-{n}");
        let digest = fake_digest(&token);
        Ok((BearerToken::new(token), digest))
    }

    fn digest(&self, presented: &str) -> TokenDigest {
        fake_digest(presented)
    }

    fn generate_password(&self) -> Result<Password, CryptoError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(CryptoError("no randomness".to_owned()));
        }
        let n = self.issued.fetch_add(1, Ordering::SeqCst) + 1;
        Password::parse(format!("generated-password-{n}"))
            .map_err(|error| CryptoError(error.to_string()))
    }
}
