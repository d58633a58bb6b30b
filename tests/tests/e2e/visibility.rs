//! An upstream change reaches the app: the replay portal reports a new count, the collector stores it, and
//! the api serves it within a second of the commit (the collector's `NOTIFY` drops every hot copy).

use std::time::{Duration, Instant};

use tests::Sandbox;

use crate::{app, http::get_json};

#[tokio::test]
async fn an_upstream_change_is_served_within_a_second_of_being_stored() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let first = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
    assert!(first["lots"].is_array());

    sandbox.world.set_available("여의도2주차장", Some(77));
    let deadline = Instant::now() + Duration::from_secs(10);
    // Wait for the collector to store the new count...
    let stored = loop {
        let row: Option<(i32,)> = sqlx::query_as(
            "select available from ingest.lot_observation where lot_id = 'yeouido-2' order by observed_at desc limit 1",
        )
        .fetch_optional(sandbox.database())
        .await?;
        if row == Some((77,)) {
            break Instant::now();
        }
        anyhow::ensure!(Instant::now() < deadline, "the collector never stored the change");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    // ...then for the api to serve it.
    let seen = loop {
        let body = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
        if app::yeouido_2(&body)["available"] == 77 {
            break body;
        }
        anyhow::ensure!(
            stored.elapsed() < Duration::from_secs(3),
            "the stored change never became visible"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let lag = stored.elapsed();
    let lot = app::yeouido_2(&seen);
    assert_eq!(lot["freshness"]["state"], "fresh");
    assert_eq!(lot["freshness"]["source_status"], "ok");
    assert!(lag < Duration::from_secs(1), "visible {lag:?} after it was stored");
    sandbox.stop().await
}
