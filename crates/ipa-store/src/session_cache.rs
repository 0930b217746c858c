//! The session cache: what a bearer token authenticated as, remembered by this process for a few
//! seconds, so that a client sending requests back to back costs the database one authentication
//! per token and period instead of one per request.
//!
//! A remembered token is honoured only while nothing can have made it stale unnoticed:
//! - every change that ends or alters a session or its account is announced on
//!   [`SESSIONS_CHANNEL`] (migration `m20251202_000019_session_changes_announced`), and the
//!   cache forgets the account's tokens when the announcement arrives; this process's own
//!   changes also forget them as they commit, before the client hears back;
//! - it is used only while the process's listener is listening, and only for entries remembered
//!   since it last (re)connected: an announcement sent while it was not listening is lost, so
//!   whatever was remembered before is not trusted again;
//! - an authentication that raced with an announcement is not remembered (a sequence number
//!   read before the database is asked must be unchanged when the answer is stored);
//! - an entry lasts at most the configured period, and never past its session's expiry or idle
//!   expiry as the database computed them.
//!
//! Only successful authentications are remembered, and at most [`SessionCache::MAX_ENTRIES`], so
//! a client presenting random tokens grows nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use uuid::Uuid;

use crate::notifications::{Notifications, SESSIONS_CHANNEL};

/// What a token authenticated as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CachedSession {
    /// The session.
    pub(crate) session_id: Uuid,
    /// Its account.
    pub(crate) user_id: Uuid,
    /// Whether the account administers the platform.
    pub(crate) is_superuser: bool,
}

/// A remembered authentication.
#[derive(Clone, Copy, Debug)]
struct Entry {
    session: CachedSession,
    /// The listener's epoch it was remembered in.
    epoch: u64,
    /// When it stops being honoured.
    until: Instant,
}

/// The state behind the lock.
#[derive(Debug, Default)]
struct Entries {
    by_digest: HashMap<[u8; 32], Entry>,
    /// Grows with every forgetting; see [`FillTicket`].
    forgotten: u64,
}

/// Where the epoch comes from: the process's listener, or (in tests) a fixed value.
#[derive(Clone, Debug)]
enum Epochs {
    Listener(Notifications),
    #[cfg(test)]
    Fixed(Arc<std::sync::atomic::AtomicU64>),
}

impl Epochs {
    fn current(&self) -> Option<u64> {
        match self {
            Self::Listener(notifications) => notifications.listening_epoch(),
            #[cfg(test)]
            Self::Fixed(epoch) => {
                let epoch = epoch.load(std::sync::atomic::Ordering::SeqCst);
                (epoch % 2 == 1).then_some(epoch)
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    entries: Mutex<Entries>,
    period: Duration,
    epochs: Epochs,
}

/// The process's memory of authenticated tokens; cloning shares it. A disabled cache (period
/// zero, or none configured) remembers nothing.
#[derive(Clone, Debug, Default)]
pub struct SessionCache {
    shared: Option<Arc<Shared>>,
}

/// Taken before the database is asked, handed back with its answer: the answer is remembered only
/// if nothing was forgotten and the listener did not reconnect in between.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FillTicket {
    forgotten: u64,
    epoch: u64,
}

impl SessionCache {
    /// The most tokens remembered at once.
    pub const MAX_ENTRIES: usize = 10_000;

    /// The default period a token is remembered for.
    pub const DEFAULT_PERIOD: Duration = Duration::from_secs(10);

    /// A cache remembering nothing.
    pub fn disabled() -> Self {
        Self::default()
    }

    /// A cache remembering tokens for `period` (none when zero), trusted while `notifications`
    /// listens, and forgetting accounts as their changes are announced. `notifications` must
    /// listen on [`SESSIONS_CHANNEL`]. Spawns the task that reads the announcements, so call it
    /// within the async runtime.
    pub fn new(period: Duration, notifications: &Notifications) -> Self {
        if period.is_zero() {
            return Self::disabled();
        }
        let cache = Self::with_epochs(period, Epochs::Listener(notifications.clone()));
        let mut announcements = notifications.subscribe();
        let watched = cache.shared.as_ref().map(Arc::downgrade);
        tokio::spawn(async move {
            loop {
                let announcement = announcements.recv().await;
                // The cache was dropped: nothing left to forget.
                let Some(shared) = watched.as_ref().and_then(Weak::upgrade) else {
                    return;
                };
                match announcement {
                    Ok(notification) if notification.channel == SESSIONS_CHANNEL => {
                        match Uuid::parse_str(&notification.payload) {
                            Ok(user) => shared.forget(Some(user)),
                            Err(_) => shared.forget(None),
                        }
                    }
                    Ok(_) => {}
                    // Announcements were dropped unread: nothing remembered can be trusted.
                    Err(RecvError::Lagged(_)) => shared.forget(None),
                    Err(RecvError::Closed) => return,
                }
            }
        });
        cache
    }

    fn with_epochs(period: Duration, epochs: Epochs) -> Self {
        Self {
            shared: Some(Arc::new(Shared {
                entries: Mutex::new(Entries::default()),
                period,
                epochs,
            })),
        }
    }

    /// What `digest` authenticated as, if it is remembered and may be trusted now.
    pub(crate) fn get(&self, digest: &[u8; 32]) -> Option<CachedSession> {
        let shared = self.shared.as_ref()?;
        let epoch = shared.epochs.current()?;
        let entries = shared.lock();
        let entry = entries.by_digest.get(digest)?;
        (entry.epoch == epoch && Instant::now() < entry.until).then_some(entry.session)
    }

    /// A ticket for remembering what the database is about to answer; `None` when nothing would
    /// be remembered (disabled, or the listener is not listening).
    pub(crate) fn ticket(&self) -> Option<FillTicket> {
        let shared = self.shared.as_ref()?;
        let epoch = shared.epochs.current()?;
        Some(FillTicket {
            forgotten: shared.lock().forgotten,
            epoch,
        })
    }

    /// Remembers that `digest` authenticated as `session`, whose session stays good for
    /// `seconds_left` at most, unless something was forgotten or the listener reconnected since
    /// `ticket` was taken.
    pub(crate) fn remember(
        &self,
        ticket: FillTicket,
        digest: [u8; 32],
        session: CachedSession,
        seconds_left: f64,
    ) {
        let Some(shared) = self.shared.as_ref() else {
            return;
        };
        let left = Duration::try_from_secs_f64(seconds_left).unwrap_or(Duration::ZERO);
        let lasts = shared.period.min(left);
        if lasts.is_zero() || shared.epochs.current() != Some(ticket.epoch) {
            return;
        }
        let now = Instant::now();
        let mut entries = shared.lock();
        if entries.forgotten != ticket.forgotten {
            return;
        }
        if entries.by_digest.len() >= Self::MAX_ENTRIES {
            entries.by_digest.retain(|_, entry| now < entry.until);
            if entries.by_digest.len() >= Self::MAX_ENTRIES {
                return;
            }
        }
        entries.by_digest.insert(
            digest,
            Entry {
                session,
                epoch: ticket.epoch,
                until: now + lasts,
            },
        );
    }

    /// Forgets every token of account `user`.
    pub(crate) fn forget_user(&self, user: Uuid) {
        if let Some(shared) = &self.shared {
            shared.forget(Some(user));
        }
    }

    /// Forgets every token.
    #[cfg(test)]
    fn forget_all(&self) {
        if let Some(shared) = &self.shared {
            shared.forget(None);
        }
    }
}

impl Shared {
    /// Forgets the tokens of `user`, or every token.
    fn forget(&self, user: Option<Uuid>) {
        let mut entries = self.lock();
        entries.forgotten += 1;
        match user {
            Some(user) => entries
                .by_digest
                .retain(|_, entry| entry.session.user_id != user),
            None => entries.by_digest.clear(),
        }
    }

    /// The entries; a panic while they were held left them consistent (every change is one map
    /// operation), so a poisoned lock is taken over.
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn session(user: Uuid) -> CachedSession {
        CachedSession {
            session_id: Uuid::new_v4(),
            user_id: user,
            is_superuser: false,
        }
    }

    fn listening_cache(period: Duration) -> (SessionCache, Arc<AtomicU64>) {
        let epoch = Arc::new(AtomicU64::new(1));
        (
            SessionCache::with_epochs(period, Epochs::Fixed(Arc::clone(&epoch))),
            epoch,
        )
    }

    #[test]
    fn remembers_an_authentication_for_its_period() {
        let (cache, _) = listening_cache(Duration::from_secs(10));
        let user = Uuid::new_v4();
        let ticket = cache.ticket().expect("listening");
        cache.remember(ticket, [1; 32], session(user), 3600.0);
        assert_eq!(cache.get(&[1; 32]).map(|s| s.user_id), Some(user));
        assert_eq!(cache.get(&[2; 32]), None);
    }

    #[test]
    fn never_past_the_period_or_the_session() {
        let (cache, _) = listening_cache(Duration::from_millis(30));
        let ticket = cache.ticket().expect("listening");
        cache.remember(ticket, [1; 32], session(Uuid::new_v4()), 3600.0);
        assert!(cache.get(&[1; 32]).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&[1; 32]), None, "past the period");

        let (cache, _) = listening_cache(Duration::from_secs(10));
        let ticket = cache.ticket().expect("listening");
        cache.remember(ticket, [1; 32], session(Uuid::new_v4()), 0.03);
        assert!(cache.get(&[1; 32]).is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cache.get(&[1; 32]), None, "past the session's expiry");

        let ticket = cache.ticket().expect("listening");
        cache.remember(ticket, [2; 32], session(Uuid::new_v4()), -1.0);
        cache.remember(ticket, [3; 32], session(Uuid::new_v4()), f64::NAN);
        assert_eq!(cache.get(&[2; 32]), None);
        assert_eq!(cache.get(&[3; 32]), None);
    }

    #[test]
    fn forgetting_an_account_forgets_only_its_tokens() {
        let (cache, _) = listening_cache(Duration::from_secs(10));
        let (one, other) = (Uuid::new_v4(), Uuid::new_v4());
        let ticket = cache.ticket().expect("listening");
        cache.remember(ticket, [1; 32], session(one), 60.0);
        cache.remember(ticket, [2; 32], session(one), 60.0);
        cache.remember(ticket, [3; 32], session(other), 60.0);
        cache.forget_user(one);
        assert_eq!(cache.get(&[1; 32]), None);
        assert_eq!(cache.get(&[2; 32]), None);
        assert!(cache.get(&[3; 32]).is_some());
        cache.forget_all();
        assert_eq!(cache.get(&[3; 32]), None);
    }

    #[test]
    fn an_answer_that_raced_with_a_forgetting_is_not_remembered() {
        let (cache, _) = listening_cache(Duration::from_secs(10));
        let user = Uuid::new_v4();
        let ticket = cache.ticket().expect("listening");
        // The announcement arrives while the database is being asked.
        cache.forget_user(Uuid::new_v4());
        cache.remember(ticket, [1; 32], session(user), 60.0);
        assert_eq!(cache.get(&[1; 32]), None);
    }

    #[test]
    fn nothing_is_trusted_across_a_reconnection_or_while_not_listening() {
        let (cache, epoch) = listening_cache(Duration::from_secs(10));
        let ticket = cache.ticket().expect("listening");
        cache.remember(ticket, [1; 32], session(Uuid::new_v4()), 60.0);
        // The connection is lost: not listening.
        epoch.store(2, Ordering::SeqCst);
        assert_eq!(cache.get(&[1; 32]), None);
        assert!(cache.ticket().is_none());
        // Listening again: what was remembered before is not trusted, nor is a late answer.
        epoch.store(3, Ordering::SeqCst);
        assert_eq!(cache.get(&[1; 32]), None);
        cache.remember(ticket, [2; 32], session(Uuid::new_v4()), 60.0);
        assert_eq!(cache.get(&[2; 32]), None);
    }

    #[test]
    fn a_disabled_cache_remembers_nothing() {
        let cache = SessionCache::disabled();
        assert!(cache.ticket().is_none());
        assert_eq!(cache.get(&[1; 32]), None);
    }

    #[test]
    fn holds_at_most_its_bound() {
        let (cache, _) = listening_cache(Duration::from_secs(10));
        let ticket = cache.ticket().expect("listening");
        for n in 0..=SessionCache::MAX_ENTRIES {
            let mut digest = [0; 32];
            digest[..8].copy_from_slice(&(n as u64).to_le_bytes());
            cache.remember(ticket, digest, session(Uuid::new_v4()), 60.0);
        }
        let held = cache
            .shared
            .as_ref()
            .map(|shared| shared.lock().by_digest.len());
        assert_eq!(held, Some(SessionCache::MAX_ENTRIES));
    }
}
