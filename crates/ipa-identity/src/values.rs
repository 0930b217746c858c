//! The value objects of a user: [`Email`], [`Username`], [`FullName`], a plain [`Password`] and a
//! stored [`PasswordHash`]. Each has a smart constructor that is the only way to make one, and a
//! typed error that says what is wrong in words a person can act on.

use std::fmt;

/// Why a value was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not an email address the platform accepts.
    #[error(
        "'{0}' is not a valid email address (expected name@domain.tld, at most 255 characters)"
    )]
    Email(String),
    /// Not a username the platform accepts.
    #[error("'{0}' is not a valid username: use 3 to 100 letters, digits, '.', '_' or '-'")]
    Username(String),
    /// Not a name the platform accepts.
    #[error("a full name must have 1 to 255 characters and no control characters")]
    FullName,
    /// A password of the wrong length. The password itself is never repeated.
    #[error("a password must have 8 to 128 characters, got {0}")]
    PasswordLength(usize),
    /// Not an argon2id hash in PHC format.
    #[error("not an argon2id PHC string")]
    PasswordHash,
}

/// An email address, following the schema's rule (`email_format`): a local part of letters,
/// digits and `._%+-`, an `@`, a domain of letters, digits, `.` and `-`, and a top-level domain
/// of at least two letters. Stored in lower case, so the same address in other cases is the
/// same user.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    /// The longest address the schema stores.
    pub const MAX_CHARS: usize = 255;

    /// Parses an address (surrounding space ignored).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let candidate = raw.trim();
        if candidate.chars().count() <= Self::MAX_CHARS && matches_email_rule(candidate) {
            Ok(Self(candidate.to_lowercase()))
        } else {
            Err(ValueError::Email(candidate.to_owned()))
        }
    }

    /// The address, in lower case.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The schema's `^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Z|a-z]{2,}$`, written out: the top-level
/// domain has no `.`, so it follows the domain's last dot.
fn matches_email_rule(candidate: &str) -> bool {
    let Some((local, domain)) = candidate.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-".contains(c));
    let Some((host, tld)) = domain.rsplit_once('.') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c));
    let tld_ok = tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic() || c == '|');
    local_ok && host_ok && tld_ok
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A username: 3 to 100 ASCII letters, digits, `.`, `_` or `-`. Kept as given; the schema's
/// unique index compares it exactly.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// The shortest username.
    pub const MIN_CHARS: usize = 3;
    /// The longest username (the schema's `VARCHAR(100)`).
    pub const MAX_CHARS: usize = 100;

    /// Parses a username (surrounding space ignored).
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        let candidate = raw.trim();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&candidate.len())
            && candidate.chars().all(allowed)
        {
            Ok(Self(candidate.to_owned()))
        } else {
            Err(ValueError::Username(candidate.to_owned()))
        }
    }

    /// The username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person's name as they write it: trimmed, 1 to 255 characters, no control characters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct FullName(String);

impl FullName {
    /// Parses a name.
    pub fn parse(raw: &str) -> Result<Self, ValueError> {
        ipa_kernel::text::required_text(raw, ipa_kernel::text::NAME_MAX_CHARS)
            .map(Self)
            .ok_or(ValueError::FullName)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plain password on its way to being hashed or verified: 8 to 128 characters. It cannot be
/// printed: `Debug` shows a placeholder, there is no `Display` and no serialisation.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The shortest password.
    pub const MIN_CHARS: usize = 8;
    /// The longest password.
    pub const MAX_CHARS: usize = 128;

    /// Accepts a password of 8 to 128 characters, as typed (spaces count).
    pub fn parse(raw: String) -> Result<Self, ValueError> {
        let length = raw.chars().count();
        if (Self::MIN_CHARS..=Self::MAX_CHARS).contains(&length) {
            Ok(Self(raw))
        } else {
            Err(ValueError::PasswordLength(length))
        }
    }

    /// The longest password sign-in will check: longer input is refused without hashing, so a
    /// client cannot make the server hash megabytes.
    pub const MAX_PRESENTED_CHARS: usize = 1024;

    /// A password presented at sign-in or as the current password: not held to today's rules
    /// (an older password may predate them), only bounded. `None` when longer than
    /// [`Password::MAX_PRESENTED_CHARS`].
    pub fn presented(raw: String) -> Option<Self> {
        (raw.chars().count() <= Self::MAX_PRESENTED_CHARS).then_some(Self(raw))
    }

    /// An ordinary password that matches no account: verified against the dummy hash when a
    /// presented password is too long to check, so the answer takes the usual time.
    pub(crate) fn placeholder() -> Self {
        Self("placeholder password".to_owned())
    }

    /// The password's bytes, for the hasher only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// A stored argon2id hash in PHC string format (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`).
/// Its `Debug` does not show the hash either.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Accepts a PHC string of the argon2id algorithm, as the schema stores it (at most 255).
    pub fn parse(phc: &str) -> Result<Self, ValueError> {
        let fields: Vec<&str> = phc.split('$').collect();
        let well_formed = phc.len() <= 255
            && fields.len() == 6
            && fields[0].is_empty()
            && fields[1] == "argon2id"
            && fields[2].starts_with("v=")
            && fields[3].split(',').count() == 3
            && !fields[4].is_empty()
            && !fields[5].is_empty();
        if well_formed {
            Ok(Self(phc.to_owned()))
        } else {
            Err(ValueError::PasswordHash)
        }
    }

    /// The PHC string, for storage and verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn emails_follow_the_schema_rule_in_either_case() {
        for valid in [
            "a@b.co",
            "Bob.Smith+tag@Example.COM",
            "x_y%z-1@mail.example.org",
            "a@b.c|d",
        ] {
            assert!(Email::parse(valid).is_ok(), "{valid}");
        }
        for invalid in [
            "",
            "plain",
            "@example.com",
            "a@",
            "a@b",
            "a@b.c",
            "a@@b.co",
            "a b@c.co",
            "a@b.c0m",
            "ü@b.co",
        ] {
            assert!(Email::parse(invalid).is_err(), "{invalid}");
        }
        assert_eq!(
            Email::parse("  Bob@Example.COM ").unwrap().as_str(),
            "bob@example.com"
        );
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(matches!(Email::parse(&long), Err(ValueError::Email(_))));
    }

    #[test]
    fn usernames_have_three_to_a_hundred_safe_characters() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(100)).is_ok());
        assert!(Username::parse(&"a".repeat(101)).is_err());
        assert!(Username::parse("with space").is_err());
        assert!(Username::parse("émile").is_err());
        assert_eq!(
            Username::parse(" j.doe-1_x ").unwrap().as_str(),
            "j.doe-1_x"
        );
    }

    #[test]
    fn full_names_are_trimmed_and_printable() {
        assert_eq!(
            FullName::parse("  Ada Lovelace ").unwrap().as_str(),
            "Ada Lovelace"
        );
        assert_eq!(FullName::parse("   "), Err(ValueError::FullName));
        assert_eq!(FullName::parse("a\u{0}b"), Err(ValueError::FullName));
        assert!(FullName::parse(&"é".repeat(255)).is_ok());
        assert!(FullName::parse(&"é".repeat(256)).is_err());
    }

    #[test]
    fn passwords_are_bounded_and_never_printed() {
        assert_eq!(
            Password::parse("short".into()),
            Err(ValueError::PasswordLength(5))
        );
        assert!(Password::parse("x".repeat(129)).is_err());
        let password = Password::parse("correct horse battery".into()).unwrap();
        assert_eq!(format!("{password:?}"), "Password(<redacted>)");
        let error = Password::parse("hunter2".into()).unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn password_hashes_must_be_argon2id_phc_strings() {
        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
        let hash = PasswordHash::parse(phc).unwrap();
        assert_eq!(hash.as_str(), phc);
        assert_eq!(format!("{hash:?}"), "PasswordHash(<redacted>)");
        for invalid in [
            "",
            "plain",
            "$argon2i$v=19$m=1,t=1,p=1$s$h",
            "$argon2id$v=19$m=1$s$h",
        ] {
            assert!(PasswordHash::parse(invalid).is_err(), "{invalid}");
        }
    }

    proptest! {
        #[test]
        fn any_address_of_the_rule_parses_and_is_lower_case(
            local in "[A-Za-z0-9._%+-]{1,20}",
            host in "[A-Za-z0-9-]{1,20}(\\.[A-Za-z0-9-]{1,10}){0,2}",
            tld in "[A-Za-z]{2,6}",
        ) {
            let raw = format!("{local}@{host}.{tld}");
            let email = Email::parse(&raw).unwrap();
            prop_assert_eq!(email.as_str(), raw.to_lowercase());
        }

        #[test]
        fn addresses_without_exactly_one_at_sign_are_refused(raw in "[a-z.]{0,30}") {
            prop_assert!(Email::parse(&raw).is_err());
        }

        #[test]
        fn usernames_parse_exactly_when_length_and_alphabet_fit(raw in "[A-Za-z0-9._ -]{0,110}") {
            let trimmed = raw.trim();
            let expected = (3..=100).contains(&trimmed.len()) && !trimmed.contains(' ');
            prop_assert_eq!(Username::parse(&raw).is_ok(), expected);
        }

        #[test]
        fn passwords_parse_exactly_when_8_to_128_characters(raw in ".{0,140}") {
            let length = raw.chars().count();
            prop_assert_eq!(Password::parse(raw).is_ok(), (8..=128).contains(&length));
        }

        #[test]
        fn full_names_never_keep_surrounding_space(raw in "\\PC{0,300}") {
            if let Ok(name) = FullName::parse(&raw) {
                prop_assert_eq!(name.as_str(), name.as_str().trim());
                prop_assert!(!name.as_str().is_empty() && name.as_str().chars().count() <= 255);
            }
        }
    }
}
