//! The execution engine: workers that claim pending runs, execute their steps (webhook, approval,
//! agent) and record every result. The engine arrives with the executions work; this crate fixes
//! its place in the dependency graph (it depends on the execution context, never the reverse).
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

pub mod schemas;
pub mod templates;

pub use schemas::{JsonSchemas, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH};
pub use templates::{RenderError, Templates};
