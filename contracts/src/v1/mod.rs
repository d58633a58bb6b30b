//! Version 1 of the app-facing API: **frozen**. Old app builds decode exactly this shape from
//! `GET /v1/home-summary`; nothing here may change. v1 predates per-value freshness objects: each value carries
//! its observation time and an `is_stale` flag, computed at serve time like v2's `state`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    enums::closed_enum,
    example::{Example, example_time},
};

/// `GET /v1/home-summary`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HomeSummary {
    pub generated_at: Timestamp,
    pub parks: Vec<Park>,
}

/// One park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Park {
    pub park_id: String,
    pub name: String,
    pub parking: Parking,
    pub congestion: Congestion,
}

/// Parking summed over the park's lots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Parking {
    /// `null` when no lot reported.
    pub available: Option<u32>,
    pub capacity: Option<u32>,
    /// The oldest observation among the lots summed.
    pub updated_at: Option<Timestamp>,
    /// True when the value is older than the source's freshness threshold (or unknown).
    pub is_stale: bool,
}

closed_enum! {
    /// Congestion level as v1 clients know it.
    pub enum CongestionLevel {
        Relaxed => "relaxed",
        Normal => "normal",
        SlightlyCrowded => "slightly_crowded",
        Crowded => "crowded",
    }
}

/// Congestion now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Congestion {
    pub level: Option<CongestionLevel>,
    pub updated_at: Option<Timestamp>,
    pub is_stale: bool,
}

impl Example for HomeSummary {
    fn example() -> Self {
        HomeSummary {
            generated_at: example_time(0),
            parks: vec![Park {
                park_id: "yeouido".into(),
                name: "여의도한강공원".into(),
                parking: Parking {
                    available: Some(412),
                    capacity: Some(2_497),
                    updated_at: Some(example_time(-60)),
                    is_stale: false,
                },
                congestion: Congestion {
                    level: Some(CongestionLevel::SlightlyCrowded),
                    updated_at: Some(example_time(-900)),
                    is_stale: false,
                },
            }],
        }
    }
}
