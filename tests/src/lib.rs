//! Support for the end-to-end tests: a real server on a real socket over a database of its own.

use std::net::SocketAddr;

use ipa_store::testing::TestDatabase;
use poem::listener::{Acceptor, Listener, TcpListener};

/// A running server and the database behind it; both end when it is dropped.
pub struct TestServer {
    address: SocketAddr,
    client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
    _database: TestDatabase,
}

impl TestServer {
    /// A server over a fully migrated database.
    pub async fn start() -> Self {
        Self::over(TestDatabase::migrated().await).await
    }

    /// A server over the given database.
    ///
    /// # Panics
    /// When the server cannot be started: the test cannot run without it.
    pub async fn over(database: TestDatabase) -> Self {
        let store = database.store().await;
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
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run(ipa_api::app(store))
                .await;
        });
        Self {
            address,
            client: reqwest::Client::new(),
            task,
            _database: database,
        }
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
        match self.client.get(self.url(path)).send().await {
            Ok(response) => response,
            Err(err) => panic!("GET {path}: {err}"),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
