//! The EXPLAIN checks: each documented filter of the list endpoints planned at the seeded volume,
//! as the benchmark user (the owner role switched to `ipa_app` with the user's settings, so row
//! level security applies), and refused when any plan node reads a seeded table sequentially.

use serde_json::Value;

use crate::database::{BenchDatabase, OWNER};
use crate::seed::{self, Table};
use crate::sql::{self, Acting};

/// The seeded tables (their partitions are named after them).
const SEEDED: [&str; 6] = [
    "users",
    "workflows",
    "workflow_versions",
    "executions",
    "execution_steps",
    "execution_logs",
];

/// One planned filter.
pub struct Check {
    /// The filter, as the README documents it.
    pub name: String,
    /// The seeded tables holding rows read sequentially (`Seq Scan on ...`).
    pub seq_scans: Vec<String>,
    /// Empty partitions read sequentially: PostgreSQL rightly reads an empty table whole, and
    /// it costs nothing.
    pub empty_scans: Vec<String>,
    /// The plan's total cost estimate.
    pub cost: f64,
}

/// The sequential scans of seeded tables in an `EXPLAIN (FORMAT JSON)` document.
pub fn seq_scans(plan: &Value) -> Vec<String> {
    fn walk(node: &Value, found: &mut Vec<String>) {
        if node["Node Type"] == "Seq Scan"
            && let Some(relation) = node["Relation Name"].as_str()
            && SEEDED
                .iter()
                .any(|table| relation == *table || relation.starts_with(&format!("{table}_")))
        {
            found.push(relation.to_owned());
        }
        if let Some(children) = node["Plans"].as_array() {
            for child in children {
                walk(child, found);
            }
        }
    }
    let mut found = Vec::new();
    if let Some(documents) = plan.as_array() {
        for document in documents {
            walk(&document["Plan"], &mut found);
        }
    }
    found
}

/// The queries checked: `(filter, SQL)`, values inlined.
pub fn queries(user: &str, deep: (&str, &str), volumes: seed::Volumes) -> Vec<(String, String)> {
    let workflow = Table::Workflow.id(seed::owned_workflow(7));
    let execution = Table::Execution.id(seed::owned_workflow(7) + volumes.workflows);
    let step = Table::Step.id(4 * (seed::owned_workflow(7) + volumes.workflows));
    let workflows = |name: &str, condition: &str| {
        (
            format!("GET /workflows {name}"),
            sql::list_workflows(condition),
        )
    };
    let executions = |name: &str, condition: Option<&str>| {
        (
            format!("GET /executions {name}"),
            sql::list_executions(condition),
        )
    };
    let logs = |name: &str, condition: Option<&str>| {
        (
            format!("GET /executions/{{id}}/logs {name}"),
            sql::read_logs(&format!("'{execution}'::uuid"), condition),
        )
    };
    vec![
        workflows("(no filter)", "true"),
        workflows("?status=archived", "w.status = 'archived'::workflow_status"),
        workflows("?tags=compliance", "w.tags @> '{compliance}'::text[]"),
        workflows(
            "?metadata={\"team\":\"team-17\"}",
            "w.metadata @> '{\"team\": \"team-17\"}'::jsonb",
        ),
        workflows("?name=flow 12", "w.name ILIKE '%flow 12%' ESCAPE '\\'"),
        workflows(
            "?owner_id=<self>",
            &format!("w.created_by = '{user}'::uuid"),
        ),
        (
            "GET /workflows/{id}".to_owned(),
            sql::find_workflow(&format!("'{workflow}'::uuid")),
        ),
        executions("(no filter, first page)", None),
        executions(
            "deep cursor",
            Some(&format!(
                "(e.created_at, e.id) < ('{}'::timestamptz, '{}'::uuid)",
                deep.0, deep.1
            )),
        ),
        executions(
            "?workflow_id=<one>",
            Some(&format!("e.workflow_id = '{workflow}'::uuid")),
        ),
        executions(
            "?status=paused",
            Some("e.status = 'paused'::execution_status"),
        ),
        executions(
            "?triggered_by=<self>",
            Some(&format!("e.triggered_by = '{user}'::uuid")),
        ),
        executions(
            "?created_after=<7 days ago>",
            Some("e.created_at >= now() - interval '7 days'"),
        ),
        executions(
            "?created_before=<80 days ago>",
            Some("e.created_at < now() - interval '80 days'"),
        ),
        logs("(first page)", None),
        logs("?min_level=warning", Some("level >= 'warning'::log_level")),
        logs(
            "?step_id=<one>",
            Some(&format!("execution_step_id = '{step}'::uuid")),
        ),
    ]
}

/// Plans every query as `user`.
pub async fn run(
    database: &BenchDatabase,
    user: &str,
    deep: (&str, &str),
    volumes: seed::Volumes,
) -> anyhow::Result<Vec<Check>> {
    let empty: Vec<String> = database
        .query(
            "SELECT relname FROM pg_class WHERE relkind = 'r' AND reltuples <= 0 \
             AND relname LIKE 'execution\\_logs\\_%'",
        )
        .await?
        .lines()
        .map(|line| line.trim().to_owned())
        .filter(|line| !line.is_empty())
        .collect();
    let mut checks = Vec::new();
    for (index, (name, query)) in queries(user, deep, volumes).into_iter().enumerate() {
        let script = format!(
            "\\o /dev/null\n{}\n\\o\nEXPLAIN (FORMAT JSON) {}\n",
            sql::settings(Acting::Literal(user)),
            query
        );
        let path = database.write(&format!("explain-{index}.sql"), &script)?;
        let path = path.to_string_lossy().into_owned();
        let output = database.psql(OWNER, &["-1", "-f", &path]).await?;
        let plan: Value = serde_json::from_str(output.trim())
            .map_err(|error| anyhow::anyhow!("reading the plan of {name}: {error}: {output}"))?;
        let (empty_scans, seq_scans): (Vec<String>, Vec<String>) = seq_scans(&plan)
            .into_iter()
            .partition(|relation| empty.contains(relation));
        checks.push(Check {
            name,
            seq_scans,
            empty_scans,
            cost: plan[0]["Plan"]["Total Cost"].as_f64().unwrap_or(f64::NAN),
        });
    }
    Ok(checks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_scans_of_seeded_tables_are_found_anywhere_in_the_plan() {
        let plan: Value = serde_json::from_str(
            r#"[{"Plan": {"Node Type": "Limit", "Plans": [
                {"Node Type": "Nested Loop", "Plans": [
                    {"Node Type": "Index Scan", "Relation Name": "executions"},
                    {"Node Type": "Seq Scan", "Relation Name": "workflow_versions"}
                ]},
                {"Node Type": "Seq Scan", "Relation Name": "execution_logs_default"},
                {"Node Type": "Seq Scan", "Relation Name": "sessions"},
                {"Node Type": "Seq Scan", "Relation Name": "workflowsx"}
            ]}}]"#,
        )
        .unwrap();
        assert_eq!(
            seq_scans(&plan),
            vec![
                "workflow_versions".to_owned(),
                "execution_logs_default".to_owned()
            ]
        );
        let clean: Value = serde_json::from_str(
            r#"[{"Plan": {"Node Type": "Index Scan", "Relation Name": "workflows"}}]"#,
        )
        .unwrap();
        assert!(seq_scans(&clean).is_empty());
        assert!(seq_scans(&Value::Null).is_empty());
    }

    #[test]
    fn every_documented_filter_is_checked() {
        let queries = queries(
            "00000000-0000-4000-8000-000000000001",
            (
                "2026-01-01T00:00:00Z",
                "40000000-0000-4000-8000-000000000001",
            ),
            seed::Volumes::SMALL,
        );
        let names: Vec<&str> = queries.iter().map(|(name, _)| name.as_str()).collect();
        for filter in [
            "tags",
            "metadata",
            "status",
            "name",
            "owner_id",
            "workflow_id",
            "triggered_by",
            "created_after",
            "created_before",
            "deep cursor",
            "min_level",
            "step_id",
        ] {
            assert!(
                names.iter().any(|name| name.contains(filter)),
                "{filter} in {names:?}"
            );
        }
    }
}
