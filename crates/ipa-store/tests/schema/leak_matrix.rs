//! The leak matrix: raw SQL through the request role, acting for user A, for A before he is
//! signed in, for A's bearer token and for no one, against every table, partition and view of
//! the schema, and against every lookup function. Users A and B and a platform superuser each
//! own rows of every kind; A must read, write, move or delete none of the others' rows.
//!
//! Relations and functions are enumerated from the catalogue, so a table added later is probed
//! without anyone remembering to list it, and fails the test until it is seeded (every table
//! must hold rows of each user) and its rows can be told apart (each row names its owner's ids
//! or tag). The only foreign rows a signed-in user may read are the shared agent catalog's:
//! other users' active agents and their tools.

use std::collections::{BTreeMap, BTreeSet};

use ipa_kernel::{Actor, ClientInfo};
use ipa_store::testing::TestDatabase;
use ipa_store::{ActorTransaction, Store};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};
use uuid::Uuid;

use crate::support::{exec_as, user};

/// Every probe and every seeded sign-in comes from this address (the one `support::user` acts
/// from), so policies that follow the client address are exercised across users.
const ADDRESS: &str = "203.0.113.7";

/// Rows per relation, each as the text of its `to_jsonb`.
type Rows = BTreeMap<String, Vec<String>>;

/// One user's share of the database.
struct World {
    name: &'static str,
    id: Uuid,
    tag: String,
    token_hex: String,
    /// The agents of the shared catalog (active ones).
    catalog: Vec<Uuid>,
    /// Agents in no one else's view and named by no visible row.
    unknown: Vec<Uuid>,
    /// The rows seeding this user added.
    rows: Rows,
    /// What marks a row as this user's: the tag and every id in the user's rows.
    markers: BTreeSet<String>,
}

impl World {
    fn owns(&self, row: &str) -> bool {
        self.markers
            .iter()
            .any(|marker| row.contains(marker.as_str()))
    }
}

/// Whom a probe acts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Context {
    /// User A, signed in, through `ipa_app`.
    User,
    /// A sign-in with A's identifier, before any actor is known.
    SigningIn,
    /// A request presenting A's bearer token, before its session is read.
    Token,
    /// No one.
    Nobody,
    /// The owner role itself with A's settings: a request that forgot to switch roles.
    OwnerForUser,
}

const WRITERS: [Context; 4] = [
    Context::Nobody,
    Context::Token,
    Context::SigningIn,
    Context::User,
];

async fn admin(db: &TestDatabase) -> DatabaseConnection {
    Database::connect(db.admin_url()).await.unwrap()
}

async fn texts(conn: &impl ConnectionTrait, sql: &str, values: Vec<Value>) -> Vec<String> {
    conn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        values,
    ))
    .await
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
    .iter()
    .map(|row| row.try_get_by_index::<String>(0).unwrap())
    .collect()
}

/// Every row of every table, read as the server's superuser (past row level security).
async fn snapshot(admin: &DatabaseConnection) -> Rows {
    let mut rows = Rows::new();
    let tables = texts(
        admin,
        "SELECT c.oid::regclass::text FROM pg_class c \
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY 1",
        vec![],
    )
    .await;
    for table in tables {
        let sql = format!("SELECT to_jsonb(t)::text FROM {table} t");
        rows.insert(table, texts(admin, &sql, vec![]).await);
    }
    rows
}

/// The rows of `after` that `before` does not have (as multisets).
fn added(before: &Rows, after: &Rows) -> Rows {
    let mut result = Rows::new();
    for (table, rows) in after {
        let mut old: Vec<&String> = before
            .get(table)
            .map(|r| r.iter().collect())
            .unwrap_or_default();
        let mut new = Vec::new();
        for row in rows {
            match old.iter().position(|candidate| *candidate == row) {
                Some(index) => {
                    old.swap_remove(index);
                }
                None => new.push(row.clone()),
            }
        }
        if !new.is_empty() {
            result.insert(table.clone(), new);
        }
    }
    result
}

/// Every hyphenated UUID in `text`.
fn uuids_in(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut start = 0;
    while start + 36 <= bytes.len() {
        let candidate = &text[start..start + 36];
        if bytes[start + 8] == b'-' && Uuid::try_parse(candidate).is_ok() {
            found.push(candidate.to_owned());
            start += 36;
        } else {
            start += 1;
        }
    }
    found
}

fn signing_in_actor() -> Actor {
    Actor::anonymous(ClientInfo::new(Some(ADDRESS.parse().unwrap()), None))
}

/// Seeds one user and rows of every kind in that user's name; returns what was added.
async fn seed(
    store: &Store,
    admin: &DatabaseConnection,
    name: &'static str,
    superuser: bool,
) -> World {
    let before = snapshot(admin).await;
    let tag = format!("lm{name}{}", &Uuid::new_v4().simple().to_string()[..8]);
    let id = Uuid::new_v4();
    let token_hex = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    exec_as(
        store,
        &Actor::system(),
        &format!(
            "INSERT INTO users (id, email, username, full_name, hashed_password, is_superuser) \
             VALUES ('{id}', '{tag}@example.com', '{tag}', '{tag}', \
                     '$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA', {superuser})"
        ),
    )
    .await
    .unwrap();
    let [
        agent,
        hidden,
        unknown,
        hidden_group,
        group,
        workflow,
        version,
        run,
        step,
        approval,
    ] = std::array::from_fn(|_| Uuid::new_v4());
    let me = user(id, superuser);
    exec_as(
        store,
        &me,
        &format!(
            r#"
INSERT INTO agents (id, name, type, status, configuration, created_by) VALUES
  ('{agent}', '{tag} agent', 'custom', 'active', '{{"endpoint": "https://x"}}', '{id}'),
  ('{hidden}', '{tag} hidden', 'custom', 'inactive', '{{"endpoint": "https://x"}}', '{id}'),
  ('{unknown}', '{tag} unknown', 'custom', 'inactive', '{{"endpoint": "https://x"}}', '{id}'),
  ('{hidden_group}', '{tag} hidden group', 'autogen', 'inactive',
   '{{"participants": ["{unknown}", "{hidden}"]}}', '{id}'),
  ('{group}', '{tag} group', 'autogen', 'active',
   '{{"participants": ["{hidden}", "{hidden_group}"]}}', '{id}');
INSERT INTO agent_tools (agent_id, tool_name, tool_type, configuration) VALUES
  ('{agent}', 'now', 'function', '{{"function": "current_time"}}'),
  ('{hidden}', 'now', 'function', '{{"function": "current_time"}}');
INSERT INTO workflows (id, name, created_by) VALUES ('{workflow}', '{tag} workflow', '{id}');
INSERT INTO workflow_versions (id, workflow_id, version_number, definition, created_by) VALUES
  ('{version}', '{workflow}', 1,
   '{{"steps": [{{"name": "ask", "type": "agent", "agent_id": "{agent}", "prompt": "{tag}"}}]}}',
   '{id}');
UPDATE workflows SET current_version_id = '{version}', status = 'active' WHERE id = '{workflow}';
INSERT INTO executions (id, workflow_id, workflow_version_id, triggered_by, status, started_at, completed_at)
  VALUES ('{run}', '{workflow}', '{version}', '{id}', 'completed', now() - interval '1 second', now());
INSERT INTO execution_steps (id, execution_id, step_name, step_index, step_type, status)
  VALUES ('{step}', '{run}', 'ask', 0, 'agent', 'completed');
INSERT INTO execution_logs (execution_id, execution_step_id, level, message, created_at) VALUES
  ('{run}', '{step}', 'info', '{tag} this month', now()),
  ('{run}', '{step}', 'info', '{tag} november', '2025-11-15 12:00:00+00'),
  ('{run}', NULL, 'info', '{tag} far ahead', '2100-01-01 00:00:00+00');
INSERT INTO audit_logs (user_id, action, resource_type, resource_id, created_at) VALUES
  ('{id}', 'update', 'probe', '{id}', '2025-11-15 12:00:00+00'),
  ('{id}', 'update', 'probe', '{id}', '2100-01-01 00:00:00+00');
INSERT INTO sessions (user_id, token_hash, idle_expires_at, expires_at, ip_address) VALUES
  ('{id}', decode('{token_hex}', 'hex'), now() + interval '1 hour', now() + interval '1 day', '{ADDRESS}');
"#
        ),
    )
    .await
    .unwrap();
    // An approval step that asked the user, begun as the engine begins it (the system writes who
    // was asked).
    exec_as(
        store,
        &Actor::system(),
        &format!(
            r#"INSERT INTO execution_steps (id, execution_id, step_name, step_index, step_type, status, input_data)
               VALUES ('{approval}', '{run}', 'ok', 1, 'approval', 'completed', '{{"approvers": ["{id}"]}}')"#
        ),
    )
    .await
    .unwrap();
    // A failed sign-in with the user's identifier, recorded as a sign-in records it.
    let txn = store.begin(&signing_in_actor()).await.unwrap();
    let conn = txn.connection();
    conn.execute_unprepared(&format!(
        "SELECT set_config('app.login_identifier', '{tag}', true)"
    ))
    .await
    .unwrap();
    conn.execute_unprepared(&format!(
        "INSERT INTO login_attempts (identifier, ip_address, succeeded) \
         VALUES ('{tag}', ipa_client_ip(), false)"
    ))
    .await
    .unwrap();
    txn.commit().await.unwrap();

    let rows = added(&before, &snapshot(admin).await);
    let mut markers: BTreeSet<String> = rows.values().flatten().flat_map(|r| uuids_in(r)).collect();
    markers.insert(tag.clone());
    World {
        name,
        id,
        tag,
        token_hex,
        catalog: vec![agent, group],
        unknown: vec![unknown],
        rows,
        markers,
    }
}

async fn begin(store: &Store, a: &World, context: Context) -> ActorTransaction {
    let actor = match context {
        Context::User | Context::OwnerForUser => user(a.id, false),
        _ => signing_in_actor(),
    };
    let txn = store.begin(&actor).await.unwrap();
    let setting = match context {
        Context::SigningIn => Some(format!(
            "SELECT set_config('app.login_identifier', '{}', true)",
            a.tag
        )),
        Context::Token => Some(format!(
            "SELECT set_config('app.session_token_hash', '{}', true)",
            a.token_hex
        )),
        Context::OwnerForUser => Some("SELECT set_config('role', 'none', true)".to_owned()),
        Context::User | Context::Nobody => None,
    };
    if let Some(setting) = setting {
        txn.connection().execute_unprepared(&setting).await.unwrap();
    }
    txn
}

/// Runs `sql` in its own transaction for `context`; the rows it returns, or its SQLSTATE. The
/// transaction is committed when `commit` and the statement succeeded.
async fn probe(
    store: &Store,
    a: &World,
    context: Context,
    sql: &str,
    values: Vec<Value>,
    commit: bool,
) -> Result<Vec<String>, String> {
    let txn = begin(store, a, context).await;
    let outcome = txn
        .connection()
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await;
    match outcome {
        Ok(rows) => {
            let rows = rows
                .iter()
                .map(|row| {
                    row.try_get_by_index::<Option<String>>(0)
                        .unwrap()
                        .unwrap_or_else(|| "null".to_owned())
                })
                .collect();
            if commit {
                txn.commit().await.unwrap();
            } else {
                txn.rollback().await.unwrap();
            }
            Ok(rows)
        }
        Err(err) => {
            let code = ipa_store::sql_state(&err).unwrap_or_else(|| format!("{err}"));
            let _ = txn.rollback().await;
            Err(code)
        }
    }
}

/// The relations a probe reaches: tables, partitioned tables, partitions, views, materialized
/// views of the public schema, with their kind.
async fn relations(admin: &DatabaseConnection) -> Vec<(String, String)> {
    let rows = admin
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.oid::regclass::text, c.relkind::text FROM pg_class c \
             WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm') \
             ORDER BY 1",
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
            )
        })
        .collect()
}

/// Whether `row` of `relation`, read in `context`, is one the context may see although it
/// carries another user's marks: a signed-in user reads the shared catalog (active agents and
/// their tools); the owner reads its own materialized view, which cannot have row security.
fn foreign_but_allowed(context: Context, relation: &str, row: &str, others: &[&World]) -> bool {
    if !matches!(context, Context::User | Context::OwnerForUser) {
        return false;
    }
    let value: serde_json::Value = serde_json::from_str(row).unwrap_or_default();
    let catalog = |field: &str| {
        value[field]
            .as_str()
            .and_then(|id| Uuid::try_parse(id).ok())
            .is_some_and(|id| others.iter().any(|w| w.catalog.contains(&id)))
    };
    match relation {
        "agents" => catalog("id") && value["status"] == "active",
        "agent_tools" => catalog("agent_id"),
        "workflow_execution_stats" => context == Context::OwnerForUser,
        _ => false,
    }
}

/// Records every row of `rows` that `context` should not have reached.
fn judge(
    findings: &mut Vec<String>,
    what: &str,
    context: Context,
    relation: &str,
    rows: &[String],
    others: &[&World],
) {
    for row in rows {
        let foreign = others.iter().find(|world| world.owns(row));
        let wrong = match context {
            Context::Nobody => true,
            _ => foreign.is_some() && !foreign_but_allowed(context, relation, row, others),
        };
        if wrong {
            let owner = foreign.map_or("no one", |world| world.name);
            let shown: String = row.chars().take(200).collect();
            findings.push(format!(
                "{context:?} {what} {relation}: reached a row of {owner}: {shown}"
            ));
        }
    }
}

/// How a copy of another user's row is made insertable: fresh keys, unique values changed,
/// references to its owner's rows kept.
async fn perturbation(admin: &DatabaseConnection, relation: &str) -> Vec<(String, String)> {
    let rows = admin
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            format!(
                "SELECT a.attname::text, format_type(a.atttypid, NULL) \
                   FROM pg_attribute a \
                  WHERE a.attrelid = '{relation}'::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                    AND (EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                                  AND i.indisprimary AND a.attnum = ANY (i.indkey)) \
                         OR (EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid \
                                      AND i.indisunique AND a.attnum = ANY (i.indkey)) \
                             AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = a.attrelid \
                                              AND k.contype = 'f' AND a.attnum = ANY (k.conkey)))) \
                    AND format_type(a.atttypid, NULL) NOT LIKE 'timestamp%'"
            ),
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
            )
        })
        .collect()
}

/// A copy of `row` with `columns` changed; `salt` keeps copies of one row apart.
fn perturbed(row: &str, columns: &[(String, String)], salt: i64) -> String {
    let mut value: serde_json::Value = serde_json::from_str(row).unwrap();
    for (column, kind) in columns {
        let field = &mut value[column.as_str()];
        *field = match (kind.as_str(), &*field) {
            ("uuid", _) => serde_json::json!(Uuid::new_v4()),
            (_, serde_json::Value::Number(n)) => {
                serde_json::json!(n.as_i64().unwrap_or(0) + 1_000_000 + salt)
            }
            ("bytea", _) => serde_json::json!(format!(
                "\\x{}{}",
                Uuid::new_v4().simple(),
                Uuid::new_v4().simple()
            )),
            (_, serde_json::Value::String(s)) => serde_json::json!(format!("x{s}")),
            (_, other) => other.clone(),
        };
    }
    value.to_string()
}

/// How many rows user `b` reads in each relation (errors count as none).
async fn counts_as(store: &Store, b: &World, relations: &[(String, String)]) -> Vec<i64> {
    let txn = store.begin(&user(b.id, false)).await.unwrap();
    let counts = counts_in(&txn, relations).await;
    txn.rollback().await.unwrap();
    counts
}

async fn counts_in(txn: &ActorTransaction, relations: &[(String, String)]) -> Vec<i64> {
    let conn = txn.connection();
    let mut counts = Vec::new();
    for (relation, _) in relations {
        conn.execute_unprepared("SAVEPOINT count_probe")
            .await
            .unwrap();
        let count = conn
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                format!("SELECT count(*) FROM {relation}"),
            ))
            .await;
        match count {
            Ok(Some(row)) => counts.push(row.try_get_by_index::<i64>(0).unwrap()),
            _ => {
                conn.execute_unprepared("ROLLBACK TO SAVEPOINT count_probe")
                    .await
                    .unwrap();
                counts.push(0);
            }
        }
    }
    counts
}

/// Foreign-key columns of a table that the request role may update, and its primary key.
async fn keys(admin: &DatabaseConnection, table: &str) -> (Vec<String>, Vec<String>) {
    let references = texts(
        admin,
        &format!(
            "SELECT DISTINCT a.attname::text FROM pg_constraint k \
               JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey) \
              WHERE k.conrelid = '{table}'::regclass AND k.contype = 'f' \
                AND has_column_privilege('ipa_app', k.conrelid, a.attname, 'UPDATE') ORDER BY 1"
        ),
        vec![],
    )
    .await;
    let primary = texts(
        admin,
        &format!(
            "SELECT a.attname::text FROM pg_index i \
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey) \
              WHERE i.indrelid = '{table}'::regclass AND i.indisprimary ORDER BY 1"
        ),
        vec![],
    )
    .await;
    (references, primary)
}

#[tokio::test]
async fn no_user_reads_or_changes_another_users_rows_through_the_request_role() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let admin = admin(&db).await;

    let a = seed(&store, &admin, "alpha", false).await;
    let b = seed(&store, &admin, "beta", false).await;
    let s = seed(&store, &admin, "root", true).await;
    ipa_store::maintenance::refresh_workflow_stats(&store)
        .await
        .unwrap();
    let others = [&b, &s];
    let relations = relations(&admin).await;
    let mut findings = Vec::new();

    // The seed covers the schema: every table (a partitioned one through its partitions) holds
    // rows of each user, and every such row carries its owner's marks and no one else's.
    let parents: BTreeMap<String, String> = admin
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT inhrelid::regclass::text, inhparent::regclass::text FROM pg_inherits",
        ))
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
            )
        })
        .collect();
    let root = |table: &str| {
        parents
            .get(table)
            .cloned()
            .unwrap_or_else(|| table.to_owned())
    };
    for world in [&a, &b, &s] {
        let covered: BTreeSet<String> = world.rows.keys().map(|table| root(table)).collect();
        for (relation, kind) in &relations {
            if matches!(kind.as_str(), "r" | "p")
                && !parents.contains_key(relation)
                && relation != "seaql_migrations"
            {
                assert!(
                    covered.contains(relation),
                    "{relation} holds no row of {}: seed it in leak_matrix.rs",
                    world.name
                );
            }
        }
        for (table, rows) in &world.rows {
            for row in rows {
                assert!(
                    world.owns(row),
                    "a row of {table} carries no mark of {}: {row}",
                    world.name
                );
                for other in [&a, &b, &s] {
                    if other.name != world.name {
                        assert!(
                            !other.owns(row),
                            "a row of {table} of {} carries marks of {}",
                            world.name,
                            other.name
                        );
                    }
                }
            }
        }
    }
    for partition in [
        "execution_logs_default",
        "execution_logs_2025_11",
        "audit_logs_default",
        "audit_logs_2025_11",
    ] {
        assert!(b.rows.contains_key(partition), "{partition} is seeded");
    }

    // SELECT, in every context, from every relation.
    let mut read_by_user = BTreeMap::new();
    for context in [
        Context::Nobody,
        Context::Token,
        Context::SigningIn,
        Context::User,
        Context::OwnerForUser,
    ] {
        for (relation, _) in &relations {
            let sql = format!("SELECT to_jsonb(t)::text FROM {relation} t");
            let rows = probe(&store, &a, context, &sql, vec![], false)
                .await
                .unwrap_or_default();
            judge(&mut findings, "SELECT", context, relation, &rows, &others);
            if context == Context::User {
                read_by_user.insert(relation.clone(), rows);
            }
        }
    }
    // The probes reach what they should: A's own rows and the shared catalog.
    for relation in [
        "users",
        "workflows",
        "workflow_versions",
        "executions",
        "execution_steps",
        "execution_logs",
        "execution_logs_default",
        "execution_logs_2025_11",
        "agents",
        "agent_tools",
        "audit_logs",
        "audit_logs_default",
        "audit_logs_2025_11",
        "sessions",
        "visible_workflow_execution_stats",
    ] {
        let rows = read_by_user.get(relation).cloned().unwrap_or_default();
        if !rows.iter().any(|row| a.owns(row)) {
            findings.push(format!(
                "User SELECT {relation}: A reads none of his own rows"
            ));
        }
    }
    assert!(
        read_by_user["agents"].iter().any(|row| b.owns(row)),
        "A reads B's active agents (the shared catalog)"
    );

    let mut salt = 0;
    // INSERT: a copy of every row of B and of the superuser (new keys, same owner and parents),
    // into its table and, for a partition, into its parent too.
    for (table, _) in relations.iter().filter(|(_, kind)| kind == "r") {
        let mut targets = vec![table.clone()];
        if let Some(parent) = parents.get(table) {
            targets.push(parent.clone());
        }
        for target in targets {
            let columns = perturbation(&admin, &target).await;
            for world in &others {
                for row in world.rows.get(table).into_iter().flatten() {
                    let sql = format!(
                        "INSERT INTO {target} SELECT * FROM jsonb_populate_record(NULL::{target}, $1::jsonb) \
                         RETURNING 'inserted'"
                    );
                    for context in WRITERS {
                        salt += 1;
                        let copy = perturbed(row, &columns, salt);
                        match probe(&store, &a, context, &sql, vec![copy.into()], true).await {
                            Ok(_) => findings.push(format!(
                                "{context:?} INSERT {target}: wrote a copy of a row of {}",
                                world.name
                            )),
                            Err(code) if code == "42501" => {}
                            Err(code) => findings.push(format!(
                                "{context:?} INSERT {target}: a copy of a row of {} was refused \
                                 with {code}, not by row security or privileges",
                                world.name
                            )),
                        }
                    }
                }
            }
        }
    }

    // UPDATE that moves one of A's rows towards B's: every combination of its references
    // (foreign-key columns the request role may update) set to a row of B's values. Whatever the
    // database allows must leave B seeing exactly what he saw.
    let b_sees = counts_as(&store, &b, &relations).await;
    for (table, _) in relations.iter().filter(|(_, kind)| kind == "r") {
        let (references, primary) = keys(&admin, table).await;
        let (Some(mine), Some(theirs)) = (
            a.rows.get(table).and_then(|rows| rows.first()),
            b.rows.get(table),
        ) else {
            continue;
        };
        if references.is_empty() || primary.is_empty() {
            continue;
        }
        let key = primary.join(", ");
        let key_of_row = primary
            .iter()
            .map(|c| format!("k.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        for subset in 1..(1u32 << references.len()) {
            let chosen: Vec<&String> = references
                .iter()
                .enumerate()
                .filter(|(i, _)| subset & (1 << i) != 0)
                .map(|(_, c)| c)
                .collect();
            let targets = chosen
                .iter()
                .map(|c| c.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let sources = chosen
                .iter()
                .map(|c| format!("v.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "UPDATE {table} SET ({targets}) = (SELECT {sources} FROM jsonb_populate_record(NULL::{table}, $2::jsonb) v) \
                 WHERE ({key}) = (SELECT {key_of_row} FROM jsonb_populate_record(NULL::{table}, $1::jsonb) k)"
            );
            for target in theirs.iter().take(2) {
                for context in [Context::User, Context::SigningIn, Context::Token] {
                    let txn = begin(&store, &a, context).await;
                    let conn = txn.connection();
                    let moved = conn
                        .execute_raw(Statement::from_sql_and_values(
                            DbBackend::Postgres,
                            &sql,
                            [mine.clone().into(), target.clone().into()],
                        ))
                        .await;
                    if let Ok(result) = moved
                        && result.rows_affected() > 0
                    {
                        conn.execute_unprepared(&format!(
                            "SELECT set_config('role', 'ipa_app', true), \
                                    set_config('app.current_user_id', '{}', true), \
                                    set_config('app.is_superuser', 'false', true), \
                                    set_config('app.login_identifier', '', true), \
                                    set_config('app.session_token_hash', '', true)",
                            b.id
                        ))
                        .await
                        .unwrap();
                        let now_sees = counts_in(&txn, &relations).await;
                        for (index, (relation, _)) in relations.iter().enumerate() {
                            if now_sees[index] != b_sees[index] {
                                findings.push(format!(
                                    "{context:?} UPDATE {table} SET ({targets}) to B's values: B now \
                                     reads {} rows of {relation} instead of {}",
                                    now_sees[index], b_sees[index]
                                ));
                            }
                        }
                    }
                    let _ = txn.rollback().await;
                }
            }
        }
    }

    // UPDATE of every column the request role may update, and DELETE, of everything each
    // context reaches (committed: A's own rows may change and go).
    for (relation, kind) in relations
        .iter()
        .filter(|(_, kind)| matches!(kind.as_str(), "r" | "p"))
    {
        let _ = kind;
        let columns = texts(
            &admin,
            &format!(
                "SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = '{relation}'::regclass \
                 AND a.attnum > 0 AND NOT a.attisdropped \
                 AND has_column_privilege('ipa_app', a.attrelid, a.attname, 'UPDATE') ORDER BY 1"
            ),
            vec![],
        )
        .await;
        for column in columns {
            let sql = format!(
                "UPDATE {relation} t SET {column} = t.{column} RETURNING to_jsonb(t)::text"
            );
            for context in WRITERS {
                if let Ok(rows) = probe(&store, &a, context, &sql, vec![], true).await {
                    judge(&mut findings, "UPDATE", context, relation, &rows, &others);
                }
            }
        }
    }
    for (relation, _) in relations
        .iter()
        .filter(|(_, kind)| matches!(kind.as_str(), "r" | "p"))
    {
        let sql = format!("DELETE FROM {relation} t RETURNING to_jsonb(t)::text");
        for context in WRITERS {
            if let Ok(rows) = probe(&store, &a, context, &sql, vec![], true).await {
                judge(&mut findings, "DELETE", context, relation, &rows, &others);
            }
        }
    }

    // B's and the superuser's rows are all still there, unchanged.
    let after = snapshot(&admin).await;
    for world in &others {
        for (table, rows) in &world.rows {
            let now = after.get(table).cloned().unwrap_or_default();
            for row in rows {
                if !now.contains(row) {
                    let shown: String = row.chars().take(200).collect();
                    findings.push(format!(
                        "a row of {} in {table} changed or went: {shown}",
                        world.name
                    ));
                }
            }
        }
    }

    assert!(
        findings.is_empty(),
        "{} leaks:\n{}",
        findings.len(),
        findings.join("\n")
    );
}

#[tokio::test]
async fn lookups_past_row_level_security_answer_only_what_the_caller_may_know() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let admin = admin(&db).await;
    let a = seed(&store, &admin, "alpha", false).await;
    let b = seed(&store, &admin, "beta", false).await;
    let s = seed(&store, &admin, "root", true).await;
    let others = [&b, &s];

    // Every function a request could call is accounted for here; trigger functions cannot be
    // called and are left out.
    let functions = texts(
        &admin,
        "SELECT p.proname::text FROM pg_proc p \
          WHERE p.pronamespace = 'public'::regnamespace AND p.prorettype <> 'trigger'::regtype \
          ORDER BY 1",
        vec![],
    )
    .await;
    const SETTINGS: &[&str] = &[
        "ipa_client_ip",
        "ipa_current_user_id",
        "ipa_is_superuser",
        "ipa_login_identifier",
        "ipa_session_token_hash",
        "ipa_user_agent",
    ];
    const PURE: &[&str] = &["ipa_is_secret_key", "ipa_redact_secrets"];
    const OWNER_ONLY: &[&str] = &["ipa_copy_row_security", "ipa_ensure_monthly_partitions"];
    const LOOKUPS: &[&str] = &[
        "ipa_address_failure_at",
        "ipa_agent_graph",
        "ipa_agent_states",
        "ipa_agent_usage",
        "ipa_authenticate",
        "ipa_user_states",
    ];
    // Functions that read only through the caller's own row level security (no raised context),
    // so they cannot answer more than the caller's own queries would.
    const UNDER_ROW_SECURITY: &[&str] = &["ipa_was_asked_about"];
    for function in &functions {
        assert!(
            [SETTINGS, PURE, OWNER_ONLY, LOOKUPS, UNDER_ROW_SECURITY]
                .iter()
                .any(|known| known.contains(&function.as_str())),
            "{function} is not probed: say in leak_matrix.rs what it may answer"
        );
    }

    let everyone = [&a, &b, &s];
    let all_users = everyone
        .iter()
        .map(|w| w.id.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let agent_ids = |w: &World| -> Vec<String> {
        w.rows["agents"]
            .iter()
            .map(|row| {
                serde_json::from_str::<serde_json::Value>(row).unwrap()["id"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    let all_agents = everyone
        .iter()
        .flat_map(|w| agent_ids(w))
        .collect::<Vec<_>>()
        .join(",");
    let catalog = others
        .iter()
        .flat_map(|w| w.catalog.iter().map(Uuid::to_string))
        .collect::<Vec<_>>()
        .join(",");
    // What A may know: his rows, the catalog's rows (participants included), and what he asks about.
    let mut known: BTreeSet<String> = a.markers.clone();
    for world in &others {
        for relation in ["agents", "agent_tools"] {
            for row in &world.rows[relation] {
                if foreign_but_allowed(Context::User, relation, row, &others) {
                    known.extend(uuids_in(row));
                }
            }
        }
    }

    let mut findings = Vec::new();
    let mut calls: Vec<(String, Vec<String>)> = vec![
        (
            format!("SELECT to_jsonb(t)::text FROM ipa_user_states('{{{all_users}}}'::uuid[]) t"),
            everyone.iter().map(|w| w.id.to_string()).collect(),
        ),
        (
            format!("SELECT to_jsonb(t)::text FROM ipa_agent_states('{{{all_agents}}}'::uuid[]) t"),
            all_agents.split(',').map(str::to_owned).collect(),
        ),
        (
            format!("SELECT to_jsonb(t)::text FROM ipa_agent_graph('{{{catalog}}}'::uuid[]) t"),
            catalog.split(',').map(str::to_owned).collect(),
        ),
        (
            "SELECT to_jsonb(t)::text FROM ipa_address_failure_at(3600, 1, 60) t".to_owned(),
            vec![],
        ),
    ];
    for agent in all_agents.split(',') {
        calls.push((
            format!("SELECT to_jsonb(t)::text FROM ipa_agent_usage('{agent}') t"),
            vec![agent.to_owned()],
        ));
    }
    // Authentication answers the session of the token presented, whatever the context, and
    // nothing for a token no session has: presenting a token is what shows its account.
    for context in [
        Context::User,
        Context::SigningIn,
        Context::Token,
        Context::Nobody,
    ] {
        for (world, expected) in [(&a, Some(a.id)), (&b, Some(b.id)), (&s, Some(s.id))]
            .into_iter()
            .map(|(world, id)| (world.token_hex.clone(), id))
            .chain([("00".repeat(32), None)])
        {
            let sql = format!(
                "SELECT to_jsonb(t)::text FROM ipa_authenticate(decode('{world}', 'hex'), 3600, 60) t"
            );
            let rows = probe(&store, &a, context, &sql, vec![], false)
                .await
                .unwrap_or_else(|code| panic!("{sql}: {code}"));
            match expected {
                Some(user) => {
                    assert_eq!(rows.len(), 1, "{context:?} {sql}: {rows:?}");
                    assert!(rows[0].contains(&user.to_string()), "{context:?}: {rows:?}");
                }
                None => assert!(rows.is_empty(), "{context:?} {sql}: {rows:?}"),
            }
        }
    }

    for (sql, asked) in &calls {
        for context in [
            Context::User,
            Context::SigningIn,
            Context::Token,
            Context::Nobody,
        ] {
            let rows = probe(&store, &a, context, sql, vec![], false)
                .await
                .unwrap_or_else(|code| panic!("{sql}: {code}"));
            if sql.contains("ipa_address_failure_at") {
                // A time, and only to a sign-in from the address (the seeded failures are from
                // it); never an identifier.
                let answered = rows.iter().any(|row| row != "null");
                assert_eq!(
                    answered,
                    context == Context::SigningIn,
                    "{context:?} {sql}: {rows:?}"
                );
                for row in &rows {
                    assert!(
                        uuids_in(row).is_empty() && !others.iter().any(|w| w.owns(row)),
                        "{row}"
                    );
                }
                continue;
            }
            for row in &rows {
                if row == "null" {
                    continue;
                }
                if context != Context::User {
                    findings.push(format!("{context:?} {sql}: answered {row}"));
                    continue;
                }
                for id in uuids_in(row) {
                    if !known.contains(&id) && !asked.contains(&id) {
                        let owner = others
                            .iter()
                            .find(|w| w.markers.contains(&id))
                            .map_or("no one", |w| w.name);
                        findings.push(format!("{sql}: told A about {id} of {owner}: {row}"));
                    }
                }
            }
        }
    }
    // The graph still walks through what A cannot see: B's visible group reaches B's hidden one,
    // which stands for nothing A could see, and never names B's unknown agent.
    let graph = probe(&store, &a, Context::User, &calls[2].0, vec![], false)
        .await
        .unwrap();
    assert!(
        graph.iter().any(|row| row.contains("\"visible\": false")),
        "{graph:?}"
    );
    for world in &others {
        for unknown in &world.unknown {
            assert!(
                !graph.iter().any(|row| row.contains(&unknown.to_string())),
                "{graph:?}"
            );
        }
    }
    // The owner's functions refuse the request role.
    for sql in [
        "SELECT ipa_copy_row_security('execution_logs', 'execution_logs_default')::text",
        "SELECT ipa_ensure_monthly_partitions('execution_logs', '2090-01-01', 1)::text",
    ] {
        let outcome = probe(&store, &a, Context::User, sql, vec![], true).await;
        assert!(
            outcome.is_err(),
            "{sql} ran as the request role: {outcome:?}"
        );
    }
    assert!(
        findings.is_empty(),
        "{} leaks:\n{}",
        findings.len(),
        findings.join("\n")
    );
}

#[tokio::test]
async fn a_run_keeps_its_workflow_version_and_starter() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let admin = admin(&db).await;
    let a = seed(&store, &admin, "alpha", false).await;
    let b = seed(&store, &admin, "beta", false).await;
    let field = |world: &World, table: &str, column: &str| -> String {
        let row: serde_json::Value = serde_json::from_str(&world.rows[table][0]).unwrap();
        row[column].as_str().unwrap().to_owned()
    };
    let run = field(&a, "executions", "id");
    let (workflow, version) = (
        field(&b, "executions", "workflow_id"),
        field(&b, "executions", "workflow_version_id"),
    );
    // Fixed for the run's own user and for the platform itself alike.
    for actor in [user(a.id, false), Actor::system()] {
        for set in [
            format!("workflow_id = '{workflow}', workflow_version_id = '{version}'"),
            format!("triggered_by = '{}'", b.id),
        ] {
            let refused = exec_as(
                &store,
                &actor,
                &format!("UPDATE executions SET {set} WHERE id = '{run}'"),
            )
            .await;
            assert_eq!(crate::support::state(refused), "55000", "{set}");
        }
    }
    let step = field(&a, "execution_steps", "id");
    let refused = exec_as(
        &store,
        &Actor::system(),
        &format!(
            "UPDATE execution_steps SET execution_id = '{}' WHERE id = '{step}'",
            field(&b, "executions", "id")
        ),
    )
    .await;
    assert_eq!(crate::support::state(refused), "55000");
    let refused = exec_as(
        &store,
        &Actor::system(),
        &format!(
            "UPDATE sessions SET user_id = '{}' WHERE user_id = '{}'",
            b.id, a.id
        ),
    )
    .await;
    assert_eq!(crate::support::state(refused), "55000");
    // What a run may change still changes.
    exec_as(
        &store,
        &user(a.id, false),
        &format!("UPDATE executions SET status = 'failed' WHERE id = '{run}'"),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_asked_approver_sees_the_run_and_nothing_of_its_workflow() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let admin = admin(&db).await;
    let a = seed(&store, &admin, "alpha", false).await;
    let b = seed(&store, &admin, "beta", false).await;
    let run = {
        let row: serde_json::Value = serde_json::from_str(&a.rows["executions"][0]).unwrap();
        row["id"].as_str().unwrap().to_owned()
    };
    let count = |actor: Actor, sql: String| {
        let store = &store;
        async move {
            let txn = store.begin(&actor).await.unwrap();
            let found = texts(
                txn.connection(),
                &format!("SELECT count(*)::text FROM ({sql}) q"),
                vec![],
            )
            .await;
            txn.commit().await.unwrap();
            found[0].parse::<i64>().unwrap()
        }
    };
    let as_b = || user(b.id, false);
    let seen_by_b = |sql: &str| count(as_b(), sql.replace("$run", &run));
    assert_eq!(
        seen_by_b("SELECT 1 FROM executions WHERE id = '$run'").await,
        0
    );

    // B asked about a step of A's run, as the engine asks: B sees the run, its steps and lines.
    exec_as(
        &store,
        &Actor::system(),
        &format!(
            r#"INSERT INTO execution_steps (execution_id, step_name, step_index, step_type, status, input_data)
               VALUES ('{run}', 'b decides', 2, 'approval', 'running', '{{"approvers": ["{}", "not-an-id", "{}"]}}')"#,
            b.id,
            Uuid::new_v4()
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        seen_by_b("SELECT 1 FROM execution_approvers WHERE execution_id = '$run'").await,
        1
    );
    assert_eq!(
        seen_by_b("SELECT 1 FROM executions WHERE id = '$run'").await,
        1
    );
    assert_eq!(
        seen_by_b("SELECT 1 FROM execution_steps WHERE execution_id = '$run'").await,
        3
    );
    assert_eq!(
        seen_by_b("SELECT 1 FROM execution_logs WHERE execution_id = '$run'").await,
        3
    );
    // Not A's workflow, its version, A's account, sessions or audit rows (agents are a shared
    // catalog, read by everyone).
    for table in [
        "workflows",
        "workflow_versions",
        "users",
        "sessions",
        "audit_logs",
    ] {
        let a_rows = count(
            as_b(),
            format!("SELECT 1 FROM {table} t WHERE t::text LIKE '%{}%'", a.id),
        )
        .await;
        assert_eq!(a_rows, 0, "B reads A's {table}");
    }
    assert_eq!(
        count(
            user(a.id, false),
            "SELECT 1 FROM execution_approvers".to_owned()
        )
        .await,
        1,
        "A reads only the request made of A"
    );
    // B may record a decision (update the run and the step, write its lines), nothing more.
    exec_as(
        &store,
        &as_b(),
        &format!(
            "UPDATE execution_steps SET status = 'completed' WHERE execution_id = '{run}' AND step_index = 2; \
             UPDATE executions SET status = 'pending' WHERE id = '{run}'; \
             INSERT INTO execution_logs (execution_id, level, message) VALUES ('{run}', 'info', 'decided')"
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        seen_by_b("SELECT 1 FROM executions WHERE id = '$run'").await,
        1,
        "and still sees it"
    );
    for refused in [
        format!(
            "INSERT INTO execution_approvers (step_id, user_id, execution_id) SELECT id, '{}', execution_id FROM execution_steps WHERE execution_id = '{run}' AND step_index = 0",
            b.id
        ),
        format!(
            "INSERT INTO executions (workflow_id, workflow_version_id, triggered_by) SELECT workflow_id, workflow_version_id, '{}' FROM executions WHERE id = '{run}'",
            b.id
        ),
    ] {
        assert!(
            exec_as(&store, &as_b(), &refused).await.is_err(),
            "{refused}"
        );
    }
    exec_as(
        &store,
        &as_b(),
        &format!("DELETE FROM executions WHERE id = '{run}'"),
    )
    .await
    .unwrap();
    assert_eq!(
        seen_by_b("SELECT 1 FROM executions WHERE id = '$run'").await,
        1,
        "not deleted"
    );
}

#[tokio::test]
async fn partitions_created_later_carry_their_parents_row_security() {
    let db = TestDatabase::migrated().await;
    let store = db.store().await;
    let admin = admin(&db).await;
    // As the server's maintenance does it: the owner's connection, no actor.
    store
        .owner_connection()
        .execute_unprepared(
            "SELECT ipa_ensure_monthly_partitions('execution_logs', '2090-01-01', 2), \
                    ipa_ensure_monthly_partitions('audit_logs', '2090-01-01', 2)",
        )
        .await
        .unwrap();
    // Each partition's row security, policies (named, with their commands and expressions in
    // the partition's own name) and grants, written as its parent's would be.
    let described = texts(
        &admin,
        "SELECT c.relname || ' -> ' || c.relrowsecurity || ' ' || c.relforcerowsecurity || ' ' \
                || coalesce(c.relacl::text, '') || ' ' \
                || coalesce((SELECT string_agg(pol.polname || ':' || pol.polcmd::text || ':' || pol.polpermissive::text \
                                               || ':' || coalesce(pg_get_expr(pol.polqual, pol.polrelid), '') \
                                               || ':' || coalesce(pg_get_expr(pol.polwithcheck, pol.polrelid), ''), \
                                               ' ' ORDER BY pol.polname) \
                               FROM pg_policy pol WHERE pol.polrelid = c.oid), '') \
           FROM pg_class c \
          WHERE c.relname IN ('execution_logs', 'audit_logs') \
             OR c.oid IN (SELECT inhrelid FROM pg_inherits \
                           WHERE inhparent IN ('execution_logs'::regclass, 'audit_logs'::regclass)) \
          ORDER BY 1",
        vec![],
    )
    .await;
    let parents: BTreeMap<&str, &str> = described
        .iter()
        .filter_map(|line| line.split_once(" -> "))
        .filter(|(name, _)| *name == "execution_logs" || *name == "audit_logs")
        .collect();
    assert_eq!(parents.len(), 2, "{described:#?}");
    let mut partitions = 0;
    for line in &described {
        let (name, security) = line.split_once(" -> ").unwrap();
        if parents.contains_key(name) {
            continue;
        }
        partitions += 1;
        let parent = parents
            .keys()
            .find(|parent| name.starts_with(*parent))
            .unwrap();
        // A policy refers to the row by its own table's name.
        assert_eq!(
            security.replace(&format!("{name}."), "<>."),
            parents[parent].replace(&format!("{parent}."), "<>."),
            "{name} differs from {parent}"
        );
        assert!(security.starts_with("true true "), "{line}");
    }
    // The seed's November, this month and three ahead, the two added here and the DEFAULT ones.
    assert!(partitions >= 2 * 8, "{described:#?}");
    assert!(
        described
            .iter()
            .any(|line| line.starts_with("audit_logs_2090_02 -> "))
    );
}
