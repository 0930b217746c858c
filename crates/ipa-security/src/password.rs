//! Argon2id password hashing. The parameters are written out here rather than taken from the
//! library's defaults, so a library upgrade never weakens them silently. Hashing takes tens of
//! milliseconds of CPU and 19 MiB of memory by design, so it runs on threads of its own, one per
//! core, never on the async threads that serve requests; the other hashes wait their turn. More
//! at once would not finish sooner, and every thread that ever hashed keeps its 19 MiB in the
//! allocator's arena afterwards: on tokio's blocking pool, whose threads come and go, a burst of
//! sign-ins left the server hundreds of MiB larger (385 MiB after 32 concurrent sign-ins).

use std::sync::{Arc, Mutex, PoisonError, mpsc};

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ipa_identity::{CryptoError, Password, PasswordHash, PasswordHasher};

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
    /// The threads hashes run on.
    threads: Arc<HashingThreads>,
}

impl Argon2Hasher {
    /// A hasher; computes its dummy hash once (call at startup).
    pub fn new() -> Result<Self, CryptoError> {
        let mut random = [0u8; 32];
        getrandom::fill(&mut random).map_err(|error| CryptoError(error.to_string()))?;
        let dummy = hash_blocking(&random)?;
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self::with_dummy(dummy, cores)
    }

    fn with_dummy(dummy: PasswordHash, threads: usize) -> Result<Self, CryptoError> {
        Ok(Self {
            dummy: Arc::new(dummy),
            threads: Arc::new(HashingThreads::start(threads)?),
        })
    }
}

/// Work for a hashing thread.
type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads that run hashes, in the order they were asked for. They stop when the
/// hasher (the queue's only sender) is dropped.
#[derive(Debug)]
struct HashingThreads {
    queue: Mutex<mpsc::Sender<Job>>,
}

impl HashingThreads {
    fn start(count: usize) -> Result<Self, CryptoError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for index in 0..count.max(1) {
            let jobs = Arc::clone(&jobs);
            std::thread::Builder::new()
                .name(format!("ipa-argon2-{index}"))
                .spawn(move || {
                    loop {
                        // The lock is held while waiting for the next job, never while running it.
                        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        match next {
                            Ok(job) => job(),
                            Err(mpsc::RecvError) => return,
                        }
                    }
                })
                .map_err(|error| CryptoError(format!("starting a hashing thread: {error}")))?;
        }
        Ok(Self {
            queue: Mutex::new(queue),
        })
    }

    /// Runs `work` on the next free hashing thread and waits for its answer.
    async fn run<R: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<R, CryptoError> + Send + 'static,
    ) -> Result<R, CryptoError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // The asker may have gone (its request was dropped): nothing to tell.
            let _ = answer.send(work());
        });
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(job)
            .map_err(|_| CryptoError("the hashing threads have stopped".to_owned()))?;
        answered
            .await
            .map_err(|_| CryptoError("a hashing thread stopped before answering".to_owned()))?
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

impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: Password) -> Result<PasswordHash, CryptoError> {
        self.threads
            .run(move || hash_blocking(password.expose()))
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
            .threads
            .run(move || verify_blocking(password.expose(), &hash))
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
    async fn a_hash_waits_while_every_hashing_thread_is_busy() {
        let dummy = hash_blocking(b"dummy").unwrap();
        let hasher = Argon2Hasher::with_dummy(dummy, 1).unwrap();
        // Hold the only thread until told to let go.
        let (release, held) = mpsc::channel::<()>();
        let holding = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                hasher
                    .threads
                    .run(move || {
                        let _ = held.recv();
                        Ok(())
                    })
                    .await
            }
        });
        let waiting = tokio::spawn({
            let hasher = hasher.clone();
            async move { hasher.hash(password("correct horse")).await }
        });
        // One hash takes tens of milliseconds; with the only thread busy it does not start.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!waiting.is_finished(), "a hash ran beside a busy thread");
        release.send(()).unwrap();
        holding.await.unwrap().unwrap();
        let hash = waiting.await.unwrap().unwrap();
        assert!(
            hasher
                .verify(password("correct horse"), Some(hash))
                .await
                .unwrap()
        );
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
