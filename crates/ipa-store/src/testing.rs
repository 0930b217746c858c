//! Test support: a real PostgreSQL database for every test.
//!
//! Where the server comes from:
//! - `DATABASE_URL` when set: a superuser (or a role with CREATEDB and CREATEROLE) on any server;
//! - otherwise a throwaway cluster of this process, started from the machine's PostgreSQL binaries
//!   under the system temp directory. Building a migrated cluster is slow, so it is built once
//!   (per schema fingerprint) as a stopped "pristine" cluster and each process starts a copy. As
//!   root, the clusters run as the `postgres` OS user (`IPA_POSTGRES_OS_USER` to change it).
//!
//! In both, the schema is migrated once into a template database named after the schema's
//! fingerprint, by a non-superuser owner role with CREATEROLE (as in production), and each
//! [`TestDatabase`] is a new database copied from it and dropped when the test ends. A crashed run
//! leaves databases and cluster copies behind; the next run sweeps them.
//!
//! With `IPA_TEST_POOLER=host:port` (and `DATABASE_URL`), the pools of [`TestDatabase::store`]
//! (and so the servers of the end-to-end tests) go through the pooler listening there, in
//! transaction pooling ([`Pooling::Transaction`]), with the direct URL on the server itself. The
//! pooler must forward every database to the `DATABASE_URL` server (PgBouncer:
//! `* = host=... port=...`) and let the owner role in with its password (`ipa_test_owner`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use tokio::sync::{Mutex, OnceCell};

use crate::cluster::{
    LocalCluster, OsUser, PostgresBinaries, ensure_owner_role, mark_filters_leakproof,
    running_as_root, with_database,
};
use crate::schema;
use crate::store::{DatabaseTarget, PoolOptions, Pooling, Store};

/// The owner role of every test database: not a superuser, may create roles.
pub const OWNER_ROLE: &str = "ipa_test_owner";
/// Its password (test servers only; ignored where the server trusts local connections).
const OWNER_PASSWORD: &str = "ipa_test_owner";
/// The bootstrap superuser of throwaway clusters.
const CLUSTER_ADMIN: &str = "ipa_test_admin";
/// Test databases older than this are swept whatever their process.
const ABANDONED_AFTER: Duration = Duration::from_secs(6 * 3600);
/// Serialises template creation across processes sharing one server.
const TEMPLATE_LOCK_KEY: i64 = 0x1fa_7e57;
/// The pooler (`host:port`) the tests' pools go through, when set.
pub const POOLER_VARIABLE: &str = "IPA_TEST_POOLER";

/// Settings for a cluster that only tests use: durability traded for speed.
const TEST_SETTINGS: &[(&str, &str)] = &[
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_connections", "200"),
    ("shared_buffers", "32MB"),
];
static NEXT_DATABASE: AtomicU64 = AtomicU64::new(0);
static THROWAWAY: Mutex<Weak<ThrowawayCluster>> = Mutex::const_new(Weak::new());
static EXTERNAL_PREPARED: OnceCell<()> = OnceCell::const_new();

/// A database of its own for one test, migrated (or empty), dropped when it goes out of scope.
pub struct TestDatabase {
    name: String,
    admin_url: String,
    owner_url: String,
    // Keeps this process's throwaway cluster running while the database exists.
    _cluster: Option<Arc<ThrowawayCluster>>,
}

impl TestDatabase {
    /// A database with the whole schema migrated.
    ///
    /// # Panics
    /// When no PostgreSQL can be had: a test without its database cannot run.
    pub async fn migrated() -> Self {
        Self::create(true).await
    }

    /// An empty database owned by the owner role, for tests of the migrations themselves.
    ///
    /// # Panics
    /// When no PostgreSQL can be had.
    pub async fn empty() -> Self {
        Self::create(false).await
    }

    async fn create(migrated: bool) -> Self {
        match Self::try_create(migrated).await {
            Ok(database) => database,
            Err(reason) => panic!("cannot provide a test database: {reason}"),
        }
    }

    async fn try_create(migrated: bool) -> Result<Self, String> {
        let database_url = std::env::var("DATABASE_URL").ok();
        if test_pooler().is_some()
            && database_url
                .as_deref()
                .is_none_or(|url| url.trim().is_empty())
        {
            return Err(format!(
                "{POOLER_VARIABLE} needs DATABASE_URL: the server the pooler forwards to"
            ));
        }
        let (admin_url, cluster) = match database_url {
            Some(url) if !url.trim().is_empty() => {
                EXTERNAL_PREPARED
                    .get_or_try_init(|| async {
                        prepare_server(&url).await?;
                        sweep_databases(&url).await
                    })
                    .await?;
                (url, None)
            }
            _ => {
                let cluster = ThrowawayCluster::shared().await?;
                (cluster.admin_url(), Some(cluster))
            }
        };
        let name = format!(
            "ipa_test_{}_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
        );
        let template = if migrated {
            template_name()
        } else {
            "template0".to_owned()
        };
        let admin = connect(&admin_url).await?;
        exec(
            &admin,
            &format!("CREATE DATABASE {name} OWNER {OWNER_ROLE} TEMPLATE {template}"),
        )
        .await?;
        exec(
            &admin,
            &format!(
                "COMMENT ON DATABASE {name} IS 'ipa-test host={} pid={} created={}'",
                hostname(),
                std::process::id(),
                unix_now()
            ),
        )
        .await?;
        let _ = admin.close().await;
        let owner_url = with_user_and_database(&admin_url, OWNER_ROLE, OWNER_PASSWORD, &name)?;
        Ok(Self {
            name,
            admin_url,
            owner_url,
            _cluster: cluster,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL connecting as the owner role (what `DATABASE_URL` is for the server).
    pub fn owner_url(&self) -> &str {
        &self.owner_url
    }

    /// A URL connecting as the server's superuser to this database, for tests that must look
    /// past row level security or change roles.
    pub fn admin_url(&self) -> String {
        with_database(&self.admin_url, &self.name).unwrap_or_else(|_| self.admin_url.clone())
    }

    /// Where the server's pool connects as the owner: this database, through the pooler of
    /// `IPA_TEST_POOLER` in transaction pooling when it is set, else directly.
    ///
    /// # Panics
    /// When `IPA_TEST_POOLER` is not a `host:port` the owner URL can take.
    pub fn target(&self) -> DatabaseTarget {
        match test_pooler() {
            Some(pooler) => match with_address(&self.owner_url, &pooler) {
                Ok(pooled) => DatabaseTarget::pooled(pooled, &self.owner_url, Pooling::Transaction),
                Err(err) => panic!("{POOLER_VARIABLE}={pooler}: {err}"),
            },
            None => DatabaseTarget::direct(&self.owner_url),
        }
    }

    /// A pool connected as the owner, at [`TestDatabase::target`].
    ///
    /// # Panics
    /// When the database cannot be reached.
    pub async fn store(&self) -> Store {
        // Tests share a busy machine: a generous wait keeps slowness from looking like an outage
        // (tests of outages open their own pool with a short one).
        let options = PoolOptions {
            max_connections: 5,
            acquire_timeout: std::time::Duration::from_secs(10),
        };
        match Store::connect_to(&self.target(), options).await {
            Ok(store) => store,
            Err(err) => panic!("cannot connect to test database {}: {err}", self.name),
        }
    }

    /// The rows of `sql` as JSON objects, read as the platform itself (through `ipa_app` with
    /// the system actor, so row level security shows everything): for tests that check what
    /// the API left in the database, such as audit rows.
    ///
    /// # Panics
    /// When the query fails.
    pub async fn rows(&self, sql: &str) -> Vec<serde_json::Value> {
        use sea_orm::ConnectionTrait;
        let (store, txn) = self.as_system().await;
        let wrapped = format!("SELECT to_jsonb(t) AS row FROM ({sql}) t");
        let rows = match txn
            .connection()
            .query_all_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                wrapped,
            ))
            .await
        {
            Ok(rows) => rows,
            Err(err) => panic!("query failed: {sql}: {err}"),
        };
        let values = rows
            .iter()
            .map(|row| match row.try_get::<serde_json::Value>("", "row") {
                Ok(value) => value,
                Err(err) => panic!("cannot read a row of {sql}: {err}"),
            })
            .collect();
        drop(txn);
        let _ = store.close().await;
        values
    }

    /// Runs `sql` as the platform itself (through `ipa_app` with the system actor) and commits:
    /// for tests that arrange rows no API writes yet, such as agents or executions.
    ///
    /// # Panics
    /// When the statement fails.
    pub async fn execute(&self, sql: &str) {
        use sea_orm::ConnectionTrait;
        let (store, txn) = self.as_system().await;
        if let Err(err) = txn.connection().execute_unprepared(sql).await {
            panic!("statement failed: {sql}: {err}");
        }
        if let Err(err) = txn.commit().await {
            panic!("cannot commit: {sql}: {err}");
        }
        let _ = store.close().await;
    }

    /// A pool of its own and a transaction in it acting as the platform itself.
    async fn as_system(&self) -> (Store, crate::ActorTransaction) {
        let store = self.store().await;
        match store.begin(&ipa_kernel::Actor::system()).await {
            Ok(txn) => (store, txn),
            Err(err) => panic!("cannot begin a transaction: {err}"),
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime, which cannot be blocked on; a thread of its own
        // with a small runtime drops the database (FORCE ends the pool's idle connections).
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            let Ok(runtime) = runtime else { return };
            runtime.block_on(async move {
                if let Ok(admin) = connect(&admin_url).await {
                    if let Err(err) = exec(
                        &admin,
                        &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                    )
                    .await
                    {
                        eprintln!("warning: cannot drop test database {name}: {err}");
                    }
                    let _ = admin.close().await;
                }
            });
        })
        .join();
        if dropped.is_err() {
            eprintln!("warning: dropping test database {} panicked", self.name);
        }
    }
}

/// The template database's name for the current schema.
fn template_name() -> String {
    format!("ipa_tpl_{:016x}", migration::fingerprint())
}

/// Makes the owner role and the migrated template exist on a server, once, whoever else is
/// preparing the same server at the same time.
async fn prepare_server(admin_url: &str) -> Result<(), String> {
    let admin = connect(admin_url).await?;
    exec(
        &admin,
        &format!("SELECT pg_advisory_lock({TEMPLATE_LOCK_KEY})"),
    )
    .await?;
    let prepared = prepare_locked(&admin, admin_url).await;
    let _ = exec(
        &admin,
        &format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK_KEY})"),
    )
    .await;
    let _ = admin.close().await;
    prepared
}

async fn prepare_locked(admin: &DatabaseConnection, admin_url: &str) -> Result<(), String> {
    ensure_owner_role(admin, OWNER_ROLE, Some(OWNER_PASSWORD))
        .await
        .map_err(|err| err.to_string())?;
    let template = template_name();
    let existing = database_names(admin, "ipa_tpl_%").await?;
    for stale in existing.iter().filter(|name| **name != template) {
        // An older schema's template; another run may still copy it, in which case it stays.
        let _ = exec(admin, &format!("ALTER DATABASE {stale} IS_TEMPLATE false")).await;
        let _ = exec(admin, &format!("DROP DATABASE IF EXISTS {stale}")).await;
    }
    if existing.contains(&template) {
        return Ok(());
    }
    // Built under another name and renamed when complete, so a crash never leaves a template
    // that looks finished.
    let building = format!("{template}_building");
    exec(
        admin,
        &format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"),
    )
    .await?;
    exec(
        admin,
        &format!("CREATE DATABASE {building} OWNER {OWNER_ROLE} TEMPLATE template0"),
    )
    .await?;
    // As provisioning does for a real database; copies of the template inherit it.
    mark_filters_leakproof(admin_url, &building)
        .await
        .map_err(|err| err.to_string())?;
    let owner_url = with_user_and_database(admin_url, OWNER_ROLE, OWNER_PASSWORD, &building)?;
    let store = Store::connect(
        &owner_url,
        PoolOptions {
            max_connections: 1,
            ..Default::default()
        },
    )
    .await
    .map_err(|err| err.to_string())?;
    schema::migrate_up(&store, None)
        .await
        .map_err(|err| format!("migrating the template: {err}"))?;
    store.close().await.map_err(|err| err.to_string())?;
    exec(
        admin,
        &format!("ALTER DATABASE {building} RENAME TO {template}"),
    )
    .await?;
    exec(
        admin,
        &format!("ALTER DATABASE {template} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    )
    .await
}

/// Drops test databases left by processes that died, or abandoned long ago.
async fn sweep_databases(admin_url: &str) -> Result<(), String> {
    let admin = connect(admin_url).await?;
    let rows = admin
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT d.datname::text, coalesce(shobj_description(d.oid, 'pg_database'), '') \
               FROM pg_database d WHERE d.datname LIKE 'ipa\\_test\\_%'",
        ))
        .await
        .map_err(|err| err.to_string())?;
    let here = hostname();
    for row in rows {
        let (Ok(name), Ok(comment)) = (
            row.try_get_by_index::<String>(0),
            row.try_get_by_index::<String>(1),
        ) else {
            continue;
        };
        let field = |key: &str| {
            comment
                .split_whitespace()
                .find_map(|part| part.strip_prefix(key).map(str::to_owned))
                .unwrap_or_default()
        };
        // A database gets its comment just after it is created: one without is being created
        // now by the process its name carries (`ipa_test_<pid>_...`), not abandoned.
        let pid: u32 = field("pid=")
            .parse()
            .ok()
            .or_else(|| {
                name.strip_prefix("ipa_test_")?
                    .split('_')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0);
        let created: u64 = field("created=").parse().unwrap_or_else(|_| unix_now());
        let dead_here = field("host=") == here && !process_alive(pid);
        let abandoned = unix_now().saturating_sub(created) > ABANDONED_AFTER.as_secs();
        if dead_here || abandoned {
            let _ = exec(
                &admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
            .await;
        }
    }
    let _ = admin.close().await;
    Ok(())
}

/// This process's own PostgreSQL, copied from a pristine migrated cluster, removed when the last
/// test database of the process is dropped.
struct ThrowawayCluster {
    cluster: LocalCluster,
}

impl ThrowawayCluster {
    async fn shared() -> Result<Arc<Self>, String> {
        let mut current = THROWAWAY.lock().await;
        if let Some(cluster) = current.upgrade() {
            return Ok(cluster);
        }
        let cluster = Arc::new(Self::start().await?);
        *current = Arc::downgrade(&cluster);
        Ok(cluster)
    }

    fn admin_url(&self) -> String {
        self.cluster.url(CLUSTER_ADMIN, "postgres")
    }

    async fn start() -> Result<Self, String> {
        let binaries = PostgresBinaries::locate(
            std::env::var_os("IPA_POSTGRES_BIN_DIR")
                .as_deref()
                .map(Path::new),
        )
        .map_err(|err| err.to_string())?;
        let os_user_name =
            std::env::var("IPA_POSTGRES_OS_USER").unwrap_or_else(|_| "postgres".to_owned());
        let os_user = OsUser::for_postgres(&os_user_name).map_err(|err| err.to_string())?;
        let root = clusters_root()?;
        // One process at a time sweeps, builds the pristine cluster and copies it.
        let lock = File::create(root.join("lock")).map_err(|err| err.to_string())?;
        let locked = tokio::task::spawn_blocking(move || lock.lock().map(|()| lock))
            .await
            .map_err(|err| err.to_string())?
            .map_err(|err| format!("cannot lock the test clusters directory: {err}"))?;

        sweep_clusters(&root, &binaries, &os_user);
        let pristine = root.join(format!("pristine-{:016x}", migration::fingerprint()));
        if !pristine.join("PG_VERSION").is_file() {
            build_pristine(&root, &pristine, &binaries, &os_user).await?;
        }
        let run_dir = root.join(format!(
            "run-{}-{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::Relaxed)
        ));
        // The copy is made by the cluster's OS user into a directory handed to it, so every file
        // keeps the owner PostgreSQL insists on.
        os_user
            .create_private_dir(&run_dir)
            .map_err(|err| err.to_string())?;
        let mut copy = os_user.command(Path::new("cp"));
        copy.arg("-a").arg(pristine.join(".")).arg(&run_dir);
        crate::cluster::run(copy, "cp").map_err(|err| err.to_string())?;
        drop(locked);

        let cluster = LocalCluster::new(binaries, os_user, run_dir);
        let started = {
            let cluster = cluster.clone();
            tokio::task::spawn_blocking(move || cluster.start()).await
        };
        match started {
            Ok(Ok(())) => Ok(Self { cluster }),
            Ok(Err(err)) => Err(err.to_string()),
            Err(err) => Err(err.to_string()),
        }
    }
}

impl Drop for ThrowawayCluster {
    fn drop(&mut self) {
        if let Err(err) = self.cluster.stop(false) {
            eprintln!("warning: cannot stop test cluster: {err}");
        }
        let _ = fs::remove_dir_all(self.cluster.data_dir());
    }
}

/// `<temp>/ipa-test-pg-<uid>`: one directory per user, so users never trip on each other.
fn clusters_root() -> Result<PathBuf, String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid = fs::metadata("/proc/self")
        .map(|meta| meta.uid())
        .unwrap_or(0);
    let root = std::env::temp_dir().join(format!("ipa-test-pg-{uid}"));
    fs::create_dir_all(&root).map_err(|err| format!("cannot create {}: {err}", root.display()))?;
    // Root's clusters belong to the postgres user, which must be able to enter the directory.
    let mode = if running_as_root() { 0o755 } else { 0o700 };
    fs::set_permissions(&root, fs::Permissions::from_mode(mode)).map_err(|err| err.to_string())?;
    Ok(root)
}

async fn build_pristine(
    root: &Path,
    pristine: &Path,
    binaries: &PostgresBinaries,
    os_user: &OsUser,
) -> Result<(), String> {
    let building = root.join(format!("building-{}", std::process::id()));
    let _ = fs::remove_dir_all(&building);
    let cluster = LocalCluster::new(binaries.clone(), os_user.clone(), building.clone());
    {
        let cluster = cluster.clone();
        tokio::task::spawn_blocking(move || {
            cluster.init_if_needed(CLUSTER_ADMIN, TEST_SETTINGS)?;
            cluster.start()
        })
        .await
        .map_err(|err| err.to_string())?
        .map_err(|err| err.to_string())?;
    }
    let prepared = prepare_server(&cluster.url(CLUSTER_ADMIN, "postgres")).await;
    let stopped = cluster.stop(true);
    prepared?;
    stopped.map_err(|err| err.to_string())?;
    // Older schemas' pristine clusters are of no further use.
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        if entry.file_name().to_string_lossy().starts_with("pristine-") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    fs::rename(&building, pristine).map_err(|err| err.to_string())
}

/// Stops and removes cluster copies whose process is gone, and half-built pristine clusters.
fn sweep_clusters(root: &Path, binaries: &PostgresBinaries, os_user: &OsUser) {
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("run-")
            .or_else(|| name.strip_prefix("building-"))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !process_alive(pid)
        {
            let leftover = LocalCluster::new(binaries.clone(), os_user.clone(), entry.path());
            if leftover.is_running() {
                let _ = leftover.stop(false);
            }
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

async fn connect(url: &str) -> Result<DatabaseConnection, String> {
    crate::store::admin_connection(url)
        .await
        .map_err(|err| err.to_string())
}

async fn exec(db: &DatabaseConnection, sql: &str) -> Result<(), String> {
    db.execute_unprepared(sql)
        .await
        .map(drop)
        .map_err(|err| format!("{sql}: {err}"))
}

async fn database_names(db: &DatabaseConnection, pattern: &str) -> Result<Vec<String>, String> {
    let rows = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
            [pattern.into()],
        ))
        .await
        .map_err(|err| err.to_string())?;
    Ok(rows
        .iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .collect())
}

fn with_user_and_database(
    url: &str,
    user: &str,
    password: &str,
    database: &str,
) -> Result<String, String> {
    let mut parsed = url::Url::parse(&with_database(url, database)?).map_err(|e| e.to_string())?;
    parsed
        .set_username(user)
        .map_err(|()| "the URL cannot carry a user".to_owned())?;
    parsed
        .set_password(Some(password))
        .map_err(|()| "the URL cannot carry a password".to_owned())?;
    Ok(parsed.to_string())
}

/// The pooler the tests' pools go through (`IPA_TEST_POOLER`), when set.
pub fn test_pooler() -> Option<String> {
    std::env::var(POOLER_VARIABLE)
        .ok()
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// `url` with its host and port replaced by `address` (`host:port`).
fn with_address(url: &str, address: &str) -> Result<String, String> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| "expected host:port".to_owned())?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    let mut parsed = url::Url::parse(url).map_err(|err| err.to_string())?;
    parsed.set_host(Some(host)).map_err(|err| err.to_string())?;
    parsed
        .set_port(Some(port))
        .map_err(|()| "the URL cannot carry a port".to_owned())?;
    Ok(parsed.to_string())
}

fn process_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
