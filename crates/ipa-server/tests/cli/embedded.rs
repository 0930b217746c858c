//! With no DATABASE_URL: the embedded PostgreSQL, initialised once, reused, stopped cleanly.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::binary::{Served, ipa, run};

/// A fresh data directory under the system temp directory, removed afterwards.
struct DataDir(PathBuf);

impl DataDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ipa-cli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Self(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn postmaster_running(data: &DataDir) -> bool {
    data.0.join("postgres/postmaster.pid").exists()
}

#[tokio::test]
async fn serve_with_no_configuration_runs_its_own_postgres_and_stops_it() {
    let data = DataDir::new("embedded");
    let mut command = ipa();
    command.env("IPA_DATA_DIR", &data.0);
    let served = Served::start(command).await;
    assert!(postmaster_running(&data));
    let ready = served.get_json("/readyz").await;
    assert_eq!(ready["status"], "ready");

    // The first start created an administrator, printed its password once and left it in a
    // file only its owner can read.
    let printed = served.stdout();
    let password = printed
        .lines()
        .find_map(|line| line.trim().strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no password printed:\n{printed}"))
        .to_owned();
    let file = data.0.join("initial-admin-password");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{mode:o}");
    let (status, body) = served.login("admin", &password).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["is_superuser"], true);
    assert!(
        !served.log().contains(&password),
        "the password reached the log"
    );
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    assert!(log.contains("initialised the embedded PostgreSQL"), "{log}");
    assert!(log.contains("embedded PostgreSQL stopped"), "{log}");
    assert!(
        !postmaster_running(&data),
        "PostgreSQL still running after shutdown"
    );

    // A second start reuses the cluster (no initdb) and its migrated database.
    let mut again = ipa();
    again.env("IPA_DATA_DIR", &data.0);
    let served = Served::start(again).await;
    assert!(
        !served.stdout().contains("password:"),
        "a second administrator"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), password);
    let (status, log) = served.terminate();
    assert!(status.success(), "{log}");
    assert!(
        !log.contains("initialised the embedded PostgreSQL"),
        "{log}"
    );
    assert!(
        !log.contains("Applying migration"),
        "nothing left to migrate:\n{log}"
    );

    // The migrate subcommand knows the embedded database too.
    let status = run(ipa()
        .args(["migrate", "status"])
        .env("IPA_DATA_DIR", &data.0));
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let listed = String::from_utf8(status.stdout).unwrap();
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("applied ")).count(),
        migration::migration_names().len()
    );
    assert!(!postmaster_running(&data));
}

#[test]
fn missing_postgres_binaries_are_explained() {
    let data = DataDir::new("nobin");
    let output = run(ipa()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("IPA_DATA_DIR", &data.0)
        .env("IPA_POSTGRES_BIN_DIR", "/nonexistent/bin"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no PostgreSQL server binaries found")
            && stderr.contains("IPA_POSTGRES_BIN_DIR"),
        "{stderr}"
    );
}

#[test]
fn an_unusable_data_directory_is_explained() {
    let output = run(ipa()
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("IPA_DATA_DIR", "/proc/ipa-cannot-live-here"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("data directory"), "{stderr}");
}
