//! Conformance to the seed document: every table, column (type, nullability, default),
//! constraint, index, trigger, policy and enum value it names exists, as the design corrects it.

use std::collections::BTreeMap;

use ipa_store::testing::TestDatabase;
use sea_orm::TryGetable;

use crate::support::{TABLES, rows_as_owner};

const TZ: &str = "timestamp with time zone";
const NOW: &str = "now()";
const UUID_DEFAULT: &str = "gen_random_uuid()";

/// (table, column, type, NOT NULL, default expression as PostgreSQL prints it; "" for none).
const COLUMNS: &[(&str, &str, &str, bool, &str)] = &[
    ("users", "id", "uuid", true, UUID_DEFAULT),
    ("users", "email", "character varying(255)", true, ""),
    ("users", "username", "character varying(100)", true, ""),
    ("users", "full_name", "character varying(255)", false, ""),
    (
        "users",
        "hashed_password",
        "character varying(255)",
        true,
        "",
    ),
    ("users", "is_active", "boolean", false, "true"),
    ("users", "is_superuser", "boolean", false, "false"),
    ("users", "created_at", TZ, false, NOW),
    ("users", "updated_at", TZ, false, NOW),
    ("users", "last_login_at", TZ, false, ""),
    ("workflows", "id", "uuid", true, UUID_DEFAULT),
    ("workflows", "name", "character varying(255)", true, ""),
    ("workflows", "description", "text", false, ""),
    ("workflows", "created_by", "uuid", true, ""),
    (
        "workflows",
        "status",
        "workflow_status",
        false,
        "'draft'::workflow_status",
    ),
    ("workflows", "current_version_id", "uuid", false, ""),
    ("workflows", "tags", "text[]", false, ""),
    ("workflows", "metadata", "jsonb", false, "'{}'::jsonb"),
    ("workflows", "created_at", TZ, false, NOW),
    ("workflows", "updated_at", TZ, false, NOW),
    ("workflow_versions", "id", "uuid", true, UUID_DEFAULT),
    ("workflow_versions", "workflow_id", "uuid", true, ""),
    ("workflow_versions", "version_number", "integer", true, ""),
    ("workflow_versions", "definition", "jsonb", true, ""),
    ("workflow_versions", "change_summary", "text", false, ""),
    ("workflow_versions", "created_by", "uuid", true, ""),
    ("workflow_versions", "created_at", TZ, false, NOW),
    ("executions", "id", "uuid", true, UUID_DEFAULT),
    ("executions", "workflow_id", "uuid", true, ""),
    ("executions", "workflow_version_id", "uuid", true, ""),
    ("executions", "triggered_by", "uuid", true, ""),
    (
        "executions",
        "status",
        "execution_status",
        false,
        "'pending'::execution_status",
    ),
    ("executions", "input_data", "jsonb", false, "'{}'::jsonb"),
    ("executions", "output_data", "jsonb", false, ""),
    ("executions", "error_message", "text", false, ""),
    ("executions", "started_at", TZ, false, ""),
    ("executions", "completed_at", TZ, false, ""),
    ("executions", "duration_ms", "integer", false, ""),
    ("executions", "retry_count", "integer", false, "0"),
    ("executions", "metadata", "jsonb", false, "'{}'::jsonb"),
    ("executions", "created_at", TZ, false, NOW),
    ("executions", "updated_at", TZ, false, NOW),
    ("execution_steps", "id", "uuid", true, UUID_DEFAULT),
    ("execution_steps", "execution_id", "uuid", true, ""),
    (
        "execution_steps",
        "step_name",
        "character varying(255)",
        true,
        "",
    ),
    ("execution_steps", "step_index", "integer", true, ""),
    (
        "execution_steps",
        "step_type",
        "character varying(100)",
        true,
        "",
    ),
    (
        "execution_steps",
        "status",
        "step_status",
        false,
        "'pending'::step_status",
    ),
    ("execution_steps", "input_data", "jsonb", false, ""),
    ("execution_steps", "output_data", "jsonb", false, ""),
    ("execution_steps", "error_message", "text", false, ""),
    ("execution_steps", "started_at", TZ, false, ""),
    ("execution_steps", "completed_at", TZ, false, ""),
    ("execution_steps", "duration_ms", "integer", false, ""),
    ("execution_steps", "retry_count", "integer", false, "0"),
    ("execution_steps", "created_at", TZ, false, NOW),
    ("execution_steps", "updated_at", TZ, false, NOW),
    (
        "execution_logs",
        "id",
        "bigint",
        true,
        "nextval('execution_logs_id_seq'::regclass)",
    ),
    ("execution_logs", "execution_id", "uuid", true, ""),
    ("execution_logs", "execution_step_id", "uuid", false, ""),
    ("execution_logs", "level", "log_level", true, ""),
    ("execution_logs", "message", "text", true, ""),
    ("execution_logs", "context", "jsonb", false, "'{}'::jsonb"),
    // Part of the partitioned table's primary key, hence NOT NULL (design §4.1).
    ("execution_logs", "created_at", TZ, true, NOW),
    ("agents", "id", "uuid", true, UUID_DEFAULT),
    ("agents", "name", "character varying(255)", true, ""),
    ("agents", "description", "text", false, ""),
    ("agents", "type", "agent_type", true, ""),
    (
        "agents",
        "status",
        "agent_status",
        false,
        "'active'::agent_status",
    ),
    ("agents", "configuration", "jsonb", true, ""),
    ("agents", "system_prompt", "text", false, ""),
    ("agents", "model_name", "character varying(100)", false, ""),
    ("agents", "temperature", "numeric(3,2)", false, "0.7"),
    ("agents", "max_tokens", "integer", false, "1000"),
    ("agents", "created_by", "uuid", true, ""),
    ("agents", "created_at", TZ, false, NOW),
    ("agents", "updated_at", TZ, false, NOW),
    ("agent_tools", "id", "uuid", true, UUID_DEFAULT),
    ("agent_tools", "agent_id", "uuid", true, ""),
    (
        "agent_tools",
        "tool_name",
        "character varying(255)",
        true,
        "",
    ),
    (
        "agent_tools",
        "tool_type",
        "character varying(100)",
        true,
        "",
    ),
    ("agent_tools", "configuration", "jsonb", true, ""),
    ("agent_tools", "is_enabled", "boolean", false, "true"),
    ("agent_tools", "created_at", TZ, false, NOW),
    ("agent_tools", "updated_at", TZ, false, NOW),
    (
        "audit_logs",
        "id",
        "bigint",
        true,
        "nextval('audit_logs_id_seq'::regclass)",
    ),
    ("audit_logs", "user_id", "uuid", false, ""),
    ("audit_logs", "action", "audit_action", true, ""),
    (
        "audit_logs",
        "resource_type",
        "character varying(100)",
        true,
        "",
    ),
    ("audit_logs", "resource_id", "uuid", false, ""),
    ("audit_logs", "changes", "jsonb", false, ""),
    ("audit_logs", "ip_address", "inet", false, ""),
    ("audit_logs", "user_agent", "text", false, ""),
    ("audit_logs", "created_at", TZ, true, NOW),
];

/// (table, constraint, what its definition must contain).
const CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("users", "users_pkey", "PRIMARY KEY (id)"),
    ("users", "users_email_key", "UNIQUE (email)"),
    ("users", "users_username_key", "UNIQUE (username)"),
    ("users", "email_format", "[A-Z|a-z]{2,}$"),
    ("workflows", "workflows_pkey", "PRIMARY KEY (id)"),
    (
        "workflows",
        "workflows_created_by_fkey",
        "REFERENCES users(id) ON DELETE RESTRICT",
    ),
    (
        "workflows",
        "name_not_empty",
        "length(TRIM(BOTH FROM name)) > 0",
    ),
    (
        "workflows",
        "fk_current_version",
        "FOREIGN KEY (id, current_version_id) REFERENCES workflow_versions(workflow_id, id) ON DELETE SET NULL (current_version_id)",
    ),
    (
        "workflow_versions",
        "workflow_versions_pkey",
        "PRIMARY KEY (id)",
    ),
    (
        "workflow_versions",
        "workflow_versions_workflow_id_fkey",
        "REFERENCES workflows(id) ON DELETE CASCADE",
    ),
    (
        "workflow_versions",
        "workflow_versions_created_by_fkey",
        "REFERENCES users(id) ON DELETE RESTRICT",
    ),
    (
        "workflow_versions",
        "workflow_versions_workflow_id_version_number_key",
        "UNIQUE (workflow_id, version_number)",
    ),
    (
        "workflow_versions",
        "version_number_positive",
        "version_number > 0",
    ),
    ("executions", "executions_pkey", "PRIMARY KEY (id)"),
    (
        "executions",
        "executions_workflow_id_fkey",
        "REFERENCES workflows(id) ON DELETE RESTRICT",
    ),
    (
        "executions",
        "executions_workflow_version_id_fkey",
        "REFERENCES workflow_versions(id) ON DELETE RESTRICT",
    ),
    (
        "executions",
        "executions_triggered_by_fkey",
        "REFERENCES users(id) ON DELETE RESTRICT",
    ),
    ("executions", "duration_positive", "duration_ms >= 0"),
    ("executions", "retry_count_non_negative", "retry_count >= 0"),
    (
        "executions",
        "completed_after_started",
        "(completed_at IS NULL) OR (completed_at >= started_at)",
    ),
    (
        "executions",
        "fk_executions_version_of_workflow",
        "FOREIGN KEY (workflow_id, workflow_version_id) REFERENCES workflow_versions(workflow_id, id)",
    ),
    (
        "execution_steps",
        "execution_steps_pkey",
        "PRIMARY KEY (id)",
    ),
    (
        "execution_steps",
        "execution_steps_execution_id_fkey",
        "REFERENCES executions(id) ON DELETE CASCADE",
    ),
    (
        "execution_steps",
        "step_index_non_negative",
        "step_index >= 0",
    ),
    ("execution_steps", "duration_positive", "duration_ms >= 0"),
    (
        "execution_logs",
        "execution_logs_pkey",
        "PRIMARY KEY (id, created_at)",
    ),
    (
        "execution_logs",
        "execution_logs_execution_id_fkey",
        "REFERENCES executions(id) ON DELETE CASCADE",
    ),
    (
        "execution_logs",
        "execution_logs_execution_step_id_fkey",
        "REFERENCES execution_steps(id) ON DELETE CASCADE",
    ),
    ("agents", "agents_pkey", "PRIMARY KEY (id)"),
    (
        "agents",
        "agents_created_by_fkey",
        "REFERENCES users(id) ON DELETE RESTRICT",
    ),
    (
        "agents",
        "name_not_empty",
        "length(TRIM(BOTH FROM name)) > 0",
    ),
    (
        "agents",
        "temperature_range",
        "(temperature >= (0)::numeric) AND (temperature <= (2)::numeric)",
    ),
    ("agents", "max_tokens_positive", "max_tokens > 0"),
    ("agent_tools", "agent_tools_pkey", "PRIMARY KEY (id)"),
    (
        "agent_tools",
        "agent_tools_agent_id_fkey",
        "REFERENCES agents(id) ON DELETE CASCADE",
    ),
    (
        "agent_tools",
        "agent_tools_agent_id_tool_name_key",
        "UNIQUE (agent_id, tool_name)",
    ),
    (
        "audit_logs",
        "audit_logs_pkey",
        "PRIMARY KEY (id, created_at)",
    ),
    (
        "audit_logs",
        "audit_logs_user_id_fkey",
        "REFERENCES users(id) ON DELETE SET NULL",
    ),
];

/// (index, what its definition must contain).
const INDEXES: &[(&str, &str)] = &[
    ("idx_users_email", "users USING btree (email)"),
    ("idx_users_username", "users USING btree (username)"),
    ("idx_users_is_active", "users USING btree (is_active)"),
    (
        "idx_workflows_created_by",
        "workflows USING btree (created_by)",
    ),
    ("idx_workflows_status", "workflows USING btree (status)"),
    ("idx_workflows_tags", "workflows USING gin (tags)"),
    ("idx_workflows_metadata", "workflows USING gin (metadata)"),
    (
        "idx_workflow_versions_workflow_id",
        "workflow_versions USING btree (workflow_id)",
    ),
    (
        "idx_workflow_versions_created_at",
        "workflow_versions USING btree (created_at DESC)",
    ),
    (
        "idx_executions_workflow_id",
        "executions USING btree (workflow_id)",
    ),
    (
        "idx_executions_triggered_by",
        "executions USING btree (triggered_by)",
    ),
    ("idx_executions_status", "executions USING btree (status)"),
    (
        "idx_executions_created_at",
        "executions USING btree (created_at DESC)",
    ),
    (
        "idx_executions_completed_at",
        "executions USING btree (completed_at DESC) WHERE (completed_at IS NOT NULL)",
    ),
    (
        "idx_executions_list",
        "executions USING btree (workflow_id, created_at DESC) INCLUDE (status, triggered_by)",
    ),
    (
        "idx_execution_steps_execution_id",
        "execution_steps USING btree (execution_id)",
    ),
    (
        "idx_execution_steps_status",
        "execution_steps USING btree (status)",
    ),
    (
        "idx_execution_steps_step_index",
        "execution_steps USING btree (execution_id, step_index)",
    ),
    (
        "idx_execution_logs_execution_id",
        "execution_logs USING btree (execution_id)",
    ),
    (
        "idx_execution_logs_step_id",
        "execution_logs USING btree (execution_step_id)",
    ),
    (
        "idx_execution_logs_level",
        "execution_logs USING btree (level)",
    ),
    (
        "idx_execution_logs_created_at",
        "execution_logs USING btree (created_at DESC)",
    ),
    ("idx_agents_status", "agents USING btree (status)"),
    ("idx_agents_type", "agents USING btree (type)"),
    ("idx_agents_created_by", "agents USING btree (created_by)"),
    (
        "idx_agent_tools_agent_id",
        "agent_tools USING btree (agent_id)",
    ),
    (
        "idx_agent_tools_is_enabled",
        "agent_tools USING btree (is_enabled)",
    ),
    ("idx_audit_logs_user_id", "audit_logs USING btree (user_id)"),
    (
        "idx_audit_logs_resource",
        "audit_logs USING btree (resource_type, resource_id)",
    ),
    (
        "idx_audit_logs_created_at",
        "audit_logs USING btree (created_at DESC)",
    ),
    ("idx_audit_logs_action", "audit_logs USING btree (action)"),
    (
        "workflow_execution_stats_workflow_id_idx",
        "CREATE UNIQUE INDEX workflow_execution_stats_workflow_id_idx ON public.workflow_execution_stats USING btree (workflow_id)",
    ),
];

/// (table, trigger, what its definition must contain).
const TRIGGERS: &[(&str, &str, &str)] = &[
    (
        "users",
        "update_users_updated_at",
        "BEFORE UPDATE ON public.users FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    (
        "workflows",
        "update_workflows_updated_at",
        "BEFORE UPDATE ON public.workflows FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    (
        "executions",
        "update_executions_updated_at",
        "BEFORE UPDATE ON public.executions FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    (
        "execution_steps",
        "update_execution_steps_updated_at",
        "BEFORE UPDATE ON public.execution_steps FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    (
        "agents",
        "update_agents_updated_at",
        "BEFORE UPDATE ON public.agents FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()",
    ),
    (
        "executions",
        "calculate_execution_duration_trigger",
        "BEFORE UPDATE ON public.executions FOR EACH ROW WHEN (((new.completed_at IS NOT NULL) AND (old.completed_at IS NULL))) EXECUTE FUNCTION calculate_execution_duration()",
    ),
    (
        "execution_steps",
        "calculate_execution_step_duration_trigger",
        "BEFORE UPDATE ON public.execution_steps FOR EACH ROW WHEN (((new.completed_at IS NOT NULL) AND (old.completed_at IS NULL))) EXECUTE FUNCTION calculate_execution_duration()",
    ),
    (
        "workflows",
        "workflow_audit_trigger",
        "AFTER INSERT OR DELETE OR UPDATE ON public.workflows FOR EACH ROW",
    ),
];

async fn strings(store: &ipa_store::Store, sql: &str) -> Vec<Vec<String>> {
    rows_as_owner(store, sql)
        .await
        .iter()
        .map(|row| {
            (0..)
                .map_while(|index| String::try_get_by_index(row, index).ok())
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn every_table_column_constraint_index_and_trigger_of_the_seed_exists() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let mut missing = Vec::new();

    let columns: BTreeMap<(String, String), (String, String, String)> = strings(
        &store,
        "SELECT c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), \
                a.attnotnull::text, coalesce(pg_get_expr(d.adbin, d.adrelid), '') \
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
          WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped",
    )
    .await
    .into_iter()
    .map(|row| {
        (
            (row[0].clone(), row[1].clone()),
            (row[2].clone(), row[3].clone(), row[4].clone()),
        )
    })
    .collect();
    for (table, column, kind, not_null, default) in COLUMNS {
        let expected = (kind.to_string(), not_null.to_string(), default.to_string());
        match columns.get(&(table.to_string(), column.to_string())) {
            Some(actual) if *actual == expected => {}
            actual => missing.push(format!(
                "column {table}.{column}: want {expected:?}, got {actual:?}"
            )),
        }
    }

    let constraints: BTreeMap<(String, String), String> = strings(
        &store,
        "SELECT conrelid::regclass::text, conname::text, pg_get_constraintdef(oid) \
           FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    )
    .await
    .into_iter()
    .map(|row| ((row[0].clone(), row[1].clone()), row[2].clone()))
    .collect();
    for (table, name, fragment) in CONSTRAINTS {
        match constraints.get(&(table.to_string(), name.to_string())) {
            Some(definition) if definition.contains(fragment) => {}
            actual => missing.push(format!(
                "constraint {table}.{name} containing {fragment:?}: got {actual:?}"
            )),
        }
    }

    let indexes: BTreeMap<String, String> = strings(
        &store,
        "SELECT indexname::text, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    )
    .await
    .into_iter()
    .map(|row| (row[0].clone(), row[1].clone()))
    .collect();
    for (name, fragment) in INDEXES {
        match indexes.get(*name) {
            Some(definition) if definition.contains(fragment) => {}
            actual => missing.push(format!(
                "index {name} containing {fragment:?}: got {actual:?}"
            )),
        }
    }

    let triggers: BTreeMap<(String, String), String> = strings(
        &store,
        "SELECT tgrelid::regclass::text, tgname::text, pg_get_triggerdef(oid) \
           FROM pg_trigger WHERE NOT tgisinternal",
    )
    .await
    .into_iter()
    .map(|row| ((row[0].clone(), row[1].clone()), row[2].clone()))
    .collect();
    for (table, name, fragment) in TRIGGERS {
        match triggers.get(&(table.to_string(), name.to_string())) {
            Some(definition) if definition.contains(fragment) => {}
            actual => missing.push(format!(
                "trigger {table}.{name} containing {fragment:?}: got {actual:?}"
            )),
        }
    }
    // Every table that has updated_at keeps it current, the seed's five and agent_tools.
    for table in [
        "users",
        "workflows",
        "executions",
        "execution_steps",
        "agents",
        "agent_tools",
    ] {
        if !triggers.values().any(|def| {
            def.contains(&format!(
                "ON public.{table} FOR EACH ROW EXECUTE FUNCTION update_updated_at_column()"
            ))
        }) {
            missing.push(format!("updated_at trigger on {table}"));
        }
    }

    let functions = strings(
        &store,
        "SELECT proname::text FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
    )
    .await
    .concat();
    for function in [
        "update_updated_at_column",
        "calculate_execution_duration",
        "ipa_audit_row_change",
    ] {
        if !functions.iter().any(|name| name == function) {
            missing.push(format!("function {function}"));
        }
    }

    let view_columns = strings(
        &store,
        "SELECT a.attname::text FROM pg_attribute a \
          WHERE a.attrelid = 'workflow_execution_stats'::regclass AND a.attnum > 0 ORDER BY a.attnum",
    )
    .await
    .concat();
    assert_eq!(
        view_columns,
        [
            "workflow_id",
            "total_executions",
            "successful_count",
            "failed_count",
            "avg_duration_ms"
        ]
    );

    assert!(
        missing.is_empty(),
        "the schema lacks seed objects:\n{}",
        missing.join("\n")
    );
}

#[tokio::test]
async fn enum_values_match_the_seed_and_the_domain() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let enums: BTreeMap<String, Vec<String>> = strings(
        &store,
        "SELECT t.typname::text, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
           FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY t.typname",
    )
    .await
    .into_iter()
    .map(|row| {
        (
            row[0].clone(),
            row[1].split(',').map(str::to_owned).collect(),
        )
    })
    .collect();
    let expected: [(&str, Vec<&str>); 7] = [
        ("workflow_status", ipa_workflow::WorkflowStatus::labels()),
        ("execution_status", ipa_execution::ExecutionStatus::labels()),
        ("step_status", ipa_execution::StepStatus::labels()),
        ("log_level", ipa_execution::LogLevel::labels()),
        ("agent_type", ipa_agent::AgentType::labels()),
        ("agent_status", ipa_agent::AgentStatus::labels()),
        ("audit_action", ipa_audit::AuditAction::labels()),
    ];
    for (name, labels) in expected {
        assert_eq!(
            enums
                .get(name)
                .map(|v| v.iter().map(String::as_str).collect::<Vec<_>>()),
            Some(labels),
            "{name}"
        );
    }
    // The seed's own lists, so the domain cannot drift from the document either.
    assert_eq!(enums["workflow_status"], ["draft", "active", "archived"]);
    assert_eq!(
        enums["execution_status"],
        [
            "pending",
            "running",
            "paused",
            "completed",
            "failed",
            "cancelled"
        ]
    );
    assert_eq!(
        enums["step_status"],
        ["pending", "running", "completed", "failed", "skipped"]
    );
    assert_eq!(
        enums["log_level"],
        ["debug", "info", "warning", "error", "critical"]
    );
    assert_eq!(
        enums["agent_type"],
        ["semantic_kernel", "autogen", "custom"]
    );
    assert_eq!(enums["agent_status"], ["active", "inactive", "deprecated"]);
    assert_eq!(
        enums["audit_action"],
        [
            "create", "update", "delete", "login", "logout", "execute", "cancel"
        ]
    );
}

#[tokio::test]
async fn every_table_has_forced_row_level_security_and_policies() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let rows = strings(
        &store,
        "SELECT c.relname::text, c.relrowsecurity::text, c.relforcerowsecurity::text, \
                (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid)::text \
           FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')",
    )
    .await;
    for table in TABLES {
        let row = rows
            .iter()
            .find(|row| row[0] == *table)
            .unwrap_or_else(|| panic!("no table {table}"));
        assert_eq!(row[1], "true", "{table}: row level security not enabled");
        assert_eq!(row[2], "true", "{table}: row level security not forced");
        assert_ne!(row[3], "0", "{table}: no policy");
    }
    let workflow_policies = strings(
        &store,
        "SELECT policyname::text FROM pg_policies WHERE tablename = 'workflows' ORDER BY 1",
    )
    .await
    .concat();
    assert_eq!(
        workflow_policies,
        ["admin_workflows_policy", "user_workflows_policy"]
    );
}

#[tokio::test]
async fn logs_are_partitioned_by_month_with_a_default_partition() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    for parent in ["execution_logs", "audit_logs"] {
        let strategy = strings(
            &store,
            &format!(
                "SELECT pg_get_partkeydef('{parent}'::regclass), \
                        pg_get_constraintdef((SELECT oid FROM pg_constraint WHERE conrelid = '{parent}'::regclass AND contype = 'p'))"
            ),
        )
        .await;
        assert_eq!(
            strategy[0],
            ["RANGE (created_at)", "PRIMARY KEY (id, created_at)"],
            "{parent}"
        );

        let partitions: BTreeMap<String, String> = strings(
            &store,
            &format!(
                "SELECT c.relname::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i \
                   JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '{parent}'::regclass"
            ),
        )
        .await
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
        assert_eq!(
            partitions
                .get(&format!("{parent}_default"))
                .map(String::as_str),
            Some("DEFAULT")
        );
        assert!(
            partitions.contains_key(&format!("{parent}_2025_11")),
            "{parent}: the seed's partition"
        );
        let months = strings(
            &store,
            "SELECT to_char(date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n), 'YYYY_MM') \
               FROM generate_series(0, 3) AS n",
        )
        .await
        .concat();
        for month in months {
            let bound = partitions.get(&format!("{parent}_{month}"));
            assert!(
                bound.is_some_and(|b| b.starts_with("FOR VALUES FROM")),
                "{parent}: partition for {month} got {bound:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_domain_email_rule_is_the_schemas_email_format_check() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let check = strings(
        &store,
        "SELECT pg_get_expr(conbin, conrelid) FROM pg_constraint WHERE conname = 'email_format'",
    )
    .await;
    let expression = &check[0][0];
    let candidates = [
        "a@b.co",
        "A@B.CO",
        "first.last+tag@sub.example.org",
        "x%y@z.io",
        "under_score@x-y.travel",
        "a@b.c|d",
        "a@b..co",
        "a@.b.co",
        ".a@b.co",
        "a@b-.co",
        "plain",
        "@b.co",
        "a@",
        "a@b",
        "a@b.c",
        "a@b.c0",
        "a@@b.co",
        "a b@c.co",
        "a@b c.co",
        "a@b.co.",
        "a@b.co-",
        "é@b.co",
        "a@é.co",
        "a@b.çom",
        "a!@b.co",
        "a@b_c.co",
        "a@b.co\t",
        "-@-.--",
        "1@2.ab",
        "a@b.12",
    ];
    for candidate in candidates {
        let accepted_by_schema: bool = rows_as_owner(
            &store,
            &format!(
                "SELECT {expression} FROM (SELECT {}::varchar(255) AS email) AS candidate",
                // The domain trims surrounding space before checking; the schema sees what is stored.
                sea_orm::Value::from(candidate.trim().to_owned())
            ),
        )
        .await[0]
            .try_get_by_index(0)
            .unwrap();
        assert_eq!(
            ipa_identity::Email::parse(candidate).is_ok(),
            accepted_by_schema,
            "{candidate:?}: the domain and the schema disagree"
        );
    }
}
