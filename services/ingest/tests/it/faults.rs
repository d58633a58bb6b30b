//! Every failure mode ends in its class, and nothing stored before is lost.

use contracts::freshness::SourceId;
use std::time::Duration;

use ingest::{
    outcome::{ErrorClass, Outcome},
    store::Peers,
};
use replay::{Endpoint, Fault};

use crate::support::{AFTERNOON, Harness};

fn class(outcome: &Outcome) -> Option<ErrorClass> {
    match outcome {
        Outcome::Failed(failure) => Some(failure.class),
        _ => None,
    }
}

#[tokio::test]
async fn each_fault_gets_its_class_and_the_last_good_values_stay() {
    let harness = Harness::start(Peers::default()).await;
    harness.run(SourceId::ParkingPortal, AFTERNOON).await;
    harness.run(SourceId::SeoulCitydata, AFTERNOON).await;
    let stored = harness.count("select count(*) from ingest.lot_observation").await;

    let cases = [
        (
            SourceId::ParkingPortal,
            Endpoint::ParkingPortal,
            Fault::Status(503),
            ErrorClass::HttpStatus,
        ),
        (
            SourceId::ParkingPortal,
            Endpoint::ParkingPortal,
            Fault::HtmlErrorPage,
            ErrorClass::UnexpectedContent,
        ),
        (
            SourceId::ParkingPortal,
            Endpoint::ParkingPortal,
            Fault::Truncated,
            ErrorClass::UnexpectedContent,
        ),
        (
            SourceId::ParkingPortal,
            Endpoint::ParkingPortal,
            Fault::Slow(Duration::from_secs(2)),
            ErrorClass::Timeout,
        ),
        (SourceId::SeoulCitydata, Endpoint::Citydata, Fault::QuotaXml, ErrorClass::Quota),
        (
            SourceId::SeoulCitydata,
            Endpoint::Citydata,
            Fault::HtmlErrorPage,
            ErrorClass::UnexpectedContent,
        ),
        (
            SourceId::SeoulCitydata,
            Endpoint::Citydata,
            Fault::Truncated,
            ErrorClass::UnexpectedContent,
        ),
        (
            SourceId::SeoulCulturalEvents,
            Endpoint::CulturalEvents,
            Fault::Status(500),
            ErrorClass::HttpStatus,
        ),
        (SourceId::KmaForecast, Endpoint::Kma, Fault::QuotaXml, ErrorClass::Quota),
        (SourceId::HangangNotices, Endpoint::Notices, Fault::Status(404), ErrorClass::HttpStatus),
    ];
    for (minute, (source, endpoint, fault, expected)) in cases.into_iter().enumerate() {
        harness.world.fail(endpoint, fault.clone());
        let report = harness.run(source, &format!("2026-06-13T15:{:02}", 31 + minute)).await;
        assert_eq!(
            class(&report.outcome),
            Some(expected),
            "{source:?} with {fault:?}: {:?}",
            report.outcome
        );
        harness.world.heal(endpoint);
    }
    assert_eq!(
        harness.count("select count(*) from ingest.lot_observation").await,
        stored,
        "nothing lost"
    );
    let (failures, success): (i32, Option<time::OffsetDateTime>) = sqlx::query_as(
        "select consecutive_failures, last_success_at from ingest.source_status where source = 'parking_portal'",
    )
    .fetch_one(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!(failures, 4);
    assert_eq!(
        success.map(db::wire_time),
        Some(crate::support::kst(AFTERNOON)),
        "last success is kept"
    );

    // Recovery resets the streak.
    let report = harness.run(SourceId::ParkingPortal, "2026-06-13T15:50").await;
    assert!(matches!(report.outcome, Outcome::Ok { .. }));
    assert_eq!(harness.count("select count(*) from ingest.source_status where source = 'parking_portal' and consecutive_failures = 0").await, 1);
    harness.stop().await;
}

#[tokio::test]
async fn unreachable_upstream_is_a_connect_failure() {
    let mut harness = Harness::start(Peers::default()).await;
    harness.runner.upstreams.parking_portal_url = "http://127.0.0.1:1".parse().unwrap();
    let report = harness.run(SourceId::ParkingPortal, AFTERNOON).await;
    assert_eq!(class(&report.outcome), Some(ErrorClass::Connect));
    let message = match &report.outcome {
        Outcome::Failed(failure) => failure.message.clone(),
        _ => unreachable!(),
    };
    assert!(message.contains("parking portal region"), "{message}");
    harness.stop().await;
}

#[tokio::test]
async fn api_keys_never_appear_in_failure_messages() {
    let harness = Harness::start(Peers::default()).await;
    harness.world.fail(Endpoint::Citydata, Fault::Slow(Duration::from_secs(2)));
    let report = harness.run(SourceId::SeoulCitydata, AFTERNOON).await;
    let Outcome::Failed(failure) = &report.outcome else { panic!("{:?}", report.outcome) };
    assert_eq!(failure.class, ErrorClass::Timeout);
    assert!(!failure.message.contains("test-key"), "{}", failure.message);
    harness.stop().await;
}
