//! The values several screens show: a lot's status, a park's parking summary, congestion, weather, events,
//! notices and whether the park is closed, each with the evidence behind it.

use contracts::{
    Timestamp,
    freshness::{Freshness, FreshnessState, SourceId, SourceStatus},
    v2::{self, LotState, NoticeKind},
};
use jiff::civil::Date;

use super::context::Render;
use crate::{
    freshness::Evidence,
    snapshot::{EventRow, LotData, NoticeRow, ParkData},
};

pub(crate) fn coordinates((lat, lng): (f64, f64)) -> v2::Coordinates {
    v2::Coordinates { lat, lng }
}

/// The reliable closures of the whole park in force now (every reliable closure's edges are noted).
fn park_closures<'p>(r: &Render<'_>, park: &'p ParkData) -> Vec<&'p NoticeRow> {
    park.notices
        .iter()
        .filter(|notice| notice.kind == NoticeKind::ParkClosure && notice.reliable)
        .filter(|notice| r.is_active(notice.starts_at, notice.ends_at))
        .collect()
}

fn lot_closed(r: &Render<'_>, park: &ParkData, lot: &LotData) -> bool {
    let park_closed = !park_closures(r, park).is_empty();
    let lot_closures = park
        .notices
        .iter()
        .filter(|notice| {
            notice.kind == NoticeKind::LotClosure
                && notice.reliable
                && notice.lot_id.as_deref() == Some(lot.lot_id.as_str())
        })
        .filter(|notice| r.is_active(notice.starts_at, notice.ends_at))
        .count();
    park_closed || lot_closures > 0
}

/// Whether the park is closed, and the evidence for the answer.
pub(crate) fn closure(r: &Render<'_>, park: &ParkData) -> v2::Closure {
    let board = SourceId::HangangNotices;
    let closures = park_closures(r, park);
    // An operator's closure is known without the board; a reliable board closure ages with the board.
    if let Some(notice) =
        closures.iter().find(|notice| notice.source == SourceId::Operator).or(closures.first())
    {
        let source = notice.source;
        let freshness = if source == board {
            list_freshness(r, board, true)
        } else {
            r.assess(Evidence {
                source,
                health: None,
                present: true,
                observed_at: notice.starts_at,
                fetched_at: None,
                not_linked: false,
                clamped: false,
            })
        };
        return v2::Closure { closed: Some(true), freshness };
    }
    let freshness = list_freshness(r, board, false);
    let board_read = r.health(board, None).is_some_and(|health| health.last_success_at.is_some());
    v2::Closure { closed: board_read.then_some(false), freshness }
}

fn lot_evidence(r: &Render<'_>, park: &ParkData, lot: &LotData) -> Evidence {
    let source = SourceId::ParkingPortal;
    let latest = lot.latest.as_ref();
    Evidence {
        source,
        health: r.health(source, Some(&park.park_id)),
        present: latest.is_some(),
        observed_at: latest.map(|latest| latest.observed_at),
        fetched_at: latest.map(|latest| latest.fetched_at),
        not_linked: latest.is_some_and(|latest| latest.not_linked),
        clamped: latest.is_some_and(|latest| latest.reported_available.is_some()),
    }
}

/// The freshness of the observation a lot's forecast starts from.
pub(crate) fn lot_based_on(r: &Render<'_>, park: &ParkData, lot: &LotData) -> Freshness {
    r.assess(lot_evidence(r, park, lot))
}

pub(crate) fn lot_capacity(lot: &LotData) -> Option<u32> {
    lot.latest.as_ref().and_then(|latest| latest.capacity).or(lot.curated_capacity)
}

pub(crate) fn lot_status(r: &Render<'_>, park: &ParkData, lot: &LotData) -> v2::LotStatus {
    let freshness = r.assess(lot_evidence(r, park, lot));
    let live = lot.latest.as_ref().filter(|latest| !latest.not_linked);
    let available = live.and_then(|latest| latest.available);
    let capacity = lot_capacity(lot);
    let state = if lot_closed(r, park, lot) {
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
        name: r.name(&lot.names, &lot.name_ko),
        available,
        capacity,
        state,
        entrance: coordinates(lot.entrance.unwrap_or(park.center)),
        freshness,
        reported_available: live.and_then(|latest| latest.reported_available),
    }
}

/// Combines the evidence of the parts of a sum, so it is never shown fresher or healthier than its weakest
/// part: the worst state and status, the oldest observation, and the earliest transitions.
pub(crate) fn worse(a: Freshness, b: Freshness) -> Freshness {
    let state_rank = |state: FreshnessState| match state {
        FreshnessState::Fresh => 0,
        FreshnessState::Stale => 1,
        FreshnessState::Expired => 2,
        FreshnessState::Unknown => 3,
    };
    let status_rank = |status: SourceStatus| match status {
        SourceStatus::Ok => 0,
        SourceStatus::NotLinked => 1,
        SourceStatus::NoItem => 2,
        SourceStatus::NotCollected => 3,
        SourceStatus::Failing => 4,
    };
    let earliest = |x: Option<Timestamp>, y: Option<Timestamp>| match (x, y) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    let state = if state_rank(b.state) > state_rank(a.state) { b.state } else { a.state };
    let source_status = if status_rank(b.source_status) > status_rank(a.source_status) {
        b.source_status
    } else {
        a.source_status
    };
    // A sum of unknown age stays unknown: nothing in it can turn stale.
    let (stale_at, expires_at) = if state == FreshnessState::Unknown {
        (None, None)
    } else {
        (earliest(a.stale_at, b.stale_at), earliest(a.expires_at, b.expires_at))
    };
    let mut notes = a.notes.clone();
    notes.extend(b.notes.iter().copied().filter(|note| !a.notes.contains(note)));
    let older = match (a.observed_at, b.observed_at) {
        (Some(x), Some(y)) if y < x => b,
        (None, Some(_)) => b,
        _ => a,
    };
    Freshness { state, source_status, stale_at, expires_at, notes, ..older }
}

pub(crate) fn parking_summary(r: &Render<'_>, park: &ParkData) -> v2::ParkingSummary {
    let statuses: Vec<v2::LotStatus> =
        park.lots.iter().map(|lot| lot_status(r, park, lot)).collect();
    let reporting: Vec<&v2::LotStatus> =
        statuses.iter().filter(|status| status.available.is_some()).collect();
    let available = (!reporting.is_empty())
        .then(|| reporting.iter().filter_map(|status| status.available).sum());
    let capacities: Vec<u32> = statuses.iter().filter_map(|status| status.capacity).collect();
    let capacity = (!capacities.is_empty()).then(|| capacities.iter().sum());
    // The summary's evidence is that of its reporting lots; with none reporting, that of the source itself.
    let freshness = if reporting.is_empty() {
        let source = SourceId::ParkingPortal;
        r.assess(Evidence {
            source,
            health: r.health(source, Some(&park.park_id)),
            present: false,
            observed_at: None,
            fetched_at: None,
            not_linked: false,
            clamped: false,
        })
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

pub(crate) fn congestion_now(r: &Render<'_>, park: &ParkData) -> v2::CongestionNow {
    let source = SourceId::SeoulCitydata;
    let row = park.congestion.as_ref();
    let freshness = r.assess(Evidence {
        source,
        health: r.health(source, Some(&park.park_id)),
        present: row.is_some(),
        observed_at: row.map(|row| row.observed_at),
        fetched_at: row.map(|row| row.fetched_at),
        not_linked: false,
        clamped: false,
    });
    v2::CongestionNow {
        level: row.map(|row| row.level),
        message: row.and_then(|row| row.message_ko.as_deref()).map(|message| r.text(message)),
        population_min: row.and_then(|row| row.population_min),
        population_max: row.and_then(|row| row.population_max),
        freshness,
    }
}

pub(crate) fn weather_now(r: &Render<'_>, park: &ParkData) -> v2::WeatherNow {
    let row = park.weather.as_ref();
    let source = row.map_or(SourceId::SeoulCitydata, |row| row.source);
    let freshness = r.assess(Evidence {
        source,
        health: r.health(source, Some(&park.park_id)),
        present: row.is_some(),
        observed_at: row.map(|row| row.observed_at),
        fetched_at: row.map(|row| row.fetched_at),
        not_linked: false,
        clamped: false,
    });
    v2::WeatherNow {
        temperature_c: row.and_then(|row| row.temperature_c),
        precipitation: row.and_then(|row| row.precipitation),
        sky: row.and_then(|row| row.sky),
        rain_chance_percent: row.and_then(|row| row.rain_chance_percent),
        pm10: row.and_then(|row| row.pm10),
        pm25: row.and_then(|row| row.pm25),
        freshness,
    }
}

/// Freshness of a list source (events, notices), whose items carry no observation time of their own.
fn list_freshness(r: &Render<'_>, source: SourceId, has_items: bool) -> Freshness {
    let health = r.health(source, None);
    r.assess(Evidence {
        source,
        health,
        present: has_items,
        observed_at: None,
        fetched_at: health.and_then(|health| health.last_success_at),
        not_linked: false,
        clamped: false,
    })
}

fn event_status(event: &EventRow, today: Date) -> v2::EventStatus {
    if event.cancelled_at.is_some() {
        v2::EventStatus::Cancelled
    } else if event.starts_on > today {
        v2::EventStatus::Scheduled
    } else if event.ends_on < today {
        v2::EventStatus::Ended
    } else {
        v2::EventStatus::Ongoing
    }
}

pub(crate) fn events(r: &Render<'_>, park: &ParkData) -> v2::EventList {
    let today = r.today();
    let items: Vec<v2::Event> = park
        .events
        .iter()
        .map(|event| v2::Event {
            event_id: event.event_id.clone(),
            title: r.text(&event.title_ko),
            place: event.place_ko.as_deref().map(|place| r.text(place)),
            starts_on: event.starts_on.to_string(),
            ends_on: event.ends_on.to_string(),
            status: event_status(event, today),
            free: event.free,
            url: event.url.clone(),
            source: event.source,
        })
        .collect();
    let freshness = list_freshness(r, SourceId::SeoulCulturalEvents, !items.is_empty());
    v2::EventList { items, freshness }
}

pub(crate) fn events_today(r: &Render<'_>, park: &ParkData) -> v2::CountWithFreshness {
    let today = r.today();
    let source = SourceId::SeoulCulturalEvents;
    let ever_succeeded =
        r.health(source, None).is_some_and(|health| health.last_success_at.is_some());
    let ongoing = park
        .events
        .iter()
        .filter(|event| event_status(event, today) == v2::EventStatus::Ongoing)
        .count() as u32;
    v2::CountWithFreshness {
        count: ever_succeeded.then_some(ongoing),
        freshness: list_freshness(r, source, ongoing > 0),
    }
}

pub(crate) fn notices(r: &Render<'_>, park: &ParkData) -> v2::NoticeList {
    let items: Vec<v2::Notice> = park
        .notices
        .iter()
        .map(|notice| v2::Notice {
            notice_id: notice.notice_id.clone(),
            kind: notice.kind,
            title: r.text(&notice.title_ko),
            starts_at: notice.starts_at,
            ends_at: notice.ends_at,
            url: notice.url.clone(),
            source: notice.source,
        })
        .collect();
    let freshness = list_freshness(r, SourceId::HangangNotices, !items.is_empty());
    v2::NoticeList { items, freshness }
}

pub(crate) fn active_notices(r: &Render<'_>, park: &ParkData) -> v2::CountWithFreshness {
    let source = SourceId::HangangNotices;
    let ever_succeeded =
        r.health(source, None).is_some_and(|health| health.last_success_at.is_some());
    let active =
        park.notices.iter().filter(|notice| r.is_active(notice.starts_at, notice.ends_at)).count()
            as u32;
    // Operator notices count even before the notice board was ever read: they are known facts.
    let count = (ever_succeeded || active > 0).then_some(active);
    v2::CountWithFreshness { count, freshness: list_freshness(r, source, active > 0) }
}

pub(crate) fn short_name(r: &Render<'_>, park: &ParkData) -> String {
    r.name(&park.short_names, park.short_names.get("ko").map_or(&park.name_ko, |name| name))
}

pub(crate) fn park_reference(r: &Render<'_>, park: &ParkData) -> v2::ParkReference {
    v2::ParkReference {
        park_id: park.park_id.clone(),
        name: r.name(&park.names, &park.name_ko),
        name_ko: park.name_ko.clone(),
        short_name: short_name(r, park),
        center: coordinates(park.center),
        lots: park
            .lots
            .iter()
            .map(|lot| v2::LotReference {
                lot_id: lot.lot_id.clone(),
                name: r.name(&lot.names, &lot.name_ko),
                name_ko: lot.name_ko.clone(),
                capacity: lot_capacity(lot),
                entrance: coordinates(lot.entrance.unwrap_or(park.center)),
            })
            .collect(),
    }
}
