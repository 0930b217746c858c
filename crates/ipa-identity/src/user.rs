//! The user aggregate: an account as the platform knows it, and the shapes of its creation and
//! its changes. The password hash never travels with a [`User`]: only sign-in reads it.

use ipa_kernel::{Keyset, UserId};
use time::OffsetDateTime;

use crate::values::{Email, FullName, Username};

/// An account. Every field is an already-parsed value, so a `User` is valid by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// The account's id.
    pub id: UserId,
    /// Its email address (lower case).
    pub email: Email,
    /// Its username.
    pub username: Username,
    /// The person's name, when given.
    pub full_name: Option<FullName>,
    /// Whether the account may sign in. Deactivation is the platform's delete.
    pub is_active: bool,
    /// Whether the account administers the platform and sees every user's data.
    pub is_superuser: bool,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// When the account last changed.
    pub updated_at: OffsetDateTime,
    /// When the account last signed in.
    pub last_login_at: Option<OffsetDateTime>,
}

impl User {
    /// The account's position in lists ordered by creation.
    pub fn keyset(&self) -> Keyset {
        Keyset::new(self.created_at, self.id.as_uuid())
    }
}

/// An account to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUser {
    /// Its email address.
    pub email: Email,
    /// Its username.
    pub username: Username,
    /// The person's name, when given.
    pub full_name: Option<FullName>,
    /// Whether it administers the platform.
    pub is_superuser: bool,
}

/// Changes an administrator makes to an account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChanges {
    /// A new name (`Some(None)` clears it).
    pub full_name: Option<Option<FullName>>,
    /// Activate or deactivate. Deactivating ends every session of the account.
    pub is_active: Option<bool>,
    /// Grant or withdraw administration.
    pub is_superuser: Option<bool>,
}

impl UserChanges {
    /// Whether the changes take away the last active administrator's rights, given the account
    /// they apply to.
    pub fn demotes(&self, user: &User) -> bool {
        user.is_superuser
            && user.is_active
            && (self.is_active == Some(false) || self.is_superuser == Some(false))
    }
}

/// Which accounts a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Only active (`true`) or only deactivated (`false`) accounts.
    pub is_active: Option<bool>,
    /// Only accounts whose email or username starts with this text.
    pub search_prefix: Option<SearchPrefix>,
}

/// The start of an email address or username to search for: 1 to 255 characters, surrounding
/// space ignored. Email addresses are stored in lower case, so the prefix matches them in any
/// case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPrefix(String);

impl SearchPrefix {
    /// A prefix from a client's query; `None` when empty or longer than 255 characters.
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        (!trimmed.is_empty() && trimmed.chars().count() <= 255).then(|| Self(trimmed.to_owned()))
    }

    /// The prefix as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> User {
        User {
            id: UserId::new_random(),
            email: Email::parse("root@example.com").unwrap(),
            username: Username::parse("root").unwrap(),
            full_name: None,
            is_active: true,
            is_superuser: true,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            last_login_at: None,
        }
    }

    #[test]
    fn demotion_is_deactivating_or_withdrawing_administration() {
        let user = admin();
        assert!(
            UserChanges {
                is_active: Some(false),
                ..UserChanges::default()
            }
            .demotes(&user)
        );
        assert!(
            UserChanges {
                is_superuser: Some(false),
                ..UserChanges::default()
            }
            .demotes(&user)
        );
        assert!(
            !UserChanges {
                full_name: Some(None),
                ..UserChanges::default()
            }
            .demotes(&user)
        );
        let plain = User {
            is_superuser: false,
            ..admin()
        };
        assert!(
            !UserChanges {
                is_active: Some(false),
                ..UserChanges::default()
            }
            .demotes(&plain)
        );
    }

    #[test]
    fn search_prefixes_are_trimmed_and_bounded() {
        assert_eq!(SearchPrefix::parse("  al ").unwrap().as_str(), "al");
        assert!(SearchPrefix::parse("   ").is_none());
        assert!(SearchPrefix::parse(&"a".repeat(256)).is_none());
    }
}
