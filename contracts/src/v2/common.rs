//! Building blocks shared by several v2 bodies: identifiers, coordinates, localized text, and the current
//! values (lot status, congestion, weather) that the home summary, park detail and widgets all show.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    enums::{closed_enum, open_enum},
    example::{Example, example_time},
    freshness::{Freshness, FreshnessState, SourceId, SourceStatus},
};

closed_enum! {
    /// A response language; public-data text falls back to Korean when no translation exists.
    pub enum Lang {
        Ko => "ko",
        En => "en",
        Ja => "ja",
        ZhHans => "zh-Hans",
    }
}

/// A WGS84 point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Coordinates {
    pub lat: f64,
    pub lng: f64,
}

/// Text from a public source: the Korean original and the best text for the requested language.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocalizedText {
    /// Text in `lang`: a curated or machine translation, or the Korean original when none exists.
    pub text: String,
    /// The language `text` is actually in.
    pub lang: Lang,
    /// The Korean source text.
    pub source_text: String,
}

closed_enum! {
    /// Congestion as Seoul city data reports it (`여유`, `보통`, `약간 붐빔`, `붐빔`).
    pub enum CongestionLevel {
        /// 여유
        Relaxed => "relaxed",
        /// 보통
        Normal => "normal",
        /// 약간 붐빔
        SlightlyCrowded => "slightly_crowded",
        /// 붐빔
        Crowded => "crowded",
    }
}

open_enum! {
    /// A supporting label for a lot's current state; the number of available spaces stays the primary signal.
    pub enum LotState {
        /// Spaces are available.
        Available => "available",
        /// Fewer than a tenth of the spaces are free.
        Busy => "busy",
        /// No space is free.
        Full => "full",
        /// The lot is closed (announced control or opening hours).
        Closed => "closed",
    }
}

/// A lot's current availability.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LotStatus {
    pub lot_id: String,
    pub name: String,
    /// Free spaces as the source reports them, never more than `capacity` (a source that counts double parking
    /// and reports more is clamped, see `reported_available`). `null` when unknown, which is different from `0`.
    pub available: Option<u32>,
    /// Marked spaces; `null` when the reference data has no capacity.
    pub capacity: Option<u32>,
    /// `null` when `available` is unknown.
    pub state: Option<LotState>,
    /// Where a car should be navigated to.
    pub entrance: Coordinates,
    pub freshness: Freshness,
    /// What the source reported when it was impossible and `available` shows a corrected value (more free
    /// spaces than the lot has: `freshness.notes` then says `clamped_to_capacity`); `null` when `available` is
    /// exactly what the source reported.
    pub reported_available: Option<u32>,
}

/// Whether a park is closed, with the evidence behind the answer.
///
/// Prefer this to the older `closed: bool` beside it, which cannot say "we do not know" and reads `false` then.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Closure {
    /// `true` while a closure of the whole park is in force, announced by an operator or read reliably from the
    /// notice board; `false` when none is; `null` when nothing is known (the notice board has never been read
    /// and no operator closure exists). A closure the notice board only suggests is listed among the park's
    /// notices with its source, not reported here.
    pub closed: Option<bool>,
    /// The evidence: the notice source behind the answer (`operator` for an operator's closure, which does
    /// not age), its age and health.
    pub freshness: Freshness,
}

/// Congestion now at a park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CongestionNow {
    /// `null` when the source has no reading.
    pub level: Option<CongestionLevel>,
    /// The source's message, localized where a translation exists.
    pub message: Option<LocalizedText>,
    /// Estimated people in the area, lower bound.
    pub population_min: Option<u32>,
    /// Estimated people in the area, upper bound.
    pub population_max: Option<u32>,
    pub freshness: Freshness,
}

open_enum! {
    /// Precipitation now.
    pub enum PrecipitationType {
        None => "none",
        Rain => "rain",
        RainSnow => "rain_snow",
        Snow => "snow",
        Shower => "shower",
    }
}

open_enum! {
    /// Sky condition.
    pub enum Sky {
        Clear => "clear",
        PartlyCloudy => "partly_cloudy",
        Overcast => "overcast",
    }
}

/// Weather now at a park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WeatherNow {
    pub temperature_c: Option<f64>,
    pub precipitation: Option<PrecipitationType>,
    pub sky: Option<Sky>,
    /// Chance of rain in the next hours, percent.
    pub rain_chance_percent: Option<u8>,
    /// Fine dust, µg/m³.
    pub pm10: Option<u32>,
    /// Ultrafine dust, µg/m³.
    pub pm25: Option<u32>,
    pub freshness: Freshness,
}

impl Example for Coordinates {
    fn example() -> Self {
        Coordinates { lat: 37.5285, lng: 126.9337 }
    }
}

impl Example for LotStatus {
    fn example() -> Self {
        LotStatus {
            lot_id: "yeouido-2".into(),
            name: "Yeouido Parking Lot 2".into(),
            available: Some(132),
            capacity: Some(1087),
            state: Some(LotState::Available),
            entrance: Coordinates { lat: 37.5271, lng: 126.9326 },
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
            reported_available: None,
        }
    }
}

impl Example for Closure {
    fn example() -> Self {
        Closure {
            closed: Some(false),
            freshness: Freshness {
                observed_at: None,
                fetched_at: Some(example_time(-600)),
                source: SourceId::HangangNotices,
                state: FreshnessState::Fresh,
                source_status: SourceStatus::NoItem,
                stale_at: Some(example_time(3_001)),
                expires_at: Some(example_time(21_001)),
                notes: Vec::new(),
            },
        }
    }
}

impl Example for CongestionNow {
    fn example() -> Self {
        CongestionNow {
            level: Some(CongestionLevel::SlightlyCrowded),
            message: Some(LocalizedText {
                text: "It is a little crowded; expect some waiting at facilities.".into(),
                lang: Lang::En,
                source_text: "사람이 몰려있을 수 있지만 크게 붐비지는 않아요.".into(),
            }),
            population_min: Some(34_000),
            population_max: Some(36_000),
            freshness: Freshness {
                observed_at: Some(example_time(-900)),
                fetched_at: Some(example_time(-120)),
                source: SourceId::SeoulCitydata,
                state: FreshnessState::Fresh,
                source_status: SourceStatus::Ok,
                stale_at: Some(example_time(901)),
                expires_at: Some(example_time(4501)),
                notes: Vec::new(),
            },
        }
    }
}

impl Example for WeatherNow {
    fn example() -> Self {
        WeatherNow {
            temperature_c: Some(26.3),
            precipitation: Some(PrecipitationType::None),
            sky: Some(Sky::PartlyCloudy),
            rain_chance_percent: Some(20),
            pm10: Some(31),
            pm25: Some(15),
            freshness: Freshness {
                observed_at: Some(example_time(-300)),
                fetched_at: Some(example_time(-120)),
                source: SourceId::SeoulCitydata,
                state: FreshnessState::Fresh,
                source_status: SourceStatus::Ok,
                stale_at: Some(example_time(1501)),
                expires_at: Some(example_time(5101)),
                notes: Vec::new(),
            },
        }
    }
}
