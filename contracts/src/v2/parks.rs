//! `GET /v2/parks` (reference list) and `GET /v2/parks/{park_id}` (everything about one park).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    enums::{closed_enum, open_enum},
    example::{Example, example_time},
    freshness::{Freshness, FreshnessState, ServedFrom, SourceId, SourceStatus},
    v2::{
        Closure, CongestionNow, Coordinates, Lang, LocalizedText, LotStatus, ParkForecastSummary,
        WeatherNow,
    },
};

/// Reference list of all parks and their lots.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkList {
    pub generated_at: Timestamp,
    pub served_from: ServedFrom,
    /// Always `null`: reference data does not change by time alone (see `HomeSummary.valid_until`).
    pub valid_until: Option<Timestamp>,
    pub lang: Lang,
    pub parks: Vec<ParkReference>,
}

/// A park as curated reference data describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkReference {
    pub park_id: String,
    pub name: String,
    /// The Korean name, as signs and navigation apps spell it.
    pub name_ko: String,
    /// A short name for widgets.
    pub short_name: String,
    pub center: Coordinates,
    pub lots: Vec<LotReference>,
}

/// A parking lot as curated reference data describes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LotReference {
    pub lot_id: String,
    pub name: String,
    pub name_ko: String,
    pub capacity: Option<u32>,
    pub entrance: Coordinates,
}

/// Everything about one park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ParkDetail {
    pub generated_at: Timestamp,
    pub served_from: ServedFrom,
    /// The earliest instant at which this body changes by time alone; `null` when nothing in it does (see
    /// `HomeSummary.valid_until`).
    pub valid_until: Option<Timestamp>,
    pub lang: Lang,
    pub park: ParkReference,
    /// An active closure of the whole park; `false` also when nothing is known: prefer `closure`.
    pub closed: bool,
    /// Whether the park is closed, with its evidence (`closed: null` when unknown).
    pub closure: Closure,
    pub lots: Vec<LotStatus>,
    pub congestion: CongestionNow,
    /// The next hours of congestion; a forecast, kept apart from the current value.
    pub congestion_forecast: ParkForecastSummary,
    pub weather: WeatherNow,
    pub events: EventList,
    pub notices: NoticeList,
    pub facilities: Vec<Facility>,
    pub transit: Vec<TransitStop>,
}

closed_enum! {
    /// Whether an event is on.
    pub enum EventStatus {
        Scheduled => "scheduled",
        Ongoing => "ongoing",
        /// The organiser cancelled it, or it disappeared from the source before it ended.
        Cancelled => "cancelled",
        Ended => "ended",
    }
}

/// Events at or near the park, with the freshness of the event sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct EventList {
    pub items: Vec<Event>,
    pub freshness: Freshness,
}

/// One event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Event {
    /// Stable across collections (derived from the content when the source has no id).
    pub event_id: String,
    pub title: LocalizedText,
    pub place: Option<LocalizedText>,
    pub starts_on: String,
    pub ends_on: String,
    pub status: EventStatus,
    pub free: Option<bool>,
    pub url: Option<String>,
    pub source: SourceId,
}

open_enum! {
    /// What a notice announces.
    pub enum NoticeKind {
        /// The whole park is closed (e.g. flood warning).
        ParkClosure => "park_closure",
        /// A lot is closed or restricted.
        LotClosure => "lot_closure",
        /// Traffic or access control.
        Control => "control",
        /// A facility is closed.
        FacilityClosure => "facility_closure",
        General => "general",
    }
}

/// Announced controls and closures, with the freshness of the notice sources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NoticeList {
    pub items: Vec<Notice>,
    pub freshness: Freshness,
}

/// One notice.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Notice {
    pub notice_id: String,
    pub kind: NoticeKind,
    pub title: LocalizedText,
    pub starts_at: Option<Timestamp>,
    /// `null` while the notice is open-ended.
    pub ends_at: Option<Timestamp>,
    pub url: Option<String>,
    pub source: SourceId,
}

open_enum! {
    /// Kind of facility.
    pub enum FacilityKind {
        Restroom => "restroom",
        ConvenienceStore => "convenience_store",
        BicycleRental => "bicycle_rental",
        WaterTaxi => "water_taxi",
        Playground => "playground",
        Pool => "pool",
        Campground => "campground",
        SportsField => "sports_field",
        InformationCenter => "information_center",
    }
}

/// A curated facility.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Facility {
    pub facility_id: String,
    pub kind: FacilityKind,
    pub name: String,
    pub location: Coordinates,
}

open_enum! {
    /// Kind of public-transit stop.
    pub enum TransitKind {
        Subway => "subway",
        Bus => "bus",
        WaterBus => "water_bus",
    }
}

/// A curated transit stop near the park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TransitStop {
    pub stop_id: String,
    pub kind: TransitKind,
    pub name: String,
    /// Subway lines or bus routes serving the stop.
    pub lines: Vec<String>,
    pub walk_minutes: Option<u16>,
    pub location: Coordinates,
}

impl Example for ParkReference {
    fn example() -> Self {
        ParkReference {
            park_id: "yeouido".into(),
            name: "Yeouido Hangang Park".into(),
            name_ko: "여의도한강공원".into(),
            short_name: "Yeouido".into(),
            center: Coordinates::example(),
            lots: vec![LotReference {
                lot_id: "yeouido-2".into(),
                name: "Yeouido Parking Lot 2".into(),
                name_ko: "여의도2주차장".into(),
                capacity: Some(1_087),
                entrance: Coordinates { lat: 37.5271, lng: 126.9326 },
            }],
        }
    }
}

impl Example for ParkList {
    fn example() -> Self {
        ParkList {
            generated_at: example_time(0),
            served_from: ServedFrom::Live,
            valid_until: None,
            lang: Lang::En,
            parks: vec![ParkReference::example()],
        }
    }
}

impl Example for ParkDetail {
    fn example() -> Self {
        ParkDetail {
            generated_at: example_time(0),
            served_from: ServedFrom::Live,
            valid_until: Some(example_time(541)),
            lang: Lang::En,
            park: ParkReference::example(),
            closed: false,
            closure: Closure::example(),
            lots: vec![LotStatus::example()],
            congestion: CongestionNow::example(),
            congestion_forecast: ParkForecastSummary::example(),
            weather: WeatherNow::example(),
            events: EventList {
                items: vec![Event {
                    event_id: "ev-4f1c2a9b".into(),
                    title: LocalizedText {
                        text: "Hangang Summer Festival".into(),
                        lang: Lang::En,
                        source_text: "한강 여름축제".into(),
                    },
                    place: Some(LocalizedText {
                        text: "여의도한강공원 물빛광장".into(),
                        lang: Lang::Ko,
                        source_text: "여의도한강공원 물빛광장".into(),
                    }),
                    starts_on: "2026-06-01".into(),
                    ends_on: "2026-06-30".into(),
                    status: EventStatus::Ongoing,
                    free: Some(true),
                    url: Some("https://example.org/events/summer".into()),
                    source: SourceId::SeoulCulturalEvents,
                }],
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
            notices: NoticeList {
                items: vec![Notice {
                    notice_id: "nt-2026-0614-1".into(),
                    kind: NoticeKind::LotClosure,
                    title: LocalizedText {
                        text: "Lot 5 closes at 21:00 during the festival".into(),
                        lang: Lang::En,
                        source_text: "축제 기간 여의도5주차장 21시 이후 폐쇄".into(),
                    },
                    starts_at: Some(example_time(3_600)),
                    ends_at: None,
                    url: Some("https://example.org/notices/1".into()),
                    source: SourceId::HangangNotices,
                }],
                freshness: Freshness {
                    observed_at: None,
                    fetched_at: Some(example_time(-3_600)),
                    source: SourceId::HangangNotices,
                    state: FreshnessState::Fresh,
                    source_status: SourceStatus::Ok,
                    stale_at: Some(example_time(1)),
                    expires_at: Some(example_time(18_001)),
                    notes: Vec::new(),
                },
            },
            facilities: vec![Facility {
                facility_id: "yeouido-restroom-1".into(),
                kind: FacilityKind::Restroom,
                name: "Restroom near Mulbit Plaza".into(),
                location: Coordinates { lat: 37.5279, lng: 126.9331 },
            }],
            transit: vec![TransitStop {
                stop_id: "subway-yeouinaru".into(),
                kind: TransitKind::Subway,
                name: "Yeouinaru".into(),
                lines: vec!["5".into()],
                walk_minutes: Some(3),
                location: Coordinates { lat: 37.5271, lng: 126.9327 },
            }],
        }
    }
}
