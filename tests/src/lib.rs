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
