//! A full cycle of every source stores what the app shows, and queues what forecast and push need.

use contracts::freshness::SourceId;
use ingest::{outcome::Outcome, sources::COLLECTED, store::Peers};

use crate::support::{AFTERNOON, Harness};

#[tokio::test]
async fn every_source_collects_and_stores() {
    let harness = Harness::start(Peers::default()).await;
    for source in COLLECTED {
        let report = harness.run(source, AFTERNOON).await;
        if source == SourceId::Curated {
            // The test database was synced on creation: nothing to change.
            assert_eq!(report.outcome, Outcome::NoData);
        } else {
            assert!(
                matches!(report.outcome, Outcome::Ok { .. }),
                "{source:?}: {:?}",
                report.outcome
            );
        }
    }
    assert_eq!(harness.count("select count(*) from ingest.lot_observation").await, 30);
    assert_eq!(harness.count("select count(*) from ingest.congestion_observation").await, 11);
    assert_eq!(harness.count("select count(*) from ingest.congestion_forecast_official").await, 22);
    assert_eq!(
        harness
            .count(
                "select count(*) from ingest.weather_observation where source = 'seoul_citydata'"
            )
            .await,
        11
    );
    assert!(
        harness
            .count("select count(*) from ingest.weather_observation where source = 'kma_forecast'")
            .await
            > 0
    );
    // Two of the three events take place in a Hangang park.
    assert_eq!(
        harness
            .count("select count(*) from ingest.event where source = 'seoul_cultural_events'")
            .await,
        2
    );
    assert_eq!(harness.count("select count(*) from ingest.notice where kind = 'facility_closure' and park_id = 'jamsil'").await, 1);
    assert_eq!(harness.count("select count(*) from ingest.source_status where last_outcome = 'ok' and consecutive_failures = 0").await, 5);
    assert_eq!(harness.count("select count(*) from ingest.ingestion_run where outcome = 'ok' and finished_at is not null").await, 5);
    harness.stop().await;
}

#[tokio::test]
async fn quiet_nights_are_no_data_not_failures() {
    let harness = Harness::start(Peers::default()).await;
    harness.world.advance_to("2026-06-14T03:00").unwrap();
    let report = harness.run(SourceId::SeoulCitydata, "2026-06-14T03:00").await;
    assert_eq!(report.outcome, Outcome::NoData);
    assert_eq!(harness.count("select count(*) from ingest.source_status where source = 'seoul_citydata' and last_outcome = 'no_data' and last_success_at is not null").await, 1);
    harness.stop().await;
}

#[tokio::test]
async fn changes_queue_a_forecast_refresh_and_facts_for_push() {
    let harness = Harness::start(Peers { forecast: true, push: true }).await;
    harness.run(SourceId::ParkingPortal, AFTERNOON).await;
    harness.world.set_available("여의도2주차장", Some(3));
    harness.run(SourceId::ParkingPortal, "2026-06-13T15:32").await;

    let facts: Vec<(serde_json::Value,)> = sqlx::query_as(
        "select payload from ingest.outbox where destination = 'push' order by outbox_id",
    )
    .fetch_all(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!(facts.len(), 1, "only the second cycle changed anything");
    let facts = facts[0].0["facts"].as_array().unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(facts[0]["kind"], "lot_availability");
    assert_eq!(facts[0]["lot_id"], "yeouido-2");
    assert_eq!(facts[0]["current_value"], 3);
    assert_eq!(
        harness.count("select count(*) from ingest.outbox where destination = 'forecast'").await,
        2
    );

    // An event missing from two complete lists half an hour apart is cancelled, and push hears about it.
    harness.run(SourceId::SeoulCulturalEvents, AFTERNOON).await;
    harness.world.update(|state| state.events.retain(|event| !event.title.contains("음악회")));
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T16:30").await;
    assert_eq!(
        harness.count("select count(*) from ingest.event where cancelled_at is not null").await,
        0,
        "one complete list without it is not enough"
    );
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T17:30").await;
    assert_eq!(
        harness.count("select count(*) from ingest.event where cancelled_at is not null and cancel_reason = 'absent'").await,
        1
    );
    assert_eq!(
        harness.count("select count(*) from ingest.outbox, jsonb_array_elements(payload->'facts') f where f->>'kind' = 'event_cancelled'").await,
        1
    );
    harness.stop().await;
}

#[tokio::test]
async fn names_nobody_curated_are_recorded_as_drift() {
    let harness = Harness::start(Peers::default()).await;
    harness.world.update(|state| {
        state.lots.push(replay::PortalLot {
            region: 8,
            name: "여의도6주차장".into(),
            address: "신설".into(),
            available: Some(10),
            capacity: 50,
        })
    });
    let report = harness.run(SourceId::ParkingPortal, AFTERNOON).await;
    assert!(matches!(report.outcome, Outcome::Ok { items: 30 }), "{:?}", report.outcome);
    assert_eq!(
        harness
            .count("select count(*) from ingest.unmapped_name where name = '여의도6주차장'")
            .await,
        1
    );
    harness.stop().await;
}
