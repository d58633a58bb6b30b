//! What a listing of events means for the events we already know: which listed row is which known event (a
//! retitled event keeps its id), which events are cancelled, and which are back. Pure, so every rule is a
//! table test; `store` loads the known events and applies the plan in the run's transaction.
//!
//! An event is cancelled only when
//! - the organiser marks it (`[취소]`, see `upstream::events::marked_cancelled`), or
//! - it is missing from at least [`ABSENT_LISTS`] consecutive complete lists spanning at least
//!   [`ABSENT_SPAN_SECONDS`], while it has not ended.
//!
//! Incomplete lists (no data, a short page, a moving total, a failed page, city data's area blocks) never
//! count an absence, but an event they do list is listed. A cancelled event that is listed again without a
//! marker is no longer cancelled.

use std::collections::{BTreeMap, BTreeSet};

use contracts::Timestamp;
use jiff::civil::Date;

use crate::batch::EventReading;

/// Complete lists in a row that must miss an event before it counts as cancelled.
pub const ABSENT_LISTS: u32 = 2;

/// How far apart the first and the last of those lists must be: a listing glitch that lasts one run, or two
/// runs moments apart, cancels nothing.
pub const ABSENT_SPAN_SECONDS: i64 = 30 * 60;

/// Why an event counts as cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// The organiser marked it cancelled.
    Organiser,
    /// Complete lists stopped listing it before it ended.
    Absent,
}

impl CancelReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::Organiser => "organiser",
            CancelReason::Absent => "absent",
        }
    }

    /// The stored spelling; legacy rows cancelled before reasons were recorded were cancelled by absence.
    pub fn from_db(value: Option<&str>) -> CancelReason {
        match value {
            Some("organiser") => CancelReason::Organiser,
            _ => CancelReason::Absent,
        }
    }
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownEvent {
    pub event_id: String,
    /// The content key it was last listed under (its id unless it was retitled).
    pub content_key: String,
    pub park_id: String,
    pub title_ko: String,
    pub place_ko: Option<String>,
    pub starts_on: Date,
    pub ends_on: Date,
    pub cancelled: Option<CancelReason>,
    pub missing_since: Option<Timestamp>,
    pub missing_lists: u32,
}

/// One collection's list of a source's events.
#[derive(Clone, Copy, Debug)]
pub struct Listing<'a> {
    pub items: &'a [EventReading],
    /// Whether the list is complete (every page answered and the counts add up).
    pub complete: bool,
    pub at: Timestamp,
    /// Today in Seoul: events that ended before it are left alone.
    pub today: Date,
}

/// What to store.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan<'a> {
    /// Every listed row under the id it is stored as (a known event's, or its own content key when new).
    pub listed: Vec<(String, &'a EventReading)>,
    /// Known events listed under a new title.
    pub retitled: Vec<String>,
    /// Events that become cancelled now, and why.
    pub cancelled: Vec<(String, CancelReason)>,
    /// Cancelled events whose reason changes (an event missing from lists that the organiser now marks).
    pub reason_changed: Vec<(String, CancelReason)>,
    /// Cancelled events that are listed again without a marker.
    pub reinstated: Vec<String>,
    /// Events missing from this complete list: since when, and how many complete lists in a row.
    pub missing: Vec<(String, Timestamp, u32)>,
}

/// How alike two titles are, in [0, 1]: the Dice coefficient of their character pairs, spaces ignored.
fn title_similarity(a: &str, b: &str) -> f64 {
    let pairs = |text: &str| -> Vec<(char, char)> {
        let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
        chars.windows(2).map(|pair| (pair[0], pair[1])).collect()
    };
    let (a, b) = (pairs(a), pairs(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let mut remaining = b.clone();
    let shared = a
        .iter()
        .filter(|pair| {
            remaining
                .iter()
                .position(|other| other == *pair)
                .map(|i| remaining.swap_remove(i))
                .is_some()
        })
        .count();
    2.0 * shared as f64 / (a.len() + b.len()) as f64
}

/// Decides what `listing` means for `known` (the source's stored events that have not ended, plus any the
/// listing names).
pub fn reconcile<'a>(known: &[KnownEvent], listing: Listing<'a>) -> Plan<'a> {
    let mut plan = Plan::default();
    // The same event may appear twice in one answer (several rows for one place): keep the first.
    let mut rows: Vec<&EventReading> = Vec::new();
    let mut seen_keys = BTreeSet::new();
    for item in listing.items {
        if seen_keys.insert(item.content_key.as_str()) {
            rows.push(item);
        }
    }

    // 1. Rows listed under a key we know.
    let by_key: BTreeMap<&str, usize> = known
        .iter()
        .enumerate()
        .flat_map(|(i, event)| [(event.content_key.as_str(), i), (event.event_id.as_str(), i)])
        .collect();
    let mut matched: BTreeMap<usize, &EventReading> = BTreeMap::new();
    let mut unmatched_rows: Vec<&EventReading> = Vec::new();
    for row in rows {
        match by_key.get(row.content_key.as_str()) {
            Some(&i) if !matched.contains_key(&i) => {
                matched.insert(i, row);
            }
            _ => unmatched_rows.push(row),
        }
    }

    // 2. A new title for the same park, place and dates is the same event: pair the remaining rows with the
    //    remaining known events, most alike titles first.
    let same_occasion = |event: &KnownEvent, row: &EventReading| {
        event.park_id == row.park_id
            && event.place_ko == row.place_ko
            && event.starts_on == row.starts_on
            && event.ends_on == row.ends_on
    };
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (r, row) in unmatched_rows.iter().enumerate() {
        for (i, event) in known.iter().enumerate() {
            if !matched.contains_key(&i) && same_occasion(event, row) {
                pairs.push((title_similarity(&event.title_ko, &row.title_ko), i, r));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut paired_rows = BTreeSet::new();
    for (_, i, r) in pairs {
        if matched.contains_key(&i) || paired_rows.contains(&r) {
            continue;
        }
        matched.insert(i, unmatched_rows[r]);
        paired_rows.insert(r);
        plan.retitled.push(known[i].event_id.clone());
    }

    // 3. Listed known events: marked, back, or still on.
    for (&i, &row) in &matched {
        let event = &known[i];
        plan.listed.push((event.event_id.clone(), row));
        match (event.cancelled, row.cancelled) {
            (None, true) => plan.cancelled.push((event.event_id.clone(), CancelReason::Organiser)),
            (Some(CancelReason::Absent), true) => {
                plan.reason_changed.push((event.event_id.clone(), CancelReason::Organiser));
            }
            (Some(_), false) => plan.reinstated.push(event.event_id.clone()),
            (Some(CancelReason::Organiser), true) | (None, false) => {}
        }
    }
    // 4. New events (an event first seen already marked is cancelled from the start).
    for (r, &row) in unmatched_rows.iter().enumerate() {
        if paired_rows.contains(&r) {
            continue;
        }
        plan.listed.push((row.content_key.clone(), row));
        if row.cancelled {
            plan.cancelled.push((row.content_key.clone(), CancelReason::Organiser));
        }
    }
    // 5. Known events this complete list lacks.
    if listing.complete {
        for (i, event) in known.iter().enumerate() {
            if matched.contains_key(&i)
                || event.cancelled.is_some()
                || event.ends_on < listing.today
            {
                continue;
            }
            let since = event.missing_since.unwrap_or(listing.at);
            let lists = event.missing_lists + 1;
            plan.missing.push((event.event_id.clone(), since, lists));
            if lists >= ABSENT_LISTS && since.seconds_until(listing.at) >= ABSENT_SPAN_SECONDS {
                plan.cancelled.push((event.event_id.clone(), CancelReason::Absent));
            }
        }
    }
    plan.listed.sort_by(|a, b| a.0.cmp(&b.0));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_781_425_200 + minutes * MINUTE).unwrap()
    }

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    fn row(title: &str, starts_on: &str) -> EventReading {
        EventReading {
            content_key: upstream::events::event_id(title, Some("여의도한강공원"), date(starts_on)),
            park_id: "yeouido".into(),
            title_ko: title.into(),
            place_ko: Some("여의도한강공원".into()),
            starts_on: date(starts_on),
            ends_on: date("2026-06-30"),
            free: Some(true),
            url: None,
            cancelled: upstream::events::marked_cancelled(title),
        }
    }

    fn known(title: &str, starts_on: &str) -> KnownEvent {
        let row = row(title, starts_on);
        KnownEvent {
            event_id: row.content_key.clone(),
            content_key: row.content_key,
            park_id: row.park_id,
            title_ko: row.title_ko,
            place_ko: row.place_ko,
            starts_on: row.starts_on,
            ends_on: row.ends_on,
            cancelled: None,
            missing_since: None,
            missing_lists: 0,
        }
    }

    fn listing(items: &[EventReading], complete: bool, minutes: i64) -> Listing<'_> {
        Listing { items, complete, at: at(minutes), today: date("2026-06-14") }
    }

    /// Applies a plan to the known events the way the store does.
    fn apply(known: &mut Vec<KnownEvent>, plan: &Plan<'_>) {
        for (event_id, row) in &plan.listed {
            match known.iter_mut().find(|event| &event.event_id == event_id) {
                Some(event) => {
                    event.title_ko = row.title_ko.clone();
                    event.content_key = row.content_key.clone();
                    event.missing_since = None;
                    event.missing_lists = 0;
                }
                None => {
                    let mut event = known_from(row);
                    event.event_id = event_id.clone();
                    known.push(event);
                }
            }
        }
        for (event_id, since, lists) in &plan.missing {
            let event = known.iter_mut().find(|event| &event.event_id == event_id).unwrap();
            event.missing_since = Some(*since);
            event.missing_lists = *lists;
        }
        for (event_id, reason) in plan.cancelled.iter().chain(&plan.reason_changed) {
            known.iter_mut().find(|event| &event.event_id == event_id).unwrap().cancelled =
                Some(*reason);
        }
        for event_id in &plan.reinstated {
            known.iter_mut().find(|event| &event.event_id == event_id).unwrap().cancelled = None;
        }
    }

    fn known_from(row: &EventReading) -> KnownEvent {
        KnownEvent {
            event_id: row.content_key.clone(),
            content_key: row.content_key.clone(),
            park_id: row.park_id.clone(),
            title_ko: row.title_ko.clone(),
            place_ko: row.place_ko.clone(),
            starts_on: row.starts_on,
            ends_on: row.ends_on,
            cancelled: None,
            missing_since: None,
            missing_lists: 0,
        }
    }

    #[test]
    fn incomplete_lists_cancel_nothing_however_often_they_come() {
        let mut events =
            vec![known("한강 음악회", "2026-06-20"), known("강변 사진전", "2026-06-10")];
        let only_one = [row("강변 사진전", "2026-06-10")];
        for minutes in (0..=180).step_by(30) {
            for items in [&only_one[..], &[]] {
                let plan = reconcile(&events, listing(items, false, minutes));
                assert!(plan.cancelled.is_empty() && plan.missing.is_empty(), "{plan:?}");
                apply(&mut events, &plan);
            }
        }
        assert!(events.iter().all(|event| event.cancelled.is_none()));
    }

    #[test]
    fn absence_from_two_complete_lists_thirty_minutes_apart_cancels() {
        let mut events =
            vec![known("한강 음악회", "2026-06-20"), known("강변 사진전", "2026-06-10")];
        let without_concert = [row("강변 사진전", "2026-06-10")];
        let cancelled_after =
            |events: &[KnownEvent]| events.iter().filter(|event| event.cancelled.is_some()).count();
        // First complete list without it: counted, not cancelled.
        let plan = reconcile(&events, listing(&without_concert, true, 0));
        assert_eq!(plan.missing.len(), 1);
        assert!(plan.cancelled.is_empty());
        apply(&mut events, &plan);
        // A second one moments later is still not 30 minutes of absence.
        let plan = reconcile(&events, listing(&without_concert, true, 10));
        assert!(plan.cancelled.is_empty());
        apply(&mut events, &plan);
        // An incomplete list in between neither counts nor breaks the streak.
        let plan = reconcile(&events, listing(&[], false, 20));
        apply(&mut events, &plan);
        let plan = reconcile(&events, listing(&without_concert, true, 30));
        assert_eq!(plan.cancelled, vec![(events[0].event_id.clone(), CancelReason::Absent)]);
        apply(&mut events, &plan);
        assert_eq!(cancelled_after(&events), 1);
    }

    #[test]
    fn being_listed_again_resets_the_streak_and_reinstates() {
        let mut events = vec![known("한강 음악회", "2026-06-20")];
        let listed = [row("한강 음악회", "2026-06-20")];
        let plan = reconcile(&events, listing(&[], true, 0));
        apply(&mut events, &plan);
        // Listed again (even by an incomplete list): the streak starts over.
        let plan = reconcile(&events, listing(&listed, false, 20));
        apply(&mut events, &plan);
        let plan = reconcile(&events, listing(&[], true, 40));
        assert!(plan.cancelled.is_empty(), "one absence since it was listed: {plan:?}");
        apply(&mut events, &plan);
        let plan = reconcile(&events, listing(&[], true, 80));
        apply(&mut events, &plan);
        assert_eq!(events[0].cancelled, Some(CancelReason::Absent));
        // Back in the list: no longer cancelled.
        let plan = reconcile(&events, listing(&listed, true, 140));
        assert_eq!(plan.reinstated, vec![events[0].event_id.clone()]);
        apply(&mut events, &plan);
        assert_eq!(events[0].cancelled, None);
    }

    #[test]
    fn ended_events_are_left_alone() {
        let mut ended = known("지난 축제", "2026-06-01");
        ended.ends_on = date("2026-06-13");
        let plan = reconcile(&[ended], listing(&[], true, 0));
        assert!(plan.missing.is_empty() && plan.cancelled.is_empty());
    }

    #[test]
    fn a_retitled_event_is_the_same_event() {
        let mut events =
            vec![known("한강 여름 음악회", "2026-06-20"), known("한강 재즈", "2026-06-20")];
        let original_id = events[0].event_id.clone();
        for (title, cancelled) in [
            ("한강 여름음악회", None),
            ("한강 여름음악회 (연기)", None),
            ("[취소] 한강 여름음악회 (연기)", Some(CancelReason::Organiser)),
            ("한강 여름음악회", None),
        ] {
            let items = [row(title, "2026-06-20"), row("한강 재즈", "2026-06-20")];
            let plan = reconcile(&events, listing(&items, true, 0));
            assert!(plan.listed.iter().all(|(id, _)| events.iter().any(|e| &e.event_id == id)));
            apply(&mut events, &plan);
            assert_eq!(events.len(), 2, "{title}: no new event");
            assert_eq!(events[0].event_id, original_id, "{title}: the id stays");
            assert_eq!(events[0].title_ko, title);
            assert_eq!(events[0].cancelled, cancelled, "{title}");
            assert_eq!(events[1].cancelled, None, "{title}: the other event is untouched");
        }
    }

    #[test]
    fn the_organisers_marker_cancels_at_once_and_its_removal_reinstates() {
        let mut events = vec![known("한강 음악회", "2026-06-20")];
        let marked = [row("[취소] 한강 음악회", "2026-06-20")];
        let plan = reconcile(&events, listing(&marked, false, 0));
        assert_eq!(plan.cancelled, vec![(events[0].event_id.clone(), CancelReason::Organiser)]);
        apply(&mut events, &plan);
        let unmarked = [row("한강 음악회", "2026-06-20")];
        let plan = reconcile(&events, listing(&unmarked, false, 60));
        assert_eq!(plan.reinstated.len(), 1);
        // A title that merely contains 취소 is not a marker.
        let resale = [row("한강 음악회 취소표 재판매", "2026-06-20")];
        let plan = reconcile(&events, listing(&resale, true, 0));
        assert!(plan.cancelled.is_empty());
    }

    #[test]
    fn a_new_event_gets_its_own_id() {
        let items = [row("새 축제", "2026-06-21")];
        let plan = reconcile(&[known("한강 음악회", "2026-06-20")], listing(&items, false, 0));
        assert_eq!(plan.listed, vec![(items[0].content_key.clone(), &items[0])]);
        assert!(plan.retitled.is_empty());
    }

    #[test]
    fn similar_titles_pair_first() {
        assert!(title_similarity("한강 여름 음악회", "한강 여름음악회 (연기)") > 0.7);
        assert!(title_similarity("한강 여름 음악회", "강변 사진전") < 0.2);
        assert_eq!(title_similarity("", "x"), 0.0);
    }
}
