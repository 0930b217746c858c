//! The command line. Every option can also be given as an environment variable, named in its help.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    /// Print the OpenAPI document of the API.
    Openapi,
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

    /// Start even when the database role is a superuser or bypasses row level security, or the
    /// request role is unsafe. Row level security then protects nothing; never in production.
    #[arg(long, env = "IPA_ALLOW_PRIVILEGED_DATABASE_ROLE", global = true)]
    pub allow_privileged_database_role: bool,

    /// Log format: human-readable text, or one JSON object per line. RUST_LOG sets the levels.
    #[arg(long, env = "IPA_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

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
