//! The read model's honesty rules on snapshots built in code: what a body says about each value's age and
//! health, and that a body kept for later (a widget timeline entry) judges itself correctly.
//!
//! The property at the heart of it: a body rendered at T and re-judged at T+Δ from its own `stale_at` and
//! `expires_at` gives the same states as the server's own rendering at T+Δ, for every value of every source
//! and every Δ across both transitions; and nothing in a body changes before its `valid_until`.

use std::collections::BTreeMap;

use contracts::{
    Timestamp,
    freshness::{Freshness, FreshnessState, ServedFrom, SourceId},
    v2::{
        AnomalyKind, Confidence, CongestionLevel, Lang, NoticeKind, PrecipitationType, ReasonCode,
        RiskBand, Sky,
    },
};
use db::forecasts::{Horizon, Hour};
use readmodel::{
    Snapshot, render,
    snapshot::{
        AnomalyRow, CongestionRow, EventRow, LotData, LotForecastRow, LotObservationRow, NoticeRow,
        ParkData, ParkForecastRow, PartHealthRow, RunOutcome, SourceHealthRow, WeatherRow,
    },
};
use serde_json::Value;

/// 2026-06-14T08:20:00Z, 17:20 in Seoul.
const T0: i64 = 1_781_425_200;
const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;

fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_seconds(T0 + offset).unwrap()
}

fn health(success: i64, failures: u32, outcome: RunOutcome) -> SourceHealthRow {
    SourceHealthRow {
        last_attempt_at: at(success.max(-MINUTE)),
        last_success_at: Some(at(success)),
        consecutive_failures: failures,
        last_outcome: outcome,
        last_error_class: (failures > 0).then(|| "timeout".to_owned()),
        parts: BTreeMap::new(),
        anomalies: Vec::new(),
    }
}

fn lot(lot_id: &str, observed: Option<i64>, available: u32, capacity: u32) -> LotData {
    LotData {
        lot_id: lot_id.into(),
        name_ko: format!("{lot_id}주차장"),
        names: BTreeMap::new(),
        curated_capacity: Some(capacity),
        entrance: None,
        latest: observed.map(|observed| LotObservationRow {
            observed_at: at(observed),
            fetched_at: at(observed),
            available: Some(available),
            reported_available: None,
            capacity: Some(capacity),
            not_linked: false,
        }),
        forecast: None,
    }
}

fn park(park_id: &str, lots: Vec<LotData>) -> ParkData {
    ParkData {
        park_id: park_id.into(),
        name_ko: format!("{park_id}한강공원"),
        names: BTreeMap::new(),
        short_names: BTreeMap::new(),
        center: (37.52, 126.93),
        lots,
        congestion: None,
        weather: None,
        events: Vec::new(),
        notices: Vec::new(),
        facilities: Vec::new(),
        transit: Vec::new(),
        forecast: None,
    }
}

fn notice(
    notice_id: &str,
    kind: NoticeKind,
    source: SourceId,
    reliable: bool,
    starts: i64,
    ends: Option<i64>,
) -> NoticeRow {
    NoticeRow {
        notice_id: notice_id.into(),
        park_id: None,
        lot_id: None,
        kind,
        title_ko: notice_id.into(),
        url: None,
        source,
        starts_at: Some(at(starts)),
        ends_at: ends.map(at),
        reliable,
    }
}

/// Three parks in every condition the rules distinguish.
fn snapshot() -> Snapshot {
    // Yeouido: everything fresh and healthy, a lot with a clamped count, a forecast, a lot closure ahead.
    let mut yeouido = park(
        "yeouido",
        vec![lot("yeouido-1", Some(-MINUTE), 40, 371), lot("yeouido-2", Some(-MINUTE), 132, 1_087)],
    );
    let clamped = yeouido.lots[0].latest.as_mut().unwrap();
    clamped.available = Some(371);
    clamped.reported_available = Some(400);
    yeouido.lots[1].forecast = Some(LotForecastRow {
        issued_at: at(-30),
        based_on_observed_at: Some(at(-MINUTE)),
        capacity: Some(1_087),
        horizons: [15, 30, 60, 120]
            .into_iter()
            .map(|minutes| Horizon {
                horizon_minutes: minutes,
                target_at: at(i64::from(minutes) * MINUTE - 30),
                p10: 50,
                p50: 100,
                p90: 150,
                risk_full: 0.1,
                risk: RiskBand::Low,
                confidence: Confidence::High,
            })
            .collect(),
        confidence: Some(Confidence::High),
        reasons: vec![ReasonCode::RapidFill],
        accuracy: None,
    });
    yeouido.congestion = Some(CongestionRow {
        observed_at: at(-15 * MINUTE),
        fetched_at: at(-2 * MINUTE),
        level: CongestionLevel::SlightlyCrowded,
        message_ko: Some("사람이 몰려있을 수 있어요.".into()),
        population_min: Some(34_000),
        population_max: Some(36_000),
    });
    yeouido.weather = Some(WeatherRow {
        observed_at: at(-5 * MINUTE),
        fetched_at: at(-2 * MINUTE),
        source: SourceId::SeoulCitydata,
        temperature_c: Some(26.3),
        precipitation: Some(PrecipitationType::None),
        sky: Some(Sky::Clear),
        rain_chance_percent: Some(20),
        pm10: Some(31),
        pm25: Some(15),
    });
    yeouido.forecast = Some(ParkForecastRow {
        issued_at: at(-5 * MINUTE),
        hours: vec![Hour {
            target_at: at(40 * MINUTE),
            level: CongestionLevel::Crowded,
            population_min: None,
            population_max: None,
            confidence: Confidence::High,
        }],
        confidence: Some(Confidence::High),
        reasons: Vec::new(),
    });
    yeouido.events.push(EventRow {
        event_id: "ev-1".into(),
        source: SourceId::SeoulCulturalEvents,
        title_ko: "한강 여름축제".into(),
        place_ko: None,
        starts_on: "2026-06-01".parse().unwrap(),
        ends_on: "2026-06-14".parse().unwrap(),
        free: Some(true),
        url: None,
        cancelled_at: None,
    });
    let mut lot_closure =
        notice("nt-lot", NoticeKind::LotClosure, SourceId::Operator, true, 2 * HOUR, None);
    lot_closure.lot_id = Some("yeouido-2".into());
    yeouido.notices.push(lot_closure);
    // An inferred closure for every park: listed, never closing anything.
    let all_parks =
        notice("nt-all", NoticeKind::ParkClosure, SourceId::HangangNotices, false, -HOUR, None);
    yeouido.notices.push(all_parks.clone());

    // Ichon: its region page has been failing for 20 minutes; KMA weather; an operator closure that ends.
    let mut ichon = park(
        "ichon",
        vec![lot("ichon-1", Some(-20 * MINUTE), 10, 32), lot("ichon-2", None, 0, 50)],
    );
    ichon.weather = Some(WeatherRow {
        observed_at: at(-2 * HOUR),
        fetched_at: at(-2 * HOUR),
        source: SourceId::KmaForecast,
        temperature_c: Some(24.0),
        precipitation: None,
        sky: None,
        rain_chance_percent: None,
        pm10: None,
        pm25: None,
    });
    ichon.notices.push(notice(
        "nt-flood",
        NoticeKind::ParkClosure,
        SourceId::Operator,
        true,
        -HOUR,
        Some(HOUR),
    ));
    ichon.notices.push(all_parks.clone());

    // Banpo: city data's last answer had nothing for it; a reliable board closure; nothing from the portal.
    let mut banpo = park("banpo", vec![lot("banpo-1", None, 0, 310)]);
    banpo.congestion = Some(CongestionRow {
        observed_at: at(-40 * MINUTE),
        fetched_at: at(-30 * MINUTE),
        level: CongestionLevel::Normal,
        message_ko: None,
        population_min: None,
        population_max: None,
    });
    banpo.notices.push(notice(
        "nt-banpo",
        NoticeKind::ParkClosure,
        SourceId::HangangNotices,
        true,
        -3 * HOUR,
        None,
    ));
    banpo.notices.push(all_parks);

    let mut parking = health(-MINUTE, 0, RunOutcome::Partial);
    parking.parts.insert(
        "ichon".into(),
        PartHealthRow {
            last_attempt_at: at(-MINUTE),
            last_success_at: Some(at(-20 * MINUTE)),
            consecutive_failures: 9,
            last_error_class: Some("http_status".into()),
        },
    );
    parking.last_error_class = Some("http_status".into());
    parking.anomalies.push(AnomalyRow {
        kind: AnomalyKind::AvailableAboveCapacity,
        items: vec!["yeouido-1".into()],
    });
    let mut citydata = health(-2 * MINUTE, 0, RunOutcome::Ok);
    for (park_id, success) in [("yeouido", -2 * MINUTE), ("banpo", -2 * MINUTE)] {
        citydata.parts.insert(
            park_id.into(),
            PartHealthRow {
                last_attempt_at: at(success),
                last_success_at: Some(at(success)),
                consecutive_failures: 0,
                last_error_class: None,
            },
        );
    }
    let sources = BTreeMap::from([
        (SourceId::ParkingPortal, parking),
        (SourceId::SeoulCitydata, citydata),
        (SourceId::SeoulCulturalEvents, health(-30 * MINUTE, 0, RunOutcome::Ok)),
        (SourceId::KmaForecast, health(-2 * HOUR, 2, RunOutcome::Failed)),
        (SourceId::HangangNotices, health(-10 * MINUTE, 0, RunOutcome::NoData)),
    ]);
    Snapshot {
        format: readmodel::snapshot::FORMAT,
        built_at: at(0),
        parks: vec![yeouido, ichon, banpo],
        sources,
        translations: BTreeMap::new(),
    }
}

fn json(body: impl serde::Serialize) -> Value {
    serde_json::to_value(body).unwrap()
}

/// Every v2 body the snapshot renders at `now`, by name.
fn bodies(snapshot: &Snapshot, now: Timestamp) -> Vec<(String, Value)> {
    let served = ServedFrom::HotCache;
    let mut bodies: Vec<(String, Value)> = vec![
        ("home".into(), json(render::home_summary(snapshot, Lang::En, now, served))),
        ("status".into(), json(render::status(snapshot, "r", now))),
        (
            "parking widget".into(),
            json(
                render::parking_widget(
                    snapshot,
                    &["yeouido-1".into(), "ichon-1".into(), "ichon-2".into(), "banpo-1".into()],
                    Lang::Ko,
                    now,
                    served,
                )
                .unwrap(),
            ),
        ),
    ];
    for park in ["yeouido", "ichon", "banpo"] {
        bodies.push((
            format!("park {park}"),
            json(render::park_detail(snapshot, park, Lang::En, now, served).unwrap()),
        ));
        bodies.push((
            format!("widget {park}"),
            json(render::park_widget(snapshot, park, Lang::Ko, now, served).unwrap()),
        ));
        bodies.push((
            format!("outlook {park}"),
            json(render::park_forecast(snapshot, park, now, served).unwrap()),
        ));
    }
    for lot in ["yeouido-1", "yeouido-2", "ichon-1", "ichon-2", "banpo-1"] {
        bodies.push((
            format!("forecast {lot}"),
            json(render::lot_forecast(snapshot, lot, now, served).unwrap()),
        ));
    }
    bodies
}

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
