//! `ipa serve`: open the database, check the roles, migrate, run upkeep in the background, and
//! serve HTTP until SIGINT or SIGTERM, then shut everything down cleanly.

use std::time::Duration;

use anyhow::{Context, bail};
use ipa_store::{Store, maintenance, schema};
use tokio::net::TcpListener;
use tokio::sync::watch;

use ipa_api::AppState;

use crate::bootstrap;
use crate::config::{GlobalOptions, ServeOptions};
use crate::connections;
use crate::database::Database;

/// How long requests in flight may take to finish once shutdown begins.
const GRACE: Duration = Duration::from_secs(10);
/// How often monthly partitions are topped up.
const PARTITION_INTERVAL: Duration = Duration::from_secs(24 * 3600);

/// Serves until a shutdown signal arrives.
pub async fn serve(global: &GlobalOptions, options: &ServeOptions) -> anyhow::Result<()> {
    // Configuration mistakes are reported before anything starts.
    options.identity.policy()?;
    bootstrap::bootstrap_account(&options.bootstrap)?;
    let database = Database::open(global).await?;
    let served = serve_with(&database, global, options).await;
    let closed = database.close().await;
    served?;
    closed
}

async fn serve_with(
    database: &Database,
    global: &GlobalOptions,
    options: &ServeOptions,
) -> anyhow::Result<()> {
    let store = &database.store;
    let policy = options.identity.policy()?;
    if !options.no_migrate {
        schema::migrate_up(store, None)
            .await
            .context("applying migrations at start")?;
    }
    check_roles(store, global.allow_privileged_database_role).await?;
    match schema::filters_are_leakproof(store).await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "the list filters by tag, metadata and name cannot use their indexes under row \
             level security until a PostgreSQL superuser runs, in this database: {}",
            ipa_store::cluster::LEAKPROOF_FILTERS_SQL
        ),
        Err(err) => tracing::warn!("cannot check the filter operators: {err}"),
    }
    if let Err(err) = maintenance::ensure_partitions(store).await {
        tracing::warn!("cannot create monthly partitions ahead: {err}");
    }
    let secrets = crate::secrets::secret_box(database.embedded_data_dir())?;
    let session_cache = Duration::from_secs(u64::from(options.identity.session_cache_secs));
    let state = AppState::new(store.clone(), policy, secrets.clone(), session_cache)
        .context("preparing the password hasher")?;
    let account = bootstrap::bootstrap_account(&options.bootstrap)?;
    bootstrap::ensure_superuser(&state, account, database.embedded_data_dir())
        .await
        .context("creating the first superuser")?;
    let upkeep = tokio::spawn(upkeep(
        store.clone(),
        Duration::from_secs(options.stats_refresh_secs),
    ));
    let (stop, shutdown) = watch::channel(false);
    let engine = crate::engine::spawn(
        store,
        &state.notifications,
        secrets,
        crate::engine::options(&options.engine),
        shutdown,
    )?;

    let signal = shutdown_signal();
    let stopping = async move {
        signal.await;
        let _ = stop.send(true);
    };
    let limits = options.http.limits();
    let served = match TcpListener::bind(options.bind).await {
        Ok(listener) => {
            tracing::info!(bind = %options.bind, "serving the API; Swagger UI at http://{}/docs", options.bind);
            connections::serve(listener, ipa_api::app(state, limits), limits, stopping, GRACE).await
        }
        Err(err) => {
            // Dropping the shutdown future drops the workers' stop signal, which stops them.
            drop(stopping);
            Err(err)
        }
    }
    .with_context(|| format!("serving on {}", options.bind));
    // The shutdown future held the workers' stop signal: it has been sent, or (a failed bind)
    // dropped, which stops them too. They interrupt and release their runs within the grace.
    if tokio::time::timeout(GRACE, engine).await.is_err() {
        tracing::warn!(
            "engine workers did not stop in time; their runs are picked up again when their leases run out"
        );
    }
    upkeep.abort();
    tracing::info!("shut down");
    served
}

/// Refuses to serve through roles that row level security would not bind.
async fn check_roles(store: &Store, allow_privileged: bool) -> anyhow::Result<()> {
    let report = schema::inspect_roles(store).await?;
    let problems = report.problems();
    if problems.is_empty() {
        return Ok(());
    }
    let summary = problems.join("; ");
    if allow_privileged {
        tracing::warn!("serving despite unsafe database roles (explicitly allowed): {summary}");
        return Ok(());
    }
    bail!(
        "refusing to serve: {summary}. Row level security would not protect users' data. Connect \
         as a role that owns the database and has CREATEROLE but is not a superuser (see the \
         README), or set IPA_ALLOW_PRIVILEGED_DATABASE_ROLE=true to override (never in production)"
    )
}

/// Refreshes the statistics view on its schedule and tops up partitions daily.
async fn upkeep(store: Store, stats_every: Duration) {
    let mut stats = tokio::time::interval(stats_every);
    let mut partitions = tokio::time::interval(PARTITION_INTERVAL);
    // Both fire at once at first: partitions were just ensured, the view is refreshed.
    partitions.tick().await;
    loop {
        tokio::select! {
            _ = stats.tick() => {
                if let Err(err) = maintenance::refresh_workflow_stats(&store).await {
                    tracing::warn!("cannot refresh workflow_execution_stats: {err}");
                }
            }
            _ = partitions.tick() => {
                match maintenance::ensure_partitions(&store).await {
                    Ok(created) if created > 0 => tracing::info!(created, "created monthly partitions"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!("cannot create monthly partitions ahead: {err}"),
                }
            }
        }
    }
}

/// A future that resolves on SIGINT or SIGTERM. The handlers are installed when this is called,
/// not when the future is first polled: a signal that arrives before the server's loop first
/// looks at the future must still stop the server gracefully rather than kill it.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let listeners = {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |kind: SignalKind, name: &str| {
            signal(kind)
                .map_err(|err| tracing::warn!("cannot listen for {name}: {err}"))
                .ok()
        };
        (
            listen(SignalKind::interrupt(), "SIGINT"),
            listen(SignalKind::terminate(), "SIGTERM"),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (interrupt, terminate) = listeners;
            let received = |listener: Option<tokio::signal::unix::Signal>| async move {
                match listener {
                    Some(mut listener) => {
                        listener.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = received(interrupt) => {}
                () = received(terminate) => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; finishing requests in flight");
    }
}
