//! `cargo xtask bench push`: fan-out of facts to many installations through the real pipeline (facts →
//! decisions → outbox → senders) to the fake APNs over one HTTP/2 connection. Prints notifications/s, fact →
//! delivered p50/p99, and the summary line `<n> notifications/s, p99 <ms> ms, duplicates <n>, lost <n>`.

#![allow(clippy::print_stdout, reason = "a benchmark prints its table")]

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use contracts::{
    Timestamp,
    fact::{Fact, FactKind},
};
use push::{
    apns::{ApnsClient, ApnsSettings},
    installations::{self, InstallationFields, PreferenceFields},
    jwt::ProviderToken,
    pipeline,
    sender::Sender,
};
use tokio_util::sync::CancellationToken;

const INSTALLATIONS: usize = 2_000;
const LOTS: [&str; 5] = ["yeouido-1", "yeouido-2", "yeouido-3", "banpo-1", "jamsil-1"];
const SENDERS: usize = 4;

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database = migrate::testing::TestDatabase::create().await?;
    let pool = database.pool.clone();

    // Every installation watches every lot: each fact fans out to all of them.
    for i in 0..INSTALLATIONS {
        let fields = InstallationFields {
            apns_token: format!("{i:064x}"),
            apns_environment: "production".into(),
            locale: "ko-KR".into(),
            app_version: "2.3.0".into(),
        };
        let (installation, secret) = installations::register(&pool, &fields).await?;
        let preferences: Vec<PreferenceFields> = LOTS
            .iter()
            .map(|lot| PreferenceFields {
                target_kind: "lot".into(),
                target_id: (*lot).into(),
                signal: "lot_available_below".into(),
                threshold: Some(50),
                weekdays: vec![],
                enabled: true,
            })
            .collect();
        installations::replace_preferences(
            &pool,
            &installation.installation_id,
            &secret,
            None,
            &preferences,
        )
        .await?;
    }

    let pem = replay::apns::generate_key();
    let fake = replay::apns::FakeApns::new(
        &replay::apns::public_pem(&pem)?,
        "BENCHKEY01",
        "BENCHTEAM1",
        "app.hangangjari",
    )?;
    let shutdown = CancellationToken::new();
    let url = replay::apns::spawn(fake.clone(), shutdown.clone()).await?;
    let settings = ApnsSettings {
        apns_url: url.clone(),
        apns_sandbox_url: url,
        apns_key_path: None,
        apns_key_id: "BENCHKEY01".into(),
        apns_team_id: "BENCHTEAM1".into(),
        apns_topic: "app.hangangjari".into(),
        apns_ca_file: None,
        apns_timeout_ms: 10_000,
    };
    let client = Arc::new(ApnsClient::new(
        &settings,
        ProviderToken::from_pem(&pem, "BENCHKEY01", "BENCHTEAM1")?,
    )?);
    let sender = Sender::new(pool.clone(), client, server::clock::Clock::System);
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let metrics = push::metrics::Metrics::default();
            tokio::spawn(sender.clone().run(Duration::from_millis(5), metrics, shutdown.clone()))
        })
        .collect();

    // One fact per lot, submitted one after another as ingest would after a cycle.
    let started = Instant::now();
    let mut submitted_at = HashMap::new();
    for lot in LOTS {
        let park = lot.split('-').next().unwrap_or_default().to_owned();
        let fact = Fact {
            lot_id: Some(lot.into()),
            observed_at: Some(Timestamp::now()),
            previous_value: Some(80),
            current_value: Some(20),
            ..Fact::new(format!("bench:{lot}"), FactKind::LotAvailability, park)
        };
        submitted_at.insert(format!("lot:{lot}:lot_available_below"), Instant::now());
        pipeline::submit(&pool, None, &[fact], Timestamp::now()).await?;
    }
    let decided = started.elapsed();
    let expected = INSTALLATIONS * LOTS.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    while fake.deliveries().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    for sender in senders {
        let _ = sender.await;
    }

    let deliveries = fake.deliveries();
    let mut latencies: Vec<Duration> = deliveries
        .iter()
        .filter_map(|d| {
            Some(d.received_at.duration_since(*submitted_at.get(d.collapse_id.as_deref()?)?))
        })
        .collect();
    latencies.sort();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let mut per_id: HashMap<&str, u32> = HashMap::new();
    for delivery in &deliveries {
        *per_id.entry(delivery.apns_id.as_str()).or_default() += 1;
    }
    let duplicates: u32 = per_id.values().map(|n| n - 1).sum();
    let (lost,): (i64,) = sqlx::query_as("select count(*) from push.outbox where status <> 'sent'")
        .fetch_one(&pool)
        .await?;
    let rate = deliveries.len() as f64 / elapsed.as_secs_f64();

    println!(
        "\n`cargo xtask bench push`: {} facts × {INSTALLATIONS} installations, {SENDERS} senders, one HTTP/2 connection\n",
        LOTS.len()
    );
    println!("| measure | value | target |");
    println!("|---|---|---|");
    println!("| notifications delivered | {} of {expected} | all |", deliveries.len());
    println!("| throughput (first fact → last delivery) | {rate:.0} notifications/s | ≥ 5,000/s |");
    println!("| facts decided and queued | {:.0} ms for {expected} decisions | |", ms(decided));
    println!(
        "| fact → delivered p50 / p99 | {:.0} ms / {:.0} ms | p99 < 1,000 ms |",
        ms(percentile(0.5)),
        ms(percentile(0.99))
    );
    println!("| duplicates / lost | {duplicates} / {lost} | 0 / 0 |");
    println!(
        "\n{rate:.0} notifications/s, p99 {:.0} ms, duplicates {duplicates}, lost {lost}",
        ms(percentile(0.99))
    );
    database.drop_now().await?;
    Ok(())
}
