//! The engine's wiring: workers over the store's journal, woken by the process's database
//! notifications, inside `ipa serve` or alone as `ipa worker`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use ipa_engine::{Engine, EngineOptions, MAX_RESPONSE_BYTES, OutboundClient, Signal};
use ipa_kernel::ExecutionId;
use ipa_security::SecretBox;
use ipa_store::{
    EXECUTION_LOGS_CHANNEL, EXECUTIONS_CHANNEL, Notification, Notifications, PgAgents,
    PgRunJournal, Store, schema,
};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::{EngineArgs, GlobalOptions, WorkerOptions};
use crate::database::Database;

/// The engine's options from the command line, its workers named after this host and process.
pub fn options(args: &EngineArgs) -> EngineOptions {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "ipa".to_owned());
    // A process id can be reused by a later process on the same host while an old lease is still
    // stored; the random part keeps worker names unique.
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    EngineOptions {
        workers: usize::try_from(args.workers).unwrap_or(usize::MAX),
        lease: Duration::from_secs(args.worker_lease_secs),
        poll_interval: Duration::from_millis(args.worker_poll_ms),
        max_recoveries: i32::try_from(args.worker_max_recoveries).unwrap_or(i32::MAX),
        openai_base_url: args.openai_base_url.clone(),
        name: format!("{host}:{}:{}", std::process::id(), &nonce[..8]),
        ..EngineOptions::default()
    }
}

/// Starts the engine's workers (none when `options.workers` is 0), woken by `notifications`,
/// opening agents' secrets with `secrets`; they stop when `shutdown` turns true (or its sender
/// is dropped), after interrupting and releasing their runs.
pub fn spawn(
    store: &Store,
    notifications: &Notifications,
    secrets: SecretBox,
    options: EngineOptions,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<JoinHandle<()>> {
    tracing::info!(workers = options.workers, name = %options.name, "starting the engine");
    // One client for every outbound call of this process's workers: webhooks, model providers
    // and tools share its connection pool and its rules.
    let client = OutboundClient::new(MAX_RESPONSE_BYTES)
        .map_err(anyhow::Error::msg)
        .context("preparing the outbound HTTP client")?;
    let engine = Engine::new(
        PgRunJournal::new(store.clone()),
        PgAgents::new(store.clone()),
        Arc::new(secrets),
        client,
        options,
    );
    let (signals, receiver) = broadcast::channel(1024);
    let mut notifications = notifications.subscribe();
    let forward = tokio::spawn(async move {
        loop {
            match notifications.recv().await {
                Ok(notification) => {
                    if let Some(signal) = signal(&notification) {
                        let _ = signals.send(signal);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = signals.send(Signal::Ready);
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    Ok(tokio::spawn(async move {
        engine.run(receiver, shutdown).await;
        forward.abort();
    }))
}

/// What a notification means to the engine.
fn signal(notification: &Notification) -> Option<Signal> {
    if notification.channel != EXECUTIONS_CHANNEL {
        return None;
    }
    let (status, id) = notification.payload.split_once(':')?;
    match status {
        "pending" => Some(Signal::Ready),
        "cancelled" => id
            .parse()
            .ok()
            .map(|id| Signal::Stop(ExecutionId::from_uuid(id))),
        _ => None,
    }
}

/// `ipa worker`: the engine alone, until SIGINT or SIGTERM.
pub async fn worker(global: &GlobalOptions, options: &WorkerOptions) -> anyhow::Result<()> {
    let database = Database::open(global).await?;
    let outcome = async {
        let pending: Vec<String> = schema::migration_states(&database.store)
            .await
            .context("reading the schema's migrations")?
            .into_iter()
            .filter(|state| !state.applied)
            .map(|state| state.name)
            .collect();
        if !pending.is_empty() {
            bail!(
                "the database schema is not up to date ({} pending: {}); run `ipa migrate up` \
                 (or start `ipa serve` once) first",
                pending.len(),
                pending.join(", ")
            );
        }
        let notifications = Notifications::listen(
            &database.store,
            &[EXECUTIONS_CHANNEL, EXECUTION_LOGS_CHANNEL],
        );
        let (stop, shutdown) = watch::channel(false);
        let secrets = crate::secrets::secret_box(database.embedded_data_dir())?;
        let engine = spawn(
            &database.store,
            &notifications,
            secrets,
            self::options(&options.engine),
            shutdown,
        )?;
        crate::serve::shutdown_signal().await;
        let _ = stop.send(true);
        engine.await.context("waiting for the workers to stop")?;
        tracing::info!("workers stopped");
        Ok(())
    }
    .await;
    let closed = database.close().await;
    outcome?;
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification(channel: &str, payload: &str) -> Notification {
        Notification {
            channel: channel.to_owned(),
            payload: payload.to_owned(),
        }
    }

    #[test]
    fn notifications_become_signals() {
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            signal(&notification(EXECUTIONS_CHANNEL, &format!("pending:{id}"))),
            Some(Signal::Ready)
        );
        assert_eq!(
            signal(&notification(
                EXECUTIONS_CHANNEL,
                &format!("cancelled:{id}")
            )),
            Some(Signal::Stop(ExecutionId::from_uuid(id)))
        );
        assert_eq!(
            signal(&notification(EXECUTIONS_CHANNEL, &format!("running:{id}"))),
            None
        );
        assert_eq!(
            signal(&notification(EXECUTION_LOGS_CHANNEL, &id.to_string())),
            None
        );
    }
}
