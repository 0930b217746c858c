//! The suite's own throwaway PostgreSQL: a cluster in a temporary directory (unix socket only;
//! as root it runs as the `postgres` OS user), its owner role and database, and the two
//! PostgreSQL programs the suite drives: `psql` (seeding, reading results, `\copy`, EXPLAIN) and
//! `pgbench` (the same SQL as the server's, without the server).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ipa_store::cluster::{LocalCluster, OsUser, PostgresBinaries, SOCKET_PORT};

/// The cluster's bootstrap superuser (seeding, `\copy`, reading results).
pub const SUPERUSER: &str = "ipa_admin";
/// The platform's owner role: what `DATABASE_URL` names and pgbench connects as.
pub const OWNER: &str = "ipa";
/// The platform's database.
pub const DATABASE: &str = "ipa";

/// Settings of the throwaway cluster: durable as shipped (fsync on), with room for the seeded
/// volume in memory and for pgbench's clients next to the server's pool.
const CLUSTER_SETTINGS: &[(&str, &str)] = &[
    ("shared_buffers", "'512MB'"),
    ("max_connections", "200"),
    ("maintenance_work_mem", "'256MB'"),
    ("max_wal_size", "'4GB'"),
];

/// The directory everything lives in, and the cluster in it.
pub struct BenchDatabase {
    root: PathBuf,
    cluster: LocalCluster,
    binaries: PostgresBinaries,
    keep: bool,
    stopped: bool,
    finished: bool,
}

impl BenchDatabase {
    /// Creates the directory, initialises and starts the cluster, creates the owner and its
    /// database (with the filter operators leakproof, as embedded mode does).
    pub async fn start(keep: bool) -> anyhow::Result<Self> {
        let binaries = PostgresBinaries::locate(None)?;
        let os_user = OsUser::for_postgres("postgres")?;
        let root = std::env::temp_dir().join(format!(
            "ipa-bench-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        ));
        fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
        // As root the PostgreSQL user must be able to enter the directory to reach its cluster.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755))
            .with_context(|| format!("setting permissions on {}", root.display()))?;
        let cluster = LocalCluster::new(binaries.clone(), os_user, root.join("pg"));
        let mut database = Self {
            root,
            cluster,
            binaries,
            keep,
            stopped: true,
            finished: false,
        };
        let starting = database.cluster.clone();
        tokio::task::spawn_blocking(move || {
            starting.init_if_needed(SUPERUSER, CLUSTER_SETTINGS)?;
            starting.start()
        })
        .await
        .context("starting the cluster")?
        .context("starting the cluster")?;
        database.stopped = false;
        ipa_store::cluster::provision_owner(
            &database.cluster.url(SUPERUSER, "postgres"),
            OWNER,
            DATABASE,
        )
        .await
        .context("creating the owner role and database")?;
        Ok(database)
    }

    /// The temporary directory (scripts, logs and the cluster live in it).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The owner's URL, what the server's `DATABASE_URL` is.
    pub fn owner_url(&self) -> String {
        self.cluster.url(OWNER, DATABASE)
    }

    /// The PostgreSQL server's version line (`postgres (PostgreSQL) 15.x`).
    pub fn server_version(&self) -> String {
        std::process::Command::new(self.binaries.program("postgres"))
            .arg("--version")
            .output()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
            .unwrap_or_else(|_| "unknown".to_owned())
    }

    /// Runs `psql` as `role` on the platform's database with `args` after the connection
    /// options; returns its standard output. Fails with its standard error when it fails.
    pub async fn psql(&self, role: &str, args: &[&str]) -> anyhow::Result<String> {
        let output = tokio::process::Command::new(self.binaries.program("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.cluster.socket_dir())
            .arg("-p")
            .arg(SOCKET_PORT.to_string())
            .args(["-U", role, "-d", DATABASE])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .await
            .context("running psql")?;
        if !output.status.success() {
            bail!(
                "psql failed ({}): {}",
                output.status,
                clip(&String::from_utf8_lossy(&output.stderr), 2000)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// One query as the superuser (row level security does not apply); its rows, `|`-separated.
    pub async fn query(&self, sql: &str) -> anyhow::Result<String> {
        self.psql(SUPERUSER, &["-c", sql]).await
    }

    /// Runs a script file as `role`; returns its output and how long it took.
    pub async fn run_file(&self, role: &str, path: &Path) -> anyhow::Result<(String, Duration)> {
        let began = Instant::now();
        let path = path.to_string_lossy().into_owned();
        let output = self.psql(role, &["-f", &path]).await?;
        Ok((output, began.elapsed()))
    }

    /// Writes `contents` to the file `name` in the temporary directory, readable by the
    /// PostgreSQL user (psql reads it as us, but `\copy` data is read by psql too).
    pub fn write(&self, name: &str, contents: &str) -> anyhow::Result<PathBuf> {
        let path = self.root.join(name);
        fs::write(&path, contents).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Runs pgbench in prepared mode with `clients` clients (and up to 2 threads) on `script`,
    /// for `seconds` or for `transactions` per client, with `variables` defined; returns its tps
    /// (without initial connection time).
    pub async fn pgbench(
        &self,
        script: &Path,
        clients: u32,
        length: PgbenchLength,
        variables: &[(String, String)],
    ) -> anyhow::Result<f64> {
        let mut command = tokio::process::Command::new(self.binaries.program("pgbench"));
        command
            .args(["-n", "-M", "prepared"])
            .arg("-c")
            .arg(clients.to_string())
            .arg("-j")
            .arg(clients.clamp(1, 2).to_string());
        match length {
            PgbenchLength::Seconds(seconds) => command.arg("-T").arg(seconds.max(1).to_string()),
            PgbenchLength::Transactions(count) => command.arg("-t").arg(count.max(1).to_string()),
        };
        command.arg("-f").arg(script);
        for (name, value) in variables {
            command.arg("-D").arg(format!("{name}={value}"));
        }
        command
            .arg("-h")
            .arg(self.cluster.socket_dir())
            .arg("-p")
            .arg(SOCKET_PORT.to_string())
            .args(["-U", OWNER, DATABASE])
            .stdin(Stdio::null());
        let output = command.output().await.context("running pgbench")?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        if !output.status.success() || stderr.contains("ERROR") {
            bail!(
                "pgbench failed ({}): {}",
                output.status,
                clip(&format!("{stderr}{stdout}"), 2000)
            );
        }
        parse_tps(&stdout)
            .ok_or_else(|| anyhow::anyhow!("pgbench printed no tps: {}", clip(&stdout, 2000)))
    }

    /// Stops the cluster and removes the directory, unless told to keep it. Once.
    pub fn stop(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if !self.stopped {
            // Immediate: the data is thrown away (or kept for inspection as it stands).
            if let Err(error) = self.cluster.stop(self.keep) {
                crate::report::note(&format!("cannot stop the benchmark cluster: {error}"));
            }
            self.stopped = true;
        }
        if self.keep {
            crate::report::note(&format!(
                "kept the benchmark directory {} (cluster in {}/pg; start it with pg_ctl -D)",
                self.root.display(),
                self.root.display()
            ));
        } else if self.root.exists()
            && let Err(error) = fs::remove_dir_all(&self.root)
        {
            crate::report::note(&format!("cannot remove {}: {error}", self.root.display()));
        }
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long pgbench runs.
#[derive(Clone, Copy, Debug)]
pub enum PgbenchLength {
    /// For this many seconds.
    Seconds(u64),
    /// For this many script runs per client.
    Transactions(u64),
}

/// The milliseconds psql's `\timing` printed (`Time: 12.345 ms`, or `Time: 1234.567 ms
/// (00:01.235)`), summed over every timed command.
pub fn parse_timing(output: &str) -> Option<f64> {
    let times: Vec<f64> = output
        .lines()
        .filter_map(|line| {
            line.trim()
                .strip_prefix("Time: ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    (!times.is_empty()).then(|| times.iter().sum())
}

/// pgbench's `tps = X (without initial connection time)`.
pub fn parse_tps(output: &str) -> Option<f64> {
    output.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("tps = ")?;
        if !rest.contains("without initial connection time") {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// `text` cut at `limit` characters, saying how long it was.
pub fn clip(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        text.trim().to_owned()
    } else {
        let cut: String = text.chars().take(limit).collect();
        format!("{}… ({count} characters, cut)", cut.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tps_is_read_from_pgbench_output() {
        let output = "transaction type: bench.sql\nscaling factor: 1\nquery mode: prepared\n\
            number of clients: 8\nnumber of threads: 2\nduration: 5 s\n\
            number of transactions actually processed: 12345\n\
            latency average = 3.240 ms\n\
            initial connection time = 12.345 ms\n\
            tps = 2469.123456 (without initial connection time)\n";
        assert_eq!(parse_tps(output), Some(2469.123456));
        // Older pgbench versions print two tps lines; the one without connections counts.
        let old = "tps = 100.5 (including connections establishing)\n\
                   tps = 120.25 (excluding connections establishing)\n";
        assert_eq!(parse_tps(old), None);
        assert_eq!(parse_tps("no figures here"), None);
        assert_eq!(
            parse_tps("tps = abc (without initial connection time)"),
            None
        );
    }

    #[test]
    fn psql_timing_is_read() {
        assert_eq!(parse_timing("Time: 10.228 ms\n"), Some(10.228));
        assert_eq!(
            parse_timing("COPY 5\nTime: 1234.5 ms (00:01.235)\nTime: 0.5 ms\n"),
            Some(1235.0)
        );
        assert_eq!(parse_timing("COPY 5\n"), None);
    }

    #[test]
    fn clipping_says_how_long_the_text_was() {
        assert_eq!(clip("short", 10), "short");
        let long = "x".repeat(30);
        assert_eq!(clip(&long, 10), "xxxxxxxxxx… (30 characters, cut)");
    }
}
