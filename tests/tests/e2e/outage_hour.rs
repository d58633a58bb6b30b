//! The portal failing for an hour: the api keeps the last value but lets it age from `fresh` through `stale`
//! to `expired` while saying the source is failing, and a crossing that reaches push only after that hour is
//! suppressed as `source_stale` instead of sending someone to a lot on an hour-old number.
//!
//! The hour passes on the sandbox's shared clock; everything else (collection, delivery, retries) runs in
//! real time.

use replay::{Endpoint, Fault};
use serde_json::Value;
use tests::Sandbox;

use crate::{app, http::get_json, poll};

const TOKEN: &str = "7e57000000000000000000000000000000000000000000000000000000000a11";
const MINUTE: i64 = 60;

async fn yeouido_2(sandbox: &Sandbox) -> anyhow::Result<Value> {
    Ok(app::yeouido_2(&get_json(sandbox.api_http, "/v2/parks/yeouido").await?))
}

#[tokio::test]
async fn an_hour_of_failing_portal_ages_the_value_and_sends_no_alert_on_it() -> anyhow::Result<()> {
    let mut sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(400));
    app::wait_served(&sandbox, 400).await?;
    let installation = app::subscribe(&sandbox, TOKEN, true).await?;

    // The crossing is observed while push is away, so its fact waits in ingest's outbox; then the portal
    // breaks and nothing newer arrives.
    sandbox.stop_worker("push").await?;
    sandbox.world.set_available("여의도2주차장", Some(30));
    app::wait_served(&sandbox, 30).await?;
    sandbox.world.fail(Endpoint::ParkingPortal, Fault::Status(503));
    poll::until_rows(
        &sandbox,
        "a failed portal run",
        "select count(*) from ingest.ingestion_run where source = 'parking_portal' and outcome = 'failed'",
    )
    .await?;
    let fresh = yeouido_2(&sandbox).await?;
    assert_eq!(fresh["freshness"]["state"], "fresh", "{fresh}");

    for (minutes, state) in [(20, "stale"), (45, "expired")] {
        sandbox.clock.advance(minutes * MINUTE);
        let lot = yeouido_2(&sandbox).await?;
        assert_eq!(lot["available"], 30, "the last value is kept: {lot}");
        assert_eq!(lot["freshness"]["state"], state, "{lot}");
        assert_eq!(lot["freshness"]["source_status"], "failing", "{lot}");
    }

    // Push returns an hour later (by the sandbox's clock) and finally receives the crossing.
    sandbox.start_worker("push").await?;
    poll::until_rows(
        &sandbox,
        "a source_stale suppression",
        "select count(*) from push.decision where decision = 'suppress' and reason = 'source_stale'",
    )
    .await?;
    let (suppressed_for,): (String,) =
        sqlx::query_as("select installation_id from push.decision where reason = 'source_stale'")
            .fetch_one(sandbox.database())
            .await?;
    assert_eq!(suppressed_for, installation.id);
    let (alerts,): (i64,) =
        sqlx::query_as("select count(*) from push.decision where decision = 'push_now'")
            .fetch_one(sandbox.database())
            .await?;
    assert_eq!(alerts, 0, "an alert was decided on an hour-old number");
    let (queued,): (i64,) =
        sqlx::query_as("select count(*) from push.outbox").fetch_one(sandbox.database()).await?;
    assert_eq!(queued, 0);
    assert!(sandbox.apns.deliveries().is_empty(), "{:#?}", sandbox.apns.deliveries());
    sandbox.stop().await
}
