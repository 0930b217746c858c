#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`agent`]: the agent aggregate, its status's transitions, the checks of a group
//!   conversation's participants, and the list filter;
//! - [`values`]: names, descriptions, prompts, model settings, tool names and URLs;
//! - [`config`]: agent configurations, one shape per agent type;
//! - [`tool`]: agent tools: built-in functions, HTTP calls and OpenAPI plugins;
//! - [`secret`]: secrets inside configurations, as given, as kept, and in between;
//! - [`functions`]: what an agent's model is offered when it runs, and how stored secrets are
//!   opened for it;
//! - [`ports`]: what the context needs from the outside world;
//! - [`service`]: creating, reading, changing and deleting agents and their tools;
//! - [`error`]: one error enum per kind of operation.

pub mod agent;
pub mod config;
mod document;
pub mod error;
#[cfg(test)]
mod fakes;
pub mod functions;
pub mod ports;
pub mod secret;
pub mod service;
pub mod tool;
pub mod values;

pub use agent::{
    Agent, AgentFilter, AgentSettings, AgentUsage, ParticipantState, UsingGroup, UsingWorkflow,
    participant_problems,
};
pub use config::{
    AgentConfiguration, EndpointConfiguration, GroupConfiguration, HeaderValue, Headers, MapSecret,
    ModelConfiguration, Provider, ProviderKind, ReadSecret,
};
pub use error::{
    AgentQueryError, CreateAgentError, DeleteAgentError, InvalidRequest, ToolError,
    UpdateAgentError,
};
pub use functions::{
    BODY_ARGUMENT, FunctionTarget, OfferedFunction, agent_binding, reveal_agent, reveal_tool,
    tool_binding,
};
pub use ports::{
    AgentRepository, DocumentProblem, SchemaChecker, SealError, SecretOpener, SecretSealer,
};
pub use secret::{
    EnvVarName, MAX_SECRET_BYTES, PlainSecret, SealedSecret, SecretInput, StoredSecret,
    shown_secret,
};
pub use service::{AgentChanges, AgentService, NewAgent, NewTool, ToolChanges};
pub use tool::{
    AgentTool, ApiCall, BuiltinFunction, HttpMethod, OperationParameter, ParameterLocation, Plugin,
    PluginOperation, ToolConfiguration, ToolSettings, ToolType, UrlTemplate, fill_placeholders,
};
pub use values::{
    AgentName, AgentValueError, Description, HttpUrl, MaxTokens, ModelName, NameFragment,
    SystemPrompt, Temperature, ToolName,
};

ipa_kernel::label_enum!(
    /// The kind of agent, which decides how its configuration reads. Stored as `agent_type`.
    AgentType, "agent type" {
        /// One model with function calling.
        SemanticKernel => "semantic_kernel",
        /// A group conversation between agents.
        Autogen => "autogen",
        /// An HTTP endpoint of the user's own.
        Custom => "custom",
    }
);

ipa_kernel::label_enum!(
    /// Whether an agent may be used. Stored as `agent_status`.
    AgentStatus, "agent status" {
        /// Usable.
        Active => "active",
        /// Temporarily unusable.
        Inactive => "inactive",
        /// Retired: no new workflow version may use it.
        Deprecated => "deprecated",
    }
);
