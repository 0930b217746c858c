//! The command line. Every option can also be given as an environment variable, named in its help.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ipa_api::HttpLimits;
use ipa_identity::{IdentityPolicy, SessionLifetimes, ThrottlePolicy};
use ipa_store::{DatabaseTarget, Pooling};
use time::Duration;

/// IPA Platform: define, version, run and audit automated processes.
#[derive(Debug, Parser)]
#[command(name = "ipa", version, about)]
pub struct Cli {
    /// Options every subcommand understands.
    #[command(flatten)]
    pub global: GlobalOptions,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (and, without DATABASE_URL, run the embedded PostgreSQL).
    Serve(ServeOptions),
    /// Apply, revert or inspect the database migrations.
    Migrate {
        /// The migration action.
        #[command(subcommand)]
        command: MigrateCommand,
    },
    /// Run engine workers only (no API), against the same database as the servers: workers
    /// scale out on other machines this way. Expects the schema migrated (`ipa migrate up`).
    Worker(WorkerOptions),
    /// Print the OpenAPI document of the API.
    Openapi,
    /// Administer user accounts from the command line (acting as the platform itself).
    Users {
        /// The account action.
        #[command(subcommand)]
        command: UsersCommand,
    },
}

/// Account actions.
#[derive(Clone, Debug, Subcommand)]
pub enum UsersCommand {
    /// Create an account. The password is read from stdin when stdin is not a terminal;
    /// otherwise (or when stdin is empty) one is generated and printed once.
    Create {
        /// Email address.
        #[arg(long)]
        email: String,
        /// Username: 3 to 100 letters, digits, '.', '_' or '-'.
        #[arg(long)]
        username: String,
        /// Full name.
        #[arg(long)]
        full_name: Option<String>,
        /// Make the account a superuser.
        #[arg(long)]
        superuser: bool,
    },
}

/// Migration actions.
#[derive(Clone, Copy, Debug, Subcommand)]
pub enum MigrateCommand {
    /// Apply pending migrations.
    Up {
        /// Apply at most this many.
        #[arg(long)]
        steps: Option<u32>,
    },
    /// Revert applied migrations, newest first.
    Down {
        /// How many to revert.
        #[arg(long, default_value_t = 1)]
        steps: u32,
    },
    /// List every migration and whether it is applied.
    Status,
    /// Revert every migration, then apply them all. Destroys all data.
    Fresh,
}

/// Where the database is and how to reach it; how to log.
#[derive(Clone, Debug, Args)]
pub struct GlobalOptions {
    /// PostgreSQL URL of a role that owns its database and may create roles (not a superuser).
    /// Without it, an embedded PostgreSQL is run in the data directory.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,

    /// PostgreSQL URL of the same database and role on PostgreSQL itself, not through a pooler:
    /// migrations and LISTEN use it, since they need a session of their own. Default:
    /// DATABASE_URL. Required with --db-pooling transaction.
    #[arg(
        long,
        env = "IPA_DATABASE_DIRECT_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_direct_url: Option<String>,

    /// How a pooler between DATABASE_URL and PostgreSQL pools its connections: `session` (no
    /// pooler, or a pooler in session mode) or `transaction` (PgBouncer's pool_mode =
    /// transaction; needs IPA_DATABASE_DIRECT_URL).
    #[arg(long, env = "IPA_DB_POOLING", global = true, value_enum, default_value_t = DbPooling::Session)]
    pub db_pooling: DbPooling,

    /// Data directory of the embedded PostgreSQL. Default: $XDG_DATA_HOME/ipa, else
    /// ~/.local/share/ipa; /var/lib/ipa when run as root.
    #[arg(long, env = "IPA_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Directory holding initdb and pg_ctl. Default: the newest /usr/lib/postgresql/*/bin, else
    /// PATH.
    #[arg(long, env = "IPA_POSTGRES_BIN_DIR", global = true)]
    pub postgres_bin_dir: Option<PathBuf>,

    /// OS user the embedded PostgreSQL runs as when ipa runs as root (PostgreSQL refuses root).
    #[arg(
        long,
        env = "IPA_POSTGRES_OS_USER",
        global = true,
        default_value = "postgres"
    )]
    pub postgres_os_user: String,

    /// Most database connections the server opens.
    #[arg(
        long,
        env = "IPA_DB_MAX_CONNECTIONS",
        global = true,
        default_value_t = 10
    )]
    pub db_max_connections: u32,

    /// Milliseconds a request waits for a database connection (a free one, or a new one being
    /// opened) before it is answered 503 database_unavailable. Bounds every request during an
    /// outage, and connecting at start.
    #[arg(
        long,
        env = "IPA_DB_ACQUIRE_TIMEOUT_MS",
        global = true,
        default_value_t = 3000,
        value_parser = clap::value_parser!(u64).range(1..=600_000)
    )]
    pub db_acquire_timeout_ms: u64,

    /// Start even when the database role is a superuser or bypasses row level security, or the
    /// request role is unsafe. Row level security then protects nothing; never in production.
    #[arg(long, env = "IPA_ALLOW_PRIVILEGED_DATABASE_ROLE", global = true)]
    pub allow_privileged_database_role: bool,

    /// Log format: human-readable text, or one JSON object per line. RUST_LOG sets the levels.
    #[arg(long, env = "IPA_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How a pooler in front of PostgreSQL pools the connections of DATABASE_URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DbPooling {
    /// Each connection is a session of its own: no pooler, or one in session mode.
    Session,
    /// A pooler in transaction mode lends a server connection for one transaction at a time.
    Transaction,
}

impl GlobalOptions {
    /// Where the operator's database is, when DATABASE_URL is set (`None`: embedded mode).
    ///
    /// # Errors
    /// When the pooling settings do not fit together.
    pub fn database_target(&self) -> anyhow::Result<Option<DatabaseTarget>> {
        let non_empty = |url: &Option<String>| {
            url.as_deref()
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(str::to_owned)
        };
        let url = non_empty(&self.database_url);
        let direct_url = non_empty(&self.database_direct_url);
        let pooling = match self.db_pooling {
            DbPooling::Session => Pooling::Session,
            DbPooling::Transaction => Pooling::Transaction,
        };
        match (url, direct_url, pooling) {
            (None, None, Pooling::Session) => Ok(None),
            (None, _, _) => anyhow::bail!(
                "IPA_DATABASE_DIRECT_URL and IPA_DB_POOLING=transaction describe the way to an \
                 operator's PostgreSQL: set DATABASE_URL too (the embedded PostgreSQL needs \
                 neither)"
            ),
            (Some(_), None, Pooling::Transaction) => anyhow::bail!(
                "IPA_DB_POOLING=transaction needs IPA_DATABASE_DIRECT_URL: migrations and \
                 LISTEN need a session of their own, which a pooler in transaction mode does \
                 not keep; point it at PostgreSQL itself (same database and role)"
            ),
            (Some(url), None, Pooling::Session) => Ok(Some(DatabaseTarget::direct(url))),
            (Some(url), Some(direct_url), pooling) => {
                Ok(Some(DatabaseTarget::pooled(url, direct_url, pooling)))
            }
        }
    }
}

/// Log formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of `ipa serve`.
#[derive(Clone, Debug, Args)]
pub struct ServeOptions {
    /// Address to listen on.
    #[arg(long, env = "IPA_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Do not apply pending migrations at start (the server then waits, not ready, until they
    /// are applied with `ipa migrate up`).
    #[arg(long, env = "IPA_NO_MIGRATE")]
    pub no_migrate: bool,

    /// Seconds between refreshes of the workflow statistics view.
    #[arg(long, env = "IPA_STATS_REFRESH_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub stats_refresh_secs: u64,

    /// Limits every request and connection is held to.
    #[command(flatten)]
    pub http: HttpOptions,

    /// Sign-in sessions and their throttle.
    #[command(flatten)]
    pub identity: IdentityOptions,

    /// The first superuser.
    #[command(flatten)]
    pub bootstrap: BootstrapOptions,

    /// The engine workers inside the server.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Options of `ipa worker`.
#[derive(Clone, Debug, Args)]
pub struct WorkerOptions {
    /// The workers.
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// How the engine's workers run.
#[derive(Clone, Debug, Args)]
pub struct EngineArgs {
    /// Engine workers in this process, each running one run at a time (0: none, so this server
    /// only serves the API).
    #[arg(long, env = "IPA_WORKERS", default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub workers: u32,

    /// Seconds a worker holds a run without renewing its lease; a run whose worker died is
    /// picked up again after this long.
    #[arg(long, env = "IPA_WORKER_LEASE_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(3..=3600))]
    pub worker_lease_secs: u64,

    /// Milliseconds between an idle worker's looks for work when no notification wakes it.
    #[arg(long, env = "IPA_WORKER_POLL_MS", default_value_t = 2000, value_parser = clap::value_parser!(u64).range(50..=600_000))]
    pub worker_poll_ms: u64,

    /// Times a run is picked up again after losing its worker before it fails.
    #[arg(long, env = "IPA_WORKER_MAX_RECOVERIES", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub worker_max_recoveries: u32,

    /// OpenAI's API root, where agents with the `openai` provider are called (set it to route
    /// them through a proxy or gateway speaking the same API).
    #[arg(long, env = "IPA_OPENAI_BASE_URL", default_value = ipa_engine::OPENAI_BASE_URL, value_parser = parse_http_url)]
    pub openai_base_url: String,
}

/// An http(s) URL as agent configurations take them, without a trailing slash (paths are
/// appended to it).
fn parse_http_url(text: &str) -> Result<String, String> {
    let url = ipa_agent::HttpUrl::parse(text)?;
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// Limits at the door: request size and shape, and how long connections may take or idle.
#[derive(Clone, Debug, Args)]
pub struct HttpOptions {
    /// Largest request body accepted, in bytes; larger ones answer 413 payload_too_large.
    #[arg(long, env = "IPA_MAX_BODY_BYTES", default_value_t = HttpLimits::DEFAULT_MAX_BODY_BYTES as u64, value_parser = clap::value_parser!(u64).range(1..=1 << 32))]
    pub max_body_bytes: u64,

    /// Deepest nesting of arrays and objects accepted in a JSON body; deeper answers 400
    /// json_too_deep.
    #[arg(long, env = "IPA_MAX_JSON_DEPTH", default_value_t = HttpLimits::DEFAULT_MAX_JSON_DEPTH as u32, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_json_depth: u32,

    /// Seconds a client has to send a request's headers (from connecting, or from the first
    /// byte of a later request on the same connection); the connection is closed after that.
    #[arg(long, env = "IPA_HEADER_READ_TIMEOUT_SECS", default_value_t = HttpLimits::DEFAULT_HEADER_READ_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,

    /// Seconds an idle keep-alive connection stays open waiting for its next request.
    #[arg(long, env = "IPA_KEEP_ALIVE_TIMEOUT_SECS", default_value_t = HttpLimits::DEFAULT_KEEP_ALIVE_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub keep_alive_timeout_secs: u64,
}

impl HttpOptions {
    /// The limits these options describe.
    pub fn limits(&self) -> HttpLimits {
        HttpLimits {
            max_body_bytes: usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX),
            max_json_depth: self.max_json_depth as usize,
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            keep_alive_timeout: std::time::Duration::from_secs(self.keep_alive_timeout_secs),
        }
    }
}

/// How long sessions last and when failed sign-ins lock attempts out.
#[derive(Clone, Debug, Args)]
pub struct IdentityOptions {
    /// Seconds a session lives without use (each use pushes its end forward).
    #[arg(long, env = "IPA_SESSION_IDLE_SECS", default_value_t = 8 * 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_idle_secs: u32,

    /// Seconds a session lives at most, used or not.
    #[arg(long, env = "IPA_SESSION_LIFETIME_SECS", default_value_t = 7 * 24 * 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_lifetime_secs: u32,

    /// Failed sign-ins one account may have within the window before attempts get 429.
    #[arg(long, env = "IPA_LOGIN_MAX_FAILURES", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_max_failures: u32,

    /// Failed sign-ins one client address may have within the window before attempts get 429.
    #[arg(long, env = "IPA_LOGIN_MAX_FAILURES_PER_ADDRESS", default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_max_failures_per_address: u32,

    /// Seconds over which failed sign-ins are counted.
    #[arg(long, env = "IPA_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 900, value_parser = clap::value_parser!(u32).range(1..))]
    pub login_failure_window_secs: u32,

    /// Seconds this process remembers an authenticated bearer token (0: ask the database on
    /// every request). A change that ends or alters a session or its account is announced to
    /// every process, which forgets the account's tokens at once.
    #[arg(long, env = "IPA_SESSION_CACHE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(0..=60))]
    pub session_cache_secs: u32,
}

impl IdentityOptions {
    /// The identity policy these options describe.
    pub fn policy(&self) -> anyhow::Result<IdentityPolicy> {
        let lifetimes = SessionLifetimes::new(
            Duration::seconds(i64::from(self.session_idle_secs)),
            Duration::seconds(i64::from(self.session_lifetime_secs)),
        )
        .ok_or_else(|| {
            anyhow::anyhow!(
                "IPA_SESSION_IDLE_SECS ({}) must not exceed IPA_SESSION_LIFETIME_SECS ({})",
                self.session_idle_secs,
                self.session_lifetime_secs
            )
        })?;
        let throttle = ThrottlePolicy::new(
            self.login_max_failures,
            self.login_max_failures_per_address,
            Duration::seconds(i64::from(self.login_failure_window_secs)),
        )
        .ok_or_else(|| {
            anyhow::anyhow!("the sign-in throttle's limits and window must be positive")
        })?;
        Ok(IdentityPolicy {
            lifetimes,
            throttle,
        })
    }
}

/// A superuser to create at start when none exists. All three or none.
#[derive(Clone, Debug, Args)]
pub struct BootstrapOptions {
    /// Email address of the superuser to create at start if no superuser exists.
    #[arg(long, env = "IPA_BOOTSTRAP_ADMIN_EMAIL")]
    pub bootstrap_admin_email: Option<String>,

    /// Username of that superuser.
    #[arg(long, env = "IPA_BOOTSTRAP_ADMIN_USERNAME")]
    pub bootstrap_admin_username: Option<String>,

    /// Password of that superuser (8 to 128 characters).
    #[arg(long, env = "IPA_BOOTSTRAP_ADMIN_PASSWORD", hide_env_values = true)]
    pub bootstrap_admin_password: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn tokens_are_remembered_by_default_for_the_session_caches_period() {
        let options = Cli::try_parse_from(["ipa", "serve"]).expect("parses");
        let Command::Serve(serve) = options.command else {
            panic!("not serve");
        };
        assert_eq!(
            u64::from(serve.identity.session_cache_secs),
            ipa_store::SessionCache::DEFAULT_PERIOD.as_secs()
        );
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_defaults_to_loopback_8080() {
        let cli = Cli::try_parse_from(["ipa", "serve"]).unwrap();
        let Command::Serve(options) = cli.command else {
            panic!("not serve")
        };
        assert_eq!(options.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(options.stats_refresh_secs, 60);
        assert!(!options.no_migrate);
        assert_eq!(options.engine.workers, 4);
        assert_eq!(options.engine.worker_lease_secs, 30);
        assert_eq!(options.http.limits(), HttpLimits::default());
        assert_eq!(cli.global.db_acquire_timeout_ms, 3000);
        assert_eq!(
            options.identity.policy().unwrap(),
            IdentityPolicy::default()
        );
    }

    #[test]
    fn the_openai_base_url_is_an_http_url_without_its_trailing_slash() {
        let base = |url: &str| {
            Cli::try_parse_from(["ipa", "serve", "--openai-base-url", url]).map(|cli| {
                let Command::Serve(options) = cli.command else {
                    panic!("not serve")
                };
                options.engine.openai_base_url
            })
        };
        assert_eq!(
            base("https://gateway.example/v1/").unwrap(),
            "https://gateway.example/v1"
        );
        assert!(base("ftp://gateway.example").is_err());
        assert!(base("https://").is_err());
    }

    #[test]
    fn an_idle_timeout_beyond_the_lifetime_is_refused() {
        let cli = Cli::try_parse_from([
            "ipa",
            "serve",
            "--session-idle-secs",
            "7200",
            "--session-lifetime-secs",
            "3600",
        ])
        .unwrap();
        let Command::Serve(options) = cli.command else {
            panic!("not serve")
        };
        assert!(options.identity.policy().is_err());
    }

    #[test]
    fn transaction_pooling_needs_a_direct_url() {
        // Every database setting is given, so the test's own environment (DATABASE_URL and the
        // like) cannot change the outcome.
        let target = |url: Option<&str>, direct: Option<&str>, pooling: DbPooling| {
            let mut global = Cli::try_parse_from(["ipa", "serve"]).unwrap().global;
            global.database_url = url.map(str::to_owned);
            global.database_direct_url = direct.map(str::to_owned);
            global.db_pooling = pooling;
            global.database_target()
        };
        let pooler = Some("postgres://ipa@127.0.0.1:6432/ipa");
        let direct = Some("postgres://ipa@127.0.0.1:5432/ipa");
        let session = target(pooler, None, DbPooling::Session).unwrap().unwrap();
        assert_eq!(session.pooling(), Pooling::Session);
        let pooled = target(pooler, direct, DbPooling::Transaction)
            .unwrap()
            .unwrap();
        assert_eq!(pooled.pooling(), Pooling::Transaction);
        let missing = target(pooler, None, DbPooling::Transaction).unwrap_err();
        assert!(
            missing.to_string().contains("IPA_DATABASE_DIRECT_URL"),
            "{missing}"
        );
        let embedded = target(None, None, DbPooling::Transaction).unwrap_err();
        assert!(
            embedded.to_string().contains("set DATABASE_URL"),
            "{embedded}"
        );
        assert!(
            target(Some("  "), None, DbPooling::Session)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn the_pooling_mode_is_read_from_its_option() {
        let cli = Cli::try_parse_from(["ipa", "--db-pooling", "transaction", "serve"]).unwrap();
        assert_eq!(cli.global.db_pooling, DbPooling::Transaction);
        assert!(Cli::try_parse_from(["ipa", "--db-pooling", "statement", "serve"]).is_err());
    }

    #[test]
    fn migrate_down_reverts_one_step_by_default() {
        let cli = Cli::try_parse_from(["ipa", "migrate", "down"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Migrate {
                command: MigrateCommand::Down { steps: 1 }
            }
        ));
    }
}
