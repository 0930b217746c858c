//! Two users at work at the same time over one pool: thousands of interleaved requests (and the
//! engine running their runs meanwhile), and not one row of one user ever reaches the other.
//! `.ci/run` also runs it through PgBouncer in transaction pooling with two server connections,
//! where every transaction of either user runs on a server connection the other just used.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};
use tests::{TestServer, WebhookTarget};

/// Concurrent request loops per user.
const LOOPS_PER_USER: usize = 4;
/// Rounds per loop; each round is [`REQUESTS_PER_ROUND`] requests.
const ROUNDS: usize = 30;
/// Requests one round sends.
const REQUESTS_PER_ROUND: usize = 10;

/// What each user has created so far, for the other to never see.
#[derive(Default)]
struct Created {
    workflows: Mutex<HashSet<String>>,
    runs: Mutex<HashSet<String>>,
}

impl Created {
    fn add_workflow(&self, id: &str) {
        self.workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned());
    }

    fn add_run(&self, id: &str) {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned());
    }

    fn has_workflow(&self, id: &str) -> bool {
        self.workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    fn has_run(&self, id: &str) -> bool {
        self.runs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    fn any_workflow(&self) -> Option<String> {
        self.workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .next()
            .cloned()
    }
}

/// One user of the test.
struct Worker {
    name: &'static str,
    id: String,
    token: String,
    mine: Arc<Created>,
    theirs: Arc<Created>,
}

impl Worker {
    /// Runs `ROUNDS` rounds; returns every crossing seen (a row of the other user, or a row
    /// that is not this user's) and every unexpected answer.
    async fn rounds(&self, server: &TestServer, target: &str, lane: usize) -> Vec<String> {
        let mut problems = Vec::new();
        let token = Some(self.token.as_str());
        for round in 0..ROUNDS {
            let name = format!("{}-{lane}-{round}", self.name);
            // 1. Create a workflow.
            let (status, workflow) = server
                .json(
                    Method::POST,
                    "/workflows",
                    token,
                    Some(
                        json!({"name": name, "tags": [self.name], "metadata": {"user": self.name}}),
                    ),
                )
                .await;
            if status != 201 {
                problems.push(format!("create {name}: {status} {workflow}"));
                continue;
            }
            let workflow_id = workflow["id"].as_str().unwrap_or_default().to_owned();
            self.mine.add_workflow(&workflow_id);
            self.check_workflow(&workflow, "created", &mut problems);
            // 2. Publish a version whose step calls back with the user's name.
            let definition = json!({"steps": [{
                "name": "call", "type": "webhook",
                "request": {"method": "POST", "url": target, "body": {"user": "{{ input.user }}"}}
            }]});
            let (status, body) = server
                .json(
                    Method::POST,
                    &format!("/workflows/{workflow_id}/versions"),
                    token,
                    Some(json!({"definition": definition})),
                )
                .await;
            expect(&mut problems, "publish", status, 201, &body);
            // 3. Activate it.
            let (status, body) = server
                .json(
                    Method::PATCH,
                    &format!("/workflows/{workflow_id}"),
                    token,
                    Some(json!({"status": "active"})),
                )
                .await;
            expect(&mut problems, "activate", status, 200, &body);
            // 4. Start a run.
            let (status, run) = server
                .json(
                    Method::POST,
                    &format!("/workflows/{workflow_id}/executions"),
                    token,
                    Some(json!({"input": {"user": self.name}})),
                )
                .await;
            if status == 201 {
                let run_id = run["id"].as_str().unwrap_or_default().to_owned();
                self.mine.add_run(&run_id);
                self.check_run(&run, "started", &mut problems);
                // 5. Read it back.
                let (status, run) = server
                    .json(Method::GET, &format!("/executions/{run_id}"), token, None)
                    .await;
                expect(&mut problems, "read run", status, 200, &run);
                self.check_run(&run, "read", &mut problems);
            } else {
                problems.push(format!("start {name}: {status} {run}"));
            }
            // 6. Read the workflow back.
            let (status, read) = server
                .json(
                    Method::GET,
                    &format!("/workflows/{workflow_id}"),
                    token,
                    None,
                )
                .await;
            expect(&mut problems, "read workflow", status, 200, &read);
            self.check_workflow(&read, "read", &mut problems);
            // 7. List workflows, 8. list runs: every item is this user's.
            let (status, page) = server
                .json(Method::GET, "/workflows?limit=50", token, None)
                .await;
            expect(&mut problems, "list workflows", status, 200, &page);
            for item in page["items"].as_array().into_iter().flatten() {
                self.check_workflow(item, "listed", &mut problems);
            }
            let (status, page) = server
                .json(Method::GET, "/executions?limit=50", token, None)
                .await;
            expect(&mut problems, "list runs", status, 200, &page);
            for item in page["items"].as_array().into_iter().flatten() {
                self.check_run(item, "listed", &mut problems);
            }
            // 9. Who am I.
            let (status, me) = server.json(Method::GET, "/me", token, None).await;
            expect(&mut problems, "me", status, 200, &me);
            if me["id"] != self.id.as_str() {
                problems.push(format!("{} asked /me and got {me}", self.name));
            }
            // 10. The other user's workflow is not there.
            if let Some(other) = self.theirs.any_workflow() {
                let (status, body) = server
                    .json(Method::GET, &format!("/workflows/{other}"), token, None)
                    .await;
                expect(&mut problems, "other's workflow", status, 404, &body);
            } else {
                let (status, body) = server.json(Method::GET, "/readyz", None, None).await;
                expect(&mut problems, "readyz", status, 200, &body);
            }
        }
        problems
    }

    fn check_workflow(&self, workflow: &Value, how: &str, problems: &mut Vec<String>) {
        let id = workflow["id"].as_str().unwrap_or_default();
        if workflow["owner_id"] != self.id.as_str()
            || self.theirs.has_workflow(id)
            || workflow["metadata"]["user"] != self.name
        {
            problems.push(format!(
                "{} {how} a workflow not its own: {workflow}",
                self.name
            ));
        }
    }

    fn check_run(&self, run: &Value, how: &str, problems: &mut Vec<String>) {
        let id = run["id"].as_str().unwrap_or_default();
        let workflow = run["workflow_id"].as_str().unwrap_or_default();
        if run["triggered_by"] != self.id.as_str()
            || self.theirs.has_run(id)
            || self.theirs.has_workflow(workflow)
            || run["input"]["user"] != self.name
        {
            problems.push(format!("{} {how} a run not its own: {run}", self.name));
        }
    }
}

fn expect(problems: &mut Vec<String>, what: &str, status: u16, wanted: u16, body: &Value) {
    if status != wanted {
        problems.push(format!("{what}: {status} (wanted {wanted}) {body}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_interleaving_thousands_of_requests_never_see_each_others_rows() {
    let server = Arc::new(TestServer::start().await);
    let target = WebhookTarget::start().await;
    let engine = server.start_engine("interleaving", 2, Duration::from_secs(30));
    let alice_made = Arc::new(Created::default());
    let bob_made = Arc::new(Created::default());
    let (alice, alice_token) = server.signed_in("alice", false).await;
    let (bob, bob_token) = server.signed_in("bob", false).await;
    let workers = [
        Arc::new(Worker {
            name: "alice",
            id: alice.id.clone(),
            token: alice_token.clone(),
            mine: alice_made.clone(),
            theirs: bob_made.clone(),
        }),
        Arc::new(Worker {
            name: "bob",
            id: bob.id.clone(),
            token: bob_token.clone(),
            mine: bob_made.clone(),
            theirs: alice_made.clone(),
        }),
    ];
    let started = Instant::now();
    let mut lanes = tokio::task::JoinSet::new();
    for lane in 0..LOOPS_PER_USER {
        for worker in &workers {
            let worker = worker.clone();
            let server = server.clone();
            let url = target.url("/echo");
            lanes.spawn(async move { worker.rounds(&server, &url, lane).await });
        }
    }
    let mut problems = Vec::new();
    while let Some(lane) = lanes.join_next().await {
        problems.extend(lane.unwrap());
    }
    let elapsed = started.elapsed();
    let requests = 2 * LOOPS_PER_USER * ROUNDS * REQUESTS_PER_ROUND;
    assert!(requests >= 2000, "{requests} requests");
    assert!(
        problems.is_empty(),
        "{} problems in {requests} requests, first: {:#?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    eprintln!("{requests} interleaved requests in {elapsed:?}");

    // Every run completes, and the engine called each with its own user's input.
    let runs = LOOPS_PER_USER * ROUNDS;
    let deadline = Instant::now() + Duration::from_secs(180);
    for (worker, token) in [(&workers[0], &alice_token), (&workers[1], &bob_token)] {
        let mut completed = HashSet::new();
        loop {
            let mut cursor = String::new();
            loop {
                let (status, page) = server
                    .json(
                        Method::GET,
                        &format!("/executions?status=completed&limit=100{cursor}"),
                        Some(token),
                        None,
                    )
                    .await;
                assert_eq!(status, 200, "{page}");
                for item in page["items"].as_array().unwrap() {
                    let mut problems = Vec::new();
                    worker.check_run(item, "listed", &mut problems);
                    assert!(problems.is_empty(), "{problems:?}");
                    assert_eq!(
                        item["output"]["call"]["body"]["user"], worker.name,
                        "the engine ran {}'s run with another's input: {item}",
                        worker.name
                    );
                    completed.insert(item["id"].as_str().unwrap().to_owned());
                }
                match page["next_cursor"].as_str() {
                    Some(next) => cursor = format!("&cursor={next}"),
                    None => break,
                }
            }
            if completed.len() == runs {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {}'s {runs} runs completed",
                completed.len(),
                worker.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let calls = target.received();
    assert_eq!(calls.len(), 2 * runs, "one call per run");
    engine.stop().await;
}
