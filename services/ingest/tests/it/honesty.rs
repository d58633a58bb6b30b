//! Odd upstream answers, stored honestly: no-data answers deliver nothing, one bad page fails one park,
//! impossible counts are clamped and recorded, events are cancelled only on evidence and come back when
//! listed again, and the notice board's advisories and lifted closures close nothing.

use contracts::freshness::SourceId;
use ingest::{outcome::Outcome, store::Peers};
use replay::{CulturalEvent, Endpoint, Fault};

use crate::support::{AFTERNOON, Harness};

async fn part_failures(harness: &Harness, source: &str) -> Vec<(String, i32)> {
    sqlx::query_as(
        "select part, consecutive_failures from ingest.source_part_status
         where source = $1 and consecutive_failures > 0 order by part",
    )
    .bind(source)
    .fetch_all(&harness.database.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn no_data_for_every_area_is_a_no_data_run_that_stores_nothing() {
    let harness = Harness::start(Peers::default()).await;
    harness.run(SourceId::SeoulCitydata, AFTERNOON).await;
    harness.world.fail(Endpoint::Citydata, Fault::NoData);
    let report = harness.run(SourceId::SeoulCitydata, "2026-06-13T15:40").await;
    assert_eq!(report.outcome, Outcome::NoData);
    // Nothing new was stored and no fetch time moved: the old values are not confirmed by this run.
    assert_eq!(
        harness
            .count(
                "select count(*) from ingest.congestion_observation
                 where fetched_at > '2026-06-13T06:30:00Z'"
            )
            .await,
        0
    );
    assert_eq!(
        harness
            .count(
                "select count(*) from ingest.source_part_status
                 where source = 'seoul_citydata' and consecutive_failures = 0
                   and last_success_at = '2026-06-13T06:40:00Z'"
            )
            .await,
        11,
        "every park answered (with nothing)"
    );
    harness.stop().await;
}

#[tokio::test]
async fn a_repeated_observation_is_confirmed_by_the_run_that_repeats_it() {
    let harness = Harness::start(Peers::default()).await;
    harness.run(SourceId::SeoulCitydata, AFTERNOON).await;
    // Two minutes later city data still shows the same reading (it refreshes every 5 minutes).
    harness.run(SourceId::SeoulCitydata, "2026-06-13T15:32").await;
    assert_eq!(harness.count("select count(*) from ingest.congestion_observation").await, 11);
    assert_eq!(
        harness
            .count(
                "select count(*) from ingest.congestion_observation
                 where fetched_at = '2026-06-13T06:32:00Z'"
            )
            .await,
        11
    );
    harness.stop().await;
}

#[tokio::test]
async fn one_failing_region_page_fails_one_park_and_stores_the_others() {
    let harness = Harness::start(Peers::default()).await;
    harness.run(SourceId::ParkingPortal, AFTERNOON).await;
    let ichon_lots =
        harness.count("select count(*) from reference.lot where park_id = 'ichon'").await;

    for (minute, fault) in
        [(32, Fault::Status(503)), (34, Fault::NoData), (36, Fault::HtmlErrorPage)]
    {
        harness.world.fail(Endpoint::ParkingRegion(6), fault.clone());
        let report = harness.run(SourceId::ParkingPortal, &format!("2026-06-13T15:{minute}")).await;
        let Outcome::Partial { items, failed_parts, .. } = report.outcome else {
            panic!("{fault:?}: {:?}", report.outcome)
        };
        assert_eq!(failed_parts, 1, "{fault:?}");
        assert_eq!(i64::from(items), 30 - ichon_lots, "{fault:?}: every other lot is stored");
    }
    assert_eq!(part_failures(&harness, "parking_portal").await, vec![("ichon".to_owned(), 3)]);
    // The source answered: it is not failing, and its last success moved on.
    let (failures, outcome): (i32, String) = sqlx::query_as(
        "select consecutive_failures, last_outcome from ingest.source_status where source = 'parking_portal'",
    )
    .fetch_one(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!((failures, outcome.as_str()), (0, "partial"));
    assert_eq!(
        harness.count("select count(*) from ingest.ingestion_run where outcome = 'partial' and error_class is not null").await,
        3
    );

    // The page comes back: the park recovers.
    harness.world.heal(Endpoint::ParkingRegion(6));
    let report = harness.run(SourceId::ParkingPortal, "2026-06-13T15:40").await;
    assert_eq!(report.outcome, Outcome::Ok { items: 30 });
    assert!(part_failures(&harness, "parking_portal").await.is_empty());
    harness.stop().await;
}

#[tokio::test]
async fn a_count_above_capacity_is_clamped_and_recorded() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    harness.world.update(|state| {
        let lot = state.lots.iter_mut().find(|lot| lot.name == "이촌1주차장").unwrap();
        lot.capacity = 32;
        lot.available = Some(66);
    });
    let report = harness.run(SourceId::ParkingPortal, AFTERNOON).await;
    assert_eq!(report.outcome, Outcome::Ok { items: 30 });
    let (available, reported, capacity): (Option<i32>, Option<i32>, Option<i32>) = sqlx::query_as(
        "select available, reported_available, capacity from ingest.lot_observation where lot_id = 'ichon-1'",
    )
    .fetch_one(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!((available, reported, capacity), (Some(32), Some(66), Some(32)));
    assert_eq!(
        harness
            .count(
                "select count(*) from ingest.lot_observation where reported_available is not null"
            )
            .await,
        1,
        "only the impossible count is marked"
    );
    let (run, status): (serde_json::Value, serde_json::Value) = sqlx::query_as(
        "select r.anomalies, s.anomalies from ingest.ingestion_run r, ingest.source_status s
         where r.run_id = $1 and s.source = 'parking_portal'",
    )
    .bind(report.run_id)
    .fetch_one(&harness.database.pool)
    .await
    .unwrap();
    let expected = serde_json::json!([{"kind": "available_above_capacity", "items": ["ichon-1"]}]);
    assert_eq!((run, status), (expected.clone(), expected));

    // The next run without anomalies clears the source's list; the run record keeps its own.
    harness.world.set_available("이촌1주차장", Some(10));
    harness.run(SourceId::ParkingPortal, "2026-06-13T15:32").await;
    assert_eq!(
        harness.count("select count(*) from ingest.source_status where source = 'parking_portal' and anomalies is null").await,
        1
    );
    // The clamped value is what facts compare against: 32 → 10, not 66 → 10.
    let facts: Vec<(serde_json::Value,)> = sqlx::query_as(
        "select f from ingest.outbox, jsonb_array_elements(payload->'facts') f where f->>'lot_id' = 'ichon-1'",
    )
    .fetch_all(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!(facts.len(), 1);
    assert_eq!(
        (facts[0].0["previous_value"].as_i64(), facts[0].0["current_value"].as_i64()),
        (Some(32), Some(10))
    );
    harness.stop().await;
}

async fn cancelled(harness: &Harness) -> Vec<(String, String)> {
    sqlx::query_as(
        "select title_ko, cancel_reason from ingest.event where cancelled_at is not null order by title_ko",
    )
    .fetch_all(&harness.database.pool)
    .await
    .unwrap()
}

async fn event_facts(harness: &Harness, kind: &str) -> i64 {
    harness
        .count(&format!(
            "select count(*) from ingest.outbox, jsonb_array_elements(payload->'facts') f where f->>'kind' = '{kind}'"
        ))
        .await
}

#[tokio::test]
async fn odd_event_answers_cancel_nothing() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    harness.run(SourceId::SeoulCulturalEvents, AFTERNOON).await;
    // The concert is gone from the source, but every answer from now on is odd, for hours.
    harness.world.update(|state| state.events.retain(|event| !event.title.contains("음악회")));
    let faults = [Fault::NoData, Fault::EmptyRows, Fault::ShortPage, Fault::Status(500)];
    // Runs 40 minutes apart from 16:00.
    let mut minutes = 16 * 60;
    for fault in faults {
        harness.world.fail(Endpoint::CulturalEvents, fault.clone());
        for _ in 0..2 {
            let at = format!("2026-06-13T{:02}:{:02}", minutes / 60, minutes % 60);
            harness.run(SourceId::SeoulCulturalEvents, &at).await;
            minutes += 40;
        }
        assert!(cancelled(&harness).await.is_empty(), "{fault:?}");
    }
    assert_eq!(event_facts(&harness, "event_cancelled").await, 0);
    // The same absence in lists that add up is a cancellation: the odd answers were what held it back.
    harness.world.heal(Endpoint::CulturalEvents);
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T22:00").await;
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T22:45").await;
    assert_eq!(cancelled(&harness).await.len(), 1);
    harness.stop().await;
}

#[tokio::test]
async fn a_total_that_moves_between_pages_makes_the_list_incomplete() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    // 1,500 events elsewhere in Seoul: two pages.
    harness.world.update(|state| {
        for n in 0..1_500 {
            state.events.push(CulturalEvent {
                title: format!("구민회관 강좌 {n}"),
                place: "구민회관".into(),
                starts_on: "2026-06-01".into(),
                ends_on: "2026-06-30".into(),
                free: true,
            });
        }
    });
    harness.run(SourceId::SeoulCulturalEvents, AFTERNOON).await;
    harness.world.update(|state| state.events.retain(|event| !event.title.contains("음악회")));
    harness.world.fail(Endpoint::CulturalEvents, Fault::TotalDrift(3));
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T16:30").await;
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T17:30").await;
    assert!(cancelled(&harness).await.is_empty(), "the lists did not add up");

    // With pages that add up, two lists an hour apart cancel it.
    harness.world.heal(Endpoint::CulturalEvents);
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T18:30").await;
    assert!(cancelled(&harness).await.is_empty(), "one complete list is not enough");
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T19:30").await;
    assert_eq!(
        cancelled(&harness).await,
        vec![("달빛무지개분수 음악회".to_owned(), "absent".to_owned())]
    );
    harness.stop().await;
}

#[tokio::test]
async fn absence_cancels_relisting_reinstates_and_a_retitled_event_keeps_its_id() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    harness.run(SourceId::SeoulCulturalEvents, AFTERNOON).await;
    let id_of = |title: &'static str| {
        let pool = harness.database.pool.clone();
        async move {
            let (id,): (String,) =
                sqlx::query_as("select event_id from ingest.event where title_ko like $1 || '%'")
                    .bind(title)
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            id
        }
    };
    let festival = id_of("한강 여름").await;

    // Absent from two complete lists an hour apart: cancelled, and push hears of it.
    let concert = harness.world.update(|state| {
        let i = state.events.iter().position(|event| event.title.contains("음악회")).unwrap();
        state.events.remove(i)
    });
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T16:30").await;
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T17:30").await;
    assert_eq!(cancelled(&harness).await.len(), 1);
    assert_eq!(event_facts(&harness, "event_cancelled").await, 1);

    // Listed again: no longer cancelled, and a fact says so.
    harness.world.update(|state| state.events.push(concert));
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T18:30").await;
    assert!(cancelled(&harness).await.is_empty());
    assert_eq!(event_facts(&harness, "event_reinstated").await, 1);

    // The organiser fixes a typo and then marks a postponement: the same event, no cancellation.
    for title in ["한강 여름 축제", "한강 여름 축제 (연기)"] {
        harness.world.update(|state| {
            state
                .events
                .iter_mut()
                .find(|event| event.title.starts_with("한강 여름"))
                .unwrap()
                .title = title.into();
        });
        harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T19:30").await;
        harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T20:30").await;
        assert_eq!(id_of("한강 여름").await, festival, "{title}");
        assert_eq!(
            harness
                .count("select count(*) from ingest.event where title_ko like '한강 여름%'")
                .await,
            1
        );
    }
    assert!(cancelled(&harness).await.is_empty());
    // Then marks it cancelled: cancelled at once, by the organiser.
    harness.world.update(|state| {
        state.events.iter_mut().find(|event| event.title.starts_with("한강 여름")).unwrap().title =
            "[취소] 한강 여름 축제".into();
    });
    harness.run(SourceId::SeoulCulturalEvents, "2026-06-13T21:30").await;
    assert_eq!(
        cancelled(&harness).await,
        vec![("[취소] 한강 여름 축제".to_owned(), "organiser".to_owned())]
    );
    assert_eq!(id_of("[취소]").await, festival);
    harness.stop().await;
}

#[tokio::test]
async fn advisories_close_nothing_and_a_lifted_closure_ends_the_closure() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    let board = |entries: &[(u32, &str)]| {
        let entries: Vec<replay::BoardEntry> = entries
            .iter()
            .map(|&(id, title)| replay::BoardEntry {
                id,
                title: title.into(),
                date: "2026-06-13".into(),
            })
            .collect();
        harness.world.update(|state| state.notices = entries);
    };
    board(&[
        (2001, "여의도한강공원 호우 대비 안전수칙 안내"),
        (2002, "호우경보에 따른 한강공원 전체 전면 통제"),
        (2003, "반포한강공원 침수로 출입 통제"),
    ]);
    harness.run(SourceId::HangangNotices, AFTERNOON).await;
    let kinds: Vec<(String, Option<String>, bool)> =
        sqlx::query_as("select kind, park_id, reliable from ingest.notice order by notice_id")
            .fetch_all(&harness.database.pool)
            .await
            .unwrap();
    assert!(kinds.contains(&("general".into(), Some("yeouido".into()), false)), "{kinds:?}");
    // The all-parks closure is shown as a notice but is not acted on without an operator.
    assert!(kinds.contains(&("park_closure".into(), None, false)), "{kinds:?}");
    assert!(kinds.contains(&("park_closure".into(), Some("banpo".into()), true)), "{kinds:?}");
    // Only the reliable closure of a named park alerts.
    let closed: Vec<(serde_json::Value,)> = sqlx::query_as(
        "select f from ingest.outbox, jsonb_array_elements(payload->'facts') f where f->>'kind' = 'park_closed'",
    )
    .fetch_all(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].0["park_id"], "banpo");

    // The lift ends the closure it lifts, and only that one.
    board(&[(2003, "반포한강공원 침수로 출입 통제"), (2004, "반포한강공원 출입 통제 해제")]);
    harness.run(SourceId::HangangNotices, "2026-06-13T18:00").await;
    let open: Vec<(String, Option<String>)> = sqlx::query_as(
        "select kind, park_id from ingest.notice where kind = 'park_closure' and ends_at is null order by park_id",
    )
    .fetch_all(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!(open, vec![("park_closure".into(), None)], "the banpo closure ended");
    assert_eq!(
        harness.count("select count(*) from ingest.notice where park_id = 'banpo' and kind = 'park_closure' and ended_by is not null").await,
        1
    );
    harness.stop().await;
}
