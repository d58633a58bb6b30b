//! `cargo xtask bench ingest`: one full collection cycle of every source against the replay upstream on
//! loopback (fetch + parse, then store), history inserts per second through the production insert path, and
//! the time from a stored change to the api serving it. Prints a table and the summary line
//! `cycle <ms> ms, inserts <n> rows/s, change-to-visible <ms> ms`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::time::{Duration, Instant};

use anyhow::Context as _;

use contracts::{Timestamp, freshness::SourceId};
use ingest::{
    batch::{Batch, LotReading},
    fetch::Fetcher,
    runner::Runner,
    sources::{COLLECTED, Upstreams},
    store::{self, Peers},
};
use tokio_util::sync::CancellationToken;

const CYCLES: usize = 20;
const HISTORY_ROWS: usize = 120_000;
const HISTORY_BATCH: usize = 10_000;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database = migrate::testing::TestDatabase::create().await?;
    let shutdown = CancellationToken::new();
    let world = replay::World::at("2026-06-13T15:30")?;
    let upstream = replay::spawn(world.clone(), shutdown.clone()).await?;
    let runner = Runner {
        pool: database.pool.clone(),
        fetcher: Fetcher::new(Duration::from_secs(5))?,
        upstreams: Upstreams {
            parking_portal_url: upstream.parse()?,
            seoul_openapi_url: upstream.parse()?,
            seoul_openapi_key: Some(settings::Secret::new("bench")),
            kma_api_url: upstream.parse()?,
            kma_api_key: Some(settings::Secret::new("bench")),
            notices_url: Some(format!("{upstream}/notices").parse()?),
        },
        peers: Peers { forecast: true, push: true },
        clock: server::clock::Clock::System,
    };

    // Every run is the collection leader's.
    let lock = ingest::leadership::Lock::try_acquire(&database.pool, Duration::from_secs(30))
        .await?
        .context("the benchmark's database has another collection leader")?;
    let leader = &lock.leadership;

    // Full cycles: every upstream source once (the reference sync is a daily job, not part of a cycle).
    let sources: Vec<SourceId> =
        COLLECTED.into_iter().filter(|s| *s != SourceId::Curated).collect();
    let (mut collect, mut stored, mut cycles) = (Vec::new(), Vec::new(), Vec::new());
    for cycle in 0..CYCLES {
        let now = Timestamp::from_unix_seconds(1_781_332_200 + cycle as i64 * 120)?;
        let (mut c, mut s) = (Duration::ZERO, Duration::ZERO);
        for &source in &sources {
            let report = runner.run_once_at(source, now, leader).await?;
            anyhow::ensure!(
                !matches!(report.outcome, ingest::outcome::Outcome::Failed(_)),
                "{source:?}: {:?}",
                report.outcome
            );
            c += report.collect_time;
            s += report.store_time;
        }
        collect.push(c);
        stored.push(s);
        cycles.push(c + s);
    }

    // History inserts through the production path (unnest in one transaction per batch).
    let lot_ids: Vec<(String,)> =
        sqlx::query_as("select lot_id from reference.lot").fetch_all(&database.pool).await?;
    let started = Instant::now();
    let mut inserted = 0;
    let mut second = 1_700_000_000_i64;
    while inserted < HISTORY_ROWS {
        let mut batch = Batch::default();
        while batch.lots.len() < HISTORY_BATCH {
            second += 60;
            for (lot_id,) in &lot_ids {
                batch.lots.push(LotReading {
                    lot_id: lot_id.clone(),
                    observed_at: Timestamp::from_unix_seconds(second)?,
                    available: Some((second % 300) as u32),
                    capacity: Some(300),
                    not_linked: false,
                    reported_available: None,
                });
            }
        }
        inserted += batch.lots.len();
        let now = Timestamp::from_unix_seconds(second)?;
        let run_id = store::start_run(&database.pool, SourceId::ParkingPortal, now).await?;
        store::finish_run(
            &database.pool,
            lock.leadership.session,
            SourceId::ParkingPortal,
            run_id,
            (now, now),
            Ok(batch),
            Peers::default(),
        )
        .await?;
    }
    let insert_rate = inserted as f64 / started.elapsed().as_secs_f64();

    // Change to visible: the api (its NOTIFY listener included) on loopback.
    let redis = cache::RedisSettings {
        redis_url: settings::REDIS_URL
            .parse_url(&std::env::var("REDIS_URL").unwrap_or("redis://127.0.0.1:6379".into()))?,
        redis_timeout_ms: 150,
        redis_key_prefix: format!("{}:", database.name),
        redis_password_file: None,
    };
    let api_listeners = api::Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        admin: tokio::net::TcpListener::bind("127.0.0.1:0").await?,
    };
    let api_addr = api_listeners.http.local_addr()?;
    let admin_addr = api_listeners.admin.local_addr()?;
    let config = api::Config {
        http_addr: api_addr,
        admin: settings::AdminSettings { admin_addr },
        hot_cache_ttl_seconds: 300,
        push_grpc_url: None,
        grpc_client: server::GrpcClientAuth::default(),
        write_limits: api::rate_limit::WriteLimits::default(),
        http: api::serve::HttpLimits::default(),
        database: db::DatabaseSettings {
            database_url: settings::DATABASE_URL.parse_url(&database.url)?,
            database_max_connections: 4,
            database_acquire_timeout_ms: 2_000,
            database_statement_timeout_ms: db::DEFAULT_STATEMENT_TIMEOUT_MS,
            database_password_file: None,
        },
        redis: redis.clone(),
        common: settings::CommonSettings {
            release_id: "bench".into(),
            log_filter: "warn".into(),
            ..Default::default()
        },
    };
    let state = api::AppState::new(
        &config,
        database.pool.clone(),
        cache::Cache::connect(&redis)?,
        api::clock::Clock::System,
    );
    let api_task = tokio::spawn(api::run(state, api_listeners, shutdown.clone()));
    let client = reqwest::Client::new();
    let url = format!("http://{api_addr}/v2/parks/yeouido");
    let available = |body: &serde_json::Value| {
        body["lots"]
            .as_array()
            .and_then(|lots| lots.iter().find(|lot| lot["lot_id"] == "yeouido-2"))
            .map(|lot| lot["available"].clone())
    };
    let mut visible = Vec::new();
    for value in 1..=10_u32 {
        // Observations are keyed by the second they were made: keep runs in distinct seconds.
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        client.get(&url).send().await?.error_for_status()?; // warm the hot copy
        world.set_available("여의도2주차장", Some(600 + value));
        let report = runner.run_once(SourceId::ParkingPortal, leader).await?;
        anyhow::ensure!(
            matches!(report.outcome, ingest::outcome::Outcome::Ok { .. }),
            "parking run: {:?}",
            report.outcome
        );
        let stored_at = Instant::now();
        loop {
            let body: serde_json::Value = client.get(&url).send().await?.json().await?;
            if available(&body) == Some(serde_json::Value::from(600 + value)) {
                break;
            }
            anyhow::ensure!(
                stored_at.elapsed() < Duration::from_secs(5),
                "change never became visible: served {:?} from {}",
                available(&body),
                body["served_from"]
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        visible.push(stored_at.elapsed());
    }

    let (cycle, collect, store_part, visible) =
        (median(cycles), median(collect), median(stored), median(visible));
    println!(
        "\n`cargo xtask bench ingest` ({CYCLES} cycles of 5 sources against the replay upstream on loopback)\n"
    );
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!(
        "| full cycle, median (fetch over loopback + parse + store) | {:.1} ms | < 200 ms excluding network |",
        ms(cycle)
    );
    println!("| of which fetch + parse | {:.1} ms | |", ms(collect));
    println!("| of which store (5 transactions) | {:.1} ms | |", ms(store_part));
    println!(
        "| history inserts ({inserted} rows, {HISTORY_BATCH} per transaction) | {insert_rate:.0} rows/s | ≥ 50,000 rows/s |"
    );
    println!(
        "| stored change → served by the api, median of 10 | {:.1} ms | < 1,000 ms |",
        ms(visible)
    );
    println!(
        "\ncycle {:.0} ms, inserts {insert_rate:.0} rows/s, change-to-visible {:.0} ms",
        ms(cycle),
        ms(visible)
    );

    shutdown.cancel();
    let _ = api_task.await;
    database.drop_now().await?;
    Ok(())
}
