//! The agent catalog in the schema itself: row level security shares active agents and keeps
//! changes to their owners, tools follow their agent, and the lookups behind participants and
//! usage see past it while restoring the caller's context. At scale, the agent list's name filter
//! is answered from its trigram index under row level security (see `workflow_plans` for why
//! that needs `ILIKE` to be `LEAKPROOF`).

use ipa_agent::{AgentFilter, AgentRepository, NameFragment};
use ipa_kernel::{Actor, PageRequest};
use ipa_store::PgAgents;
use ipa_store::testing::TestDatabase;
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::support::{create_user, exec_as, scalar_as, state, user};

async fn create_agent(store: &ipa_store::Store, owner: Uuid, name: &str, status: &str) -> Uuid {
    let id = Uuid::new_v4();
    exec_as(
        store,
        &user(owner, false),
        &format!(
            "INSERT INTO agents (id, name, type, status, configuration, created_by) VALUES \
             ('{id}', '{name}', 'custom', '{status}', '{{\"endpoint\": \"https://x\"}}', '{owner}')"
        ),
    )
    .await
    .unwrap();
    id
}

async fn affected(store: &ipa_store::Store, actor: &Actor, sql: &str) -> u64 {
    let txn = store.begin(actor).await.unwrap();
    let result = txn
        .connection()
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
    txn.commit().await.unwrap();
    result.rows_affected()
}

#[tokio::test]
async fn active_agents_are_shared_and_only_their_owner_or_a_superuser_changes_them() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let shared = create_agent(&store, alice, "shared", "active").await;
    let private = create_agent(&store, alice, "private", "inactive").await;
    exec_as(
        &store,
        &user(alice, false),
        &format!(
            "INSERT INTO agent_tools (agent_id, tool_name, tool_type, configuration) VALUES \
             ('{shared}', 'now', 'function', '{{\"function\": \"current_time\"}}'), \
             ('{private}', 'now', 'function', '{{\"function\": \"current_time\"}}')"
        ),
    )
    .await
    .unwrap();
    let as_bob = user(bob, false);

    let agents: i64 = scalar_as(&store, &as_bob, "SELECT count(*) FROM agents").await;
    let tools: i64 = scalar_as(&store, &as_bob, "SELECT count(*) FROM agent_tools").await;
    assert_eq!(
        (agents, tools),
        (1, 1),
        "Bob sees the active agent and its tool only"
    );
    let nobody: i64 = scalar_as(
        &store,
        &Actor::anonymous(Default::default()),
        "SELECT count(*) FROM agents",
    )
    .await;
    assert_eq!(nobody, 0, "the catalog is for signed-in users");

    for sql in [
        format!("UPDATE agents SET name = 'mine' WHERE id = '{shared}'"),
        format!("DELETE FROM agents WHERE id = '{shared}'"),
        format!("UPDATE agent_tools SET is_enabled = false WHERE agent_id = '{shared}'"),
        format!("DELETE FROM agent_tools WHERE agent_id = '{shared}'"),
    ] {
        assert_eq!(affected(&store, &as_bob, &sql).await, 0, "{sql}");
    }
    let forged_tool = exec_as(
        &store,
        &as_bob,
        &format!(
            "INSERT INTO agent_tools (agent_id, tool_name, tool_type, configuration) VALUES \
             ('{shared}', 'mine', 'function', '{{}}')"
        ),
    )
    .await;
    assert_eq!(state(forged_tool), "42501");
    let forged_agent = exec_as(
        &store,
        &as_bob,
        &format!("INSERT INTO agents (name, type, configuration, created_by) VALUES ('x', 'custom', '{{}}', '{alice}')"),
    )
    .await;
    assert_eq!(state(forged_agent), "42501");

    let admin = user(create_user(&store, "admin").await, true);
    assert_eq!(
        affected(
            &store,
            &admin,
            &format!("UPDATE agents SET name = 'renamed' WHERE id = '{private}'")
        )
        .await,
        1
    );

    // Tool names are function names and tool types one of three, whoever writes.
    for (name, kind) in [("bad name", "function"), ("ok", "script")] {
        let refused = exec_as(
            &store,
            &user(alice, false),
            &format!(
                "INSERT INTO agent_tools (agent_id, tool_name, tool_type, configuration) VALUES \
                 ('{shared}', '{name}', '{kind}', '{{}}')"
            ),
        )
        .await;
        assert_eq!(state(refused), "23514", "{name} {kind}");
    }
}

#[tokio::test]
async fn catalog_lookups_see_past_row_level_security_and_restore_the_callers_context() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let mine = create_agent(&store, alice, "mine", "active").await;
    let hidden = create_agent(&store, bob, "hidden", "inactive").await;
    let group = Uuid::new_v4();
    exec_as(
        &store,
        &user(bob, false),
        &format!(
            "INSERT INTO agents (id, name, type, status, configuration, created_by) VALUES \
             ('{group}', 'bobs group', 'autogen', 'inactive', \
              '{{\"participants\": [\"{hidden}\", \"{mine}\"]}}', '{bob}')"
        ),
    )
    .await
    .unwrap();
    let as_alice = user(alice, false);
    // Bob's inactive group stands only for what Alice may see that it reaches (her own agent),
    // so a cycle through it is still refused; Bob's hidden participant never comes back.
    let graph: String = scalar_as(
        &store,
        &as_alice,
        &format!(
            "SELECT string_agg(id::text || ':' || visible || ':' || cardinality(participants) \
                               || ':' || coalesce(type::text, '-'), ',' ORDER BY visible) \
             FROM ipa_agent_graph(ARRAY['{group}']::uuid[])"
        ),
    )
    .await;
    assert_eq!(graph, format!("{group}:false:1:-,{mine}:true:0:custom"));
    let reached: String = scalar_as(
        &store,
        &as_alice,
        &format!(
            "SELECT participants[1]::text FROM ipa_agent_graph(ARRAY['{group}']::uuid[]) \
             WHERE id = '{group}'"
        ),
    )
    .await;
    assert_eq!(reached, mine.to_string());
    let usage: String = scalar_as(
        &store,
        &as_alice,
        &format!(
            "SELECT kind || ':' || coalesce(id::text, '(hidden)') || ':' || coalesce(name, '(hidden)') \
             FROM ipa_agent_usage('{mine}')"
        ),
    )
    .await;
    assert_eq!(
        usage, "group:(hidden):(hidden)",
        "Alice learns a group uses her agent, not which"
    );
    let about_bobs: i64 = scalar_as(
        &store,
        &as_alice,
        &format!("SELECT count(*) FROM ipa_agent_usage('{hidden}')"),
    )
    .await;
    assert_eq!(
        about_bobs, 0,
        "only who may change an agent asks what uses it"
    );
    let bobs_view: String = scalar_as(
        &store,
        &user(bob, false),
        &format!("SELECT kind || ':' || id::text || ':' || name FROM ipa_agent_usage('{hidden}')"),
    )
    .await;
    assert_eq!(bobs_view, format!("group:{group}:bobs group"));
    let nobody: i64 = scalar_as(
        &store,
        &Actor::anonymous(ipa_kernel::ClientInfo::default()),
        &format!(
            "SELECT (SELECT count(*) FROM ipa_agent_graph(ARRAY['{group}']::uuid[])) \
                  + (SELECT count(*) FROM ipa_agent_states(ARRAY['{group}']::uuid[])) \
                  + (SELECT count(*) FROM ipa_user_states(ARRAY['{bob}']::uuid[]))"
        ),
    )
    .await;
    assert_eq!(nobody, 0, "no actor, no answer");
    let context: String = scalar_as(
        &store,
        &as_alice,
        &format!(
            "SELECT (SELECT count(*) FROM ipa_agent_graph(ARRAY['{group}']::uuid[]))::text || ':' \
             || (SELECT count(*) FROM ipa_agent_usage('{mine}'))::text || ':' || ipa_is_superuser()::text"
        ),
    )
    .await;
    assert_eq!(context, "2:1:false");
}

#[tokio::test]
async fn a_version_cannot_name_an_agent_that_no_longer_exists() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let workflow = crate::support::create_workflow(&store, alice, "w").await;
    let agent = create_agent(&store, alice, "gone", "active").await;
    exec_as(
        &store,
        &user(alice, false),
        &format!("DELETE FROM agents WHERE id = '{agent}'"),
    )
    .await
    .unwrap();
    let refused = exec_as(
        &store,
        &user(alice, false),
        &format!(
            "INSERT INTO workflow_versions (workflow_id, version_number, definition, created_by) VALUES \
             ('{workflow}', 1, '{{\"steps\": [{{\"name\": \"a\", \"type\": \"agent\", \"agent_id\": \"{agent}\"}}]}}', '{alice}')"
        ),
    )
    .await;
    assert_eq!(state(refused), "23503");
}

/// How many agents the name-filter plan test holds.
const AGENTS: u32 = 100_000;

#[tokio::test]
async fn an_agent_name_filter_uses_its_trigram_index_at_100k_agents() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let alice = create_user(&store, "alice").await;
    let bob = create_user(&store, "bob").await;
    let admin = create_user(&store, "admin").await;

    // `agent n`, alternating between alice (even `n`) and bob (odd `n`), every tenth inactive.
    // As the owner with the system's context, the audit trigger off for this transaction only
    // (it would write one audit row per agent).
    let load = store.begin_maintenance().await.unwrap();
    load.connection()
        .execute_unprepared(&format!(
            "ALTER TABLE agents DISABLE TRIGGER agent_audit_trigger; \
             INSERT INTO agents (name, type, status, configuration, created_by, created_at) \
             SELECT 'agent ' || n, 'custom', \
                    (CASE WHEN n % 10 = 0 THEN 'inactive' ELSE 'active' END)::agent_status, \
                    '{{\"endpoint\": \"https://x\"}}', \
                    CASE WHEN n % 2 = 0 THEN '{alice}'::uuid ELSE '{bob}'::uuid END, \
                    now() - n * interval '1 minute' \
             FROM generate_series(1, {AGENTS}) AS n; \
             ALTER TABLE agents ENABLE TRIGGER agent_audit_trigger"
        ))
        .await
        .unwrap();
    load.commit().await.unwrap();
    store
        .owner_connection()
        .execute_unprepared("ANALYZE agents")
        .await
        .unwrap();

    let agents = PgAgents::new(store.clone());
    let superuser = user(admin, true);
    // `agent 1234` and `agent 12340` to `agent 12349`, in any case and with the `%` and `_` of
    // a name taken literally; 12340 is alice's inactive agent, which bob does not see.
    let filter = AgentFilter {
        name: Some(NameFragment::parse("Agent 1234").unwrap()),
        ..AgentFilter::default()
    };
    for (who, actor, expected) in [
        ("a superuser", &superuser, 11),
        ("alice", &user(alice, false), 11),
        ("bob", &user(bob, false), 10),
    ] {
        let page = agents
            .list(actor, &filter, PageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), expected, "as {who}");
        assert!(page.next.is_none(), "as {who}");
        assert!(
            page.items
                .iter()
                .all(|agent| agent.settings.name.as_str().starts_with("agent 1234")),
            "as {who}"
        );
    }
    let literal = AgentFilter {
        name: Some(NameFragment::parse("agent 1_34").unwrap()),
        ..AgentFilter::default()
    };
    let page = agents
        .list(&superuser, &literal, PageRequest::default())
        .await
        .unwrap();
    assert!(page.items.is_empty(), "`_` matched a character");

    let mut unserved = Vec::new();
    for (who, actor) in [("a superuser", &superuser), ("bob", &user(bob, false))] {
        let plan = agents
            .explain_list(actor, &filter, PageRequest::default())
            .await
            .unwrap();
        eprintln!("plan as {who}:\n{plan}\n");
        if !plan.contains("Bitmap Index Scan on idx_agents_name_trgm") {
            unserved.push(who);
        }
    }
    assert!(
        unserved.is_empty(),
        "not served by idx_agents_name_trgm as {unserved:?} (plans above)"
    );
}
