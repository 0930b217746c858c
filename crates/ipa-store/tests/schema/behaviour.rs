//! The schema's behaviour: triggers, checks, partitions, row level security, roles, the pairing of
//! versions with their workflow, and the audit trail.

use std::time::Duration;

use ipa_kernel::Actor;
use ipa_store::testing::TestDatabase;
use uuid::Uuid;

use crate::support::{
    TABLES, create_user, create_version, create_workflow, exec_as, rows_as_owner, scalar_as, state,
    user, user_with_a_workflow_version,
};

const CHECK_VIOLATION: &str = "23514";
const FOREIGN_KEY_VIOLATION: &str = "23503";
const RLS_VIOLATION: &str = "42501";

#[tokio::test]
async fn updated_at_moves_on_update() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let workflow = create_workflow(&store, alice, "invoices").await;
    let before: String = scalar_as(
        &store,
        &user(alice, false),
        &format!("SELECT updated_at::text FROM workflows WHERE id = '{workflow}'"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    exec_as(
        &store,
        &user(alice, false),
        &format!("UPDATE workflows SET description = 'x' WHERE id = '{workflow}'"),
    )
    .await
    .unwrap();
    let moved: bool = scalar_as(
        &store,
        &user(alice, false),
        &format!("SELECT updated_at > '{before}'::timestamptz AND updated_at > created_at FROM workflows WHERE id = '{workflow}'"),
    )
    .await;
    assert!(moved, "updated_at did not move");
}

#[tokio::test]
async fn duration_ms_is_computed_for_executions_and_steps() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let (alice, workflow, version) = user_with_a_workflow_version(&store).await;
    let execution = Uuid::new_v4();
    let actor = user(alice, false);
    exec_as(
        &store,
        &actor,
        &format!(
            "INSERT INTO executions (id, workflow_id, workflow_version_id, triggered_by, started_at) \
             VALUES ('{execution}', '{workflow}', '{version}', '{alice}', '2026-01-01 10:00:00+00'); \
             INSERT INTO execution_steps (execution_id, step_name, step_index, step_type, started_at) \
             VALUES ('{execution}', 'fetch', 0, 'webhook', '2026-01-01 10:00:00+00')"
        ),
    )
    .await
    .unwrap();
    exec_as(
        &store,
        &actor,
        &format!(
            "UPDATE executions SET completed_at = '2026-01-01 10:00:02.5+00', status = 'completed' WHERE id = '{execution}'; \
             UPDATE execution_steps SET completed_at = '2026-01-01 10:00:01.25+00' WHERE execution_id = '{execution}'"
        ),
    )
    .await
    .unwrap();
    let run: i32 = scalar_as(
        &store,
        &actor,
        &format!("SELECT duration_ms FROM executions WHERE id = '{execution}'"),
    )
    .await;
    let step: i32 = scalar_as(
        &store,
        &actor,
        &format!("SELECT duration_ms FROM execution_steps WHERE execution_id = '{execution}'"),
    )
    .await;
    assert_eq!((run, step), (2500, 1250));
}

#[tokio::test]
async fn checks_reject_bad_rows() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let system = Actor::system();
    let (alice, workflow, version) = user_with_a_workflow_version(&store).await;
    let as_alice = user(alice, false);

    let malformed_email = exec_as(
        &store,
        &system,
        "INSERT INTO users (email, username, hashed_password) VALUES ('not-an-email', 'bob', 'h')",
    )
    .await;
    assert_eq!(state(malformed_email), CHECK_VIOLATION, "malformed email");
    // Both cases are valid, as the seed's rule says.
    exec_as(&store, &system, "INSERT INTO users (email, username, hashed_password) VALUES ('Bob.Smith@Example.COM', 'bob', 'h')")
        .await
        .unwrap();

    let agent = |temperature: &str, max_tokens: &str| {
        format!(
            "INSERT INTO agents (name, type, configuration, created_by, temperature, max_tokens) \
             VALUES ('writer', 'custom', '{{}}', '{alice}', {temperature}, {max_tokens})"
        )
    };
    assert_eq!(
        state(exec_as(&store, &as_alice, &agent("2.5", "100")).await),
        CHECK_VIOLATION,
        "temperature 2.5"
    );
    assert_eq!(
        state(exec_as(&store, &as_alice, &agent("0.5", "0")).await),
        CHECK_VIOLATION,
        "max_tokens 0"
    );
    exec_as(&store, &as_alice, &agent("2", "1")).await.unwrap();

    let negative_retries = exec_as(
        &store,
        &as_alice,
        &format!(
            "INSERT INTO executions (workflow_id, workflow_version_id, triggered_by, retry_count) \
             VALUES ('{workflow}', '{version}', '{alice}', -1)"
        ),
    )
    .await;
    assert_eq!(
        state(negative_retries),
        CHECK_VIOLATION,
        "negative retry_count"
    );

    let version_zero = exec_as(
        &store,
        &as_alice,
        &format!(
            "INSERT INTO workflow_versions (workflow_id, version_number, definition, created_by) \
             VALUES ('{workflow}', 0, '{{}}', '{alice}')"
        ),
    )
    .await;
    assert_eq!(state(version_zero), CHECK_VIOLATION, "version_number 0");

    let blank_workflow = exec_as(
        &store,
        &as_alice,
        &format!("INSERT INTO workflows (name, created_by) VALUES ('   ', '{alice}')"),
    )
    .await;
    assert_eq!(
        state(blank_workflow),
        CHECK_VIOLATION,
        "blank workflow name"
    );
    let blank_agent = exec_as(
        &store,
        &as_alice,
        &format!("INSERT INTO agents (name, type, configuration, created_by) VALUES (' ', 'custom', '{{}}', '{alice}')"),
    )
    .await;
    assert_eq!(state(blank_agent), CHECK_VIOLATION, "blank agent name");
}

#[tokio::test]
async fn rows_far_outside_the_monthly_partitions_land_in_the_default_partition() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let (alice, workflow, version) = user_with_a_workflow_version(&store).await;
    let execution = Uuid::new_v4();
    let actor = user(alice, false);
    exec_as(
        &store,
        &actor,
        &format!(
            "INSERT INTO executions (id, workflow_id, workflow_version_id, triggered_by) VALUES ('{execution}', '{workflow}', '{version}', '{alice}'); \
             INSERT INTO execution_logs (execution_id, level, message, created_at) VALUES \
               ('{execution}', 'info', 'old', '2019-03-01 00:00:00+00'), \
               ('{execution}', 'info', 'future', '2099-12-31 23:59:59+00'), \
               ('{execution}', 'info', 'now', now()); \
             INSERT INTO audit_logs (user_id, action, resource_type, created_at) VALUES \
               ('{alice}', 'login', 'user', '2019-03-01 00:00:00+00'), ('{alice}', 'logout', 'user', '2099-12-31 00:00:00+00')"
        ),
    )
    .await
    .unwrap();
    // The partition read directly, as the platform (it carries its parent's row security).
    let placement = db.rows("SELECT message FROM execution_logs_default").await;
    let mut in_default: Vec<&str> = placement
        .iter()
        .map(|row| row["message"].as_str().unwrap())
        .collect();
    in_default.sort_unstable();
    assert_eq!(
        in_default,
        ["future", "old"],
        "2019 and 2099 rows belong in the default partition"
    );
    let audit_default: i64 = scalar_as(&store, &Actor::system(), "SELECT count(*) FROM audit_logs WHERE tableoid = 'audit_logs_default'::regclass AND action IN ('login', 'logout')").await;
    assert_eq!(audit_default, 2);
    let current: String = scalar_as(
        &store,
        &actor,
        "SELECT tableoid::regclass::text FROM execution_logs WHERE message = 'now'",
    )
    .await;
    assert!(
        current.starts_with("execution_logs_20"),
        "a current row belongs in its month, got {current}"
    );
}

#[tokio::test]
async fn creating_a_month_moves_its_rows_out_of_the_default_partition() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    exec_as(
        &store,
        &user(alice, false),
        &format!("INSERT INTO audit_logs (user_id, action, resource_type, created_at) VALUES ('{alice}', 'login', 'user', '2030-05-31 23:30:00+00'), ('{alice}', 'login', 'user', '2030-06-01 00:30:00+00')"),
    )
    .await
    .unwrap();
    // Partition upkeep is the owner's work (it creates tables), as the server does it.
    let ensure_may = "SELECT ipa_ensure_monthly_partitions('audit_logs', '2030-05-15', 1)";
    let created: i32 = rows_as_owner(&store, ensure_may).await[0]
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(created, 1);
    let placement: Vec<String> = db
        .rows(
            "SELECT tableoid::regclass::text AS part FROM audit_logs_2030_05 \
             UNION ALL SELECT tableoid::regclass::text FROM audit_logs_default ORDER BY 1",
        )
        .await
        .iter()
        .map(|row| row["part"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        placement,
        ["audit_logs_2030_05", "audit_logs_default"],
        "May's row moved, June's stayed"
    );
    let again: i32 = rows_as_owner(&store, ensure_may).await[0]
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(again, 0, "an existing month is left alone");
    let created = ipa_store::maintenance::ensure_partitions(&store)
        .await
        .unwrap();
    assert_eq!(
        created, 0,
        "the migrations already created this month and the next three"
    );
}

#[tokio::test]
async fn users_see_and_change_only_their_own_workflows() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let alices = create_workflow(&store, alice, "alices").await;
    let bobs = create_workflow(&store, bob, "bobs").await;
    let as_alice = user(alice, false);

    let visible: i64 = scalar_as(&store, &as_alice, "SELECT count(*) FROM workflows").await;
    assert_eq!(visible, 1);
    let sees_bobs: i64 = scalar_as(
        &store,
        &as_alice,
        &format!("SELECT count(*) FROM workflows WHERE id = '{bobs}'"),
    )
    .await;
    assert_eq!(sees_bobs, 0);

    // Updates and deletes of Bob's row find nothing to change.
    let txn = store.begin(&as_alice).await.unwrap();
    use sea_orm::ConnectionTrait;
    let updated = txn
        .connection()
        .execute_unprepared(&format!(
            "UPDATE workflows SET name = 'mine now' WHERE id = '{bobs}'"
        ))
        .await
        .unwrap();
    let deleted = txn
        .connection()
        .execute_unprepared(&format!("DELETE FROM workflows WHERE id = '{bobs}'"))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!((updated.rows_affected(), deleted.rows_affected()), (0, 0));
    let bobs_name: String = scalar_as(
        &store,
        &user(bob, false),
        &format!("SELECT name FROM workflows WHERE id = '{bobs}'"),
    )
    .await;
    assert_eq!(bobs_name, "bobs");

    // Nor can Alice create a workflow in Bob's name, or give hers to him.
    let forged = exec_as(
        &store,
        &as_alice,
        &format!("INSERT INTO workflows (name, created_by) VALUES ('forged', '{bob}')"),
    )
    .await;
    assert_eq!(state(forged), RLS_VIOLATION);
    let handed_over = exec_as(
        &store,
        &as_alice,
        &format!("UPDATE workflows SET created_by = '{bob}' WHERE id = '{alices}'"),
    )
    .await;
    assert_eq!(state(handed_over), RLS_VIOLATION);

    // Versions and executions follow their workflow.
    let bobs_version = create_version(&store, bob, bobs, 1).await;
    let versions: i64 =
        scalar_as(&store, &as_alice, "SELECT count(*) FROM workflow_versions").await;
    assert_eq!(versions, 0);
    let run_bobs = exec_as(
        &store,
        &as_alice,
        &format!("INSERT INTO executions (workflow_id, workflow_version_id, triggered_by) VALUES ('{bobs}', '{bobs_version}', '{alice}')"),
    )
    .await;
    assert_eq!(
        state(run_bobs),
        RLS_VIOLATION,
        "running a workflow one cannot see"
    );
}

#[tokio::test]
async fn no_context_sees_nothing_and_a_superuser_sees_everything() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    create_workflow(&store, alice, "a").await;
    create_workflow(&store, bob, "b").await;

    let anonymous = Actor::anonymous(ipa_kernel::ClientInfo::default());
    for table in TABLES {
        let count: i64 =
            scalar_as(&store, &anonymous, &format!("SELECT count(*) FROM {table}")).await;
        assert_eq!(count, 0, "{table} without an actor");
    }
    // The owner itself is bound by the forced policies when it sets no context.
    let owner_count: i64 = rows_as_owner(&store, "SELECT count(*) FROM workflows").await[0]
        .try_get_by_index(0)
        .unwrap();
    assert_eq!(owner_count, 0, "the owner bypassed row level security");

    let superuser = create_user(&store, "root").await;
    let all: i64 = scalar_as(
        &store,
        &user(superuser, true),
        "SELECT count(*) FROM workflows",
    )
    .await;
    assert_eq!(all, 2);
    let users: i64 = scalar_as(&store, &user(superuser, true), "SELECT count(*) FROM users").await;
    assert_eq!(users, 3);
    let own_row_only: i64 =
        scalar_as(&store, &user(alice, false), "SELECT count(*) FROM users").await;
    assert_eq!(own_row_only, 1);
}

#[tokio::test]
async fn a_user_cannot_make_themselves_superuser() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let escalate = exec_as(
        &store,
        &user(alice, false),
        &format!("UPDATE users SET is_superuser = true WHERE id = '{alice}'"),
    )
    .await;
    assert_eq!(state(escalate), RLS_VIOLATION);
    exec_as(
        &store,
        &user(alice, false),
        &format!("UPDATE users SET full_name = 'Alice A.' WHERE id = '{alice}'"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn the_request_role_is_neither_owner_nor_superuser_nor_bypassrls() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let role: String = scalar_as(
        &store,
        &user(Uuid::new_v4(), false),
        "SELECT current_user::text",
    )
    .await;
    assert_eq!(role, migration::APP_ROLE);
    let flags: String = scalar_as(
        &store,
        &Actor::system(),
        "SELECT rolsuper::text || ',' || rolbypassrls::text || ',' || \
                (SELECT count(*) FROM pg_class WHERE relowner = r.oid)::text \
           FROM pg_roles r WHERE rolname = current_user",
    )
    .await;
    assert_eq!(flags, "false,false,0");
    let report = ipa_store::schema::inspect_roles(&store).await.unwrap();
    assert!(report.problems().is_empty(), "{:?}", report.problems());
    assert_eq!(report.login_role, ipa_store::testing::OWNER_ROLE);
    // The request role cannot rewrite history.
    let rewrite = exec_as(&store, &Actor::system(), "DELETE FROM audit_logs").await;
    assert_eq!(state(rewrite), RLS_VIOLATION);
}

#[tokio::test]
async fn versions_pair_only_with_their_own_workflow() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let first = create_workflow(&store, alice, "first").await;
    let second = create_workflow(&store, alice, "second").await;
    let firsts_version = create_version(&store, alice, first, 1).await;
    let actor = user(alice, false);

    let crossed = exec_as(
        &store,
        &actor,
        &format!(
            "UPDATE workflows SET current_version_id = '{firsts_version}' WHERE id = '{second}'"
        ),
    )
    .await;
    assert_eq!(state(crossed), FOREIGN_KEY_VIOLATION);
    let crossed_run = exec_as(
        &store,
        &actor,
        &format!("INSERT INTO executions (workflow_id, workflow_version_id, triggered_by) VALUES ('{second}', '{firsts_version}', '{alice}')"),
    )
    .await;
    assert_eq!(state(crossed_run), FOREIGN_KEY_VIOLATION);

    exec_as(
        &store,
        &actor,
        &format!(
            "UPDATE workflows SET current_version_id = '{firsts_version}' WHERE id = '{first}'"
        ),
    )
    .await
    .unwrap();
    let immutable = exec_as(
        &store,
        &Actor::system(),
        &format!(
            "UPDATE workflow_versions SET change_summary = 'edited' WHERE id = '{firsts_version}'"
        ),
    )
    .await;
    assert!(immutable.is_err(), "versions must be immutable");
    // Deleting the current version clears only the pointer; deleting the workflow takes its versions.
    exec_as(
        &store,
        &actor,
        &format!("DELETE FROM workflow_versions WHERE id = '{firsts_version}'"),
    )
    .await
    .unwrap();
    let pointer: Option<Uuid> = scalar_as(
        &store,
        &actor,
        &format!("SELECT current_version_id FROM workflows WHERE id = '{first}'"),
    )
    .await;
    assert_eq!(pointer, None);
    create_version(&store, alice, first, 2).await;
    exec_as(
        &store,
        &actor,
        &format!("DELETE FROM workflows WHERE id = '{first}'"),
    )
    .await
    .unwrap();
    let left: i64 = scalar_as(
        &store,
        &actor,
        &format!("SELECT count(*) FROM workflow_versions WHERE workflow_id = '{first}'"),
    )
    .await;
    assert_eq!(left, 0);
}

#[tokio::test]
async fn the_audit_trail_records_the_real_actor_and_never_a_secret() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let admin = create_user(&store, "admin").await;
    let workflow = create_workflow(&store, alice, "invoices").await;
    // A superuser edits Alice's workflow: the audit row names the superuser, not the creator.
    exec_as(
        &store,
        &user(admin, true),
        &format!("UPDATE workflows SET name = 'renamed' WHERE id = '{workflow}'"),
    )
    .await
    .unwrap();
    let row: String = scalar_as(
        &store,
        &user(admin, true),
        &format!(
            "SELECT user_id::text || '|' || host(ip_address) || '|' || user_agent || '|' || (changes->'before'->>'name') || '|' || (changes->'after'->>'name') \
               FROM audit_logs WHERE resource_type = 'workflow' AND action = 'update' AND resource_id = '{workflow}'"
        ),
    )
    .await;
    assert_eq!(
        row,
        format!("{admin}|203.0.113.7|schema-tests/1.0|invoices|renamed")
    );

    // Only updated_at (or last_login_at) changing is no event worth an audit row.
    exec_as(
        &store,
        &user(alice, false),
        &format!("UPDATE users SET last_login_at = now() WHERE id = '{alice}'"),
    )
    .await
    .unwrap();
    let user_updates: i64 = scalar_as(
        &store,
        &Actor::system(),
        &format!(
            "SELECT count(*) FROM audit_logs WHERE resource_id = '{alice}' AND action = 'update'"
        ),
    )
    .await;
    assert_eq!(user_updates, 0);

    exec_as(
        &store,
        &user(alice, false),
        &format!(
            "INSERT INTO agents (name, type, configuration, created_by) VALUES ('writer', 'semantic_kernel', \
             '{{\"provider\": {{\"kind\": \"openai\", \"api_key\": {{\"$secret\": {{\"ciphertext\": \"sk-live-cipher\"}}}}}}, \
               \"headers\": [{{\"Authorization\": \"Bearer sk-live-header\"}}], \"access_token\": \"sk-live-token\", \"max_tokens\": 5}}', '{alice}')"
        ),
    )
    .await
    .unwrap();
    let audit_text: String = scalar_as(
        &store,
        &Actor::system(),
        "SELECT string_agg(changes::text, ' ') FROM audit_logs",
    )
    .await;
    for secret in ["sk-live", "$argon2id", "aGFzaA"] {
        assert!(
            !audit_text.contains(secret),
            "{secret} reached the audit log: {audit_text}"
        );
    }
    assert!(
        audit_text.contains("\"max_tokens\": 5"),
        "non-secret members are kept"
    );
    assert!(audit_text.contains("\"hashed_password\": \"[REDACTED]\""));
}

#[tokio::test]
async fn partition_upkeep_leaves_the_callers_context_as_it_found_it() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    // The function raises its own context while it attaches; the caller's must be back after.
    let rows = rows_as_owner(
        &store,
        "SELECT ipa_ensure_monthly_partitions('execution_logs', '2031-01-01', 1), \
                coalesce(current_setting('app.is_superuser', true), '')",
    )
    .await;
    let created: i32 = rows[0].try_get_by_index(0).unwrap();
    let after: String = rows[0].try_get_by_index(1).unwrap();
    assert_eq!((created, after.as_str()), (1, ""));
}

#[tokio::test]
async fn the_stats_refresh_sees_every_users_executions() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let (alice, workflow, version) = user_with_a_workflow_version(&store).await;
    exec_as(
        &store,
        &user(alice, false),
        &format!(
            "INSERT INTO executions (workflow_id, workflow_version_id, triggered_by, status) VALUES \
             ('{workflow}', '{version}', '{alice}', 'completed'), ('{workflow}', '{version}', '{alice}', 'failed')"
        ),
    )
    .await
    .unwrap();
    // The owner refreshes; forced row level security would show it no executions without the
    // maintenance context, leaving the view silently empty.
    ipa_store::maintenance::refresh_workflow_stats(&store)
        .await
        .unwrap();
    let stats: String = scalar_as(
        &store,
        &user(alice, false),
        &format!(
            "SELECT total_executions || '/' || successful_count || '/' || failed_count \
               FROM visible_workflow_execution_stats WHERE workflow_id = '{workflow}'"
        ),
    )
    .await;
    assert_eq!(stats, "2/1/1");
    let direct = exec_as(
        &store,
        &user(alice, false),
        "SELECT count(*) FROM workflow_execution_stats",
    )
    .await;
    assert_eq!(
        crate::support::state(direct),
        "42501",
        "the request role reads the view only through visible_workflow_execution_stats"
    );
    let owner_role: String = {
        let txn = store.begin_maintenance().await.unwrap();
        let role = crate::support::scalar(&txn, "SELECT current_user::text").await;
        txn.rollback().await.unwrap();
        role
    };
    assert_eq!(
        owner_role,
        ipa_store::testing::OWNER_ROLE,
        "maintenance acts as the owner"
    );
}

#[tokio::test]
async fn the_stats_refresh_computes_a_view_that_a_restore_left_uncomputed() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    // What a restore without the view's data leaves (docs/operations.md).
    rows_as_owner(
        &store,
        "REFRESH MATERIALIZED VIEW workflow_execution_stats WITH NO DATA",
    )
    .await;
    let populated =
        "SELECT relispopulated FROM pg_class WHERE oid = 'workflow_execution_stats'::regclass";
    assert!(!scalar_as::<bool>(&store, &Actor::system(), populated).await);
    ipa_store::maintenance::refresh_workflow_stats(&store)
        .await
        .unwrap();
    assert!(scalar_as::<bool>(&store, &Actor::system(), populated).await);
    // Later refreshes go back to CONCURRENTLY, which needs the view computed.
    ipa_store::maintenance::refresh_workflow_stats(&store)
        .await
        .unwrap();
}
