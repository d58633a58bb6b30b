//! `GET /v2/home-summary`, its frozen v1 shape, and `GET /v2/parks`.

use contracts::{
    Timestamp,
    freshness::{FreshnessState, ServedFrom},
    v1,
    v2::{self, CongestionLevel, Lang},
};

use super::{
    context::Render,
    values::{
        active_notices, closure, congestion_now, events_today, park_reference, parking_summary,
        weather_now,
    },
};
use crate::snapshot::Snapshot;

/// `GET /v2/home-summary`.
pub fn home_summary(
    snapshot: &Snapshot,
    lang: Lang,
    now: Timestamp,
    served_from: ServedFrom,
) -> v2::HomeSummary {
    let r = Render::new(snapshot, lang, now);
    let parks = snapshot
        .parks
        .iter()
        .map(|park| {
            let closure = closure(&r, park);
            v2::HomePark {
                park_id: park.park_id.clone(),
                name: r.name(&park.names, &park.name_ko),
                parking: parking_summary(&r, park),
                congestion: congestion_now(&r, park),
                weather: weather_now(&r, park),
                events_today: events_today(&r, park),
                active_notices: active_notices(&r, park),
                closed: closure.closed == Some(true),
                closure,
            }
        })
        .collect();
    v2::HomeSummary {
        generated_at: snapshot.built_at,
        served_from,
        valid_until: r.valid_until(),
        lang,
        parks,
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
    let r = Render::new(snapshot, lang, now);
    v1::HomeSummary {
        generated_at: snapshot.built_at,
        parks: snapshot
            .parks
            .iter()
            .map(|park| {
                let parking = parking_summary(&r, park);
                let congestion = congestion_now(&r, park);
                v1::Park {
                    park_id: park.park_id.clone(),
                    name: r.name(&park.names, &park.name_ko),
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
    let r = Render::new(snapshot, lang, snapshot.built_at);
    v2::ParkList {
        generated_at: snapshot.built_at,
        served_from,
        // Reference data changes only with a new snapshot.
        valid_until: None,
        lang,
        parks: snapshot.parks.iter().map(|park| park_reference(&r, park)).collect(),
    }
}
