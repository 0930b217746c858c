//! What handlers share: the store and the context services wired over it. It travels with each
//! request as poem data, so the API structs (and the OpenAPI document) need no database.

use std::sync::Arc;
use std::time::Duration;

use ipa_agent::AgentService;
use ipa_execution::ExecutionService;
use ipa_identity::{CryptoError, IdentityPolicy, IdentityService};
use ipa_security::{Argon2Hasher, RandomTokens, SecretBox};
use ipa_store::{
    EXECUTION_LOGS_CHANNEL, EXECUTIONS_CHANNEL, Notifications, PgAgents, PgExecutions, PgSessions,
    PgUsers, PgWorkflows, SESSIONS_CHANNEL, SessionCache, Store,
};
use ipa_template::{JsonSchemas, Templates};
use ipa_workflow::WorkflowService;

/// The identity service as the platform runs it.
pub type Identity = IdentityService<PgUsers, PgSessions, Argon2Hasher, RandomTokens>;

/// The workflow service as the platform runs it.
pub type Workflows = WorkflowService<PgWorkflows, Templates>;

/// The agent service as the platform runs it.
pub type Agents = AgentService<PgAgents, SecretBox, JsonSchemas>;

/// The execution service as the platform runs it.
pub type Executions = ExecutionService<PgExecutions>;

/// The services behind the API.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Users, sign-in and sessions.
    pub identity: Arc<Identity>,
    /// Workflows and their versions.
    pub workflows: Arc<Workflows>,
    /// Agents and their tools.
    pub agents: Arc<Agents>,
    /// Runs, their steps and log lines.
    pub executions: Arc<Executions>,
    /// The process's database notifications (run status changes, new log lines, session
    /// changes), for event streams, the engine's workers and the session cache.
    pub notifications: Notifications,
}

impl AppState {
    /// Wires the services over `store`, sealing secrets with `secrets`, and starts listening for
    /// the database's notifications; authenticated tokens are remembered for `session_cache`
    /// (none when zero; see [`SessionCache`]). Computes the password hasher's dummy hash, so call
    /// it once at startup (within the async runtime).
    pub fn new(
        store: Store,
        policy: IdentityPolicy,
        secrets: SecretBox,
        session_cache: Duration,
    ) -> Result<Self, CryptoError> {
        let notifications = Notifications::listen(
            &store,
            &[EXECUTIONS_CHANNEL, EXECUTION_LOGS_CHANNEL, SESSIONS_CHANNEL],
        );
        let cache = SessionCache::new(session_cache, &notifications);
        let identity = IdentityService::new(
            PgUsers::new(store.clone()).with_cache(cache.clone()),
            PgSessions::new(store.clone()).with_cache(cache),
            Argon2Hasher::new()?,
            RandomTokens,
            policy,
        );
        let workflows = WorkflowService::new(PgWorkflows::new(store.clone()), Templates::new());
        let agents = AgentService::new(PgAgents::new(store.clone()), secrets, JsonSchemas::new());
        Ok(Self {
            identity: Arc::new(identity),
            workflows: Arc::new(workflows),
            agents: Arc::new(agents),
            executions: Arc::new(ExecutionService::new(PgExecutions::new(store.clone()))),
            notifications,
            store,
        })
    }
}
