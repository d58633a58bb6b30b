//! `hangang-ingest`: command-line entry point.

use clap::{Parser, Subcommand};

/// Collects every upstream source (parking portal, Seoul city data, events, weather, notices), records each run's outcome and stores history.
///
/// Configuration comes from the options below or their environment variables (shown in brackets); an
/// invalid value stops the process with an error naming the option.
#[derive(Debug, Parser)]
#[command(name = "hangang-ingest", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    #[command(flatten)]
    serve: ingest::Config,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC and the admin endpoints (the default when no subcommand is given).
    Serve(ingest::Config),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match cli.command {
        Some(Command::Serve(config)) => config,
        None => cli.serve,
    };
    let _telemetry =
        telemetry::init("ingest", &config.common.log_filter, config.common.log_format)?;
    let listeners =
        server::WorkerListeners::bind(config.grpc_addr, config.admin.admin_addr).await?;
    ingest::run(config, listeners, server::shutdown_on_signal()).await
}
