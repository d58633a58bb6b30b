//! The snapshot the read model's tests render: three parks built in code in every condition the rules
//! distinguish (fresh and failing parts, no-item values, a clamped count, operator, reliable and inferred
//! closures, forecasts), and every v2 body rendered from it.

#![allow(dead_code, reason = "each test binary uses part of the support")]

use std::collections::BTreeMap;

use contracts::{
    Timestamp,
    freshness::{ServedFrom, SourceId},
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
pub const T0: i64 = 1_781_425_200;
pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 60 * MINUTE;

pub fn at(offset: i64) -> Timestamp {
    Timestamp::from_unix_seconds(T0 + offset).unwrap()
}

pub fn health(success: i64, failures: u32, outcome: RunOutcome) -> SourceHealthRow {
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

pub fn lot(lot_id: &str, observed: Option<i64>, available: u32, capacity: u32) -> LotData {
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

pub fn park(park_id: &str, lots: Vec<LotData>) -> ParkData {
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

pub fn notice(
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
pub fn snapshot() -> Snapshot {
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

pub fn json(body: impl serde::Serialize) -> Value {
    serde_json::to_value(body).unwrap()
}

/// Every v2 body the snapshot renders at `now`, by name.
pub fn bodies(snapshot: &Snapshot, now: Timestamp) -> Vec<(String, Value)> {
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
