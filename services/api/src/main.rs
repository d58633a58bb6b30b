//! `hangang-api`: command-line entry point of the app-facing HTTP API.

use clap::{Parser, Subcommand};

/// The Hangangjari app-facing HTTP API.
///
/// Configuration comes from the options below or their environment variables (shown in brackets); an
/// invalid value stops the process with an error naming the option.
#[derive(Debug, Parser)]
#[command(name = "hangang-api", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: api::Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (the default when no subcommand is given).
    Serve(api::Config),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    let _telemetry = telemetry::init("api", &config.common.log_filter, config.common.log_format)?;
    let listener = server::bind(config.http_addr, "HTTP_ADDR").await?;
    api::run(config, listener, server::shutdown_on_signal()).await
}
