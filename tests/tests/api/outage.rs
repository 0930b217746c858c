//! Database outages: a TCP proxy the test controls stands between the server and PostgreSQL.
//! While it refuses new connections and has cut the open ones, every request answers a fast
//! `503 database_unavailable` with `Retry-After`, sign-ins that fail so are not counted against
//! the account, and writes are refused whole; once it lets connections through again, everything
//! serves without a restart: sign-in at once, the notification listener, and the run that was in
//! flight, which completes without repeating its step while a client follows it live.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipa_identity::{IdentityPolicy, ThrottlePolicy};
use ipa_store::testing::TestDatabase;
use ipa_store::{PoolOptions, Store};
use reqwest::Method;
use serde_json::{Value, json};
use tests::{TestServer, WebhookTarget};
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio::task::AbortHandle;

/// The pool's acquire timeout in these tests.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// A generous bound on an answer during the outage: several times the acquire timeout, far
/// below the ten seconds a request used to hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);
/// How long recovery may take at most.
const WAIT: Duration = Duration::from_secs(30);

/// Where the proxy forwards to: PostgreSQL's TCP address or its unix socket.
#[derive(Clone, Debug)]
enum Upstream {
    Tcp(String),
    Unix(PathBuf),
}

/// A TCP proxy in front of PostgreSQL with a switch: cut, it stops listening (new connections
/// are refused, as by a server that is down) and closes every open connection; restored, it
/// listens on the same port again and forwards.
struct PgProxy {
    address: SocketAddr,
    upstream: Upstream,
    accept: Mutex<Option<AbortHandle>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
}

impl PgProxy {
    async fn start(upstream: Upstream) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Self {
            address: listener.local_addr().unwrap(),
            upstream,
            accept: Mutex::new(None),
            connections: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let connections = Arc::clone(&self.connections);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    let _ = match upstream {
                        Upstream::Tcp(address) => match TcpStream::connect(address).await {
                            Ok(mut server) => {
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                            Err(_) => return,
                        },
                        Upstream::Unix(path) => match UnixStream::connect(path).await {
                            Ok(mut server) => {
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                            Err(_) => return,
                        },
                    };
                });
                connections.lock().unwrap().push(task.abort_handle());
            }
        });
        *self.accept.lock().unwrap() = Some(accept.abort_handle());
    }

    /// Stops listening and cuts the open connections.
    async fn cut(&self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
        // The aborted tasks drop their sockets when the runtime next polls them.
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(self.address).await.is_ok() {
            assert!(Instant::now() < deadline, "the proxy still accepts");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Listens on the same port again.
    async fn restore(&self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        if let Some(accept) = self.accept.lock().unwrap().take() {
            accept.abort();
        }
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }
}

/// Where `url` connects to: a unix socket directory in `?host=`, else its host and port.
fn upstream_of(url: &str) -> Upstream {
    let parsed = url::Url::parse(url).unwrap();
    let port = parsed.port().unwrap_or(5432);
    let socket_dir = parsed
        .query_pairs()
        .find(|(key, _)| key == "host")
        .map(|(_, value)| value.into_owned());
    match socket_dir {
        Some(dir) if dir.starts_with('/') => {
            Upstream::Unix(PathBuf::from(dir).join(format!(".s.PGSQL.{port}")))
        }
        _ => Upstream::Tcp(format!("{}:{port}", parsed.host_str().unwrap())),
    }
}

/// `url` rewritten to connect to `proxy` over TCP.
fn proxied_url(url: &str, proxy: SocketAddr) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let others: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(key, _)| key != "host")
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    parsed.set_query(None);
    if !others.is_empty() {
        parsed.query_pairs_mut().extend_pairs(others);
    }
    parsed.set_host(Some("127.0.0.1")).unwrap();
    parsed.set_port(Some(proxy.port())).unwrap();
    parsed.to_string()
}

/// The lockout threshold of these tests: two failures per account.
const MAX_FAILURES: u32 = 2;

/// A server whose pool reaches its database only through a proxy, with a short acquire
/// timeout and a lockout after [`MAX_FAILURES`] failures.
async fn server_behind_proxy() -> (TestServer, PgProxy) {
    let database = TestDatabase::migrated().await;
    let proxy = PgProxy::start(upstream_of(database.owner_url())).await;
    let store = Store::connect(
        &proxied_url(database.owner_url(), proxy.address),
        PoolOptions {
            max_connections: 5,
            acquire_timeout: ACQUIRE_TIMEOUT,
        },
    )
    .await
    .unwrap();
    let policy = IdentityPolicy {
        throttle: ThrottlePolicy::new(MAX_FAILURES, 50, time::Duration::minutes(15)).unwrap(),
        ..IdentityPolicy::default()
    };
    (TestServer::over_store(database, store, policy).await, proxy)
}

/// Sends a request and checks that it is answered `503 database_unavailable` with a
/// `Retry-After` within [`ANSWER_WITHIN`]; returns the body.
async fn assert_unavailable(
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Value {
    let started = Instant::now();
    let response = server.call(method.clone(), path, token, body).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    eprintln!("{method} {path}: {status} in {elapsed:?}");
    assert_eq!(status, 503, "{method} {path}: {body}");
    assert_eq!(
        body["code"], "database_unavailable",
        "{method} {path}: {body}"
    );
    assert!(
        retry_after.is_some_and(|seconds| seconds > 0),
        "{method} {path}: no Retry-After"
    );
    assert!(
        elapsed < ANSWER_WITHIN,
        "{method} {path} took {elapsed:?} with an acquire timeout of {ACQUIRE_TIMEOUT:?}"
    );
    body
}

/// Waits until `/readyz` answers 200.
async fn wait_until_ready(server: &TestServer) {
    let deadline = Instant::now() + WAIT;
    loop {
        if server.get("/readyz").await.status() == 200 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not ready {WAIT:?} after the restore"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_outage_is_a_fast_503_and_everything_serves_again_once_the_database_is_back() {
    let (server, proxy) = server_behind_proxy().await;
    let target = WebhookTarget::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    // A lease longer than the outage: the worker keeps the step that finishes during it and
    // commits it once the database is back.
    let engine = server.start_engine("outage", 1, Duration::from_secs(30));
    let workflow = server
        .active_workflow(
            &token,
            "survives-outage",
            json!({"steps": [
                {"name": "slow", "type": "webhook", "timeout_ms": 60000,
                 "request": {"method": "GET", "url": target.url("/slow?ms=1000")}},
                {"name": "last", "type": "webhook",
                 "request": {"method": "POST", "url": target.url("/echo")}}
            ]}),
        )
        .await;
    let run = server.start_run(&token, &workflow, json!({})).await;
    let run_id = run["id"].as_str().unwrap().to_owned();
    target.wait_for_request(Some("/slow"), WAIT).await;

    // A client follows the run live across the outage.
    let events = {
        let response = reqwest::Client::new()
            .get(server.url(&format!("/executions/{run_id}/events")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        tokio::spawn(async move { response.text().await.unwrap_or_default() })
    };

    // The database goes away while the slow step is in flight.
    proxy.cut().await;

    let readiness = assert_unavailable(&server, Method::GET, "/readyz", None, None).await;
    assert_eq!(readiness["status"], "not_ready", "{readiness}");
    assert_eq!(readiness["database"], "unreachable", "{readiness}");
    // More failed sign-ins than the lockout allows, and the right password too: none counts.
    for attempt in 0..=MAX_FAILURES + 1 {
        assert_unavailable(
            &server,
            Method::POST,
            "/auth/login",
            None,
            Some(json!({"identifier": alice.username, "password": format!("wrong-{attempt}")})),
        )
        .await;
    }
    assert_unavailable(
        &server,
        Method::POST,
        "/auth/login",
        None,
        Some(json!({"identifier": alice.username, "password": alice.password})),
    )
    .await;
    // A read, and a write that must not happen at all.
    assert_unavailable(&server, Method::GET, "/workflows", Some(&token), None).await;
    assert_unavailable(
        &server,
        Method::GET,
        &format!("/executions/{run_id}"),
        Some(&token),
        None,
    )
    .await;
    assert_unavailable(
        &server,
        Method::POST,
        "/workflows",
        Some(&token),
        Some(json!({"name": "written-during-the-outage"})),
    )
    .await;
    // Liveness does not depend on the database.
    assert_eq!(server.get("/healthz").await.status(), 200);
    // Hold the outage past the slow step's answer.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    proxy.restore().await;
    wait_until_ready(&server).await;

    // The server's LISTEN connection is back: a notification sent now reaches it.
    let mut notifications = server.notifications();
    let deadline = Instant::now() + WAIT;
    'listening: loop {
        server
            .database()
            .execute("SELECT pg_notify('ipa_executions', 'probe')")
            .await;
        let wait = tokio::time::sleep(Duration::from_millis(500));
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                received = notifications.recv() => {
                    if received.is_ok_and(|n| n.payload == "probe") {
                        break 'listening;
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "the notification listener did not come back"
        );
    }

    // The right password works at once: the outage's failures were not counted.
    let fresh = server.login(&alice).await;
    let (status, workflows) = server
        .json(Method::GET, "/workflows", Some(&fresh), None)
        .await;
    assert_eq!(status, 200, "{workflows}");
    assert!(
        workflows["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["name"] != "written-during-the-outage"),
        "the refused write left nothing behind: {workflows}"
    );
    let (status, created) = server
        .json(
            Method::POST,
            "/workflows",
            Some(&fresh),
            Some(json!({"name": "written-after-the-outage"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");

    // The run in flight completes once the database is back.
    let run = server
        .wait_for_run(&fresh, &run_id, &["completed", "failed"], WAIT)
        .await;
    assert_eq!(run["status"], "completed", "{run:#}");
    assert_eq!(run["recoveries"], 0, "the worker kept the run: {run:#}");
    let received = target.received();
    assert_eq!(
        received.iter().filter(|r| r.path == "/slow").count(),
        1,
        "the step that finished during the outage did not run again"
    );
    assert!(received.iter().any(|r| r.path == "/echo"));
    // The event stream stayed open through the outage and ended with the run.
    let events = tokio::time::timeout(WAIT, events)
        .await
        .expect("the event stream did not end with the run")
        .unwrap();
    let completed = events.split("\n\n").any(|block| {
        let kind = block
            .lines()
            .find_map(|line| line.strip_prefix("event:"))
            .map(str::trim);
        let data: String = block
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .map(str::trim)
            .collect();
        kind == Some("execution")
            && serde_json::from_str::<Value>(&data)
                .is_ok_and(|line| line["context"]["status"] == "completed")
    });
    assert!(completed, "no completion event in the stream: {events}");
    engine.stop().await;

    // No audit row was lost, and none was written for the refused work.
    let database = server.database();
    let started = database
        .rows(&format!(
            "SELECT action::text FROM audit_logs \
             WHERE resource_id = '{run_id}' AND action = 'execute'"
        ))
        .await;
    assert_eq!(started.len(), 1, "{started:?}");
    let written = database
        .rows(
            "SELECT changes FROM audit_logs WHERE resource_type = 'workflow' \
             AND action = 'create'",
        )
        .await;
    let names: Vec<String> = written
        .iter()
        .map(|row| row["changes"].to_string())
        .collect();
    assert!(
        names
            .iter()
            .any(|changes| changes.contains("written-after-the-outage")),
        "{names:?}"
    );
    assert!(
        names
            .iter()
            .all(|changes| !changes.contains("written-during-the-outage")),
        "{names:?}"
    );
    // The outage's sign-ins left no failed attempt behind.
    let failed = database
        .rows(&format!(
            "SELECT id FROM login_attempts WHERE identifier = '{}' AND succeeded IS NOT TRUE",
            alice.username
        ))
        .await;
    assert!(failed.is_empty(), "{failed:?}");
}
