//! The snapshot: every fact the app can be shown, read from PostgreSQL in one consistent transaction
//! ([`load`]). Rows hold typed values (contract enums, dates, the forecast schema's own shapes), never
//! spellings to parse again, and never the app's DTOs: rendering converts them.
//!
//! It is serializable so the api can keep copies in Redis (hot, and the last good build as a stale
//! fallback). [`FORMAT`] versions that encoding: a reader ignores a cached snapshot of another format and
//! rebuilds, so a rollout never decodes a shape it does not know.

mod load;

use std::collections::BTreeMap;

use contracts::{
    Timestamp,
    freshness::SourceId,
    v2::{
        AnomalyKind, Confidence, CongestionLevel, FacilityKind, NoticeKind, PrecipitationType,
        ReasonCode, Sky, TransitKind,
    },
};
use db::forecasts::{Accuracy, Horizon, Hour};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

pub use load::{LoadError, load};

/// Encoding version of [`Snapshot`]; bump it whenever a field changes.
pub const FORMAT: u32 = 3;

/// Everything the app can be shown, as of `built_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    /// When the snapshot was read from PostgreSQL; bodies rendered from it report this as `generated_at`.
    pub built_at: Timestamp,
    pub parks: Vec<ParkData>,
    /// Health of each source that has finished at least one collection.
    pub sources: BTreeMap<SourceId, SourceHealthRow>,
    /// Translations of public-data text: Korean source text → language → text.
    pub translations: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceHealthRow {
    pub last_attempt_at: Timestamp,
    pub last_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub last_outcome: RunOutcome,
    /// The failure's class (`upstream::outcome::ErrorClass` spelling), shown as is by `/v2/status`.
    pub last_error_class: Option<String>,
    /// Per-park health of a source collected per park (a region page, an area), by park id.
    pub parts: BTreeMap<String, PartHealthRow>,
    /// Impossible values in the last successful collection.
    pub anomalies: Vec<AnomalyRow>,
}

/// How a collection run ended (`ingest.ingestion_run.outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    /// Every part answered and items were stored.
    Ok,
    /// Some parts failed; the others were stored.
    Partial,
    /// The source answered that it has nothing.
    NoData,
    Failed,
}

impl RunOutcome {
    /// The stored spelling; `None` for a value this build does not know.
    pub fn from_db(value: &str) -> Option<RunOutcome> {
        Some(match value {
            "ok" => RunOutcome::Ok,
            "partial" => RunOutcome::Partial,
            "no_data" => RunOutcome::NoData,
            "failed" => RunOutcome::Failed,
            _ => return None,
        })
    }
}

/// One park's share of a source collected per park.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartHealthRow {
    pub last_attempt_at: Timestamp,
    pub last_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub last_error_class: Option<String>,
}

/// Impossible values of one kind in a collection, and the items they concerned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AnomalyRow {
    pub kind: AnomalyKind,
    pub items: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParkData {
    pub park_id: String,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub short_names: BTreeMap<String, String>,
    pub center: (f64, f64),
    pub lots: Vec<LotData>,
    pub congestion: Option<CongestionRow>,
    pub weather: Option<WeatherRow>,
    pub events: Vec<EventRow>,
    /// Notices for this park, including those for every park (`park_id` null in the database).
    pub notices: Vec<NoticeRow>,
    pub facilities: Vec<FacilityRow>,
    pub transit: Vec<TransitRow>,
    pub forecast: Option<ParkForecastRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LotData {
    pub lot_id: String,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub curated_capacity: Option<u32>,
    pub entrance: Option<(f64, f64)>,
    pub latest: Option<LotObservationRow>,
    pub forecast: Option<LotForecastRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LotObservationRow {
    pub observed_at: Timestamp,
    pub fetched_at: Timestamp,
    /// Never above the lot's capacity (clamped at collection).
    pub available: Option<u32>,
    /// What the source reported when `available` was clamped.
    pub reported_available: Option<u32>,
    pub capacity: Option<u32>,
    pub not_linked: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CongestionRow {
    pub observed_at: Timestamp,
    pub fetched_at: Timestamp,
    pub level: CongestionLevel,
    pub message_ko: Option<String>,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeatherRow {
    pub observed_at: Timestamp,
    pub fetched_at: Timestamp,
    pub source: SourceId,
    pub temperature_c: Option<f64>,
    pub precipitation: Option<PrecipitationType>,
    pub sky: Option<Sky>,
    pub rain_chance_percent: Option<u8>,
    pub pm10: Option<u32>,
    pub pm25: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub source: SourceId,
    pub title_ko: String,
    pub place_ko: Option<String>,
    /// Dates in Asia/Seoul.
    pub starts_on: Date,
    pub ends_on: Date,
    pub free: Option<bool>,
    pub url: Option<String>,
    pub cancelled_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NoticeRow {
    pub notice_id: String,
    /// `None`: applies to every park.
    pub park_id: Option<String>,
    pub lot_id: Option<String>,
    pub kind: NoticeKind,
    pub title_ko: String,
    pub url: Option<String>,
    pub source: SourceId,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    /// An operator's notice, or a board notice whose classification is reliable enough to act on (a park
    /// shown closed, an alert); other closures are shown only as notices.
    pub reliable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FacilityRow {
    pub facility_id: String,
    pub kind: FacilityKind,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub location: (f64, f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitRow {
    pub stop_id: String,
    pub kind: TransitKind,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub lines: Vec<String>,
    pub walk_minutes: Option<u16>,
    pub location: (f64, f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LotForecastRow {
    pub issued_at: Timestamp,
    pub based_on_observed_at: Option<Timestamp>,
    pub capacity: Option<u32>,
    pub horizons: Vec<Horizon>,
    pub confidence: Option<Confidence>,
    pub reasons: Vec<ReasonCode>,
    pub accuracy: Option<Accuracy>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParkForecastRow {
    pub issued_at: Timestamp,
    pub hours: Vec<Hour>,
    pub confidence: Option<Confidence>,
    pub reasons: Vec<ReasonCode>,
}

impl Snapshot {
    pub fn park(&self, park_id: &str) -> Option<&ParkData> {
        self.parks.iter().find(|park| park.park_id == park_id)
    }

    pub fn lot(&self, lot_id: &str) -> Option<(&ParkData, &LotData)> {
        self.parks.iter().find_map(|park| {
            park.lots.iter().find(|lot| lot.lot_id == lot_id).map(|lot| (park, lot))
        })
    }

    pub fn source(&self, source: SourceId) -> Option<&SourceHealthRow> {
        self.sources.get(&source)
    }

    /// Encodes the snapshot for a cache.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("snapshots serialize")
    }

    /// Decodes a cached snapshot; `None` when it is of another format or unreadable (then rebuild).
    pub fn from_bytes(bytes: &[u8]) -> Option<Snapshot> {
        serde_json::from_slice::<Snapshot>(bytes).ok().filter(|snapshot| snapshot.format == FORMAT)
    }
}
