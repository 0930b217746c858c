//! Running the binary: a served instance on a free port, stopped with SIGTERM.

use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The `ipa` command, with no configuration inherited from the environment.
pub fn ipa() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ipa"));
    for variable in [
        "DATABASE_URL",
        "IPA_DATA_DIR",
        "IPA_BIND",
        "IPA_ALLOW_PRIVILEGED_DATABASE_ROLE",
        "IPA_NO_MIGRATE",
        "IPA_LOG_FORMAT",
        "IPA_BOOTSTRAP_ADMIN_EMAIL",
        "IPA_BOOTSTRAP_ADMIN_USERNAME",
        "IPA_BOOTSTRAP_ADMIN_PASSWORD",
        "IPA_SECRET_KEY",
    ] {
        command.env_remove(variable);
    }
    command.env("RUST_LOG", "info");
    command
}

/// Runs `ipa` to completion.
pub fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run ipa")
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `ipa serve`.
pub struct Served {
    child: Child,
    pub port: u16,
    log: std::path::PathBuf,
    out: std::path::PathBuf,
}

impl Served {
    /// Starts `ipa serve` and waits until /readyz answers 200. What it logs (stderr) and prints
    /// (stdout) go to files in the temp directory, removed with it.
    pub async fn start(mut command: Command) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("ipa-serve-{}-{port}.log", std::process::id()));
        let out = log.with_extension("out");
        let child = command
            .arg("serve")
            .env("IPA_BIND", format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn ipa serve");
        let mut served = Self {
            child,
            port,
            log,
            out,
        };
        served.wait_ready().await;
        served
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("ipa serve exited early ({status}):\n{}", self.log());
            }
            if let Ok(response) = reqwest::get(self.url("/readyz")).await
                && response.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("ipa serve never became ready:\n{}", self.log());
    }

    /// A URL on the server.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The JSON body of a GET of `path`.
    pub async fn get_json(&self, path: &str) -> serde_json::Value {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What it printed on stdout.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Signs in over HTTP; the status and the JSON body.
    pub async fn login(&self, identifier: &str, password: &str) -> (u16, serde_json::Value) {
        let response = reqwest::Client::new()
            .post(self.url("/auth/login"))
            .json(&serde_json::json!({"identifier": identifier, "password": password}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }

    /// Sends SIGTERM and waits for the exit.
    pub fn terminate(mut self) -> (ExitStatus, String) {
        let killed = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        assert!(killed.unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "ipa serve ignored SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        let _ = std::fs::remove_file(&self.out);
    }
}
