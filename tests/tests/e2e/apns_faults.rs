//! Apple answering errors: `410 Unregistered` deactivates the installation, `429` and `500` are retried with
//! backoff until they go through; every alert ends delivered or accounted for, none twice.

use std::time::{Duration, Instant};

use replay::apns::Behaviour;
use tests::Sandbox;

use crate::app;

const UNREGISTERED: &str = "410a0000000000000000000000000000000000000000000000000000000000aa";
const THROTTLED: &str = "429a0000000000000000000000000000000000000000000000000000000000bb";
const BROKEN: &str = "500a0000000000000000000000000000000000000000000000000000000000cc";

async fn wait_for<T>(
    what: &str,
    mut check: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn apns_errors_deactivate_or_retry_and_nothing_is_lost_or_doubled() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(500));
    app::wait_served(&sandbox, 500).await?;
    let unregistered = app::subscribe(&sandbox, UNREGISTERED, true).await?.id;
    let throttled = app::subscribe(&sandbox, THROTTLED, true).await?.id;
    let broken = app::subscribe(&sandbox, BROKEN, true).await?.id;
    sandbox.apns.behave(UNREGISTERED, Behaviour::Fail(410, "Unregistered"));
    sandbox.apns.behave(THROTTLED, Behaviour::Fail(429, "TooManyRequests"));
    sandbox.apns.behave(BROKEN, Behaviour::Fail(500, "InternalServerError"));

    sandbox.world.set_available("여의도2주차장", Some(20));
    let db = sandbox.database();
    // Each token's first answer is an error, recorded against its outbox row.
    let refused = wait_for("the three refusals", async || {
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "select o.installation_id, a.http_status from push.delivery_attempt a
             join push.outbox o using (outbox_id) order by a.attempt_id",
        )
        .fetch_all(db)
        .await?;
        let seen = |id: &str| rows.iter().any(|(installation, _)| installation == id);
        Ok((seen(&unregistered) && seen(&throttled) && seen(&broken)).then_some(rows))
    })
    .await?;
    assert!(refused.contains(&(unregistered.clone(), 410)), "{refused:?}");
    assert!(refused.contains(&(throttled.clone(), 429)), "{refused:?}");
    assert!(refused.contains(&(broken.clone(), 500)), "{refused:?}");
    assert!(sandbox.apns.deliveries().is_empty(), "nothing was accepted yet");

    // Apple recovers: the retries (after about two seconds of backoff) go through, once each.
    sandbox.apns.heal(THROTTLED);
    sandbox.apns.heal(BROKEN);
    let outbox = wait_for("the retried alerts to be sent", async || {
        let rows: Vec<(String, String, i32)> = sqlx::query_as(
            "select installation_id, status, attempts from push.outbox order by outbox_id",
        )
        .fetch_all(db)
        .await?;
        let sent = rows.iter().filter(|(_, status, _)| status == "sent").count();
        Ok((sent == 2).then_some(rows))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    assert_eq!(outbox.len(), 3, "one alert per installation, none lost: {outbox:?}");
    for (installation, status, attempts) in &outbox {
        if *installation == unregistered {
            assert_ne!(status, "pending", "a 410 is never retried: {outbox:?}");
            assert_ne!(status, "sent", "{outbox:?}");
        } else {
            assert_eq!(status, "sent", "{outbox:?}");
            assert!(*attempts >= 2, "sent on a retry: {outbox:?}");
        }
    }
    let (active, reason): (bool, Option<String>) = sqlx::query_as(
        "select active, deactivated_reason from push.installation where installation_id = $1",
    )
    .bind(&unregistered)
    .fetch_one(db)
    .await?;
    assert!(!active, "410 Unregistered deactivates the installation");
    assert!(reason.is_some_and(|reason| reason.contains("Unregistered")));
    let deliveries = sandbox.apns.deliveries();
    let count =
        |token: &str| deliveries.iter().filter(|delivery| delivery.device_token == token).count();
    assert_eq!(
        (count(THROTTLED), count(BROKEN), count(UNREGISTERED)),
        (1, 1, 0),
        "{deliveries:#?}"
    );
    sandbox.stop().await
}
