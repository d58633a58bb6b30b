//! `hangang-forecast`: command-line entry point.

use clap::{Parser, Subcommand};

/// Computes parking and congestion forecasts with confidence and reasons, and scores them with backtests.
///
/// Configuration comes from the options below or their environment variables (shown in brackets); an
/// invalid value stops the process with an error naming the option.
#[derive(Debug, Parser)]
#[command(name = "hangang-forecast", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC and the admin endpoints (the default when no subcommand is named).
    Serve(forecast::Config),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args =
        settings::with_default_subcommand(std::env::args_os().collect(), &["serve"], "serve");
    let cli = Cli::parse_from(args);
    let Command::Serve(config) = cli.command;
    let _telemetry = telemetry::init("forecast", &config.common)?;
    let pool = db::connect(&config.database)?;
    let listeners =
        server::WorkerListeners::bind(config.grpc_addr, config.admin.admin_addr).await?;
    forecast::run(
        config,
        server::clock::Clock::System,
        pool,
        listeners,
        server::shutdown_on_signal(),
    )
    .await
}
