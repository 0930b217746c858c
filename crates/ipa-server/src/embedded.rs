//! The embedded PostgreSQL: with no `DATABASE_URL`, `ipa` runs its own cluster from the machine's
//! server binaries, in a data directory it owns, reachable only through a unix socket there.
//!
//! First start: `initdb` (bootstrap superuser `ipa_admin`), then a non-superuser owner role `ipa`
//! with CREATEROLE and a database `ipa` it owns; the platform connects as `ipa`, exactly as it
//! would to an operator's server. Later starts reuse the cluster. Stopping is a fast shutdown.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use ipa_store::cluster::{LocalCluster, OsUser, PostgresBinaries, running_as_root};

use crate::config::GlobalOptions;

/// The bootstrap superuser of the embedded cluster; used only to provision the owner.
const ADMIN_ROLE: &str = "ipa_admin";
/// The role the platform connects as; owns the database.
pub const OWNER_ROLE: &str = "ipa";
/// The platform's database.
pub const DATABASE: &str = "ipa";

/// A running embedded cluster.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    cluster: LocalCluster,
    started_here: bool,
}

impl EmbeddedPostgres {
    /// Initialises (on first use), starts and provisions the embedded cluster.
    pub async fn start(global: &GlobalOptions) -> anyhow::Result<Self> {
        let data_dir = match &global.data_dir {
            Some(dir) => dir.clone(),
            None => default_data_dir()?,
        };
        prepare_data_dir(&data_dir)?;
        let binaries = PostgresBinaries::locate(global.postgres_bin_dir.as_deref())?;
        let os_user = OsUser::for_postgres(&global.postgres_os_user)?;
        let cluster = LocalCluster::new(binaries, os_user, data_dir.join("postgres"));

        let starting = cluster.clone();
        let (initialised, started_here) = tokio::task::spawn_blocking(move || {
            let initialised = starting.init_if_needed(ADMIN_ROLE, &[])?;
            if starting.is_running() {
                return Ok::<_, ipa_store::cluster::ClusterError>((initialised, false));
            }
            starting.start()?;
            Ok((initialised, true))
        })
        .await
        .context("starting the embedded PostgreSQL")??;
        if initialised {
            tracing::info!(data_dir = %cluster.data_dir().display(), "initialised the embedded PostgreSQL cluster");
        }
        if !started_here {
            tracing::warn!(
                data_dir = %cluster.data_dir().display(),
                "the embedded PostgreSQL was already running; using it and leaving it running at exit"
            );
        }
        let embedded = Self {
            data_dir,
            cluster,
            started_here,
        };
        let provisioned = ipa_store::cluster::provision_owner(
            &embedded.cluster.url(ADMIN_ROLE, "postgres"),
            OWNER_ROLE,
            DATABASE,
        )
        .await
        .context("provisioning the embedded PostgreSQL");
        if let Err(err) = provisioned {
            embedded.stop().await;
            return Err(err);
        }
        tracing::info!(socket_dir = %embedded.cluster.socket_dir().display(), "embedded PostgreSQL ready");
        Ok(embedded)
    }

    /// The platform's data directory (the cluster lives in its `postgres` subdirectory).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The URL the platform connects with: the owner role, through the socket.
    pub fn owner_url(&self) -> String {
        self.cluster.url(OWNER_ROLE, DATABASE)
    }

    /// Stops the cluster if this process started it.
    pub async fn stop(self) {
        if !self.started_here {
            return;
        }
        let cluster = self.cluster;
        match tokio::task::spawn_blocking(move || cluster.stop(true)).await {
            Ok(Ok(())) => tracing::info!("embedded PostgreSQL stopped"),
            Ok(Err(err)) => tracing::error!("cannot stop the embedded PostgreSQL: {err}"),
            Err(err) => tracing::error!("cannot stop the embedded PostgreSQL: {err}"),
        }
    }
}

/// `$XDG_DATA_HOME/ipa`, else `~/.local/share/ipa`; `/var/lib/ipa` for root, whose home the
/// PostgreSQL user could not enter.
fn default_data_dir() -> anyhow::Result<PathBuf> {
    if running_as_root() {
        return Ok(PathBuf::from("/var/lib/ipa"));
    }
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(xdg).join("ipa"));
    }
    let home = std::env::var_os("HOME")
        .filter(|dir| !dir.is_empty())
        .ok_or_else(|| anyhow!("HOME is not set; set IPA_DATA_DIR to choose a data directory"))?;
    Ok(PathBuf::from(home).join(".local/share/ipa"))
}

/// Creates the data directory. As root it stays enterable, so the PostgreSQL user reaches the
/// cluster inside it; otherwise it is private.
fn prepare_data_dir(dir: &Path) -> anyhow::Result<()> {
    fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let mode = if running_as_root() { 0o755 } else { 0o700 };
    fs::set_permissions(dir, fs::Permissions::from_mode(mode)).with_context(|| {
        format!(
            "cannot set permissions on the data directory {}",
            dir.display()
        )
    })?;
    let probe = dir.join(".ipa-write-test");
    fs::write(&probe, b"")
        .with_context(|| format!("the data directory {} is not writable", dir.display()))?;
    fs::remove_file(&probe).ok();
    Ok(())
}
