//! The server under test: the `ipa` binary started with `ipa serve` against the suite's cluster,
//! on a free port of 127.0.0.1, its logs in a file, stopped with SIGTERM (killed if it lingers),
//! and its memory read from `/proc`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::database::clip;

/// The bootstrap superuser the server creates at its first start.
pub const ADMIN_USERNAME: &str = "bench-admin";
/// Its email address.
pub const ADMIN_EMAIL: &str = "bench-admin@bench.example";
/// Its password (a throwaway cluster's).
pub const ADMIN_PASSWORD: &str = "bench-admin-password";

/// How the server is started.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The `ipa` binary.
    pub binary: PathBuf,
    /// Its `DATABASE_URL`.
    pub database_url: String,
    /// Where its logs go (appended).
    pub log: PathBuf,
    /// Engine workers (`IPA_WORKERS`).
    pub workers: u32,
}

impl ServerConfig {
    /// The pool size: the default 10, or more when the workers need it (the README asks for a
    /// pool above the worker count).
    pub fn pool_size(&self) -> u32 {
        (self.workers + 4).max(10)
    }
}

/// A running server.
pub struct Server {
    child: Child,
    pid: u32,
    base_url: String,
    log: PathBuf,
}

impl Server {
    /// Starts the server and waits until `/readyz` answers 200.
    pub async fn start(config: &ServerConfig, client: &reqwest::Client) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(&config.log)
            .with_context(|| format!("opening {}", config.log.display()))?;
        let err_log = log.try_clone().context("duplicating the log file")?;
        let mut command = Command::new(&config.binary);
        // Only our settings: nothing of the caller's environment configures the server.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("IPA_") || name == "DATABASE_URL" || name == "RUST_LOG" {
                command.env_remove(name.as_ref());
            }
        }
        command
            .arg("serve")
            .env("DATABASE_URL", &config.database_url)
            .env("IPA_BIND", format!("127.0.0.1:{port}"))
            .env("IPA_WORKERS", config.workers.to_string())
            .env("IPA_DB_MAX_CONNECTIONS", config.pool_size().to_string())
            // The statistics view is refreshed at start; a refresh every minute would land in
            // the middle of measurements.
            .env("IPA_STATS_REFRESH_SECS", "86400")
            .env("IPA_BOOTSTRAP_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("IPA_BOOTSTRAP_ADMIN_USERNAME", ADMIN_USERNAME)
            .env("IPA_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err_log))
            // Its own process group: a Ctrl-C at the terminal reaches the suite, which stops the
            // server itself, in order.
            .process_group(0)
            .kill_on_drop(true);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", config.binary.display()))?;
        let pid = child
            .id()
            .ok_or_else(|| anyhow::anyhow!("the server exited at once"))?;
        let mut server = Self {
            child,
            pid,
            base_url: format!("http://127.0.0.1:{port}"),
            log: config.log.clone(),
        };
        server.wait_ready(client).await?;
        Ok(server)
    }

    async fn wait_ready(&mut self, client: &reqwest::Client) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if let Some(status) = self.child.try_wait().context("watching the server")? {
                bail!(
                    "the server exited ({status}) before it was ready; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(response) = client.get(format!("{}/readyz", self.base_url)).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not ready within 180 s; its log ends with:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        clip(&lines[lines.len().saturating_sub(20)..].join("\n"), 4000)
    }

    /// Stops the server: SIGTERM, then a kill if it has not exited within 20 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status()
            .await;
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for the server")?;
                Ok(())
            }
            Err(_) => {
                self.child.kill().await.context("killing the server")?;
                bail!("the server did not stop within 20 s of SIGTERM and was killed")
            }
        }
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the server binds it right after).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Memory of a process from `/proc/<pid>/status`, in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident since start (or since the last reset).
    pub hwm_kib: u64,
}

/// Reads `VmRSS` and `VmHWM` from a `/proc/<pid>/status` text.
pub fn parse_status(status: &str) -> Option<Memory> {
    let field = |name: &str| {
        status.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse::<u64>().ok()
        })
    };
    Some(Memory {
        rss_kib: field("VmRSS")?,
        hwm_kib: field("VmHWM")?,
    })
}

/// The memory of process `pid` now.
pub fn memory(pid: u32) -> Option<Memory> {
    parse_status(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// Resets the peak (`VmHWM`) of process `pid` to its current RSS; false when the kernel does not
/// let us.
pub fn reset_peak(pid: u32) -> bool {
    fs::write(Path::new(&format!("/proc/{pid}/clear_refs")), b"5").is_ok()
}

/// Watches a process's peak memory during a phase: the kernel's high-water mark when it can be
/// reset, and frequent samples of the resident size either way.
pub struct PeakWatch {
    pid: u32,
    reset: bool,
    sampled: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: tokio::task::JoinHandle<()>,
}

impl PeakWatch {
    /// Starts watching `pid`.
    pub fn start(pid: u32) -> Self {
        let reset = reset_peak(pid);
        let sampled = Arc::new(AtomicU64::new(memory(pid).map_or(0, |m| m.rss_kib)));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = tokio::spawn({
            let sampled = Arc::clone(&sampled);
            let stop = Arc::clone(&stop);
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(now) = memory(pid) {
                        sampled.fetch_max(now.rss_kib, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        });
        Self {
            pid,
            reset,
            sampled,
            stop,
            sampler,
        }
    }

    /// The peak resident size since the start, in MiB.
    pub async fn finish(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.sampler.await;
        let sampled = self.sampled.load(Ordering::Relaxed);
        let hwm = if self.reset {
            memory(self.pid).map_or(0, |m| m.hwm_kib)
        } else {
            0
        };
        sampled.max(hwm) as f64 / 1024.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_read_from_proc_status() {
        let status = "Name:\tipa\nVmPeak:\t  900000 kB\nVmHWM:\t   81234 kB\nVmRSS:\t   65432 kB\nThreads:\t9\n";
        assert_eq!(
            parse_status(status),
            Some(Memory {
                rss_kib: 65432,
                hwm_kib: 81234
            })
        );
        assert_eq!(parse_status("Name:\tipa\n"), None);
        // Our own process has both fields.
        let own = memory(std::process::id()).unwrap();
        assert!(own.rss_kib > 0 && own.hwm_kib >= own.rss_kib, "{own:?}");
    }
}
