//! Support for the end-to-end tests: a real server on a real socket over a database of its own,
//! and the few steps most tests start with (creating accounts, signing in, sending JSON).

use std::net::SocketAddr;

use ipa_api::{AppState, HttpLimits};
use ipa_identity::{Email, IdentityPolicy, NewUser, Password, Username};
use ipa_kernel::Actor;
use ipa_store::testing::TestDatabase;
use poem::listener::{Acceptor, Listener, TcpListener};
use reqwest::Method;
use serde_json::{Value, json};

/// Serves `app` on a free loopback port; the address and the task serving it.
async fn serve_on_loopback(
    app: impl poem::Endpoint + 'static,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let acceptor = match TcpListener::bind("127.0.0.1:0").into_acceptor().await {
        Ok(acceptor) => acceptor,
        Err(err) => panic!("cannot listen on loopback: {err}"),
    };
    let address = acceptor
        .local_addr()
        .first()
        .and_then(|addr| addr.as_socket_addr().copied())
        .unwrap_or_else(|| panic!("the listener has no address"));
    let task = tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    (address, task)
}

/// Serves the platform's `app` on a free loopback port through the platform's own connection
/// layer (so connection limits apply); the address and the task serving it.
async fn serve_platform_on_loopback(
    app: impl poem::Endpoint + 'static,
    limits: HttpLimits,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(err) => panic!("cannot listen on loopback: {err}"),
    };
    let address = listener
        .local_addr()
        .unwrap_or_else(|err| panic!("the listener has no address: {err}"));
    let task = tokio::spawn(async move {
        let _ = ipa_server::connections::serve(
            listener,
            app,
            limits,
            std::future::pending(),
            std::time::Duration::from_secs(1),
        )
        .await;
    });
    (address, task)
}

/// A running server and the database behind it; both end when it is dropped.
pub struct TestServer {
    address: SocketAddr,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    state: AppState,
    secrets: ipa_security::SecretBox,
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
        Self::serve(
            TestDatabase::migrated().await,
            policy,
            HttpLimits::default(),
        )
        .await
    }

    /// A server over a fully migrated database holding requests and connections to `limits`.
    pub async fn with_limits(limits: HttpLimits) -> Self {
        Self::serve(
            TestDatabase::migrated().await,
            IdentityPolicy::default(),
            limits,
        )
        .await
    }

    /// A server over the given database.
    pub async fn over(database: TestDatabase) -> Self {
        Self::serve(database, IdentityPolicy::default(), HttpLimits::default()).await
    }

    /// A server over `database` that reaches it through `store`, a pool the test opened itself
    /// (through a proxy it controls, or with its own pool options), applying `policy`.
    pub async fn over_store(
        database: TestDatabase,
        store: ipa_store::Store,
        policy: IdentityPolicy,
    ) -> Self {
        Self::serve_with(database, store, policy, HttpLimits::default()).await
    }

    async fn serve(database: TestDatabase, policy: IdentityPolicy, limits: HttpLimits) -> Self {
        let store = database.store().await;
        Self::serve_with(database, store, policy, limits).await
    }

    /// # Panics
    /// When the server cannot be started: the test cannot run without it.
    async fn serve_with(
        database: TestDatabase,
        store: ipa_store::Store,
        policy: IdentityPolicy,
        limits: HttpLimits,
    ) -> Self {
        let secrets = match ipa_security::SecretKey::generate() {
            Ok(key) => ipa_security::SecretBox::new(key),
            Err(err) => panic!("cannot generate a secret key: {err}"),
        };
        // Tokens remembered as `ipa serve` remembers them by default.
        let session_cache = ipa_store::SessionCache::DEFAULT_PERIOD;
        let state = match AppState::new(store, policy, secrets.clone(), session_cache) {
            Ok(state) => state,
            Err(err) => panic!("cannot prepare the services: {err}"),
        };
        let (address, task) =
            serve_platform_on_loopback(ipa_api::app(state.clone(), limits), limits).await;
        Self {
            address,
            client: reqwest::Client::new(),
            task,
            state,
            secrets,
            database,
        }
    }

    /// Starts an engine of `workers` workers named `name` over this server's database, woken by
    /// its notifications, holding runs for `lease`.
    pub fn start_engine(
        &self,
        name: &str,
        workers: usize,
        lease: std::time::Duration,
    ) -> TestEngine {
        self.start_engine_with(ipa_engine::EngineOptions {
            workers,
            lease,
            poll_interval: std::time::Duration::from_millis(500),
            name: name.to_owned(),
            ..ipa_engine::EngineOptions::default()
        })
    }

    /// Starts an engine with `options` over this server's database, opening secrets with the
    /// server's key.
    pub fn start_engine_with(&self, options: ipa_engine::EngineOptions) -> TestEngine {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let handle = ipa_server::engine::spawn(
            &self.state.store,
            &self.state.notifications,
            self.secrets.clone(),
            options,
            shutdown,
        )
        .unwrap_or_else(|err| panic!("cannot start the engine: {err}"));
        TestEngine { stop, handle }
    }

    /// A receiver of every database notification the server's listener gets from now on.
    pub fn notifications(&self) -> tokio::sync::broadcast::Receiver<ipa_store::Notification> {
        self.state.notifications.subscribe()
    }

    /// The test's database.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// The address the server listens on, for tests that speak raw TCP.
    pub fn address(&self) -> SocketAddr {
        self.address
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
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => panic!("{method} {path}: {err}"),
        };
        assert_declared(&method, path, response.status().as_u16());
        response
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
        let response = self.call(method.clone(), path, token, body).await;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if let Some(code) = value
            .get("code")
            .and_then(Value::as_str)
            .filter(|_| status >= 400)
        {
            assert_code_declared(&method, path, status, code);
        }
        (status, value)
    }

    /// Every page of the list at `path` (which holds its query, `limit` included), followed by
    /// cursor as `token`'s user; each page's items in order. At most `max_pages` pages are read:
    /// a cursor that never ends fails the test instead of hanging it.
    pub async fn pages(&self, path: &str, token: &str, max_pages: usize) -> Vec<Vec<Value>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            assert!(
                pages.len() < max_pages,
                "{path} has more than {max_pages} pages: {pages:?}"
            );
            let separator = if path.contains('?') { '&' } else { '?' };
            let query = match &cursor {
                Some(cursor) => format!("{path}{separator}cursor={cursor}"),
                None => path.to_owned(),
            };
            let (status, page) = self.json(Method::GET, &query, Some(token), None).await;
            assert_eq!(status, 200, "{query}: {page}");
            pages.push(page["items"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return pages,
            }
        }
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
        let app = poem::Route::new().at("/*path", any).data(received.clone());
        let (address, _) = serve_on_loopback(app).await;
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

    /// Waits (up to `within`) until a request to `path` (any path when `None`) has arrived;
    /// fails the test otherwise, so that an engine that never calls cannot hang the suite.
    pub async fn wait_for_request(&self, path: Option<&str>, within: std::time::Duration) {
        let deadline = std::time::Instant::now() + within;
        while !self
            .received()
            .iter()
            .any(|request| path.is_none_or(|path| request.path == path))
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no request to {} within {within:?}",
                path.unwrap_or("the target")
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
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

/// One request a [`FakeModel`] received.
#[derive(Clone, Debug)]
pub struct ModelRequest {
    /// The method.
    pub method: String,
    /// The path asked for.
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The JSON body (null when there was none).
    pub body: Value,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl ModelRequest {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    /// The names of the functions offered in a chat-completions request.
    pub fn offered_functions(&self) -> Vec<String> {
        self.body["tools"]
            .as_array()
            .map(|tools| {
                tools
                    .iter()
                    .map(|tool| {
                        tool["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// An answer a [`FakeModel`] gives, in the order scripted.
#[derive(Clone, Debug)]
pub struct Scripted {
    status: u16,
    headers: Vec<(String, String)>,
    body: ScriptedBody,
    delay: std::time::Duration,
}

/// What a [`Scripted`] answer's body is.
#[derive(Clone, Debug)]
enum ScriptedBody {
    /// JSON, served as `application/json`.
    Json(Value),
    /// These bytes, served with this content type.
    Raw {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Scripted {
    /// A chat completion answering `text`, with this usage.
    pub fn answer(text: &str, prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self::completion(
            &json!({"role": "assistant", "content": text}),
            "stop",
            prompt_tokens,
            completion_tokens,
        )
    }

    /// A chat completion calling functions: `(call id, function name, arguments as JSON text)`.
    pub fn tool_calls(
        calls: &[(&str, &str, &str)],
        prompt_tokens: u32,
        completion_tokens: u32,
    ) -> Self {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(id, name, arguments)| {
                json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}})
            })
            .collect();
        Self::completion(
            &json!({"role": "assistant", "content": null, "tool_calls": calls}),
            "tool_calls",
            prompt_tokens,
            completion_tokens,
        )
    }

    fn completion(
        message: &Value,
        finish: &str,
        prompt_tokens: u32,
        completion_tokens: u32,
    ) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            delay: std::time::Duration::ZERO,
            body: ScriptedBody::Json(json!({
                "id": "chatcmpl-test", "object": "chat.completion", "created": 1_764_000_000,
                "model": "fake-model",
                "choices": [{"index": 0, "message": message.clone(), "finish_reason": finish}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}
            })),
        }
    }

    /// An error status with an OpenAI-style error body and these headers.
    pub fn error(status: u16, message: &str, headers: &[(&str, &str)]) -> Self {
        Self {
            status,
            headers: headers
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect(),
            body: ScriptedBody::Json(json!({"error": {"message": message, "type": "test_error"}})),
            delay: std::time::Duration::ZERO,
        }
    }

    /// Any JSON answer with status 200 (a custom agent's reply, say).
    pub fn json(body: Value) -> Self {
        Self {
            status: 200,
            headers: Vec::new(),
            body: ScriptedBody::Json(body),
            delay: std::time::Duration::ZERO,
        }
    }

    /// Any body, with this status and content type (JSON served as text, an HTML error page...).
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: ScriptedBody::Raw {
                content_type: content_type.to_owned(),
                bytes: body.into(),
            },
            delay: std::time::Duration::ZERO,
        }
    }

    /// The same answer, given only after `delay`.
    pub fn after(self, delay: std::time::Duration) -> Self {
        Self { delay, ..self }
    }
}

#[derive(Default)]
struct FakeModelState {
    script: std::collections::VecDeque<Scripted>,
    received: Vec<ModelRequest>,
}

/// A local OpenAI-compatible server that answers from a script, over real HTTP:
/// - `/tools/...`: echoes `{"method", "path", "query", "body"}` (for `api` tools and plugin
///   operations);
/// - any other path: the next scripted answer (500 once the script is used up).
///
/// Every request is recorded.
#[derive(Clone)]
pub struct FakeModel {
    address: SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<FakeModelState>>,
}

impl FakeModel {
    /// Starts the server on a loopback port.
    pub async fn start() -> Self {
        use poem::{
            EndpointExt, IntoResponse, Request, Response, handler, http::StatusCode, web::Data,
        };
        type Shared = std::sync::Arc<std::sync::Mutex<FakeModelState>>;

        #[handler]
        async fn any(request: &Request, body: poem::Body, state: Data<&Shared>) -> Response {
            let bytes = body.into_vec().await.unwrap_or_default();
            let received = ModelRequest {
                method: request.method().to_string(),
                path: request.uri().path().to_owned(),
                query: request.uri().query().unwrap_or_default().to_owned(),
                headers: request
                    .headers()
                    .iter()
                    .map(|(name, value)| {
                        (
                            name.as_str().to_ascii_lowercase(),
                            value.to_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                at: std::time::Instant::now(),
            };
            let scripted = {
                let mut state = state
                    .0
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state.received.push(received.clone());
                if received.path.starts_with("/tools/") {
                    None
                } else {
                    Some(state.script.pop_front().unwrap_or_else(|| {
                        Scripted::error(500, "the script has no answer left", &[])
                    }))
                }
            };
            let Some(scripted) = scripted else {
                return poem::web::Json(json!({
                    "method": received.method, "path": received.path,
                    "query": received.query, "body": received.body,
                }))
                .into_response();
            };
            tokio::time::sleep(scripted.delay).await;
            let status = StatusCode::from_u16(scripted.status).unwrap_or(StatusCode::IM_A_TEAPOT);
            let mut response = match scripted.body {
                ScriptedBody::Json(body) => {
                    poem::web::Json(body).with_status(status).into_response()
                }
                ScriptedBody::Raw {
                    content_type,
                    bytes,
                } => Response::builder()
                    .status(status)
                    .content_type(content_type)
                    .body(bytes),
            };
            for (name, value) in scripted.headers {
                if let (Ok(name), Ok(value)) = (
                    poem::http::HeaderName::from_bytes(name.as_bytes()),
                    poem::http::HeaderValue::from_str(&value),
                ) {
                    response.headers_mut().insert(name, value);
                }
            }
            response
        }

        let state: Shared = std::sync::Arc::default();
        let app = poem::Route::new().at("/*path", any).data(state.clone());
        let (address, _) = serve_on_loopback(app).await;
        Self { address, state }
    }

    /// The URL of `path` on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Adds answers to the end of the script.
    pub fn script(&self, answers: impl IntoIterator<Item = Scripted>) {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .script
            .extend(answers);
    }

    /// Every request received so far.
    pub fn received(&self) -> Vec<ModelRequest> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .received
            .clone()
    }

    /// The requests received at paths not under `/tools/` (model and endpoint calls).
    pub fn model_calls(&self) -> Vec<ModelRequest> {
        self.received()
            .into_iter()
            .filter(|request| !request.path.starts_with("/tools/"))
            .collect()
    }
}

/// The published OpenAPI document, parsed once.
fn published_document() -> &'static Value {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| match serde_json::from_str(&ipa_api::openapi_json()) {
        Ok(document) => document,
        Err(err) => panic!("the published OpenAPI document is not JSON: {err}"),
    })
}

/// The document's operation for `method path`, if it has one.
fn documented_operation(method: &Method, path_and_query: &str) -> Option<&'static Value> {
    let path = path_and_query.split('?').next().unwrap_or_default();
    // A literal segment wins over a parameter (`/agents/{id}` against `/agents/{id}/tools`
    // never clash, but be exact).
    published_document()["paths"]
        .as_object()?
        .iter()
        .filter(|(template, _)| template_matches(template, path))
        .min_by_key(|(template, _)| template.matches('{').count())
        .and_then(|(_, item)| item.get(method.as_str().to_lowercase()))
}

/// Fails the test when the error `code` is not among those the document lists for `status` of
/// `method path` (its `x-error-codes`).
///
/// # Panics
/// When the code is not listed.
pub fn assert_code_declared(method: &Method, path_and_query: &str, status: u16, code: &str) {
    let Some(operation) = documented_operation(method, path_and_query) else {
        return;
    };
    let listed = &operation["responses"][status.to_string()][ipa_api::responses::ERROR_CODES];
    assert!(
        listed
            .as_array()
            .is_some_and(|codes| codes.iter().any(|known| known == code)),
        "{method} {path_and_query} answered {status} {code}, a code the document does not list \
         for {} (it lists {listed})",
        operation["operationId"]
    );
}

/// Whether the document's path template (`/workflows/{id}`) matches `path`.
fn template_matches(template: &str, path: &str) -> bool {
    let mut actual = path.split('/');
    let matched = template.split('/').all(|segment| match actual.next() {
        Some(part) if segment.starts_with('{') => !part.is_empty(),
        Some(part) => part == segment,
        None => false,
    });
    matched && actual.next().is_none()
}

/// Fails the test when `status` is not among the responses the published document declares for
/// `method path`: every answer the tests see is one the document promises. Requests to paths
/// the document does not have, or with methods it does not list there, are not held to it.
///
/// # Panics
/// When the status is undeclared.
pub fn assert_declared(method: &Method, path_and_query: &str, status: u16) {
    let Some(operation) = documented_operation(method, path_and_query) else {
        return;
    };
    let responses = &operation["responses"];
    assert!(
        responses.get(status.to_string()).is_some(),
        "{method} {path_and_query} answered {status}, which the document does not declare for {} \
         (it declares {:?})",
        operation["operationId"],
        responses.as_object().map(|r| r.keys().collect::<Vec<_>>())
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_whole_paths_only() {
        assert!(template_matches("/workflows/{id}", "/workflows/abc"));
        assert!(!template_matches("/workflows/{id}", "/workflows/"));
        assert!(!template_matches(
            "/workflows/{id}",
            "/workflows/abc/versions"
        ));
        assert!(!template_matches(
            "/workflows/{id}/versions",
            "/workflows/abc"
        ));
    }

    #[test]
    fn a_declared_status_passes_and_other_paths_are_not_held_to_the_document() {
        assert_declared(&Method::GET, "/me", 401);
        assert_declared(&Method::GET, "/workflows?limit=2", 400);
        assert_declared(&Method::GET, "/no/such/path", 409);
        assert_declared(&Method::PUT, "/me", 405);
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn an_undeclared_status_fails() {
        assert_declared(&Method::GET, "/me", 409);
    }

    #[test]
    fn a_listed_code_passes() {
        assert_code_declared(
            &Method::POST,
            "/workflows/x/executions",
            409,
            "workflow_not_active",
        );
        assert_code_declared(&Method::GET, "/no/such/path", 404, "anything");
    }

    #[test]
    #[should_panic(expected = "does not list")]
    fn an_unlisted_code_fails() {
        assert_code_declared(
            &Method::POST,
            "/workflows/x/executions",
            409,
            "last_superuser",
        );
    }
}
