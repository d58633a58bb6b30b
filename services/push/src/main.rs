//! `hangang-push`: command-line entry point.

use clap::{Parser, Subcommand};

/// Turns facts into recorded decisions for subscribed installations and queues alerts in a durable outbox.
///
/// Configuration comes from the options below or their environment variables (shown in brackets); an
/// invalid value stops the process with an error naming the option.
#[derive(Debug, Parser)]
#[command(name = "hangang-push", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve gRPC and the admin endpoints (the default when no subcommand is named).
    Serve(push::Config),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args =
        settings::with_default_subcommand(std::env::args_os().collect(), &["serve"], "serve");
    let cli = Cli::parse_from(args);
    let Command::Serve(config) = cli.command;
    let _telemetry = telemetry::init("push", &config.common)?;
    let pool = db::connect(&config.database)?;
    let listeners =
        server::WorkerListeners::bind(config.grpc_addr, config.admin.admin_addr).await?;
    push::run(config, server::clock::Clock::System, pool, listeners, server::shutdown_on_signal())
        .await
}
