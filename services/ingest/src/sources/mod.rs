//! One collector per source behind one trait: fetch → parse → classify here, store in `crate::store`.
//!
//! | source | collector | schedule |
//! |---|---|---|
//! | `parking_portal` | [`parking_portal`]: 11 region pages, one per park | every 2 min |
//! | `seoul_citydata` | [`citydata`]: one request per park | every 5 min |
//! | `seoul_cultural_events` | [`events`]: every page | hourly |
//! | `kma_forecast` | [`kma`]: one request per grid cell | every 3 h, after KMA's base times |
//! | `hangang_notices` | [`notices`]: the notice board | every 15 min |
//! | `curated` | the reference file shipped with the release (`db::reference`) | daily |
//!
//! Sources collected per park record each park's share in the batch (`Batch::part`), so one bad page fails
//! one park: the run is `partial`, the others are stored and stay `ok`.

pub mod citydata;
pub mod events;
pub mod kma;
pub mod notices;
pub mod parking_portal;

use std::{future::Future, time::Duration};

use contracts::{Timestamp, freshness::SourceId};
use settings::Secret;
use sqlx::PgPool;

use crate::{
    batch::{Batch, PartResult},
    endpoint::UpstreamUrl,
    fetch::Fetcher,
    outcome::{ErrorClass, Failure},
};

/// Where the upstream sources are.
#[derive(Clone, Debug)]
pub struct Upstreams {
    pub parking_portal_url: UpstreamUrl,
    pub seoul_openapi_url: UpstreamUrl,
    pub seoul_openapi_key: Option<Secret>,
    pub kma_api_url: UpstreamUrl,
    pub kma_api_key: Option<Secret>,
    pub notices_url: Option<UpstreamUrl>,
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

/// Why a collection could not be made: the source failed, or our own database did (which must never be
/// recorded as the source's failure).
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{0}")]
    Source(#[from] Failure),
    #[error("reading reference data: {0}")]
    Database(#[from] sqlx::Error),
}

/// One upstream source.
pub trait Collector: Send + Sync {
    fn source(&self) -> SourceId;

    /// Fetches and parses one full collection. `Err(Source)` when nothing could be collected; a partial
    /// failure is carried in the batch so the parts that worked are still stored.
    fn collect(&self, ctx: &Context) -> impl Future<Output = Result<Batch, CollectError>> + Send;
}

/// The sources ingest collects, in schedule order; `Curated` is the reference file shipped with the release.
pub const COLLECTED: [SourceId; 6] = [
    SourceId::ParkingPortal,
    SourceId::SeoulCitydata,
    SourceId::SeoulCulturalEvents,
    SourceId::KmaForecast,
    SourceId::HangangNotices,
    SourceId::Curated,
];

/// A name that is not one of the [`COLLECTED`] sources.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a collected source; one of: parking_portal, seoul_citydata, seoul_cultural_events, kma_forecast, hangang_notices, curated"
)]
pub struct NotCollected(pub String);

/// The collected source spelled `name` (its `SourceId` spelling, as `/v2/status` and the run records show).
pub fn collected(name: &str) -> Result<SourceId, NotCollected> {
    COLLECTED
        .into_iter()
        .find(|source| source.as_str() == name)
        .ok_or_else(|| NotCollected(name.to_owned()))
}

/// The normal collection interval of a source; `None` for a source ingest does not collect.
pub fn interval(source: SourceId) -> Option<Duration> {
    Some(Duration::from_secs(match source {
        SourceId::ParkingPortal => 120,
        SourceId::SeoulCitydata => 300,
        SourceId::SeoulCulturalEvents => 3_600,
        SourceId::KmaForecast => 3 * 3_600,
        SourceId::HangangNotices => 900,
        SourceId::Curated => 24 * 3_600,
        SourceId::Operator | SourceId::HangangjariForecast | SourceId::Unknown => return None,
    }))
}

/// A park as the collectors map source names to it.
#[derive(Clone, Debug)]
pub(crate) struct ParkRef {
    pub park_id: String,
    pub name_ko: String,
    pub short_ko: String,
    pub center: (f64, f64),
    pub citydata_area: String,
    pub portal_region: i16,
}

pub(crate) async fn parks(pool: &PgPool) -> Result<Vec<ParkRef>, sqlx::Error> {
    type Row = (String, String, serde_json::Value, f64, f64, String, i16);
    let rows: Vec<Row> = sqlx::query_as(
        "select park_id, name_ko, short_names, center_lat, center_lng, citydata_area, portal_region
         from reference.park order by sort_order",
    )
    .fetch_all(pool)
    .await?;
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
pub(crate) fn encode_segment(segment: &str) -> String {
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

/// A Seoul Open Data Plaza request, `{base}/{KEY}/json/{service}/{start}/{end}/{args…}`: the key is part of
/// the path, which is why the base is https.
pub(crate) fn seoul_url(
    base: &UpstreamUrl,
    key: &str,
    service: &str,
    (start, end): (u32, u32),
    args: &[&str],
) -> String {
    let args: Vec<String> = args.iter().map(|arg| encode_segment(arg)).collect();
    base.join(&format!("/{}/json/{service}/{start}/{end}/{}", encode_segment(key), args.join("/")))
}

/// Whether a failure means the host is unreachable, so further requests this run would only wait too.
pub(crate) fn host_down(failure: &Failure) -> bool {
    matches!(failure.class, ErrorClass::Connect | ErrorClass::Timeout | ErrorClass::Tls)
}

/// Records the parks a run did not reach because the host went down: they failed as the last one did.
pub(crate) fn parks_not_reached<'a>(
    batch: &mut Batch,
    parks: impl IntoIterator<Item = &'a str>,
    failure: &Failure,
) {
    for park_id in parks {
        batch.part(
            park_id,
            PartResult::Failed(Failure::new(
                failure.class,
                format!("not asked: the host was down ({})", failure.message),
            )),
        );
    }
}

pub(crate) fn key_or_missing(key: &Option<Secret>, variable: &str) -> Result<String, Failure> {
    key.as_ref()
        .map(|key| key.expose().to_owned())
        .ok_or_else(|| Failure::new(ErrorClass::Auth, format!("{variable} is not configured")))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{encode_segment, seoul_url};

    #[derive(clap::Parser)]
    struct Command {
        #[command(flatten)]
        upstream: crate::UpstreamSettings,
    }

    #[test]
    fn every_source_is_called_over_https_by_default() {
        let upstream = Command::try_parse_from(["hangang-ingest"]).unwrap().upstream.upstreams();
        for base in
            [&upstream.parking_portal_url, &upstream.seoul_openapi_url, &upstream.kma_api_url]
        {
            assert!(base.as_str().starts_with("https://"), "{base}");
        }
        let citydata =
            seoul_url(&upstream.seoul_openapi_url, "KEY", "citydata", (1, 5), &["여의도한강공원"]);
        assert_eq!(
            citydata,
            "https://openapi.seoul.go.kr/KEY/json/citydata/1/5/%EC%97%AC%EC%9D%98%EB%8F%84%ED%95%9C%EA%B0%95%EA%B3%B5%EC%9B%90"
        );
        assert_eq!(
            seoul_url(&upstream.seoul_openapi_url, "KEY", "culturalEventInfo", (1, 1000), &[]),
            "https://openapi.seoul.go.kr/KEY/json/culturalEventInfo/1/1000/"
        );
        let plain = Command::try_parse_from([
            "hangang-ingest",
            "--seoul-openapi-url",
            "http://openapi.seoul.go.kr:8088",
        ]);
        assert!(plain.is_err(), "the key would travel in clear text");
    }

    #[test]
    fn korean_area_names_are_percent_encoded() {
        assert_eq!(
            encode_segment("여의도한강공원"),
            "%EC%97%AC%EC%9D%98%EB%8F%84%ED%95%9C%EA%B0%95%EA%B3%B5%EC%9B%90"
        );
        assert_eq!(encode_segment("sample"), "sample");
    }
}
