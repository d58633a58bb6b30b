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
    /// Free spaces as the source reports them; may exceed `capacity` (double parking is counted). `null` when
    /// unknown, which is different from `0`.
    pub available: Option<u32>,
    /// Marked spaces; `null` when the reference data has no capacity.
    pub capacity: Option<u32>,
    /// `null` when `available` is unknown.
    pub state: Option<LotState>,
    /// Where a car should be navigated to.
    pub entrance: Coordinates,
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
            },
        }
    }
}
