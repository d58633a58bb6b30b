//! Reading a [`Snapshot`] in one repeatable-read transaction: one `load_<part>` per query, each query's row a
//! named `FromRow` struct, turned into the snapshot's typed rows right here (a spelling the database allows
//! but this build does not know becomes an open enum's `Unknown`, or a [`LoadError::Malformed`]).

use std::collections::BTreeMap;

use contracts::{
    Timestamp,
    enums::{OpenEnum, WireEnum},
    freshness::SourceId,
    v2::CongestionLevel,
};
use sqlx::{FromRow, PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use super::{
    AnomalyRow, CongestionRow, EventRow, FORMAT, FacilityRow, LotData, LotForecastRow,
    LotObservationRow, NoticeRow, ParkData, ParkForecastRow, PartHealthRow, RunOutcome, Snapshot,
    SourceHealthRow, TransitRow, WeatherRow,
};

/// How far ahead events and notices are kept in the snapshot.
const LOOKAHEAD_DAYS: i32 = 30;

type Tx<'a> = Transaction<'a, Postgres>;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored {what} is malformed: {why}")]
    Malformed { what: String, why: String },
}

fn malformed(what: impl Into<String>, why: impl ToString) -> LoadError {
    LoadError::Malformed { what: what.into(), why: why.to_string() }
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

/// An open enum from its stored spelling; a value a newer release wrote reads as `Unknown`.
fn open<E: OpenEnum>(value: &str) -> E {
    E::from_wire(value).unwrap_or(E::UNKNOWN)
}

fn json<T: serde::de::DeserializeOwned>(
    what: String,
    value: serde_json::Value,
) -> Result<T, LoadError> {
    serde_json::from_value(value).map_err(|error| malformed(what, error))
}

/// Reads a snapshot as of `now` in one repeatable-read transaction, so every part describes the same moment.
pub async fn load(pool: &PgPool, now: Timestamp) -> Result<Snapshot, LoadError> {
    let mut tx = pool.begin().await?;
    sqlx::query("set transaction isolation level repeatable read, read only")
        .execute(&mut *tx)
        .await?;
    let mut parks = load_parks(&mut tx).await?;
    let index: BTreeMap<String, usize> =
        parks.iter().enumerate().map(|(i, park)| (park.park_id.clone(), i)).collect();
    let mut lot_forecasts = load_lot_forecasts(&mut tx).await?;
    for (park_id, mut lot) in load_lots(&mut tx).await? {
        lot.forecast = lot_forecasts.remove(&lot.lot_id);
        if let Some(&i) = index.get(&park_id) {
            parks[i].lots.push(lot);
        }
    }
    for (park_id, row) in load_congestion(&mut tx).await? {
        if let Some(&i) = index.get(&park_id) {
            parks[i].congestion = Some(row);
        }
    }
    for (park_id, row) in load_weather(&mut tx).await? {
        if let Some(&i) = index.get(&park_id) {
            parks[i].weather = Some(row);
        }
    }
    for (park_id, row) in load_events(&mut tx, now).await? {
        if let Some(&i) = index.get(&park_id) {
            parks[i].events.push(row);
        }
    }
    for row in load_notices(&mut tx, now).await? {
        match &row.park_id {
            Some(park_id) => {
                if let Some(&i) = index.get(park_id) {
                    parks[i].notices.push(row);
                }
            }
            None => parks.iter_mut().for_each(|park| park.notices.push(row.clone())),
        }
    }
    for (park_id, row) in load_facilities(&mut tx).await? {
        if let Some(&i) = index.get(&park_id) {
            parks[i].facilities.push(row);
        }
    }
    for (park_id, row) in load_transit(&mut tx).await? {
        if let Some(&i) = index.get(&park_id) {
            parks[i].transit.push(row);
        }
    }
    for (park_id, row) in load_park_forecasts(&mut tx).await? {
        if let Some(&i) = index.get(&park_id) {
            parks[i].forecast = Some(row);
        }
    }
    let sources = load_sources(&mut tx).await?;
    let translations = load_translations(&mut tx, &parks).await?;
    tx.commit().await?;
    Ok(Snapshot { format: FORMAT, built_at: now, parks, sources, translations })
}

#[derive(FromRow)]
struct ParkQueryRow {
    park_id: String,
    name_ko: String,
    names: serde_json::Value,
    short_names: serde_json::Value,
    center_lat: f64,
    center_lng: f64,
}

async fn load_parks(tx: &mut Tx<'_>) -> Result<Vec<ParkData>, LoadError> {
    let rows: Vec<ParkQueryRow> = sqlx::query_as(
        "select park_id, name_ko, names, short_names, center_lat, center_lng
         from reference.park order by sort_order",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| ParkData {
            park_id: row.park_id,
            name_ko: row.name_ko,
            names: names(row.names),
            short_names: names(row.short_names),
            center: (row.center_lat, row.center_lng),
            lots: Vec::new(),
            congestion: None,
            weather: None,
            events: Vec::new(),
            notices: Vec::new(),
            facilities: Vec::new(),
            transit: Vec::new(),
            forecast: None,
        })
        .collect())
}

#[derive(FromRow)]
struct LotQueryRow {
    lot_id: String,
    park_id: String,
    name_ko: String,
    names: serde_json::Value,
    capacity: Option<i32>,
    entrance_lat: Option<f64>,
    entrance_lng: Option<f64>,
    observed_at: Option<OffsetDateTime>,
    fetched_at: Option<OffsetDateTime>,
    available: Option<i32>,
    observed_capacity: Option<i32>,
    not_linked: Option<bool>,
    reported_available: Option<i32>,
}

/// Lots with their latest observation, by park. `lateral … limit 1` walks the primary key (lot_id,
/// observed_at) backwards, one row per lot.
async fn load_lots(tx: &mut Tx<'_>) -> Result<Vec<(String, LotData)>, LoadError> {
    let rows: Vec<LotQueryRow> = sqlx::query_as(
        "select l.lot_id, l.park_id, l.name_ko, l.names, l.capacity, l.entrance_lat, l.entrance_lng,
                o.observed_at, o.fetched_at, o.available, o.capacity as observed_capacity, o.not_linked,
                o.reported_available
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
    Ok(rows
        .into_iter()
        .map(|row| {
            let latest = match (row.observed_at, row.fetched_at) {
                (Some(observed_at), Some(fetched_at)) => Some(LotObservationRow {
                    observed_at: wire(observed_at),
                    fetched_at: wire(fetched_at),
                    available: count(row.available),
                    reported_available: count(row.reported_available),
                    capacity: count(row.observed_capacity),
                    not_linked: row.not_linked.unwrap_or(false),
                }),
                _ => None,
            };
            let lot = LotData {
                lot_id: row.lot_id,
                name_ko: row.name_ko,
                names: names(row.names),
                curated_capacity: count(row.capacity),
                entrance: row.entrance_lat.zip(row.entrance_lng),
                latest,
                forecast: None,
            };
            (row.park_id, lot)
        })
        .collect())
}

#[derive(FromRow)]
struct CongestionQueryRow {
    park_id: String,
    observed_at: OffsetDateTime,
    fetched_at: OffsetDateTime,
    level: String,
    message_ko: Option<String>,
    population_min: Option<i32>,
    population_max: Option<i32>,
}

/// The latest congestion reading of each park: per park, newest first through the primary key (park_id,
/// observed_at), one row each, so the cost is the parks', not the history's.
async fn load_congestion(tx: &mut Tx<'_>) -> Result<Vec<(String, CongestionRow)>, LoadError> {
    let rows: Vec<CongestionQueryRow> = sqlx::query_as(
        "select p.park_id, o.observed_at, o.fetched_at, o.level, o.message_ko, o.population_min, o.population_max
         from reference.park p
         cross join lateral (
             select observed_at, fetched_at, level, message_ko, population_min, population_max
             from ingest.congestion_observation
             where park_id = p.park_id
             order by observed_at desc
             limit 1
         ) o
         order by p.park_id",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|row| {
            let level = CongestionLevel::from_wire(&row.level).ok_or_else(|| {
                malformed(format!("congestion level of {}", row.park_id), &row.level)
            })?;
            let reading = CongestionRow {
                observed_at: wire(row.observed_at),
                fetched_at: wire(row.fetched_at),
                level,
                message_ko: row.message_ko,
                population_min: count(row.population_min),
                population_max: count(row.population_max),
            };
            Ok((row.park_id, reading))
        })
        .collect()
}

#[derive(FromRow)]
struct WeatherQueryRow {
    park_id: String,
    observed_at: OffsetDateTime,
    fetched_at: OffsetDateTime,
    source: String,
    temperature_c: Option<f64>,
    precipitation: Option<String>,
    sky: Option<String>,
    rain_chance_percent: Option<i16>,
    pm10: Option<i32>,
    pm25: Option<i32>,
}

/// The latest weather reading of each park (city data's or KMA's, whichever observed last), per park through
/// the primary key like [`load_congestion`].
async fn load_weather(tx: &mut Tx<'_>) -> Result<Vec<(String, WeatherRow)>, LoadError> {
    let rows: Vec<WeatherQueryRow> = sqlx::query_as(
        "select p.park_id, o.observed_at, o.fetched_at, o.source, o.temperature_c, o.precipitation, o.sky,
                o.rain_chance_percent, o.pm10, o.pm25
         from reference.park p
         cross join lateral (
             select observed_at, fetched_at, source, temperature_c, precipitation, sky, rain_chance_percent,
                    pm10, pm25
             from ingest.weather_observation
             where park_id = p.park_id
             order by observed_at desc
             limit 1
         ) o
         order by p.park_id",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let reading = WeatherRow {
                observed_at: wire(row.observed_at),
                fetched_at: wire(row.fetched_at),
                source: open(&row.source),
                temperature_c: row.temperature_c,
                precipitation: row.precipitation.as_deref().map(open),
                sky: row.sky.as_deref().map(open),
                rain_chance_percent: row
                    .rain_chance_percent
                    .and_then(|value| u8::try_from(value).ok()),
                pm10: count(row.pm10),
                pm25: count(row.pm25),
            };
            (row.park_id, reading)
        })
        .collect())
}

#[derive(FromRow)]
struct EventQueryRow {
    event_id: String,
    park_id: String,
    source: String,
    title_ko: String,
    place_ko: Option<String>,
    starts_on: String,
    ends_on: String,
    free: Option<bool>,
    url: Option<String>,
    cancelled_at: Option<OffsetDateTime>,
}

/// Events that have not ended and start within the lookahead. Dates are compared in Asia/Seoul: an event
/// "today" is today in Seoul whatever the server's zone.
async fn load_events(
    tx: &mut Tx<'_>,
    now: Timestamp,
) -> Result<Vec<(String, EventRow)>, LoadError> {
    let rows: Vec<EventQueryRow> = sqlx::query_as(
        "select event_id, park_id, source, title_ko, place_ko, starts_on::text as starts_on,
                ends_on::text as ends_on, free, url, cancelled_at
         from ingest.event
         where ends_on >= ($1 at time zone 'Asia/Seoul')::date
           and starts_on <= ($1 at time zone 'Asia/Seoul')::date + $2::int
         order by starts_on, event_id",
    )
    .bind(db::db_time(now))
    .bind(LOOKAHEAD_DAYS)
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|row| {
            let date = |text: &str| {
                text.parse()
                    .map_err(|error| malformed(format!("dates of event {}", row.event_id), error))
            };
            let event = EventRow {
                starts_on: date(&row.starts_on)?,
                ends_on: date(&row.ends_on)?,
                source: open(&row.source),
                event_id: row.event_id,
                title_ko: row.title_ko,
                place_ko: row.place_ko,
                free: row.free,
                url: row.url,
                cancelled_at: row.cancelled_at.map(wire),
            };
            Ok((row.park_id, event))
        })
        .collect()
}

#[derive(FromRow)]
struct NoticeQueryRow {
    notice_id: String,
    park_id: Option<String>,
    lot_id: Option<String>,
    kind: String,
    title_ko: String,
    url: Option<String>,
    source: String,
    starts_at: Option<OffsetDateTime>,
    ends_at: Option<OffsetDateTime>,
    reliable: bool,
}

/// Notices that have not ended and start within the lookahead.
async fn load_notices(tx: &mut Tx<'_>, now: Timestamp) -> Result<Vec<NoticeRow>, LoadError> {
    let rows: Vec<NoticeQueryRow> = sqlx::query_as(
        "select notice_id, park_id, lot_id, kind, title_ko, url, source, starts_at, ends_at, reliable
         from ingest.notice
         where (ends_at is null or ends_at > $1)
           and (starts_at is null or starts_at <= $1 + make_interval(days => $2::int))
         order by starts_at nulls first, notice_id",
    )
    .bind(db::db_time(now))
    .bind(LOOKAHEAD_DAYS)
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| NoticeRow {
            notice_id: row.notice_id,
            park_id: row.park_id,
            lot_id: row.lot_id,
            kind: open(&row.kind),
            title_ko: row.title_ko,
            url: row.url,
            source: open(&row.source),
            starts_at: row.starts_at.map(wire),
            ends_at: row.ends_at.map(wire),
            reliable: row.reliable,
        })
        .collect())
}

#[derive(FromRow)]
struct FacilityQueryRow {
    facility_id: String,
    park_id: String,
    kind: String,
    name_ko: String,
    names: serde_json::Value,
    lat: f64,
    lng: f64,
}

async fn load_facilities(tx: &mut Tx<'_>) -> Result<Vec<(String, FacilityRow)>, LoadError> {
    let rows: Vec<FacilityQueryRow> = sqlx::query_as(
        "select facility_id, park_id, kind, name_ko, names, lat, lng
         from reference.facility order by park_id, sort_order",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let facility = FacilityRow {
                facility_id: row.facility_id,
                kind: open(&row.kind),
                name_ko: row.name_ko,
                names: names(row.names),
                location: (row.lat, row.lng),
            };
            (row.park_id, facility)
        })
        .collect())
}

#[derive(FromRow)]
struct TransitQueryRow {
    stop_id: String,
    park_id: String,
    kind: String,
    name_ko: String,
    names: serde_json::Value,
    lines: Vec<String>,
    walk_minutes: Option<i16>,
    lat: f64,
    lng: f64,
}

async fn load_transit(tx: &mut Tx<'_>) -> Result<Vec<(String, TransitRow)>, LoadError> {
    let rows: Vec<TransitQueryRow> = sqlx::query_as(
        "select stop_id, park_id, kind, name_ko, names, lines, walk_minutes, lat, lng
         from reference.transit order by park_id, sort_order",
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let stop = TransitRow {
                stop_id: row.stop_id,
                kind: open(&row.kind),
                name_ko: row.name_ko,
                names: names(row.names),
                lines: row.lines,
                walk_minutes: row.walk_minutes.and_then(|minutes| u16::try_from(minutes).ok()),
                location: (row.lat, row.lng),
            };
            (row.park_id, stop)
        })
        .collect())
}

#[derive(FromRow)]
struct ParkForecastQueryRow {
    park_id: String,
    issued_at: OffsetDateTime,
    hours: serde_json::Value,
    confidence: Option<String>,
    reasons: Vec<String>,
}

async fn load_park_forecasts(tx: &mut Tx<'_>) -> Result<Vec<(String, ParkForecastRow)>, LoadError> {
    let rows: Vec<ParkForecastQueryRow> = sqlx::query_as(
        "select park_id, issued_at, hours, confidence, reasons from forecast.park_forecast",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|row| {
            let forecast = ParkForecastRow {
                issued_at: wire(row.issued_at),
                hours: json(format!("forecast.park_forecast.hours of {}", row.park_id), row.hours)?,
                confidence: row.confidence.as_deref().and_then(WireEnum::from_wire),
                reasons: row.reasons.iter().map(|reason| open(reason)).collect(),
            };
            Ok((row.park_id, forecast))
        })
        .collect()
}

#[derive(FromRow)]
struct LotForecastQueryRow {
    lot_id: String,
    issued_at: OffsetDateTime,
    based_on_observed_at: Option<OffsetDateTime>,
    capacity: Option<i32>,
    horizons: serde_json::Value,
    confidence: Option<String>,
    reasons: Vec<String>,
    accuracy: Option<serde_json::Value>,
}

/// Stored lot forecasts, by lot.
async fn load_lot_forecasts(
    tx: &mut Tx<'_>,
) -> Result<BTreeMap<String, LotForecastRow>, LoadError> {
    let rows: Vec<LotForecastQueryRow> = sqlx::query_as(
        "select lot_id, issued_at, based_on_observed_at, capacity, horizons, confidence, reasons, accuracy
         from forecast.lot_forecast",
    )
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter()
        .map(|row| {
            let what = |column: &str| format!("forecast.lot_forecast.{column} of {}", row.lot_id);
            let forecast = LotForecastRow {
                issued_at: wire(row.issued_at),
                based_on_observed_at: row.based_on_observed_at.map(wire),
                capacity: count(row.capacity),
                horizons: json(what("horizons"), row.horizons)?,
                confidence: row.confidence.as_deref().and_then(WireEnum::from_wire),
                reasons: row.reasons.iter().map(|reason| open(reason)).collect(),
                accuracy: row
                    .accuracy
                    .map(|accuracy| json(what("accuracy"), accuracy))
                    .transpose()?,
            };
            Ok((row.lot_id, forecast))
        })
        .collect()
}

#[derive(FromRow)]
struct SourceQueryRow {
    source: String,
    last_attempt_at: OffsetDateTime,
    last_success_at: Option<OffsetDateTime>,
    consecutive_failures: i32,
    last_outcome: String,
    last_error_class: Option<String>,
    anomalies: Option<serde_json::Value>,
}

#[derive(FromRow)]
struct PartQueryRow {
    source: String,
    part: String,
    last_attempt_at: OffsetDateTime,
    last_success_at: Option<OffsetDateTime>,
    consecutive_failures: i32,
    last_error_class: Option<String>,
}

/// Every source's health, with its parks' shares where it is collected per park.
async fn load_sources(tx: &mut Tx<'_>) -> Result<BTreeMap<SourceId, SourceHealthRow>, LoadError> {
    let rows: Vec<SourceQueryRow> = sqlx::query_as(
        "select source, last_attempt_at, last_success_at, consecutive_failures, last_outcome,
                last_error_class, anomalies
         from ingest.source_status",
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut sources = BTreeMap::new();
    for row in rows {
        let anomalies: Vec<AnomalyRow> = row
            .anomalies
            .map(|anomalies| {
                json(format!("ingest.source_status.anomalies of {}", row.source), anomalies)
            })
            .transpose()?
            .unwrap_or_default();
        let failures = row.consecutive_failures;
        let health = SourceHealthRow {
            last_attempt_at: wire(row.last_attempt_at),
            last_success_at: row.last_success_at.map(wire),
            consecutive_failures: u32::try_from(failures).unwrap_or(0),
            // A newer release's outcome this build does not know: judged by its failure count alone.
            last_outcome: RunOutcome::from_db(&row.last_outcome).unwrap_or(if failures > 0 {
                RunOutcome::Failed
            } else {
                RunOutcome::Ok
            }),
            last_error_class: row.last_error_class,
            parts: BTreeMap::new(),
            anomalies,
        };
        sources.insert(open::<SourceId>(&row.source), health);
    }
    let parts: Vec<PartQueryRow> = sqlx::query_as(
        "select source, part, last_attempt_at, last_success_at, consecutive_failures, last_error_class
         from ingest.source_part_status",
    )
    .fetch_all(&mut **tx)
    .await?;
    for row in parts {
        if let Some(health) = sources.get_mut(&open::<SourceId>(&row.source)) {
            health.parts.insert(
                row.part,
                PartHealthRow {
                    last_attempt_at: wire(row.last_attempt_at),
                    last_success_at: row.last_success_at.map(wire),
                    consecutive_failures: u32::try_from(row.consecutive_failures).unwrap_or(0),
                    last_error_class: row.last_error_class,
                },
            );
        }
    }
    Ok(sources)
}

/// Translations for every piece of public-data text in the snapshot.
async fn load_translations(
    tx: &mut Tx<'_>,
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
