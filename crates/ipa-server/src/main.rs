//! The `ipa` command: parses the command line and hands it to the library.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = ipa_server::config::Cli::parse();
    ipa_server::telemetry::init(cli.global.log_format);
    match ipa_server::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole chain of causes: each says what was being done.
            tracing::error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}
