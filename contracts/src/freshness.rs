//! The evidence every sourced value carries: when the source observed it, when we last fetched it, from which
//! feed, whether it is still current, and whether the feed itself is healthy.
//!
//! "No item for this park" (`source_status: no_item`) and "the source is failing" (`failing`) are different
//! facts and must never be flattened into one "no information". `state` is computed when a response is
//! served, never baked into a cached body.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    enums::{closed_enum, open_enum},
};

closed_enum! {
    /// How old a value is at the moment the response was generated, by its source's thresholds.
    pub enum FreshnessState {
        /// Within the source's normal refresh interval.
        Fresh => "fresh",
        /// Older than it should be; shown with its age, never as current.
        Stale => "stale",
        /// Too old to act on; the app greys it out.
        Expired => "expired",
        /// No observation time is known, so age cannot be judged.
        Unknown => "unknown",
    }
}

closed_enum! {
    /// The health of the feed behind a value, independent of the value's age.
    pub enum SourceStatus {
        /// The last collection succeeded and carried this item.
        Ok => "ok",
        /// The last collection succeeded but the source has no item for this park or lot.
        NoItem => "no_item",
        /// Recent collections failed; any value shown is the last good one.
        Failing => "failing",
        /// The source does not publish this item at all (e.g. a lot without live counting).
        NotLinked => "not_linked",
        /// No collection of this source has finished yet (a fresh deployment): nothing is known, nothing failed.
        NotCollected => "not_collected",
    }
}

closed_enum! {
    /// Where the body came from.
    pub enum ServedFrom {
        /// Built from the database for this request.
        Live => "live",
        /// A recent build reused from the hot cache; freshness states were recomputed for this response.
        HotCache => "hot_cache",
        /// The database could not be read; this is the last successful build, freshness recomputed.
        StaleFallback => "stale_fallback",
    }
}

open_enum! {
    /// The upstream feed a value came from.
    pub enum SourceId {
        /// Hangang integrated parking portal (HTML tables per park).
        ParkingPortal => "parking_portal",
        /// Seoul real-time city data (`citydata`): congestion, weather, events.
        SeoulCitydata => "seoul_citydata",
        /// Seoul cultural events (`culturalEventInfo`).
        SeoulCulturalEvents => "seoul_cultural_events",
        /// Korea Meteorological Administration short-term forecast (`getVilageFcst`).
        KmaForecast => "kma_forecast",
        /// Hangang headquarters notice board.
        HangangNotices => "hangang_notices",
        /// Entered by an operator (urgent closures).
        Operator => "operator",
        /// Curated reference data shipped with the release.
        Curated => "curated",
        /// Computed by our forecast service.
        HangangjariForecast => "hangangjari_forecast",
    }
}

open_enum! {
    /// Something the server did to a value before showing it, so the app can say so.
    pub enum EvidenceNote {
        /// The source reported more free spaces than the lot has (double parking is counted upstream); the
        /// value shown was lowered to the lot's capacity.
        ClampedToCapacity => "clamped_to_capacity",
    }
}

/// How long a source's values stay `fresh`, until when they are `stale` (then `expired`), and how old a value
/// may be for an alert about it to still be worth sending. The one home of these numbers: the read model
/// judges values by them, forecast lowers confidence by them, push suppresses alerts by them, and the README's
/// "Freshness thresholds" table documents them for the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    pub fresh_seconds: i64,
    pub stale_seconds: i64,
    /// `None`: an alert about this source's values is worth sending whatever their age (a cancellation).
    pub alert_seconds: Option<i64>,
}

const MINUTE: i64 = 60;
const HOUR: i64 = 60 * MINUTE;

impl SourceId {
    /// The source's thresholds; `None` for a source whose values never age (an operator's word, curated data).
    pub fn thresholds(self) -> Option<Thresholds> {
        let (fresh_seconds, stale_seconds, alert_seconds) = match self {
            // Polled every 2 minutes; counts change by the minute.
            SourceId::ParkingPortal => (10 * MINUTE, 30 * MINUTE, Some(10 * MINUTE)),
            // Published about 15 minutes late and refreshed every 5: a crossing is still news for 45 minutes.
            SourceId::SeoulCitydata => (30 * MINUTE, 90 * MINUTE, Some(45 * MINUTE)),
            // Issued every 3 hours.
            SourceId::KmaForecast => (4 * HOUR, 8 * HOUR, None),
            // Collected hourly, changes daily.
            SourceId::SeoulCulturalEvents => (6 * HOUR, 48 * HOUR, None),
            // Closures must reach users within the hour.
            SourceId::HangangNotices => (HOUR, 6 * HOUR, None),
            // Recomputed after every ingest cycle.
            SourceId::HangangjariForecast => (20 * MINUTE, HOUR, None),
            SourceId::Operator | SourceId::Curated => return None,
            // A value of a source this build does not know is never current.
            SourceId::Unknown => (0, 0, Some(0)),
        };
        Some(Thresholds { fresh_seconds, stale_seconds, alert_seconds })
    }
}

/// Evidence attached to every sourced value.
///
/// `state` is judged when the body is generated. A body kept for later display (a widget timeline entry) must
/// re-judge it from `stale_at` and `expires_at`: the value is `expired` from `expires_at` on, else `stale` from
/// `stale_at` on, else what `state` says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Freshness {
    /// When the source observed the value (converted from KST); `null` when the source gives no time.
    pub observed_at: Option<Timestamp>,
    /// When we last collected this source successfully; `null` if never.
    pub fetched_at: Option<Timestamp>,
    pub source: SourceId,
    pub state: FreshnessState,
    pub source_status: SourceStatus,
    /// When this value turns `stale` by its source's thresholds (in the past once it has); `null` when it never
    /// will: its age is unknown (`state: unknown`) or its source does not age (an operator's notice).
    pub stale_at: Option<Timestamp>,
    /// When this value turns `expired`; `null` under the same conditions as `stale_at`.
    pub expires_at: Option<Timestamp>,
    /// What the server changed before showing the value (e.g. `clamped_to_capacity`); usually empty.
    pub notes: Vec<EvidenceNote>,
}

impl Freshness {
    /// The state this value has at `at`, judged only from what the body carries: what a client re-evaluating a
    /// kept body computes. Equal to the server's judgement at `at` as long as no new collection happened.
    pub fn state_at(&self, at: Timestamp) -> FreshnessState {
        match (self.stale_at, self.expires_at) {
            (_, Some(expires_at)) if expires_at <= at => FreshnessState::Expired,
            (Some(stale_at), _) if stale_at <= at => FreshnessState::Stale,
            _ => self.state,
        }
    }
}
