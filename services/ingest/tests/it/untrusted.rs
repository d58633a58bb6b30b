//! What the sources write reaches the app only within bounds: links other than https are dropped (their
//! items stored without them, the drop recorded with the run), and a notice board beyond the parser's caps is
//! a failed run of class `too_large` that changes nothing stored.

use contracts::freshness::SourceId;
use ingest::{
    outcome::{ErrorClass, Outcome},
    store::Peers,
};
use replay::{BoardEntry, Endpoint, Fault};
use serde_json::{Value, json};

use crate::support::{AFTERNOON, Harness};

async fn dropped_links(harness: &Harness, run_id: i64) -> Option<Value> {
    let (dropped,): (Option<Value>,) =
        sqlx::query_as("select dropped_links from ingest.ingestion_run where run_id = $1")
            .bind(run_id)
            .fetch_one(&harness.database.pool)
            .await
            .unwrap();
    dropped
}

#[tokio::test]
async fn links_that_are_not_https_are_dropped_and_their_items_stay() {
    let harness = Harness::start(Peers::default()).await;
    harness.world.update(|state| {
        state
            .event_links
            .insert("한강 여름축제".into(), "javascript:alert(document.cookie)".into());
        state
            .event_links
            .insert("달빛무지개분수 음악회".into(), "https://example.org/moonlight".into());
    });
    let report = harness.run(SourceId::SeoulCulturalEvents, AFTERNOON).await;
    assert!(matches!(report.outcome, Outcome::Ok { .. }), "{:?}", report.outcome);
    let events: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "select event_id, title_ko, url from ingest.event where source = 'seoul_cultural_events'
         order by title_ko",
    )
    .fetch_all(&harness.database.pool)
    .await
    .unwrap();
    let festival = events.iter().find(|(_, title, _)| title == "한강 여름축제").unwrap();
    let concert = events.iter().find(|(_, title, _)| title == "달빛무지개분수 음악회").unwrap();
    assert_eq!(festival.2, None, "the script link is gone, the festival is listed");
    assert_eq!(concert.2.as_deref(), Some("https://example.org/moonlight"));
    assert_eq!(
        dropped_links(&harness, report.run_id).await,
        Some(json!([{"reason": "javascript", "items": [festival.0]}]))
    );

    // The board: a script link and an https one; relative links on a plain-http board are plain http.
    harness.world.update(|state| {
        state.notices = vec![
            BoardEntry {
                id: 1001,
                title: "잠실한강공원 수영장 임시 휴장 안내".into(),
                date: "2026-06-12".into(),
            },
            BoardEntry {
                id: 1002,
                title: "여의도한강공원 여의도2주차장 임시 폐쇄".into(),
                date: "2026-06-12".into(),
            },
            BoardEntry {
                id: 1003,
                title: "반포한강공원 달빛광장 출입통제".into(),
                date: "2026-06-12".into(),
            },
        ];
        state.notice_links.insert(1001, "javascript:goView('1001')".into());
        state.notice_links.insert(1002, "https://hangang.seoul.go.kr/notice/1002".into());
    });
    let report = harness.run(SourceId::HangangNotices, AFTERNOON).await;
    assert!(matches!(report.outcome, Outcome::Ok { items: 3 }), "{:?}", report.outcome);
    let urls: Vec<(String, Option<String>)> =
        sqlx::query_as("select title_ko, url from ingest.notice order by title_ko")
            .fetch_all(&harness.database.pool)
            .await
            .unwrap();
    assert_eq!(
        urls,
        vec![
            ("반포한강공원 달빛광장 출입통제".into(), None),
            (
                "여의도한강공원 여의도2주차장 임시 폐쇄".into(),
                Some("https://hangang.seoul.go.kr/notice/1002".into()),
            ),
            ("잠실한강공원 수영장 임시 휴장 안내".into(), None),
        ]
    );
    let dropped = dropped_links(&harness, report.run_id).await.unwrap();
    let reasons: Vec<&str> =
        dropped.as_array().unwrap().iter().map(|group| group["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, vec!["http", "javascript"]);
    harness.stop().await;
}

#[tokio::test]
async fn a_notice_board_beyond_the_caps_is_a_failed_run_that_changes_nothing() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    harness.world.update(|state| {
        state.notices = vec![BoardEntry {
            id: 2003,
            title: "반포한강공원 침수로 출입 통제".into(),
            date: "2026-06-13".into(),
        }];
    });
    harness.run(SourceId::HangangNotices, AFTERNOON).await;
    let stored = || async {
        let rows: Vec<(String, Option<time::OffsetDateTime>)> =
            sqlx::query_as("select notice_id, ends_at from ingest.notice order by notice_id")
                .fetch_all(&harness.database.pool)
                .await
                .unwrap();
        let facts = harness
            .count("select count(*) from ingest.outbox, jsonb_array_elements(payload->'facts') f")
            .await;
        (rows, facts)
    };
    let before = stored().await;
    assert_eq!((before.0.len(), before.1), (1, 1), "one closure, one fact");

    // 100,000 nested elements: refused before the tree is built (building it would take minutes).
    harness.world.fail(Endpoint::Notices, Fault::Nested(100_000));
    let started = std::time::Instant::now();
    let deep = harness.run(SourceId::HangangNotices, "2026-06-13T15:45").await;
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    // Too many rows: refused rather than read as a list from which the others vanished.
    harness.world.fail(Endpoint::Notices, Fault::ManyRows(2_500));
    let crowded = harness.run(SourceId::HangangNotices, "2026-06-13T16:00").await;
    for (report, expected) in [
        (&deep, "elements nest deeper than 256 levels"),
        (&crowded, "rows and list items (at most 2000)"),
    ] {
        let Outcome::Failed(failure) = &report.outcome else { panic!("{:?}", report.outcome) };
        assert_eq!(failure.class, ErrorClass::TooLarge);
        assert!(failure.message.contains(expected), "{failure}");
        let (class, message): (Option<String>, Option<String>) = sqlx::query_as(
            "select error_class, error_message from ingest.ingestion_run where run_id = $1",
        )
        .bind(report.run_id)
        .fetch_one(&harness.database.pool)
        .await
        .unwrap();
        assert_eq!(class.as_deref(), Some("too_large"));
        assert!(message.unwrap().contains(expected));
    }
    assert_eq!(stored().await, before, "no notice ended, none added, no fact queued");

    // Back to a board within bounds: the closure is the one already known, so nothing alerts again.
    harness.world.heal(Endpoint::Notices);
    let healed = harness.run(SourceId::HangangNotices, "2026-06-13T16:15").await;
    assert!(matches!(healed.outcome, Outcome::Ok { .. }), "{:?}", healed.outcome);
    assert_eq!(stored().await, before);
    harness.stop().await;
}
