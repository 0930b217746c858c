//! The key that seals secrets inside agent and tool configurations: `IPA_SECRET_KEY` (32 bytes,
//! base64) when set; otherwise, in the embedded mode, a key generated once into the data directory
//! (`secret.key`, readable by its owner only) so one command still brings up a complete platform;
//! otherwise none, and secret values are refused with a message saying how to configure one
//! (secrets given as `{"env": "NAME"}` still work).

use std::path::Path;

use anyhow::Context;
use ipa_security::{SecretBox, SecretKey};

/// The environment variable holding the key. Read from the environment only, never from the
/// command line, where other users of the machine could see it.
pub const SECRET_KEY_VARIABLE: &str = "IPA_SECRET_KEY";

/// The key file's name inside the embedded data directory.
pub const KEY_FILE: &str = "secret.key";

/// The secret box the platform seals with.
pub fn secret_box(embedded_data_dir: Option<&Path>) -> anyhow::Result<SecretBox> {
    match std::env::var(SECRET_KEY_VARIABLE) {
        Ok(text) if !text.trim().is_empty() => {
            let key = SecretKey::from_base64(&text)
                .with_context(|| format!("{SECRET_KEY_VARIABLE} is not a usable key"))?;
            tracing::info!(key_id = %key.id(), "sealing secrets with the key from {SECRET_KEY_VARIABLE}");
            Ok(SecretBox::new(key))
        }
        _ => match embedded_data_dir {
            Some(dir) => {
                let path = dir.join(KEY_FILE);
                let key = SecretKey::load_or_create(&path)
                    .with_context(|| format!("preparing the secret key in {}", path.display()))?;
                tracing::info!(key_id = %key.id(), path = %path.display(), "sealing secrets with the embedded data directory's key");
                Ok(SecretBox::new(key))
            }
            None => {
                tracing::warn!(
                    "{SECRET_KEY_VARIABLE} is not set: agent secrets given as values will be \
                     refused (those given as {{\"env\": \"NAME\"}} work). Set it to 32 random \
                     bytes in base64, e.g. from `openssl rand -base64 32`, and keep it: secrets \
                     sealed with it open only with it"
                );
                Ok(SecretBox::without_key())
            }
        },
    }
}
