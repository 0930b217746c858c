//! Support for the end-to-end tests: a real server on a real socket over a database of its own,
//! and the few steps most tests start with (creating accounts, signing in, sending JSON).

use std::net::SocketAddr;

use ipa_api::AppState;
use ipa_identity::{Email, IdentityPolicy, NewUser, Password, Username};
use ipa_kernel::Actor;
use ipa_store::testing::TestDatabase;
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::Method;
use serde_json::{Value, json};

/// A running server and the database behind it; both end when it is dropped.
pub struct TestServer {
    address: SocketAddr,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    state: AppState,
    database: TestDatabase,
}

/// Engine workers started by [`TestServer::start_engine`]; stopped when dropped.
pub struct TestEngine {
    stop: tokio::sync::watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl TestEngine {
    /// Stops the workers and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// An account created for a test, with its password.
#[derive(Clone, Debug)]
pub struct TestUser {
    /// The account's id.
    pub id: String,
    /// Its username.
    pub username: String,
    /// Its email address.
    pub email: String,
    /// Its password.
    pub password: String,
}

impl TestServer {
    /// A server over a fully migrated database, with the default identity policy.
    pub async fn start() -> Self {
        Self::over(TestDatabase::migrated().await).await
    }

    /// A server over a fully migrated database applying `policy`.
    pub async fn with_policy(policy: IdentityPolicy) -> Self {
        Self::serve(TestDatabase::migrated().await, policy).await
    }

    /// A server over the given database.
    pub async fn over(database: TestDatabase) -> Self {
        Self::serve(database, IdentityPolicy::default()).await
    }

    /// # Panics
    /// When the server cannot be started: the test cannot run without it.
    async fn serve(database: TestDatabase, policy: IdentityPolicy) -> Self {
        let store = database.store().await;
        let secrets = match ipa_security::SecretKey::generate() {
            Ok(key) => ipa_security::SecretBox::new(key),
            Err(err) => panic!("cannot generate a secret key: {err}"),
        };
        let state = match AppState::new(store, policy, secrets) {
            Ok(state) => state,
            Err(err) => panic!("cannot prepare the services: {err}"),
        };
        let acceptor = match TcpListener::bind("127.0.0.1:0").into_acceptor().await {
            Ok(acceptor) => acceptor,
            Err(err) => panic!("cannot listen on loopback: {err}"),
        };
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .unwrap_or_else(|| panic!("the listener has no address"));
        let app = ipa_api::app(state.clone());
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            address,
            client: reqwest::Client::new(),
            task,
            state,
            database,
        }
    }

    /// The database behind the server.
    /// Starts an engine of `workers` workers named `name` over this server's database, woken by
    /// its notifications, holding runs for `lease`.
    pub fn start_engine(
        &self,
        name: &str,
        workers: usize,
        lease: std::time::Duration,
    ) -> TestEngine {
        let options = ipa_engine::EngineOptions {
            workers,
            lease,
            poll_interval: std::time::Duration::from_millis(500),
            name: name.to_owned(),
            ..ipa_engine::EngineOptions::default()
        };
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let handle = ipa_server::engine::spawn(
            &self.state.store,
            &self.state.notifications,
            options,
            shutdown,
        )
        .unwrap_or_else(|err| panic!("cannot start the engine: {err}"));
        TestEngine { stop, handle }
    }

    /// The test's database.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// The full URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// A GET of `path`.
    ///
    /// # Panics
    /// When the server does not answer.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.call(Method::GET, path, None, None).await
    }

    /// A request with an optional bearer token and JSON body.
    ///
    /// # Panics
    /// When the server does not answer.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method.clone(), self.url(path))
            .header("user-agent", "ipa-tests/1.0");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        match request.send().await {
            Ok(response) => response,
            Err(err) => panic!("{method} {path}: {err}"),
        }
    }

    /// A request as [`TestServer::call`], returning the status and the JSON body (`null` when
    /// there is none).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let response = self.call(method, path, token, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        (status, value)
    }

    /// Creates an account directly through the identity service, acting as the platform.
    ///
    /// # Panics
    /// When the account cannot be created.
    pub async fn create_user(&self, username: &str, superuser: bool) -> TestUser {
        let email = format!("{username}@example.com");
        let password = format!("{username}-password-123");
        let user = NewUser {
            email: Email::parse(&email).unwrap_or_else(|err| panic!("{err}")),
            username: Username::parse(username).unwrap_or_else(|err| panic!("{err}")),
            full_name: None,
            is_superuser: superuser,
        };
        let created = self
            .state
            .identity
            .create_user(
                &Actor::system(),
                user,
                Password::parse(password.clone()).unwrap_or_else(|err| panic!("{err}")),
            )
            .await
            .unwrap_or_else(|err| panic!("cannot create {username}: {err}"));
        TestUser {
            id: created.id.to_string(),
            username: username.to_owned(),
            email,
            password,
        }
    }

    /// Signs `user` in and returns the bearer token.
    ///
    /// # Panics
    /// When sign-in fails.
    pub async fn login(&self, user: &TestUser) -> String {
        let (status, body) = self
            .json(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({"identifier": user.username, "password": user.password})),
            )
            .await;
        assert_eq!(status, 200, "sign-in of {} failed: {body}", user.username);
        match body["access_token"].as_str() {
            Some(token) => token.to_owned(),
            None => panic!("no token in {body}"),
        }
    }

    /// A new account, signed in: the account and its token.
    pub async fn signed_in(&self, username: &str, superuser: bool) -> (TestUser, String) {
        let user = self.create_user(username, superuser).await;
        let token = self.login(&user).await;
        (user, token)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request a [`WebhookTarget`] received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The path asked for.
    pub path: String,
    /// Its `Idempotency-Key` header.
    pub idempotency_key: Option<String>,
    /// Every header.
    pub headers: Vec<(String, String)>,
    /// The JSON body (null when there was none).
    pub body: Value,
}

/// A local HTTP server webhook steps call:
/// - `/echo`: answers `{"path", "body", "n"}` (n: the request's number at this path);
/// - `/flaky/<name>?failures=N`: answers 500 to the first N requests at its path, then 200;
/// - `/slow?ms=N`: answers after N milliseconds;
/// - `/status/<code>`: answers that status with a JSON body.
///
/// Every request is recorded.
#[derive(Clone)]
pub struct WebhookTarget {
    address: SocketAddr,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
}

impl WebhookTarget {
    /// Starts the target on a loopback port.
    pub async fn start() -> Self {
        use poem::{
            EndpointExt, IntoResponse, Request, Response, handler, http::StatusCode, web::Data,
        };
        type Log = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;

        #[handler]
        async fn any(request: &Request, body: poem::Body, log: Data<&Log>) -> Response {
            let path = request.uri().path().to_owned();
            let query = request.uri().query().unwrap_or_default().to_owned();
            let bytes = body.into_vec().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let headers = request
                .headers()
                .iter()
                .map(|(name, value)| {
                    (
                        name.to_string(),
                        value.to_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect();
            let n = {
                let mut log = log
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                log.push(Received {
                    path: path.clone(),
                    idempotency_key: request
                        .headers()
                        .get("idempotency-key")
                        .and_then(|value| value.to_str().ok())
                        .map(str::to_owned),
                    headers,
                    body: body.clone(),
                });
                log.iter().filter(|r| r.path == path).count()
            };
            let param = |name: &str| -> Option<u64> {
                query
                    .split('&')
                    .filter_map(|pair| pair.split_once('='))
                    .find(|(key, _)| *key == name)
                    .and_then(|(_, value)| value.parse().ok())
            };
            if path.starts_with("/flaky/") {
                let failures = usize::try_from(param("failures").unwrap_or(2)).unwrap_or(2);
                if n <= failures {
                    return poem::web::Json(json!({"error": "try again", "n": n}))
                        .with_status(StatusCode::INTERNAL_SERVER_ERROR)
                        .into_response();
                }
            }
            if path == "/slow" {
                tokio::time::sleep(std::time::Duration::from_millis(
                    param("ms").unwrap_or(1000),
                ))
                .await;
            }
            if let Some(code) = path.strip_prefix("/status/") {
                let status = code
                    .parse()
                    .ok()
                    .and_then(|code| StatusCode::from_u16(code).ok())
                    .unwrap_or(StatusCode::IM_A_TEAPOT);
                return poem::web::Json(json!({"status": status.as_u16()}))
                    .with_status(status)
                    .into_response();
            }
            poem::web::Json(json!({"path": path, "body": body, "n": n})).into_response()
        }

        let received: Log = std::sync::Arc::default();
        let acceptor = match TcpListener::bind("127.0.0.1:0").into_acceptor().await {
            Ok(acceptor) => acceptor,
            Err(err) => panic!("cannot listen on loopback: {err}"),
        };
        let address = acceptor
            .local_addr()
            .first()
            .and_then(|addr| addr.as_socket_addr().copied())
            .unwrap_or_else(|| panic!("the listener has no address"));
        let app = poem::Route::new().at("/*path", any).data(received.clone());
        tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self { address, received }
    }

    /// The URL of `path` on the target.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl TestServer {
    /// Creates an active workflow owned by `token`'s user with `definition` as its current
    /// version; returns its id.
    pub async fn active_workflow(&self, token: &str, name: &str, definition: Value) -> String {
        let (status, workflow) = self
            .json(
                Method::POST,
                "/workflows",
                Some(token),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, 201, "{workflow}");
        let id = workflow["id"].as_str().unwrap_or_default().to_owned();
        let (status, version) = self
            .json(
                Method::POST,
                &format!("/workflows/{id}/versions"),
                Some(token),
                Some(json!({"definition": definition})),
            )
            .await;
        assert_eq!(status, 201, "{version}");
        let (status, body) = self
            .json(
                Method::PATCH,
                &format!("/workflows/{id}"),
                Some(token),
                Some(json!({"status": "active"})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        id
    }

    /// Starts a run of `workflow` with `input`; returns the run.
    pub async fn start_run(&self, token: &str, workflow: &str, input: Value) -> Value {
        let (status, run) = self
            .json(
                Method::POST,
                &format!("/workflows/{workflow}/executions"),
                Some(token),
                Some(json!({"input": input})),
            )
            .await;
        assert_eq!(status, 201, "{run}");
        run
    }

    /// Waits (up to `within`) until the run's status is one of `statuses`; returns the run with
    /// its steps.
    pub async fn wait_for_run(
        &self,
        token: &str,
        id: &str,
        statuses: &[&str],
        within: std::time::Duration,
    ) -> Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (status, run) = self
                .json(Method::GET, &format!("/executions/{id}"), Some(token), None)
                .await;
            assert_eq!(status, 200, "{run}");
            if statuses.iter().any(|wanted| run["status"] == *wanted) {
                return run;
            }
            if std::time::Instant::now() > deadline {
                panic!(
                    "run {id} is still {} after {within:?}: {run:#}",
                    run["status"]
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}
