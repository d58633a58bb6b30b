//! `GET /v2/status`: every upstream source's health, per park where a source is collected per park.

use contracts::{
    Timestamp,
    freshness::{SourceId, SourceStatus},
    v2,
};

use crate::{
    freshness,
    snapshot::{RunOutcome, Snapshot},
};

/// The upstream sources `/v2/status` reports, in display order.
pub const UPSTREAM_SOURCES: [SourceId; 5] = [
    SourceId::ParkingPortal,
    SourceId::SeoulCitydata,
    SourceId::SeoulCulturalEvents,
    SourceId::KmaForecast,
    SourceId::HangangNotices,
];

/// `GET /v2/status`.
pub fn status(snapshot: &Snapshot, release_id: &str, now: Timestamp) -> v2::Status {
    let mut valid_until: Option<Timestamp> = None;
    let sources = UPSTREAM_SOURCES
        .iter()
        .map(|&source| {
            let health = snapshot.source(source);
            let last_success_at = health.and_then(|health| health.last_success_at);
            let failing = health.is_some_and(|health| health.consecutive_failures > 0);
            // Parks in the order the app lists them.
            let failing_parks: Vec<String> = health
                .map(|health| {
                    snapshot
                        .parks
                        .iter()
                        .filter(|park| {
                            health
                                .parts
                                .get(&park.park_id)
                                .is_some_and(|part| part.consecutive_failures > 0)
                        })
                        .map(|park| park.park_id.clone())
                        .collect()
                })
                .unwrap_or_default();
            let (stale_at, expires_at) = freshness::transitions(source, last_success_at);
            if let Some(next) = freshness::next_transition(source, last_success_at, now) {
                valid_until = Some(valid_until.map_or(next, |until| until.min(next)));
            }
            v2::SourceHealth {
                source,
                state: freshness::state(source, last_success_at, now),
                source_status: match health {
                    None => SourceStatus::NotCollected,
                    Some(_) if failing => SourceStatus::Failing,
                    // It answered, but its last successful collection carried nothing.
                    Some(health) if health.last_outcome == RunOutcome::NoData => {
                        SourceStatus::NoItem
                    }
                    Some(_) => SourceStatus::Ok,
                },
                stale_at,
                expires_at,
                last_attempt_at: health.map(|health| health.last_attempt_at),
                last_success_at,
                consecutive_failures: health.map_or(0, |health| health.consecutive_failures),
                last_error: health
                    .filter(|_| failing || !failing_parks.is_empty())
                    .and_then(|health| health.last_error_class.clone()),
                failing_parks,
                anomalies: health
                    .map(|health| {
                        health
                            .anomalies
                            .iter()
                            .map(|anomaly| v2::SourceAnomaly {
                                kind: anomaly.kind,
                                count: anomaly.items.len() as u32,
                                items: anomaly.items.clone(),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        })
        .collect();
    v2::Status {
        generated_at: snapshot.built_at,
        valid_until,
        release_id: release_id.to_owned(),
        sources,
    }
}
