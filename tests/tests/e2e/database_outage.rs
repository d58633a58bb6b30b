//! The api cut off from PostgreSQL: it serves its last good build as `stale_fallback` with freshness aged
//! honestly (never a 5xx, never "fresh"), and serves what ingest stored meanwhile once the link is back.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::Sandbox;

use crate::{
    app,
    http::{get, get_json},
    poll,
};

#[tokio::test]
async fn an_unreachable_database_serves_the_last_good_build_as_stale_fallback() -> anyhow::Result<()>
{
    let sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(321));
    app::wait_served(&sandbox, 321).await?;

    sandbox.cut_api_database();
    // Ingest still reaches PostgreSQL and stores a new number the api cannot read.
    sandbox.world.set_available("여의도2주차장", Some(7));
    poll::until_rows(
        &sandbox,
        "ingest storing the new number",
        "select count(*) from ingest.lot_observation where lot_id = 'yeouido-2' and available = 7",
    )
    .await?;
    // Twenty minutes pass: the hot copy has long expired, so every request needs PostgreSQL.
    sandbox.clock.advance(20 * 60);

    for path in ["/v2/home-summary", "/v2/widgets/parking?lot_ids=yeouido-2", "/v1/home-summary"] {
        let (status, body) = get(sandbox.api_http, path).await?;
        assert_eq!(status, "HTTP/1.1 200 OK", "{path}: {body}");
    }
    let park = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
    assert_eq!(park["served_from"], "stale_fallback", "{park}");
    let lot = app::yeouido_2(&park);
    assert_eq!(lot["available"], 321, "the last good build, not a guess: {lot}");
    assert_eq!(lot["freshness"]["state"], "stale", "twenty minutes old is not fresh: {lot}");
    let ready = get_json(sandbox.api_admin, "/readyz").await?;
    assert_eq!(ready["database"], false, "{ready}");

    sandbox.restore_api_database();
    let deadline = Instant::now() + Duration::from_secs(15);
    let recovered: Value = loop {
        let park = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
        if park["served_from"] != "stale_fallback" && app::yeouido_2(&park)["available"] == 7 {
            break park;
        }
        anyhow::ensure!(Instant::now() < deadline, "the api never read PostgreSQL again: {park}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(app::yeouido_2(&recovered)["freshness"]["state"], "fresh", "{recovered}");
    sandbox.stop().await
}

#[tokio::test]
async fn a_silent_database_path_serves_the_last_good_build_instead_of_hanging() -> anyhow::Result<()>
{
    let sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(321));
    app::wait_served(&sandbox, 321).await?;

    // The path to PostgreSQL goes silent: the pooled connections stay open, nothing comes back.
    sandbox.silence_api_database();
    sandbox.clock.advance(20 * 60);
    // The app's requests arrive together. Unbounded, each would wait on the rebuild lock for the attempts of
    // all before it (one connection timeout each) until the request timeout answered 503.
    let mut requests = tokio::task::JoinSet::new();
    for n in 0..6 {
        let path = if n % 2 == 0 { "/v2/parks/yeouido" } else { "/v2/home-summary" };
        requests.spawn(get(sandbox.api_http, path));
    }
    while let Some(answered) = requests.join_next().await {
        let (status, body) = answered??;
        assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
        assert!(body.contains("\"served_from\":\"stale_fallback\""), "{body}");
    }
    let park = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
    assert_eq!(park["served_from"], "stale_fallback", "{park}");
    assert_eq!(app::yeouido_2(&park)["available"], 321, "{park}");

    sandbox.restore_api_database();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let park = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
        if park["served_from"] != "stale_fallback" {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the api never read PostgreSQL again: {park}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sandbox.stop().await
}
