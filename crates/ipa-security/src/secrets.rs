//! Sealed secrets of agent configurations: the server's 32-byte key ([`SecretKey`]) and the
//! sealer that encrypts secret values with it before they are stored ([`SecretBox`], the
//! `ipa_agent::SecretSealer` adapter).
//!
//! XChaCha20-Poly1305 is used because its 24-byte nonces can be drawn at random without a
//! realistic risk of reuse, so sealing needs no counter kept anywhere. Each sealed value is bound
//! to the place it belongs to (associated data), so a ciphertext copied to another resource does
//! not open there. The stored form names the key's fingerprint, so a server started with another
//! key can say so instead of reporting damage.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{Key, KeyInit as _, XChaCha20Poly1305, XNonce};
use ipa_agent::{PlainSecret, SealError, SealedSecret, SecretOpener, SecretSealer, StoredSecret};
use sha2::{Digest as _, Sha256};

/// Bytes of a key.
const KEY_BYTES: usize = 32;
/// Bytes of an XChaCha20 nonce.
const NONCE_BYTES: usize = 24;
/// Bytes of a Poly1305 tag.
const TAG_BYTES: usize = 16;
/// Versions the associated data, so a future format cannot be confused with this one.
const AAD_PREFIX: &[u8] = b"ipa-secret/v1\0";
/// Separates key fingerprints from any other SHA-256 of the same bytes.
const KEY_ID_PREFIX: &[u8] = b"ipa-secret-key-id\0";
/// How an operator makes a key.
const HOW_TO_MAKE: &str = "make one with `openssl rand -base64 32`";

/// Decodes standard-alphabet base64 with or without padding (URL-safe text is mapped to it first).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a secret key could not be read, made or kept. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum SecretKeyError {
    /// The text is not base64.
    // The decoder's own message quotes the offending character, a piece of the key: not shown.
    #[error("the secret key is not base64; {HOW_TO_MAKE}")]
    NotBase64,
    /// The text decodes to the wrong number of bytes.
    #[error("the secret key decodes to {bytes} bytes, not 32; {HOW_TO_MAKE}")]
    WrongLength {
        /// How many bytes it decodes to.
        bytes: usize,
    },
    /// The operating system gave no random bytes.
    #[error("cannot draw random bytes for a secret key: {0}")]
    Random(String),
    /// The key file exists but could not be read.
    #[error("cannot read the secret key file {}: {source}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The key file could not be created.
    #[error(
        "cannot create the secret key file {}: {source}; check that its directory exists and \
         this process may write there",
        path.display()
    )]
    Write {
        /// The key file.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// The key file does not hold a key.
    #[error(
        "the secret key file {} does not hold a usable key ({source}); replace its content, or \
         remove it to have a new key made (secrets sealed with the old key will no longer open)",
        path.display()
    )]
    BadFile {
        /// The key file.
        path: PathBuf,
        /// What is wrong with its content.
        source: Box<SecretKeyError>,
    },
}

/// The server's key for sealing secrets: 32 bytes. Its `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_BYTES]);

impl SecretKey {
    /// Reads a key from base64 (standard or URL-safe, padded or not, surrounding whitespace
    /// ignored), as `openssl rand -base64 32` prints it.
    pub fn from_base64(text: &str) -> Result<Self, SecretKeyError> {
        let standard: String = text
            .trim()
            .chars()
            .map(|c| match c {
                '-' => '+',
                '_' => '/',
                other => other,
            })
            .collect();
        let bytes = LENIENT_BASE64
            .decode(standard)
            .map_err(|_| SecretKeyError::NotBase64)?;
        let bytes = <[u8; KEY_BYTES]>::try_from(bytes.as_slice())
            .map_err(|_| SecretKeyError::WrongLength { bytes: bytes.len() })?;
        Ok(Self(bytes))
    }

    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, SecretKeyError> {
        let mut bytes = [0u8; KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|error| SecretKeyError::Random(error.to_string()))?;
        Ok(Self(bytes))
    }

    /// Reads the key kept in the file at `path`, or makes one and keeps it there (readable by its
    /// owner only) when there is no such file.
    ///
    /// The new file appears whole or not at all: the key is written to a private temporary file
    /// which is then linked to `path`, and linking fails when `path` exists. So two processes
    /// starting together never both keep a key, and neither reads a half-written file: the one
    /// that loses the race reads the winner's.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretKeyError> {
        match Self::read_file(path) {
            Err(SecretKeyError::Read { source, .. })
                if source.kind() == io::ErrorKind::NotFound => {}
            read => return read,
        }
        let key = Self::generate()?;
        let temporary = temporary_path(path);
        let created = write_private(&temporary, &format!("{}\n", key.to_base64()))
            .and_then(|()| fs::hard_link(&temporary, path));
        // The temporary name is ours alone; whatever happened, it is not needed any more.
        let _ = fs::remove_file(&temporary);
        match created {
            Ok(()) => Ok(key),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Self::read_file(path),
            Err(source) => Err(SecretKeyError::Write {
                path: path.to_owned(),
                source,
            }),
        }
    }

    /// The key in padded standard base64, as [`SecretKey::from_base64`] reads it.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key's fingerprint: 16 hex characters, the same for the same key, saying nothing of it.
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(KEY_ID_PREFIX)
            .chain_update(self.0)
            .finalize();
        digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    fn read_file(path: &Path) -> Result<Self, SecretKeyError> {
        let text = fs::read_to_string(path).map_err(|source| SecretKeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_base64(&text).map_err(|error| SecretKeyError::BadFile {
            path: path.to_owned(),
            source: Box::new(error),
        })
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// A name beside `path` that no other process or call uses.
fn temporary_path(path: &Path) -> PathBuf {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.subsec_nanos());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{nanos}.tmp", std::process::id()));
    path.with_file_name(name)
}

/// Writes `text` to a new file at `path` that only its owner may read, durably.
fn write_private(path: &Path, text: &str) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Why a sealed secret could not be opened. Messages never contain secret material.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The server has no key to decrypt with.
    #[error(
        "this server has no key to decrypt secrets (IPA_SECRET_KEY is not set); configure the \
         key the secret was sealed with, or give the secret again"
    )]
    NoKey,
    /// The secret was sealed with another key than the server's.
    #[error(
        "the secret was sealed with key {sealed_with} and this server's key differs; \
         IPA_SECRET_KEY must be the key used when the secret was written"
    )]
    WrongKey {
        /// The fingerprint of the key that sealed it.
        sealed_with: String,
    },
    /// The ciphertext is malformed, was altered, or belongs to another place.
    #[error(
        "the sealed secret is damaged or was copied from another place (it does not decrypt \
         here); give the secret again"
    )]
    Corrupt,
}

/// Seals and opens secrets with the server's key, if it has one.
#[derive(Clone, Debug)]
pub struct SecretBox {
    key: Option<SecretKey>,
}

impl SecretBox {
    /// A box that seals and opens with `key`.
    pub fn new(key: SecretKey) -> Self {
        Self { key: Some(key) }
    }

    /// A box for a server without a key: sealing and opening report that there is none.
    pub fn without_key() -> Self {
        Self { key: None }
    }

    /// Decrypts `sealed`, which must have been sealed with this box's key and the same `binding`.
    pub fn open(&self, sealed: &SealedSecret, binding: &str) -> Result<PlainSecret, OpenError> {
        let key = self.key.as_ref().ok_or(OpenError::NoKey)?;
        if sealed.key_id() != key.id() {
            return Err(OpenError::WrongKey {
                sealed_with: sealed.key_id().to_owned(),
            });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed.ciphertext())
            .map_err(|_| OpenError::Corrupt)?;
        if bytes.len() < NONCE_BYTES + TAG_BYTES {
            return Err(OpenError::Corrupt);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce = XNonce::try_from(nonce).map_err(|_| OpenError::Corrupt)?;
        let aad = associated_data(binding);
        let plaintext = key
            .cipher()
            .decrypt(
                &nonce,
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Corrupt)?;
        String::from_utf8(plaintext)
            .map(PlainSecret::new)
            .map_err(|_| OpenError::Corrupt)
    }
}

impl SecretSealer for SecretBox {
    fn seal(&self, secret: &PlainSecret, binding: &str) -> Result<SealedSecret, SealError> {
        let key = self.key.as_ref().ok_or(SealError::NoKey)?;
        let mut nonce = [0u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|error| SealError::Failed(error.to_string()))?;
        let aad = associated_data(binding);
        let ciphertext = key
            .cipher()
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| SealError::Failed("the cipher refused the secret".to_owned()))?;
        let mut sealed = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(SealedSecret::new(key.id(), URL_SAFE_NO_PAD.encode(sealed)))
    }
}

impl SecretOpener for SecretBox {
    /// Sealed values open with this box's key; `{"env"}` references are read from this
    /// process's environment, so every worker needs the variable, not only the API server.
    fn reveal(&self, stored: &StoredSecret, binding: &str) -> Result<PlainSecret, String> {
        match stored {
            StoredSecret::Sealed(sealed) => self.open(sealed, binding).map_err(|e| e.to_string()),
            StoredSecret::Env(name) => match std::env::var(name.as_str()) {
                Ok(value) if !value.is_empty() => Ok(PlainSecret::new(value)),
                Ok(_) => Err(format!(
                    "the environment variable {} is empty on this worker; set it where the \
                     workers run",
                    name.as_str()
                )),
                Err(_) => Err(format!(
                    "the environment variable {} is not set (or not valid UTF-8) on this \
                     worker; set it where the workers run",
                    name.as_str()
                )),
            },
        }
    }
}

fn associated_data(binding: &str) -> Vec<u8> {
    [AAD_PREFIX, binding.as_bytes()].concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> PlainSecret {
        PlainSecret::new(text.to_owned())
    }

    #[test]
    fn reveal_opens_sealed_values_and_reads_the_environment() {
        let sealer = key_box();
        let sealed = sealer
            .seal(&secret("sk-1"), "agent/a/provider/api_key")
            .unwrap();
        let stored = StoredSecret::Sealed(sealed);
        let plain = sealer.reveal(&stored, "agent/a/provider/api_key").unwrap();
        assert_eq!(plain.expose(), "sk-1");
        assert!(sealer.reveal(&stored, "agent/b/provider/api_key").is_err());
        let path = std::env::var("PATH").unwrap();
        let env = StoredSecret::Env(ipa_agent::EnvVarName::parse("PATH").unwrap());
        assert_eq!(sealer.reveal(&env, "x").unwrap().expose(), path);
        let missing = StoredSecret::Env(
            ipa_agent::EnvVarName::parse("IPA_TEST_SURELY_UNSET_VARIABLE").unwrap(),
        );
        let error = sealer.reveal(&missing, "x").unwrap_err();
        assert!(
            error.contains("IPA_TEST_SURELY_UNSET_VARIABLE is not set"),
            "{error}"
        );
    }

    fn key_box() -> SecretBox {
        SecretBox::new(SecretKey::generate().unwrap())
    }

    #[test]
    fn sealed_secrets_open_with_the_same_key_and_binding() {
        let sealer = key_box();
        let sealed = sealer.seal(&secret("sk-live-123"), "agent/a1/llm").unwrap();
        assert!(!sealed.ciphertext().contains("sk-live"));
        let opened = sealer.open(&sealed, "agent/a1/llm").unwrap();
        assert_eq!(opened.expose(), "sk-live-123");
    }

    #[test]
    fn each_seal_draws_a_fresh_nonce() {
        let sealer = key_box();
        let first = sealer.seal(&secret("same"), "b").unwrap();
        let second = sealer.seal(&secret("same"), "b").unwrap();
        assert_ne!(first.ciphertext(), second.ciphertext());
        assert_eq!(first.key_id(), second.key_id());
    }

    #[test]
    fn another_binding_does_not_open() {
        let sealer = key_box();
        let sealed = sealer.seal(&secret("s"), "agent/a1/llm").unwrap();
        assert_eq!(
            sealer.open(&sealed, "agent/a2/llm"),
            Err(OpenError::Corrupt)
        );
    }

    #[test]
    fn tampered_or_malformed_ciphertexts_do_not_open() {
        let sealer = key_box();
        let sealed = sealer.seal(&secret("s"), "b").unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(sealed.ciphertext()).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let id = sealed.key_id().to_owned();
        for ciphertext in [
            URL_SAFE_NO_PAD.encode(&bytes),
            URL_SAFE_NO_PAD.encode(&bytes[..NONCE_BYTES + TAG_BYTES - 1]),
            "not base64!".to_owned(),
            String::new(),
        ] {
            let tampered = SealedSecret::new(id.clone(), ciphertext);
            assert_eq!(sealer.open(&tampered, "b"), Err(OpenError::Corrupt));
        }
    }

    #[test]
    fn another_key_reports_which_key_sealed() {
        let sealed = key_box().seal(&secret("s"), "b").unwrap();
        let error = key_box().open(&sealed, "b").unwrap_err();
        assert_eq!(
            error,
            OpenError::WrongKey {
                sealed_with: sealed.key_id().to_owned()
            }
        );
        assert!(error.to_string().contains(sealed.key_id()));
    }

    #[test]
    fn without_a_key_nothing_seals_or_opens() {
        let sealer = SecretBox::without_key();
        assert_eq!(sealer.seal(&secret("s"), "b"), Err(SealError::NoKey));
        let sealed = key_box().seal(&secret("s"), "b").unwrap();
        assert_eq!(sealer.open(&sealed, "b"), Err(OpenError::NoKey));
    }

    #[test]
    fn keys_read_every_base64_form_and_only_32_bytes() {
        // 32 bytes whose encodings use `+` (0xfbefbe is "++++"), `/` (0xffffff is "////") and
        // padding.
        let mut bytes = vec![0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff];
        bytes.extend(0..26u8);
        let padded = STANDARD.encode(&bytes);
        assert!(padded.contains('+') && padded.contains('/') && padded.ends_with('='));
        let key = SecretKey::from_base64(&padded).unwrap();
        assert_eq!(key.to_base64(), padded);
        for form in [
            format!("  {padded}\n"),
            padded.trim_end_matches('=').to_owned(),
            base64::engine::general_purpose::URL_SAFE.encode(&bytes),
            URL_SAFE_NO_PAD.encode(&bytes),
        ] {
            assert_eq!(
                SecretKey::from_base64(&form).unwrap().id(),
                key.id(),
                "{form}"
            );
        }
        for (length, text) in [
            (31, STANDARD.encode([7u8; 31])),
            (33, STANDARD.encode([7u8; 33])),
        ] {
            assert!(matches!(
                SecretKey::from_base64(&text),
                Err(SecretKeyError::WrongLength { bytes }) if bytes == length
            ));
        }
        for garbage in ["", "not a key!", "%%%%"] {
            let error = SecretKey::from_base64(garbage).unwrap_err();
            assert!(
                error.to_string().contains("openssl rand -base64 32"),
                "{error}"
            );
        }
    }

    #[test]
    fn a_key_file_is_created_private_then_read_back() {
        let dir = std::env::temp_dir().join(format!(
            "ipa-security-key-{}-{}",
            std::process::id(),
            SecretKey::generate().unwrap().id()
        ));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret.key");
        let created = SecretKey::load_or_create(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let read = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(read.to_base64(), created.to_base64());
        // Only the key file is left: no temporary beside it.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);

        fs::write(&path, "garbage").unwrap();
        let error = SecretKey::load_or_create(&path).unwrap_err();
        assert!(error.to_string().contains(&path.display().to_string()));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_output_never_shows_the_key() {
        let key = SecretKey::generate().unwrap();
        let encoded = key.to_base64();
        let unpadded = encoded.trim_end_matches('=');
        let shown = [
            format!("{key:?}"),
            format!("{:?}", SecretBox::new(key.clone())),
        ];
        for text in shown {
            assert!(!text.contains(unpadded), "{text}");
            assert!(text.contains(&key.id()));
        }
    }

    #[test]
    fn key_ids_are_stable_16_hex_characters() {
        let key = SecretKey::from_base64(&STANDARD.encode([1u8; 32])).unwrap();
        let id = key.id();
        assert_eq!(id, "a50a4702ba73f12a");
        assert!(
            id.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(key.clone().id(), id);
        assert_eq!(SecretKey::from_base64(&key.to_base64()).unwrap().id(), id);
        assert_ne!(SecretKey::generate().unwrap().id(), id);
    }
}
