//! `GET /v2/status`: per-source health and the release this deployment runs; read by the smoke check.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    example::{Example, example_time},
    freshness::{FreshnessState, SourceId, SourceStatus},
};

/// Health of every upstream source and the running release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    pub generated_at: Timestamp,
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
    pub source_status: SourceStatus,
    pub last_attempt_at: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    /// Class of the last failure (`timeout`, `http_status`, `schema_drift`, …); `null` after a success.
    pub last_error: Option<String>,
}

impl Example for Status {
    fn example() -> Self {
        Status {
            generated_at: example_time(0),
            release_id: "2026.06.14-1-3f2a9c1".into(),
            sources: vec![
                SourceHealth {
                    source: SourceId::ParkingPortal,
                    state: FreshnessState::Fresh,
                    source_status: SourceStatus::Ok,
                    last_attempt_at: Some(example_time(-55)),
                    last_success_at: Some(example_time(-55)),
                    consecutive_failures: 0,
                    last_error: None,
                },
                SourceHealth {
                    source: SourceId::KmaForecast,
                    state: FreshnessState::Stale,
                    source_status: SourceStatus::Failing,
                    last_attempt_at: Some(example_time(-200)),
                    last_success_at: Some(example_time(-9_000)),
                    consecutive_failures: 3,
                    last_error: Some("quota".into()),
                },
            ],
        }
    }
}
