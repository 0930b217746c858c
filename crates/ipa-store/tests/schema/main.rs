//! The schema against real PostgreSQL: its migrations, its conformance to the seed document, and
//! its behaviour (triggers, checks, partitions, row level security, roles, audit).

mod behaviour;
mod conformance;
mod migrations;
mod support;
