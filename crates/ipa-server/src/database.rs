//! Opening the platform's database: the operator's (`DATABASE_URL`) or the embedded one.

use anyhow::Context;
use ipa_store::{PoolOptions, Store};

use crate::config::GlobalOptions;
use crate::embedded::EmbeddedPostgres;

/// The open database, and the embedded cluster behind it when there is one.
#[derive(Debug)]
pub struct Database {
    /// The pool, connected as the schema's owner.
    pub store: Store,
    embedded: Option<EmbeddedPostgres>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts the embedded PostgreSQL and connects to it.
    pub async fn open(global: &GlobalOptions) -> anyhow::Result<Self> {
        let options = PoolOptions {
            max_connections: global.db_max_connections,
            acquire_timeout: std::time::Duration::from_millis(global.db_acquire_timeout_ms),
        };
        match global.database_target()? {
            Some(target) => {
                let store = Store::connect_to(&target, options).await?;
                Ok(Self {
                    store,
                    embedded: None,
                })
            }
            None => {
                let embedded = EmbeddedPostgres::start(global).await?;
                match Store::connect(&embedded.owner_url(), options).await {
                    Ok(store) => Ok(Self {
                        store,
                        embedded: Some(embedded),
                    }),
                    Err(err) => {
                        embedded.stop().await;
                        Err(err).context("connecting to the embedded PostgreSQL")
                    }
                }
            }
        }
    }

    /// The embedded mode's data directory; `None` with an operator's database.
    pub fn embedded_data_dir(&self) -> Option<&std::path::Path> {
        self.embedded.as_ref().map(EmbeddedPostgres::data_dir)
    }

    /// Closes the pool, then stops the embedded cluster if this process started it.
    pub async fn close(self) -> anyhow::Result<()> {
        let closed = self.store.close().await;
        if let Some(embedded) = self.embedded {
            embedded.stop().await;
        }
        closed.context("closing the database pool")
    }
}
