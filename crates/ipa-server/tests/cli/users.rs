//! Accounts from the command line and the bootstrap superuser.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use ipa_store::testing::TestDatabase;

use crate::binary::{Served, ipa};

/// Runs `ipa users create ...` against `db` with `stdin` piped in.
fn users_create(db: &TestDatabase, args: &[&str], stdin: &str) -> Output {
    let mut command: Command = ipa();
    let mut child = command
        .args(["users", "create"])
        .args(args)
        .env("DATABASE_URL", db.owner_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn users_create_takes_a_piped_password_or_generates_one() {
    let db = TestDatabase::empty().await;
    let piped = users_create(
        &db,
        &[
            "--email",
            "Root@Example.com",
            "--username",
            "root",
            "--superuser",
        ],
        "piped-password-1\n",
    );
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let printed = String::from_utf8(piped.stdout).unwrap();
    assert!(
        printed.contains("created superuser root (root@example.com)"),
        "{printed}"
    );
    assert!(!printed.contains("password"), "{printed}");

    let generated = users_create(
        &db,
        &["--email", "ops@example.com", "--username", "ops"],
        "",
    );
    assert!(generated.status.success());
    let printed = String::from_utf8(generated.stdout).unwrap();
    let password = printed
        .lines()
        .find_map(|line| line.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no generated password in {printed}"))
        .to_owned();
    assert!(password.len() >= 20);

    let duplicate = users_create(
        &db,
        &["--email", "root@example.com", "--username", "root2"],
        "x-password-2",
    );
    assert!(!duplicate.status.success());
    let stderr = String::from_utf8_lossy(&duplicate.stderr);
    assert!(stderr.contains("email already exists"), "{stderr}");
    assert!(!stderr.contains("x-password-2"), "{stderr}");

    let bad = users_create(&db, &["--email", "nope", "--username", "nope"], "");
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--email"));

    // Both accounts sign in with their passwords.
    let mut command = ipa();
    command.env("DATABASE_URL", db.owner_url());
    let served = Served::start(command).await;
    let (status, body) = served.login("root", "piped-password-1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["is_superuser"], true);
    let (status, body) = served.login("ops@example.com", &password).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["is_superuser"], false);
    // A superuser exists, so no administrator is invented.
    assert!(!served.stdout().contains("password:"));
    served.terminate();
}

#[tokio::test]
async fn serve_creates_the_bootstrap_superuser_once() {
    let db = TestDatabase::empty().await;
    let start = || {
        let mut command = ipa();
        command
            .env("DATABASE_URL", db.owner_url())
            .env("IPA_BOOTSTRAP_ADMIN_EMAIL", "boss@example.com")
            .env("IPA_BOOTSTRAP_ADMIN_USERNAME", "boss")
            .env("IPA_BOOTSTRAP_ADMIN_PASSWORD", "bootstrap-password");
        command
    };
    let served = Served::start(start()).await;
    let (status, body) = served.login("boss", "bootstrap-password").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["is_superuser"], true);
    let (_, log) = served.terminate();
    assert!(log.contains("created the bootstrap superuser"), "{log}");
    assert!(!log.contains("bootstrap-password"), "{log}");

    let served = Served::start(start()).await;
    let (_, log) = served.terminate();
    assert!(log.contains("a superuser exists"), "{log}");
}

#[test]
fn partial_bootstrap_variables_are_refused() {
    let output = ipa()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("IPA_BOOTSTRAP_ADMIN_EMAIL", "boss@example.com")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Refused before the (unreachable) database is even tried.
    assert!(stderr.contains("IPA_BOOTSTRAP_ADMIN_USERNAME"), "{stderr}");
    assert!(!stderr.contains("cannot connect"), "{stderr}");
}

#[test]
fn an_invalid_bootstrap_password_is_refused_without_echoing_it() {
    let output = ipa()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("IPA_BOOTSTRAP_ADMIN_EMAIL", "boss@example.com")
        .env("IPA_BOOTSTRAP_ADMIN_USERNAME", "boss")
        .env("IPA_BOOTSTRAP_ADMIN_PASSWORD", "shorty")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("IPA_BOOTSTRAP_ADMIN_PASSWORD"), "{stderr}");
    assert!(!stderr.contains("shorty"), "{stderr}");
}
