//! The widgets: `GET /v2/widgets/parking?lot_ids=` and `GET /v2/widgets/park/{park_id}`.

use contracts::{
    Timestamp,
    freshness::ServedFrom,
    v2::{self, Lang},
};

use super::{
    context::Render,
    values::{closure, congestion_now, events_today, lot_status, short_name, weather_now},
};
use crate::snapshot::Snapshot;

/// A lot id in a widget request that no park has.
#[derive(Debug, thiserror::Error)]
#[error("unknown lot `{0}`")]
pub struct UnknownLot(pub String);

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
    let r = Render::new(snapshot, lang, now);
    let lots = lot_ids
        .iter()
        .map(|lot_id| {
            let (park, lot) = snapshot.lot(lot_id).ok_or_else(|| UnknownLot(lot_id.clone()))?;
            Ok(v2::WidgetLot {
                park_id: park.park_id.clone(),
                park_short_name: short_name(&r, park),
                status: lot_status(&r, park, lot),
                deeplink: format!("{}/lots/{}", deeplink_park(&park.park_id), lot.lot_id),
            })
        })
        .collect::<Result<Vec<_>, UnknownLot>>()?;
    Ok(v2::ParkingWidget {
        generated_at: snapshot.built_at,
        served_from,
        valid_until: r.valid_until(),
        lang,
        lots,
    })
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
    let r = Render::new(snapshot, lang, now);
    let closure = closure(&r, park);
    let congestion = congestion_now(&r, park);
    let weather = weather_now(&r, park);
    let events_today = events_today(&r, park).count;
    Some(v2::ParkWidget {
        generated_at: snapshot.built_at,
        served_from,
        valid_until: r.valid_until(),
        lang,
        park_id: park.park_id.clone(),
        short_name: short_name(&r, park),
        closed: closure.closed == Some(true),
        closure,
        congestion,
        weather,
        events_today,
        deeplink: deeplink_park(&park.park_id),
    })
}
