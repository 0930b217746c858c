//! The SQL the server runs for each measured request, transaction for transaction, as pgbench
//! scripts (the "pgbench equivalent" of every row), and as the queries the EXPLAIN checks plan.
//!
//! Each piece names the store function it mirrors (`crates/ipa-store/src/...`). The store builds
//! most of its statements with SeaORM's query builder; the copies here say the same in plain SQL
//! (the same tables, columns, conditions, order, limits and round trips; the builder's quoting and
//! `LIMIT` parameters aside). When the store changes what it sends, change the mirror here: the
//! comparison is only as honest as the copy.
//!
//! pgbench variables: `uid` (the benchmark user), `owned`, `startable`, `runs` (counts from the seed), `deep_at` and
//! `deep_id` (the deep cursor's position). Ids are computed from integers with the seed's formulas
//! ([`crate::seed::Table`]). The server binds values as parameters; pgbench in prepared mode does
//! the same with its variables.

use crate::load::Operation;
use crate::seed::{self, Table};

/// The client address and user agent every measured request carries (the load sends this
/// user agent; the server records the TCP peer's address).
pub const CLIENT_IP: &str = "127.0.0.1";
/// The user agent of the load.
pub const USER_AGENT: &str = "ipa-bench";

/// The columns of a workflow's row with its current version's number (`WorkflowRow` of
/// `crates/ipa-store/src/workflows.rs`).
pub const WORKFLOW_COLUMNS: &str = "w.id, w.name, w.description, w.created_by, \
     coalesce(w.status, 'draft')::text AS status, w.current_version_id, \
     v.version_number AS current_version_number, to_jsonb(coalesce(w.tags, '{}')) AS tags, \
     coalesce(w.metadata, '{}') AS metadata, coalesce(w.created_at, now()) AS created_at, \
     coalesce(w.updated_at, w.created_at, now()) AS updated_at";

/// `with_current_version` of `crates/ipa-store/src/workflows.rs`.
pub const WORKFLOW_FROM: &str =
    "workflows w LEFT JOIN workflow_versions v ON v.id = w.current_version_id";

/// A version's columns as `crates/ipa-store/src/workflows.rs` reads them.
const SUMMARY_COLUMNS: &str = "v.id, v.workflow_id, v.version_number, v.change_summary, \
     v.created_by, coalesce(v.created_at, now()) AS created_at";

/// The columns of a run (`RunRow` of `crates/ipa-store/src/executions.rs`).
pub const EXECUTION_COLUMNS: &str = "e.id, e.workflow_id, e.workflow_version_id, \
     v.version_number, e.triggered_by, coalesce(e.status, 'pending')::text AS status, \
     e.waiting_step_id, coalesce(e.input_data, '{}') AS input_data, e.output_data, \
     e.error_message, e.started_at, e.completed_at, e.duration_ms::bigint AS duration_ms, \
     coalesce(e.retry_count, 0) AS retry_count, e.recoveries, \
     coalesce(e.created_at, now()) AS created_at, \
     coalesce(e.updated_at, e.created_at, now()) AS updated_at";

/// `runs` of `crates/ipa-store/src/executions.rs`.
pub const EXECUTION_FROM: &str =
    "executions e LEFT JOIN workflow_versions v ON v.id = e.workflow_version_id";

/// A step's columns (`execution_steps::Model`, read by `crates/ipa-store/src/executions.rs`).
const STEP_COLUMNS: &str = "s.id, s.execution_id, s.step_name, s.step_index, \
     s.step_type, coalesce(s.status, 'pending')::text AS status, s.input_data, s.output_data, \
     s.error_message, s.started_at, s.completed_at, s.duration_ms::bigint AS duration_ms, \
     coalesce(s.retry_count, 0) AS retry_count";

/// A log line's columns (`execution_logs::Model`, read by `crates/ipa-store/src/executions.rs`).
pub const LOG_COLUMNS: &str = "id, execution_id, execution_step_id, level::text AS level, message, \
     coalesce(context, '{}') AS context, created_at";

/// Every column of `users`, as `users::Entity::find()` of `crates/ipa-store/src/identity.rs`
/// selects them (the sign-in's lookup).
const USER_COLUMNS: &str = "id, email, username, full_name, hashed_password, is_active, \
     is_superuser, created_at, updated_at, last_login_at";

/// `THROTTLE_SQL` of `crates/ipa-store/src/identity.rs`, its parameters as pgbench variables
/// and the server's default policy (15-minute window, 5 per account, 50 per address, unsettled
/// attempts counted for 60 s).
const THROTTLE_SQL: &str = "\
WITH last_success AS ( \
    SELECT max(attempted_at) AS at FROM login_attempts WHERE identifier = :ident AND succeeded \
), account AS ( \
    SELECT attempted_at FROM login_attempts \
     WHERE identifier = :ident \
       AND (succeeded IS FALSE OR (succeeded IS NULL AND attempted_at > now() - 60.0 * interval '1 second')) \
       AND attempted_at > now() - 900.0 * interval '1 second' \
       AND attempted_at > coalesce((SELECT at FROM last_success), '-infinity') \
     ORDER BY attempted_at DESC OFFSET 5 - 1 LIMIT 1 \
), address AS ( \
    SELECT ipa_address_failure_at(900.0, 50, 60.0) AS attempted_at \
) \
SELECT extract(epoch FROM greatest((SELECT attempted_at FROM account), (SELECT attempted_at FROM address)) \
                         + 900.0 * interval '1 second' - clock_timestamp())::float8 AS locked_for;";

/// The identifier pgbench's client `n` signs in with: the account the load's client `n` uses
/// ([`crate::api::sign_in_account`]).
const SIGN_IN_IDENTIFIER: &str = "('bench-signin-' || :client_id)";

/// Who a transaction acts as, for its first statement.
#[derive(Clone, Copy, Debug)]
pub enum Acting<'a> {
    /// No one, signing in with [`SIGN_IN_IDENTIFIER`] (`PgSessions::signing_in`, admitting an
    /// attempt).
    SigningIn,
    /// The account found, `:u_id`, in a sign-in's context (`PgSessions::signing_in`, starting a
    /// session).
    SignedIn,
    /// The benchmark user (`Store::begin`).
    User,
    /// The engine: the system actor, a superuser with no client (`PgRunJournal::begin`).
    System,
    /// A user given literally, for EXPLAIN scripts run through psql.
    Literal(&'a str),
}

/// The first statement of every transaction: `TransactionScope::settings` of
/// `crates/ipa-store/src/store.rs` (session pooling).
pub fn settings(acting: Acting<'_>) -> String {
    let literal = |text: &str| format!("'{text}'");
    let (user, superuser, ip, agent, identifier, token) = match acting {
        Acting::SigningIn => (
            literal(""),
            "false",
            literal(CLIENT_IP),
            literal(USER_AGENT),
            SIGN_IN_IDENTIFIER.to_owned(),
            literal(""),
        ),
        Acting::SignedIn => (
            ":u_id".to_owned(),
            "false",
            literal(CLIENT_IP),
            literal(USER_AGENT),
            SIGN_IN_IDENTIFIER.to_owned(),
            literal(""),
        ),
        Acting::User => (
            ":uid".to_owned(),
            "false",
            literal(CLIENT_IP),
            literal(USER_AGENT),
            literal(""),
            literal(""),
        ),
        Acting::System => (
            literal(""),
            "true",
            literal(""),
            literal(""),
            literal(""),
            literal(""),
        ),
        Acting::Literal(user) => (
            literal(user),
            "false",
            literal(CLIENT_IP),
            literal(USER_AGENT),
            literal(""),
            literal(""),
        ),
    };
    format!(
        "SELECT set_config('role', 'ipa_app', true), set_config('app.current_user_id', {user}, true), \
         set_config('app.is_superuser', '{superuser}', true), set_config('app.client_ip', {ip}, true), \
         set_config('app.user_agent', {agent}, true), set_config('app.login_identifier', {identifier}, true), \
         set_config('app.session_token_hash', {token}, true), set_config('jit', 'off', true);"
    )
}

/// One transaction: `BEGIN`, the settings, the statements, `COMMIT` (each its own round trip, as
/// the driver sends them).
fn transaction(acting: Acting<'_>, statements: &[String]) -> String {
    let mut script = String::from("BEGIN;\n");
    script.push_str(&settings(acting));
    script.push('\n');
    for statement in statements {
        script.push_str(statement);
        script.push('\n');
    }
    script.push_str("COMMIT;\n");
    script
}

/// pgbench lines picking the owned workflow `:i` at random.
fn pick_owned_workflow() -> String {
    "\\set k random(0, :owned - 1)\n\\set i (:k / 3) * 5 + :k % 3 + 1\n".to_owned()
}

/// `find_workflow` of `crates/ipa-store/src/workflows.rs` (no lock), of workflow `id_sql`.
pub fn find_workflow(id_sql: &str) -> String {
    format!("SELECT {WORKFLOW_COLUMNS} FROM {WORKFLOW_FROM} WHERE w.id = {id_sql};")
}

/// The pgbench script running the same SQL as the server for one request of `operation`: the
/// store functions the operation calls, as named on each arm. No authentication: the server
/// remembers an authenticated token for `IPA_SESSION_CACHE_SECS` (10 s), so the load's requests,
/// each client presenting the same token back to back, reach the database without one (a
/// token's first request, or the first after the period, sends `ipa_authenticate` once).
pub fn script(operation: Operation) -> String {
    let wid = Table::Workflow.sql_id(":i");
    match operation {
        // without the password check: `PgSessions::admit_attempt`, then `PgSessions::start_session`.
        Operation::SignIn => {
            let ident = SIGN_IN_IDENTIFIER;
            let admit = transaction(
                Acting::SigningIn,
                &[
                    format!(
                        "SELECT pg_advisory_xact_lock(hashtextextended('ipa.sign_in:' || {ident}, 0));"
                    ),
                    format!(
                        "SELECT {USER_COLUMNS} FROM users \
                         WHERE email = lower({ident}) OR username = {ident} LIMIT 1 \\gset u_"
                    ),
                    THROTTLE_SQL.replace(":ident", ident),
                    format!(
                        "INSERT INTO login_attempts (identifier, ip_address, succeeded) \
                         VALUES ({ident}, ipa_client_ip(), NULL) RETURNING id AS attempt \\gset"
                    ),
                ],
            );
            let start = transaction(
                Acting::SignedIn,
                &[
                    "UPDATE login_attempts SET succeeded = true WHERE id = :attempt;".to_owned(),
                    "INSERT INTO sessions (user_id, token_hash, idle_expires_at, expires_at, ip_address, user_agent) \
                     VALUES (:u_id::uuid, decode(md5(random()::text) || md5(random()::text), 'hex'), \
                             now() + 28800.0 * interval '1 second', now() + 604800.0 * interval '1 second', \
                             ipa_client_ip(), ipa_user_agent()) \
                     RETURNING id AS session_id, created_at, idle_expires_at, expires_at \\gset"
                        .to_owned(),
                    "UPDATE users SET last_login_at = CURRENT_TIMESTAMP WHERE id = :u_id::uuid;".to_owned(),
                    audit_insert("login", "user", ":u_id::uuid", "jsonb_build_object('outcome', 'success', 'session_id', :session_id::uuid)"),
                ],
            );
            format!("{admit}{start}")
        }
        // `PgWorkflows::find`.
        Operation::GetWorkflow => format!(
            "{}{}",
            pick_owned_workflow(),
            transaction(Acting::User, &[find_workflow(&wid)])
        ),
        // `PgWorkflows::list`.
        Operation::ListByTag => format!(
            "\\set t random(1, 50)\n{}",
            transaction(
                Acting::User,
                &[list_workflows(&format!(
                    "w.tags @> ARRAY[({})[:t::int]]::text[]",
                    seed::tags_array_sql()
                ))]
            )
        ),
        // `PgWorkflows::list`.
        Operation::ListByMetadata => format!(
            "\\set t random(0, {} - 1)\n{}",
            seed::TEAMS,
            transaction(
                Acting::User,
                &[list_workflows(
                    "w.metadata @> ('{\"team\": \"team-' || :t || '\"}')::jsonb"
                )]
            )
        ),
        // `PgExecutions::list`.
        Operation::ListExecutions => transaction(Acting::User, &[list_executions(None)]),
        // `PgExecutions::list` after a position.
        Operation::DeepPage => transaction(
            Acting::User,
            &[list_executions(Some(
                "(e.created_at, e.id) < (:deep_at::timestamptz, :deep_id::uuid)",
            ))],
        ),
        // `PgWorkflows::find` (the service's visibility check), `PgWorkflows::publish` (no agents or approvers to check).
        Operation::Publish => {
            let definition = seed::webhook_definition("https://hooks.example/published");
            format!(
                "{}{}{}",
                pick_owned_workflow(),
                transaction(Acting::User, &[find_workflow(&wid)]),
                transaction(
                    Acting::User,
                    &[
                        format!("SELECT id FROM workflows WHERE id = {wid} FOR UPDATE;"),
                        format!(
                            "INSERT INTO workflow_versions AS v \
                             (workflow_id, version_number, definition, change_summary, created_by) \
                             SELECT {wid}, coalesce(max(version_number), 0) + 1, '{definition}'::jsonb, \
                                    'Published by the benchmark', :uid::uuid \
                             FROM workflow_versions WHERE workflow_id = {wid} \
                             RETURNING {SUMMARY_COLUMNS}, v.definition \\gset p_"
                        ),
                        format!(
                            "UPDATE workflows SET current_version_id = :p_id::uuid WHERE id = {wid};"
                        ),
                    ]
                )
            )
        }
        // `PgExecutions::start`.
        Operation::Start => {
            let wid = Table::Workflow.sql_id(":i");
            let steps = "[{\"name\": \"notify\", \"type\": \"webhook\"}]";
            format!(
                "\\set m random(0, :startable - 1)\n\\set i 10 * :m + 1\n{}",
                transaction(
                    Acting::User,
                    &[
                        format!(
                            "SELECT coalesce(status, 'draft')::text AS status, current_version_id \
                             FROM workflows WHERE id = {wid} FOR KEY SHARE \\gset w_"
                        ),
                        "SELECT id, definition FROM workflow_versions WHERE id = :w_current_version_id::uuid;"
                            .to_owned(),
                        format!(
                            "INSERT INTO executions (workflow_id, workflow_version_id, triggered_by, status, \
                                 input_data, metadata, idempotency_key, idempotency_request) \
                             VALUES ({wid}, :w_current_version_id::uuid, :uid::uuid, 'pending', \
                                     '{{\"order_id\": 1}}'::jsonb, '{{}}', NULL, NULL) \
                             ON CONFLICT (triggered_by, idempotency_key) WHERE idempotency_key IS NOT NULL \
                             DO NOTHING RETURNING id AS eid \\gset"
                        ),
                        format!(
                            "INSERT INTO execution_steps (execution_id, step_name, step_index, step_type, status) \
                             SELECT :eid::uuid, s.step->>'name', (s.position - 1)::int, s.step->>'type', 'pending' \
                             FROM jsonb_array_elements('{steps}'::jsonb) WITH ORDINALITY AS s(step, position);"
                        ),
                        format!(
                            "SELECT {EXECUTION_COLUMNS} FROM {EXECUTION_FROM} WHERE e.id = :eid::uuid;"
                        ),
                        insert_logs(
                            "[{\"step_id\": null, \"level\": \"info\", \"message\": \"Execution started\", \
                              \"context\": {\"event\": \"execution\", \"status\": \"pending\", \"version_number\": 1}}]",
                        ),
                        audit_insert(
                            "execute",
                            "execution",
                            ":eid::uuid",
                            &format!(
                                "jsonb_build_object('workflow_id', {wid}, 'workflow_version_id', \
                                 :w_current_version_id::uuid, 'version_number', 1, 'idempotency_key', NULL)"
                            ),
                        ),
                    ]
                )
            )
        }
        // `PgExecutions::logs`.
        Operation::ReadLogs => {
            let eid = Table::Execution.sql_id(":j");
            format!(
                "{}\\set r random(0, :runs - 1)\n\\set j :i + :r * :workflows\n{}",
                pick_owned_workflow(),
                transaction(
                    Acting::User,
                    &[
                        // The run's id comes back as a variable, so the log query gets it as a
                        // parameter, as the server's does: the seed's formula in its place gave
                        // PostgreSQL's generic plan another shape (a sort over every partition
                        // instead of index scans in id order).
                        format!("SELECT id AS eid FROM executions WHERE id = {eid} \\gset"),
                        read_logs(":eid::uuid", None),
                    ]
                )
            )
        }
    }
}

/// The workflow list (`sql::newest_first` in ipa-store) with one condition, the default page
/// (50 + 1).
pub fn list_workflows(condition: &str) -> String {
    format!(
        "SELECT {WORKFLOW_COLUMNS} FROM {WORKFLOW_FROM} WHERE {condition} \
         ORDER BY w.created_at DESC, w.id DESC LIMIT 51;"
    )
}

/// The run list (`sql::newest_first` in ipa-store), with or without a condition.
pub fn list_executions(condition: Option<&str>) -> String {
    let filter = condition.map(|c| format!("WHERE {c} ")).unwrap_or_default();
    format!(
        "SELECT {EXECUTION_COLUMNS} FROM {EXECUTION_FROM} {filter}\
         ORDER BY e.created_at DESC, e.id DESC LIMIT 51;"
    )
}

/// `PgExecutions::logs`: the first page of a run's lines, with an extra condition.
pub fn read_logs(execution_sql: &str, condition: Option<&str>) -> String {
    let extra = condition.map(|c| format!(" AND {c}")).unwrap_or_default();
    format!(
        "SELECT {LOG_COLUMNS} FROM execution_logs WHERE execution_id = {execution_sql}{extra} \
         ORDER BY id LIMIT 51;"
    )
}

/// `insert_logs` of `crates/ipa-store/src/executions.rs`, for the run `:eid`, with the lines
/// as a JSON array literal.
fn insert_logs(lines: &str) -> String {
    format!(
        "INSERT INTO execution_logs (execution_id, execution_step_id, level, message, context) \
         SELECT :eid::uuid, (l.line->>'step_id')::uuid, (l.line->>'level')::log_level, \
                l.line->>'message', coalesce(l.line->'context', '{{}}') \
         FROM jsonb_array_elements('{lines}'::jsonb) WITH ORDINALITY AS l(line, position) \
         ORDER BY l.position;"
    )
}

/// `audit::record` of `crates/ipa-store/src/audit.rs`.
fn audit_insert(
    action: &str,
    resource_type: &str,
    resource_sql: &str,
    changes_sql: &str,
) -> String {
    format!(
        "INSERT INTO audit_logs (user_id, action, resource_type, resource_id, changes, ip_address, user_agent) \
         VALUES (ipa_current_user_id(), '{action}'::audit_action, '{resource_type}', {resource_sql}, \
                 {changes_sql}, ipa_client_ip(), ipa_user_agent());"
    )
}

/// `lock_held_run` of `crates/ipa-store/src/runs.rs`.
const LOCK_HELD_RUN: &str = "SELECT coalesce(status, 'pending')::text AS status, \
     waiting_step_id FROM executions WHERE id = :eid::uuid AND lease_owner = 'bench-' || :client_id \
     FOR NO KEY UPDATE;";

/// A step's change and the transaction's log lines in one statement (`apply_step` with
/// `insert_logs_from_batch!` of `crates/ipa-store/src/executions.rs`, used by `runs.rs` too): the step
/// `:s_id` moves to `status` only from one of `from`, and `lines` (JSON objects, the step's id
/// spliced in as `' || :s_id || '`) are written in order.
fn apply_step_with_logs(
    status: &str,
    from: &str,
    input: &str,
    output: &str,
    starting: bool,
    finishing: bool,
    lines: &[String],
) -> String {
    format!(
        "WITH changed AS (UPDATE execution_steps SET status = '{status}'::step_status, \
             input_data = coalesce({input}, input_data), \
             output_data = CASE WHEN {finishing} THEN {output} ELSE output_data END, \
             error_message = NULL, \
             started_at = CASE WHEN {starting} THEN now() ELSE coalesce(started_at, now()) END, \
             completed_at = CASE WHEN {finishing} THEN now() ELSE NULL END, \
             duration_ms = CASE WHEN {finishing} THEN duration_ms ELSE NULL END, \
             retry_count = 0 \
           WHERE id = :s_id::uuid AND execution_id = :eid::uuid \
             AND coalesce(status, 'pending')::text = ANY('{{{from}}}'::text[]) RETURNING id), \
         logged AS (INSERT INTO execution_logs (execution_id, execution_step_id, level, message, context) \
           SELECT :eid::uuid, (l.line->>'step_id')::uuid, (l.line->>'level')::log_level, \
                  l.line->>'message', coalesce(l.line->'context', '{{}}') \
           FROM jsonb_array_elements(('[{}]')::jsonb) WITH ORDINALITY AS l(line, position) \
           ORDER BY l.position) \
         SELECT count(*) FROM changed;",
        lines.join(", ")
    )
}

/// The engine's SQL for a one-step webhook run (`PgRunJournal` of
/// `crates/ipa-store/src/runs.rs` as `crates/ipa-engine/src/engine/mod.rs` drives it), two
/// transactions: the claim (returning the run and its definition), the read of its steps and the
/// step's start with the run's and the step's lines; then the step's completion and the run's
/// completion with their lines. The worker is `bench-<client id>`.
pub fn engine_script() -> String {
    let step_line = |status: &str, message: &str| {
        format!(
            "{{\"step_id\": \"' || :s_id || '\", \"level\": \"info\", \"message\": \"{message}\", \
              \"context\": {{\"event\": \"step\", \"status\": \"{status}\", \"step\": \"notify\", \"step_index\": 0}}}}"
        )
    };
    let claim = transaction(
        Acting::System,
        &[
            "WITH ready AS ( \
                 SELECT id, status, lease_owner FROM executions \
                 WHERE (status IN ('pending', 'running') \
                        OR (waiting_step_id IS NOT NULL AND wake_at <= now())) \
                   AND (lease_expires_at IS NULL OR lease_expires_at < now()) \
                 ORDER BY created_at \
                 LIMIT 1 \
                 FOR UPDATE SKIP LOCKED) \
             UPDATE executions e SET \
                 lease_owner = 'bench-' || :client_id, \
                 lease_expires_at = now() + make_interval(secs => 30.0), \
                 status = CASE WHEN r.status = 'pending' THEN 'running'::execution_status \
                               ELSE e.status END, \
                 started_at = coalesce(e.started_at, now()), \
                 recoveries = e.recoveries + CASE WHEN r.status = 'running' \
                                                  AND r.lease_owner IS NOT NULL \
                                                  THEN 1 ELSE 0 END \
             FROM ready r, workflow_versions v WHERE e.id = r.id AND v.id = e.workflow_version_id \
             RETURNING e.id AS eid, r.status::text AS previous_status, \
                 coalesce(e.status, 'pending')::text AS status, e.waiting_step_id, v.definition, \
                 coalesce(e.input_data, '{}') AS input_data, e.recoveries, e.started_at, \
                 e.created_at \\gset"
                .to_owned(),
            format!(
                "SELECT {STEP_COLUMNS} FROM execution_steps s \
                 WHERE s.execution_id = ANY(('{{' || :eid || '}}')::uuid[]) ORDER BY s.execution_id, s.step_index \\gset s_"
            ),
            apply_step_with_logs(
                "running",
                "pending,running",
                "'{\"method\": \"POST\", \"url\": \"http://127.0.0.1/hook\", \"headers\": [], \"body\": {\"order\": \"1\"}}'::jsonb",
                "NULL",
                true,
                false,
                &[
                    "{\"step_id\": null, \"level\": \"info\", \"message\": \"Execution running\", \
                      \"context\": {\"event\": \"execution\", \"status\": \"running\", \"worker\": \"bench\"}}"
                        .to_owned(),
                    step_line("running", "Step started"),
                ],
            ),
        ],
    );
    let completed = transaction(
        Acting::System,
        &[
            LOCK_HELD_RUN.to_owned(),
            "UPDATE executions SET status = 'completed', output_data = '{\"notify\": {}}'::jsonb, \
                 completed_at = now(), lease_owner = NULL, lease_expires_at = NULL \
             WHERE id = :eid::uuid;"
                .to_owned(),
            apply_step_with_logs(
                "completed",
                "running",
                "NULL",
                "'{}'::jsonb",
                false,
                true,
                &[
                    "{\"step_id\": \"' || :s_id || '\", \"level\": \"info\", \"message\": \"Attempt 1 succeeded\", \
                      \"context\": {\"attempt\": 1, \"status_code\": 200, \"duration_ms\": 1, \"bytes\": 2, \"truncated\": false}}"
                        .to_owned(),
                    step_line("completed", "Step completed"),
                    "{\"step_id\": null, \"level\": \"info\", \"message\": \"Execution completed\", \
                      \"context\": {\"event\": \"execution\", \"status\": \"completed\"}}"
                        .to_owned(),
                ],
            ),
        ],
    );
    format!("{claim}{completed}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The variables a script refers to (`:name`, not `::type`).
    fn variables(script: &str) -> Vec<String> {
        let bytes = script.as_bytes();
        let mut found = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            if bytes[at] == b':' {
                if bytes.get(at + 1) == Some(&b':') {
                    at += 2;
                    continue;
                }
                let name: String = script[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                // pgbench reads any name of letters, digits and `_` after a colon as a variable.
                if !name.is_empty() {
                    found.push(name);
                }
            }
            at += 1;
        }
        found.sort();
        found.dedup();
        found
    }

    #[test]
    fn scripts_use_only_known_variables() {
        let known = [
            "uid",
            "ident",
            "owned",
            "startable",
            "runs",
            "workflows",
            "deep_at",
            "deep_id",
            "client_id",
            "k",
            "i",
            "t",
            "m",
            "r",
            "j",
            "attempt",
            "session_id",
            "p_id",
            "w_current_version_id",
            "eid",
            "s_id",
            "u_id",
        ];
        let mut scripts: Vec<String> = [
            Operation::SignIn,
            Operation::GetWorkflow,
            Operation::ListByTag,
            Operation::ListByMetadata,
            Operation::ListExecutions,
            Operation::DeepPage,
            Operation::Publish,
            Operation::Start,
            Operation::ReadLogs,
        ]
        .into_iter()
        .map(script)
        .collect();
        scripts.push(engine_script());
        for script in scripts {
            for name in variables(&script) {
                assert!(
                    known.contains(&name.as_str()),
                    "unknown :{name} in\n{script}"
                );
            }
        }
    }

    #[test]
    fn every_transaction_is_closed_and_starts_with_its_settings() {
        let script = script(Operation::Publish);
        // No authentication (the server remembers the token); the visibility check and the
        // publish are transactions.
        assert!(!script.contains("ipa_authenticate"), "{script}");
        assert_eq!(script.matches("BEGIN;").count(), 2);
        assert_eq!(script.matches("COMMIT;").count(), 2);
        for block in script.split("BEGIN;\n").skip(1) {
            assert!(
                block.starts_with("SELECT set_config('role', 'ipa_app', true)"),
                "{block}"
            );
        }
        let engine = engine_script();
        assert_eq!(engine.matches("BEGIN;").count(), 2);
        assert_eq!(
            engine
                .matches("set_config('app.is_superuser', 'true', true)")
                .count(),
            2
        );
    }

    #[test]
    fn settings_match_the_stores_form() {
        let user = settings(Acting::Literal("abc"));
        assert!(user.starts_with("SELECT set_config('role', 'ipa_app', true), set_config('app.current_user_id', 'abc', true)"), "{user}");
        assert_eq!(user.matches("set_config(").count(), 8);
    }
}
