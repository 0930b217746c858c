//! The documents inside workflow definitions and agent tools, checked when they are published or
//! configured and applied while a run executes.
//!
//! It owns the template language of workflow definitions ([`templates`]): the checker the
//! workflow context uses to compile a version's templates and conditions at publish, and the
//! rendering and evaluation the engine uses while a run executes.
//!
//! And it owns the JSON Schemas of agent tools ([`schemas`]): the checker the agent context uses
//! to compile a tool's parameters schema when the tool is configured, and the validation the
//! engine applies to a language model's tool-call arguments before calling the tool.
//!
//! Both are pure computation (no runtime, no network, no database): the API checks documents
//! with them without depending on the engine, and the engine applies them at run time; the
//! contexts only need the checks, through their ports.

pub mod schemas;
pub mod templates;

pub use schemas::{JsonSchemas, MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH};
pub use templates::{RenderError, Templates};
