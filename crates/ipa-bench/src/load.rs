//! The HTTP load: a closed loop of `C` clients, each with its own keep-alive connection, sending
//! one operation's requests back to back for a while after a warm-up, every latency recorded.
//! Inputs vary from request to request (ids among the benchmark user's seeded rows, tags, teams)
//! by a deterministic generator.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;

use crate::database::clip;
use crate::seed::{self, Table, Volumes};
use crate::stats::SplitMix64;

/// The measured HTTP operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// `POST /auth/login`.
    SignIn,
    /// `GET /workflows/{id}`.
    GetWorkflow,
    /// `GET /workflows?tags=...`.
    ListByTag,
    /// `GET /workflows?metadata=...`.
    ListByMetadata,
    /// `GET /executions`, the first page.
    ListExecutions,
    /// `GET /executions?cursor=...`, 10,000 pages deep (or as deep as the data allows).
    DeepPage,
    /// `POST /workflows/{id}/versions`.
    Publish,
    /// `POST /workflows/{id}/executions`.
    Start,
    /// `GET /executions/{id}/logs`.
    ReadLogs,
}

impl Operation {
    /// Every operation, in the order of the table.
    pub const ALL: [Self; 9] = [
        Self::SignIn,
        Self::GetWorkflow,
        Self::ListByTag,
        Self::ListByMetadata,
        Self::ListExecutions,
        Self::DeepPage,
        Self::Publish,
        Self::Start,
        Self::ReadLogs,
    ];

    /// The name used in the table and by `--only`.
    pub fn name(self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::GetWorkflow => "get-workflow",
            Self::ListByTag => "list-workflows-by-tag",
            Self::ListByMetadata => "list-workflows-by-metadata",
            Self::ListExecutions => "list-executions",
            Self::DeepPage => "list-executions-deep",
            Self::Publish => "publish-version",
            Self::Start => "start-execution",
            Self::ReadLogs => "read-logs",
        }
    }

    /// Whether the operation writes.
    pub fn writes(self) -> bool {
        matches!(self, Self::SignIn | Self::Publish | Self::Start)
    }
}

/// What the load needs to know to form requests.
#[derive(Clone, Debug)]
pub struct Target {
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The benchmark user's bearer token.
    pub token: String,
    /// The seeded volumes.
    pub volumes: Volumes,
    /// The opaque cursor of the deep page.
    pub deep_cursor: String,
}

impl Target {
    /// One request of `operation`, inputs drawn from `rng`.
    fn request(
        &self,
        client: &reqwest::Client,
        operation: Operation,
        client_index: u32,
        rng: &mut SplitMix64,
    ) -> reqwest::RequestBuilder {
        let base = &self.base_url;
        let owned_workflow =
            |rng: &mut SplitMix64| seed::owned_workflow(rng.below(self.volumes.owned_workflows()));
        let builder = match operation {
            Operation::SignIn => {
                return client
                    .post(format!("{base}/auth/login"))
                    .header(reqwest::header::USER_AGENT, crate::sql::USER_AGENT)
                    .json(&json!({
                        "identifier": crate::api::sign_in_account(client_index),
                        "password": crate::api::PASSWORD,
                    }));
            }
            Operation::GetWorkflow => {
                let id = Table::Workflow.id(owned_workflow(rng));
                client.get(format!("{base}/workflows/{id}"))
            }
            Operation::ListByTag => {
                let tag = seed::TAGS[rng.below(seed::TAGS.len() as u64) as usize];
                client.get(format!("{base}/workflows?tags={tag}"))
            }
            Operation::ListByMetadata => {
                let team = rng.below(seed::TEAMS);
                // {"team":"team-N"}, percent-encoded.
                client.get(format!(
                    "{base}/workflows?metadata=%7B%22team%22%3A%22team-{team}%22%7D"
                ))
            }
            Operation::ListExecutions => client.get(format!("{base}/executions")),
            Operation::DeepPage => {
                client.get(format!("{base}/executions?cursor={}", self.deep_cursor))
            }
            Operation::Publish => {
                let id = Table::Workflow.id(owned_workflow(rng));
                let definition: serde_json::Value = serde_json::from_str(
                    &seed::webhook_definition("https://hooks.example/published"),
                )
                .unwrap_or_default();
                client
                    .post(format!("{base}/workflows/{id}/versions"))
                    .json(&json!({"definition": definition, "change_summary": "Published by the benchmark"}))
            }
            Operation::Start => {
                let i = seed::startable_workflow(rng.below(self.volumes.startable_workflows()));
                let id = Table::Workflow.id(i);
                client
                    .post(format!("{base}/workflows/{id}/executions"))
                    .json(&json!({"input": {"order_id": 1}}))
            }
            Operation::ReadLogs => {
                let i = owned_workflow(rng);
                let round = rng.below(self.volumes.runs_per_workflow());
                let j = i + round * self.volumes.workflows;
                let id = Table::Execution.id(j);
                client.get(format!("{base}/executions/{id}/logs"))
            }
        };
        builder
            .bearer_auth(&self.token)
            .header(reqwest::header::USER_AGENT, crate::sql::USER_AGENT)
    }
}

/// The outcome of one load.
#[derive(Clone, Debug, Default)]
pub struct LoadResult {
    /// Latencies of the requests answered within the measured window, sorted.
    pub latencies: Vec<Duration>,
    /// Non-2xx answers and failed requests in the window.
    pub errors: u64,
    /// The first error: status and body, clipped.
    pub first_error: Option<String>,
    /// From the window's start until the last client finished (at least the window, longer when
    /// a client's first measured request ended after it).
    pub elapsed: Duration,
}

impl LoadResult {
    /// Completed requests (errors included) per second.
    pub fn throughput(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            (self.latencies.len() as f64 + self.errors as f64) / secs
        } else {
            0.0
        }
    }
}

/// One client's share.
#[derive(Default)]
struct ClientResult {
    latencies: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
    finished: Option<Instant>,
}

/// Runs `operation` with `clients` clients: a warm-up of `warmup`, then `duration` measured.
pub async fn run(
    target: Arc<Target>,
    operation: Operation,
    clients: u32,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<LoadResult> {
    let begin = Instant::now();
    let window_start = begin + warmup;
    let window_end = window_start + duration;
    let mut tasks = Vec::new();
    for index in 0..clients {
        // One client each: its own pool holds its one keep-alive connection.
        let client = reqwest::Client::builder()
            .http1_only()
            .no_proxy()
            .pool_max_idle_per_host(1)
            .timeout(Duration::from_secs(60))
            .build()
            .context("building an HTTP client")?;
        let target = Arc::clone(&target);
        let seed = (operation as u64) << 32 | u64::from(index);
        tasks.push(tokio::spawn(async move {
            let mut rng = SplitMix64::new(seed);
            let mut result = ClientResult::default();
            loop {
                let sent = Instant::now();
                // Every client sends at least one measured request, so a slow operation (a
                // sign-in among 32) stretches the window instead of measuring nothing.
                if sent >= window_end && result.finished.is_some() {
                    break;
                }
                let outcome = target
                    .request(&client, operation, index, &mut rng)
                    .send()
                    .await;
                let error = match outcome {
                    Ok(response) => {
                        let status = response.status();
                        let body = response.bytes().await;
                        match (status.is_success(), body) {
                            (true, Ok(_)) => None,
                            (_, Ok(body)) => Some(format!(
                                "HTTP {status}: {}",
                                clip(&String::from_utf8_lossy(&body), 300)
                            )),
                            (_, Err(error)) => {
                                Some(format!("HTTP {status}: reading the body: {error}"))
                            }
                        }
                    }
                    Err(error) => Some(format!("request failed: {error}")),
                };
                let answered = Instant::now();
                if sent >= window_start {
                    match error {
                        None => result.latencies.push(answered - sent),
                        Some(error) => {
                            result.errors += 1;
                            result.first_error.get_or_insert(error);
                        }
                    }
                    result.finished = Some(answered);
                } else if let Some(error) = error {
                    // A failing warm-up fails the same way measured: report it too.
                    result.errors += 1;
                    result.first_error.get_or_insert(error);
                }
            }
            result
        }));
    }
    let mut merged = LoadResult::default();
    let mut last = window_start;
    for task in tasks {
        let result = task.await.context("a load client failed")?;
        merged.latencies.extend(result.latencies);
        merged.errors += result.errors;
        if merged.first_error.is_none() {
            merged.first_error = result.first_error;
        }
        if let Some(finished) = result.finished {
            last = last.max(finished);
        }
    }
    merged.latencies.sort_unstable();
    merged.elapsed = last.saturating_duration_since(window_start);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_writes_are_marked() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Operation::ALL.len());
        assert!(Operation::Publish.writes() && !Operation::ReadLogs.writes());
    }

    #[test]
    fn throughput_counts_every_answer() {
        let result = LoadResult {
            latencies: vec![Duration::from_millis(1); 90],
            errors: 10,
            first_error: None,
            elapsed: Duration::from_secs(2),
        };
        assert!((result.throughput() - 50.0).abs() < 1e-9);
        assert_eq!(LoadResult::default().throughput(), 0.0);
    }
}
