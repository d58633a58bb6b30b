//! One collector per source behind one trait: fetch → parse → classify here, store in `crate::store`.
//!
//! | source | collector | schedule |
//! |---|---|---|
//! | `parking_portal` | [`parking_portal`]: 11 region pages | every 2 min |
//! | `seoul_citydata` | [`citydata`]: one request per park | every 5 min |
//! | `seoul_cultural_events` | [`events`]: every page | hourly |
//! | `kma_forecast` | [`kma`]: one request per grid cell | every 3 h, after KMA's base times |
//! | `hangang_notices` | [`notices`]: the notice board | every 15 min |
//! | `curated` | the reference file shipped with the release (`db::reference`) | daily |

pub use upstream::{citydata, events, kma, notices, parking_portal, seoul};

use std::{collections::HashMap, future::Future, time::Duration};

use contracts::{Timestamp, freshness::SourceId};
use settings::Secret;
use sqlx::PgPool;

use crate::{
    batch::{
        Batch, CongestionReading, EventReading, EventSet, LotReading, NoticeReading,
        OfficialForecast, WeatherReading,
    },
    fetch::Fetcher,
    outcome::{ErrorClass, Failure},
};

/// Where the upstream sources are.
#[derive(Clone, Debug)]
pub struct Upstreams {
    pub parking_portal_url: String,
    pub seoul_openapi_url: String,
    pub seoul_openapi_key: Option<Secret>,
    pub kma_api_url: String,
    pub kma_api_key: Option<Secret>,
    pub notices_url: Option<String>,
}

/// What every collector gets.
#[derive(Clone, Debug)]
pub struct Context {
    pub pool: PgPool,
    pub fetcher: Fetcher,
    pub upstreams: Upstreams,
    /// The instant the run describes (the fetch time when a source gives no observation time).
    pub now: Timestamp,
}

/// One upstream source.
pub trait Collector: Send + Sync {
    fn source(&self) -> SourceId;

    /// Fetches and parses one full collection. `Err` when nothing could be collected; a partial failure is
    /// carried in the batch so the parts that worked are still stored.
    fn collect(&self, ctx: &Context) -> impl Future<Output = Result<Batch, Failure>> + Send;
}

/// The sources an operator can name (`hangang-ingest run-once <name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum SourceName {
    Parking,
    Citydata,
    Events,
    Weather,
    Notices,
    /// The curated reference file (parks, lots, facilities, transit), synced into the `reference` schema.
    Reference,
}

impl SourceName {
    pub const ALL: [SourceName; 6] = [
        SourceName::Parking,
        SourceName::Citydata,
        SourceName::Events,
        SourceName::Weather,
        SourceName::Notices,
        SourceName::Reference,
    ];

    pub fn source_id(self) -> SourceId {
        match self {
            SourceName::Parking => SourceId::ParkingPortal,
            SourceName::Citydata => SourceId::SeoulCitydata,
            SourceName::Events => SourceId::SeoulCulturalEvents,
            SourceName::Weather => SourceId::KmaForecast,
            SourceName::Notices => SourceId::HangangNotices,
            SourceName::Reference => SourceId::Curated,
        }
    }

    /// The normal collection interval.
    pub fn interval(self) -> Duration {
        match self {
            SourceName::Parking => Duration::from_secs(120),
            SourceName::Citydata => Duration::from_secs(300),
            SourceName::Events => Duration::from_secs(3_600),
            SourceName::Weather => Duration::from_secs(3 * 3_600),
            SourceName::Notices => Duration::from_secs(900),
            SourceName::Reference => Duration::from_secs(24 * 3_600),
        }
    }

    pub fn from_source_id(source: &str) -> Option<SourceName> {
        SourceName::ALL.into_iter().find(|name| name.source_id().as_str() == source)
    }
}

/// Reference data the collectors map source names to.
#[derive(Clone, Debug)]
struct ParkRef {
    park_id: String,
    name_ko: String,
    short_ko: String,
    center: (f64, f64),
    citydata_area: String,
    portal_region: i16,
}

async fn parks(pool: &PgPool) -> Result<Vec<ParkRef>, Failure> {
    type Row = (String, String, serde_json::Value, f64, f64, String, i16);
    let rows: Vec<Row> = sqlx::query_as(
        "select park_id, name_ko, short_names, center_lat, center_lng, citydata_area, portal_region
         from reference.park order by sort_order",
    )
    .fetch_all(pool)
    .await
    .map_err(|error| {
        Failure::new(ErrorClass::Connect, format!("reading reference parks: {error}"))
    })?;
    Ok(rows
        .into_iter()
        .map(|(park_id, name_ko, short_names, lat, lng, citydata_area, portal_region)| ParkRef {
            short_ko: short_names.get("ko").and_then(|v| v.as_str()).unwrap_or(&name_ko).to_owned(),
            park_id,
            name_ko,
            center: (lat, lng),
            citydata_area,
            portal_region,
        })
        .collect())
}

/// Percent-encodes a path segment (Korean area names).
fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Whether a failure means the host is unreachable, so further requests this run would only wait too.
fn host_down(failure: &Failure) -> bool {
    matches!(failure.class, ErrorClass::Connect | ErrorClass::Timeout | ErrorClass::Tls)
}

fn key_or_missing(key: &Option<Secret>, variable: &str) -> Result<String, Failure> {
    key.as_ref()
        .map(|key| key.expose().to_owned())
        .ok_or_else(|| Failure::new(ErrorClass::Auth, format!("{variable} is not configured")))
}

/// The parking portal's region pages.
#[derive(Debug, Default)]
pub struct ParkingPortal;

impl Collector for ParkingPortal {
    fn source(&self) -> SourceId {
        SourceId::ParkingPortal
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, Failure> {
        let parks = parks(&ctx.pool).await?;
        let names: Vec<(String, Vec<String>)> =
            sqlx::query_as("select lot_id, portal_names from reference.lot")
                .fetch_all(&ctx.pool)
                .await
                .map_err(|error| {
                    Failure::new(ErrorClass::Connect, format!("reading reference lots: {error}"))
                })?;
        let lot_by_name: HashMap<String, String> = names
            .into_iter()
            .flat_map(|(lot_id, names)| {
                names
                    .into_iter()
                    .map(move |name| (parking_portal::normalize_name(&name), lot_id.clone()))
            })
            .collect();

        let mut batch = Batch::default();
        let mut pages_read = 0;
        let mut rows_seen = 0;
        for park in &parks {
            let label = format!("parking portal region{}", park.portal_region);
            let url = format!(
                "{}/parking/region/region{}",
                ctx.upstreams.parking_portal_url.trim_end_matches('/'),
                park.portal_region
            );
            let page = match ctx.fetcher.get(&url, &label, &[("accept-encoding", "identity")]).await
            {
                Ok(fetched) => String::from_utf8_lossy(&fetched.body).into_owned(),
                Err(failure) => {
                    let stop = host_down(&failure);
                    batch.record_failure(failure);
                    if stop {
                        break;
                    }
                    continue;
                }
            };
            match parking_portal::parse_region_page(&page) {
                Ok(rows) => {
                    pages_read += 1;
                    for row in rows {
                        rows_seen += 1;
                        let Some(lot_id) =
                            lot_by_name.get(&parking_portal::normalize_name(&row.name))
                        else {
                            batch.unmapped.push(row.name);
                            continue;
                        };
                        batch.lots.push(LotReading {
                            lot_id: lot_id.clone(),
                            // The portal gives no per-lot time: what we fetched now is what it shows now.
                            observed_at: ctx.now,
                            available: row.available,
                            capacity: row.capacity,
                            not_linked: row.available.is_none(),
                        });
                    }
                }
                Err(failure) => batch.record_failure(Failure::new(
                    failure.class,
                    format!("{label}: {}", failure.message),
                )),
            }
        }
        if pages_read == 0 {
            return Err(batch
                .partial_failure
                .unwrap_or_else(|| Failure::drift("no region pages configured")));
        }
        if batch.lots.is_empty() && rows_seen > 0 {
            return Err(Failure::new(
                ErrorClass::Unmapped,
                format!("none of {rows_seen} lot names is curated"),
            ));
        }
        Ok(batch)
    }
}

/// Seoul real-time city data, one request per park.
#[derive(Debug, Default)]
pub struct Citydata;

impl Collector for Citydata {
    fn source(&self) -> SourceId {
        SourceId::SeoulCitydata
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, Failure> {
        let key = key_or_missing(&ctx.upstreams.seoul_openapi_key, "SEOUL_OPENAPI_KEY")?;
        let parks = parks(&ctx.pool).await?;
        let mut batch = Batch::default();
        let mut answered = 0;
        for park in &parks {
            let url = format!(
                "{}/{}/json/citydata/1/5/{}",
                ctx.upstreams.seoul_openapi_url.trim_end_matches('/'),
                encode_segment(&key),
                encode_segment(&park.citydata_area)
            );
            let label = format!("citydata {}", park.park_id);
            let parsed = match ctx.fetcher.get(&url, &label, &[]).await {
                Ok(fetched) => citydata::parse(&fetched.body, &park.citydata_area),
                Err(failure) => Err(failure),
            };
            let reading = match parsed {
                Ok(Some(reading)) => reading,
                Ok(None) => {
                    answered += 1;
                    batch.no_data = true;
                    continue;
                }
                Err(failure) => {
                    let stop = host_down(&failure);
                    batch.record_failure(Failure::new(
                        failure.class,
                        format!("{label}: {}", failure.message),
                    ));
                    if stop {
                        break;
                    }
                    continue;
                }
            };
            answered += 1;
            if let Some(congestion) = reading.congestion {
                let issued_at = congestion.observed_at;
                batch.official_forecast.extend(reading.forecast.into_iter().map(|hour| {
                    OfficialForecast {
                        park_id: park.park_id.clone(),
                        issued_at,
                        target_at: hour.target_at,
                        level: hour.level,
                        population_min: hour.population_min,
                        population_max: hour.population_max,
                    }
                }));
                batch.congestion.push(CongestionReading {
                    park_id: park.park_id.clone(),
                    observed_at: congestion.observed_at,
                    level: congestion.level,
                    message_ko: congestion.message_ko,
                    population_min: congestion.population_min,
                    population_max: congestion.population_max,
                });
            }
            if let Some(weather) = reading.weather {
                batch.weather.push(WeatherReading {
                    park_id: park.park_id.clone(),
                    observed_at: weather.observed_at,
                    source: SourceId::SeoulCitydata,
                    temperature_c: weather.temperature_c,
                    precipitation: weather.precipitation,
                    sky: weather.sky,
                    rain_chance_percent: weather.rain_chance_percent,
                    pm10: weather.pm10,
                    pm25: weather.pm25,
                });
            }
            // The area's events block lists what is on now; it is not a complete list, so nothing is inferred
            // from an event's absence.
            let area_events = batch.events.get_or_insert_with(|| EventSet {
                source: SourceId::SeoulCitydata,
                items: Vec::new(),
                complete: false,
            });
            area_events.items.extend(reading.events.into_iter().map(|event| EventReading {
                event_id: events::event_id(
                    &event.title_ko,
                    event.place_ko.as_deref(),
                    event.starts_on,
                ),
                park_id: park.park_id.clone(),
                title_ko: event.title_ko,
                place_ko: event.place_ko,
                starts_on: event.starts_on,
                ends_on: event.ends_on,
                free: event.free,
                url: event.url,
                cancelled: false,
            }));
        }
        batch.unless_no_park_answered(answered)
    }
}

/// Seoul cultural events, every page, matched to parks.
#[derive(Debug, Default)]
pub struct CulturalEvents;

/// Rows per request; the service allows at most 1,000.
const EVENT_PAGE_SIZE: u32 = 1_000;

impl Collector for CulturalEvents {
    fn source(&self) -> SourceId {
        SourceId::SeoulCulturalEvents
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, Failure> {
        let key = key_or_missing(&ctx.upstreams.seoul_openapi_key, "SEOUL_OPENAPI_KEY")?;
        let parks: Vec<events::ParkForMatching> = parks(&ctx.pool)
            .await?
            .into_iter()
            .map(|park| events::ParkForMatching {
                park_id: park.park_id,
                name_ko: park.name_ko,
                short_ko: park.short_ko,
                center: park.center,
            })
            .collect();
        let mut batch = Batch::default();
        let mut set =
            EventSet { source: SourceId::SeoulCulturalEvents, items: Vec::new(), complete: true };
        let mut start = 1;
        loop {
            let end = start + EVENT_PAGE_SIZE - 1;
            let url = format!(
                "{}/{}/json/culturalEventInfo/{start}/{end}/",
                ctx.upstreams.seoul_openapi_url.trim_end_matches('/'),
                encode_segment(&key)
            );
            let label = format!("culturalEventInfo {start}-{end}");
            let page = match ctx.fetcher.get(&url, &label, &[]).await {
                Ok(fetched) => events::parse_page(&fetched.body),
                Err(failure) => Err(failure),
            };
            let page = match page {
                Ok(Some(page)) => page,
                Ok(None) => {
                    batch.no_data = true;
                    break;
                }
                Err(failure) if start == 1 => return Err(failure),
                Err(failure) => {
                    // Later pages failed: keep what we read, but do not infer removals from a partial list.
                    set.complete = false;
                    batch.record_failure(failure);
                    break;
                }
            };
            for event in &page.rows {
                let Some(park) = events::match_park(event, &parks) else { continue };
                set.items.push(EventReading {
                    event_id: events::event_id(
                        &event.title_ko,
                        event.place_ko.as_deref(),
                        event.starts_on,
                    ),
                    park_id: park.park_id.clone(),
                    title_ko: event.title_ko.clone(),
                    place_ko: event.place_ko.clone(),
                    starts_on: event.starts_on,
                    ends_on: event.ends_on,
                    free: event.free,
                    url: event.url.clone(),
                    cancelled: event.cancelled,
                });
            }
            if page.rows.is_empty() || end >= page.total {
                break;
            }
            start = end + 1;
        }
        batch.events = Some(set);
        Ok(batch)
    }
}

/// KMA short-term forecast per grid cell, the fallback weather source.
#[derive(Debug, Default)]
pub struct KmaWeather;

impl Collector for KmaWeather {
    fn source(&self) -> SourceId {
        SourceId::KmaForecast
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, Failure> {
        let key = key_or_missing(&ctx.upstreams.kma_api_key, "KMA_API_KEY")?;
        let parks = parks(&ctx.pool).await?;
        let (base_date, base_time) = kma::base_time(ctx.now);
        let mut by_cell: HashMap<(i32, i32), Vec<String>> = HashMap::new();
        for park in &parks {
            by_cell
                .entry(kma::grid(park.center.0, park.center.1))
                .or_default()
                .push(park.park_id.clone());
        }
        let mut cells: Vec<_> = by_cell.into_iter().collect();
        cells.sort();
        let mut batch = Batch::default();
        let mut answered = 0;
        for ((nx, ny), park_ids) in cells {
            let url = format!(
                "{}/getVilageFcst?serviceKey={}&pageNo=1&numOfRows=1000&dataType=JSON&base_date={base_date}&base_time={base_time}&nx={nx}&ny={ny}",
                ctx.upstreams.kma_api_url.trim_end_matches('/'),
                encode_segment(&key)
            );
            let label = format!("getVilageFcst {nx},{ny}");
            let parsed = match ctx.fetcher.get(&url, &label, &[]).await {
                Ok(fetched) => kma::parse(&fetched.body, ctx.now),
                Err(failure) => Err(failure),
            };
            match parsed {
                Ok(Some(forecast)) => {
                    answered += 1;
                    batch.weather.extend(park_ids.into_iter().map(|park_id| WeatherReading {
                        park_id,
                        observed_at: forecast.issued_at,
                        source: SourceId::KmaForecast,
                        temperature_c: forecast.temperature_c,
                        precipitation: forecast.precipitation,
                        sky: forecast.sky,
                        rain_chance_percent: forecast.rain_chance_percent,
                        pm10: None,
                        pm25: None,
                    }));
                }
                Ok(None) => {
                    answered += 1;
                    batch.no_data = true;
                }
                Err(failure) => {
                    let stop = host_down(&failure);
                    batch.record_failure(failure);
                    if stop {
                        break;
                    }
                }
            }
        }
        batch.unless_no_park_answered(answered)
    }
}

/// The Hangang headquarters' notice board.
#[derive(Debug, Default)]
pub struct NoticeBoard;

impl Collector for NoticeBoard {
    fn source(&self) -> SourceId {
        SourceId::HangangNotices
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, Failure> {
        let Some(url) = &ctx.upstreams.notices_url else {
            return Err(Failure::new(ErrorClass::Auth, "HANGANG_NOTICES_URL is not configured"));
        };
        let names: Vec<notices::ParkNames> = parks(&ctx.pool)
            .await?
            .into_iter()
            .map(|park| notices::ParkNames {
                park_id: park.park_id,
                name_ko: park.name_ko,
                short_ko: park.short_ko,
            })
            .collect();
        let fetched = ctx.fetcher.get(url, "notice board", &[]).await?;
        let board = notices::parse_board(&String::from_utf8_lossy(&fetched.body), url, &names)?;
        let no_data = board.is_empty();
        let notices = board
            .into_iter()
            .map(|notice| NoticeReading {
                notice_id: notices::notice_id(
                    &notice.title_ko,
                    notice.url.as_deref(),
                    notice.posted_at,
                ),
                park_id: notice.park_id,
                lot_id: None,
                kind: notice.kind,
                title_ko: notice.title_ko,
                url: notice.url,
                source: SourceId::HangangNotices,
                starts_at: Some(notice.posted_at),
                ends_at: None,
            })
            .collect();
        Ok(Batch { notices, no_data, ..Batch::default() })
    }
}

#[cfg(test)]
mod tests {
    use super::encode_segment;

    #[test]
    fn korean_area_names_are_percent_encoded() {
        assert_eq!(
            encode_segment("여의도한강공원"),
            "%EC%97%AC%EC%9D%98%EB%8F%84%ED%95%9C%EA%B0%95%EA%B3%B5%EC%9B%90"
        );
        assert_eq!(encode_segment("sample"), "sample");
    }
}
