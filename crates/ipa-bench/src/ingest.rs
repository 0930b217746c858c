//! Log ingestion: rows per second through the platform's own log-writing path, the journal's
//! commit of a change carrying log lines (`RunJournal::commit` of `PgRunJournal` on a claimed
//! run, called in this process against the same database), in the engine's batch size and in
//! batches of 1,000; against psql's `\copy` of as many rows of the same shape.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ipa_execution::{LogLevel, NewLogLine, RunChange, RunJournal, WorkerId};
use ipa_kernel::ExecutionStepId;
use ipa_store::{PgRunJournal, PoolOptions, Store};
use serde_json::json;

use crate::database::{BenchDatabase, SUPERUSER};
use crate::seed::Table;

/// The sizes measured: a webhook step's completion commits 2 lines with its change; an agent's
/// model call 1 to 3. Then a large batch.
pub const BATCHES: [usize; 2] = [3, 1000];

/// One batch size's figures.
#[derive(Clone, Debug)]
pub struct IngestRow {
    /// Lines per commit.
    pub batch: usize,
    /// Lines written.
    pub rows: u64,
    /// Rows per second through the journal.
    pub journal_rows_per_second: f64,
    /// Rows per second of `\copy` of as many rows.
    pub copy_rows_per_second: f64,
}

/// A line like a webhook attempt's.
fn line(step: ExecutionStepId, n: u64) -> NewLogLine {
    NewLogLine::step(
        step,
        LogLevel::Info,
        format!("Attempt {n} succeeded: HTTP 200"),
        json!({"attempt": n, "status_code": 200, "duration_ms": 3, "bytes": 2, "truncated": false}),
    )
}

/// Measures each batch size for `duration` (at least 3 batches each).
pub async fn run(
    database: &BenchDatabase,
    workflow: &str,
    owner: &str,
    duration: Duration,
) -> anyhow::Result<Vec<IngestRow>> {
    // One pending run of its own, claimed through the journal like a worker claims it.
    let number = crate::seed::numbering::INGEST_RUN;
    let path = database.write(
        "ingest-run.sql",
        &crate::seed::pending_runs_sql(workflow, owner, number, 1, true),
    )?;
    database.run_file(SUPERUSER, &path).await?;
    let store = Store::connect(&database.owner_url(), PoolOptions::default())
        .await
        .context("connecting the journal")?;
    let journal = PgRunJournal::new(store.clone());
    let worker = WorkerId::new("bench-ingest");
    let claimed = journal
        .claim(&worker, Duration::from_secs(3600), 1, |_| None)
        .await
        .context("claiming the ingestion run")?;
    let Some(run) = claimed.into_iter().next().map(|claimed| claimed.run) else {
        bail!("the journal claimed no run to write log lines to");
    };
    if run.lease.execution_id.as_uuid().to_string() != Table::Execution.id(number) {
        bail!(
            "the journal claimed run {} instead of the ingestion run (another run was waiting)",
            run.lease.execution_id.as_uuid()
        );
    }
    let step = run
        .steps
        .first()
        .map(|step| step.id)
        .context("the ingestion run has no step")?;
    let mut rows = Vec::new();
    for batch in BATCHES {
        let lines: Vec<NewLogLine> = (0..batch as u64).map(|n| line(step, n)).collect();
        let began = Instant::now();
        let mut written = 0u64;
        let mut commits = 0u32;
        while began.elapsed() < duration || commits < 3 {
            journal
                .commit(&run.lease, RunChange::logs(lines.clone()))
                .await
                .context("committing log lines")?;
            written += batch as u64;
            commits += 1;
        }
        let journal_rate = written as f64 / began.elapsed().as_secs_f64();
        let copy_rate = copy_rate(
            database,
            &run.lease.execution_id.as_uuid().to_string(),
            &step.as_uuid().to_string(),
            written,
            batch,
        )
        .await?;
        rows.push(IngestRow {
            batch,
            rows: written,
            journal_rows_per_second: journal_rate,
            copy_rows_per_second: copy_rate,
        });
    }
    store.close().await.context("closing the journal's pool")?;
    // The run is done with: finish it so nothing claims it later.
    crate::engine::cancel_waiting_runs(database).await?;
    Ok(rows)
}

/// Rows per second of psql's `\copy` of `rows` lines of the same shape (as the superuser: `COPY
/// FROM` is refused on a table under row level security), as psql's `\timing` measures it.
async fn copy_rate(
    database: &BenchDatabase,
    execution: &str,
    step: &str,
    rows: u64,
    batch: usize,
) -> anyhow::Result<f64> {
    let mut data = String::new();
    for n in 0..rows {
        let _ = writeln!(
            data,
            "{execution}\t{step}\tinfo\tAttempt {n} succeeded: HTTP 200\t{{\"attempt\": {n}, \"status_code\": 200, \"duration_ms\": 3, \"bytes\": 2, \"truncated\": false}}"
        );
    }
    let path = database.write(&format!("copy-{batch}.tsv"), &data)?;
    let command = format!(
        "\\copy execution_logs (execution_id, execution_step_id, level, message, context) FROM '{}'",
        path.display()
    );
    // psql times the command itself: its own start and connection are not counted.
    let output = database
        .psql(SUPERUSER, &["-c", "\\timing on", "-c", &command])
        .await?;
    let millis = crate::database::parse_timing(&output)
        .with_context(|| format!("psql printed no timing: {output}"))?;
    Ok(rows as f64 / (millis / 1000.0))
}
