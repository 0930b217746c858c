//! The engine phase: one-step webhook runs against the local endpoint, with the server's workers
//! on. For each worker count: `R` runs started through the API as fast as possible (runs per
//! second end to end, enqueue-to-start under load), then runs started one at a time with idle
//! workers (enqueue-to-start when a worker waits), then a backlog of `R` pending runs written at
//! once and drained by the workers (claim and complete alone), then pgbench running the
//! journal's SQL for a one-step run on `R` such runs with as many clients as workers.

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
    /// Completed runs per second, from the first run's creation to the last one's completion
    /// (the API's starts and the workers sharing the cores).
    pub runs_per_second: f64,
    /// Runs in the backlog drained by claim and complete alone.
    pub backlog_runs: u64,
    /// Runs of the backlog that did not complete.
    pub backlog_not_completed: u64,
    /// Completed runs per second of the backlog, from the first claim to the last completion:
    /// the figure pgbench's claim and complete is compared with.
    pub claim_complete_per_second: f64,
    /// Enqueue-to-start (`started_at - created_at`) in the burst, p50 and p99, ms.
    pub burst_start: (Option<f64>, Option<f64>),
    /// The same for runs started one at a time with idle workers.
    pub idle_start: (Option<f64>, Option<f64>),
    /// Runs started one at a time.
    pub idle_runs: u64,
    /// Worker time per run of the backlog less the endpoint's own time, ms.
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

/// The runs of `workflow` whose input's `batch` is `batch` (an SQL condition on `executions`).
fn batch_filter(workflow: &str, batch: &str) -> String {
    format!("workflow_id = '{workflow}'::uuid AND input_data->>'batch' = '{batch}'")
}

/// The runs of `workflow` with the seeded ids `first` to `first + count - 1`.
fn range_filter(workflow: &str, first: u64, count: u64) -> String {
    format!(
        "workflow_id = '{workflow}'::uuid AND id BETWEEN '{}'::uuid AND '{}'::uuid",
        crate::seed::Table::Execution.id(first),
        crate::seed::Table::Execution.id(first + count - 1)
    )
}

/// What the runs `filter` selects show.
struct BatchFigures {
    /// Enqueue-to-start (`started_at - created_at`) of each started run, ms, sorted.
    starts: Vec<f64>,
    /// Runs selected.
    count: u64,
    /// Of those, the runs that did not complete.
    not_completed: u64,
    /// From the first creation to the last completion, s.
    from_creation: f64,
    /// From the first start (claim) to the last completion, s.
    from_start: f64,
}

async fn batch_figures(database: &BenchDatabase, filter: &str) -> anyhow::Result<BatchFigures> {
    let starts = database
        .query(&format!(
            "SELECT extract(epoch FROM started_at - created_at) * 1000 FROM executions \
             WHERE {filter} AND started_at IS NOT NULL ORDER BY 1"
        ))
        .await?;
    let mut starts: Vec<f64> = starts
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    starts.sort_by(f64::total_cmp);
    let summary = database
        .query(&format!(
            "SELECT count(*), count(*) FILTER (WHERE status <> 'completed'), \
                    coalesce(extract(epoch FROM max(completed_at) - min(created_at)), 0), \
                    coalesce(extract(epoch FROM max(completed_at) - min(started_at)), 0) \
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
    Ok(BatchFigures {
        starts,
        count: number(0)? as u64,
        not_completed: number(1)? as u64,
        from_creation: number(2)?,
        from_start: number(3)?,
    })
}

/// Waits until every run `filter` selects is final (completed, failed or cancelled).
async fn wait_finished(
    database: &BenchDatabase,
    filter: &str,
    expected: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let done = database
            .query(&format!(
                "SELECT count(*) FROM executions WHERE {filter} \
                 AND status IN ('completed', 'failed', 'cancelled')"
            ))
            .await?;
        if done.trim().parse::<u64>().unwrap_or(0) >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the runs where {filter} did not finish within 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Completed runs per second over `span` seconds.
fn per_second(figures: &BatchFigures, span: f64) -> f64 {
    if span > 0.0 {
        (figures.count - figures.not_completed) as f64 / span
    } else {
        0.0
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
    let burst_filter = batch_filter(workflow, &burst);
    wait_finished(setup.database, &burst_filter, setup.runs).await?;
    let burst_figures = batch_figures(setup.database, &burst_filter).await?;
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
    let runs_per_second = per_second(&burst_figures, burst_figures.from_creation);
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
    let idle_filter = batch_filter(workflow, &idle);
    wait_finished(setup.database, &idle_filter, setup.idle_runs).await?;
    let idle_figures = batch_figures(setup.database, &idle_filter).await?;
    let backlog = drain_backlog(setup, workflow, workers, index).await?;
    let overhead_ms = if backlog.count > 0 {
        f64::from(workers) * backlog.from_start * 1000.0 / backlog.count as f64 - endpoint_ms
    } else {
        0.0
    };
    let peak_rss_mib = watch.finish().await;
    use crate::stats::percentile_f64;
    Ok(EngineRow {
        workers,
        runs: burst_figures.count,
        not_completed: burst_figures.not_completed,
        runs_per_second,
        backlog_runs: backlog.count,
        backlog_not_completed: backlog.not_completed,
        claim_complete_per_second: per_second(&backlog, backlog.from_start),
        burst_start: (
            percentile_f64(&burst_figures.starts, 50.0),
            percentile_f64(&burst_figures.starts, 99.0),
        ),
        idle_start: (
            percentile_f64(&idle_figures.starts, 50.0),
            percentile_f64(&idle_figures.starts, 99.0),
        ),
        idle_runs: idle_figures.starts.len() as u64,
        overhead_ms,
        endpoint_ms,
        pgbench_tps: None,
        pgbench_error: None,
        peak_rss_mib,
    })
}

/// The first number of row `index`'s backlog ([`crate::seed::numbering`]).
fn backlog_first(index: usize) -> u64 {
    crate::seed::numbering::BACKLOG + (index as u64) * crate::seed::numbering::PER_ROW
}

/// Claim and complete as the engine does it: `runs` pending runs written at once, as pgbench's
/// are (no API start competing for the cores), then every worker woken, and the figures taken
/// from the first claim to the last completion.
async fn drain_backlog(
    setup: &EngineSetup<'_>,
    workflow: &str,
    workers: u32,
    index: usize,
) -> anyhow::Result<BatchFigures> {
    let first = backlog_first(index);
    let file = format!("backlog-{index}.sql");
    seed_pending(setup, workflow, &file, first, setup.runs, false).await?;
    // The seed writes with triggers off, so no notification went out: one per worker, each
    // in its own transaction (PostgreSQL folds equal notifications of one transaction), wakes
    // them all now rather than at their next polls.
    let wake: String = (0..u64::from(workers))
        .map(|n| {
            format!(
                "SELECT pg_notify('ipa_executions', 'pending:{}');\n",
                crate::seed::Table::Execution.id(first + n)
            )
        })
        .collect();
    setup.database.query(&wake).await?;
    let filter = range_filter(workflow, first, setup.runs);
    wait_finished(setup.database, &filter, setup.runs).await?;
    batch_figures(setup.database, &filter).await
}

/// Writes `count` pending one-step runs of `workflow` (ids from `first`) through the script
/// `file`, as the superuser ([`crate::seed::pending_runs_sql`]).
async fn seed_pending(
    setup: &EngineSetup<'_>,
    workflow: &str,
    file: &str,
    first: u64,
    count: u64,
    analyze: bool,
) -> anyhow::Result<()> {
    let sql = crate::seed::pending_runs_sql(workflow, &setup.user.user_id, first, count, analyze);
    let path = setup.database.write(file, &sql)?;
    setup
        .database
        .run_file(crate::database::SUPERUSER, &path)
        .await
        .map(drop)
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
    let first =
        crate::seed::numbering::PGBENCH_PENDING + (index as u64) * crate::seed::numbering::PER_ROW;
    let file = format!("pending-{index}.sql");
    seed_pending(setup, workflow, &file, first, count, true).await?;
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
            "SELECT count(*) FROM executions WHERE {} AND status <> 'completed'",
            range_filter(workflow, first, count)
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
