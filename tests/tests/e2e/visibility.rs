//! A change a writer commits is visible through the api within a second: the writer's `NOTIFY` makes every
//! replica drop its hot copy, instead of waiting out the hot-cache period.

use std::time::{Duration, Instant};

use tests::Sandbox;

use crate::http::get_json;

fn yeouido_2(body: &serde_json::Value) -> serde_json::Value {
    let lots = body["lots"].as_array().cloned().unwrap_or_default();
    lots.into_iter().find(|lot| lot["lot_id"] == "yeouido-2").unwrap_or_default()
}

#[tokio::test]
async fn a_committed_change_is_served_within_a_second() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let before = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
    assert!(yeouido_2(&before)["available"].is_null());
    // The hot copy now holds "no data". The api subscribed to changes before it answered.

    sqlx::raw_sql(
        "insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome)
         values ('parking_portal', now(), now(), 'ok');
         insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
         values ('yeouido-2', now(), now(), 77, 1087);
         select pg_notify('hangang_data_changed', 'parking_portal');",
    )
    .execute(sandbox.database())
    .await?;
    let committed = Instant::now();

    let seen = loop {
        let body = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
        if yeouido_2(&body)["available"] == 77 {
            break body;
        }
        anyhow::ensure!(
            committed.elapsed() < Duration::from_secs(3),
            "the change never became visible"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let elapsed = committed.elapsed();
    assert_eq!(yeouido_2(&seen)["freshness"]["state"], "fresh");
    assert_eq!(seen["served_from"], "live");
    assert!(elapsed < Duration::from_secs(1), "visible only after {elapsed:?}");
    sandbox.stop().await
}
