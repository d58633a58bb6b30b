//! Widget snapshots: `GET /v2/widgets/parking?lot_ids=` and `GET /v2/widgets/park/{park_id}`.
//!
//! Small bundles of display-ready values. A widget keeps the last confirmed value offline, so every value
//! carries its freshness and the widget can say how old it is instead of presenting it as current.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    example::{Example, example_time},
    freshness::ServedFrom,
    v2::{Closure, CongestionNow, Lang, LotStatus, WeatherNow},
};

/// The car/parking widget: chosen lots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkingWidget {
    pub generated_at: Timestamp,
    pub served_from: ServedFrom,
    /// The earliest instant at which this body changes by time alone: the widget timeline entry's end. `null`
    /// when nothing in it does (see `HomeSummary.valid_until`).
    pub valid_until: Option<Timestamp>,
    pub lang: Lang,
    pub lots: Vec<WidgetLot>,
}

/// One lot in the parking widget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WidgetLot {
    pub park_id: String,
    pub park_short_name: String,
    pub status: LotStatus,
    /// Opens the lot's screen in the app.
    pub deeplink: String,
}

/// The general park widget: congestion, weather and events.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkWidget {
    pub generated_at: Timestamp,
    pub served_from: ServedFrom,
    /// The earliest instant at which this body changes by time alone: the widget timeline entry's end. `null`
    /// when nothing in it does (see `HomeSummary.valid_until`).
    pub valid_until: Option<Timestamp>,
    pub lang: Lang,
    pub park_id: String,
    pub short_name: String,
    /// An active closure of the whole park; `false` also when nothing is known: prefer `closure`.
    pub closed: bool,
    /// Whether the park is closed, with its evidence (`closed: null` when unknown).
    pub closure: Closure,
    pub congestion: CongestionNow,
    pub weather: WeatherNow,
    /// Events on today; `null` when the event sources have never been read.
    pub events_today: Option<u32>,
    pub deeplink: String,
}

impl Example for ParkingWidget {
    fn example() -> Self {
        ParkingWidget {
            generated_at: example_time(0),
            served_from: ServedFrom::HotCache,
            valid_until: Some(example_time(541)),
            lang: Lang::En,
            lots: vec![WidgetLot {
                park_id: "yeouido".into(),
                park_short_name: "Yeouido".into(),
                status: LotStatus::example(),
                deeplink: "hangangjari://parks/yeouido/lots/yeouido-2".into(),
            }],
        }
    }
}

impl Example for ParkWidget {
    fn example() -> Self {
        ParkWidget {
            generated_at: example_time(0),
            served_from: ServedFrom::HotCache,
            valid_until: Some(example_time(901)),
            lang: Lang::En,
            park_id: "yeouido".into(),
            short_name: "Yeouido".into(),
            closed: false,
            closure: Closure::example(),
            congestion: CongestionNow::example(),
            weather: WeatherNow::example(),
            events_today: Some(2),
            deeplink: "hangangjari://parks/yeouido".into(),
        }
    }
}
