//! `GET /v2/status`: per-source health and the release this deployment runs; read by the smoke check.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    enums::open_enum,
    example::{Example, example_time},
    freshness::{FreshnessState, SourceId, SourceStatus},
};

/// Health of every upstream source and the running release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    pub generated_at: Timestamp,
    /// The earliest instant at which this body changes by time alone (a source's last success turning stale or
    /// expired); `null` when nothing in it does.
    pub valid_until: Option<Timestamp>,
    /// The `RELEASE_ID` this api process was started with.
    pub release_id: String,
    pub sources: Vec<SourceHealth>,
}

/// One upstream source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SourceHealth {
    pub source: SourceId,
    /// Age of the last successful collection against the source's thresholds.
    pub state: FreshnessState,
    /// `ok` when the last successful collection delivered items, `no_item` when it succeeded but carried none
    /// (Seoul's `INFO-200`), `failing` while whole collections fail, `not_collected` before the first. A source
    /// collected per park whose collection failed only for some parks is `ok` with those in `failing_parks`.
    pub source_status: SourceStatus,
    /// When `state` turns `stale`; `null` when the source has never succeeded or does not age.
    pub stale_at: Option<Timestamp>,
    /// When `state` turns `expired`; `null` under the same conditions as `stale_at`.
    pub expires_at: Option<Timestamp>,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    /// Class of the last failure (`timeout`, `http_status`, `schema_drift`, …); `null` after a success.
    pub last_error: Option<String>,
    /// Parks whose part of the collection (a region page, an area) is failing while other parts succeed;
    /// their values say `failing`. Empty when every part answered or the source is collected as one list.
    pub failing_parks: Vec<String>,
    /// Impossible values the last successful collection carried, and which items they concerned.
    pub anomalies: Vec<SourceAnomaly>,
}

open_enum! {
    /// A kind of impossible value a source delivered.
    pub enum AnomalyKind {
        /// More free spaces than the lot has; the value shown was lowered to capacity.
        AvailableAboveCapacity => "available_above_capacity",
    }
}

/// Impossible values of one kind in a source's last successful collection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SourceAnomaly {
    pub kind: AnomalyKind,
    /// How many values were affected.
    pub count: u32,
    /// The items (lot ids) they concerned.
    pub items: Vec<String>,
}

impl Example for Status {
    fn example() -> Self {
        Status {
            generated_at: example_time(0),
            valid_until: Some(example_time(546)),
            release_id: "2026.06.14-1-3f2a9c1".into(),
            sources: vec![
                SourceHealth {
                    source: SourceId::ParkingPortal,
                    state: FreshnessState::Fresh,
                    source_status: SourceStatus::Ok,
                    stale_at: Some(example_time(546)),
                    expires_at: Some(example_time(1_746)),
                    last_attempt_at: Some(example_time(-55)),
                    last_success_at: Some(example_time(-55)),
                    consecutive_failures: 0,
                    last_error: None,
                    failing_parks: vec!["ichon".into()],
                    anomalies: vec![SourceAnomaly {
                        kind: AnomalyKind::AvailableAboveCapacity,
                        count: 1,
                        items: vec!["ichon-1".into()],
                    }],
                },
                SourceHealth {
                    source: SourceId::KmaForecast,
                    state: FreshnessState::Stale,
                    source_status: SourceStatus::Failing,
                    stale_at: Some(example_time(5_401)),
                    expires_at: Some(example_time(19_801)),
                    last_attempt_at: Some(example_time(-200)),
                    last_success_at: Some(example_time(-9_000)),
                    consecutive_failures: 3,
                    last_error: Some("quota".into()),
                    failing_parks: Vec::new(),
                    anomalies: Vec::new(),
                },
            ],
        }
    }
}
