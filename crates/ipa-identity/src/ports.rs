//! What the identity context needs from the outside world: somewhere to keep users and sessions,
//! a password hasher and a source of bearer tokens. Infrastructure implements these traits
//! (`ipa-store` the repositories, `ipa-security` the cryptography); the [`crate::IdentityService`]
//! is generic over them.
//!
//! Every repository method takes the [`Actor`] it acts for, or works in the one narrow context
//! its name says (sign-in, token authentication): the storage enforces visibility itself.

use std::future::Future;

use ipa_kernel::{Actor, ClientInfo, Page, PageRequest, SessionId, StorageError, UserId};
use time::Duration;

use crate::error::{CreateUserError, CryptoError, UpdateUserError};
use crate::session::{
    AttemptId, BearerToken, LoginIdentifier, Principal, Session, SessionLifetimes, SignInFailure,
    ThrottleCheck, ThrottlePolicy, TokenDigest,
};
use crate::user::{NewUser, User, UserChanges, UserFilter};
use crate::values::{Password, PasswordHash};

/// An account with its password hash: what sign-in compares a password against.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The account.
    pub user: User,
    /// Its stored hash.
    pub hash: PasswordHash,
}

/// What sign-in learns before checking a password: whether the throttle admits the attempt, and
/// the account the identifier names, if any.
#[derive(Clone, Debug)]
pub struct SignInLookup {
    /// The throttle's verdict.
    pub check: ThrottleCheck,
    /// The account, when one has the identifier.
    pub account: Option<Credentials>,
}

/// Where accounts are kept.
pub trait UserRepository: Send + Sync + 'static {
    /// Creates an account; a taken email or username is [`CreateUserError::Duplicate`].
    fn create(
        &self,
        actor: &Actor,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> impl Future<Output = Result<User, CreateUserError>> + Send;

    /// Creates `user` as a superuser, acting as the platform itself, unless an active superuser
    /// already exists (then `None`). Concurrent callers create at most one.
    fn create_first_superuser(
        &self,
        user: &NewUser,
        hash: &PasswordHash,
    ) -> impl Future<Output = Result<Option<User>, CreateUserError>> + Send;

    /// The account with `id`, if the actor may see it.
    fn find(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, StorageError>> + Send;

    /// Accounts the actor may see, newest first.
    fn list(
        &self,
        actor: &Actor,
        filter: &UserFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<User>, StorageError>> + Send;

    /// Applies `changes`. Deactivating an account ends all of its sessions in the same
    /// transaction; taking away the rights of the last active superuser is refused.
    fn update(
        &self,
        actor: &Actor,
        id: UserId,
        changes: &UserChanges,
    ) -> impl Future<Output = Result<User, UpdateUserError>> + Send;

    /// The password hash of an account the actor may see.
    fn password_hash(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> impl Future<Output = Result<Option<PasswordHash>, StorageError>> + Send;

    /// Replaces an account's password hash and ends every session of the account but `keep`.
    fn change_password(
        &self,
        actor: &Actor,
        id: UserId,
        hash: &PasswordHash,
        keep: SessionId,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Where sessions and sign-in attempts are kept.
pub trait SessionRepository: Send + Sync + 'static {
    /// Looks up the account `identifier` names and asks the throttle whether an attempt from
    /// `client` may proceed under `policy`. An admitted attempt is recorded at once, unsettled,
    /// and counts as a failure while it may still be in progress (so concurrent attempts count
    /// it), until [`SessionRepository::start_session`] settles it as successful or
    /// [`SessionRepository::record_failure`] as failed. One that a failure of the platform leaves
    /// unsettled stops counting soon after: it was not the client's failure.
    fn admit_attempt(
        &self,
        identifier: &LoginIdentifier,
        client: &ClientInfo,
        policy: &ThrottlePolicy,
    ) -> impl Future<Output = Result<SignInLookup, StorageError>> + Send;

    /// Records a failed sign-in in the audit trail (never the password) and, for an admitted
    /// `attempt`, settles it as failed, in one transaction.
    fn record_failure(
        &self,
        attempt: Option<AttemptId>,
        identifier: &LoginIdentifier,
        client: &ClientInfo,
        account: Option<UserId>,
        reason: SignInFailure,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Starts a session for `user`, stored under `digest`, in one transaction with marking the
    /// attempt successful, stamping the account's last sign-in and auditing the login.
    fn start_session(
        &self,
        attempt: AttemptId,
        identifier: &LoginIdentifier,
        user: &User,
        client: &ClientInfo,
        digest: &TokenDigest,
        lifetimes: SessionLifetimes,
    ) -> impl Future<Output = Result<Session, StorageError>> + Send;

    /// The principal of a live session stored under `digest` whose account is active, pushing
    /// its idle expiry forward; `None` for an unknown, expired or revoked token.
    fn authenticate(
        &self,
        digest: &TokenDigest,
        client: &ClientInfo,
        lifetimes: SessionLifetimes,
    ) -> impl Future<Output = Result<Option<Principal>, StorageError>> + Send;

    /// Revokes the principal's session and audits the logout.
    fn end_session(
        &self,
        principal: &Principal,
    ) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// Hashes and verifies passwords.
pub trait PasswordHasher: Send + Sync + 'static {
    /// A new salted hash of `password`.
    fn hash(
        &self,
        password: Password,
    ) -> impl Future<Output = Result<PasswordHash, CryptoError>> + Send;

    /// Whether `password` matches `hash`. With no hash (an unknown account) it verifies against a
    /// dummy hash of the same cost and answers `false`, so the two cases take the same time.
    fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> impl Future<Output = Result<bool, CryptoError>> + Send;
}

/// Makes bearer tokens and generated passwords.
pub trait TokenGenerator: Send + Sync + 'static {
    /// A new random token and its digest.
    fn generate(&self) -> Result<(BearerToken, TokenDigest), CryptoError>;

    /// The digest of a token a client presented.
    fn digest(&self, presented: &str) -> TokenDigest;

    /// A random password for an account created without one.
    fn generate_password(&self) -> Result<Password, CryptoError>;
}

/// The policies the identity service applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdentityPolicy {
    /// How long sessions last.
    pub lifetimes: SessionLifetimes,
    /// When failed sign-ins lock attempts out.
    pub throttle: ThrottlePolicy,
}

/// A lockout's remaining time, rounded up to whole seconds and at least one, as `Retry-After`
/// states it.
pub fn retry_after_seconds(remaining: Duration) -> u64 {
    let seconds = remaining.whole_seconds() + i64::from(remaining.subsec_nanoseconds() > 0);
    u64::try_from(seconds.max(1)).unwrap_or(1)
}
