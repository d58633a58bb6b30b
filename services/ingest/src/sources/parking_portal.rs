//! The parking portal: one region page per park. Each page is that park's share of the run, so a page that
//! fails or comes back without rows fails its park only. A count above the lot's capacity (the portal counts
//! double parking) is clamped to capacity and recorded as an anomaly.

use std::collections::HashMap;

use contracts::{freshness::SourceId, v2::AnomalyKind};
use sqlx::PgPool;
use upstream::parking_portal::{self, PortalRow};

use super::{CollectError, Collector, Context, host_down, parks, parks_not_reached};
use crate::{
    batch::{Anomaly, Batch, LotReading, PartResult},
    outcome::{ErrorClass, Failure},
};

/// The parking portal's region pages.
#[derive(Debug, Default)]
pub struct ParkingPortal;

/// A curated lot as the portal names it.
#[derive(Clone, Debug)]
struct CuratedLot {
    lot_id: String,
    capacity: Option<u32>,
}

async fn lots_by_portal_name(pool: &PgPool) -> Result<HashMap<String, CuratedLot>, sqlx::Error> {
    let rows: Vec<(String, Vec<String>, Option<i32>)> =
        sqlx::query_as("select lot_id, portal_names, capacity from reference.lot")
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .flat_map(|(lot_id, names, capacity)| {
            let lot = CuratedLot { lot_id, capacity: capacity.and_then(|c| u32::try_from(c).ok()) };
            names.into_iter().map(move |name| (parking_portal::normalize_name(&name), lot.clone()))
        })
        .collect())
}

/// One portal row as a reading: the count clamped to the lot's capacity (the page's total, else the curated
/// one), with the anomaly when it was above.
fn reading(row: &PortalRow, lot: &CuratedLot, ctx: &Context) -> (LotReading, Option<Anomaly>) {
    let capacity = row.capacity.or(lot.capacity);
    let (available, anomaly) = match (row.available, capacity) {
        (Some(reported), Some(capacity)) if reported > capacity => (
            Some(capacity),
            Some(Anomaly {
                kind: AnomalyKind::AvailableAboveCapacity,
                item: lot.lot_id.clone(),
                reported,
                stored: capacity,
            }),
        ),
        (available, _) => (available, None),
    };
    let reading = LotReading {
        lot_id: lot.lot_id.clone(),
        // The portal gives no per-lot time: what we fetched now is what it shows now.
        observed_at: ctx.now,
        available,
        capacity: row.capacity,
        not_linked: row.available.is_none(),
        reported_available: anomaly.as_ref().map(|anomaly| anomaly.reported),
    };
    (reading, anomaly)
}

impl Collector for ParkingPortal {
    fn source(&self) -> SourceId {
        SourceId::ParkingPortal
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, CollectError> {
        let parks = parks(&ctx.pool).await?;
        let lot_by_name = lots_by_portal_name(&ctx.pool).await?;
        let mut batch = Batch::default();
        let mut rows_seen = 0;
        for (index, park) in parks.iter().enumerate() {
            let label = format!("parking portal region{}", park.portal_region);
            let url = ctx
                .upstreams
                .parking_portal_url
                .join(&format!("/parking/region/region{}", park.portal_region));
            let page = ctx
                .fetcher
                .get(&url, &label, &[("accept-encoding", "identity")])
                .await
                .and_then(|fetched| {
                    parking_portal::parse_region_page(&String::from_utf8_lossy(&fetched.body))
                })
                .map_err(|failure| {
                    Failure::new(failure.class, format!("{label}: {}", failure.message))
                });
            let rows = match page {
                Ok(rows) => rows,
                Err(failure) => {
                    let stop = host_down(&failure);
                    batch.part(&park.park_id, PartResult::Failed(failure.clone()));
                    if stop {
                        let rest = parks[index + 1..].iter().map(|park| park.park_id.as_str());
                        parks_not_reached(&mut batch, rest, &failure);
                        break;
                    }
                    continue;
                }
            };
            for row in rows {
                rows_seen += 1;
                let Some(lot) = lot_by_name.get(&parking_portal::normalize_name(&row.name)) else {
                    batch.unmapped.push(row.name);
                    continue;
                };
                let (reading, anomaly) = reading(&row, lot, ctx);
                batch.lots.push(reading);
                batch.anomalies.extend(anomaly);
            }
            batch.part(&park.park_id, PartResult::Delivered);
        }
        if batch.lots.is_empty() && rows_seen > 0 {
            return Err(Failure::new(
                ErrorClass::Unmapped,
                format!("none of {rows_seen} lot names is curated"),
            )
            .into());
        }
        Ok(batch.unless_no_park_answered()?)
    }
}
