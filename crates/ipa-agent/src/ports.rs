//! What the agent context needs from the outside world: a JSON Schema compiler (tool parameters),
//! a sealer for secret values and an opener for them, and somewhere to keep agents and tools. Infrastructure implements
//! them (`ipa-template`, `ipa-security`, `ipa-store`).

use std::future::Future;

use ipa_kernel::{Actor, AgentId, AgentToolId, Page, PageRequest, StorageError};
use serde_json::Value;

use crate::agent::{Agent, AgentFilter, AgentSettings};
use crate::error::{CreateAgentError, DeleteAgentError, ToolError, UpdateAgentError};
use crate::secret::{PlainSecret, SealedSecret, StoredSecret};
use crate::tool::{AgentTool, ToolSettings};
use crate::values::ToolName;

/// A problem inside a document, at a JSON pointer relative to that document's root (`""` for the
/// root itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentProblem {
    /// Where, as an RFC 6901 pointer.
    pub pointer: String,
    /// What is wrong, in a sentence a person can act on.
    pub message: String,
}

/// Compiles JSON Schemas (tool parameters, plugin operation schemas).
pub trait SchemaChecker: Send + Sync {
    /// Every problem of `schema` as a JSON Schema, each at its pointer inside the schema; empty
    /// when it compiles.
    fn schema_problems(&self, schema: &Value) -> Vec<DocumentProblem>;
}

/// Why a secret value could not be sealed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The server has no key to encrypt with.
    #[error(
        "this server has no key to encrypt secrets (IPA_SECRET_KEY is not set); give the secret \
         as {{\"env\": \"NAME\"}} instead, or ask an operator to configure a key"
    )]
    NoKey,
    /// Encryption failed.
    #[error("cannot encrypt the secret: {0}")]
    Failed(String),
}

/// Encrypts secret values before they are stored.
pub trait SecretSealer: Send + Sync {
    /// Seals `secret`, bound to `binding` (the resource and place it belongs to): it opens only
    /// with the same binding, so a sealed value copied elsewhere is useless.
    fn seal(&self, secret: &PlainSecret, binding: &str) -> Result<SealedSecret, SealError>;
}

/// Reads stored secrets back when an agent runs: opens sealed values, reads `{"env"}` references
/// from the worker's environment.
pub trait SecretOpener: Send + Sync {
    /// The plain secret `stored` holds, given the `binding` it was sealed with; the error says
    /// what an operator must fix and never contains the secret.
    fn reveal(&self, stored: &StoredSecret, binding: &str) -> Result<PlainSecret, String>;
}

/// Where agents and their tools are kept. Every method acts for an [`Actor`] and storage
/// enforces visibility itself: an agent the actor may not see is indistinguishable from a missing
/// one. Writes that involve rules needing other rows (a group's participants, a tool count, what
/// uses an agent) check them in the same transaction as the write.
pub trait AgentRepository: Send + Sync + 'static {
    /// Creates an agent owned by the actor, after checking its participants (for a group) with
    /// [`crate::participant_problems`].
    fn create(
        &self,
        actor: &Actor,
        id: AgentId,
        settings: &AgentSettings,
    ) -> impl Future<Output = Result<Agent, CreateAgentError>> + Send;

    /// The agent, if the actor may see it.
    fn find(
        &self,
        actor: &Actor,
        id: AgentId,
    ) -> impl Future<Output = Result<Option<Agent>, StorageError>> + Send;

    /// The agents the actor may see that match `filter`, newest first.
    fn list(
        &self,
        actor: &Actor,
        filter: &AgentFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Page<Agent>, StorageError>> + Send;

    /// Replaces the agent's settings by what `change` makes of the current agent, under a lock
    /// on it; refuses actors who may not change it before calling `change`.
    fn update<F>(
        &self,
        actor: &Actor,
        id: AgentId,
        change: F,
    ) -> impl Future<Output = Result<Agent, UpdateAgentError>> + Send
    where
        F: FnOnce(&Agent) -> Result<AgentSettings, UpdateAgentError> + Send;

    /// Deletes the agent and its tools, unless a current workflow version or a group
    /// conversation uses it.
    fn delete(
        &self,
        actor: &Actor,
        id: AgentId,
    ) -> impl Future<Output = Result<(), DeleteAgentError>> + Send;

    /// Every tool of the agent (at most the store's limit of tools per agent), by name; `None`
    /// when the agent is not visible.
    fn tools(
        &self,
        actor: &Actor,
        agent: AgentId,
    ) -> impl Future<Output = Result<Option<Vec<AgentTool>>, StorageError>> + Send;

    /// One page of the agent's tools by name, after the tool named `page.after`; `None` when
    /// the agent is not visible.
    fn tools_page(
        &self,
        actor: &Actor,
        agent: AgentId,
        page: PageRequest<ToolName>,
    ) -> impl Future<Output = Result<Option<Page<AgentTool, ToolName>>, StorageError>> + Send;

    /// One tool of the agent.
    fn tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> impl Future<Output = Result<AgentTool, ToolError>> + Send;

    /// Adds a tool to the agent.
    fn create_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        id: AgentToolId,
        settings: &ToolSettings,
    ) -> impl Future<Output = Result<AgentTool, ToolError>> + Send;

    /// Replaces a tool's settings by what `change` makes of the current tool, under a lock.
    fn update_tool<F>(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
        change: F,
    ) -> impl Future<Output = Result<AgentTool, ToolError>> + Send
    where
        F: FnOnce(&AgentTool) -> Result<ToolSettings, ToolError> + Send;

    /// Removes a tool from the agent.
    fn delete_tool(
        &self,
        actor: &Actor,
        agent: AgentId,
        tool: AgentToolId,
    ) -> impl Future<Output = Result<(), ToolError>> + Send;
}
