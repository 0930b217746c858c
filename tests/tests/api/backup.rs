//! Backups, with the exact commands of `docs/operations.md`: a populated database dumped by a
//! backup role that bypasses row level security, restored by the owner into an empty database,
//! holds every row of every table again, keeps its row security, and serves.

use std::path::Path;
use std::process::Command;

use ipa_store::cluster::PostgresBinaries;
use ipa_store::testing::{OWNER_ROLE, TestDatabase};
use reqwest::{Method, Url};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::json;
use tests::TestServer;

/// The backup role of the tests (cluster-wide, like the owner role of the harness).
const BACKUP_ROLE: &str = "ipa_test_backup";

/// Runs a PostgreSQL client program to completion, off the async threads.
async fn run_client(program: std::path::PathBuf, args: Vec<String>) {
    let shown = format!("{} {}", program.display(), args.join(" "));
    let output = tokio::task::spawn_blocking(move || Command::new(program).args(args).output())
        .await
        .unwrap()
        .unwrap_or_else(|err| panic!("{shown}: {err}"));
    assert!(
        output.status.success(),
        "{shown}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn as_role(url: &str, role: &str) -> String {
    let mut url = Url::parse(url).unwrap();
    url.set_username(role).unwrap();
    url.set_password(Some(role)).unwrap();
    url.to_string()
}

/// Per table: its row count and a checksum of its rows; per relation: its row security and
/// grants. Read as the server's superuser, past row level security.
async fn fingerprint(admin: &DatabaseConnection) -> Vec<String> {
    let relations = admin
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT c.oid::regclass::text, c.relkind::text, \
                    c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text || ' ' \
                    || coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", \
                                                     c.relowner))::text \
               FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace \
                AND c.relkind IN ('r', 'p', 'v', 'm', 'S') ORDER BY 1",
        ))
        .await
        .unwrap();
    let mut result = Vec::new();
    for relation in relations {
        let name: String = relation.try_get_by_index(0).unwrap();
        let kind: String = relation.try_get_by_index(1).unwrap();
        let security: String = relation.try_get_by_index(2).unwrap();
        result.push(format!("{name} {kind} {security}"));
        let content = match kind.as_str() {
            "r" => format!(
                "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(r, E'\\n' ORDER BY r)), '-') \
                   FROM (SELECT to_jsonb(t)::text AS r FROM {name} t) rows"
            ),
            "S" => format!("SELECT last_value::text || ' ' || is_called::text FROM {name}"),
            _ => continue,
        };
        let row = admin
            .query_one_raw(Statement::from_string(DbBackend::Postgres, content))
            .await
            .unwrap()
            .unwrap();
        result.push(format!(
            "{name} {}",
            row.try_get_by_index::<String>(0).unwrap()
        ));
    }
    result
}

#[tokio::test]
async fn a_dump_restored_by_the_owner_into_an_empty_database_has_every_row_and_serves() {
    let server = TestServer::start().await;
    let (alice, token) = server.signed_in("alice", false).await;
    let (_bob, bobs_token) = server.signed_in("bob", false).await;
    let workflow = server
        .active_workflow(
            &token,
            "kept",
            json!({"steps": [{"name": "ok", "type": "approval", "message": "Go?"}]}),
        )
        .await;
    let started = server.start_run(&token, &workflow, json!({"n": 1})).await;
    let run_id = started["id"].as_str().unwrap().to_owned();
    let (status, agent) = server
        .json(
            Method::POST,
            "/agents",
            Some(&token),
            Some(json!({"name": "kept agent", "type": "custom",
                        "configuration": {"endpoint": "https://agents.example/turn"}})),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    // Rows in the partitions of another month and in the DEFAULT ones.
    server
        .database()
        .execute(&format!(
            "INSERT INTO execution_logs (execution_id, level, message, created_at) VALUES \
               ('{run_id}', 'info', 'november', '2025-11-15 12:00:00+00'), \
               ('{run_id}', 'info', 'far ahead', '2100-01-01 00:00:00+00'); \
             INSERT INTO audit_logs (user_id, action, resource_type, created_at) VALUES \
               ('{}', 'update', 'probe', '2100-01-01 00:00:00+00')",
            alice.id
        ))
        .await;
    let source = server.database();
    let source_admin = Database::connect(source.admin_url()).await.unwrap();

    // docs/operations.md, "The backup role": once, as a superuser.
    source_admin
        .execute_unprepared(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{BACKUP_ROLE}') THEN \
             CREATE ROLE {BACKUP_ROLE} LOGIN BYPASSRLS PASSWORD '{BACKUP_ROLE}'; END IF; END $$; \
             GRANT pg_read_all_data TO {BACKUP_ROLE};"
        ))
        .await
        .unwrap();

    // "Backing up".
    let binaries = PostgresBinaries::locate(
        std::env::var_os("IPA_POSTGRES_BIN_DIR")
            .as_deref()
            .map(Path::new),
    )
    .unwrap();
    let dump_dir = std::env::temp_dir().join(format!("ipa-backup-test-{}", std::process::id()));
    std::fs::create_dir_all(&dump_dir).unwrap();
    let dump = dump_dir.join(format!("{}.dump", source.name()));
    run_client(
        binaries.program("pg_dump"),
        vec![
            "--format=custom".into(),
            format!("--file={}", dump.display()),
            format!("--dbname={}", as_role(source.owner_url(), BACKUP_ROLE)),
        ],
    )
    .await;

    // "Restoring": the roles and an empty database owned by the owner, then pg_restore as the
    // owner.
    let target = TestDatabase::empty().await;
    let target_admin = Database::connect(target.admin_url()).await.unwrap();
    target_admin
        .execute_unprepared(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ipa_app') THEN \
             CREATE ROLE ipa_app NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS; \
             END IF; END $$; \
             GRANT ipa_app TO {OWNER_ROLE}; {}",
            ipa_store::cluster::LEAKPROOF_FILTERS_SQL
        ))
        .await
        .unwrap();
    // The list of what the dump holds, less the materialized view's data: pg_restore would
    // compute the view with row level security already forced and no actor, which PostgreSQL
    // refuses. The server computes it instead (or the command below).
    let listed = Command::new(binaries.program("pg_restore"))
        .arg("--list")
        .arg(&dump)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let list: String = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.contains("MATERIALIZED VIEW DATA"))
        .map(|line| format!("{line}\n"))
        .collect();
    let list_file = dump_dir.join("restore.list");
    std::fs::write(&list_file, list).unwrap();
    run_client(
        binaries.program("pg_restore"),
        vec![
            "--no-owner".into(),
            "--single-transaction".into(),
            format!("--use-list={}", list_file.display()),
            format!("--dbname={}", target.owner_url()),
            dump.display().to_string(),
        ],
    )
    .await;
    run_client(
        binaries.program("psql"),
        vec![
            format!("--dbname={}", target.owner_url()),
            "--command=BEGIN; SELECT set_config('app.is_superuser', 'true', true); \
             REFRESH MATERIALIZED VIEW workflow_execution_stats; COMMIT;"
                .into(),
        ],
    )
    .await;
    let _ = std::fs::remove_dir_all(&dump_dir);

    // Every row of every table, every sequence, and every relation's row security and grants.
    let before = fingerprint(&source_admin).await;
    let after = fingerprint(&target_admin).await;
    assert!(
        before
            .iter()
            .any(|line| line.starts_with("execution_logs_default 1 ")),
        "the DEFAULT partition holds a row: {before:#?}"
    );
    assert!(
        before
            .iter()
            .any(|line| line.starts_with("users ") && !line.ends_with(" 0 -")),
        "{before:#?}"
    );
    let differences: Vec<String> = before
        .iter()
        .zip(&after)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{a}\n  became {b}"))
        .collect();
    assert_eq!(before.len(), after.len(), "{before:#?}\n{after:#?}");
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    let _ = source_admin.close().await;
    let _ = target_admin.close().await;

    // The platform serves from the copy: the same accounts, workflow, run and agent, with the
    // same visibility.
    let workflow_path = format!("/workflows/{workflow}");
    drop(server);
    let copy = TestServer::over(target).await;
    let token = copy.login(&alice).await;
    let (status, body) = copy
        .json(Method::GET, &workflow_path, Some(&token), None)
        .await;
    assert_eq!(
        (status, body["name"].clone()),
        (200, json!("kept")),
        "{body}"
    );
    let (status, body) = copy
        .json(
            Method::GET,
            &format!("/executions/{run_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["input"], json!({"n": 1}), "{body}");
    let (status, body) = copy
        .json(
            Method::GET,
            &format!("/agents/{}", agent["id"].as_str().unwrap()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, stats) = copy
        .json(Method::GET, "/stats/workflows", Some(&token), None)
        .await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["items"][0]["total_executions"], 1, "{stats}");
    let (status, _) = copy
        .json(Method::GET, &workflow_path, Some(&bobs_token), None)
        .await;
    assert_eq!(
        status, 404,
        "Bob's session came along, and still shows him only his own"
    );
}
