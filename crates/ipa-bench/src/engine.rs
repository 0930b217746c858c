//! The engine phase: one-step webhook runs against the local endpoint, with the server's workers
//! on. For each worker count: `R` runs started through the API as fast as possible (runs per
//! second, enqueue-to-start under load), then runs started one at a time with idle workers
//! (enqueue-to-start when a worker waits), then pgbench running the journal's SQL for a one-step
//! run on `R` pending runs with as many clients as workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

use crate::api::{self, Session};
use crate::database::{BenchDatabase, PgbenchLength};
use crate::endpoint::Endpoint;
use crate::server::{PeakWatch, Server, ServerConfig};

/// Clients starting the burst's runs through the API.
const STARTERS: usize = 8;

/// The figures of one worker count.
#[derive(Clone, Debug, Default)]
pub struct EngineRow {
    /// Workers in the server.
    pub workers: u32,
    /// Runs in the burst.
    pub runs: u64,
    /// Runs that did not complete.
    pub not_completed: u64,
    /// Completed runs per second, from the first run's creation to the last one's completion.
    pub runs_per_second: f64,
    /// Enqueue-to-start (`started_at - created_at`) in the burst, p50 and p99, ms.
    pub burst_start: (Option<f64>, Option<f64>),
    /// The same for runs started one at a time with idle workers.
    pub idle_start: (Option<f64>, Option<f64>),
    /// Runs started one at a time.
    pub idle_runs: u64,
    /// Worker time per run less the endpoint's own time, ms.
    pub overhead_ms: f64,
    /// The endpoint's mean time to answer, ms.
    pub endpoint_ms: f64,
    /// pgbench's one-step runs per second with as many clients as workers.
    pub pgbench_tps: Option<f64>,
    /// Why pgbench gave no figure.
    pub pgbench_error: Option<String>,
    /// The server's peak RSS in the phase, MiB.
    pub peak_rss_mib: f64,
}

/// What the phase needs.
pub struct EngineSetup<'a> {
    /// The cluster.
    pub database: &'a BenchDatabase,
    /// How to start the server (its worker count is set per row).
    pub config: ServerConfig,
    /// A client for setup calls.
    pub client: &'a reqwest::Client,
    /// The benchmark user.
    pub user: &'a Session,
    /// Runs per burst.
    pub runs: u64,
    /// Runs started one at a time.
    pub idle_runs: u64,
}

/// Cancels every run still waiting or running (the HTTP phase's starts, leftovers), so the
/// workers and pgbench see only the runs started for them.
pub async fn cancel_waiting_runs(database: &BenchDatabase) -> anyhow::Result<()> {
    database
        .query(
            "SET session_replication_role = replica; \
             UPDATE executions SET status = 'cancelled', completed_at = now(), \
                 started_at = coalesce(started_at, now()), lease_owner = NULL, lease_expires_at = NULL \
             WHERE status IN ('pending', 'running')",
        )
        .await
        .map(drop)
}

/// Waits until the statistics view's refresh at the server's start is over (on a million runs it
/// takes seconds and would land in the measurement).
async fn wait_for_refresh(database: &BenchDatabase) -> anyhow::Result<()> {
    // The server starts its refresh right after it is ready: give it a moment to begin.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let busy = database
            .query(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE query ILIKE 'REFRESH MATERIALIZED VIEW%' AND state = 'active'",
            )
            .await?;
        if busy.trim() == "0" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the statistics view's refresh took over 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts the server with `workers` workers and waits until it is ready and quiet.
async fn start_server(setup: &EngineSetup<'_>, workers: u32) -> anyhow::Result<Server> {
    let config = ServerConfig {
        workers,
        ..setup.config.clone()
    };
    start_quiet(setup.database, &config, setup.client).await
}

/// Starts a server as `config` says and waits until it is ready and quiet.
pub async fn start_quiet(
    database: &BenchDatabase,
    config: &ServerConfig,
    client: &reqwest::Client,
) -> anyhow::Result<Server> {
    let server = Server::start(config, client).await?;
    wait_for_refresh(database).await?;
    Ok(server)
}

/// The enqueue-to-start p50 and p99 (ms), the count, the runs not completed and the span from the
/// first creation to the last completion (s) of the runs of `workflow` whose input's `batch` is
/// `batch`.
async fn batch_figures(
    database: &BenchDatabase,
    workflow: &str,
    batch: &str,
) -> anyhow::Result<(Vec<f64>, u64, u64, f64)> {
    let filter = format!("workflow_id = '{workflow}'::uuid AND input_data->>'batch' = '{batch}'");
    let starts = database
        .query(&format!(
            "SELECT extract(epoch FROM started_at - created_at) * 1000 FROM executions \
             WHERE {filter} AND started_at IS NOT NULL ORDER BY 1"
        ))
        .await?;
    let starts: Vec<f64> = starts
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    let summary = database
        .query(&format!(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'completed'), \
                    coalesce(extract(epoch FROM max(completed_at) - min(created_at)), 0) \
             FROM executions WHERE {filter}"
        ))
        .await?;
    let fields: Vec<&str> = summary.trim().split('|').collect();
    let number = |index: usize| -> anyhow::Result<f64> {
        fields
            .get(index)
            .and_then(|field| field.trim().parse().ok())
            .with_context(|| format!("reading the runs' figures from {summary:?}"))
    };
    Ok((starts, number(0)? as u64, number(1)? as u64, number(2)?))
}

/// Waits until every run of the batch is final (completed, failed or cancelled).
async fn wait_finished(
    database: &BenchDatabase,
    workflow: &str,
    batch: &str,
    expected: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let done = database
            .query(&format!(
                "SELECT count(*) FROM executions WHERE workflow_id = '{workflow}'::uuid \
                 AND input_data->>'batch' = '{batch}' AND status IN ('completed', 'failed', 'cancelled')"
            ))
            .await?;
        if done.trim().parse::<u64>().unwrap_or(0) >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("runs of batch {batch} did not finish within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the phase for each worker count.
pub async fn run(
    setup: &EngineSetup<'_>,
    endpoint: &Endpoint,
    workflow: &str,
    worker_counts: &[u32],
) -> anyhow::Result<Vec<EngineRow>> {
    let mut rows = Vec::new();
    for (index, &workers) in worker_counts.iter().enumerate() {
        cancel_waiting_runs(setup.database).await?;
        let server = start_server(setup, workers).await?;
        let measured = measure(setup, &server, endpoint, workflow, workers, index).await;
        let stopped = server.stop().await;
        let mut row = measured?;
        stopped?;
        // pgbench on the same number of pending runs, with the server stopped.
        match pgbench_equivalent(setup, workflow, workers, index).await {
            Ok(tps) => row.pgbench_tps = Some(tps),
            Err(error) => row.pgbench_error = Some(format!("{error:#}")),
        }
        cancel_waiting_runs(setup.database).await?;
        rows.push(row);
    }
    Ok(rows)
}

async fn measure(
    setup: &EngineSetup<'_>,
    server: &Server,
    endpoint: &Endpoint,
    workflow: &str,
    workers: u32,
    index: usize,
) -> anyhow::Result<EngineRow> {
    let base = server.base_url().to_owned();
    let watch = PeakWatch::start(server.pid());
    let served_before = endpoint
        .served
        .requests
        .load(std::sync::atomic::Ordering::Relaxed);
    let nanos_before = endpoint
        .served
        .nanos
        .load(std::sync::atomic::Ordering::Relaxed);
    // The burst: R runs through the API as fast as STARTERS clients can start them.
    let burst = format!("burst-{index}");
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut starters = Vec::new();
    for _ in 0..STARTERS {
        let client = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .build()
            .context("building an HTTP client")?;
        let next = Arc::clone(&next);
        let base = base.clone();
        let user = setup.user.clone();
        let workflow = workflow.to_owned();
        let batch = burst.clone();
        let runs = setup.runs;
        starters.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if n >= runs {
                    return Ok::<(), anyhow::Error>(());
                }
                api::start_run(
                    &client,
                    &base,
                    &user,
                    &workflow,
                    json!({"batch": batch, "order_id": n}),
                )
                .await?;
            }
        }));
    }
    for starter in starters {
        starter.await.context("a starter failed")??;
    }
    wait_finished(setup.database, workflow, &burst, setup.runs).await?;
    let (mut starts, count, not_completed, span) =
        batch_figures(setup.database, workflow, &burst).await?;
    starts.sort_by(f64::total_cmp);
    let served = endpoint
        .served
        .requests
        .load(std::sync::atomic::Ordering::Relaxed)
        - served_before;
    let endpoint_ms = if served > 0 {
        (endpoint
            .served
            .nanos
            .load(std::sync::atomic::Ordering::Relaxed)
            - nanos_before) as f64
            / served as f64
            / 1e6
    } else {
        0.0
    };
    let runs_per_second = if span > 0.0 {
        (count - not_completed) as f64 / span
    } else {
        0.0
    };
    let overhead_ms = if count > 0 {
        f64::from(workers) * span * 1000.0 / count as f64 - endpoint_ms
    } else {
        0.0
    };
    // One at a time: each run starts while every worker waits.
    let idle = format!("idle-{index}");
    for n in 0..setup.idle_runs {
        api::start_run(
            setup.client,
            &base,
            setup.user,
            workflow,
            json!({"batch": idle, "order_id": n}),
        )
        .await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_finished(setup.database, workflow, &idle, setup.idle_runs).await?;
    let (mut idle_starts, _, _, _) = batch_figures(setup.database, workflow, &idle).await?;
    idle_starts.sort_by(f64::total_cmp);
    let peak_rss_mib = watch.finish().await;
    use crate::stats::percentile_f64;
    Ok(EngineRow {
        workers,
        runs: count,
        not_completed,
        runs_per_second,
        burst_start: (percentile_f64(&starts, 50.0), percentile_f64(&starts, 99.0)),
        idle_start: (
            percentile_f64(&idle_starts, 50.0),
            percentile_f64(&idle_starts, 99.0),
        ),
        idle_runs: idle_starts.len() as u64,
        overhead_ms,
        endpoint_ms,
        pgbench_tps: None,
        pgbench_error: None,
        peak_rss_mib,
    })
}

/// Seeds pending one-step runs and has pgbench claim and complete them with the journal's SQL.
async fn pgbench_equivalent(
    setup: &EngineSetup<'_>,
    workflow: &str,
    workers: u32,
    index: usize,
) -> anyhow::Result<f64> {
    let per_client = (setup.runs / u64::from(workers)).max(1);
    let count = per_client * u64::from(workers);
    // Far above the seeded executions' numbers, one range per row.
    let first = 1_000_000_000_000 + (index as u64) * 10_000_000;
    let seed_path = setup.database.write(
        &format!("pending-{index}.sql"),
        &crate::seed::pending_runs_sql(workflow, &setup.user.user_id, first, count),
    )?;
    setup
        .database
        .run_file(crate::database::SUPERUSER, &seed_path)
        .await?;
    let script = setup
        .database
        .write("engine.pgbench", &crate::sql::engine_script())?;
    let tps = setup
        .database
        .pgbench(
            &script,
            workers,
            PgbenchLength::Transactions(per_client),
            &[],
        )
        .await?;
    let left = setup
        .database
        .query(&format!(
            "SELECT count(*) FROM executions WHERE workflow_id = '{workflow}'::uuid AND status <> 'completed' \
             AND id BETWEEN '{}'::uuid AND '{}'::uuid",
            crate::seed::Table::Execution.id(first),
            crate::seed::Table::Execution.id(first + count - 1)
        ))
        .await?;
    if left.trim() != "0" {
        bail!(
            "pgbench left {} of its {count} runs unfinished",
            left.trim()
        );
    }
    Ok(tps)
}
