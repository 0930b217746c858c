//! Who is acting and from where. Every unit of database work carries an [`Actor`]: row level
//! security decides what it may see from the user and superuser flag, and the audit trail records
//! the user, client address and user agent.

use std::fmt;
use std::net::IpAddr;

use crate::ids::UserId;

/// The user an operation is performed for, and the request it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    user_id: Option<UserId>,
    is_superuser: bool,
    client: ClientInfo,
}

impl Actor {
    /// A signed-in user.
    pub fn user(user_id: UserId, is_superuser: bool, client: ClientInfo) -> Self {
        Self {
            user_id: Some(user_id),
            is_superuser,
            client,
        }
    }

    /// Nobody: a request that has not signed in. Row level security shows it no user data.
    pub fn anonymous(client: ClientInfo) -> Self {
        Self {
            user_id: None,
            is_superuser: false,
            client,
        }
    }

    /// The platform itself (command-line administration, maintenance, the engine acting on
    /// behalf of no particular request): sees everything, and is recorded as no user.
    pub fn system() -> Self {
        Self {
            user_id: None,
            is_superuser: true,
            client: ClientInfo::default(),
        }
    }

    /// The acting user, if any.
    pub fn user_id(&self) -> Option<UserId> {
        self.user_id
    }

    /// Whether the actor may see and change every user's data.
    pub fn is_superuser(&self) -> bool {
        self.is_superuser
    }

    /// Where the request came from.
    pub fn client(&self) -> &ClientInfo {
        &self.client
    }
}

/// The client a request came from, as the audit trail records it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientInfo {
    ip: Option<IpAddr>,
    user_agent: Option<UserAgent>,
}

impl ClientInfo {
    /// Client information from a request.
    pub fn new(ip: Option<IpAddr>, user_agent: Option<UserAgent>) -> Self {
        Self { ip, user_agent }
    }

    /// The client's address, if known.
    pub fn ip(&self) -> Option<IpAddr> {
        self.ip
    }

    /// The client's user agent, if it sent one.
    pub fn user_agent(&self) -> Option<&UserAgent> {
        self.user_agent.as_ref()
    }
}

/// A user agent string fit for the audit log: control characters removed, surrounding space
/// trimmed, at most [`UserAgent::MAX_CHARS`] characters. Clients send anything here; the log must
/// stay readable and bounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAgent(String);

impl UserAgent {
    /// The longest user agent kept; the rest is cut off.
    pub const MAX_CHARS: usize = 512;

    /// Cleans a raw header value; `None` when nothing printable is left.
    pub fn parse(raw: &str) -> Option<Self> {
        let cleaned: String = raw.chars().filter(|c| !c.is_control()).collect();
        let trimmed = cleaned.trim();
        if trimmed.is_empty() {
            return None;
        }
        Some(Self(trimmed.chars().take(Self::MAX_CHARS).collect()))
    }

    /// The cleaned value.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agent_is_cleaned_and_bounded() {
        assert_eq!(
            UserAgent::parse("  curl/8.0\n\r ").unwrap().as_str(),
            "curl/8.0"
        );
        assert_eq!(UserAgent::parse(" \t\u{7}"), None);
        let long = "a".repeat(2_000);
        assert_eq!(
            UserAgent::parse(&long).unwrap().as_str().len(),
            UserAgent::MAX_CHARS
        );
    }

    #[test]
    fn system_actor_is_superuser_without_a_user() {
        let system = Actor::system();
        assert!(system.is_superuser());
        assert_eq!(system.user_id(), None);
        let anonymous = Actor::anonymous(ClientInfo::default());
        assert!(!anonymous.is_superuser());
    }
}
