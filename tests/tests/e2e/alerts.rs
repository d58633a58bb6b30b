//! An installation registered through the api, subscribed to a lot, gets a `push_now` decision and exactly
//! one alert at (the fake) APNs when the replay portal crosses its threshold; a switched-off subscription gets
//! a recorded suppression instead.

use std::time::{Duration, Instant};

use tests::Sandbox;

use crate::{
    app,
    http::{get, metric, send},
    poll,
};

const JSON: (&str, &str) = ("content-type", "application/json");
const TOKEN: &str = "5b0c2a4e9f1d3c7b8a6e0f2d4c6b8a0e1f3d5c7b9a1e3f5d7c9b1a3e5f7d9c1b";

/// Registers and subscribes an installation; a wrong secret on its routes is answered like an unknown one.
async fn register(sandbox: &Sandbox, enabled: bool) -> anyhow::Result<String> {
    let installation = app::subscribe(sandbox, TOKEN, enabled).await?;
    let (status, _) = send(
        sandbox.api_http,
        "PUT",
        &app::preferences_path(&installation.id),
        &[JSON, ("authorization", "Bearer hjs_wrong")],
        Some(&app::preferences(enabled)),
    )
    .await?;
    anyhow::ensure!(
        status == 404,
        "a wrong secret is answered like an unknown installation, got {status}"
    );
    Ok(installation.id)
}

async fn wait_for_value(sandbox: &Sandbox, value: i32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let row: Option<(i32,)> = sqlx::query_as(
            "select available from ingest.lot_observation where lot_id = 'yeouido-2' order by observed_at desc limit 1",
        )
        .fetch_optional(sandbox.database())
        .await?;
        if row == Some((value,)) {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "the collector never stored {value}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn crossing_a_threshold_delivers_one_alert_and_records_the_suppression() -> anyhow::Result<()>
{
    let sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(500));
    wait_for_value(&sandbox, 500).await?;
    let subscribed = register(&sandbox, true).await?;
    let switched_off = register(&sandbox, false).await?;

    sandbox.world.set_available("여의도2주차장", Some(20));
    wait_for_value(&sandbox, 20).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let decisions = loop {
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "select installation_id, decision, reason from push.decision order by decision_id",
        )
        .fetch_all(sandbox.database())
        .await?;
        if rows.len() >= 2 {
            break rows;
        }
        anyhow::ensure!(Instant::now() < deadline, "no decisions: {rows:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(decisions.contains(&(subscribed.clone(), "push_now".into(), None)), "{decisions:?}");
    assert!(
        decisions.contains(&(switched_off, "suppress".into(), Some("preference_off".into()))),
        "{decisions:?}"
    );

    let (payload,): (serde_json::Value,) =
        sqlx::query_as("select payload from push.outbox where installation_id = $1")
            .bind(&subscribed)
            .fetch_one(sandbox.database())
            .await?;
    assert_eq!(payload["aps"]["alert"]["loc-key"], "PUSH_LOT_AVAILABLE_BELOW");
    assert_eq!(payload["aps"]["alert"]["loc-args"], serde_json::json!(["여의도2주차장", "20"]));

    // The sender delivers it to APNs, once.
    poll::until_delivered(&sandbox, "nothing reached APNs", Duration::from_secs(10)).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let deliveries = sandbox.apns.deliveries();
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    assert_eq!(deliveries[0].payload["aps"]["alert"]["loc-key"], "PUSH_LOT_AVAILABLE_BELOW");
    assert_eq!(deliveries[0].payload["deeplink"], "hangangjari://parks/yeouido/lots/yeouido-2");
    assert_eq!(deliveries[0].collapse_id.as_deref(), Some("lot:yeouido-2:lot_available_below"));

    // The operator's view on the push worker's admin listener agrees: one sent, nothing left pending.
    let push_admin = sandbox.workers.iter().find(|worker| worker.name == "push").unwrap().admin;
    let (_, metrics) = get(push_admin, "/metrics").await?;
    assert_eq!(metric(&metrics, "hangang_push_sends_total{outcome=\"sent\"}"), 1.0);
    assert!(metric(&metrics, "hangang_push_decisions_total") >= 2.0);
    assert_eq!(metric(&metrics, "hangang_push_outbox_up"), 1.0);
    assert_eq!(metric(&metrics, "hangang_push_outbox_pending"), 0.0);
    sandbox.stop().await
}
