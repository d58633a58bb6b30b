//! `GET /v2/parks/{park_id}`: everything about one park.

use contracts::{
    Timestamp,
    freshness::ServedFrom,
    v2::{self, Lang},
};

use super::{
    context::Render,
    forecast::park_forecast_summary,
    values::{
        closure, congestion_now, coordinates, events, lot_status, notices, park_reference,
        weather_now,
    },
};
use crate::snapshot::Snapshot;

/// `GET /v2/parks/{park_id}`; `None` for an unknown park.
pub fn park_detail(
    snapshot: &Snapshot,
    park_id: &str,
    lang: Lang,
    now: Timestamp,
    served_from: ServedFrom,
) -> Option<v2::ParkDetail> {
    let park = snapshot.park(park_id)?;
    let r = Render::new(snapshot, lang, now);
    let closure = closure(&r, park);
    let mut detail = v2::ParkDetail {
        generated_at: snapshot.built_at,
        served_from,
        valid_until: None,
        lang,
        park: park_reference(&r, park),
        closed: closure.closed == Some(true),
        closure,
        lots: park.lots.iter().map(|lot| lot_status(&r, park, lot)).collect(),
        congestion: congestion_now(&r, park),
        congestion_forecast: park_forecast_summary(&r, park),
        weather: weather_now(&r, park),
        events: events(&r, park),
        notices: notices(&r, park),
        facilities: park
            .facilities
            .iter()
            .map(|facility| v2::Facility {
                facility_id: facility.facility_id.clone(),
                kind: facility.kind,
                name: r.name(&facility.names, &facility.name_ko),
                location: coordinates(facility.location),
            })
            .collect(),
        transit: park
            .transit
            .iter()
            .map(|stop| v2::TransitStop {
                stop_id: stop.stop_id.clone(),
                kind: stop.kind,
                name: r.name(&stop.names, &stop.name_ko),
                lines: stop.lines.clone(),
                walk_minutes: stop.walk_minutes,
                location: coordinates(stop.location),
            })
            .collect(),
    };
    detail.valid_until = r.valid_until();
    Some(detail)
}
