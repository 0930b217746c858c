//! Migration `m20251124_000012_agent_catalog`: what the agent catalog needs beyond the seed: the
//! list's index, tool names and types checked by the schema, the lookups behind a group
//! conversation's participants and an agent's users (past row level security, ids and names
//! only), and a lock that keeps a version from naming an agent being deleted. The SQL is in
//! `sql/m20251124_000012_agent_catalog.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251124_000012_agent_catalog",
    up: include_str!("sql/m20251124_000012_agent_catalog.up.sql"),
    down: include_str!("sql/m20251124_000012_agent_catalog.down.sql"),
};
