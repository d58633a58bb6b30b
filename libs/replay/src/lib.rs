//! A replay upstream: a small HTTP server that answers like the real sources (the parking portal's HTML
//! region pages, Seoul's `citydata` and `culturalEventInfo` JSON with their quirks, KMA's `getVilageFcst`, the
//! notice board's HTML), from a [`World`] that tests set value by value and that [`World::advance_to`] moves
//! through a realistic day (empty lots in the morning, full lots on weekend afternoons, a weekday hour at
//! 13:00 when the parking portal fails, quiet nights where city data answers `INFO-200`).
//!
//! Faults are injected per source ([`Fault`]): HTTP errors, HTML error pages, quota XML with HTTP 200,
//! truncated bodies, slow answers. [`apns`] is the same for Apple's push service. Everything here only ever
//! listens on loopback.

pub mod apns;
mod day;
mod render;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio_util::sync::CancellationToken;

pub use day::scene_at;

/// Which upstream endpoint a fault applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Endpoint {
    ParkingPortal,
    /// One region page of the parking portal (`region{N}`); a fault here wins over one for the whole portal.
    /// Requests are counted under [`Endpoint::ParkingPortal`].
    ParkingRegion(u8),
    Citydata,
    CulturalEvents,
    Kma,
    Notices,
}

/// A way the real sources fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP error status with a short body.
    Status(u16),
    /// HTTP 200 with an HTML maintenance page.
    HtmlErrorPage,
    /// HTTP 200 with the data.go.kr gateway's quota XML.
    QuotaXml,
    /// The correct answer cut in half.
    Truncated,
    /// The correct answer after a delay.
    Slow(Duration),
    /// Seoul's `INFO-200` ("해당하는 데이터가 없습니다") with HTTP 200, whatever was asked; the portal's page
    /// with its table but no rows.
    NoData,
    /// Cultural events: every page answers `INFO-000` with the right total but no rows.
    EmptyRows,
    /// Cultural events: every page leaves out its last row (the total still counts it).
    ShortPage,
    /// Cultural events: pages after the first report a `list_total_count` off by this much.
    TotalDrift(i32),
    /// The notice board with its table inside this many nested `<div>`s.
    Nested(u32),
    /// The notice board with this many more rows (numbered announcements that name no park).
    ManyRows(u32),
}

/// One parking lot as the portal lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct PortalLot {
    pub region: u8,
    pub name: String,
    pub address: String,
    pub available: Option<u32>,
    pub capacity: u32,
}

/// One park area as city data describes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Area {
    /// `여유`, `보통`, `약간 붐빔` or `붐빔`.
    pub level_ko: String,
    pub message_ko: String,
    pub population: (u32, u32),
    /// KST `YYYY-MM-DD HH:MM`.
    pub observed_kst: String,
    pub temperature_c: f64,
    pub precipitation_ko: String,
    pub sky_ko: String,
    pub rain_chance: u8,
    /// City data answers `INFO-200` for this area (the small hours).
    pub no_data: bool,
}

/// A cultural event row.
#[derive(Clone, Debug, PartialEq)]
pub struct CulturalEvent {
    pub title: String,
    pub place: String,
    pub starts_on: String,
    pub ends_on: String,
    pub free: bool,
}

/// A notice board entry.
#[derive(Clone, Debug, PartialEq)]
pub struct BoardEntry {
    pub id: u32,
    pub title: String,
    /// `YYYY-MM-DD`.
    pub date: String,
}

/// Everything the replay upstream answers from.
#[derive(Clone, Debug, Default)]
pub struct WorldState {
    pub lots: Vec<PortalLot>,
    /// By `AREA_NM`.
    pub areas: BTreeMap<String, Area>,
    pub events: Vec<CulturalEvent>,
    /// `ORG_LINK` by event title, written as organisers write it (`https://…`, `javascript:…`, `sms:…`);
    /// blank for the others, as for most real rows.
    pub event_links: BTreeMap<String, String>,
    pub notices: Vec<BoardEntry>,
    /// The `href` of board entries by id, as the board writes it; the others link `/notices/view?id=…`.
    pub notice_links: BTreeMap<u32, String>,
    /// Faults set by a test or operator; kept when the day advances.
    pub faults: BTreeMap<Endpoint, Fault>,
    /// Faults the day script plays (the portal's failing hour); replaced when the day advances.
    pub scripted_faults: BTreeMap<Endpoint, Fault>,
    /// KST `YYYYMMDD`, `HHMM` of the KMA forecast served.
    pub kma_base: (String, String),
    /// Requests answered, by endpoint (tests check politeness and retries).
    pub requests: BTreeMap<Endpoint, u32>,
}

/// A shared, mutable world.
#[derive(Clone, Debug, Default)]
pub struct World(Arc<Mutex<WorldState>>);

impl World {
    /// The world at `kst` (`YYYY-MM-DDTHH:MM`), from the curated reference data and the day script.
    pub fn at(kst: &str) -> anyhow::Result<World> {
        Ok(World(Arc::new(Mutex::new(scene_at(kst)?))))
    }

    /// Moves the scripted day to `kst`, keeping faults and request counts.
    pub fn advance_to(&self, kst: &str) -> anyhow::Result<()> {
        let scene = scene_at(kst)?;
        self.update(|state| {
            state.lots = scene.lots;
            state.areas = scene.areas;
            state.events = scene.events;
            state.notices = scene.notices;
            state.kma_base = scene.kma_base;
            state.scripted_faults = scene.scripted_faults;
        });
        Ok(())
    }

    /// Changes the world.
    pub fn update<T>(&self, change: impl FnOnce(&mut WorldState) -> T) -> T {
        change(&mut self.0.lock().expect("the world lock is never poisoned"))
    }

    /// Sets the available spaces the portal reports for a lot, by its portal name.
    pub fn set_available(&self, lot_name: &str, available: Option<u32>) {
        self.update(|state| {
            for lot in state.lots.iter_mut().filter(|lot| lot.name == lot_name) {
                lot.available = available;
            }
        });
    }

    pub fn fail(&self, endpoint: Endpoint, fault: Fault) {
        self.update(|state| state.faults.insert(endpoint, fault));
    }

    pub fn heal(&self, endpoint: Endpoint) {
        self.update(|state| state.faults.remove(&endpoint));
    }

    pub fn requests(&self, endpoint: Endpoint) -> u32 {
        self.update(|state| state.requests.get(&endpoint).copied().unwrap_or(0))
    }

    fn snapshot(&self, endpoint: Endpoint) -> (WorldState, Option<Fault>) {
        self.snapshot_of(endpoint, endpoint)
    }

    /// The world and the fault for `specific` (a part of `endpoint`), counting the request under `endpoint`.
    fn snapshot_of(&self, endpoint: Endpoint, specific: Endpoint) -> (WorldState, Option<Fault>) {
        self.update(|state| {
            *state.requests.entry(endpoint).or_default() += 1;
            let fault = [specific, endpoint]
                .iter()
                .find_map(|key| state.faults.get(key).or_else(|| state.scripted_faults.get(key)))
                .cloned();
            (state.clone(), fault)
        })
    }
}

/// The routes, as the real hosts lay them out (one server plays every host).
pub fn router(world: World) -> Router {
    Router::new()
        .route("/parking/region/{page}", get(parking_region))
        .route("/{key}/json/citydata/{start}/{end}/{area}", get(citydata))
        .route("/{key}/json/culturalEventInfo/{start}/{end}/", get(cultural_events))
        .route("/getVilageFcst", get(kma))
        .route("/notices", get(notice_board))
        .with_state(world)
}

/// Serves the world on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    world: World,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    axum::serve(listener, router(world)).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}

/// Binds loopback port 0 and serves in the background; returns the base URL.
pub async fn spawn(world: World, shutdown: CancellationToken) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(serve(listener, world, shutdown));
    Ok(base)
}

/// Applies a fault to a correct answer.
async fn answer(fault: Option<Fault>, content_type: &'static str, body: String) -> Response {
    match fault {
        None => ([(header::CONTENT_TYPE, content_type)], body).into_response(),
        Some(Fault::Status(code)) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (status, format!("{code} error")).into_response()
        }
        Some(Fault::HtmlErrorPage) => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><head><title>점검 중</title></head><body><h1>서비스 점검 중입니다</h1><p>잠시 후 다시 이용해 주세요.</p></body></html>",
        )
            .into_response(),
        Some(Fault::QuotaXml) => ([(header::CONTENT_TYPE, "text/xml;charset=UTF-8")], render::QUOTA_XML).into_response(),
        Some(Fault::Truncated) => {
            let mut cut = body.len() / 2;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            ([(header::CONTENT_TYPE, content_type)], body[..cut].to_owned()).into_response()
        }
        Some(Fault::Slow(delay)) => {
            tokio::time::sleep(delay).await;
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        // Shaped by the source's own renderer (`render::Shape`); here the answer is already shaped.
        Some(
            Fault::NoData
            | Fault::EmptyRows
            | Fault::ShortPage
            | Fault::TotalDrift(_)
            | Fault::Nested(_)
            | Fault::ManyRows(_),
        ) => {
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
    }
}

async fn parking_region(State(world): State<World>, Path(page): Path<String>) -> Response {
    let Some(region) = page.strip_prefix("region").and_then(|n| n.parse::<u8>().ok()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (state, fault) =
        world.snapshot_of(Endpoint::ParkingPortal, Endpoint::ParkingRegion(region));
    let rows = fault != Some(Fault::NoData);
    answer(fault, "text/html; charset=utf-8", render::region_page(&state, region, rows)).await
}

async fn citydata(
    State(world): State<World>,
    Path((_, _, _, area)): Path<(String, String, String, String)>,
) -> Response {
    let (state, fault) = world.snapshot(Endpoint::Citydata);
    let body = match fault {
        Some(Fault::NoData) => render::no_data().to_string(),
        _ => render::citydata(&state, &area),
    };
    answer(fault, "application/json;charset=UTF-8", body).await
}

async fn cultural_events(
    State(world): State<World>,
    Path((_, start, end)): Path<(String, String, String)>,
) -> Response {
    let (state, fault) = world.snapshot(Endpoint::CulturalEvents);
    let (start, end) = (start.parse().unwrap_or(1), end.parse().unwrap_or(1000));
    let body = render::cultural_events(&state, start, end, fault.as_ref());
    answer(fault, "application/json;charset=UTF-8", body).await
}

async fn kma(State(world): State<World>, RawQuery(query): RawQuery) -> Response {
    let (state, fault) = world.snapshot(Endpoint::Kma);
    let query = query.unwrap_or_default();
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix(&format!("{name}=")))
            .unwrap_or_default()
            .to_owned()
    };
    answer(fault, "application/json;charset=UTF-8", render::kma(&state, &param("nx"), &param("ny")))
        .await
}

async fn notice_board(State(world): State<World>) -> Response {
    let (state, fault) = world.snapshot(Endpoint::Notices);
    let body = render::notice_board(&state, fault.as_ref());
    answer(fault, "text/html; charset=utf-8", body).await
}
