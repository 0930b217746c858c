//! The schema against real PostgreSQL: its migrations, its conformance to the seed document, and
//! its behaviour (triggers, checks, partitions, row level security, roles, audit).

// Test helpers panic on failure by design: the panic is the test's failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod behaviour;
mod conformance;
mod execution_plans;
mod identity;
mod leak_matrix;
mod migrations;
mod pooling;
mod support;
mod workflow_plans;
mod workflows;
