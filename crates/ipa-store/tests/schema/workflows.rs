//! Migration `m20251124_000011_workflow_versions`: activation needs a current version, reference
//! lookups see past row level security by id only and restore the caller's context, and a
//! cascading delete is one audit row.

use ipa_kernel::Actor;
use ipa_store::testing::TestDatabase;
use uuid::Uuid;

use crate::support::{create_user, exec_as, scalar_as, state, user, user_with_a_workflow_version};

#[tokio::test]
async fn a_workflow_becomes_active_only_with_a_current_version() {
    let database = TestDatabase::migrated().await;
    let store = database.store().await;
    let (alice, workflow, version) = user_with_a_workflow_version(&store).await;
    let activate = format!("UPDATE workflows SET status = 'active' WHERE id = '{workflow}'");
    assert_eq!(
        state(exec_as(&store, &user(alice, false), &activate).await),
        "23514"
    );
    exec_as(
        &store,
        &user(alice, false),
        &format!(
            "UPDATE workflows SET current_version_id = '{version}', status = 'active' \
             WHERE id = '{workflow}'"
        ),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn reference_lookups_see_other_accounts_and_agents_by_id_only() {
    let database = TestDatabase::migrated().await;
    let store = database.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let agent = Uuid::new_v4();
    exec_as(
        &store,
        &user(bob, false),
        &format!(
            "INSERT INTO agents (id, name, type, status, configuration, created_by) \
             VALUES ('{agent}', 'hidden', 'custom', 'inactive', '{{}}', '{bob}')"
        ),
    )
    .await
    .unwrap();
    let as_alice = user(alice, false);
    // Row level security hides bob and his inactive agent from alice...
    let visible: i64 = scalar_as(
        &store,
        &as_alice,
        &format!(
            "SELECT (SELECT count(*) FROM users WHERE id = '{bob}') \
                  + (SELECT count(*) FROM agents WHERE id = '{agent}')"
        ),
    )
    .await;
    assert_eq!(visible, 0);
    // ...the lookups name them, with one flag each, and leave alice's context as it was.
    let found: String = scalar_as(
        &store,
        &as_alice,
        &format!(
            "SELECT (SELECT string_agg(id::text || ':' || is_active, ',') \
                       FROM ipa_user_states(ARRAY['{bob}', '{}']::uuid[])) \
                 || ' ' || (SELECT string_agg(status::text, ',') \
                       FROM ipa_agent_states(ARRAY['{agent}']::uuid[])) \
                 || ' ' || ipa_is_superuser()",
            Uuid::new_v4()
        ),
    )
    .await;
    assert_eq!(found, format!("{bob}:true inactive false"));
}

#[tokio::test]
async fn deleting_a_parent_is_one_audit_row_and_a_child_alone_is_its_own() {
    let database = TestDatabase::migrated().await;
    let store = database.store().await;
    let (alice, workflow, _) = user_with_a_workflow_version(&store).await;
    let as_alice = user(alice, false);
    let agent = Uuid::new_v4();
    exec_as(
        &store,
        &as_alice,
        &format!(
            "INSERT INTO agents (id, name, type, configuration, created_by) \
             VALUES ('{agent}', 'a', 'custom', '{{}}', '{alice}'); \
             INSERT INTO agent_tools (agent_id, tool_name, tool_type, configuration) \
             VALUES ('{agent}', 'one', 'function', '{{}}'), ('{agent}', 'two', 'function', '{{}}')"
        ),
    )
    .await
    .unwrap();
    exec_as(
        &store,
        &as_alice,
        &format!("DELETE FROM agent_tools WHERE agent_id = '{agent}' AND tool_name = 'one'"),
    )
    .await
    .unwrap();
    exec_as(
        &store,
        &as_alice,
        &format!(
            "DELETE FROM agents WHERE id = '{agent}'; DELETE FROM workflows WHERE id = '{workflow}'"
        ),
    )
    .await
    .unwrap();
    let deletes: String = scalar_as(
        &store,
        &Actor::system(),
        "SELECT string_agg(resource_type || ':' || (user_id IS NOT NULL), ',' ORDER BY id) \
           FROM audit_logs WHERE action = 'delete'",
    )
    .await;
    assert_eq!(deletes, "agent_tool:true,agent:true,workflow:true");
}
