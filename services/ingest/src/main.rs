//! `hangang-ingest`: command-line entry point.

use clap::{Parser, Subcommand};

/// Collects every upstream source (parking portal, Seoul city data, events, weather, notices), records each run's outcome and stores history.
///
/// Configuration comes from the options below or their environment variables (shown in brackets); an
/// invalid value stops the process with an error naming the option.
#[derive(Debug, Parser)]
#[command(name = "hangang-ingest", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC and the admin endpoints (the default when no subcommand is named).
    Serve(ingest::Config),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args =
        settings::with_default_subcommand(std::env::args_os().collect(), &["serve"], "serve");
    let cli = Cli::parse_from(args);
    let Command::Serve(config) = cli.command;
    let _telemetry =
        telemetry::init("ingest", &config.common.log_filter, config.common.log_format)?;
    let listeners =
        server::WorkerListeners::bind(config.grpc_addr, config.admin.admin_addr).await?;
    ingest::run(config, listeners, server::shutdown_on_signal()).await
}
