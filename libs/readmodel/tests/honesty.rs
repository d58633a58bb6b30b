//! The read model's honesty rules on snapshots built in code: what a body says about each value's age and
//! health, and that a body kept for later (a widget timeline entry) judges itself correctly.
//!
//! The property at the heart of it: a body rendered at T and re-judged at T+Δ from its own `stale_at` and
//! `expires_at` gives the same states as the server's own rendering at T+Δ, for every value of every source
//! and every Δ across both transitions; and nothing in a body changes before its `valid_until`.

mod support;

use std::collections::BTreeMap;

use contracts::{
    Timestamp,
    freshness::{Freshness, FreshnessState, ServedFrom, SourceId},
    v2::Lang,
};
use readmodel::{Snapshot, render};
use serde_json::Value;
use support::{HOUR, MINUTE, T0, at, bodies, snapshot};

/// Every object in `body` that judges an age (`state` beside `stale_at`), by its JSON path.
fn judged(body: &Value, path: String, out: &mut Vec<(String, Value)>) {
    match body {
        Value::Object(map) => {
            if map.contains_key("state") && map.contains_key("stale_at") {
                out.push((path.clone(), body.clone()));
            }
            for (key, value) in map {
                judged(value, format!("{path}.{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                judged(item, format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A client's judgement of a kept value at `when`: `Freshness::state_at`, also for `/v2/status` entries.
fn client_state(value: &Value, when: Timestamp) -> FreshnessState {
    let freshness = Freshness {
        observed_at: None,
        fetched_at: None,
        source: serde_json::from_value(value["source"].clone()).unwrap(),
        state: serde_json::from_value(value["state"].clone()).unwrap(),
        source_status: serde_json::from_value(value["source_status"].clone()).unwrap(),
        stale_at: serde_json::from_value(value["stale_at"].clone()).unwrap(),
        expires_at: serde_json::from_value(value["expires_at"].clone()).unwrap(),
        notes: Vec::new(),
    };
    freshness.state_at(when)
}

/// Offsets that cross every transition in the snapshot: a second either side of each, and a coarse grid.
fn offsets(bodies: &[(String, Value)]) -> Vec<i64> {
    let mut offsets: Vec<i64> = (0..=60).map(|step| step * 5 * MINUTE).collect();
    for (_, body) in bodies {
        let mut values = Vec::new();
        judged(body, String::new(), &mut values);
        for (_, value) in values {
            for key in ["stale_at", "expires_at"] {
                if let Ok(instant) = serde_json::from_value::<Timestamp>(value[key].clone()) {
                    let offset = instant.as_unix_seconds() - T0;
                    offsets
                        .extend([offset - 1, offset, offset + 1].into_iter().filter(|o| *o >= 0));
                }
            }
        }
    }
    offsets.sort_unstable();
    offsets.dedup();
    offsets
}

#[test]
fn a_kept_body_judges_each_value_as_the_server_would_later() {
    let snapshot = snapshot();
    let kept = bodies(&snapshot, at(0));
    let mut checked = BTreeMap::<String, usize>::new();
    for offset in offsets(&kept) {
        let later = bodies(&snapshot, at(offset));
        for ((name, kept_body), (_, served_body)) in kept.iter().zip(&later) {
            let (mut kept_values, mut served_values) = (Vec::new(), Vec::new());
            judged(kept_body, String::new(), &mut kept_values);
            judged(served_body, String::new(), &mut served_values);
            assert_eq!(kept_values.len(), served_values.len(), "{name}: the same values");
            let valid_until: Option<Timestamp> =
                serde_json::from_value(kept_body["valid_until"].clone()).unwrap();
            for ((path, kept_value), (_, served_value)) in kept_values.iter().zip(&served_values) {
                // A value whose evidence changed by time alone (an operator's closure ended, so the board
                // answers now) is a new value: that may only happen once the kept body said it was no longer
                // current.
                let evidence = |value: &Value| {
                    (
                        value["source"].clone(),
                        value["observed_at"].clone(),
                        value["fetched_at"].clone(),
                    )
                };
                if evidence(kept_value) != evidence(served_value) {
                    assert!(
                        valid_until.is_some_and(|until| until <= at(offset)),
                        "{name}{path} changed evidence at +{offset}s, before valid_until {valid_until:?}"
                    );
                    continue;
                }
                let server: FreshnessState =
                    serde_json::from_value(served_value["state"].clone()).unwrap();
                assert_eq!(
                    client_state(kept_value, at(offset)),
                    server,
                    "{name}{path} at +{offset}s: {kept_value}"
                );
                *checked.entry(kept_value["source"].as_str().unwrap().to_owned()).or_default() += 1;
            }
        }
    }
    // Every source's values were judged, across their transitions.
    for source in [
        "parking_portal",
        "seoul_citydata",
        "seoul_cultural_events",
        "kma_forecast",
        "hangang_notices",
        "operator",
    ] {
        assert!(
            checked.get(source).copied().unwrap_or(0) > 0,
            "no {source} value checked: {checked:?}"
        );
    }
}

#[test]
fn nothing_in_a_body_changes_before_its_valid_until() {
    let snapshot = snapshot();
    for (name, body) in bodies(&snapshot, at(0)) {
        let valid_until: Option<Timestamp> =
            serde_json::from_value(body["valid_until"].clone()).unwrap();
        let until = valid_until.map_or(6 * HOUR, |until| until.as_unix_seconds() - T0);
        assert!(until > 0, "{name}: valid_until lies ahead");
        for offset in
            [1, until / 4, until / 2, until - 1].into_iter().filter(|o| (1..until).contains(o))
        {
            let later =
                bodies(&snapshot, at(offset)).into_iter().find(|(n, _)| *n == name).unwrap().1;
            assert_eq!(later, body, "{name} changed at +{offset}s, before valid_until (+{until}s)");
        }
        // At valid_until something in the body changes. (In general a body may err early: a parking summary
        // notes a lot closure's start, which decides a lot state it does not show. Not in this snapshot.)
        if valid_until.is_some() {
            let later =
                bodies(&snapshot, at(until)).into_iter().find(|(n, _)| *n == name).unwrap().1;
            assert_ne!(later, body, "{name}: nothing changed at valid_until (+{until}s)");
        }
    }
}

fn find<'a>(body: &'a Value, pointer: &str) -> &'a Value {
    body.pointer(pointer).unwrap_or_else(|| panic!("{pointer} missing in {body}"))
}

#[test]
fn health_is_per_park_and_absence_is_no_item() {
    let snapshot = snapshot();
    let home =
        serde_json::to_value(render::home_summary(&snapshot, Lang::En, at(0), ServedFrom::Live))
            .unwrap();
    // Yeouido's page answered; Ichon's failed; Banpo's lot was never on its page.
    assert_eq!(find(&home, "/parks/0/parking/freshness/source_status"), "ok");
    assert_eq!(find(&home, "/parks/1/parking/freshness/source_status"), "failing");
    assert_eq!(find(&home, "/parks/2/parking/freshness/source_status"), "no_item");
    // Banpo's congestion is older than its area's last answer: no item now, aging by its own time.
    assert_eq!(find(&home, "/parks/2/congestion/freshness/source_status"), "no_item");
    assert_eq!(
        find(&home, "/parks/2/congestion/freshness/observed_at"),
        &serde_json::json!(at(-40 * MINUTE))
    );
    assert_eq!(find(&home, "/parks/2/congestion/freshness/state"), "stale");
    // KMA failing whole runs fails Ichon's weather.
    assert_eq!(find(&home, "/parks/1/weather/freshness/source_status"), "failing");

    let status = serde_json::to_value(render::status(&snapshot, "r", at(0))).unwrap();
    let parking = &status["sources"][0];
    assert_eq!(parking["source_status"], "ok");
    assert_eq!(parking["failing_parks"], serde_json::json!(["ichon"]));
    assert_eq!(parking["last_error"], "http_status", "a partial run says what failed");
    assert_eq!(
        parking["anomalies"],
        serde_json::json!([{"kind": "available_above_capacity", "count": 1, "items": ["yeouido-1"]}])
    );
    // A source whose last successful collection carried nothing is not shown as a plain `ok`.
    assert_eq!(status["sources"][4]["source"], "hangang_notices");
    assert_eq!(status["sources"][4]["source_status"], "no_item");
    assert_eq!(status["sources"][3]["source_status"], "failing");
}

#[test]
fn a_clamped_count_says_so() {
    let snapshot = snapshot();
    let park = serde_json::to_value(
        render::park_detail(&snapshot, "yeouido", Lang::En, at(0), ServedFrom::Live).unwrap(),
    )
    .unwrap();
    let lot = find(&park, "/lots/0");
    assert_eq!(lot["available"], 371);
    assert_eq!(lot["capacity"], 371);
    assert_eq!(lot["reported_available"], 400);
    assert_eq!(lot["freshness"]["notes"], serde_json::json!(["clamped_to_capacity"]));
    assert_eq!(find(&park, "/lots/1/reported_available"), &Value::Null);
    // The park's sum says its parts were corrected.
    let home =
        serde_json::to_value(render::home_summary(&snapshot, Lang::En, at(0), ServedFrom::Live))
            .unwrap();
    assert_eq!(
        find(&home, "/parks/0/parking/freshness/notes"),
        &serde_json::json!(["clamped_to_capacity"])
    );
}

#[test]
fn closure_says_closed_open_or_unknown_with_its_evidence() {
    let mut snapshot = snapshot();
    let closure = |snapshot: &Snapshot, park: &str, offset: i64| {
        serde_json::to_value(
            render::park_widget(snapshot, park, Lang::Ko, at(offset), ServedFrom::Live).unwrap(),
        )
        .unwrap()
    };
    // An operator's closure: closed, as long as it lasts, and an operator's word does not age.
    let ichon = closure(&snapshot, "ichon", 0);
    assert_eq!(ichon["closure"]["closed"], true);
    assert_eq!(ichon["closed"], true);
    assert_eq!(ichon["closure"]["freshness"]["source"], "operator");
    assert_eq!(ichon["closure"]["freshness"]["stale_at"], Value::Null);
    let until: Timestamp = serde_json::from_value(ichon["valid_until"].clone()).unwrap();
    assert!(until <= at(HOUR), "the closure's end is a change: {until}");
    let after = closure(&snapshot, "ichon", HOUR);
    assert_eq!(after["closure"]["closed"], false, "the closure ended");
    // A reliable board closure closes, with the board's freshness.
    let banpo = closure(&snapshot, "banpo", 0);
    assert_eq!(banpo["closure"]["closed"], true);
    assert_eq!(banpo["closure"]["freshness"]["source"], "hangang_notices");
    // An inferred all-parks closure does not close Yeouido; it is only a notice there.
    let yeouido = closure(&snapshot, "yeouido", 0);
    assert_eq!(yeouido["closure"]["closed"], false);
    assert_eq!(yeouido["closure"]["freshness"]["source_status"], "no_item");
    let detail = serde_json::to_value(
        render::park_detail(&snapshot, "yeouido", Lang::Ko, at(0), ServedFrom::Live).unwrap(),
    )
    .unwrap();
    assert!(
        detail["notices"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["notice_id"] == "nt-all" && n["kind"] == "park_closure")
    );
    // Before the board was ever read, an open park is unknown, not `false`.
    snapshot.sources.remove(&SourceId::HangangNotices);
    let unknown = closure(&snapshot, "yeouido", 0);
    assert_eq!(unknown["closure"]["closed"], Value::Null);
    assert_eq!(unknown["closure"]["freshness"]["source_status"], "not_collected");
    assert_eq!(unknown["closed"], false, "old builds read false");
    // …while an operator's closure is known without it.
    assert_eq!(closure(&snapshot, "ichon", 0)["closure"]["closed"], true);
}

#[test]
fn the_cache_bound_is_never_later_than_any_body() {
    let snapshot = snapshot();
    for offset in [0, 7 * MINUTE, 29 * MINUTE, 2 * HOUR] {
        let bound = snapshot.next_transition(at(offset));
        for (name, body) in bodies(&snapshot, at(offset)) {
            let valid_until: Option<Timestamp> =
                serde_json::from_value(body["valid_until"].clone()).unwrap();
            if let Some(valid_until) = valid_until {
                assert!(
                    bound.is_some_and(|bound| bound <= valid_until),
                    "{name} at +{offset}s: {bound:?} > {valid_until}"
                );
            }
        }
    }
}
