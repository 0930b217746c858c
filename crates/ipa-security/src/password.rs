//! Argon2id password hashing. The parameters are written out here rather than taken from the
//! library's defaults, so a library upgrade never weakens them silently. Hashing takes tens of
//! milliseconds of CPU and 19 MiB of memory by design, so it runs on tokio's blocking pool, never
//! on the async threads that serve requests, and at most one hash per core runs at a time: more
//! would not finish sooner, and a burst of sign-ins would otherwise hold 19 MiB per request in
//! flight (a gigabyte at fifty concurrent sign-ins), memory the allocator keeps afterwards.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ipa_identity::{CryptoError, Password, PasswordHash, PasswordHasher};
use tokio::sync::Semaphore;

/// Memory cost in KiB: OWASP's minimum for argon2id (19 MiB).
pub const ARGON2_M_COST_KIB: u32 = 19_456;
/// Iterations.
pub const ARGON2_T_COST: u32 = 2;
/// Parallelism.
pub const ARGON2_P_COST: u32 = 1;

/// Hashes with argon2id (m = 19456 KiB, t = 2, p = 1) and a random 16-byte salt; verifies any
/// argon2id PHC string at the parameters it names.
#[derive(Clone, Debug)]
pub struct Argon2Hasher {
    /// A hash of a random password at the current parameters: unknown accounts are verified
    /// against it, so they cost what a known account costs.
    dummy: Arc<PasswordHash>,
    /// One permit per core: the hashes that may run at once; the others wait their turn.
    running: Arc<Semaphore>,
}

impl Argon2Hasher {
    /// A hasher; computes its dummy hash once (call at startup).
    pub fn new() -> Result<Self, CryptoError> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|error| CryptoError(error.to_string()))?;
        let dummy = hash_blocking(&random)?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Ok(Self::with_dummy(dummy, cores))
    }

    fn with_dummy(dummy: PasswordHash, at_once: usize) -> Self {
        Self {
            dummy: Arc::new(dummy),
            running: Arc::new(Semaphore::new(at_once)),
        }
    }
}

fn argon2() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(ARGON2_M_COST_KIB, ARGON2_T_COST, ARGON2_P_COST, None)
        .map_err(|error| CryptoError(format!("argon2 parameters: {error}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &[u8]) -> Result<PasswordHash, CryptoError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| CryptoError(error.to_string()))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|error| CryptoError(format!("encoding a salt: {error}")))?;
    let phc = argon2()?
        .hash_password(password, &salt)
        .map_err(|error| CryptoError(format!("hashing: {error}")))?
        .to_string();
    PasswordHash::parse(&phc).map_err(|error| CryptoError(error.to_string()))
}

fn verify_blocking(password: &[u8], hash: &PasswordHash) -> Result<bool, CryptoError> {
    let parsed = argon2::password_hash::PasswordHash::new(hash.as_str())
        .map_err(|error| CryptoError(format!("reading a stored hash: {error}")))?;
    match argon2()?.verify_password(password, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(error) => Err(CryptoError(format!("verifying: {error}"))),
    }
}

impl Argon2Hasher {
    /// Runs `work` on the blocking pool once one of the permits is free.
    async fn off_the_async_threads<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<R, CryptoError> + Send + 'static,
    ) -> Result<R, CryptoError> {
        let _permit = self
            .running
            .acquire()
            .await
            .map_err(|error| CryptoError(format!("the hashing permits are gone: {error}")))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|error| CryptoError(format!("the hashing worker stopped: {error}")))?
    }
}

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, CryptoError> {
        self.off_the_async_threads(move || hash_blocking(password.expose()))
            .await
    }

    async fn verify(
        &self,
        password: Password,
        hash: Option<PasswordHash>,
    ) -> Result<bool, CryptoError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.dummy.as_ref().clone());
        let matches = self
            .off_the_async_threads(move || verify_blocking(password.expose(), &hash))
            .await?;
        Ok(known && matches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(text: &str) -> Password {
        Password::parse(text.to_owned()).unwrap()
    }

    #[tokio::test]
    async fn hashes_verify_their_password_only() {
        let hasher = Argon2Hasher::new().unwrap();
        let hash = hasher.hash(password("correct horse")).await.unwrap();
        assert!(
            hasher
                .verify(password("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("battery staple"), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let hasher = Argon2Hasher::new().unwrap();
        let first = hasher.hash(password("correct horse")).await.unwrap();
        let second = hasher.hash(password("correct horse")).await.unwrap();
        assert_ne!(first.as_str(), second.as_str());
    }

    #[tokio::test]
    async fn hashes_name_the_owasp_parameters() {
        let hasher = Argon2Hasher::new().unwrap();
        let hash = hasher.hash(password("correct horse")).await.unwrap();
        assert!(
            hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{}",
            hash.as_str()
        );
    }

    #[tokio::test]
    async fn a_hash_waits_while_every_permit_is_taken() {
        let dummy = hash_blocking(b"dummy").unwrap();
        let hasher = Argon2Hasher::with_dummy(dummy, 1);
        let held = hasher.running.clone().acquire_owned().await.unwrap();
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(password("correct horse")).await }
        });
        // One hash takes tens of milliseconds; with the only permit held it does not start.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "a hash ran without a permit");
        drop(held);
        let hash = waiting.await.unwrap().unwrap();
        assert!(
            hasher
                .verify(password("correct horse"), Some(hash))
                .await
                .unwrap()
        );
        assert_eq!(hasher.running.available_permits(), 1);
    }

    #[tokio::test]
    async fn unknown_accounts_never_verify() {
        let hasher = Argon2Hasher::new().unwrap();
        assert!(
            !hasher
                .verify(password("anything at all"), None)
                .await
                .unwrap()
        );
    }
}
