//! Sign-in sessions: the identifier a person signs in with, the bearer token a session is
//! presented with and the digest that is stored instead of it, the authenticated principal of a
//! request, and the policies (lifetimes, throttling) that bound sessions and sign-in attempts.

use std::fmt;

use ipa_kernel::{Actor, ClientInfo, SessionId, UserId};
use time::{Duration, OffsetDateTime};

/// What a person types to sign in: an email address (any case) or a username. Surrounding
/// space is ignored and addresses are lower-cased, so throttling counts `Alice@X.io` and
/// `alice@x.io` as the same account. It is not checked against the account rules: a sign-in
/// with a malformed identifier simply finds no account, exactly like an unknown one. Only a
/// blank one is refused: it names nothing, and an attempt with it could not be counted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginIdentifier(String);

impl LoginIdentifier {
    /// The longest identifier kept (the schema's email length); longer input is cut.
    pub const MAX_CHARS: usize = 255;

    /// Normalises what was typed; `None` when it is empty or only white space.
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed: String = raw.trim().chars().take(Self::MAX_CHARS).collect();
        if trimmed.is_empty() {
            None
        } else if trimmed.contains('@') {
            Some(Self(trimmed.to_lowercase()))
        } else {
            Some(Self(trimmed))
        }
    }

    /// The normalised identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A session's bearer token: the secret a client presents. It is shown once, at sign-in, and
/// never stored; `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    /// Wraps a freshly generated token (the token port's job).
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The secret, to hand to the client once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// The SHA-256 digest of a bearer token: what the sessions table stores and looks tokens up by.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// A digest computed by the token port.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest in lower-case hexadecimal.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not the token, but there is no reason to print one either.
        f.write_str("TokenDigest(..)")
    }
}

/// How long sessions last: an idle timeout pushed forward on every use, and an absolute lifetime
/// that use never extends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionLifetimes {
    idle: Duration,
    absolute: Duration,
}

impl SessionLifetimes {
    /// Lifetimes of `idle` and `absolute`; `None` unless both are positive and the idle timeout
    /// is no longer than the absolute lifetime.
    pub fn new(idle: Duration, absolute: Duration) -> Option<Self> {
        (idle.is_positive() && absolute.is_positive() && idle <= absolute)
            .then_some(Self { idle, absolute })
    }

    /// The idle timeout.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// The absolute lifetime.
    pub fn absolute(&self) -> Duration {
        self.absolute
    }
}

impl Default for SessionLifetimes {
    /// Eight idle hours, seven days at most.
    fn default() -> Self {
        Self {
            idle: Duration::hours(8),
            absolute: Duration::days(7),
        }
    }
}

/// When failed sign-ins lock further attempts out: more than `max_per_account` failures for one
/// identifier since its last success, or more than `max_per_address` from one client address,
/// within `window`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThrottlePolicy {
    max_per_account: u32,
    max_per_address: u32,
    window: Duration,
}

impl ThrottlePolicy {
    /// A policy; `None` unless both limits and the window are positive.
    pub fn new(max_per_account: u32, max_per_address: u32, window: Duration) -> Option<Self> {
        (max_per_account > 0 && max_per_address > 0 && window.is_positive()).then_some(Self {
            max_per_account,
            max_per_address,
            window,
        })
    }

    /// Failures one identifier may have within the window.
    pub fn max_per_account(&self) -> u32 {
        self.max_per_account
    }

    /// Failures one client address may have within the window.
    pub fn max_per_address(&self) -> u32 {
        self.max_per_address
    }

    /// How far back failures count.
    pub fn window(&self) -> Duration {
        self.window
    }
}

impl Default for ThrottlePolicy {
    /// Five failures per account and fifty per address in fifteen minutes.
    fn default() -> Self {
        Self {
            max_per_account: 5,
            max_per_address: 50,
            window: Duration::minutes(15),
        }
    }
}

/// A started session, as its owner may see it (never with its token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// When it began.
    pub created_at: OffsetDateTime,
    /// When it ends unless used before.
    pub idle_expires_at: OffsetDateTime,
    /// When it ends whatever happens.
    pub expires_at: OffsetDateTime,
}

/// Who a request authenticated as: the session's user, their rights, and the session, with the
/// client the request came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The signed-in user.
    pub user_id: UserId,
    /// Whether they administer the platform.
    pub is_superuser: bool,
    /// The session the request presented.
    pub session_id: SessionId,
    /// Where the request came from.
    pub client: ClientInfo,
}

impl Principal {
    /// The actor the request's database work runs as.
    pub fn actor(&self) -> Actor {
        Actor::user(self.user_id, self.is_superuser, self.client.clone())
    }
}

/// Why a sign-in failed, as the audit trail records it. The client is never told which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInFailure {
    /// No account has the identifier.
    UnknownAccount,
    /// The password does not match.
    WrongPassword,
    /// The account is deactivated.
    InactiveAccount,
    /// Too many recent failures: the password was not even checked.
    Throttled,
}

impl SignInFailure {
    /// A stable label for the audit trail.
    pub fn label(&self) -> &'static str {
        match self {
            Self::UnknownAccount => "unknown_account",
            Self::WrongPassword => "wrong_password",
            Self::InactiveAccount => "inactive_account",
            Self::Throttled => "throttled",
        }
    }
}

/// The outcome of the throttle's check for one sign-in attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThrottleCheck {
    /// The attempt may proceed; it has been recorded as a failure until it succeeds, so
    /// concurrent attempts count it.
    Admitted(AttemptId),
    /// Locked out for the given time still.
    LockedFor(Duration),
}

/// A recorded sign-in attempt, unsettled until the password check settles it as successful or
/// failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptId(i64);

impl AttemptId {
    /// The attempt's row id.
    pub fn new(id: i64) -> Self {
        Self(id)
    }

    /// The row id.
    pub fn get(&self) -> i64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_normalised_like_the_accounts_they_name() {
        let parsed = |raw: &str| LoginIdentifier::parse(raw).map(|id| id.as_str().to_owned());
        assert_eq!(
            parsed("  Alice@Example.COM ").as_deref(),
            Some("alice@example.com")
        );
        // Usernames compare exactly.
        assert_eq!(parsed("Alice").as_deref(), Some("Alice"));
        assert_eq!(
            parsed(&"x".repeat(400)).map(|id| id.len()),
            Some(LoginIdentifier::MAX_CHARS)
        );
        assert_eq!(parsed(""), None);
        assert_eq!(parsed(" \t\u{a0}\n"), None);
    }

    #[test]
    fn secrets_are_not_debug_printed() {
        let token = BearerToken::new("ipa_supersecret".to_owned());
        assert!(!format!("{token:?}").contains("supersecret"));
        assert_eq!(
            TokenDigest::from_bytes([0xab; 32]).to_hex(),
            "ab".repeat(32)
        );
    }

    #[test]
    fn policies_refuse_nonsense() {
        assert!(SessionLifetimes::new(Duration::hours(2), Duration::hours(1)).is_none());
        assert!(SessionLifetimes::new(Duration::ZERO, Duration::hours(1)).is_none());
        assert!(ThrottlePolicy::new(0, 5, Duration::minutes(1)).is_none());
        assert!(ThrottlePolicy::new(5, 5, Duration::ZERO).is_none());
        assert!(ThrottlePolicy::new(5, 50, Duration::minutes(15)).is_some());
    }
}
