//! Helpers shared by the schema tests: running SQL as an actor and reading single values.

use ipa_kernel::{Actor, ClientInfo, UserAgent, UserId};
use ipa_store::{ActorTransaction, Store};
use sea_orm::{ConnectionTrait, DbErr, QueryResult, Statement, TryGetable};
use uuid::Uuid;

/// Every table of the seed.
pub const TABLES: &[&str] = &[
    "users",
    "workflows",
    "workflow_versions",
    "executions",
    "execution_steps",
    "execution_logs",
    "agents",
    "agent_tools",
    "audit_logs",
];

/// Runs `sql` in its own committed transaction as `actor`.
pub async fn exec_as(store: &Store, actor: &Actor, sql: &str) -> Result<(), DbErr> {
    let txn = store.begin(actor).await.unwrap();
    txn.connection().execute_unprepared(sql).await?;
    txn.commit().await.unwrap();
    Ok(())
}

/// The first column of the first row of `sql`, read as `actor`.
pub async fn scalar_as<T: TryGetable>(store: &Store, actor: &Actor, sql: &str) -> T {
    let txn = store.begin(actor).await.unwrap();
    let value = scalar(&txn, sql).await;
    txn.commit().await.unwrap();
    value
}

/// The first column of the first row of `sql` in a transaction.
pub async fn scalar<T: TryGetable>(txn: &ActorTransaction, sql: &str) -> T {
    let row = txn
        .connection()
        .query_one_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
        .unwrap_or_else(|| panic!("{sql}: no row"));
    row.try_get_by_index(0).unwrap()
}

/// Every row of `sql` on the owner's connection (outside any actor context).
pub async fn rows_as_owner(store: &Store, sql: &str) -> Vec<QueryResult> {
    store
        .owner_connection()
        .query_all_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// A signed-in user acting from a known client.
pub fn user(id: Uuid, superuser: bool) -> Actor {
    Actor::user(
        UserId::from_uuid(id),
        superuser,
        ClientInfo::new(
            Some("203.0.113.7".parse().unwrap()),
            UserAgent::parse("schema-tests/1.0"),
        ),
    )
}

/// Creates a user (as the system) and returns its id.
pub async fn create_user(store: &Store, name: &str) -> Uuid {
    let id = Uuid::new_v4();
    exec_as(
        store,
        &Actor::system(),
        &format!(
            "INSERT INTO users (id, email, username, hashed_password) \
             VALUES ('{id}', '{name}@example.com', '{name}', '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA')"
        ),
    )
    .await
    .unwrap();
    id
}

/// Creates a workflow of `owner` (acting as the owner) and returns its id.
pub async fn create_workflow(store: &Store, owner: Uuid, name: &str) -> Uuid {
    let id = Uuid::new_v4();
    exec_as(
        store,
        &user(owner, false),
        &format!(
            "INSERT INTO workflows (id, name, created_by) VALUES ('{id}', '{name}', '{owner}')"
        ),
    )
    .await
    .unwrap();
    id
}

/// Creates version `number` of a workflow (acting as its owner) and returns its id.
pub async fn create_version(store: &Store, owner: Uuid, workflow: Uuid, number: i32) -> Uuid {
    let id = Uuid::new_v4();
    exec_as(
        store,
        &user(owner, false),
        &format!(
            "INSERT INTO workflow_versions (id, workflow_id, version_number, definition, created_by) \
             VALUES ('{id}', '{workflow}', {number}, '{{\"steps\": []}}', '{owner}')"
        ),
    )
    .await
    .unwrap();
    id
}

/// The SQLSTATE of a failed statement.
pub fn state(result: Result<(), DbErr>) -> String {
    match result {
        Ok(()) => panic!("the statement succeeded but should have failed"),
        Err(err) => ipa_store::sql_state(&err).unwrap_or_else(|| panic!("no SQLSTATE in {err}")),
    }
}

/// A user ("alice") owning a workflow ("invoices") with a first version: (user, workflow, version).
pub async fn user_with_a_workflow_version(store: &Store) -> (Uuid, Uuid, Uuid) {
    let alice = create_user(store, "alice").await;
    let workflow = create_workflow(store, alice, "invoices").await;
    let version = create_version(store, alice, workflow, 1).await;
    (alice, workflow, version)
}
