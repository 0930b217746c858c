//! PostgreSQL notifications as a broadcast channel: one connection per process listens (with
//! `LISTEN`), and engine workers and event streams subscribe. Notifications only make things
//! faster: whoever relies on them also polls, because a dropped connection loses the ones sent
//! meanwhile (the listener reconnects by itself). `LISTEN` lasts as long as its session, so the
//! listener uses the store's direct connection: behind a pooler in transaction mode, a pooled
//! connection would listen on whichever server connection it last had. Whoever must not miss a
//! notification (the session cache) asks whether the listener is listening, and since when
//! ([`Notifications::listening_epoch`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::store::Store;

/// The channel run status changes are announced on, as `<status>:<execution id>`.
pub const EXECUTIONS_CHANNEL: &str = "ipa_executions";
/// The channel new log lines are announced on, as `<execution id>`.
pub const EXECUTION_LOGS_CHANNEL: &str = "ipa_execution_logs";
/// The channel changes that end or alter what a bearer token authenticates as are announced on,
/// as `<user id>` (migration `m20251202_000019_session_changes_announced`).
pub const SESSIONS_CHANNEL: &str = "ipa_sessions";

/// One notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    /// Its channel.
    pub channel: String,
    /// Its payload.
    pub payload: String,
}

/// A running listener. Dropping the last clone stops it.
#[derive(Clone, Debug)]
pub struct Notifications {
    sender: broadcast::Sender<Notification>,
    /// Odd while listening, even while not; it grows by one each time listening starts or stops,
    /// so an unchanged odd value means no notification can have been missed since it was read.
    epoch: Arc<AtomicU64>,
    /// Held only so the task stops with the last clone.
    _task: Arc<AbortOnDrop>,
}

#[derive(Debug)]
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Notifications {
    /// Starts listening on `channels` with a connection of `store`'s direct pool.
    pub fn listen(store: &Store, channels: &[&'static str]) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let pool = store
            .owner_connection()
            .get_postgres_connection_pool()
            .clone();
        let channels = channels.to_vec();
        let forward = sender.clone();
        let epoch = Arc::new(AtomicU64::new(0));
        let listening = Arc::clone(&epoch);
        let task = tokio::spawn(async move {
            loop {
                let listener = async {
                    let mut listener = PgListener::connect_with(&pool).await?;
                    listener.listen_all(channels.iter().copied()).await?;
                    Ok::<_, sea_orm::sqlx::Error>(listener)
                };
                match listener.await {
                    Ok(mut listener) => {
                        listening.fetch_add(1, Ordering::SeqCst);
                        loop {
                            match listener.try_recv().await {
                                Ok(Some(notification)) => {
                                    // No subscriber yet is not an error.
                                    let _ = forward.send(Notification {
                                        channel: notification.channel().to_owned(),
                                        payload: notification.payload().to_owned(),
                                    });
                                }
                                Ok(None) => {
                                    tracing::warn!(
                                        "the notification connection was lost; reconnecting"
                                    );
                                    break;
                                }
                                Err(error) => {
                                    tracing::warn!(%error, "listening for notifications failed; reconnecting");
                                    break;
                                }
                            }
                        }
                        listening.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot listen for notifications; retrying");
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Self {
            sender,
            epoch,
            _task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// While the listener is listening, a number that stays the same for as long as it goes on
    /// listening without interruption; `None` while it is not (not yet connected, or
    /// reconnecting: notifications sent meanwhile are lost).
    pub fn listening_epoch(&self) -> Option<u64> {
        let epoch = self.epoch.load(Ordering::SeqCst);
        (epoch % 2 == 1).then_some(epoch)
    }

    /// A receiver of every notification from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Notification> {
        self.sender.subscribe()
    }
}
