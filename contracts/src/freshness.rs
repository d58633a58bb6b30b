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
