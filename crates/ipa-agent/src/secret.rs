//! Secrets inside agent and tool configurations: how a client gives one ([`SecretInput`]), how one
//! is kept ([`StoredSecret`]), and the plaintext in between ([`PlainSecret`]), which never prints.
//!
//! A secret is write-only. A client gives `{"env": "NAME"}` (read from the server's environment
//! when used) or `{"value": "..."}` (encrypted before it is stored, through the
//! [`crate::SecretSealer`] port), or `{"set": true}` to keep the secret already stored at the same
//! place. Responses show only `{"set": true}`. The stored form is an object with a `"$secret"`
//! member, which the audit trigger replaces whole.

use std::fmt;

use serde_json::{Map, Value, json};

/// The most bytes a secret value may have.
pub const MAX_SECRET_BYTES: usize = 8 * 1024;

/// A secret in clear, on its way to being sealed or used. Its `Debug` never shows the text.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainSecret(String);

impl PlainSecret {
    /// Wraps secret text.
    pub fn new(text: String) -> Self {
        Self(text)
    }

    /// The text, for the one place that must use it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainSecret([redacted])")
    }
}

/// The name of an environment variable of the server: letters, digits and `_`, not starting with
/// a digit, at most 128 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnvVarName(String);

impl EnvVarName {
    /// The longest variable name.
    pub const MAX_CHARS: usize = 128;

    /// Parses a variable name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let valid = !raw.is_empty()
            && raw.len() <= Self::MAX_CHARS
            && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !raw.starts_with(|c: char| c.is_ascii_digit());
        if valid {
            Ok(Self(raw.to_owned()))
        } else {
            Err(
                "`env` must name an environment variable: letters, digits and `_`, not starting \
                 with a digit, at most 128 characters"
                    .to_owned(),
            )
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A secret encrypted with an AEAD: which key sealed it, and the nonce and ciphertext (with its
/// tag) in base64url. Only the key's holder can open it.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    key_id: String,
    ciphertext: String,
}

impl SealedSecret {
    /// A sealed secret as the sealer produced it or storage kept it.
    pub fn new(key_id: String, ciphertext: String) -> Self {
        Self { key_id, ciphertext }
    }

    /// The fingerprint of the key that sealed it.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The nonce and ciphertext, base64url.
    pub fn ciphertext(&self) -> &str {
        &self.ciphertext
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedSecret")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// A secret as a client gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretInput {
    /// Read from this environment variable of the server when used.
    Env(EnvVarName),
    /// This value, to be sealed before it is stored.
    Value(PlainSecret),
    /// Keep the secret already stored at the same place.
    Keep,
}

impl SecretInput {
    /// Reads `{"env": NAME}`, `{"value": TEXT}` or `{"set": true}`.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        const SHAPE: &str = "a secret is written as {\"env\": \"NAME\"} (read from the server's \
             environment when used) or {\"value\": \"...\"} (stored encrypted); {\"set\": true} \
             keeps the one already stored";
        let Some(object) = value.as_object().filter(|object| object.len() == 1) else {
            return Err(SHAPE.to_owned());
        };
        match object.iter().next() {
            Some((key, Value::String(name))) if key == "env" => {
                EnvVarName::parse(name).map(Self::Env)
            }
            Some((key, Value::String(text))) if key == "value" => {
                if text.is_empty() {
                    Err("a secret's `value` must not be empty".to_owned())
                } else if text.len() > MAX_SECRET_BYTES {
                    Err(format!(
                        "a secret's `value` may have at most {MAX_SECRET_BYTES} bytes"
                    ))
                } else {
                    Ok(Self::Value(PlainSecret::new(text.clone())))
                }
            }
            Some((key, Value::Bool(true))) if key == "set" => Ok(Self::Keep),
            _ => Err(SHAPE.to_owned()),
        }
    }
}

/// A secret as it is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoredSecret {
    /// Read from this environment variable of the server when used.
    Env(EnvVarName),
    /// Encrypted.
    Sealed(SealedSecret),
}

/// The member that marks an object as a secret; the audit trigger replaces such objects whole.
const MARKER: &str = "$secret";

impl StoredSecret {
    /// The stored JSON form.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Env(name) => json!({MARKER: "env", "env": name.as_str()}),
            Self::Sealed(sealed) => json!({
                MARKER: "sealed",
                "key_id": sealed.key_id(),
                "ciphertext": sealed.ciphertext(),
            }),
        }
    }

    /// Reads the stored JSON form.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let object = value
            .as_object()
            .ok_or_else(|| "a stored secret is not an object".to_owned())?;
        let text = |object: &Map<String, Value>, key: &str| {
            object
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| format!("a stored secret has no `{key}`"))
        };
        match object.get(MARKER).and_then(Value::as_str) {
            Some("env") => EnvVarName::parse(&text(object, "env")?).map(Self::Env),
            Some("sealed") => Ok(Self::Sealed(SealedSecret::new(
                text(object, "key_id")?,
                text(object, "ciphertext")?,
            ))),
            _ => Err("a stored secret has no known `$secret` kind".to_owned()),
        }
    }
}

/// What responses show in place of a secret.
pub fn shown_secret() -> Value {
    json!({"set": true})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_read_each_form_and_refuse_others() {
        assert_eq!(
            SecretInput::from_json(&json!({"env": "OPENAI_API_KEY"})),
            Ok(SecretInput::Env(EnvVarName("OPENAI_API_KEY".into())))
        );
        assert_eq!(
            SecretInput::from_json(&json!({"value": "sk-1"})),
            Ok(SecretInput::Value(PlainSecret::new("sk-1".into())))
        );
        assert_eq!(
            SecretInput::from_json(&json!({"set": true})),
            Ok(SecretInput::Keep)
        );
        for bad in [
            json!("sk-plain"),
            json!({"env": "1BAD"}),
            json!({"env": "A-B"}),
            json!({"value": ""}),
            json!({"value": "x", "env": "Y"}),
            json!({"set": false}),
            json!({}),
        ] {
            assert!(SecretInput::from_json(&bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn plaintext_never_prints() {
        let secret = PlainSecret::new("sk-very-secret".into());
        assert!(!format!("{secret:?}").contains("sk-very"));
        let input = SecretInput::Value(secret);
        assert!(!format!("{input:?}").contains("sk-very"));
        let sealed = SealedSecret::new("k1".into(), "abc".into());
        assert!(!format!("{sealed:?}").contains("abc"));
    }

    #[test]
    fn stored_forms_round_trip_and_carry_the_audit_marker() {
        for secret in [
            StoredSecret::Env(EnvVarName("KEY".into())),
            StoredSecret::Sealed(SealedSecret::new("0a1b2c3d".into(), "bm9uY2U".into())),
        ] {
            let json = secret.to_json();
            assert!(json.get("$secret").is_some());
            assert_eq!(StoredSecret::from_json(&json), Ok(secret));
        }
    }
}
