//! The identity service: signing in and out, authenticating bearer tokens, a user's own profile,
//! administration of accounts, and the first superuser. Generic over the ports, so the same rules
//! run against PostgreSQL in production and against anything else a caller plugs in.

use ipa_kernel::{Actor, ClientInfo, Page, PageRequest, StorageError, UserId};

use crate::error::{
    AuthenticateError, ChangeProfileError, CreateUserError, SignInError, UpdateUserError,
    UserQueryError,
};
use crate::ports::{
    IdentityPolicy, PasswordHasher, SessionRepository, TokenGenerator, UserRepository,
    retry_after_seconds,
};
use crate::session::{
    BearerToken, LoginIdentifier, Principal, Session, SignInFailure, ThrottleCheck,
};
use crate::user::{NewUser, User, UserChanges, UserFilter};
use crate::values::{FullName, Password};

/// A successful sign-in: the token (shown once), its session and the account.
#[derive(Debug)]
pub struct SignedIn {
    /// The bearer token for the client to present.
    pub token: BearerToken,
    /// The session it opens.
    pub session: Session,
    /// The account signed in to.
    pub user: User,
}

/// Changes a user makes to their own account; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    /// A new name (`Some(None)` clears it).
    pub full_name: Option<Option<FullName>>,
    /// A new password, with the current one as proof.
    pub password: Option<PasswordChange>,
}

/// A password change: the current password (as typed) and the new one.
#[derive(Debug)]
pub struct PasswordChange {
    /// The current password, as typed.
    pub current: String,
    /// The new password.
    pub new: Password,
}

/// Identity operations over a user store `U`, a session store `S`, a password hasher `H` and a
/// token generator `T`.
#[derive(Debug)]
pub struct IdentityService<U, S, H, T> {
    users: U,
    sessions: S,
    hasher: H,
    tokens: T,
    policy: IdentityPolicy,
}

impl<U, S, H, T> IdentityService<U, S, H, T>
where
    U: UserRepository,
    S: SessionRepository,
    H: PasswordHasher,
    T: TokenGenerator,
{
    /// A service over the given ports, applying `policy`.
    pub fn new(users: U, sessions: S, hasher: H, tokens: T, policy: IdentityPolicy) -> Self {
        Self {
            users,
            sessions,
            hasher,
            tokens,
            policy,
        }
    }

    /// The policies in force.
    pub fn policy(&self) -> &IdentityPolicy {
        &self.policy
    }

    /// Signs in with an email address or username and a password. Every failure but the
    /// throttle's looks the same to the caller and costs one password verification.
    ///
    /// Only a wrong identifier or password (or a deactivated account) counts against the
    /// throttle: the attempt is settled as failed together with its audit row, before the caller
    /// learns of it. A sign-in that fails for the platform's own reasons (storage unavailable,
    /// hashing or token generation failing) leaves its attempt unsettled, which the throttle
    /// stops counting once it can no longer be in progress.
    pub async fn sign_in(
        &self,
        identifier: &str,
        password: String,
        client: ClientInfo,
    ) -> Result<SignedIn, SignInError> {
        let identifier = LoginIdentifier::parse(identifier).ok_or(SignInError::BlankIdentifier)?;
        let lookup = self
            .sessions
            .admit_attempt(&identifier, &client, &self.policy.throttle)
            .await?;
        let account_id = lookup.account.as_ref().map(|account| account.user.id);
        let attempt = match lookup.check {
            ThrottleCheck::Admitted(attempt) => attempt,
            ThrottleCheck::LockedFor(remaining) => {
                self.sessions
                    .record_failure(
                        None,
                        &identifier,
                        &client,
                        account_id,
                        SignInFailure::Throttled,
                    )
                    .await?;
                return Err(SignInError::Throttled {
                    retry_after_seconds: retry_after_seconds(remaining),
                });
            }
        };

        let (user, hash) = match lookup.account {
            Some(account) => (Some(account.user), Some(account.hash)),
            None => (None, None),
        };
        let matches = match Password::presented(password) {
            Some(password) => self.hasher.verify(password, hash).await?,
            None => {
                // Too long to check: spend the time of a verification anyway.
                self.hasher.verify(Password::placeholder(), None).await?;
                false
            }
        };
        let user = match (user, matches) {
            (Some(user), true) if user.is_active => user,
            (user, matches) => {
                let reason = match (&user, matches) {
                    (None, _) => SignInFailure::UnknownAccount,
                    (Some(_), false) => SignInFailure::WrongPassword,
                    (Some(_), true) => SignInFailure::InactiveAccount,
                };
                self.sessions
                    .record_failure(Some(attempt), &identifier, &client, account_id, reason)
                    .await?;
                return Err(SignInError::InvalidCredentials);
            }
        };

        let (token, digest) = self.tokens.generate()?;
        let session = self
            .sessions
            .start_session(
                attempt,
                &identifier,
                &user,
                &client,
                &digest,
                self.policy.lifetimes,
            )
            .await?;
        let user = User {
            last_login_at: Some(session.created_at),
            ..user
        };
        Ok(SignedIn {
            token,
            session,
            user,
        })
    }

    /// The principal of a request presenting `token`.
    pub async fn authenticate(
        &self,
        token: &str,
        client: ClientInfo,
    ) -> Result<Principal, AuthenticateError> {
        let digest = self.tokens.digest(token);
        self.sessions
            .authenticate(&digest, &client, self.policy.lifetimes)
            .await?
            .ok_or(AuthenticateError::InvalidToken)
    }

    /// Ends the principal's session.
    pub async fn sign_out(&self, principal: &Principal) -> Result<(), StorageError> {
        self.sessions.end_session(principal).await
    }

    /// The principal's own account.
    pub async fn me(&self, principal: &Principal) -> Result<User, UserQueryError> {
        self.users
            .find(&principal.actor(), principal.user_id)
            .await?
            .ok_or(UserQueryError::NotFound)
    }

    /// Changes the principal's own name and/or password. A new password ends every other
    /// session of the account.
    pub async fn update_profile(
        &self,
        principal: &Principal,
        changes: ProfileChanges,
    ) -> Result<User, ChangeProfileError> {
        let actor = principal.actor();
        if let Some(change) = changes.password {
            let stored = self
                .users
                .password_hash(&actor, principal.user_id)
                .await?
                .ok_or(ChangeProfileError::NotFound)?;
            let current_matches = match Password::presented(change.current) {
                Some(current) => self.hasher.verify(current, Some(stored)).await?,
                None => false,
            };
            if !current_matches {
                return Err(ChangeProfileError::WrongCurrentPassword);
            }
            let hash = self.hasher.hash(change.new).await?;
            self.users
                .change_password(&actor, principal.user_id, &hash, principal.session_id)
                .await?;
        }
        if changes.full_name.is_some() {
            let name_only = UserChanges {
                full_name: changes.full_name,
                ..UserChanges::default()
            };
            return Ok(self
                .users
                .update(&actor, principal.user_id, &name_only)
                .await?);
        }
        self.users
            .find(&actor, principal.user_id)
            .await?
            .ok_or(ChangeProfileError::NotFound)
    }

    /// Creates an account (superusers only).
    pub async fn create_user(
        &self,
        actor: &Actor,
        user: NewUser,
        password: Password,
    ) -> Result<User, CreateUserError> {
        if !actor.is_superuser() {
            return Err(CreateUserError::Forbidden);
        }
        let hash = self.hasher.hash(password).await?;
        self.users.create(actor, &user, &hash).await
    }

    /// Creates the platform's first superuser, unless an active one exists (then `None`).
    pub async fn create_first_superuser(
        &self,
        user: NewUser,
        password: Password,
    ) -> Result<Option<User>, CreateUserError> {
        let user = NewUser {
            is_superuser: true,
            ..user
        };
        let hash = self.hasher.hash(password).await?;
        self.users.create_first_superuser(&user, &hash).await
    }

    /// A random password for an account created without one.
    pub fn generate_password(&self) -> Result<Password, crate::CryptoError> {
        self.tokens.generate_password()
    }

    /// One account (superusers only).
    pub async fn get_user(&self, actor: &Actor, id: UserId) -> Result<User, UserQueryError> {
        if !actor.is_superuser() {
            return Err(UserQueryError::Forbidden);
        }
        self.users
            .find(actor, id)
            .await?
            .ok_or(UserQueryError::NotFound)
    }

    /// Accounts, newest first (superusers only).
    pub async fn list_users(
        &self,
        actor: &Actor,
        filter: &UserFilter,
        page: PageRequest,
    ) -> Result<Page<User>, UserQueryError> {
        if !actor.is_superuser() {
            return Err(UserQueryError::Forbidden);
        }
        Ok(self.users.list(actor, filter, page).await?)
    }

    /// Changes an account (superusers only).
    pub async fn update_user(
        &self,
        actor: &Actor,
        id: UserId,
        changes: &UserChanges,
    ) -> Result<User, UpdateUserError> {
        if !actor.is_superuser() {
            return Err(UpdateUserError::Forbidden);
        }
        self.users.update(actor, id, changes).await
    }

    /// Deactivates an account, ending its sessions (superusers only). The account and everything
    /// it did stay on record.
    pub async fn deactivate_user(
        &self,
        actor: &Actor,
        id: UserId,
    ) -> Result<User, UpdateUserError> {
        let changes = UserChanges {
            is_active: Some(false),
            ..UserChanges::default()
        };
        self.update_user(actor, id, &changes).await
    }
}

#[cfg(test)]
mod tests;
