//! The `ipa` binary itself: its subcommands, the embedded PostgreSQL, start-up refusals and clean
//! shutdown, driven as an operator would drive it.

// Test helpers panic on failure by design: the panic is the test's failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod agents;
mod binary;
mod embedded;
mod external;
mod openapi;
mod users;
