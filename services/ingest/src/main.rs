//! `hangang-ingest`: command-line entry point.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use contracts::Timestamp;

/// Collects every upstream source (parking portal, Seoul city data, events, weather, notices), records each
/// run's outcome and stores history.
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
    /// Serve gRPC and the admin endpoints and collect on schedule (the default when no subcommand is named).
    Serve(Box<ingest::Config>),
    /// Run one collection of a source now, print its outcome and exit (non-zero when it failed).
    RunOnce {
        /// The source, as `/v2/status` names it: parking_portal, seoul_citydata, seoul_cultural_events,
        /// kma_forecast, hangang_notices or curated (the reference file).
        #[arg(value_parser = ingest::sources::collected)]
        source: contracts::freshness::SourceId,
        #[command(flatten)]
        upstream: ingest::UpstreamSettings,
        #[command(flatten)]
        database: db::DatabaseSettings,
        #[command(flatten)]
        common: settings::CommonSettings,
    },
    /// Make the reference schema match the curated reference file shipped with this release.
    SyncReference {
        #[command(flatten)]
        database: db::DatabaseSettings,
        #[command(flatten)]
        common: settings::CommonSettings,
    },
    /// Announce or end a closure or control right away (operator notices).
    Notice {
        #[command(subcommand)]
        action: NoticeAction,
        #[command(flatten)]
        database: db::DatabaseSettings,
        #[command(flatten)]
        common: settings::CommonSettings,
    },
}

#[derive(Debug, Subcommand)]
enum NoticeAction {
    /// Add a notice; prints its id.
    Add {
        /// The park (`yeouido`, …), or `all` for every park.
        #[arg(long)]
        park: String,
        /// park-closure, lot-closure, control, facility-closure or general.
        #[arg(long, value_parser = ingest::operator::parse_kind)]
        kind: contracts::v2::NoticeKind,
        /// The Korean text shown to users.
        #[arg(long)]
        title: String,
        /// The lot, for lot closures.
        #[arg(long)]
        lot: Option<String>,
        /// A page with more, shown to users: https only (the app opens it).
        #[arg(long)]
        url: Option<upstream::link::HttpsUrl>,
        /// When it ends (RFC 3339); open-ended when absent.
        #[arg(long)]
        ends_at: Option<Timestamp>,
        /// Also queue the closure as a fact for push.
        #[arg(long, env = "PUSH_GRPC_URL")]
        push_grpc_url: Option<String>,
    },
    /// End a notice now.
    End { notice_id: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = settings::with_default_subcommand(
        std::env::args_os().collect(),
        &["serve", "run-once", "sync-reference", "notice"],
        "serve",
    );
    match Cli::parse_from(args).command {
        Command::Serve(config) => {
            let _telemetry = telemetry::init("ingest", &config.common)?;
            let pool = db::connect(&config.database)?;
            let listeners =
                server::WorkerListeners::bind(config.grpc_addr, config.admin.admin_addr).await?;
            ingest::run(
                *config,
                server::clock::Clock::System,
                pool,
                listeners,
                server::shutdown_on_signal(),
            )
            .await
        }
        Command::RunOnce { source, upstream, database, common } => {
            let _telemetry = telemetry::init("ingest", &common)?;
            let runner = ingest::runner(
                db::connect(&database)?,
                &upstream,
                ingest::store::Peers::default(),
                server::clock::Clock::System,
            )?;
            // Fenced like every run: refused while a serving replica leads.
            let Some(lock) = ingest::leadership::Lock::try_acquire(
                &runner.pool,
                std::time::Duration::from_secs(30),
            )
            .await?
            else {
                anyhow::bail!(
                    "another process holds the collection leader lock; ask it with the RunNow rpc instead"
                );
            };
            let report = runner.run_once(source, &lock.leadership).await;
            lock.release().await;
            let report = report?;
            let outcome = match &report.outcome {
                ingest::outcome::Outcome::Ok { items } => format!("ok, {items} items"),
                ingest::outcome::Outcome::Partial { items, failed_parts, failure } => {
                    format!("partial, {items} items, {failed_parts} parks failed: {failure}")
                }
                ingest::outcome::Outcome::NoData => "no_data".to_owned(),
                ingest::outcome::Outcome::Failed(failure) => format!("failed: {failure}"),
            };
            tracing::info!(run_id = report.run_id, %outcome, "run finished");
            if matches!(report.outcome, ingest::outcome::Outcome::Failed(_)) {
                anyhow::bail!("run {} failed: {outcome}", report.run_id);
            }
            Ok(())
        }
        Command::SyncReference { database, common } => {
            let _telemetry = telemetry::init("ingest", &common)?;
            let pool = db::connect(&database)?;
            let reference = db::reference::Reference::curated()
                .context("the curated reference file is invalid")?;
            let report = db::reference::sync(&pool, &reference).await?;
            tracing::info!(version = %report.version, changed = report.changed, parks = report.parks, lots = report.lots, "reference synced");
            Ok(())
        }
        Command::Notice { action, database, common } => {
            let _telemetry = telemetry::init("ingest", &common)?;
            let pool = db::connect(&database)?;
            match action {
                NoticeAction::Add { park, kind, title, lot, url, ends_at, push_grpc_url } => {
                    let notice = ingest::operator::NewNotice {
                        park_id: (park != "all").then_some(park),
                        lot_id: lot,
                        kind,
                        title_ko: title,
                        url,
                        starts_at: Timestamp::now(),
                        ends_at,
                    };
                    let peers =
                        ingest::store::Peers { forecast: false, push: push_grpc_url.is_some() };
                    let notice_id = ingest::operator::add(&pool, &notice, peers).await?;
                    tracing::info!(%notice_id, "notice added");
                }
                NoticeAction::End { notice_id } => {
                    ingest::operator::end(&pool, &notice_id, Timestamp::now()).await?;
                    tracing::info!(%notice_id, "notice ended");
                }
            }
            Ok(())
        }
    }
}
