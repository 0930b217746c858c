//! Migration `m20251120_000005_agents`: the agents schema. The SQL is in `sql/m20251120_000005_agents.{up,down}.sql`.

pub(crate) const MIGRATION: crate::SqlMigration = crate::SqlMigration {
    name: "m20251120_000005_agents",
    up: include_str!("sql/m20251120_000005_agents.up.sql"),
    down: include_str!("sql/m20251120_000005_agents.down.sql"),
};
