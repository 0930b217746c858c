//! The identity context's errors: one enum per operation, each variant a distinct outcome the
//! API answers differently.

use ipa_kernel::StorageError;

/// Hashing or random generation failed (the operating system's random source, or the hasher's
/// worker). Not the caller's fault.
#[derive(Debug, thiserror::Error)]
#[error("cryptography failed: {0}")]
pub struct CryptoError(pub String);

/// Which unique field of an account is already taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UniqueField {
    /// The email address.
    Email,
    /// The username.
    Username,
}

impl UniqueField {
    /// The field's name in requests.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Username => "username",
        }
    }
}

/// Signing in failed.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Unknown account, wrong password or deactivated account: deliberately indistinguishable.
    #[error("the identifier or the password is wrong")]
    InvalidCredentials,
    /// The identifier is empty or only white space: it names no account.
    #[error("give the email address or username of the account to sign in to")]
    BlankIdentifier,
    /// Too many recent failures for this account or address.
    #[error("too many failed sign-ins; retry in {retry_after_seconds} seconds")]
    Throttled {
        /// Seconds until an attempt may succeed.
        retry_after_seconds: u64,
    },
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Hashing or token generation failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A presented bearer token did not authenticate.
#[derive(Debug, thiserror::Error)]
pub enum AuthenticateError {
    /// Unknown, malformed, expired or revoked token, or a deactivated account.
    #[error("the bearer token is not valid (unknown, expired or revoked); sign in again")]
    InvalidToken,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creating an account failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// Only superusers create accounts.
    #[error("only superusers may create users")]
    Forbidden,
    /// The email address or username is taken.
    #[error("a user with this {} already exists", .0.name())]
    Duplicate(UniqueField),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Hashing failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// Reading accounts failed.
#[derive(Debug, thiserror::Error)]
pub enum UserQueryError {
    /// Only superusers read other accounts.
    #[error("only superusers may read other users")]
    Forbidden,
    /// No such account.
    #[error("no user has this id")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Changing an account failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateUserError {
    /// Only superusers change accounts.
    #[error("only superusers may change users")]
    Forbidden,
    /// No such account.
    #[error("no user has this id")]
    NotFound,
    /// The change would leave the platform without an active superuser.
    #[error(
        "this is the last active superuser: make another user a superuser before deactivating or demoting this one"
    )]
    LastSuperuser,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Changing one's own profile failed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeProfileError {
    /// A password change whose current password is wrong.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// The account is gone (deactivated meanwhile).
    #[error("the account no longer exists")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Hashing failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<UpdateUserError> for ChangeProfileError {
    fn from(error: UpdateUserError) -> Self {
        match error {
            UpdateUserError::Storage(storage) => Self::Storage(storage),
            // A user changing their own name touches neither rights nor activity.
            UpdateUserError::Forbidden
            | UpdateUserError::NotFound
            | UpdateUserError::LastSuperuser => Self::NotFound,
        }
    }
}
