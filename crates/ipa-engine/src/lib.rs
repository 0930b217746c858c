//! The execution engine: workers that claim pending runs, execute their steps (webhook, approval,
//! agent) and record every result. The engine arrives with the executions work; this crate fixes
//! its place in the dependency graph (it depends on the execution context, never the reverse).
//!
//! It also owns the template language of workflow definitions ([`templates`]): the checker the
//! workflow context uses to compile a version's templates and conditions at publish, and the
//! rendering and evaluation the engine uses while a run executes.

pub mod templates;

pub use templates::{RenderError, Templates};
