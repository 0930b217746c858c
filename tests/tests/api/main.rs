//! The HTTP API end to end: real server, real socket, real PostgreSQL.

// Test helpers panic on failure by design: the panic is the test's failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agent_answers;
mod agent_steps;
mod agents;
mod auth;
mod backup;
mod executions;
mod health;
mod interleaving;
mod limits_documents;
mod limits_door;
mod outage;
mod users;
mod workflows;
