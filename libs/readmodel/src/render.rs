//! Rendering a [`Snapshot`] into the contract bodies, with freshness assessed at `now`.
//!
//! Every function is pure: same snapshot, language and instant, same body. Names fall back to Korean when a
//! translation is missing, and public-data text says which language it is in.

use std::collections::BTreeMap;

use contracts::{
    Timestamp,
    enums::{OpenEnum, WireEnum},
    freshness::{Freshness, FreshnessState, ServedFrom, SourceId, SourceStatus},
    v1,
    v2::{self, Confidence, CongestionLevel, Lang, LotState, ReasonCode},
};

use crate::{
    freshness::{self, Evidence},
    snapshot::{LotData, ParkData, Snapshot},
};

/// The upstream sources `/v2/status` reports, in display order.
pub const UPSTREAM_SOURCES: [SourceId; 5] = [
    SourceId::ParkingPortal,
    SourceId::SeoulCitydata,
    SourceId::SeoulCulturalEvents,
    SourceId::KmaForecast,
    SourceId::HangangNotices,
];

/// A lot id in a widget request that no park has.
#[derive(Debug, thiserror::Error)]
#[error("unknown lot `{0}`")]
pub struct UnknownLot(pub String);

/// Parses a stored wire value of an open enum; unknown values become `Unknown`.
fn open<E: OpenEnum>(value: &str) -> E {
    E::from_wire(value).unwrap_or(E::UNKNOWN)
}

fn lang_tag(lang: Lang) -> &'static str {
    lang.as_str()
}

/// A curated name in `lang`, falling back to Korean.
fn name(names: &BTreeMap<String, String>, name_ko: &str, lang: Lang) -> String {
    if lang == Lang::Ko {
        return name_ko.to_owned();
    }
    names.get(lang_tag(lang)).cloned().unwrap_or_else(|| name_ko.to_owned())
}

/// Public-data text in `lang` where a translation exists, else the Korean original (and says so).
fn text(snapshot: &Snapshot, source_text: &str, lang: Lang) -> v2::LocalizedText {
    let translated = (lang != Lang::Ko)
        .then(|| snapshot.translations.get(source_text)?.get(lang_tag(lang)))
        .flatten();
    match translated {
        Some(text) => {
            v2::LocalizedText { text: text.clone(), lang, source_text: source_text.to_owned() }
        }
        None => v2::LocalizedText {
            text: source_text.to_owned(),
            lang: Lang::Ko,
            source_text: source_text.to_owned(),
        },
    }
}

fn coordinates((lat, lng): (f64, f64)) -> v2::Coordinates {
    v2::Coordinates { lat, lng }
}

/// Today's date in Seoul, `YYYY-MM-DD`.
fn seoul_today(now: Timestamp) -> String {
    let seoul = jiff::tz::TimeZone::fixed(jiff::tz::offset(9));
    now.as_jiff().to_zoned(seoul).date().to_string()
}

fn is_active(starts_at: Option<Timestamp>, ends_at: Option<Timestamp>, now: Timestamp) -> bool {
    starts_at.is_none_or(|start| start <= now) && ends_at.is_none_or(|end| now < end)
}

fn park_closed(park: &ParkData, now: Timestamp) -> bool {
    park.notices.iter().any(|notice| {
        notice.kind == "park_closure" && is_active(notice.starts_at, notice.ends_at, now)
    })
}

fn lot_closed(park: &ParkData, lot: &LotData, now: Timestamp) -> bool {
    park_closed(park, now)
        || park.notices.iter().any(|notice| {
            notice.kind == "lot_closure"
                && notice.lot_id.as_deref() == Some(lot.lot_id.as_str())
                && is_active(notice.starts_at, notice.ends_at, now)
        })
}

fn lot_evidence<'a>(snapshot: &'a Snapshot, lot: &LotData) -> Evidence<'a> {
    let source = SourceId::ParkingPortal;
    Evidence {
        source,
        health: snapshot.source(source.as_str()),
        present: lot.latest.is_some(),
        observed_at: lot.latest.as_ref().map(|latest| latest.observed_at),
        fetched_at: lot.latest.as_ref().map(|latest| latest.fetched_at),
        not_linked: lot.latest.as_ref().is_some_and(|latest| latest.not_linked),
    }
}

fn lot_capacity(lot: &LotData) -> Option<u32> {
    lot.latest.as_ref().and_then(|latest| latest.capacity).or(lot.curated_capacity)
}

fn lot_status(
    snapshot: &Snapshot,
    park: &ParkData,
    lot: &LotData,
    lang: Lang,
    now: Timestamp,
) -> v2::LotStatus {
    let freshness = lot_evidence(snapshot, lot).assess(now);
    let available =
        lot.latest.as_ref().filter(|latest| !latest.not_linked).and_then(|latest| latest.available);
    let capacity = lot_capacity(lot);
    let state = if lot_closed(park, lot, now) {
        Some(LotState::Closed)
    } else {
        available.map(|available| match capacity {
            _ if available == 0 => LotState::Full,
            Some(capacity) if u64::from(available) * 10 < u64::from(capacity) => LotState::Busy,
            _ => LotState::Available,
        })
    };
    v2::LotStatus {
        lot_id: lot.lot_id.clone(),
        name: name(&lot.names, &lot.name_ko, lang),
        available,
        capacity,
        state,
        entrance: coordinates(lot.entrance.unwrap_or(park.center)),
        freshness,
    }
}

/// Orders freshness from best to worst, so a sum is never shown fresher than its weakest part.
fn worse(a: Freshness, b: Freshness) -> Freshness {
    let state_rank = |state: FreshnessState| match state {
        FreshnessState::Fresh => 0,
        FreshnessState::Stale => 1,
        FreshnessState::Expired => 2,
        FreshnessState::Unknown => 3,
    };
    let older = match (a.observed_at, b.observed_at) {
        (Some(x), Some(y)) if y < x => b.clone(),
        (None, Some(_)) => b.clone(),
        _ => a.clone(),
    };
    let status_rank = |status: SourceStatus| match status {
        SourceStatus::Ok => 0,
        SourceStatus::NotLinked => 1,
        SourceStatus::NoItem => 2,
        SourceStatus::NotCollected => 3,
        SourceStatus::Failing => 4,
    };
    Freshness {
        state: if state_rank(b.state) > state_rank(a.state) { b.state } else { a.state },
        source_status: if status_rank(b.source_status) > status_rank(a.source_status) {
            b.source_status
        } else {
            a.source_status
        },
        ..older
    }
}

fn parking_summary(
    snapshot: &Snapshot,
    park: &ParkData,
    lang: Lang,
    now: Timestamp,
) -> v2::ParkingSummary {
    let statuses: Vec<v2::LotStatus> =
        park.lots.iter().map(|lot| lot_status(snapshot, park, lot, lang, now)).collect();
    let reporting: Vec<&v2::LotStatus> =
        statuses.iter().filter(|status| status.available.is_some()).collect();
    let available = (!reporting.is_empty())
        .then(|| reporting.iter().filter_map(|status| status.available).sum());
    let capacities: Vec<u32> = statuses.iter().filter_map(|status| status.capacity).collect();
    let capacity = (!capacities.is_empty()).then(|| capacities.iter().sum());
    // The summary's evidence is that of its reporting lots; with none reporting, that of the source itself.
    let freshness = if reporting.is_empty() {
        let source = SourceId::ParkingPortal;
        Evidence {
            source,
            health: snapshot.source(source.as_str()),
            present: false,
            observed_at: None,
            fetched_at: None,
            not_linked: false,
        }
        .assess(now)
    } else {
        reporting.iter().map(|status| status.freshness.clone()).reduce(worse).expect("non-empty")
    };
    v2::ParkingSummary {
        available,
        capacity,
        lots_reporting: reporting.len() as u32,
        lots_total: park.lots.len() as u32,
        freshness,
    }
}

fn congestion_now(
    snapshot: &Snapshot,
    park: &ParkData,
    lang: Lang,
    now: Timestamp,
) -> v2::CongestionNow {
    let source = SourceId::SeoulCitydata;
    let row = park.congestion.as_ref();
    let freshness = Evidence {
        source,
        health: snapshot.source(source.as_str()),
        present: row.is_some(),
        observed_at: row.map(|row| row.observed_at),
        fetched_at: row.map(|row| row.fetched_at),
        not_linked: false,
    }
    .assess(now);
    v2::CongestionNow {
        level: row.and_then(|row| CongestionLevel::from_wire(&row.level)),
        message: row
            .and_then(|row| row.message_ko.as_deref())
            .map(|message| text(snapshot, message, lang)),
        population_min: row.and_then(|row| row.population_min),
        population_max: row.and_then(|row| row.population_max),
        freshness,
    }
}

fn weather_now(snapshot: &Snapshot, park: &ParkData, now: Timestamp) -> v2::WeatherNow {
    let row = park.weather.as_ref();
    let source = row.map_or(SourceId::SeoulCitydata, |row| open::<SourceId>(&row.source));
    let freshness = Evidence {
        source,
        health: snapshot.source(source.as_str()),
        present: row.is_some(),
        observed_at: row.map(|row| row.observed_at),
        fetched_at: row.map(|row| row.fetched_at),
        not_linked: false,
    }
    .assess(now);
    v2::WeatherNow {
        temperature_c: row.and_then(|row| row.temperature_c),
        precipitation: row.and_then(|row| row.precipitation.as_deref()).map(open),
        sky: row.and_then(|row| row.sky.as_deref()).map(open),
        rain_chance_percent: row.and_then(|row| row.rain_chance_percent),
        pm10: row.and_then(|row| row.pm10),
        pm25: row.and_then(|row| row.pm25),
        freshness,
    }
}

/// Freshness of a list source (events, notices), whose items carry no observation time of their own.
fn list_freshness(
    snapshot: &Snapshot,
    source: SourceId,
    has_items: bool,
    now: Timestamp,
) -> Freshness {
    let health = snapshot.source(source.as_str());
    Evidence {
        source,
        health,
        present: has_items,
        observed_at: None,
        fetched_at: health.and_then(|health| health.last_success_at),
        not_linked: false,
    }
    .assess(now)
}

fn event_status(event: &crate::snapshot::EventRow, today: &str) -> v2::EventStatus {
    if event.cancelled_at.is_some() {
        v2::EventStatus::Cancelled
    } else if event.starts_on.as_str() > today {
        v2::EventStatus::Scheduled
    } else if event.ends_on.as_str() < today {
        v2::EventStatus::Ended
    } else {
        v2::EventStatus::Ongoing
    }
}

fn events(snapshot: &Snapshot, park: &ParkData, lang: Lang, now: Timestamp) -> v2::EventList {
    let today = seoul_today(now);
    let items: Vec<v2::Event> = park
        .events
        .iter()
        .map(|event| v2::Event {
            event_id: event.event_id.clone(),
            title: text(snapshot, &event.title_ko, lang),
            place: event.place_ko.as_deref().map(|place| text(snapshot, place, lang)),
            starts_on: event.starts_on.clone(),
            ends_on: event.ends_on.clone(),
            status: event_status(event, &today),
            free: event.free,
            url: event.url.clone(),
            source: open(&event.source),
        })
        .collect();
    let freshness = list_freshness(snapshot, SourceId::SeoulCulturalEvents, !items.is_empty(), now);
    v2::EventList { items, freshness }
}

fn events_today(snapshot: &Snapshot, park: &ParkData, now: Timestamp) -> v2::CountWithFreshness {
    let today = seoul_today(now);
    let source = SourceId::SeoulCulturalEvents;
    let ever_succeeded =
        snapshot.source(source.as_str()).is_some_and(|health| health.last_success_at.is_some());
    let ongoing = park
        .events
        .iter()
        .filter(|event| event_status(event, &today) == v2::EventStatus::Ongoing)
        .count() as u32;
    v2::CountWithFreshness {
        count: ever_succeeded.then_some(ongoing),
        freshness: list_freshness(snapshot, source, ongoing > 0, now),
    }
}

fn notices(snapshot: &Snapshot, park: &ParkData, lang: Lang, now: Timestamp) -> v2::NoticeList {
    let items: Vec<v2::Notice> = park
        .notices
        .iter()
        .map(|notice| v2::Notice {
            notice_id: notice.notice_id.clone(),
            kind: open(&notice.kind),
            title: text(snapshot, &notice.title_ko, lang),
            starts_at: notice.starts_at,
            ends_at: notice.ends_at,
            url: notice.url.clone(),
            source: open(&notice.source),
        })
        .collect();
    let freshness = list_freshness(snapshot, SourceId::HangangNotices, !items.is_empty(), now);
    v2::NoticeList { items, freshness }
}

fn active_notices(snapshot: &Snapshot, park: &ParkData, now: Timestamp) -> v2::CountWithFreshness {
    let source = SourceId::HangangNotices;
    let ever_succeeded =
        snapshot.source(source.as_str()).is_some_and(|health| health.last_success_at.is_some());
    let active = park
        .notices
        .iter()
        .filter(|notice| is_active(notice.starts_at, notice.ends_at, now))
        .count() as u32;
    // Operator notices count even before the notice board was ever read: they are known facts.
    let count = (ever_succeeded || active > 0).then_some(active);
    v2::CountWithFreshness { count, freshness: list_freshness(snapshot, source, active > 0, now) }
}

fn park_reference(park: &ParkData, lang: Lang) -> v2::ParkReference {
    v2::ParkReference {
        park_id: park.park_id.clone(),
        name: name(&park.names, &park.name_ko, lang),
        name_ko: park.name_ko.clone(),
        short_name: name(
            &park.short_names,
            park.short_names.get("ko").map_or(&park.name_ko, |n| n),
            lang,
        ),
        center: coordinates(park.center),
        lots: park
            .lots
            .iter()
            .map(|lot| v2::LotReference {
                lot_id: lot.lot_id.clone(),
                name: name(&lot.names, &lot.name_ko, lang),
                name_ko: lot.name_ko.clone(),
                capacity: lot_capacity(lot),
                entrance: coordinates(lot.entrance.unwrap_or(park.center)),
            })
            .collect(),
    }
}

/// `GET /v2/home-summary`.
pub fn home_summary(
    snapshot: &Snapshot,
    lang: Lang,
    now: Timestamp,
    served_from: ServedFrom,
) -> v2::HomeSummary {
    v2::HomeSummary {
        generated_at: snapshot.built_at,
        served_from,
        lang,
        parks: snapshot
            .parks
            .iter()
            .map(|park| v2::HomePark {
                park_id: park.park_id.clone(),
                name: name(&park.names, &park.name_ko, lang),
                parking: parking_summary(snapshot, park, lang, now),
                congestion: congestion_now(snapshot, park, lang, now),
                weather: weather_now(snapshot, park, now),
                events_today: events_today(snapshot, park, now),
                active_notices: active_notices(snapshot, park, now),
                closed: park_closed(park, now),
            })
            .collect(),
    }
}

/// `GET /v1/home-summary`: the frozen shape, derived from the same facts.
pub fn home_summary_v1(snapshot: &Snapshot, lang: Lang, now: Timestamp) -> v1::HomeSummary {
    let v1_level = |level: CongestionLevel| match level {
        CongestionLevel::Relaxed => v1::CongestionLevel::Relaxed,
        CongestionLevel::Normal => v1::CongestionLevel::Normal,
        CongestionLevel::SlightlyCrowded => v1::CongestionLevel::SlightlyCrowded,
        CongestionLevel::Crowded => v1::CongestionLevel::Crowded,
    };
    v1::HomeSummary {
        generated_at: snapshot.built_at,
        parks: snapshot
            .parks
            .iter()
            .map(|park| {
                let parking = parking_summary(snapshot, park, lang, now);
                let congestion = congestion_now(snapshot, park, lang, now);
                v1::Park {
                    park_id: park.park_id.clone(),
                    name: name(&park.names, &park.name_ko, lang),
                    parking: v1::Parking {
                        available: parking.available,
                        capacity: parking.capacity,
                        updated_at: parking.freshness.observed_at,
                        is_stale: parking.freshness.state != FreshnessState::Fresh,
                    },
                    congestion: v1::Congestion {
                        level: congestion.level.map(v1_level),
                        updated_at: congestion.freshness.observed_at,
                        is_stale: congestion.freshness.state != FreshnessState::Fresh,
                    },
                }
            })
            .collect(),
    }
}

/// `GET /v2/parks`.
pub fn park_list(snapshot: &Snapshot, lang: Lang, served_from: ServedFrom) -> v2::ParkList {
    v2::ParkList {
        generated_at: snapshot.built_at,
        served_from,
        lang,
        parks: snapshot.parks.iter().map(|park| park_reference(park, lang)).collect(),
    }
}

/// `GET /v2/parks/{park_id}`; `None` for an unknown park.
pub fn park_detail(
    snapshot: &Snapshot,
    park_id: &str,
    lang: Lang,
    now: Timestamp,
    served_from: ServedFrom,
) -> Option<v2::ParkDetail> {
    let park = snapshot.park(park_id)?;
    Some(v2::ParkDetail {
        generated_at: snapshot.built_at,
        served_from,
        lang,
        park: park_reference(park, lang),
        closed: park_closed(park, now),
        lots: park.lots.iter().map(|lot| lot_status(snapshot, park, lot, lang, now)).collect(),
        congestion: congestion_now(snapshot, park, lang, now),
        congestion_forecast: park_forecast_summary(park, now),
        weather: weather_now(snapshot, park, now),
        events: events(snapshot, park, lang, now),
        notices: notices(snapshot, park, lang, now),
        facilities: park
            .facilities
            .iter()
            .map(|facility| v2::Facility {
                facility_id: facility.facility_id.clone(),
                kind: open(&facility.kind),
                name: name(&facility.names, &facility.name_ko, lang),
                location: coordinates(facility.location),
            })
            .collect(),
        transit: park
            .transit
            .iter()
            .map(|stop| v2::TransitStop {
                stop_id: stop.stop_id.clone(),
                kind: open(&stop.kind),
                name: name(&stop.names, &stop.name_ko, lang),
                lines: stop.lines.clone(),
                walk_minutes: stop.walk_minutes,
                location: coordinates(stop.location),
            })
            .collect(),
    })
}

/// Adjusts a stored forecast for what is true at serve time: past targets are dropped; a forecast or an
/// observation that has gone stale since lowers confidence and says `source_stale`.
fn serve_time_reasons(stored: &[String], stale: bool) -> Vec<ReasonCode> {
    let mut reasons: Vec<ReasonCode> = stored.iter().map(|reason| open(reason)).collect();
    if stale && !reasons.contains(&ReasonCode::SourceStale) {
        reasons.push(ReasonCode::SourceStale);
    }
    reasons
}

/// `GET /v2/lots/{lot_id}/forecast`; `None` for an unknown lot.
pub fn lot_forecast(
    snapshot: &Snapshot,
    lot_id: &str,
    now: Timestamp,
    served_from: ServedFrom,
) -> Option<v2::LotForecast> {
    let (_, lot) = snapshot.lot(lot_id)?;
    let based_on = lot_evidence(snapshot, lot).assess(now);
    let capacity = lot_capacity(lot);
    let Some(stored) = &lot.forecast else {
        let reason =
            if lot.latest.is_none() { ReasonCode::NoRecentData } else { ReasonCode::FewHistory };
        return Some(v2::LotForecast {
            generated_at: snapshot.built_at,
            served_from,
            lot_id: lot.lot_id.clone(),
            issued_at: None,
            based_on,
            capacity,
            horizons: Vec::new(),
            confidence: None,
            reasons: vec![reason],
            accuracy: None,
        });
    };
    let stale = freshness::state(SourceId::HangangjariForecast, Some(stored.issued_at), now)
        != FreshnessState::Fresh
        || based_on.state != FreshnessState::Fresh;
    let adjust = |confidence: Confidence| if stale { confidence.lowered() } else { confidence };
    let horizons: Vec<v2::LotForecastHorizon> = stored
        .horizons
        .iter()
        .filter(|horizon| horizon.target_at > now)
        .map(|horizon| v2::LotForecastHorizon {
            confidence: adjust(horizon.confidence),
            ..horizon.clone()
        })
        .collect();
    let mut reasons = serve_time_reasons(&stored.reasons, stale);
    if horizons.is_empty() && !reasons.contains(&ReasonCode::NoRecentData) {
        reasons.push(ReasonCode::NoRecentData);
    }
    let confidence = (!horizons.is_empty())
        .then(|| stored.confidence.as_deref().and_then(Confidence::from_wire).map(adjust))
        .flatten();
    Some(v2::LotForecast {
        generated_at: snapshot.built_at,
        served_from,
        lot_id: lot.lot_id.clone(),
        issued_at: Some(stored.issued_at),
        based_on,
        capacity: stored.capacity.or(capacity),
        horizons,
        confidence,
        reasons,
        accuracy: stored.accuracy.clone(),
    })
}

fn park_forecast_summary(park: &ParkData, now: Timestamp) -> v2::ParkForecastSummary {
    let Some(stored) = &park.forecast else {
        let reason = if park.congestion.is_none() {
            ReasonCode::NoRecentData
        } else {
            ReasonCode::FewHistory
        };
        return v2::ParkForecastSummary {
            issued_at: None,
            hours: Vec::new(),
            confidence: None,
            reasons: vec![reason],
        };
    };
    let stale = freshness::state(SourceId::HangangjariForecast, Some(stored.issued_at), now)
        != FreshnessState::Fresh;
    let adjust = |confidence: Confidence| if stale { confidence.lowered() } else { confidence };
    let hours: Vec<v2::CongestionForecastHour> = stored
        .hours
        .iter()
        .filter(|hour| hour.target_at > now)
        .map(|hour| v2::CongestionForecastHour {
            confidence: adjust(hour.confidence),
            ..hour.clone()
        })
        .collect();
    let mut reasons = serve_time_reasons(&stored.reasons, stale);
    if hours.is_empty() && !reasons.contains(&ReasonCode::NoRecentData) {
        reasons.push(ReasonCode::NoRecentData);
    }
    let confidence = (!hours.is_empty())
        .then(|| stored.confidence.as_deref().and_then(Confidence::from_wire).map(adjust))
        .flatten();
    v2::ParkForecastSummary { issued_at: Some(stored.issued_at), hours, confidence, reasons }
}

/// `GET /v2/parks/{park_id}/forecast`; `None` for an unknown park.
pub fn park_forecast(
    snapshot: &Snapshot,
    park_id: &str,
    now: Timestamp,
    served_from: ServedFrom,
) -> Option<v2::ParkForecast> {
    let park = snapshot.park(park_id)?;
    Some(v2::ParkForecast {
        generated_at: snapshot.built_at,
        served_from,
        park_id: park.park_id.clone(),
        forecast: park_forecast_summary(park, now),
    })
}

fn deeplink_park(park_id: &str) -> String {
    format!("hangangjari://parks/{park_id}")
}

/// `GET /v2/widgets/parking?lot_ids=`: lots in the order asked.
pub fn parking_widget(
    snapshot: &Snapshot,
    lot_ids: &[String],
    lang: Lang,
    now: Timestamp,
    served_from: ServedFrom,
) -> Result<v2::ParkingWidget, UnknownLot> {
    let lots = lot_ids
        .iter()
        .map(|lot_id| {
            let (park, lot) = snapshot.lot(lot_id).ok_or_else(|| UnknownLot(lot_id.clone()))?;
            Ok(v2::WidgetLot {
                park_id: park.park_id.clone(),
                park_short_name: name(
                    &park.short_names,
                    park.short_names.get("ko").map_or(&park.name_ko, |n| n),
                    lang,
                ),
                status: lot_status(snapshot, park, lot, lang, now),
                deeplink: format!("{}/lots/{}", deeplink_park(&park.park_id), lot.lot_id),
            })
        })
        .collect::<Result<Vec<_>, UnknownLot>>()?;
    Ok(v2::ParkingWidget { generated_at: snapshot.built_at, served_from, lang, lots })
}

/// `GET /v2/widgets/park/{park_id}`; `None` for an unknown park.
pub fn park_widget(
    snapshot: &Snapshot,
    park_id: &str,
    lang: Lang,
    now: Timestamp,
    served_from: ServedFrom,
) -> Option<v2::ParkWidget> {
    let park = snapshot.park(park_id)?;
    Some(v2::ParkWidget {
        generated_at: snapshot.built_at,
        served_from,
        lang,
        park_id: park.park_id.clone(),
        short_name: name(
            &park.short_names,
            park.short_names.get("ko").map_or(&park.name_ko, |n| n),
            lang,
        ),
        closed: park_closed(park, now),
        congestion: congestion_now(snapshot, park, lang, now),
        weather: weather_now(snapshot, park, now),
        events_today: events_today(snapshot, park, now).count,
        deeplink: deeplink_park(&park.park_id),
    })
}

/// `GET /v2/status`.
pub fn status(snapshot: &Snapshot, release_id: &str, now: Timestamp) -> v2::Status {
    let sources = UPSTREAM_SOURCES
        .iter()
        .map(|&source| {
            let health = snapshot.source(source.as_str());
            let failing = health.is_some_and(|health| health.consecutive_failures > 0);
            v2::SourceHealth {
                source,
                state: freshness::state(
                    source,
                    health.and_then(|health| health.last_success_at),
                    now,
                ),
                source_status: match health {
                    None => SourceStatus::NotCollected,
                    Some(_) if failing => SourceStatus::Failing,
                    Some(_) => SourceStatus::Ok,
                },
                last_attempt_at: health.map(|health| health.last_attempt_at),
                last_success_at: health.and_then(|health| health.last_success_at),
                consecutive_failures: health.map_or(0, |health| health.consecutive_failures),
                last_error: health
                    .filter(|_| failing)
                    .and_then(|health| health.last_error_class.clone()),
            }
        })
        .collect();
    v2::Status { generated_at: snapshot.built_at, release_id: release_id.to_owned(), sources }
}

impl Snapshot {
    /// The first instant after `now` at which any body rendered from this snapshot would change (a value
    /// crossing a freshness threshold, a notice starting or ending, a forecast target passing, the date
    /// changing in Seoul). Caches of rendered bodies must not outlive it.
    pub fn next_transition(&self, now: Timestamp) -> Option<Timestamp> {
        // Values whose state changes at a threshold after their basis, and instants that matter by themselves.
        let mut bases: Vec<(SourceId, Option<Timestamp>)> = Vec::new();
        let mut instants: Vec<Timestamp> = Vec::new();
        for (source, health) in &self.sources {
            bases.push((open(source), health.last_success_at));
        }
        for park in &self.parks {
            for lot in &park.lots {
                bases.push((
                    SourceId::ParkingPortal,
                    lot.latest.as_ref().map(|latest| latest.observed_at),
                ));
                if let Some(forecast) = &lot.forecast {
                    bases.push((SourceId::HangangjariForecast, Some(forecast.issued_at)));
                    instants.extend(forecast.horizons.iter().map(|horizon| horizon.target_at));
                }
            }
            bases.push((
                SourceId::SeoulCitydata,
                park.congestion.as_ref().map(|row| row.observed_at),
            ));
            if let Some(weather) = &park.weather {
                bases.push((open(&weather.source), Some(weather.observed_at)));
            }
            if let Some(forecast) = &park.forecast {
                bases.push((SourceId::HangangjariForecast, Some(forecast.issued_at)));
                instants.extend(forecast.hours.iter().map(|hour| hour.target_at));
            }
            for notice in &park.notices {
                instants.extend([notice.starts_at, notice.ends_at].into_iter().flatten());
            }
        }
        let mut candidates: Vec<Timestamp> = bases
            .into_iter()
            .filter_map(|(source, basis)| freshness::next_transition(source, basis, now))
            .chain(instants.into_iter().filter(|&instant| instant > now))
            .collect();
        // Midnight in Seoul: "today" changes for events.
        let seoul = jiff::tz::TimeZone::fixed(jiff::tz::offset(9));
        let tomorrow = now
            .as_jiff()
            .to_zoned(seoul.clone())
            .date()
            .tomorrow()
            .ok()
            .and_then(|date| date.to_zoned(seoul).ok());
        candidates.extend(tomorrow.map(|midnight| Timestamp::from_jiff(midnight.timestamp())));
        candidates.into_iter().min()
    }
}
