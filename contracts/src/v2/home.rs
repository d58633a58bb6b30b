//! `GET /v2/home-summary`: the first screen, one entry per park with parking, congestion, weather, today's
//! events and active notices, each with its own freshness.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    example::{Example, example_time},
    freshness::{Freshness, FreshnessState, ServedFrom, SourceId, SourceStatus},
    v2::{Closure, CongestionNow, Lang, WeatherNow},
};

/// The first screen of the app; also the widgets' fallback when their own snapshot is unavailable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HomeSummary {
    /// When this body was built (for a cached body: when the cached build was made).
    pub generated_at: Timestamp,
    pub served_from: ServedFrom,
    /// The earliest instant at which this body changes by time alone (a value turning stale or expired, a
    /// notice starting or ending, the day changing in Seoul); `null` when nothing in it ever does. A body kept
    /// for later display is current until then; after it, re-judge each value from its `stale_at` and
    /// `expires_at`, or fetch again.
    pub valid_until: Option<Timestamp>,
    pub lang: Lang,
    pub parks: Vec<HomePark>,
}

/// One park on the first screen.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HomePark {
    pub park_id: String,
    pub name: String,
    pub parking: ParkingSummary,
    pub congestion: CongestionNow,
    pub weather: WeatherNow,
    pub events_today: CountWithFreshness,
    pub active_notices: CountWithFreshness,
    /// An active closure of the whole park (e.g. a flood warning), shown before anything else. `false` also
    /// when nothing is known: prefer `closure`, which says so.
    pub closed: bool,
    /// Whether the park is closed, with its evidence (`closed: null` when unknown).
    pub closure: Closure,
}

/// Parking across all lots of a park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkingSummary {
    /// Free spaces summed over the lots that reported; `null` when none did.
    pub available: Option<u32>,
    /// Marked spaces summed over all lots with a known capacity.
    pub capacity: Option<u32>,
    /// Lots whose value is known (fresh or not).
    pub lots_reporting: u32,
    pub lots_total: u32,
    /// The oldest evidence among the lots that reported, so the sum is never fresher than its parts.
    pub freshness: Freshness,
}

/// A count of items from a source, with that source's freshness.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CountWithFreshness {
    /// `null` when the source has never been read successfully (unknown, not zero).
    pub count: Option<u32>,
    pub freshness: Freshness,
}

impl Example for HomeSummary {
    fn example() -> Self {
        HomeSummary {
            generated_at: example_time(0),
            served_from: ServedFrom::HotCache,
            valid_until: Some(example_time(541)),
            lang: Lang::En,
            parks: vec![HomePark::example()],
        }
    }
}

impl Example for HomePark {
    fn example() -> Self {
        HomePark {
            park_id: "yeouido".into(),
            name: "Yeouido Hangang Park".into(),
            parking: ParkingSummary {
                available: Some(412),
                capacity: Some(2_497),
                lots_reporting: 5,
                lots_total: 5,
                freshness: Freshness {
                    observed_at: Some(example_time(-60)),
                    fetched_at: Some(example_time(-55)),
                    source: SourceId::ParkingPortal,
                    state: FreshnessState::Fresh,
                    source_status: SourceStatus::Ok,
                    stale_at: Some(example_time(541)),
                    expires_at: Some(example_time(1741)),
                    notes: Vec::new(),
                },
            },
            congestion: CongestionNow::example(),
            weather: WeatherNow::example(),
            events_today: CountWithFreshness {
                count: Some(2),
                freshness: Freshness {
                    observed_at: None,
                    fetched_at: Some(example_time(-1_800)),
                    source: SourceId::SeoulCulturalEvents,
                    state: FreshnessState::Fresh,
                    source_status: SourceStatus::Ok,
                    stale_at: Some(example_time(19_801)),
                    expires_at: Some(example_time(171_001)),
                    notes: Vec::new(),
                },
            },
            active_notices: CountWithFreshness {
                count: Some(0),
                freshness: Freshness {
                    observed_at: None,
                    fetched_at: Some(example_time(-3_600)),
                    source: SourceId::HangangNotices,
                    state: FreshnessState::Fresh,
                    source_status: SourceStatus::NoItem,
                    stale_at: Some(example_time(1)),
                    expires_at: Some(example_time(18_001)),
                    notes: Vec::new(),
                },
            },
            closed: false,
            closure: Closure::example(),
        }
    }
}
