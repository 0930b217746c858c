//! The execution engine: workers that claim pending runs, execute their steps (webhook, approval,
//! agent) and record every result. The engine arrives with the executions work; this crate fixes
//! its place in the dependency graph (it depends on the execution context, never the reverse).
