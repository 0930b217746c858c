//! The engine's rules against the in-memory journal ([`FakeJournal`]): claiming, approvals and
//! their wake-ups, exclusive leases, recovery of runs whose worker was lost, cancellation, pause
//! and resume, a lost lease, commits during a database outage and shutdown. Webhook steps call a server these tests start on 127.0.0.1.
//!
//! Every test runs under a deadline ([`LIMIT`]) and waits for states with [`until`], which
//! fails with the run as it is when the state does not come.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipa_agent::{
    Agent, AgentFilter, AgentRepository, AgentSettings, AgentTool, CreateAgentError,
    DeleteAgentError, PlainSecret, SecretOpener, StoredSecret, ToolError, ToolName, ToolSettings,
    UpdateAgentError,
};
use ipa_execution::{
    Committed, ExecutionStatus, RunChange, RunJournal, StepAction, StepChange, StepStatus, WorkerId,
};
use ipa_kernel::{Actor, AgentId, AgentToolId, ExecutionId, Page, PageRequest, StorageError};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};

use super::fake_journal::{Call, FakeJournal, FakeRun};
use super::{Engine, EngineOptions, Signal};
use crate::outbound::{MAX_RESPONSE_BYTES, OutboundClient};

/// The longest any test may take: far above what each needs (tenths of a second), so that a
/// loaded machine slows the suite down without failing it, while a hang still fails.
const LIMIT: Duration = Duration::from_secs(30);
/// The longest a test waits for one state.
const WAIT: Duration = Duration::from_secs(10);
/// The lease of most tests: a heartbeat every 500 ms, so a worker starved of the CPU for a few
/// hundred milliseconds keeps its run as it would in production.
const LEASE: Duration = Duration::from_millis(1500);

/// A journal holding one pending run of a one-step workflow calling `server` (step `notify`).
fn one_webhook_run(server: &Server) -> (FakeJournal, ExecutionId) {
    let journal = FakeJournal::new();
    let id = journal.insert(
        definition(&[webhook("notify", server)]),
        json!({"order": 7}),
    );
    (journal, id)
}

/// Runs `test` under the [`LIMIT`].
async fn within(test: impl Future<Output = ()>) {
    timeout(LIMIT, test)
        .await
        .expect("the test ran over its limit");
}

/// No agents at all: these tests run approval and webhook steps only.
struct NoAgents;

fn no_agents() -> StorageError {
    StorageError::new("agents", "these tests have no agents")
}

impl AgentRepository for NoAgents {
    async fn create(
        &self,
        _: &Actor,
        _: AgentId,
        _: &AgentSettings,
    ) -> Result<Agent, CreateAgentError> {
        Err(no_agents().into())
    }

    async fn find(&self, _: &Actor, _: AgentId) -> Result<Option<Agent>, StorageError> {
        Ok(None)
    }

    async fn list(
        &self,
        _: &Actor,
        _: &AgentFilter,
        _: PageRequest,
    ) -> Result<Page<Agent>, StorageError> {
        Ok(Page {
            items: Vec::new(),
            next: None,
        })
    }

    async fn update<F>(&self, _: &Actor, _: AgentId, _: F) -> Result<Agent, UpdateAgentError>
    where
        F: FnOnce(&Agent) -> Result<AgentSettings, UpdateAgentError> + Send,
    {
        Err(UpdateAgentError::NotFound)
    }

    async fn delete(&self, _: &Actor, _: AgentId) -> Result<(), DeleteAgentError> {
        Err(DeleteAgentError::NotFound)
    }

    async fn tools(&self, _: &Actor, _: AgentId) -> Result<Option<Vec<AgentTool>>, StorageError> {
        Ok(None)
    }

    async fn tools_page(
        &self,
        _: &Actor,
        _: AgentId,
        _: PageRequest<ToolName>,
    ) -> Result<Option<Page<AgentTool, ToolName>>, StorageError> {
        Ok(None)
    }

    async fn tool(&self, _: &Actor, _: AgentId, _: AgentToolId) -> Result<AgentTool, ToolError> {
        Err(ToolError::AgentNotFound)
    }

    async fn create_tool(
        &self,
        _: &Actor,
        _: AgentId,
        _: AgentToolId,
        _: &ToolSettings,
    ) -> Result<AgentTool, ToolError> {
        Err(ToolError::AgentNotFound)
    }

    async fn update_tool<F>(
        &self,
        _: &Actor,
        _: AgentId,
        _: AgentToolId,
        _: F,
    ) -> Result<AgentTool, ToolError>
    where
        F: FnOnce(&AgentTool) -> Result<ToolSettings, ToolError> + Send,
    {
        Err(ToolError::AgentNotFound)
    }

    async fn delete_tool(&self, _: &Actor, _: AgentId, _: AgentToolId) -> Result<(), ToolError> {
        Err(ToolError::AgentNotFound)
    }
}

/// Opens no secret.
struct NoSecrets;

impl SecretOpener for NoSecrets {
    fn reveal(&self, _: &StoredSecret, _: &str) -> Result<PlainSecret, String> {
        Err("these tests have no secrets".to_owned())
    }
}

fn options(name: &str, lease: Duration) -> EngineOptions {
    EngineOptions {
        workers: 1,
        lease,
        poll_interval: Duration::from_millis(20),
        max_recoveries: 3,
        default_step_timeout: Duration::from_secs(10),
        name: name.to_owned(),
        // Never called: no agent steps here.
        openai_base_url: "http://127.0.0.1:9".to_owned(),
    }
}

/// An engine running over the journal, until [`Running::stop`].
struct Running {
    signals: broadcast::Sender<Signal>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Running {
    fn start(journal: &FakeJournal, options: EngineOptions) -> Self {
        let client = OutboundClient::new(MAX_RESPONSE_BYTES).unwrap();
        let engine = Engine::new(
            journal.clone(),
            NoAgents,
            Arc::new(NoSecrets),
            client,
            options,
        );
        let (signals, receiver) = broadcast::channel(16);
        let (shutdown, stopping) = watch::channel(false);
        let task = tokio::spawn(engine.run(receiver, stopping));
        Self {
            signals,
            shutdown,
            task,
        }
    }

    fn signal(&self, signal: Signal) {
        self.signals.send(signal).unwrap();
    }

    /// Shuts the engine down and waits until every worker stopped.
    async fn stop(self) {
        self.shutdown.send(true).unwrap();
        timeout(WAIT, self.task)
            .await
            .expect("the engine stopped in time")
            .unwrap();
    }
}

/// Waits until the run `id` satisfies `done` (`what` it should be), and answers it.
async fn until(
    journal: &FakeJournal,
    id: ExecutionId,
    what: &str,
    done: impl Fn(&FakeRun) -> bool,
) -> FakeRun {
    let deadline = Instant::now() + WAIT;
    loop {
        let run = journal.run(id);
        if done(&run) {
            return run;
        }
        assert!(Instant::now() < deadline, "the run is not {what}: {run:#?}");
        sleep(Duration::from_millis(5)).await;
    }
}

fn worker(name: &str) -> WorkerId {
    WorkerId::new(format!("{name}:0"))
}

/// The calls about run `id` by `worker`.
fn calls_by(journal: &FakeJournal, worker: &WorkerId, id: ExecutionId) -> Vec<Call> {
    journal
        .calls()
        .into_iter()
        .filter(|call| call.of() == (worker, id))
        .collect()
}

fn claims_of(journal: &FakeJournal, id: ExecutionId) -> Vec<(WorkerId, ExecutionStatus)> {
    journal
        .calls()
        .into_iter()
        .filter_map(|call| match call {
            Call::Claim {
                worker,
                id: claimed,
                previous,
            } if claimed == id => Some((worker, previous)),
            _ => None,
        })
        .collect()
}

fn approval(name: &str) -> Value {
    json!({"name": name, "type": "approval", "message": "Go ahead with order {{ input.order }}?"})
}

fn webhook(name: &str, server: &Server) -> Value {
    json!({
        "name": name, "type": "webhook",
        "request": {"method": "POST", "url": format!("{}/hook", server.url), "headers": {},
                    "body": {"order": "{{ input.order }}"}}
    })
}

fn definition(steps: &[Value]) -> Value {
    json!({ "steps": steps })
}

/// A webhook endpoint on 127.0.0.1: it answers `{"ok": true}` to each request after the delay
/// of its rank (the last delay for every later one), and keeps each request's idempotency key.
struct Server {
    url: String,
    keys: Arc<Mutex<Vec<String>>>,
}

impl Server {
    async fn start(delays: Vec<Duration>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&keys);
        tokio::spawn(async move {
            let mut rank = 0;
            while let Ok((stream, _)) = listener.accept().await {
                let delay = delays[rank.min(delays.len() - 1)];
                rank += 1;
                tokio::spawn(answer(stream, delay, Arc::clone(&seen)));
            }
        });
        Self { url, keys }
    }

    /// A server answering at once.
    async fn quick() -> Self {
        Self::start(vec![Duration::ZERO]).await
    }

    fn keys(&self) -> Vec<String> {
        self.keys.lock().unwrap().clone()
    }

    /// Waits until `count` requests arrived.
    async fn received(&self, count: usize) {
        let deadline = Instant::now() + WAIT;
        while self.keys().len() < count {
            assert!(Instant::now() < deadline, "{:?} requests", self.keys());
            sleep(Duration::from_millis(5)).await;
        }
    }
}

async fn answer(mut stream: TcpStream, delay: Duration, keys: Arc<Mutex<Vec<String>>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0_u8; 4096];
    let (head_end, head) = loop {
        if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break (
                end + 4,
                String::from_utf8_lossy(&buffer[..end]).into_owned(),
            );
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    };
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(key, _)| key.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_owned())
    };
    let length: usize = header("content-length").map_or(0, |value| value.parse().unwrap());
    while buffer.len() < head_end + length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
    keys.lock()
        .unwrap()
        .push(header("idempotency-key").unwrap_or_default());
    sleep(delay).await;
    let body = br#"{"ok": true}"#;
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

/// A delay no test waits out: the call is in flight until something interrupts it.
const NEVER: Duration = Duration::from_secs(3600);

/// Longer than any lease of these tests.
const PAST_ANY_LEASE: Duration = Duration::from_secs(120);

/// Claims the run `id` for `worker` straight from the journal for a minute, starting its first
/// step (a worker that dies right after, or stalls), once the lease held ran out: the clock is
/// moved past it until the claim gets the run. Answers the claimed run's recoveries.
async fn claim_as(journal: &FakeJournal, worker: &WorkerId, id: ExecutionId) -> i32 {
    for _ in 0..20 {
        let claimed = journal
            .claim(worker, Duration::from_secs(60), 1, |run| {
                let step = run.steps.iter().find(|step| !step.status.is_settled())?;
                Some(RunChange::step(
                    StepChange::new(step.id, StepAction::Start, 1),
                    Vec::new(),
                ))
            })
            .await
            .unwrap();
        if let Some(claimed) = claimed
            .into_iter()
            .find(|claimed| claimed.run.lease.execution_id == id)
        {
            assert_eq!(claimed.first, Some(Committed::Continue));
            return claimed.run.recoveries;
        }
        journal.advance(PAST_ANY_LEASE);
        sleep(Duration::from_millis(1)).await;
    }
    panic!("{worker:?} never got the run");
}

#[tokio::test]
async fn a_worker_claims_a_pending_run_and_leaves_it_waiting_for_a_decision() {
    within(async {
        let journal = FakeJournal::new();
        let id = journal.insert(
            definition(&[approval("ask"), approval("confirm")]),
            json!({"order": 7}),
        );
        let engine = Running::start(&journal, options("a", LEASE));

        let run = until(&journal, id, "waiting for a decision", |run| {
            run.status == ExecutionStatus::Paused
        })
        .await;
        let ask = run.steps[0].id;
        assert_eq!(run.awaiting, Some(ask));
        assert_eq!(run.wake_at, None, "the step sets no time limit");
        assert_eq!(run.lease_owner, None, "a waiting run is let go");
        assert_eq!(run.steps[0].status, StepStatus::Running);
        assert_eq!(
            run.steps[0].input.as_ref().unwrap()["message"],
            "Go ahead with order 7?"
        );
        assert_eq!(run.steps[1].status, StepStatus::Pending);
        assert_eq!(run.recoveries, 0);
        assert!(run.logged("Execution running"), "{:#?}", run.logs);
        assert!(run.logged("Step 'ask' waits for a decision by the workflow's owner"));
        assert!(run.logged("Execution waits for an approval decision"));

        // Five polls later it was not claimed again: it waits for a person.
        sleep(Duration::from_millis(100)).await;
        assert_eq!(
            claims_of(&journal, id),
            vec![(worker("a"), ExecutionStatus::Pending)]
        );
        assert_eq!(
            calls_by(&journal, &worker("a"), id).len(),
            1,
            "the claim wrote the step's start and the wait at once: {:#?}",
            journal.calls()
        );
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_approved_run_is_claimed_again_and_goes_on_from_the_next_step() {
    within(async {
        let journal = FakeJournal::new();
        let id = journal.insert(
            definition(&[approval("ask"), approval("confirm")]),
            json!({"order": 7}),
        );
        let engine = Running::start(&journal, options("a", LEASE));
        let run = until(&journal, id, "waiting on 'ask'", |run| {
            run.awaiting.is_some()
        })
        .await;
        let (ask, confirm) = (run.steps[0].id, run.steps[1].id);

        journal.approve(id, ask);
        engine.signal(Signal::Ready);
        let run = until(&journal, id, "waiting on 'confirm'", |run| {
            run.awaiting == Some(confirm)
        })
        .await;
        assert_eq!(run.status, ExecutionStatus::Paused);
        assert_eq!(run.step(ask).status, StepStatus::Completed);
        assert_eq!(run.step(confirm).status, StepStatus::Running);
        assert_eq!(run.lease_owner, None);
        assert_eq!(
            claims_of(&journal, id),
            vec![
                (worker("a"), ExecutionStatus::Pending),
                (worker("a"), ExecutionStatus::Pending)
            ]
        );
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn an_approval_whose_time_ran_out_fails_the_run() {
    within(async {
        let journal = FakeJournal::new();
        let mut ask = approval("ask");
        ask["timeout_ms"] = json!(60_000);
        let id = journal.insert(definition(&[ask, approval("confirm")]), json!({"order": 7}));
        let engine = Running::start(&journal, options("a", LEASE));
        let run = until(&journal, id, "waiting on 'ask'", |run| {
            run.awaiting.is_some()
        })
        .await;
        assert!(run.wake_at.is_some());

        // Not before its time.
        sleep(Duration::from_millis(60)).await;
        assert_eq!(journal.run(id).status, ExecutionStatus::Paused);

        journal.advance(Duration::from_secs(61));
        let run = until(&journal, id, "failed", |run| {
            run.status == ExecutionStatus::Failed
        })
        .await;
        assert_eq!(
            run.error.as_deref(),
            Some("approval step 'ask' timed out without a decision")
        );
        assert_eq!(run.steps[0].status, StepStatus::Failed);
        assert_eq!(
            run.steps[0].error.as_deref(),
            Some("no decision was made before the approval's timeout")
        );
        assert_eq!(run.steps[1].status, StepStatus::Pending);
        assert_eq!(
            (run.awaiting, run.wake_at, run.lease_owner),
            (None, None, None)
        );
        assert_eq!(
            claims_of(&journal, id),
            vec![
                (worker("a"), ExecutionStatus::Pending),
                (worker("a"), ExecutionStatus::Paused)
            ]
        );
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_webhook_step_is_called_once_and_its_answer_completes_the_run() {
    within(async {
        let server = Server::quick().await;
        let (journal, id) = one_webhook_run(&server);
        let engine = Running::start(&journal, options("a", LEASE));

        let run = until(&journal, id, "completed", |run| {
            run.status == ExecutionStatus::Completed
        })
        .await;
        let step = &run.steps[0];
        assert_eq!(step.status, StepStatus::Completed);
        assert_eq!(step.output, Some(json!({"ok": true})));
        assert_eq!(step.retry_count, 0);
        assert_eq!(run.output, Some(json!({"notify": {"ok": true}})));
        assert_eq!(run.lease_owner, None);
        assert_eq!(
            server.keys(),
            vec![format!("{}:{}", id.as_uuid(), step.id.as_uuid())]
        );
        // Claim with the step's start, then the completion with the run's end.
        let commits = calls_by(&journal, &worker("a"), id)
            .into_iter()
            .filter(|call| matches!(call, Call::Commit { .. }))
            .collect::<Vec<_>>();
        assert_eq!(
            commits,
            vec![Call::Commit {
                worker: worker("a"),
                id,
                committed: Some(Committed::Released)
            }]
        );
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn workers_never_hold_the_same_run_at_once() {
    within(async {
        let server = Server::start(vec![Duration::from_millis(20)]).await;
        let journal = FakeJournal::new();
        let ids: Vec<ExecutionId> = (0..6)
            .map(|order| {
                journal.insert(
                    definition(&[webhook("notify", &server)]),
                    json!({"order": order}),
                )
            })
            .collect();
        // Two engines of two workers each, over the same journal.
        let mut first = options("a", LEASE);
        first.workers = 2;
        let mut second = options("b", LEASE);
        second.workers = 2;
        let engines = [
            Running::start(&journal, first),
            Running::start(&journal, second),
        ];

        for id in &ids {
            until(&journal, *id, "completed", |run| {
                run.status == ExecutionStatus::Completed
            })
            .await;
        }
        let mut keys = server.keys();
        keys.sort();
        keys.dedup();
        assert_eq!(
            keys.len(),
            6,
            "each run's webhook was called once: {:?}",
            server.keys()
        );
        assert_eq!(server.keys().len(), 6);
        for id in &ids {
            assert_eq!(claims_of(&journal, *id).len(), 1, "{:#?}", journal.calls());
        }
        let calls = journal.calls();
        assert!(
            !calls.iter().any(|call| matches!(
                call,
                Call::Commit {
                    committed: Some(Committed::LeaseLost),
                    ..
                } | Call::Renew { held: false, .. }
            )),
            "{calls:#?}"
        );
        let claimers: std::collections::HashSet<_> = calls
            .iter()
            .filter(|call| matches!(call, Call::Claim { .. }))
            .map(|call| call.of().0.clone())
            .collect();
        assert!(claimers.len() > 1, "the work was shared: {claimers:?}");
        for engine in engines {
            engine.stop().await;
        }
    })
    .await;
}

#[tokio::test]
async fn a_held_run_is_claimed_by_no_other_worker_until_its_lease_runs_out() {
    within(async {
        let journal = FakeJournal::new();
        let id = journal.insert(definition(&[approval("ask")]), json!({"order": 7}));
        let (a, b) = (worker("a"), worker("b"));
        let claimed = journal.claim(&a, LEASE, 5, |_| None).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert!(
            journal
                .claim(&b, LEASE, 5, |_| None)
                .await
                .unwrap()
                .is_empty()
        );
        let lease = claimed[0].run.lease.clone();
        assert_eq!(
            journal.renew(&lease, LEASE).await.unwrap(),
            Some(ExecutionStatus::Running)
        );

        journal.advance(LEASE * 2);
        let taken = journal.claim(&b, LEASE, 5, |_| None).await.unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].run.previous_status, ExecutionStatus::Running);
        assert_eq!(taken[0].run.recoveries, 1);
        // The first worker's writes are refused now, and write nothing.
        let before = journal.run(id);
        let change = RunChange::logs(vec![ipa_execution::NewLogLine::run(
            ipa_execution::LogLevel::Info,
            "late",
            json!({}),
        )]);
        assert_eq!(
            journal.commit(&lease, change).await.unwrap(),
            Committed::LeaseLost
        );
        assert_eq!(journal.renew(&lease, LEASE).await.unwrap(), None);
        journal.release(&lease).await.unwrap();
        let after = journal.run(id);
        assert_eq!(after.logs, before.logs);
        assert_eq!(after.lease_owner, Some(b));
    })
    .await;
}

#[tokio::test]
async fn a_run_whose_worker_was_lost_is_recovered_and_its_step_runs_again() {
    within(async {
        let server = Server::quick().await;
        let (journal, id) = one_webhook_run(&server);
        // A worker claims the run, starts its step and dies.
        assert_eq!(claim_as(&journal, &worker("dead"), id).await, 0);
        assert_eq!(journal.run(id).steps[0].status, StepStatus::Running);
        journal.advance(PAST_ANY_LEASE);

        let engine = Running::start(&journal, options("a", LEASE));
        let run = until(&journal, id, "completed", |run| {
            run.status == ExecutionStatus::Completed
        })
        .await;
        assert_eq!(run.recoveries, 1);
        assert!(
            run.logged(
                "Resumed at step 'notify' after the previous worker was lost (recovery 1 of at \
                 most 3)"
            ),
            "{:#?}",
            run.logs
        );
        assert_eq!(run.steps[0].status, StepStatus::Completed);
        assert_eq!(server.keys().len(), 1, "the step ran again, once");
        assert_eq!(
            claims_of(&journal, id),
            vec![
                (worker("dead"), ExecutionStatus::Pending),
                (worker("a"), ExecutionStatus::Running)
            ]
        );
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_run_that_lost_its_worker_too_often_fails() {
    within(async {
        let server = Server::quick().await;
        let (journal, id) = one_webhook_run(&server);
        assert_eq!(claim_as(&journal, &worker("dead"), id).await, 0);
        assert_eq!(claim_as(&journal, &worker("dead too"), id).await, 1);
        journal.advance(PAST_ANY_LEASE);

        let mut options = options("a", LEASE);
        options.max_recoveries = 1;
        let engine = Running::start(&journal, options);
        let run = until(&journal, id, "failed", |run| {
            run.status == ExecutionStatus::Failed
        })
        .await;
        assert_eq!(run.recoveries, 2);
        let error = run.error.as_deref().unwrap();
        assert!(
            error.starts_with("the run lost its worker 2 times (last at step 'notify')"),
            "{error}"
        );
        assert_eq!(run.lease_owner, None);
        assert!(server.keys().is_empty(), "the step was not called again");
        engine.stop().await;
    })
    .await;
}

/// Starts an engine of lease `lease` on a one-webhook run whose call never ends, and answers
/// once the call is in flight.
async fn in_flight(lease: Duration) -> (Server, FakeJournal, ExecutionId, Running) {
    let server = Server::start(vec![NEVER, Duration::ZERO]).await;
    let journal = FakeJournal::new();
    let id = journal.insert(
        definition(&[webhook("notify", &server), approval("ask")]),
        json!({"order": 7}),
    );
    let engine = Running::start(&journal, options("a", lease));
    server.received(1).await;
    assert_eq!(journal.run(id).steps[0].status, StepStatus::Running);
    (server, journal, id, engine)
}

#[tokio::test]
async fn a_cancelled_run_is_interrupted_at_once_and_no_longer_written() {
    within(async {
        // A lease of a minute: the heartbeat (every 20 s) cannot be what notices the cancel.
        let (_server, journal, id, engine) = in_flight(Duration::from_secs(60)).await;
        let began = Instant::now();
        journal.cancel(id);
        engine.signal(Signal::Stop(id));

        let run = until(&journal, id, "let go", |run| run.lease_owner.is_none()).await;
        // At once, not at the next heartbeat 20 s away.
        assert!(began.elapsed() < Duration::from_secs(10));
        assert_eq!(run.status, ExecutionStatus::Cancelled);
        assert_eq!(run.steps[0].status, StepStatus::Failed);
        assert_eq!(
            run.steps[0].error.as_deref(),
            Some("interrupted: the execution was cancelled")
        );
        assert_eq!(run.steps[1].status, StepStatus::Pending);
        assert!(run.logged("Attempt 1 interrupted: the execution was cancelled"));
        let calls = calls_by(&journal, &worker("a"), id);
        assert_eq!(
            calls.last(),
            Some(&Call::Commit {
                worker: worker("a"),
                id,
                committed: Some(Committed::Cancelled)
            })
        );

        // Nothing more: no renewal, no write, no second claim.
        sleep(Duration::from_millis(100)).await;
        assert_eq!(calls_by(&journal, &worker("a"), id), calls);
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_cancel_whose_signal_was_missed_is_found_by_the_heartbeat() {
    within(async {
        let (_server, journal, id, engine) = in_flight(LEASE).await;
        journal.cancel(id);

        let run = until(&journal, id, "let go", |run| run.lease_owner.is_none()).await;
        assert_eq!(run.status, ExecutionStatus::Cancelled);
        assert!(run.logged("Attempt 1 interrupted: the execution was cancelled"));
        let calls = calls_by(&journal, &worker("a"), id);
        assert!(
            calls.contains(&Call::Renew {
                worker: worker("a"),
                id,
                held: true
            }),
            "{calls:#?}"
        );
        sleep(Duration::from_millis(200)).await;
        assert_eq!(calls_by(&journal, &worker("a"), id), calls);
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_worker_whose_lease_was_taken_over_stops_its_step_and_writes_nothing() {
    within(async {
        let (_server, journal, id, engine) = in_flight(LEASE).await;
        let (a, other) = (worker("a"), worker("other"));
        // Another worker takes the run over, as if this one had stalled past its lease.
        assert_eq!(claim_as(&journal, &other, id).await, 1);
        let taken = journal.run(id);
        let before = calls_by(&journal, &a, id).len();

        // The heartbeat learns of it, and the step in flight stops without a word.
        let deadline = Instant::now() + WAIT;
        while !calls_by(&journal, &a, id).contains(&Call::Renew {
            worker: a.clone(),
            id,
            held: false,
        }) {
            assert!(Instant::now() < deadline, "{:#?}", journal.calls());
            sleep(Duration::from_millis(5)).await;
        }
        // The worker is free again: it takes the next run (it runs one at a time).
        let next = journal.insert(definition(&[approval("ask")]), json!({"order": 8}));
        engine.signal(Signal::Ready);
        until(&journal, next, "waiting for a decision", |run| {
            run.awaiting.is_some()
        })
        .await;
        sleep(Duration::from_millis(150)).await;
        // Its only call about the run since: the renewal that found the lease gone, after which
        // the heartbeat stopped.
        let after = calls_by(&journal, &a, id);
        assert_eq!(
            after[before..],
            [Call::Renew {
                worker: a.clone(),
                id,
                held: false
            }],
            "{after:#?}"
        );
        let run = journal.run(id);
        assert_eq!(run.lease_owner, Some(other));
        assert_eq!(run.status, ExecutionStatus::Running);
        assert_eq!(run.steps[0].status, StepStatus::Running);
        assert_eq!(run.logs, taken.logs);
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_step_finished_after_its_lease_was_taken_over_is_not_recorded() {
    within(async {
        // The call answers after 300 ms; the lease of a minute is never renewed meanwhile.
        let server = Server::start(vec![Duration::from_millis(300)]).await;
        let journal = FakeJournal::new();
        let id = journal.insert(
            definition(&[webhook("notify", &server), approval("ask")]),
            json!({"order": 7}),
        );
        let engine = Running::start(&journal, options("a", Duration::from_secs(60)));
        server.received(1).await;
        let other = worker("other");
        assert_eq!(claim_as(&journal, &other, id).await, 1);
        let taken = journal.run(id);
        let before = calls_by(&journal, &worker("a"), id).len();

        let deadline = Instant::now() + WAIT;
        while !calls_by(&journal, &worker("a"), id).iter().any(|call| {
            matches!(
                call,
                Call::Commit {
                    committed: Some(Committed::LeaseLost),
                    ..
                }
            )
        }) {
            assert!(Instant::now() < deadline, "{:#?}", journal.calls());
            sleep(Duration::from_millis(5)).await;
        }
        // The refused completion is its last write: it does not go on to the next step.
        sleep(Duration::from_millis(60)).await;
        let after = calls_by(&journal, &worker("a"), id);
        assert_eq!(
            after[before..],
            [Call::Commit {
                worker: worker("a"),
                id,
                committed: Some(Committed::LeaseLost)
            }],
            "{after:#?}"
        );
        let run = journal.run(id);
        assert_eq!(run.steps[0].status, StepStatus::Running, "no completion");
        assert_eq!(run.steps[1].status, StepStatus::Pending);
        assert_eq!(run.steps[0].output, None);
        assert_eq!(run.status, ExecutionStatus::Running);
        assert_eq!(run.logs, taken.logs);
        assert_eq!(run.lease_owner, Some(other));
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_pause_takes_effect_after_the_step_in_flight() {
    within(async {
        let server = Server::start(vec![Duration::from_millis(100)]).await;
        let journal = FakeJournal::new();
        let id = journal.insert(
            definition(&[webhook("notify", &server), approval("ask")]),
            json!({"order": 7}),
        );
        let engine = Running::start(&journal, options("a", LEASE));
        server.received(1).await;
        journal.pause(id);

        let run = until(&journal, id, "let go", |run| run.lease_owner.is_none()).await;
        assert_eq!(run.status, ExecutionStatus::Paused);
        assert_eq!(run.awaiting, None);
        assert_eq!(
            run.steps[0].status,
            StepStatus::Completed,
            "its result is kept"
        );
        assert_eq!(run.steps[0].output, Some(json!({"ok": true})));
        assert_eq!(
            run.steps[1].status,
            StepStatus::Pending,
            "the next one waits"
        );
        assert_eq!(
            calls_by(&journal, &worker("a"), id).last(),
            Some(&Call::Commit {
                worker: worker("a"),
                id,
                committed: Some(Committed::Paused)
            })
        );
        sleep(Duration::from_millis(60)).await;
        assert_eq!(
            claims_of(&journal, id).len(),
            1,
            "a paused run is not claimed"
        );
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn shutdown_releases_held_runs_for_another_worker_at_once() {
    within(async {
        let (server, journal, id, engine) = in_flight(LEASE).await;
        engine.stop().await;

        let run = journal.run(id);
        assert_eq!(run.lease_owner, None);
        assert_eq!(run.status, ExecutionStatus::Running);
        assert_eq!(
            run.steps[0].status,
            StepStatus::Running,
            "left for the next worker"
        );
        assert!(run.logged("Attempt 1 interrupted: the worker is shutting down"));
        assert_eq!(
            calls_by(&journal, &worker("a"), id).last(),
            Some(&Call::Release {
                worker: worker("a"),
                id,
                held: true
            })
        );

        // Another worker takes it at once, without waiting for a lease to run out, and it is
        // no recovery.
        let engine = Running::start(&journal, options("b", LEASE));
        let run = until(&journal, id, "waiting on 'ask'", |run| {
            run.awaiting.is_some()
        })
        .await;
        assert_eq!(run.recoveries, 0);
        assert_eq!(run.steps[0].status, StepStatus::Completed);
        let keys = server.keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(
            keys[0], keys[1],
            "the same idempotency key on the call made again"
        );
        assert_eq!(
            claims_of(&journal, id),
            vec![
                (worker("a"), ExecutionStatus::Pending),
                (worker("b"), ExecutionStatus::Running)
            ]
        );
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_run_resumed_while_its_step_runs_goes_on_with_the_same_worker() {
    within(async {
        let server = Server::start(vec![Duration::from_millis(100)]).await;
        let journal = FakeJournal::new();
        let id = journal.insert(
            definition(&[webhook("notify", &server), approval("ask")]),
            json!({"order": 7}),
        );
        let mut options = options("a", LEASE);
        options.workers = 2;
        let engine = Running::start(&journal, options);
        server.received(1).await;
        journal.pause(id);
        journal.resume(id);
        // Pending again, but still held: no other worker may take it meanwhile.
        sleep(Duration::from_millis(40)).await;
        assert_eq!(claims_of(&journal, id).len(), 1, "{:#?}", journal.calls());

        let run = until(&journal, id, "waiting on 'ask'", |run| {
            run.awaiting.is_some()
        })
        .await;
        assert_eq!(run.steps[0].status, StepStatus::Completed);
        assert_eq!(run.steps[1].status, StepStatus::Running);
        assert!(run.logged("Execution resumed"));
        assert_eq!(claims_of(&journal, id).len(), 1, "{:#?}", journal.calls());
        assert_eq!(server.keys().len(), 1);
        engine.stop().await;
    })
    .await;
}

/// A one-webhook run whose completion's first two commits find the database down (the engine
/// pauses 100 ms, then 200 ms, between tries), run by worker `a` holding `lease`, until it
/// completes.
async fn completed_through_an_outage(
    lease: Duration,
) -> (Server, FakeJournal, ExecutionId, Running, FakeRun) {
    let server = Server::start(vec![Duration::from_millis(50)]).await;
    let (journal, id) = one_webhook_run(&server);
    let engine = Running::start(&journal, options("a", lease));
    server.received(1).await;
    journal.fail_commits(2);
    let run = until(&journal, id, "completed", |run| {
        run.status == ExecutionStatus::Completed
    })
    .await;
    (server, journal, id, engine, run)
}

#[tokio::test]
async fn a_step_result_is_committed_again_until_the_database_is_back() {
    within(async {
        // Commits are tried again for up to a lease's length: one of a second here.
        let (server, journal, id, engine, run) =
            completed_through_an_outage(Duration::from_secs(1)).await;
        assert_eq!(run.steps[0].output, Some(json!({"ok": true})));
        assert_eq!(server.keys().len(), 1, "the step was not run again");
        let commits: Vec<Option<Committed>> = calls_by(&journal, &worker("a"), id)
            .into_iter()
            .filter_map(|call| match call {
                Call::Commit { committed, .. } => Some(committed),
                _ => None,
            })
            .collect();
        assert_eq!(commits, [None, None, Some(Committed::Released)]);
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_worker_lets_go_of_a_run_when_an_outage_outlasts_its_lease() {
    within(async {
        // A lease of 300 ms leaves time for one pause (100 ms) and not the next (200 ms).
        let (server, journal, id, engine, run) =
            completed_through_an_outage(Duration::from_millis(300)).await;
        let calls = calls_by(&journal, &worker("a"), id);
        let writes: Vec<&Call> = calls
            .iter()
            .filter(|call| matches!(call, Call::Commit { .. } | Call::Release { .. }))
            .collect();
        let commit = |committed| Call::Commit {
            worker: worker("a"),
            id,
            committed,
        };
        let released = Call::Release {
            worker: worker("a"),
            id,
            held: true,
        };
        assert_eq!(
            writes,
            [
                &commit(None),
                &commit(None),
                &released,
                &commit(Some(Committed::Released))
            ],
            "{calls:#?}"
        );
        // Taken again at once and its step run again, with the same idempotency key; a run let
        // go is no recovery.
        assert_eq!(
            claims_of(&journal, id),
            vec![
                (worker("a"), ExecutionStatus::Pending),
                (worker("a"), ExecutionStatus::Running)
            ]
        );
        assert_eq!(run.recoveries, 0);
        let keys = server.keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1]);
        engine.stop().await;
    })
    .await;
}

#[tokio::test]
async fn a_run_whose_write_is_refused_is_held_until_its_lease_runs_out_then_recovered() {
    within(async {
        let server = Server::quick().await;
        let (journal, id) = one_webhook_run(&server);
        journal.refuse_commits(1);
        let engine = Running::start(&journal, options("a", LEASE));
        // The call is made; recording its result is refused.
        server.received(1).await;
        until(&journal, id, "the refused commit", |_| {
            calls_by(&journal, &worker("a"), id).iter().any(|call| {
                matches!(
                    call,
                    Call::Commit {
                        committed: None,
                        ..
                    }
                )
            })
        })
        .await;
        // Many poll intervals later the run is still held, not claimed again and again.
        sleep(Duration::from_millis(300)).await;
        assert_eq!(claims_of(&journal, id).len(), 1, "{:#?}", journal.calls());
        assert!(
            !calls_by(&journal, &worker("a"), id)
                .iter()
                .any(|call| matches!(call, Call::Release { .. })),
            "a refused write does not let go of the run"
        );
        assert_eq!(journal.run(id).lease_owner, Some(worker("a")));

        // Once its lease ran out, the run is recovered, counted, and goes on.
        journal.advance(PAST_ANY_LEASE);
        let run = until(&journal, id, "completed", |run| {
            run.status == ExecutionStatus::Completed
        })
        .await;
        assert_eq!(run.recoveries, 1);
        assert_eq!(claims_of(&journal, id).len(), 2);
        engine.stop().await;
    })
    .await;
}
