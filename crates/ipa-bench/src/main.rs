//! `ipa-bench`: the platform's benchmark suite (`just bench`).
//!
//! It starts a throwaway PostgreSQL cluster, runs the release `ipa` server on it, seeds realistic
//! volumes, and measures: HTTP operations at several concurrencies next to pgbench running the
//! same SQL, the engine on one-step runs, log ingestion next to `COPY`, the plans of every
//! documented filter, and the server's memory. It prints one report and exits 0 whenever the
//! suite ran, whatever the figures; non-zero only when it could not run.

mod api;
mod database;
mod endpoint;
mod engine;
mod explain;
mod ingest;
mod load;
mod report;
mod seed;
mod server;
mod sql;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::{Parser, ValueEnum};

use crate::database::{BenchDatabase, OWNER, PgbenchLength};
use crate::load::Operation;
use crate::report::{Table, Targets, figure, line, note, section};
use crate::seed::Volumes;
use crate::server::{Server, ServerConfig};
use crate::stats::{millis, percentile};

/// How much data to seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Size {
    /// 2,000 workflows, 20,000 executions, 210,000 log lines (for CI).
    Small,
    /// 100,000 workflows, 1,000,000 executions, 10,500,000 log lines.
    Default,
}

/// The benchmark suite of the IPA Platform: the server on a fresh, seeded PostgreSQL, measured
/// over HTTP and against pgbench running the same SQL.
#[derive(Debug, Parser)]
#[command(name = "ipa-bench", version)]
struct Args {
    /// How much data to seed: `small` (CI) or `default` (100k workflows, 1M executions, 10.5M log
    /// lines).
    #[arg(long, value_enum, default_value_t = Size::Default)]
    size: Size,
    /// Seconds each measurement lasts (default 5; 1 with `--size small`).
    #[arg(long)]
    duration: Option<f64>,
    /// Run one thing only: an operation of the table (`sign-in`, `get-workflow`,
    /// `list-workflows-by-tag`, `list-workflows-by-metadata`, `list-executions`,
    /// `list-executions-deep`, `publish-version`, `start-execution`, `read-logs`), or `engine`,
    /// `ingest`, `explain`.
    #[arg(long)]
    only: Option<String>,
    /// Keep the temporary directory (cluster, scripts, server log) and print its path.
    #[arg(long)]
    keep: bool,
    /// Engine workers of the engine phase's rows (default 4,16).
    #[arg(long, value_delimiter = ',')]
    workers: Option<Vec<u32>>,
    /// Client concurrencies of the HTTP rows (default 1,8,32).
    #[arg(long, value_delimiter = ',')]
    concurrency: Option<Vec<u32>>,
    /// Runs per engine row (default 2,000; 200 with `--size small`).
    #[arg(long)]
    runs: Option<u64>,
    /// The `ipa` binary to measure (default: the one next to this program).
    #[arg(long)]
    server_bin: Option<PathBuf>,
}

/// What `--only` selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Only {
    Everything,
    Operation(Operation),
    Engine,
    Ingest,
    Explain,
}

impl Only {
    fn parse(text: Option<&str>) -> anyhow::Result<Self> {
        let Some(text) = text else {
            return Ok(Self::Everything);
        };
        match text {
            "engine" => Ok(Self::Engine),
            "ingest" => Ok(Self::Ingest),
            "explain" => Ok(Self::Explain),
            name => Operation::ALL
                .iter()
                .find(|op| op.name() == name)
                .map(|op| Self::Operation(*op))
                .ok_or_else(|| {
                    let names: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
                    anyhow::anyhow!(
                        "--only {name}: not an operation; choose one of {}, engine, ingest, explain",
                        names.join(", ")
                    )
                }),
        }
    }

    fn operations(self) -> Vec<Operation> {
        match self {
            Self::Everything => Operation::ALL.to_vec(),
            Self::Operation(op) => vec![op],
            _ => Vec::new(),
        }
    }

    fn includes(self, other: Self) -> bool {
        self == Self::Everything || self == other
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = tokio::select! {
        outcome = run(args) => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; cleaning up")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            line(&format!("error: the suite could not run: {error:#}"));
            ExitCode::FAILURE
        }
    }
}

/// The HTTP row of one operation at one concurrency.
struct HttpRow {
    operation: Operation,
    clients: u32,
    result: load::LoadResult,
    rss_mib: f64,
    pgbench_tps: Option<f64>,
    pgbench_error: Option<String>,
}

impl HttpRow {
    fn p50(&self) -> Option<f64> {
        percentile(&self.result.latencies, 50.0).map(millis)
    }

    fn ratio(&self) -> Option<f64> {
        self.pgbench_tps
            .filter(|tps| *tps > 0.0)
            .map(|tps| self.result.throughput() / tps)
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let only = Only::parse(args.only.as_deref())?;
    let volumes = match args.size {
        Size::Small => Volumes::SMALL,
        Size::Default => Volumes::DEFAULT,
    };
    let small = args.size == Size::Small;
    let duration = Duration::from_secs_f64(args.duration.unwrap_or(if small { 1.0 } else { 5.0 }));
    let warmup = if small {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(1)
    };
    let concurrencies = args.concurrency.clone().unwrap_or_else(|| vec![1, 8, 32]);
    let worker_counts = args.workers.clone().unwrap_or_else(|| vec![4, 16]);
    let runs = args.runs.unwrap_or(if small { 200 } else { 2_000 });
    if concurrencies.contains(&0) || worker_counts.contains(&0) || runs == 0 {
        bail!("concurrencies, worker counts and runs must be at least 1");
    }
    let server_bin = match &args.server_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("locating this program")?
            .with_file_name("ipa"),
    };
    if !server_bin.is_file() {
        bail!(
            "no server binary at {}: build it (cargo build --release -p ipa-server) or name one \
             with --server-bin",
            server_bin.display()
        );
    }

    line("IPA Platform benchmark suite");
    print_machine(&server_bin);
    let mut targets = Targets::default();

    let mut database = BenchDatabase::start(args.keep).await?;
    line(&format!("PostgreSQL:  {}", database.server_version()));
    line(&format!("directory:   {}", database.root().display()));
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(120))
        .build()
        .context("building the HTTP client")?;
    let config = ServerConfig {
        binary: server_bin,
        database_url: database.owner_url(),
        log: database.root().join("server.log"),
        workers: 0,
    };
    let outcome = measure(
        &mut database,
        &client,
        &config,
        Plan {
            only,
            volumes,
            small,
            duration,
            warmup,
            concurrencies,
            worker_counts,
            runs,
        },
        &mut targets,
    )
    .await;
    database.stop();
    outcome?;
    section("Targets");
    targets.print();
    Ok(())
}

/// What to measure.
struct Plan {
    only: Only,
    volumes: Volumes,
    small: bool,
    duration: Duration,
    warmup: Duration,
    concurrencies: Vec<u32>,
    worker_counts: Vec<u32>,
    runs: u64,
}

fn print_machine(server_bin: &std::path::Path) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or("unknown".to_owned(), |kib| {
            format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0)
        });
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    line(&format!("machine:     {cores} cores ({cpu}), {memory}"));
    let bench_profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let server_profile = if server_bin.components().any(|c| c.as_os_str() == "debug") {
        "debug"
    } else {
        "release"
    };
    line(&format!(
        "build:       ipa-bench {bench_profile}, server {} ({server_profile})",
        server_bin.display()
    ));
    if bench_profile == "debug" || server_profile == "debug" {
        line("");
        line("!!! WARNING: built without optimisations. These figures are NOT representative;");
        line("!!! run `just bench` (release build) for figures worth comparing.");
    }
    line(
        "note: the load, the server, PostgreSQL and pgbench share this machine's cores; \
         pgbench runs while the server idles.",
    );
}

async fn measure(
    database: &mut BenchDatabase,
    client: &reqwest::Client,
    config: &ServerConfig,
    plan: Plan,
    targets: &mut Targets,
) -> anyhow::Result<()> {
    section("Setup");
    let began = Instant::now();
    let server = Server::start(config, client).await?;
    line(&format!(
        "server started and migrated in {:.1} s (pid {}, {}, IPA_WORKERS=0, pool {})",
        began.elapsed().as_secs_f64(),
        server.pid(),
        server.base_url(),
        config.pool_size()
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = server::memory(server.pid()).unwrap_or_default();
    line(&format!(
        "server RSS just after start on the empty database: {:.1} MiB",
        started.rss_kib as f64 / 1024.0
    ));
    let mut slot = Some(server);
    let outcome = measure_with(database, client, config, &mut slot, &plan, targets).await;
    let stopped = match slot.take() {
        Some(server) => server.stop().await,
        None => Ok(()),
    };
    outcome?;
    stopped
}

async fn measure_with(
    database: &mut BenchDatabase,
    client: &reqwest::Client,
    config: &ServerConfig,
    slot: &mut Option<Server>,
    plan: &Plan,
    targets: &mut Targets,
) -> anyhow::Result<()> {
    let volumes = plan.volumes;
    let (pid, base) = match slot.as_ref() {
        Some(server) => (server.pid(), server.base_url().to_owned()),
        None => bail!("the server is not running"),
    };
    let admin = api::sign_in(
        client,
        &base,
        server::ADMIN_USERNAME,
        server::ADMIN_PASSWORD,
    )
    .await?;
    let user_id = api::create_user(client, &base, &admin, api::USERNAME).await?;
    if plan.only.operations().contains(&Operation::SignIn) {
        let accounts = plan.concurrencies.iter().copied().max().unwrap_or(1);
        for n in 0..accounts {
            api::create_user(client, &base, &admin, &api::sign_in_account(n)).await?;
        }
        line(&format!(
            "sign-in:     client n signs in as bench-signin-n ({accounts} ordinary accounts): the \
             throttle holds concurrent attempts on one account, as it should"
        ));
    }
    let user = api::sign_in(client, &base, api::USERNAME, api::PASSWORD).await?;
    line(&format!(
        "load user:   {} ({user_id}), an ordinary user created through POST /users, owning {} of \
         the {} seeded workflows and their {} runs",
        api::USERNAME,
        volumes.owned_workflows(),
        volumes.workflows,
        volumes.visible_executions()
    ));

    // Seed.
    let script = database.write("seed.sql", &seed::seed_sql(volumes, &user_id))?;
    let (_, seeded_in) = database.run_file(database::SUPERUSER, &script).await?;
    let counts = database
        .query(
            "SELECT (SELECT count(*) FROM workflows), (SELECT count(*) FROM workflow_versions), \
                    (SELECT count(*) FROM executions), (SELECT count(*) FROM execution_steps), \
                    (SELECT count(*) FROM execution_logs), \
                    pg_size_pretty(pg_database_size(current_database()))",
        )
        .await?;
    let counts: Vec<&str> = counts.trim().split('|').collect();
    line(&format!(
        "seeded in {:.1} s (generate_series, then VACUUM ANALYZE): {} workflows, {} versions, {} \
         executions, {} steps, {} log lines; database {}",
        seeded_in.as_secs_f64(),
        counts.first().unwrap_or(&"?"),
        counts.get(1).unwrap_or(&"?"),
        counts.get(2).unwrap_or(&"?"),
        counts.get(3).unwrap_or(&"?"),
        counts.get(4).unwrap_or(&"?"),
        counts.get(5).unwrap_or(&"?"),
    ));

    verify_seed(database, volumes).await?;

    // The deep cursor, built from the seeded keyset.
    let visible_pages = volumes.visible_executions() / 50;
    let depth = 10_000.min(visible_pages.saturating_sub(1)).max(1);
    let deep = deep_position(database, &user_id, depth).await?;
    line(&format!(
        "deep page:   {depth} pages of 50 deep (row {} of the user's {} runs, newest first){}",
        depth * 50 + 1,
        volumes.visible_executions(),
        if depth < 10_000 {
            "; the seeded data allows no deeper"
        } else {
            ""
        }
    ));

    // Memory at rest.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let setup_memory = server::memory(pid).unwrap_or_default();
    let setup_rss = setup_memory.rss_kib as f64 / 1024.0;
    line(&format!(
        "server RSS at rest after creating the accounts (argon2id) and seeding: {setup_rss:.1} MiB \
         (peak so far {:.1} MiB)",
        setup_memory.hwm_kib as f64 / 1024.0
    ));
    let mut fresh_rss: Option<f64> = None;

    let variables: Vec<(String, String)> = [
        ("uid", user_id.clone()),
        ("owned", volumes.owned_workflows().to_string()),
        ("startable", volumes.startable_workflows().to_string()),
        ("runs", volumes.runs_per_workflow().to_string()),
        ("workflows", volumes.workflows.to_string()),
        ("deep_at", deep.at.clone()),
        ("deep_id", deep.id.clone()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();

    // EXPLAIN checks come before the load adds rows.
    let explained = if plan.only.includes(Only::Explain) {
        Some(explain::run(database, &user_id, (&deep.at, &deep.id), volumes).await?)
    } else {
        None
    };

    let mut peak_under_load: f64 = 0.0;
    let operations = plan.only.operations();
    if !operations.is_empty() {
        let mut rows = Vec::new();
        section("HTTP operations");
        note(&format!(
            "closed loop, each client on its own keep-alive connection; {:.1} s warm-up, {:.1} s \
             measured; pgbench -M prepared with as many clients (-j up to 2) for {} s; a fresh \
             server for each operation, so its RSS column is that operation's own",
            plan.warmup.as_secs_f64(),
            plan.duration.as_secs_f64(),
            plan.duration.as_secs().max(1)
        ));
        for operation in operations {
            if let Some(previous) = slot.take() {
                previous.stop().await?;
            }
            let server = engine::start_quiet(database, config, client).await?;
            let pid = server.pid();
            let target = Arc::new(load::Target {
                base_url: server.base_url().to_owned(),
                token: user.token.clone(),
                volumes,
                deep_cursor: deep.cursor.clone(),
            });
            *slot = Some(server);
            if fresh_rss.is_none() {
                tokio::time::sleep(Duration::from_secs(1)).await;
                fresh_rss = server::memory(pid).map(|m| m.rss_kib as f64 / 1024.0);
            }
            let script = database.write(
                &format!("{}.pgbench", operation.name()),
                &sql::script(operation),
            )?;
            for &clients in &plan.concurrencies {
                let watch = server::PeakWatch::start(pid);
                let result = load::run(
                    Arc::clone(&target),
                    operation,
                    clients,
                    plan.warmup,
                    plan.duration,
                )
                .await?;
                let rss_mib = watch.finish().await;
                peak_under_load = peak_under_load.max(rss_mib);
                let pgbench = database
                    .pgbench(
                        &script,
                        clients,
                        PgbenchLength::Seconds(plan.duration.as_secs().max(1)),
                        &variables,
                    )
                    .await;
                let (pgbench_tps, pgbench_error) = match pgbench {
                    Ok(tps) => (Some(tps), None),
                    Err(error) => (None, Some(format!("{error:#}"))),
                };
                let row = HttpRow {
                    operation,
                    clients,
                    result,
                    rss_mib,
                    pgbench_tps,
                    pgbench_error,
                };
                line(&format!(
                    "  measured {} at {}: {:.0} req/s, pgbench {} tps",
                    operation.name(),
                    clients,
                    row.result.throughput(),
                    figure(row.pgbench_tps, 0)
                ));
                rows.push(row);
            }
        }
        print_http(&rows, targets);
    }

    if plan.only.includes(Only::Engine) || plan.only.includes(Only::Ingest) {
        let base = match slot.as_ref() {
            Some(server) => server.base_url().to_owned(),
            None => bail!("the server is not running"),
        };
        let endpoint = endpoint::Endpoint::start().await?;
        let workflow = api::create_webhook_workflow(
            client,
            &base,
            &user,
            "Benchmark engine workflow",
            &endpoint.url,
        )
        .await?;
        let setup = engine::EngineSetup {
            database,
            config: config.clone(),
            client,
            user: &user,
            runs: plan.runs,
            idle_runs: if plan.small { 30 } else { 100 },
        };
        // The engine phase runs servers of its own, with workers.
        if let Some(server) = slot.take() {
            server.stop().await?;
        }
        if plan.only.includes(Only::Engine) {
            section("Engine (one-step webhook runs against a local endpoint)");
            let rows = engine::run(&setup, &endpoint, &workflow, &plan.worker_counts).await?;
            for row in &rows {
                peak_under_load = peak_under_load.max(row.peak_rss_mib);
            }
            print_engine(&rows, targets);
        }
        if plan.only.includes(Only::Ingest) {
            section("Log ingestion (the journal's commit of log lines vs psql \\copy)");
            engine::cancel_waiting_runs(database).await?;
            let rows = ingest::run(database, &workflow, &user_id, plan.duration).await?;
            print_ingest(&rows, targets);
        }
    }

    if let Some(checks) = explained {
        section("EXPLAIN of every documented filter (as the load user, row level security on)");
        let mut table = Table::new(
            &[
                "filter",
                "sequential scans",
                "verdict",
                "cost",
                "empty partitions read whole",
            ],
            2,
        );
        for check in &checks {
            let pass = check.seq_scans.is_empty();
            table.row(vec![
                check.name.clone(),
                if pass {
                    "none".to_owned()
                } else {
                    check.seq_scans.join(", ")
                },
                report::verdict(pass).to_owned(),
                figure(Some(check.cost), 0),
                check.empty_scans.len().to_string(),
            ]);
            targets.check(
                format!("no Seq Scan: {}", check.name),
                Some(pass),
                if pass {
                    "index only".to_owned()
                } else {
                    format!("Seq Scan on {}", check.seq_scans.join(", "))
                },
            );
        }
        table.print();
        note(
            "plans of the server's SQL with the values inlined (PostgreSQL's custom plans), in a \
             transaction switched to ipa_app with the load user's settings; a Seq Scan of an empty \
             monthly partition is not counted",
        );
    }

    section("Server memory");
    line(&format!(
        "at rest after creating the accounts and seeding: {setup_rss:.1} MiB"
    ));
    if let Some(fresh) = fresh_rss {
        line(&format!(
            "at rest after a fresh start on the seeded database: {fresh:.1} MiB"
        ));
    }
    let idle_rss = fresh_rss.unwrap_or(setup_rss);
    targets.check(
        "RSS idle < 100 MiB (fresh start on the seeded database)",
        Some(idle_rss < 100.0),
        format!("{idle_rss:.1} MiB"),
    );
    if peak_under_load > 0.0 {
        line(&format!(
            "peak under load (all phases): {peak_under_load:.1} MiB"
        ));
        targets.check(
            "RSS under load < 300 MiB",
            Some(peak_under_load < 300.0),
            format!("{peak_under_load:.1} MiB"),
        );
    }
    Ok(())
}

/// Checks that the seeded rows are where the suite's formulas (which the load and the pgbench
/// scripts pick rows with) say they are.
async fn verify_seed(database: &BenchDatabase, volumes: Volumes) -> anyhow::Result<()> {
    let probe = seed::owned_workflow(volumes.owned_workflows() - 1);
    let found = database
        .query(&format!(
            "SELECT (SELECT count(*) FROM workflow_versions), (SELECT count(*) FROM execution_logs), \
                    (SELECT array_to_string(tags, ',') FROM workflows WHERE id = '{}'::uuid), \
                    (SELECT count(*) FROM executions WHERE workflow_id = '{}'::uuid)",
            seed::Table::Workflow.id(probe),
            seed::Table::Workflow.id(probe),
        ))
        .await?;
    let expected = format!(
        "{}|{}|{}|{}",
        volumes.versions(),
        volumes.log_lines(),
        seed::tags_of(probe).join(","),
        volumes.runs_per_workflow()
    );
    if found.trim() != expected {
        bail!(
            "the seeded data does not match the suite's formulas: found {}, expected {expected}",
            found.trim()
        );
    }
    Ok(())
}

/// The deep page's position: the keyset of the row `depth * 50` of the user's runs.
struct DeepPosition {
    cursor: String,
    at: String,
    id: String,
}

async fn deep_position(
    database: &BenchDatabase,
    user: &str,
    depth: u64,
) -> anyhow::Result<DeepPosition> {
    let script = format!(
        "\\o /dev/null\n{}\n\\o\n\
         SELECT (extract(epoch FROM e.created_at) * 1000000)::bigint, \
                to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), e.id \
         FROM executions e ORDER BY e.created_at DESC, e.id DESC OFFSET {} LIMIT 1;\n",
        sql::settings(sql::Acting::Literal(user)),
        depth * 50 - 1
    );
    let path = database.write("deep.sql", &script)?;
    let path = path.to_string_lossy().into_owned();
    let output = database.psql(OWNER, &["-1", "-f", &path]).await?;
    let fields: Vec<&str> = output.trim().split('|').collect();
    let [micros, at, id] = fields.as_slice() else {
        bail!("reading the deep page's position from {output:?}");
    };
    let micros: i128 = micros.parse().context("the deep page's time")?;
    let uuid = uuid::Uuid::parse_str(id).context("the deep page's id")?;
    let created = time::OffsetDateTime::from_unix_timestamp_nanos(micros * 1000)
        .context("the deep page's time")?;
    let keyset = ipa_kernel::Keyset::new(created, uuid);
    Ok(DeepPosition {
        cursor: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(keyset.to_text()),
        at: (*at).to_owned(),
        id: (*id).to_owned(),
    })
}

fn print_http(rows: &[HttpRow], targets: &mut Targets) {
    let mut table = Table::new(
        &[
            "operation",
            "conc",
            "req/s",
            "p50 ms",
            "p99 ms",
            "server RSS MiB",
            "pgbench tps",
            "ratio",
            "target",
        ],
        1,
    );
    for row in rows {
        let at_eight = row.clients == 8;
        let target = if row.result.errors > 0 {
            format!("ERRORS {}", row.result.errors)
        } else if row.operation == Operation::SignIn {
            "n/a (argon2)".to_owned()
        } else if at_eight {
            match row.ratio() {
                Some(ratio) => format!(">=0.5 {}", report::verdict(ratio >= 0.5)),
                None => ">=0.5 n/a".to_owned(),
            }
        } else {
            String::new()
        };
        table.row(vec![
            row.operation.name().to_owned(),
            row.clients.to_string(),
            format!("{:.0}", row.result.throughput()),
            figure(row.p50(), 2),
            figure(percentile(&row.result.latencies, 99.0).map(millis), 2),
            format!("{:.1}", row.rss_mib),
            figure(row.pgbench_tps, 0),
            figure(row.ratio(), 2),
            target,
        ]);
        if at_eight && row.operation != Operation::SignIn {
            let kind = if row.operation.writes() {
                "writes"
            } else {
                "reads"
            };
            targets.check(
                format!("HTTP {kind} >= 0.5 x pgbench @8: {}", row.operation.name()),
                row.ratio()
                    .map(|ratio| ratio >= 0.5 && row.result.errors == 0),
                format!(
                    "{:.0} req/s vs {} tps ({})",
                    row.result.throughput(),
                    figure(row.pgbench_tps, 0),
                    figure(row.ratio(), 2)
                ),
            );
        }
    }
    table.print();
    for row in rows {
        if let Some(error) = &row.result.first_error {
            note(&format!(
                "{} at {}: {} errors, the first: {error}",
                row.operation.name(),
                row.clients,
                row.result.errors
            ));
        }
        if let Some(error) = &row.pgbench_error {
            note(&format!(
                "pgbench for {} at {} failed: {error}",
                row.operation.name(),
                row.clients
            ));
        }
    }
    if rows.iter().any(|row| row.operation == Operation::SignIn) {
        note(
            "sign-in's pgbench equivalent runs its SQL without the argon2id verification \
             (m=19456 KiB, t=2), which dominates a sign-in by design",
        );
    }
    // The deep page against the first, at the lowest concurrency measured.
    let lowest = rows.iter().map(|row| row.clients).min();
    let find = |operation| {
        rows.iter()
            .find(|row| row.operation == operation && Some(row.clients) == lowest)
            .and_then(HttpRow::p50)
    };
    if let (Some(first), Some(deep)) = (find(Operation::ListExecutions), find(Operation::DeepPage))
    {
        let ratio = deep / first;
        line(&format!(
            "deep page p50 {deep:.2} ms vs first page p50 {first:.2} ms: {ratio:.2}x"
        ));
        targets.check(
            "deep cursor page within 1.2x of the first (p50)",
            Some(ratio <= 1.2),
            format!("{deep:.2} ms vs {first:.2} ms ({ratio:.2}x)"),
        );
    }
}

fn print_engine(rows: &[engine::EngineRow], targets: &mut Targets) {
    let mut table = Table::new(
        &[
            "workers",
            "API runs",
            "API runs/s",
            "start p50 ms",
            "start p99 ms",
            "idle start p50",
            "idle start p99",
            "backlog runs",
            "backlog runs/s",
            "overhead ms/run",
            "server RSS MiB",
            "pgbench runs/s",
            "ratio",
        ],
        0,
    );
    let with_unfinished = |runs: u64, not_completed: u64| {
        if not_completed > 0 {
            format!("{runs} ({not_completed} not completed)")
        } else {
            runs.to_string()
        }
    };
    for row in rows {
        let ratio = row
            .pgbench_tps
            .filter(|tps| *tps > 0.0)
            .map(|tps| row.claim_complete_per_second / tps);
        table.row(vec![
            row.workers.to_string(),
            with_unfinished(row.runs, row.not_completed),
            format!("{:.1}", row.runs_per_second),
            figure(row.burst_start.0, 2),
            figure(row.burst_start.1, 2),
            figure(row.idle_start.0, 2),
            figure(row.idle_start.1, 2),
            with_unfinished(row.backlog_runs, row.backlog_not_completed),
            format!("{:.1}", row.claim_complete_per_second),
            format!("{:.2}", row.overhead_ms),
            format!("{:.1}", row.peak_rss_mib),
            figure(row.pgbench_tps, 1),
            figure(ratio, 2),
        ]);
        targets.check(
            format!(
                "engine runs/s >= 0.8 x pgbench (claim and complete) @{} workers",
                row.workers
            ),
            ratio.map(|ratio| ratio >= 0.8 && row.backlog_not_completed == 0),
            format!(
                "{:.1} vs {} ({})",
                row.claim_complete_per_second,
                figure(row.pgbench_tps, 1),
                figure(ratio, 2)
            ),
        );
        targets.check(
            format!(
                "enqueue-to-start p50 <= 5 ms, idle workers @{}",
                row.workers
            ),
            row.idle_start.0.map(|p50| p50 <= 5.0),
            format!(
                "{} ms over {} runs",
                figure(row.idle_start.0, 2),
                row.idle_runs
            ),
        );
    }
    table.print();
    if let Some(row) = rows.first() {
        note(&format!(
            "API runs/s: completed runs from the first one's creation to the last one's \
             completion, {} runs started through the API by 8 clients while the workers run them \
             (both share the cores); start = started_at - created_at; idle: {} runs started one \
             every 100 ms",
            row.runs, row.idle_runs
        ));
        note(&format!(
            "backlog runs/s: {} pending runs written at once (as pgbench's are), every worker \
             woken, completed runs from the first claim to the last completion; overhead = \
             workers x that span / runs - the endpoint's mean {:.3} ms",
            row.backlog_runs, row.endpoint_ms
        ));
        note(
            "pgbench: the journal's SQL for a one-step run (the claim with the step's start, then \
             the step's completion with the run's: 2 transactions) on as many pending runs, one \
             client per worker, the server stopped; ratio = backlog runs/s / pgbench runs/s",
        );
    }
    for row in rows {
        if let Some(error) = &row.pgbench_error {
            note(&format!(
                "pgbench with {} clients failed: {error}",
                row.workers
            ));
        }
    }
}

fn print_ingest(rows: &[ingest::IngestRow], targets: &mut Targets) {
    let mut table = Table::new(
        &[
            "lines per commit",
            "rows",
            "journal rows/s",
            "\\copy rows/s",
            "ratio",
        ],
        0,
    );
    for row in rows {
        let ratio = row.journal_rows_per_second / row.copy_rows_per_second;
        table.row(vec![
            row.batch.to_string(),
            row.rows.to_string(),
            format!("{:.0}", row.journal_rows_per_second),
            format!("{:.0}", row.copy_rows_per_second),
            format!("{ratio:.2}"),
        ]);
        targets.check(
            format!(
                "log ingestion >= 0.8 x COPY, {} lines per commit",
                row.batch
            ),
            Some(ratio >= 0.8),
            format!(
                "{:.0} vs {:.0} rows/s ({ratio:.2})",
                row.journal_rows_per_second, row.copy_rows_per_second
            ),
        );
    }
    table.print();
    note(
        "journal: RunJournal::commit of PgRunJournal on a claimed run, one client, each commit a \
         transaction that checks the lease; \\copy: psql as the cluster's superuser (COPY FROM is \
         refused under row level security), one statement for all rows, timed by psql's \\timing",
    );
}
