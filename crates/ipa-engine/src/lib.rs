//! The execution engine ([`engine`]): workers that claim ready runs, execute their steps (webhook
//! calls through [`webhook`], approvals, LLM agents through [`agent`]) and record every result through
//! the execution context's journal port, which `ipa-store` implements.
//!
//! It also owns the template language of workflow definitions ([`templates`]): the checker the
//! workflow context uses to compile a version's templates and conditions at publish, and the
//! rendering and evaluation the engine uses while a run executes.
//!
//! And it owns the JSON Schemas of agent tools ([`schemas`]): the checker the agent context uses
//! to compile a tool's parameters schema when the tool is configured, and the validation the
//! engine applies to a language model's tool-call arguments before calling the tool. Both live
//! here because the engine is where schemas and templates are used at run time; the contexts only
//! need the checks, through their ports.

pub mod agent;
pub mod engine;
pub mod schemas;
pub mod templates;
pub mod webhook;

pub use agent::{AgentRunner, MAX_TOOL_ROUNDS, OPENAI_BASE_URL};
pub use engine::{Engine, EngineOptions, Signal};
pub use schemas::{JsonSchemas, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH};
pub use templates::{RenderError, Templates};
pub use webhook::{
    MAX_RESPONSE_BYTES, WebhookClient, WebhookFailure, WebhookRequest, WebhookResponse,
    render_request,
};

/// `text` cut to its first `max` characters, `…` and then `note` marking the cut; `text` whole
/// when it is no longer. Messages quote what clients and callees sent, which may be any length.
pub(crate) fn clip(text: &str, max: usize, note: &str) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…{note}", &text[..end]),
        None => text.to_owned(),
    }
}
