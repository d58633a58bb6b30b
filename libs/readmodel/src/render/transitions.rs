//! When a cached rendering of a snapshot stops being correct: the earliest change by time alone across every
//! body the snapshot can render.

use contracts::{Timestamp, freshness::SourceId};

use crate::{freshness, snapshot::Snapshot};

impl Snapshot {
    /// The first instant after `now` at which any body rendered from this snapshot would change (a value
    /// crossing a freshness threshold, a notice starting or ending, a forecast target passing, the date
    /// changing in Seoul): never later than any body's own `valid_until`. Caches of rendered bodies must not
    /// outlive it.
    pub fn next_transition(&self, now: Timestamp) -> Option<Timestamp> {
        // Values whose state changes at a threshold after their basis, and instants that matter by themselves.
        let mut bases: Vec<(SourceId, Option<Timestamp>)> = Vec::new();
        let mut instants: Vec<Timestamp> = Vec::new();
        for (&source, health) in &self.sources {
            bases.push((source, health.last_success_at));
            bases.extend(health.parts.values().map(|part| (source, part.last_success_at)));
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
                bases.push((weather.source, Some(weather.observed_at)));
            }
            if let Some(forecast) = &park.forecast {
                bases.push((SourceId::HangangjariForecast, Some(forecast.issued_at)));
                instants.extend(forecast.hours.iter().map(|hour| hour.target_at));
            }
            for notice in &park.notices {
                instants.extend([notice.starts_at, notice.ends_at].into_iter().flatten());
                if notice.source == SourceId::Operator {
                    bases.push((SourceId::Operator, notice.starts_at));
                }
            }
        }
        let mut candidates: Vec<Timestamp> = bases
            .into_iter()
            .filter_map(|(source, basis)| freshness::next_transition(source, basis, now))
            .chain(instants.into_iter().filter(|&instant| instant > now))
            .collect();
        // Midnight in Seoul: "today" changes for events.
        candidates.extend(contracts::seoul::next_midnight(now));
        candidates.into_iter().min()
    }
}
