//! PostgreSQL persistence for the IPA platform.
//!
//! This crate owns everything that talks to the database: the connection pool ([`Store`]), the
//! request-scoped transaction that carries the actor into PostgreSQL ([`ActorTransaction`]), the
//! contexts' repositories ([`identity`], [`workflows`], [`agents`]), the schema's lifecycle
//! (migrations, readiness, role safety: [`schema`]), scheduled upkeep
//! ([`maintenance`]), and local PostgreSQL clusters for the embedded mode and the tests
//! ([`cluster`]). SeaORM types stay inside it; the contexts see only their ports.

pub mod agents;
mod audit;
pub mod cluster;
/// The schema's tables as SeaORM entities, generated from the migrated schema by
/// `scripts/generate-entities` (`just entities`) and never edited by hand; continuous integration
/// fails when they differ from what the script generates. Private: the contexts see only their
/// ports and domain types.
mod entity;
pub mod error;
pub mod executions;
pub mod identity;
mod labels;
pub mod maintenance;
pub mod notifications;
pub mod runs;
pub mod schema;
mod session_cache;
mod sql;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod workflows;

pub use agents::PgAgents;
pub use error::{StoreError, sql_state};
pub use executions::PgExecutions;
pub use identity::{PgSessions, PgUsers};
pub use notifications::{
    EXECUTION_LOGS_CHANNEL, EXECUTIONS_CHANNEL, Notification, Notifications, SESSIONS_CHANNEL,
};
pub use runs::PgRunJournal;
pub use session_cache::SessionCache;
pub use store::{ActorTransaction, DatabaseTarget, PoolOptions, Pooling, Store};
pub use workflows::PgWorkflows;
