//! The sender against a fake APNs over HTTP/2: headers and token verified, dead tokens deactivate, throttling
//! backs off, a sender killed mid-batch loses nothing and the device sees the alert once.

use std::{sync::Arc, time::Duration};

use contracts::{
    Timestamp,
    proto::push::v1::{DeleteInstallationRequest, SubmitFactsRequest},
};
use push::{
    apns::{ApnsClient, ApnsSettings},
    jwt::ProviderToken,
    sender::Sender,
};
use replay::apns::{Behaviour, FakeApns};
use tokio_util::sync::CancellationToken;

use crate::{Harness, TOKEN, below, lot_fact};

async fn sender_with_fake(harness: &Harness) -> (Sender, FakeApns, CancellationToken) {
    sender_with_fake_timing(harness, 10_000).await
}

/// A sender whose APNs requests time out after `apns_timeout_ms` (with the default lease).
async fn sender_with_fake_timing(
    harness: &Harness,
    apns_timeout_ms: u64,
) -> (Sender, FakeApns, CancellationToken) {
    let (pem, fake, url, shutdown) = crate::fake_apns().await;
    let settings = ApnsSettings {
        apns_url: url.clone(),
        apns_sandbox_url: url,
        apns_key_path: None,
        apns_key_id: "KEY0000001".into(),
        apns_team_id: "TEAM000001".into(),
        apns_topic: "app.hangangjari".into(),
        apns_ca_file: None,
        apns_timeout_ms,
    };
    let token = ProviderToken::from_pem(&pem, "KEY0000001", "TEAM000001").unwrap();
    let client = ApnsClient::new(&settings, token).unwrap();
    let sender =
        Sender::new(harness.database.pool.clone(), Arc::new(client), server::clock::Clock::System);
    (sender, fake, shutdown)
}

async fn queue_one(harness: &mut Harness, key: &str) {
    harness
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact(key, 60, 40, 10)] })
        .await
        .unwrap();
}

async fn outbox(harness: &Harness) -> Vec<(String, i32)> {
    sqlx::query_as("select status, attempts from push.outbox order by outbox_id")
        .fetch_all(&harness.database.pool)
        .await
        .unwrap()
}

fn later(seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(Timestamp::now().as_unix_seconds() + seconds).unwrap()
}

#[tokio::test]
async fn an_alert_reaches_apns_with_a_verified_token_and_every_attempt_is_recorded() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;

    let round = sender.send_due(Timestamp::now()).await.unwrap();
    assert_eq!(round.sent, 1);
    let deliveries = fake.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].device_token, TOKEN);
    assert_eq!(deliveries[0].priority, "10");
    assert_eq!(deliveries[0].collapse_id.as_deref(), Some("lot:yeouido-2:lot_available_below"));
    assert!(deliveries[0].expiration.unwrap() > Timestamp::now().as_unix_seconds());
    assert_eq!(deliveries[0].payload["aps"]["alert"]["loc-key"], "PUSH_LOT_AVAILABLE_BELOW");
    assert_eq!(outbox(&harness).await, vec![("sent".to_owned(), 1)]);
    let (status, apns_id): (Option<i32>, Option<String>) =
        sqlx::query_as("select http_status, apns_id from push.delivery_attempt")
            .fetch_one(&harness.database.pool)
            .await
            .unwrap();
    assert_eq!(status, Some(200));
    assert_eq!(apns_id, Some(deliveries[0].apns_id.clone()));
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn a_build_without_the_alerts_key_gets_the_text_and_a_build_with_it_the_key() {
    let mut harness = Harness::start().await;
    let old_token = "1".repeat(64);
    let new_token = "2".repeat(64);
    let odd_token = "3".repeat(64);
    // A build from before alerts' keys shipped (KEYS.md: 2.0.0), one after, and one whose version is garbage.
    let (old, old_secret) = harness.register_as(&old_token, "en-US", "1.9.2 (380)").await;
    let (new, new_secret) = harness.register_as(&new_token, "en-US", "2.4.0 (431)").await;
    let (odd, odd_secret) = harness.register_as(&odd_token, "ja-JP", "beta").await;
    for (id, secret) in [(&old, &old_secret), (&new, &new_secret), (&odd, &odd_secret)] {
        harness.subscribe(id, secret, vec![below(50)], None).await;
    }
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;
    assert_eq!(sender.send_due(Timestamp::now()).await.unwrap().sent, 3);
    let alert_of = |token: &str| {
        let deliveries = fake.deliveries();
        let delivery = deliveries.iter().find(|d| d.device_token == token).expect("delivered");
        delivery.payload["aps"]["alert"].clone()
    };
    let old_alert = alert_of(&old_token);
    assert_eq!(old_alert["loc-key"], serde_json::Value::Null, "{old_alert}");
    assert_eq!(old_alert["body"], "여의도2주차장: 40 spaces left", "the catalog's English text");
    let new_alert = alert_of(&new_token);
    assert_eq!(new_alert["loc-key"], "PUSH_LOT_AVAILABLE_BELOW");
    assert_eq!(new_alert["loc-args"], serde_json::json!(["여의도2주차장", "40"]));
    assert_eq!(new_alert["body"], serde_json::Value::Null);
    let odd_alert = alert_of(&odd_token);
    assert_eq!(
        odd_alert["body"], "여의도2주차장：残り40台",
        "an unparseable build is sent text: {odd_alert}"
    );
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn an_unregistered_token_deactivates_the_installation() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;
    fake.behave(TOKEN, Behaviour::Fail(410, "Unregistered"));

    let round = sender.send_due(Timestamp::now()).await.unwrap();
    assert_eq!(round.deactivated, 1);
    let (active, reason): (bool, Option<String>) =
        sqlx::query_as("select active, deactivated_reason from push.installation")
            .fetch_one(&harness.database.pool)
            .await
            .unwrap();
    assert_eq!((active, reason.as_deref()), (false, Some("Unregistered")));

    // The next crossing is recorded as suppressed for an inactive installation, not sent.
    harness
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:2", 60, 30, 10)] })
        .await
        .unwrap();
    let (reason,): (Option<String>,) =
        sqlx::query_as("select reason from push.decision order by decision_id desc limit 1")
            .fetch_one(&harness.database.pool)
            .await
            .unwrap();
    assert_eq!(reason.as_deref(), Some("installation_inactive"));
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn a_410_for_a_token_the_device_has_since_replaced_keeps_the_installation() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;
    fake.behave(TOKEN, Behaviour::FailAfter(410, "Unregistered", Duration::from_millis(600)));
    let refreshed = "c".repeat(64);
    // While APNs' 410 for the old token is on its way, the app registers its new token.
    let refresh = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        sqlx::query("update push.installation set apns_token = $2, updated_at = now() where installation_id = $1")
            .bind(&id)
            .bind(&refreshed)
            .execute(&harness.database.pool)
            .await
            .unwrap();
    };
    let (round, ()) = tokio::join!(sender.send_due(Timestamp::now()), refresh);
    let round = round.unwrap();
    assert_eq!((round.deactivated, round.retried), (0, 1), "{round:?}");
    let (active,): (bool,) = sqlx::query_as("select active from push.installation")
        .fetch_one(&harness.database.pool)
        .await
        .unwrap();
    assert!(active, "the installation refreshed its token: it is not gone");
    assert_eq!(outbox(&harness).await, vec![("pending".to_owned(), 1)]);

    let round = sender.send_due(later(1)).await.unwrap();
    assert_eq!(round.sent, 1, "{round:?}");
    let deliveries = fake.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].device_token, refreshed, "delivered to the new token");
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn throttling_backs_off_and_the_alert_is_sent_once_apns_recovers() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;
    fake.behave(TOKEN, Behaviour::Fail(429, "TooManyRequests"));

    assert_eq!(sender.send_due(Timestamp::now()).await.unwrap().retried, 1);
    assert_eq!(sender.send_due(Timestamp::now()).await.unwrap().handled(), 0, "not due again yet");
    fake.behave(TOKEN, Behaviour::Fail(500, "InternalServerError"));
    assert_eq!(sender.send_due(later(5)).await.unwrap().retried, 1);
    fake.heal(TOKEN);
    assert_eq!(sender.send_due(later(30)).await.unwrap().sent, 1);
    assert_eq!(outbox(&harness).await, vec![("sent".to_owned(), 3)]);
    assert_eq!(fake.deliveries().len(), 1);
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn a_sender_killed_mid_send_leaves_the_alert_to_the_next_after_its_lease() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    // Sends time out after 300 ms; a claim holds its alerts for 2 s.
    let (sender, fake, shutdown) = sender_with_fake_timing(&harness, 300).await;
    let sender = Sender { lease: Duration::from_secs(2), ..sender };

    // APNs accepts slowly; the sender dies after APNs has the alert but before it records the result.
    fake.behave(TOKEN, Behaviour::Slow(Duration::from_millis(200)));
    let killed = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send_due(Timestamp::now()).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    killed.abort();
    let _ = killed.await;
    // Its lease still holds the alert: no other sender takes it while it may be on the wire.
    let round = sender.send_due(Timestamp::now()).await.unwrap();
    assert_eq!(round.handled(), 0, "{round:?}");
    assert_eq!(outbox(&harness).await, vec![("pending".to_owned(), 0)]);

    // After the lease, a sender delivers it again, with the same collapse id and apns-id.
    fake.heal(TOKEN);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let round = sender.send_due(Timestamp::now()).await.unwrap();
    assert_eq!(round.sent, 1);
    let deliveries = fake.deliveries();
    assert_eq!(deliveries.len(), 2, "the one in flight, again");
    assert_eq!(deliveries[0].collapse_id, deliveries[1].collapse_id);
    assert_eq!(deliveries[0].apns_id, deliveries[1].apns_id);
    assert_eq!(outbox(&harness).await, vec![("sent".to_owned(), 1)]);
    let (claimed,): (i64,) = sqlx::query_as(
        "select count(*) from push.outbox where claim_id is not null or claimed_until is not null",
    )
    .fetch_one(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!(claimed, 0, "a recorded alert is no longer claimed");
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn an_installation_deleted_during_a_round_neither_blocks_nor_is_sent_twice() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;
    fake.behave(TOKEN, Behaviour::Slow(Duration::from_millis(500)));
    let round = tokio::spawn({
        let sender = sender.clone();
        async move { sender.send_due(Timestamp::now()).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    // The user deletes the app's data while its alert is on the wire: the delete does not wait for APNs.
    harness
        .client
        .delete_installation(DeleteInstallationRequest { installation_id: id, secret })
        .await
        .unwrap();
    assert!(!round.is_finished(), "the delete waited for the round");
    let round = round.await.unwrap().unwrap();
    assert_eq!(round.handled(), 0, "the vanished alert is not recorded: {round:?}");
    assert_eq!(fake.deliveries().len(), 1);
    assert!(outbox(&harness).await.is_empty());
    let round = sender.send_due(Timestamp::now()).await.unwrap();
    assert_eq!(round.handled(), 0);
    assert_eq!(fake.deliveries().len(), 1, "sent once");
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn late_alerts_expire_instead_of_arriving() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;
    let round = sender.send_due(later(31 * 60)).await.unwrap();
    assert_eq!(round.expired, 1);
    assert!(fake.deliveries().is_empty());
    shutdown.cancel();
    harness.stop().await;
}

#[tokio::test]
async fn a_token_signed_with_another_key_is_refused_and_retried() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    queue_one(&mut harness, "lot:yeouido-2:1").await;
    let (sender, fake, shutdown) = sender_with_fake(&harness).await;
    // Same key id and team, but a key the fake does not trust.
    let impostor =
        ProviderToken::from_pem(&replay::apns::generate_key(), "KEY0000001", "TEAM000001").unwrap();
    let round = Sender { apns: Arc::new(rebuilt_with(&sender, impostor)), ..sender.clone() }
        .send_due(Timestamp::now())
        .await
        .unwrap();
    assert_eq!(round.retried, 1);
    assert!(fake.deliveries().is_empty());
    let (reason,): (Option<String>,) = sqlx::query_as("select reason from push.delivery_attempt")
        .fetch_one(&harness.database.pool)
        .await
        .unwrap();
    assert_eq!(reason.as_deref(), Some("InvalidProviderToken"));
    shutdown.cancel();
    harness.stop().await;
}

/// The same client (same fake APNs) signing with another key.
fn rebuilt_with(sender: &Sender, token: ProviderToken) -> ApnsClient {
    sender.apns.with_token(token)
}
