//! The agent context's errors: one enum per kind of operation, each variant a distinct outcome
//! the API answers differently.

use ipa_kernel::StorageError;

use crate::AgentStatus;
use crate::agent::AgentUsage;
use crate::ports::DocumentProblem;
use crate::values::ToolName;

/// Every problem of an agent or tool as written, each at its JSON pointer into the request body.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the request has {} problem(s)", .0.len())]
pub struct InvalidRequest(pub Vec<DocumentProblem>);

/// Reading an agent or its tools failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentQueryError {
    /// No such agent, or not one the actor may see.
    #[error("no such agent")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Creating an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum CreateAgentError {
    /// The agent as written has problems, all listed.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Changing an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateAgentError {
    /// No such agent, or not one the actor may see.
    #[error("no such agent")]
    NotFound,
    /// The actor may see the agent but not change it.
    #[error("only the agent's creator or a superuser may change it")]
    Forbidden,
    /// The status cannot move that way.
    #[error("an agent that is {from} cannot become {to}")]
    IllegalTransition {
        /// The current status.
        from: AgentStatus,
        /// The status asked for.
        to: AgentStatus,
    },
    /// The agent as changed has problems, all listed.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Deleting an agent failed.
#[derive(Debug, thiserror::Error)]
pub enum DeleteAgentError {
    /// No such agent, or not one the actor may see.
    #[error("no such agent")]
    NotFound,
    /// The actor may see the agent but not delete it.
    #[error("only the agent's creator or a superuser may delete it")]
    Forbidden,
    /// Workflows or group conversations still use it.
    #[error("{0}; change them first, or deprecate the agent instead")]
    InUse(AgentUsage),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// An operation on an agent's tools failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// No such agent, or not one the actor may see.
    #[error("no such agent")]
    AgentNotFound,
    /// The agent has no such tool.
    #[error("the agent has no such tool")]
    ToolNotFound,
    /// The actor may see the agent but not change its tools.
    #[error("only the agent's creator or a superuser may change its tools")]
    Forbidden,
    /// Another tool of the agent has this name.
    #[error(
        "the agent already has a tool named `{0}`; tool names are function names and must be unique per agent"
    )]
    DuplicateName(ToolName),
    /// The agent has as many tools as it may.
    #[error("an agent has at most {0} tools (the most a model is offered at once)")]
    TooManyTools(usize),
    /// The tool as written has problems, all listed.
    #[error(transparent)]
    Invalid(#[from] InvalidRequest),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
