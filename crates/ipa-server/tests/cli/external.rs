//! With DATABASE_URL: migrations, serving as a non-superuser owner, and refusing privileged roles.

use ipa_store::testing::TestDatabase;

use crate::binary::{Served, ipa, run};

#[tokio::test]
async fn migrate_up_status_down_and_fresh_work_with_only_database_url() {
    let db = TestDatabase::empty().await;
    let status = |db: &TestDatabase| {
        let output = run(ipa()
            .args(["migrate", "status"])
            .env("DATABASE_URL", db.owner_url()));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let names = migration::migration_names();
    assert_eq!(
        status(&db)
            .lines()
            .filter(|l| l.starts_with("pending "))
            .count(),
        names.len()
    );

    let up = run(ipa()
        .args(["migrate", "up"])
        .env("DATABASE_URL", db.owner_url()));
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(
        status(&db)
            .lines()
            .filter(|l| l.starts_with("applied "))
            .count(),
        names.len()
    );

    let down = run(ipa()
        .args(["migrate", "down", "--steps", "2"])
        .env("DATABASE_URL", db.owner_url()));
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let after_down = status(&db);
    assert_eq!(
        after_down
            .lines()
            .filter(|l| l.starts_with("pending "))
            .count(),
        2,
        "{after_down}"
    );

    let fresh = run(ipa()
        .args(["migrate", "fresh"])
        .env("DATABASE_URL", db.owner_url()));
    assert!(
        fresh.status.success(),
        "{}",
        String::from_utf8_lossy(&fresh.stderr)
    );
    assert!(status(&db).lines().all(|l| l.starts_with("applied ")));
}

#[tokio::test]
async fn serve_works_as_an_owner_with_createrole_and_stops_on_sigterm() {
    let db = TestDatabase::empty().await;
    let mut command = ipa();
    command.env("DATABASE_URL", db.owner_url());
    let served = Served::start(command).await;
    // Migrated at start; every route answers.
    let ready = served.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(
        reqwest::get(served.url("/docs")).await.unwrap().status(),
        200
    );
    let (status, log) = served.terminate();
    assert!(status.success(), "exit {status}:\n{log}");
    assert!(log.contains("shut down"), "{log}");
    assert!(
        !log.contains(":ipa_test_owner@"),
        "a password reached the log:\n{log}"
    );
}

#[tokio::test]
async fn serve_refuses_a_superuser_role_unless_told_otherwise() {
    let db = TestDatabase::migrated().await;
    let refused = run(ipa()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", db.admin_url()));
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("is a superuser") && stderr.contains("IPA_ALLOW_PRIVILEGED_DATABASE_ROLE"),
        "{stderr}"
    );

    let mut command = ipa();
    command
        .env("DATABASE_URL", db.admin_url())
        .env("IPA_ALLOW_PRIVILEGED_DATABASE_ROLE", "true");
    let served = Served::start(command).await;
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("explicitly allowed"), "{log}");
}

#[tokio::test]
async fn an_unreachable_database_is_a_clear_error() {
    let output = run(ipa().args(["migrate", "status"]).env(
        "DATABASE_URL",
        "postgres://nobody:secret-password@127.0.0.1:1/none",
    ));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect to PostgreSQL"), "{stderr}");
    assert!(
        !stderr.contains("secret-password"),
        "the password reached the log: {stderr}"
    );
}
