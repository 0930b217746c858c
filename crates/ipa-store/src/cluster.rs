//! Local PostgreSQL clusters run from the machine's server binaries: the embedded database of
//! `ipa serve` and the throwaway clusters of the tests.
//!
//! A cluster listens on a unix socket only, in its own data directory, so nothing else on the
//! machine can reach it and two clusters never collide on a port. PostgreSQL refuses to run as
//! root; when we are root, every PostgreSQL command runs as an unprivileged OS user (`postgres` by
//! default) through `runuser`, and the data directory belongs to that user.
//!
//! Everything here blocks (it runs external programs); async callers use `spawn_blocking`.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The longest unix socket path the kernel accepts, less a margin.
const MAX_SOCKET_PATH: usize = 100;

/// The port number of a cluster's socket file name (`.s.PGSQL.<port>`); no TCP port is opened.
pub const SOCKET_PORT: u16 = 5432;

/// Why a local cluster could not be prepared, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "no PostgreSQL server binaries found (looked for initdb and pg_ctl in {searched}); install \
         PostgreSQL 15 or newer (Debian: apt-get install postgresql) or set IPA_POSTGRES_BIN_DIR"
    )]
    BinariesNotFound {
        /// Where we looked.
        searched: String,
    },
    /// We are root and the OS user to run PostgreSQL as does not exist.
    #[error(
        "running as root, and PostgreSQL refuses to run as root; the OS user '{user}' it should \
         run as does not exist (create it, or name another with IPA_POSTGRES_OS_USER)"
    )]
    NoOsUser {
        /// The user we looked for.
        user: String,
    },
    /// The data directory cannot be used.
    #[error("the PostgreSQL data directory {path} is unusable: {reason}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A PostgreSQL program failed.
    #[error("{program} failed ({status}): {output}")]
    Command {
        /// The program.
        program: String,
        /// Its exit status.
        status: String,
        /// What it printed (its last lines).
        output: String,
    },
    /// A program could not be started at all.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
#[derive(Clone, Debug)]
pub struct PostgresBinaries {
    dir: PathBuf,
}

impl PostgresBinaries {
    /// Finds the server binaries: in `explicit` when given, else the newest
    /// `/usr/lib/postgresql/<version>/bin`, else the directories of `PATH`.
    pub fn locate(explicit: Option<&Path>) -> Result<Self, ClusterError> {
        let candidates: Vec<PathBuf> = match explicit {
            Some(dir) => vec![dir.to_path_buf()],
            None => {
                let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|entry| {
                        let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                        Some((version, entry.path().join("bin")))
                    })
                    .collect();
                versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
                let path_dirs = std::env::var_os("PATH")
                    .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
                    .unwrap_or_default();
                versioned
                    .into_iter()
                    .map(|(_, dir)| dir)
                    .chain(path_dirs)
                    .collect()
            }
        };
        candidates
            .iter()
            .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
            .map(|dir| Self { dir: dir.clone() })
            .ok_or_else(|| ClusterError::BinariesNotFound {
                searched: candidates
                    .iter()
                    .map(|dir| dir.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The path of one of the binaries.
    pub fn program(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Who PostgreSQL's processes run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OsUser {
    /// As ourselves (we are not root).
    Current,
    /// As another user, through `runuser` (we are root).
    Other {
        /// The user's name.
        name: String,
        /// Its uid.
        uid: u32,
        /// Its primary gid.
        gid: u32,
    },
}

impl OsUser {
    /// Ourselves when we are not root; otherwise `name_when_root`, which must exist.
    pub fn for_postgres(name_when_root: &str) -> Result<Self, ClusterError> {
        if !running_as_root() {
            return Ok(Self::Current);
        }
        let id = |flag: &str| -> Option<u32> {
            let output = Command::new("id")
                .arg(flag)
                .arg(name_when_root)
                .output()
                .ok()?;
            if !output.status.success() {
                return None;
            }
            String::from_utf8_lossy(&output.stdout).trim().parse().ok()
        };
        match (id("-u"), id("-g")) {
            (Some(uid), Some(gid)) => Ok(Self::Other {
                name: name_when_root.to_owned(),
                uid,
                gid,
            }),
            _ => Err(ClusterError::NoOsUser {
                user: name_when_root.to_owned(),
            }),
        }
    }

    /// A command running `program` as this user.
    pub fn command(&self, program: &Path) -> Command {
        match self {
            Self::Current => Command::new(program),
            Self::Other { name, .. } => {
                let mut command = Command::new("runuser");
                command.arg("-u").arg(name).arg("--").arg(program);
                command
            }
        }
    }

    /// Creates `path` (and its parents) and hands it to this user with mode 0700.
    pub fn create_private_dir(&self, path: &Path) -> Result<(), ClusterError> {
        let unusable = |reason: String| ClusterError::DataDir {
            path: path.to_path_buf(),
            reason,
        };
        fs::create_dir_all(path).map_err(|err| unusable(err.to_string()))?;
        if let Self::Other { uid, gid, name } = self {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(|err| unusable(format!("cannot give it to user {name}: {err}")))?;
        }
        fs::set_permissions(path, fs::Permissions::from_mode(0o700))
            .map_err(|err| unusable(err.to_string()))
    }
}

/// Whether this process runs as root. `/proc/self` belongs to the process's effective user.
pub fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|meta| meta.uid() == 0)
        .unwrap_or(false)
}

/// A PostgreSQL cluster in a data directory of ours, reached through a unix socket in that
/// directory.
#[derive(Clone, Debug)]
pub struct LocalCluster {
    binaries: PostgresBinaries,
    os_user: OsUser,
    data_dir: PathBuf,
}

impl LocalCluster {
    /// A cluster in `data_dir` (which may not exist yet).
    pub fn new(binaries: PostgresBinaries, os_user: OsUser, data_dir: PathBuf) -> Self {
        Self {
            binaries,
            os_user,
            data_dir,
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The directory holding the socket (the data directory itself).
    pub fn socket_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether the directory holds an initialised cluster.
    pub fn is_initialised(&self) -> bool {
        self.data_dir.join("PG_VERSION").is_file()
    }

    /// Runs `initdb` unless the directory already holds a cluster. The bootstrap superuser is
    /// `superuser`, trusted on the socket (only the directory's owner can reach the socket).
    /// `extra_settings` are appended to `postgresql.conf`. Returns whether it initialised.
    pub fn init_if_needed(
        &self,
        superuser: &str,
        extra_settings: &[(&str, &str)],
    ) -> Result<bool, ClusterError> {
        if self.is_initialised() {
            return Ok(false);
        }
        self.check_socket_path()?;
        if self.data_dir.exists()
            && fs::read_dir(&self.data_dir)
                .map(|mut entries| entries.next().is_some())
                .unwrap_or(true)
        {
            return Err(ClusterError::DataDir {
                path: self.data_dir.clone(),
                reason: "it is not empty and holds no PostgreSQL cluster".to_owned(),
            });
        }
        self.os_user.create_private_dir(&self.data_dir)?;
        let mut initdb = self.os_user.command(&self.binaries.program("initdb"));
        initdb
            .arg("--pgdata")
            .arg(&self.data_dir)
            .arg("--username")
            .arg(superuser)
            .args([
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-instructions",
            ]);
        run(initdb, "initdb")?;

        let mut conf = String::from(
            "\n# Written by ipa: a private cluster reached only through its unix socket.\n\
             listen_addresses = ''\nunix_socket_permissions = 0700\n",
        );
        for (name, value) in extra_settings {
            conf.push_str(&format!("{name} = {value}\n"));
        }
        let conf_path = self.data_dir.join("postgresql.conf");
        let mut contents = fs::read_to_string(&conf_path).map_err(|err| ClusterError::DataDir {
            path: self.data_dir.clone(),
            reason: format!("cannot read postgresql.conf: {err}"),
        })?;
        contents.push_str(&conf);
        fs::write(&conf_path, contents).map_err(|err| ClusterError::DataDir {
            path: self.data_dir.clone(),
            reason: format!("cannot write postgresql.conf: {err}"),
        })?;
        Ok(true)
    }

    /// Whether a server is running on this directory.
    pub fn is_running(&self) -> bool {
        let mut status = self.os_user.command(&self.binaries.program("pg_ctl"));
        status.arg("status").arg("--pgdata").arg(&self.data_dir);
        status
            .output()
            .map(|output| output.status.success())
            .unwrap_or(false)
    }

    /// Starts the server and waits until it accepts connections. The socket directory is given on
    /// the command line, so a copied data directory works from its new place.
    pub fn start(&self) -> Result<(), ClusterError> {
        self.check_socket_path()?;
        let mut pg_ctl = self.os_user.command(&self.binaries.program("pg_ctl"));
        pg_ctl
            .arg("start")
            .arg("--pgdata")
            .arg(&self.data_dir)
            .arg("--wait")
            .arg("--timeout=120")
            .arg("--silent")
            .arg("--log")
            .arg(self.data_dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-k '{}' -p {SOCKET_PORT}",
                self.socket_dir().display()
            ));
        run(pg_ctl, "pg_ctl start")
            .map(drop)
            .map_err(|err| match err {
                ClusterError::Command {
                    program,
                    status,
                    output,
                } => ClusterError::Command {
                    program,
                    status,
                    output: format!("{output}\n{}", self.log_tail()),
                },
                other => other,
            })
    }

    /// Stops the server: `fast` rolls back open transactions and disconnects clients cleanly;
    /// otherwise `immediate` (for throwaway clusters whose data no longer matters).
    pub fn stop(&self, fast: bool) -> Result<(), ClusterError> {
        let mut pg_ctl = self.os_user.command(&self.binaries.program("pg_ctl"));
        pg_ctl
            .arg("stop")
            .arg("--pgdata")
            .arg(&self.data_dir)
            .arg("--wait")
            .arg("--silent")
            .arg("--mode")
            .arg(if fast { "fast" } else { "immediate" });
        run(pg_ctl, "pg_ctl stop").map(drop)
    }

    /// A URL for `user` on `database` through the socket.
    pub fn url(&self, user: &str, database: &str) -> String {
        let socket_dir: String =
            url::form_urlencoded::byte_serialize(self.socket_dir().as_os_str().as_encoded_bytes())
                .collect();
        format!("postgres://{user}@localhost:{SOCKET_PORT}/{database}?host={socket_dir}")
    }

    fn check_socket_path(&self) -> Result<(), ClusterError> {
        let socket = self.socket_dir().join(format!(".s.PGSQL.{SOCKET_PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(ClusterError::DataDir {
                path: self.data_dir.clone(),
                reason: format!(
                    "its socket path {} is longer than the {MAX_SOCKET_PATH} bytes unix sockets \
                     allow; choose a shorter data directory",
                    socket.display()
                ),
            });
        }
        Ok(())
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.data_dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

/// Makes `owner` (a LOGIN role with CREATEROLE, not a superuser) and its `database` exist, through
/// a superuser connection at `admin_url`, with the filter operators leakproof in it
/// ([`mark_filters_leakproof`]). Names are SQL identifiers of our own choosing.
pub async fn provision_owner(
    admin_url: &str,
    owner: &str,
    database: &str,
) -> Result<(), crate::StoreError> {
    use sea_orm::ConnectionTrait;
    let admin = crate::store::admin_connection(admin_url).await?;
    ensure_owner_role(&admin, owner, None).await?;
    let exists = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT 1 FROM pg_database WHERE datname = $1",
            [database.into()],
        ))
        .await
        .map_err(crate::StoreError::database("looking for the database"))?
        .is_some();
    if !exists {
        admin
            .execute_unprepared(&format!("CREATE DATABASE {database} OWNER {owner}"))
            .await
            .map_err(crate::StoreError::database("creating the database"))?;
    }
    admin
        .close()
        .await
        .map_err(crate::StoreError::database("closing the admin connection"))?;
    mark_filters_leakproof(admin_url, database).await
}

/// What marks the functions behind the list filters' operators LEAKPROOF (ADR 0006): `@>` on
/// arrays and on `jsonb` (tags, metadata) and `ILIKE` (names). Under row level security
/// PostgreSQL uses an index for a query's filter only when the filter's operator is leakproof;
/// without this, the tag, metadata and name filters read every row instead of their GIN
/// indexes. Only a superuser may run it, in each database.
pub const LEAKPROOF_FILTERS_SQL: &str = "ALTER FUNCTION pg_catalog.arraycontains(anyarray, anyarray) LEAKPROOF; \
     ALTER FUNCTION pg_catalog.jsonb_contains(jsonb, jsonb) LEAKPROOF; \
     ALTER FUNCTION pg_catalog.texticlike(text, text) LEAKPROOF;";

/// Runs [`LEAKPROOF_FILTERS_SQL`] in `database`, through a superuser connection at
/// `admin_url` (whose own database is replaced by `database`).
pub async fn mark_filters_leakproof(
    admin_url: &str,
    database: &str,
) -> Result<(), crate::StoreError> {
    use sea_orm::ConnectionTrait;
    let url = with_database(admin_url, database).map_err(crate::StoreError::InvalidUrl)?;
    let admin = crate::store::admin_connection(&url).await?;
    admin
        .execute_unprepared(LEAKPROOF_FILTERS_SQL)
        .await
        .map_err(crate::StoreError::database(
            "marking the filter operators leakproof",
        ))?;
    admin
        .close()
        .await
        .map_err(crate::StoreError::database("closing the admin connection"))
}

/// `url` with its database replaced by `database`.
pub(crate) fn with_database(url: &str, database: &str) -> Result<String, String> {
    let mut parsed = url::Url::parse(url).map_err(|err| err.to_string())?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

/// Creates the owner role (LOGIN, CREATEROLE, not a superuser) unless it exists, with `password`
/// when the server asks for one.
pub(crate) async fn ensure_owner_role(
    admin: &sea_orm::DatabaseConnection,
    owner: &str,
    password: Option<&str>,
) -> Result<(), crate::StoreError> {
    use sea_orm::ConnectionTrait;
    let password = password
        .map(|p| format!(" PASSWORD '{p}'"))
        .unwrap_or_default();
    admin
        .execute_unprepared(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{owner}') THEN \
             CREATE ROLE {owner} LOGIN CREATEROLE NOSUPERUSER{password}; END IF; END $$"
        ))
        .await
        .map(drop)
        .map_err(crate::StoreError::database("creating the owner role"))
}

/// Runs a command to completion; a failure carries the last lines it printed.
pub(crate) fn run(mut command: Command, program: &str) -> Result<Output, ClusterError> {
    let output = command.output().map_err(|source| ClusterError::Spawn {
        program: program.to_owned(),
        source,
    })?;
    if output.status.success() {
        return Ok(output);
    }
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = printed.lines().collect();
    Err(ClusterError::Command {
        program: program.to_owned(),
        status: output.status.to_string(),
        output: lines[lines.len().saturating_sub(15)..].join("\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_urls_escape_the_directory() {
        let cluster = LocalCluster::new(
            PostgresBinaries {
                dir: PathBuf::from("/usr/lib/postgresql/15/bin"),
            },
            OsUser::Current,
            PathBuf::from("/tmp/ipa data"),
        );
        assert_eq!(
            cluster.url("ipa", "ipa"),
            "postgres://ipa@localhost:5432/ipa?host=%2Ftmp%2Fipa+data"
        );
    }

    #[test]
    fn missing_binaries_are_explained() {
        let err = PostgresBinaries::locate(Some(Path::new("/nonexistent"))).unwrap_err();
        assert!(err.to_string().contains("IPA_POSTGRES_BIN_DIR"), "{err}");
    }

    #[test]
    fn overlong_socket_paths_are_refused_before_initdb() {
        let cluster = LocalCluster::new(
            PostgresBinaries {
                dir: PathBuf::from("/nonexistent"),
            },
            OsUser::Current,
            PathBuf::from(format!("/tmp/{}", "d".repeat(120))),
        );
        let err = cluster.init_if_needed("admin", &[]).unwrap_err();
        assert!(err.to_string().contains("shorter data directory"), "{err}");
    }
}
