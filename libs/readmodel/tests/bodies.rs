//! Every body the read model renders from the in-code snapshot, pinned with insta (a changed rendering is a
//! reviewed `.snap` diff), and the rules that turn one row into one field as `check(input, expect)` tables.

mod support;

use contracts::{
    freshness::{ServedFrom, SourceId},
    v2::{Lang, NoticeKind},
};
use readmodel::{
    render,
    snapshot::{EventRow, LotObservationRow},
};
use support::{HOUR, MINUTE, at, bodies, notice, snapshot};

#[test]
fn every_body_at_t0() {
    let snapshot = snapshot();
    for (name, body) in bodies(&snapshot, at(0)) {
        insta::assert_json_snapshot!(name.replace(' ', "_"), body);
    }
}

/// `yeouido-2`'s state (`available`, `busy`, `full`, `closed` or none) for a count, a capacity and a closure.
fn lot_state(available: Option<u32>, capacity: u32, closed_for: Option<i64>) -> String {
    let mut snapshot = snapshot();
    let park = snapshot.parks.iter_mut().find(|park| park.park_id == "yeouido").unwrap();
    let lot = park.lots.iter_mut().find(|lot| lot.lot_id == "yeouido-2").unwrap();
    lot.curated_capacity = Some(capacity);
    lot.latest = Some(LotObservationRow {
        observed_at: at(-MINUTE),
        fetched_at: at(-MINUTE),
        available,
        reported_available: None,
        capacity: Some(capacity),
        not_linked: available.is_none(),
    });
    park.notices.retain(|notice| notice.notice_id != "nt-lot");
    if let Some(starts) = closed_for {
        let mut closure =
            notice("nt-lot", NoticeKind::LotClosure, SourceId::Operator, true, starts, None);
        closure.lot_id = Some("yeouido-2".into());
        park.notices.push(closure);
    }
    let widget =
        render::parking_widget(&snapshot, &["yeouido-2".into()], Lang::Ko, at(0), ServedFrom::Live)
            .unwrap();
    let status = &widget.lots[0].status;
    format!(
        "{} {}",
        status.state.map_or("none", |state| state.as_str()),
        status.freshness.source_status.as_str()
    )
}

#[test]
fn lot_states_follow_the_count_and_closures() {
    let check = |available, capacity, closed_for, expect: &str| {
        assert_eq!(lot_state(available, capacity, closed_for), expect, "{available:?}/{capacity}")
    };
    check(Some(132), 1_087, None, "available ok");
    check(Some(100), 1_087, None, "busy ok");
    check(Some(0), 1_087, None, "full ok");
    check(None, 1_087, None, "none not_linked");
    check(Some(132), 1_087, Some(-HOUR), "closed ok");
    // A closure announced for later does not close the lot yet.
    check(Some(132), 1_087, Some(HOUR), "available ok");
}

/// The status of an event running from `starts` to `ends` (days from today), possibly cancelled.
fn event_status(starts: i64, ends: i64, cancelled: bool) -> String {
    let mut snapshot = snapshot();
    let today = contracts::seoul::date(at(0));
    let day = |offset: i64| today.checked_add(jiff::Span::new().days(offset)).unwrap();
    let park = snapshot.parks.iter_mut().find(|park| park.park_id == "banpo").unwrap();
    park.events = vec![EventRow {
        event_id: "ev-table".into(),
        source: SourceId::SeoulCulturalEvents,
        title_ko: "행사".into(),
        place_ko: None,
        starts_on: day(starts),
        ends_on: day(ends),
        free: None,
        url: None,
        cancelled_at: cancelled.then(|| at(-HOUR)),
    }];
    let detail =
        render::park_detail(&snapshot, "banpo", Lang::Ko, at(0), ServedFrom::Live).unwrap();
    detail.events.items[0].status.as_str().to_owned()
}

#[test]
fn event_statuses_follow_the_dates_in_seoul() {
    let check = |starts, ends, cancelled, expect: &str| {
        assert_eq!(event_status(starts, ends, cancelled), expect, "{starts}..{ends}")
    };
    check(1, 3, false, "scheduled");
    check(0, 0, false, "ongoing");
    check(-3, 2, false, "ongoing");
    check(-3, -1, false, "ended");
    check(1, 3, true, "cancelled");
}
