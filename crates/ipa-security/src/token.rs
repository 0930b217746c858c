//! Bearer tokens and generated passwords from the operating system's random source. A token is
//! `ipa_` followed by 32 random bytes in unpadded base64url (256 bits); the prefix lets secret
//! scanners recognise a leaked one. Only its SHA-256 digest is ever stored.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ipa_identity::{BearerToken, CryptoError, Password, TokenDigest, TokenGenerator};
use sha2::{Digest as _, Sha256};

/// The prefix of every bearer token.
pub const TOKEN_PREFIX: &str = "ipa_";

/// Tokens and passwords from `getrandom`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RandomTokens;

fn random_text(bytes: usize) -> Result<String, CryptoError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|error| CryptoError(error.to_string()))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

impl TokenGenerator for RandomTokens {
    fn generate(&self) -> Result<(BearerToken, TokenDigest), CryptoError> {
        let token = format!("{TOKEN_PREFIX}{}", random_text(32)?);
        let digest = self.digest(&token);
        Ok((BearerToken::new(token), digest))
    }

    fn digest(&self, presented: &str) -> TokenDigest {
        TokenDigest::from_bytes(Sha256::digest(presented.as_bytes()).into())
    }

    fn generate_password(&self) -> Result<Password, CryptoError> {
        // 18 random bytes: 24 characters, 144 bits.
        Password::parse(random_text(18)?).map_err(|error| CryptoError(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_digested() {
        let (first, digest) = RandomTokens.generate().unwrap();
        let (second, _) = RandomTokens.generate().unwrap();
        assert_ne!(first, second);
        assert!(first.expose().starts_with(TOKEN_PREFIX));
        assert_eq!(first.expose().len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(RandomTokens.digest(first.expose()), digest);
        assert_ne!(RandomTokens.digest(second.expose()), digest);
    }

    #[test]
    fn digests_are_sha256() {
        assert_eq!(
            RandomTokens.digest("abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn generated_passwords_meet_the_rules() {
        let password = RandomTokens.generate_password().unwrap();
        assert_eq!(password.expose().len(), 24);
    }
}
