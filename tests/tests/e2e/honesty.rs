//! Odd upstream answers, seen through the app: a no-data answer is `no_item`, one failing region page fails
//! one park, an impossible count is clamped and says so, an hour of event answers without data cancels
//! nothing and alerts nobody (while real absence does), and the notice board's advisories close nothing.

use std::time::{Duration, Instant};

use contracts::proto::ingest::v1::{RunNowRequest, ingest_client::IngestClient};
use replay::{CulturalEvent, Endpoint, Fault};
use serde_json::Value;
use tests::Sandbox;

use crate::{
    http::{get_json, send},
    poll,
};

const JSON: (&str, &str) = ("content-type", "application/json");
const TOKEN: &str = "e7e0000000000000000000000000000000000000000000000000000000000001";
const MINUTE: i64 = 60;

/// Polls `path` until `done` holds for its body.
async fn until(
    sandbox: &Sandbox,
    path: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = get_json(sandbox.api_http, path).await?;
        if done(&body) {
            return Ok(body);
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} never showed on {path}: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn source<'a>(status: &'a Value, id: &str) -> &'a Value {
    status["sources"]
        .as_array()
        .and_then(|sources| sources.iter().find(|s| s["source"] == id))
        .unwrap()
}

fn lot<'a>(park: &'a Value, lot_id: &str) -> &'a Value {
    park["lots"].as_array().and_then(|lots| lots.iter().find(|l| l["lot_id"] == lot_id)).unwrap()
}

/// Runs one collection of `source` now, by the sandbox's clock, through ingest's `RunNow`.
async fn run_now(sandbox: &Sandbox, source: &str) -> anyhow::Result<()> {
    let ingest = sandbox.workers.iter().find(|worker| worker.name == "ingest").unwrap();
    let channel = tests::GrpcTokens::channel(ingest.grpc, &sandbox.grpc_tokens.operator).await?;
    let mut client = IngestClient::new(channel);
    client.run_now(RunNowRequest { source: source.into() }).await?;
    Ok(())
}

#[tokio::test]
async fn odd_answers_are_shown_for_what_they_are() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    // City data has every area, whatever the hour in Seoul (its small hours answer INFO-200).
    sandbox.world.update(|state| state.areas.values_mut().for_each(|area| area.no_data = false));
    until(&sandbox, "/v2/status", "every per-park source collected", |status| {
        ["parking_portal", "seoul_citydata"]
            .iter()
            .all(|id| source(status, id)["source_status"] == "ok")
    })
    .await?;

    // One region page fails: Ichon says failing, every other park stays ok, the source is not failing.
    sandbox.world.fail(Endpoint::ParkingRegion(6), Fault::Status(503));
    let status = until(&sandbox, "/v2/status", "ichon failing", |status| {
        source(status, "parking_portal")["failing_parks"] == serde_json::json!(["ichon"])
    })
    .await?;
    assert_eq!(source(&status, "parking_portal")["source_status"], "ok", "{status}");
    let ichon = get_json(sandbox.api_http, "/v2/parks/ichon").await?;
    assert!(
        ichon["lots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|lot| lot["freshness"]["source_status"] == "failing"),
        "{ichon}"
    );
    let home = get_json(sandbox.api_http, "/v2/home-summary").await?;
    for park in home["parks"].as_array().unwrap() {
        let expected = if park["park_id"] == "ichon" { "failing" } else { "ok" };
        assert_eq!(park["parking"]["freshness"]["source_status"], expected, "{park}");
    }
    sandbox.world.heal(Endpoint::ParkingRegion(6));

    // The portal counts double parking: 66 free in a 32-space lot is shown as 32, and says so.
    sandbox.world.update(|state| {
        let lot = state.lots.iter_mut().find(|lot| lot.name == "이촌1주차장").unwrap();
        lot.capacity = 32;
        lot.available = Some(66);
    });
    let ichon = until(&sandbox, "/v2/parks/ichon", "the clamped count", |park| {
        lot(park, "ichon-1")["reported_available"] == 66
    })
    .await?;
    let clamped = lot(&ichon, "ichon-1");
    assert_eq!(clamped["available"], 32, "{clamped}");
    assert_eq!(clamped["freshness"]["notes"], serde_json::json!(["clamped_to_capacity"]));
    assert_eq!(clamped["freshness"]["source_status"], "ok", "the page answered again: {clamped}");
    let status = get_json(sandbox.api_http, "/v2/status").await?;
    assert_eq!(
        source(&status, "parking_portal")["anomalies"],
        serde_json::json!([{"kind": "available_above_capacity", "count": 1, "items": ["ichon-1"]}])
    );

    // City data has nothing for any area: values are no longer confirmed, and the status says so.
    sandbox.world.fail(Endpoint::Citydata, Fault::NoData);
    until(&sandbox, "/v2/status", "citydata no_item", |status| {
        source(status, "seoul_citydata")["source_status"] == "no_item"
    })
    .await?;
    let park = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
    assert_eq!(
        park["congestion"]["freshness"]["source_status"], "no_item",
        "{}",
        park["congestion"]
    );
    assert!(
        park["congestion"]["freshness"]["observed_at"].is_string(),
        "the value keeps its own age"
    );
    sandbox.world.heal(Endpoint::Citydata);
    sandbox.stop().await
}

#[tokio::test]
async fn an_hour_of_event_answers_without_data_cancels_nothing() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    // A concert two days ahead at Banpo, and someone who wants to hear of cancellations there.
    let in_two_days = jiff::Zoned::now()
        .with_time_zone(contracts::seoul::zone())
        .date()
        .checked_add(jiff::Span::new().days(2))?
        .to_string();
    let concert = CulturalEvent {
        title: "반포 달빛 재즈 콘서트".into(),
        place: "반포한강공원 달빛광장".into(),
        starts_on: in_two_days.clone(),
        ends_on: in_two_days,
        free: true,
    };
    sandbox.world.update(|state| state.events.push(concert.clone()));
    subscribe_to_cancellations(&sandbox).await?;
    run_now(&sandbox, "seoul_cultural_events").await?;
    let listed = |park: &Value| {
        park["events"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|event| event["title"]["source_text"] == concert.title)
    };
    until(&sandbox, "/v2/parks/banpo", "the concert", listed).await?;

    // The concert disappears from the source, but for an hour every answer is INFO-200.
    sandbox.world.update(|state| state.events.retain(|event| event.title != concert.title));
    sandbox.world.fail(Endpoint::CulturalEvents, Fault::NoData);
    for _ in 0..4 {
        sandbox.clock.advance(20 * MINUTE);
        run_now(&sandbox, "seoul_cultural_events").await?;
    }
    let park = get_json(sandbox.api_http, "/v2/parks/banpo").await?;
    let shown: Vec<&Value> = park["events"]["items"].as_array().unwrap().iter().collect();
    assert!(shown.iter().all(|event| event["status"] != "cancelled"), "{shown:#?}");
    let (cancelled_facts,): (i64,) =
        sqlx::query_as("select count(*) from push.fact where kind = 'event_cancelled'")
            .fetch_one(sandbox.database())
            .await?;
    assert_eq!(cancelled_facts, 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(sandbox.apns.deliveries().is_empty(), "{:#?}", sandbox.apns.deliveries());

    // Lists that add up and keep missing it for 40 minutes: that is a cancellation, and it is alerted.
    sandbox.world.heal(Endpoint::CulturalEvents);
    run_now(&sandbox, "seoul_cultural_events").await?;
    sandbox.clock.advance(40 * MINUTE);
    run_now(&sandbox, "seoul_cultural_events").await?;
    until(&sandbox, "/v2/parks/banpo", "the cancellation", |park| {
        park["events"]["items"].as_array().unwrap().iter().any(|event| {
            event["title"]["source_text"] == concert.title && event["status"] == "cancelled"
        })
    })
    .await?;
    poll::until_delivered(&sandbox, "the cancellation never reached APNs", Duration::from_secs(15))
        .await?;
    let deliveries = sandbox.apns.deliveries();
    assert_eq!(deliveries[0].payload["aps"]["alert"]["loc-key"], "PUSH_EVENT_CANCELLED");
    sandbox.stop().await
}

/// Registers an installation that wants to hear of event cancellations at Banpo.
async fn subscribe_to_cancellations(sandbox: &Sandbox) -> anyhow::Result<()> {
    let body = format!(
        r#"{{"apns_token":"{TOKEN}","apns_environment":"sandbox","locale":"ko-KR","app_version":"2.3.0 (412)"}}"#
    );
    let (status, created) =
        send(sandbox.api_http, "POST", "/v2/installations", &[JSON], Some(&body)).await?;
    anyhow::ensure!(status == 201, "{status}: {created}");
    let created: Value = serde_json::from_str(&created)?;
    let id = created["installation_id"].as_str().unwrap();
    let authorization = format!("Bearer {}", created["secret"].as_str().unwrap());
    let preferences = r#"{"subscriptions":[{"target_kind":"park","target_id":"banpo","signal":"event_cancelled"}]}"#;
    let (status, answer) = send(
        sandbox.api_http,
        "PUT",
        &format!("/v2/installations/{id}/preferences"),
        &[JSON, ("authorization", &authorization)],
        Some(preferences),
    )
    .await?;
    anyhow::ensure!(status == 200, "{status}: {answer}");
    Ok(())
}

#[tokio::test]
async fn the_notice_board_closes_a_park_only_when_it_says_so_reliably() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let today = jiff::Zoned::now().with_time_zone(contracts::seoul::zone()).date().to_string();
    let board = |entries: &[(u32, &str)]| {
        let entries: Vec<replay::BoardEntry> = entries
            .iter()
            .map(|&(id, title)| replay::BoardEntry { id, title: title.into(), date: today.clone() })
            .collect();
        sandbox.world.update(|state| state.notices = entries);
    };
    board(&[
        (3001, "여의도한강공원 호우 대비 안전수칙 안내"),
        (3002, "반포한강공원 침수로 출입 통제"),
    ]);
    run_now(&sandbox, "hangang_notices").await?;
    let home = until(&sandbox, "/v2/home-summary", "banpo closed", |home| {
        home["parks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["park_id"] == "banpo" && p["closure"]["closed"] == true)
    })
    .await?;
    for park in home["parks"].as_array().unwrap() {
        let closed = park["park_id"] == "banpo";
        assert_eq!(park["closure"]["closed"], closed, "{}", park["park_id"]);
        assert_eq!(park["closed"], closed, "the older field agrees: {}", park["park_id"]);
    }
    let yeouido = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
    let advisory = &yeouido["notices"]["items"][0];
    assert_eq!(advisory["kind"], "general", "an advisory is shown as a notice: {advisory}");
    assert_eq!(advisory["source"], "hangang_notices");

    board(&[(3002, "반포한강공원 침수로 출입 통제"), (3003, "반포한강공원 출입 통제 해제")]);
    run_now(&sandbox, "hangang_notices").await?;
    until(&sandbox, "/v2/widgets/park/banpo", "banpo open again", |widget| {
        widget["closure"]["closed"] == false && widget["closed"] == false
    })
    .await?;
    sandbox.stop().await
}
