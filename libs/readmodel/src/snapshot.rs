//! The snapshot: every fact the app can be shown, read from PostgreSQL in one consistent transaction.
//!
//! It is serializable so the api can keep copies in Redis (hot, and the last good build as a stale
//! fallback). [`FORMAT`] versions that encoding: a reader ignores a cached snapshot of another format and
//! rebuilds, so a rollout never decodes a shape it does not know.

use std::collections::BTreeMap;

use contracts::{
    Timestamp,
    v2::{CongestionForecastHour, ForecastAccuracy, LotForecastHorizon},
};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

/// Encoding version of [`Snapshot`]; bump it whenever a field changes.
pub const FORMAT: u32 = 2;

/// How far ahead events and notices are kept in the snapshot.
const LOOKAHEAD_DAYS: i64 = 30;

/// Everything the app can be shown, as of `built_at`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: u32,
    /// When the snapshot was read from PostgreSQL; bodies rendered from it report this as `generated_at`.
    pub built_at: Timestamp,
    pub parks: Vec<ParkData>,
    /// Health of each source that has finished at least one collection, by source id.
    pub sources: BTreeMap<String, SourceHealthRow>,
    /// Translations of public-data text: Korean source text → language → text.
    pub translations: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceHealthRow {
    pub last_attempt_at: Timestamp,
    pub last_success_at: Option<Timestamp>,
    pub consecutive_failures: u32,
    pub last_outcome: RunOutcome,
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
    pub kind: contracts::v2::AnomalyKind,
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
    pub level: String,
    pub message_ko: Option<String>,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeatherRow {
    pub observed_at: Timestamp,
    pub fetched_at: Timestamp,
    pub source: String,
    pub temperature_c: Option<f64>,
    pub precipitation: Option<String>,
    pub sky: Option<String>,
    pub rain_chance_percent: Option<u8>,
    pub pm10: Option<u32>,
    pub pm25: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRow {
    pub event_id: String,
    pub source: String,
    pub title_ko: String,
    pub place_ko: Option<String>,
    /// `YYYY-MM-DD` in Asia/Seoul.
    pub starts_on: String,
    pub ends_on: String,
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
    pub kind: String,
    pub title_ko: String,
    pub url: Option<String>,
    pub source: String,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    /// An operator's notice, or a board notice whose classification is reliable enough to act on (a park
    /// shown closed, an alert); other closures are shown only as notices.
    pub reliable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FacilityRow {
    pub facility_id: String,
    pub kind: String,
    pub name_ko: String,
    pub names: BTreeMap<String, String>,
    pub location: (f64, f64),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransitRow {
    pub stop_id: String,
    pub kind: String,
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
    pub horizons: Vec<LotForecastHorizon>,
    pub confidence: Option<String>,
    pub reasons: Vec<String>,
    pub accuracy: Option<ForecastAccuracy>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParkForecastRow {
    pub issued_at: Timestamp,
    pub hours: Vec<CongestionForecastHour>,
    pub confidence: Option<String>,
    pub reasons: Vec<String>,
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored {what} is malformed: {error}")]
    Malformed { what: String, error: serde_json::Error },
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

    pub fn source(&self, source: &str) -> Option<&SourceHealthRow> {
        self.sources.get(source)
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

fn wire(instant: OffsetDateTime) -> Timestamp {
    db::wire_time(instant)
}

fn count(value: Option<i32>) -> Option<u32> {
    value.and_then(|value| u32::try_from(value).ok())
}

fn names(value: serde_json::Value) -> BTreeMap<String, String> {
    serde_json::from_value(value).unwrap_or_default()
}

/// Reads a snapshot as of `now` in one repeatable-read transaction, so every part describes the same moment.
pub async fn load(pool: &PgPool, now: Timestamp) -> Result<Snapshot, LoadError> {
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let snapshot = load_in(&mut tx, now).await?;
    tx.commit().await?;
    Ok(snapshot)
}

async fn load_in(
    tx: &mut Transaction<'_, Postgres>,
    now: Timestamp,
) -> Result<Snapshot, LoadError> {
    let now_db = db::db_time(now);

    let park_rows: Vec<(String, String, serde_json::Value, serde_json::Value, f64, f64)> =
        sqlx::query_as(
            "select park_id, name_ko, names, short_names, center_lat, center_lng
         from reference.park order by sort_order",
        )
        .fetch_all(&mut **tx)
        .await?;
    let mut parks: Vec<ParkData> = park_rows
        .into_iter()
        .map(|(park_id, name_ko, park_names, short_names, lat, lng)| ParkData {
            park_id,
            name_ko,
            names: names(park_names),
            short_names: names(short_names),
            center: (lat, lng),
            lots: Vec::new(),
            congestion: None,
            weather: None,
            events: Vec::new(),
            notices: Vec::new(),
            facilities: Vec::new(),
            transit: Vec::new(),
            forecast: None,
        })
        .collect();
    let index: BTreeMap<String, usize> =
        parks.iter().enumerate().map(|(i, park)| (park.park_id.clone(), i)).collect();

    // Lots with their latest observation and stored forecast. `distinct on` walks the primary key
    // (lot_id, observed_at) backwards, one row per lot.
    type LotRowTuple = (
        String,
        String,
        String,
        serde_json::Value,
        Option<i32>,
        Option<f64>,
        Option<f64>,
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
        Option<i32>,
        Option<i32>,
        Option<bool>,
        Option<i32>,
    );
    let lot_rows: Vec<LotRowTuple> = sqlx::query_as(
        "select l.lot_id, l.park_id, l.name_ko, l.names, l.capacity, l.entrance_lat, l.entrance_lng,
                o.observed_at, o.fetched_at, o.available, o.capacity, o.not_linked, o.reported_available
         from reference.lot l
         left join lateral (
             select observed_at, fetched_at, available, capacity, not_linked, reported_available
             from ingest.lot_observation
             where lot_id = l.lot_id
             order by observed_at desc
             limit 1
         ) o on true
         order by l.sort_order",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut lot_forecasts = load_lot_forecasts(tx).await?;
    for (
        lot_id,
        park_id,
        name_ko,
        lot_names,
        capacity,
        lat,
        lng,
        observed,
        fetched,
        available,
        obs_capacity,
        not_linked,
        reported_available,
    ) in lot_rows
    {
        let Some(i) = index.get(&park_id).copied() else { continue };
        let latest = match (observed, fetched) {
            (Some(observed_at), Some(fetched_at)) => Some(LotObservationRow {
                observed_at: wire(observed_at),
                fetched_at: wire(fetched_at),
                available: count(available),
                capacity: count(obs_capacity),
                not_linked: not_linked.unwrap_or(false),
                reported_available: count(reported_available),
            }),
            _ => None,
        };
        let forecast = lot_forecasts.remove(&lot_id);
        parks[i].lots.push(LotData {
            lot_id,
            name_ko,
            names: names(lot_names),
            curated_capacity: count(capacity),
            entrance: lat.zip(lng),
            latest,
            forecast,
        });
    }

    type CongestionTuple =
        (String, OffsetDateTime, OffsetDateTime, String, Option<String>, Option<i32>, Option<i32>);
    let congestion: Vec<CongestionTuple> = sqlx::query_as(
        "select distinct on (park_id) park_id, observed_at, fetched_at, level, message_ko,
                    population_min, population_max
             from ingest.congestion_observation
             order by park_id, observed_at desc",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (park_id, observed_at, fetched_at, level, message_ko, min, max) in congestion {
        let Some(i) = index.get(&park_id).copied() else { continue };
        parks[i].congestion = Some(CongestionRow {
            observed_at: wire(observed_at),
            fetched_at: wire(fetched_at),
            level,
            message_ko,
            population_min: count(min),
            population_max: count(max),
        });
    }

    type WeatherTuple = (
        String,
        OffsetDateTime,
        OffsetDateTime,
        String,
        Option<f64>,
        Option<String>,
        Option<String>,
        Option<i16>,
        Option<i32>,
        Option<i32>,
    );
    let weather: Vec<WeatherTuple> = sqlx::query_as(
        "select distinct on (park_id) park_id, observed_at, fetched_at, source, temperature_c, precipitation,
                sky, rain_chance_percent, pm10, pm25
         from ingest.weather_observation
         order by park_id, observed_at desc",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (
        park_id,
        observed_at,
        fetched_at,
        source,
        temperature_c,
        precipitation,
        sky,
        rain,
        pm10,
        pm25,
    ) in weather
    {
        let Some(i) = index.get(&park_id).copied() else { continue };
        parks[i].weather = Some(WeatherRow {
            observed_at: wire(observed_at),
            fetched_at: wire(fetched_at),
            source,
            temperature_c,
            precipitation,
            sky,
            rain_chance_percent: rain.and_then(|value| u8::try_from(value).ok()),
            pm10: count(pm10),
            pm25: count(pm25),
        });
    }

    type EventTuple = (
        String,
        String,
        String,
        String,
        Option<String>,
        String,
        String,
        Option<bool>,
        Option<String>,
        Option<OffsetDateTime>,
    );
    // Dates are compared in Asia/Seoul: an event "today" is today in Seoul whatever the server's zone.
    let events: Vec<EventTuple> = sqlx::query_as(
        "select event_id, park_id, source, title_ko, place_ko, starts_on::text, ends_on::text, free, url, cancelled_at
         from ingest.event
         where ends_on >= ($1 at time zone 'Asia/Seoul')::date
           and starts_on <= ($1 at time zone 'Asia/Seoul')::date + $2::int
         order by starts_on, event_id",
    )
    .bind(now_db)
    .bind(LOOKAHEAD_DAYS as i32)
    .fetch_all(&mut **tx)
    .await?;
    for (
        event_id,
        park_id,
        source,
        title_ko,
        place_ko,
        starts_on,
        ends_on,
        free,
        url,
        cancelled_at,
    ) in events
    {
        let Some(i) = index.get(&park_id).copied() else { continue };
        parks[i].events.push(EventRow {
            event_id,
            source,
            title_ko,
            place_ko,
            starts_on,
            ends_on,
            free,
            url,
            cancelled_at: cancelled_at.map(wire),
        });
    }

    type NoticeTuple = (
        String,
        Option<String>,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
        Option<OffsetDateTime>,
        Option<OffsetDateTime>,
        bool,
    );
    let notices: Vec<NoticeTuple> = sqlx::query_as(
        "select notice_id, park_id, lot_id, kind, title_ko, url, source, starts_at, ends_at, reliable
         from ingest.notice
         where (ends_at is null or ends_at > $1)
           and (starts_at is null or starts_at <= $1 + make_interval(days => $2::int))
         order by starts_at nulls first, notice_id",
    )
    .bind(now_db)
    .bind(LOOKAHEAD_DAYS as i32)
    .fetch_all(&mut **tx)
    .await?;
    for (notice_id, park_id, lot_id, kind, title_ko, url, source, starts_at, ends_at, reliable) in
        notices
    {
        let row = NoticeRow {
            notice_id,
            park_id: park_id.clone(),
            lot_id,
            kind,
            title_ko,
            url,
            source,
            starts_at: starts_at.map(wire),
            ends_at: ends_at.map(wire),
            reliable,
        };
        match park_id {
            Some(park_id) => {
                if let Some(i) = index.get(&park_id).copied() {
                    parks[i].notices.push(row);
                }
            }
            None => parks.iter_mut().for_each(|park| park.notices.push(row.clone())),
        }
    }

    let facilities: Vec<(String, String, String, String, serde_json::Value, f64, f64)> = sqlx::query_as(
        "select facility_id, park_id, kind, name_ko, names, lat, lng from reference.facility order by park_id, sort_order",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (facility_id, park_id, kind, name_ko, facility_names, lat, lng) in facilities {
        let Some(i) = index.get(&park_id).copied() else { continue };
        parks[i].facilities.push(FacilityRow {
            facility_id,
            kind,
            name_ko,
            names: names(facility_names),
            location: (lat, lng),
        });
    }

    type TransitTuple =
        (String, String, String, String, serde_json::Value, Vec<String>, Option<i16>, f64, f64);
    let transit: Vec<TransitTuple> = sqlx::query_as(
        "select stop_id, park_id, kind, name_ko, names, lines, walk_minutes, lat, lng
         from reference.transit order by park_id, sort_order",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (stop_id, park_id, kind, name_ko, stop_names, lines, walk_minutes, lat, lng) in transit {
        let Some(i) = index.get(&park_id).copied() else { continue };
        parks[i].transit.push(TransitRow {
            stop_id,
            kind,
            name_ko,
            names: names(stop_names),
            lines,
            walk_minutes: walk_minutes.and_then(|minutes| u16::try_from(minutes).ok()),
            location: (lat, lng),
        });
    }

    type ParkForecastTuple =
        (String, OffsetDateTime, serde_json::Value, Option<String>, Vec<String>);
    let park_forecasts: Vec<ParkForecastTuple> = sqlx::query_as(
        "select park_id, issued_at, hours, confidence, reasons from forecast.park_forecast",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (park_id, issued_at, hours, confidence, reasons) in park_forecasts {
        let Some(i) = index.get(&park_id).copied() else { continue };
        let hours = serde_json::from_value(hours).map_err(|error| LoadError::Malformed {
            what: format!("forecast.park_forecast.hours of {park_id}"),
            error,
        })?;
        parks[i].forecast =
            Some(ParkForecastRow { issued_at: wire(issued_at), hours, confidence, reasons });
    }

    let sources = load_sources(tx).await?;

    let translations = load_translations(tx, &parks).await?;

    Ok(Snapshot { format: FORMAT, built_at: now, parks, sources, translations })
}

async fn load_sources(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<BTreeMap<String, SourceHealthRow>, LoadError> {
    type SourceTuple = (
        String,
        OffsetDateTime,
        Option<OffsetDateTime>,
        i32,
        String,
        Option<String>,
        Option<serde_json::Value>,
    );
    let rows: Vec<SourceTuple> = sqlx::query_as(
        "select source, last_attempt_at, last_success_at, consecutive_failures, last_outcome,
                last_error_class, anomalies
         from ingest.source_status",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut sources = BTreeMap::new();
    for (
        source,
        last_attempt_at,
        last_success_at,
        failures,
        outcome,
        last_error_class,
        anomalies,
    ) in rows
    {
        let anomalies: Vec<AnomalyRow> = anomalies
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| LoadError::Malformed {
                what: format!("ingest.source_status.anomalies of {source}"),
                error,
            })?
            .unwrap_or_default();
        sources.insert(
            source,
            SourceHealthRow {
                last_attempt_at: wire(last_attempt_at),
                last_success_at: last_success_at.map(wire),
                consecutive_failures: u32::try_from(failures).unwrap_or(0),
                // A newer release's outcome this build does not know: judged by its failure count alone.
                last_outcome: RunOutcome::from_db(&outcome).unwrap_or(if failures > 0 {
                    RunOutcome::Failed
                } else {
                    RunOutcome::Ok
                }),
                last_error_class,
                parts: BTreeMap::new(),
                anomalies,
            },
        );
    }
    type PartTuple = (String, String, OffsetDateTime, Option<OffsetDateTime>, i32, Option<String>);
    let parts: Vec<PartTuple> = sqlx::query_as(
        "select source, part, last_attempt_at, last_success_at, consecutive_failures, last_error_class
         from ingest.source_part_status",
    )
    .fetch_all(&mut **tx)
    .await?;
    for (source, part, last_attempt_at, last_success_at, failures, last_error_class) in parts {
        if let Some(health) = sources.get_mut(&source) {
            health.parts.insert(
                part,
                PartHealthRow {
                    last_attempt_at: wire(last_attempt_at),
                    last_success_at: last_success_at.map(wire),
                    consecutive_failures: u32::try_from(failures).unwrap_or(0),
                    last_error_class,
                },
            );
        }
    }
    Ok(sources)
}

async fn load_lot_forecasts(
    tx: &mut Transaction<'_, Postgres>,
) -> Result<BTreeMap<String, LotForecastRow>, LoadError> {
    type Tuple = (
        String,
        OffsetDateTime,
        Option<OffsetDateTime>,
        Option<i32>,
        serde_json::Value,
        Option<String>,
        Vec<String>,
        Option<serde_json::Value>,
    );
    let rows: Vec<Tuple> = sqlx::query_as(
        "select lot_id, issued_at, based_on_observed_at, capacity, horizons, confidence, reasons, accuracy
         from forecast.lot_forecast",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut forecasts = BTreeMap::new();
    for (lot_id, issued_at, based_on, capacity, horizons, confidence, reasons, accuracy) in rows {
        let malformed = |what: &str, error| LoadError::Malformed {
            what: format!("forecast.lot_forecast.{what} of {lot_id}"),
            error,
        };
        let horizons =
            serde_json::from_value(horizons).map_err(|error| malformed("horizons", error))?;
        let accuracy = accuracy
            .map(serde_json::from_value)
            .transpose()
            .map_err(|error| malformed("accuracy", error))?;
        forecasts.insert(
            lot_id.clone(),
            LotForecastRow {
                issued_at: wire(issued_at),
                based_on_observed_at: based_on.map(wire),
                capacity: count(capacity),
                horizons,
                confidence,
                reasons,
                accuracy,
            },
        );
    }
    Ok(forecasts)
}

/// Translations for every piece of public-data text in the snapshot.
async fn load_translations(
    tx: &mut Transaction<'_, Postgres>,
    parks: &[ParkData],
) -> Result<BTreeMap<String, BTreeMap<String, String>>, LoadError> {
    let mut texts: Vec<String> = Vec::new();
    for park in parks {
        texts.extend(park.congestion.iter().filter_map(|c| c.message_ko.clone()));
        for event in &park.events {
            texts.push(event.title_ko.clone());
            texts.extend(event.place_ko.clone());
        }
        texts.extend(park.notices.iter().map(|notice| notice.title_ko.clone()));
    }
    texts.sort();
    texts.dedup();
    let hashes: Vec<String> = texts.iter().map(|text| db::translation_key(text)).collect();
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select source_hash, lang, text from ingest.translation where source_hash = any($1)",
    )
    .bind(&hashes)
    .fetch_all(&mut **tx)
    .await?;
    let by_hash: BTreeMap<&str, &str> =
        hashes.iter().map(String::as_str).zip(texts.iter().map(String::as_str)).collect();
    let mut translations: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (hash, lang, text) in rows {
        if let Some(source) = by_hash.get(hash.as_str()) {
            translations.entry((*source).to_owned()).or_default().insert(lang, text);
        }
    }
    Ok(translations)
}
