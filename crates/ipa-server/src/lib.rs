//! The `ipa` binary's library: configuration, logging, wiring, the embedded PostgreSQL and every
//! subcommand. `main.rs` only parses the command line and calls [`run`].

pub mod bootstrap;
pub mod config;
pub mod connections;
pub mod database;
pub mod embedded;
pub mod engine;
pub mod secrets;
pub mod serve;
pub mod telemetry;

use anyhow::Context;
use ipa_store::schema;

use ipa_identity::IdentityPolicy;

use crate::config::{Cli, Command, MigrateCommand, UsersCommand};

/// Runs one subcommand to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(options) => serve::serve(&cli.global, &options).await,
        Command::Migrate { command } => migrate(&cli.global, command).await,
        Command::Worker(options) => engine::worker(&cli.global, &options).await,
        Command::Openapi => {
            print_stdout(&ipa_api::openapi_json());
            Ok(())
        }
        Command::Users { command } => users(&cli.global, command).await,
    }
}

async fn users(global: &config::GlobalOptions, command: UsersCommand) -> anyhow::Result<()> {
    let database = database::Database::open(global).await?;
    let outcome = async {
        schema::migrate_up(&database.store, None)
            .await
            .context("applying migrations")?;
        let state = ipa_api::AppState::new(
            database.store.clone(),
            IdentityPolicy::default(),
            // Creating users seals nothing.
            ipa_security::SecretBox::without_key(),
            // Nor authenticates anyone.
            std::time::Duration::ZERO,
        )?;
        match command {
            UsersCommand::Create {
                email,
                username,
                full_name,
                superuser,
            } => {
                bootstrap::create_user(&state, &email, &username, full_name.as_deref(), superuser)
                    .await
            }
        }
    }
    .await;
    let closed = database.close().await;
    outcome?;
    closed
}

async fn migrate(global: &config::GlobalOptions, command: MigrateCommand) -> anyhow::Result<()> {
    let database = database::Database::open(global).await?;
    let store = &database.store;
    let outcome = match command {
        MigrateCommand::Up { steps } => schema::migrate_up(store, steps).await,
        MigrateCommand::Down { steps } => schema::migrate_down(store, steps).await,
        MigrateCommand::Fresh => schema::migrate_fresh(store).await,
        MigrateCommand::Status => schema::migration_states(store).await.map(|states| {
            let lines: Vec<String> = states
                .iter()
                .map(|state| {
                    format!(
                        "{} {}",
                        if state.applied { "applied" } else { "pending" },
                        state.name
                    )
                })
                .collect();
            print_stdout(&lines.join("\n"));
        }),
    };
    let closed = database.close().await;
    outcome.context("migrating the database")?;
    closed
}

/// Writes a command's output. Logs go to stderr, so stdout carries only this.
#[allow(clippy::print_stdout)]
fn print_stdout(text: &str) {
    println!("{text}");
}
