#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`values`]: the value objects a user is made of, each parsed once at the edge so the rest of
//!   the platform never handles an unchecked email, username, name or password;
//! - [`user`]: the user aggregate and the shapes of its creation, changes and lists;
//! - [`session`]: sign-in identifiers, bearer tokens and their digests, principals, and the
//!   session and throttling policies;
//! - [`ports`]: what the context needs from storage and cryptography;
//! - [`service`]: the rules (sign-in, authentication, profiles, administration, bootstrap),
//!   generic over the ports;
//! - [`error`]: one error enum per operation.

pub mod error;
#[cfg(test)]
mod fakes;
pub mod ports;
pub mod service;
pub mod session;
pub mod user;
pub mod values;

pub use error::{
    AuthenticateError, ChangeProfileError, CreateUserError, CryptoError, SignInError, UniqueField,
    UpdateUserError, UserQueryError,
};
pub use ports::{
    Credentials, IdentityPolicy, PasswordHasher, SessionRepository, SignInLookup, TokenGenerator,
    UserRepository,
};
pub use service::{IdentityService, PasswordChange, ProfileChanges, SignedIn};
pub use session::{
    AttemptId, BearerToken, LoginIdentifier, Principal, Session, SessionLifetimes, SignInFailure,
    ThrottleCheck, ThrottlePolicy, TokenDigest,
};
pub use user::{NewUser, SearchPrefix, User, UserChanges, UserFilter};
pub use values::{Email, FullName, Password, PasswordHash, Username, ValueError};
