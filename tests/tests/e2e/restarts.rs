//! Workers going away and coming back: what ingest stored while push was down reaches push once it returns,
//! and restarting ingest mid-cycle loses no outbox row and duplicates no fact.

use std::time::{Duration, Instant};

use tests::Sandbox;

use crate::{app, poll};

const TOKEN: &str = "7e57000000000000000000000000000000000000000000000000000000000001";

#[tokio::test]
async fn facts_stored_while_push_is_down_are_delivered_when_it_returns() -> anyhow::Result<()> {
    let mut sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(500));
    app::wait_served(&sandbox, 500).await?;
    app::subscribe(&sandbox, TOKEN, true).await?;

    sandbox.stop_worker("push").await?;
    sandbox.world.set_available("여의도2주차장", Some(20));
    // Ingest keeps collecting and the app keeps seeing fresh numbers while push is away.
    app::wait_served(&sandbox, 20).await?;
    poll::until_rows(
        &sandbox,
        "ingest trying to reach the stopped push",
        "select count(*) from ingest.outbox where destination = 'push' and delivered_at is null and attempts > 0",
    )
    .await?;
    assert!(sandbox.apns.deliveries().is_empty());

    sandbox.start_worker("push").await?;
    let within = Duration::from_secs(30);
    poll::until_delivered(&sandbox, "the held-back fact never became an alert", within).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let deliveries = sandbox.apns.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    assert_eq!(deliveries[0].payload["aps"]["alert"]["loc-key"], "PUSH_LOT_AVAILABLE_BELOW");
    sandbox.stop().await
}

#[tokio::test]
async fn restarting_ingest_mid_cycle_loses_and_duplicates_nothing() -> anyhow::Result<()> {
    let mut sandbox = Sandbox::start().await?;
    for (round, value) in [480_u32, 60, 470, 50].into_iter().enumerate() {
        sandbox.world.set_available("여의도2주차장", Some(value));
        // Stop ingest while a cycle may be in flight (a parking cycle runs every 1.2 s here), then bring it
        // back: the run either committed with its outbox rows or not at all.
        tokio::time::sleep(Duration::from_millis(300 + 200 * round as u64)).await;
        sandbox.stop_worker("ingest").await?;
        sandbox.start_worker("ingest").await?;
        app::wait_served(&sandbox, value).await?;
    }
    let db = sandbox.database().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (pending,): (i64,) =
            sqlx::query_as("select count(*) from ingest.outbox where delivered_at is null")
                .fetch_one(&db)
                .await?;
        if pending == 0 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{pending} outbox rows were never delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every change between consecutive stored observations of yeouido-2 became exactly one fact at push:
    // none lost to a restart, none repeated by a re-run cycle or a re-sent outbox row.
    let observed: Vec<(i32,)> = sqlx::query_as(
        "select available from ingest.lot_observation
         where lot_id = 'yeouido-2' and available is not null order by observed_at",
    )
    .fetch_all(&db)
    .await?;
    let changes: Vec<(String, String)> = observed
        .windows(2)
        .filter(|pair| pair[0] != pair[1])
        .map(|pair| (pair[0].0.to_string(), pair[1].0.to_string()))
        .collect();
    let facts: Vec<(String, String)> = sqlx::query_as(
        "select body->>'previous_value', body->>'current_value' from push.fact
         where lot_id = 'yeouido-2' and kind = 'lot_availability' order by observed_at",
    )
    .fetch_all(&db)
    .await?;
    if facts != changes {
        let detail: Vec<(String, String, String)> = sqlx::query_as(
            "select fact_key, observed_at::text, body::text from push.fact where lot_id = 'yeouido-2' order by observed_at",
        )
        .fetch_all(&db)
        .await?;
        let rows: Vec<(String, String, Option<i32>, String)> = sqlx::query_as(
            "select observed_at::text, fetched_at::text, available, run_id::text from ingest.lot_observation where lot_id = 'yeouido-2' order by observed_at",
        )
        .fetch_all(&db)
        .await?;
        panic!(
            "facts {facts:?} != changes {changes:?}\nfacts: {detail:#?}\nobservations: {rows:#?}"
        );
    }
    for value in [480, 60, 470, 50] {
        assert!(observed.contains(&(value,)), "{value} was never stored: {observed:?}");
    }
    sandbox.stop().await
}
