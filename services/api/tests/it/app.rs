//! `TestApp`: one api instance with its own database, Redis prefix and clock, plus seeding helpers.

use api::{AppState, Config, clock::Clock};
use axum::{
    body::Body,
    http::{HeaderMap, Method, Request, StatusCode},
};
use contracts::Timestamp;
use migrate::testing::TestDatabase;
use serde_json::Value;
use tower::ServiceExt;

/// 2026-06-14T08:20:00Z, a Sunday afternoon in Seoul (17:20 KST).
pub const T0: i64 = 1_781_425_200;

pub fn at(offset_seconds: i64) -> Timestamp {
    Timestamp::from_unix_seconds(T0 + offset_seconds).unwrap()
}

pub struct TestApp {
    pub state: AppState,
    pub clock: Clock,
    pub database: TestDatabase,
    pub config: Config,
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: Vec<u8>,
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

pub fn config(database_url: &str, redis_url: &str, prefix: &str, hot_ttl: u64) -> Config {
    Config {
        http_addr: "127.0.0.1:0".parse().unwrap(),
        admin: settings::AdminSettings { admin_addr: "127.0.0.1:0".parse().unwrap() },
        hot_cache_ttl_seconds: hot_ttl,
        push_grpc_url: None,
        grpc_client: server::GrpcClientAuth::default(),
        write_limits: api::rate_limit::WriteLimits::default(),
        http: api::serve::HttpLimits::default(),
        database: db::DatabaseSettings {
            database_url: settings::DATABASE_URL.parse_url(database_url).unwrap(),
            database_max_connections: 4,
            database_acquire_timeout_ms: 500,
            database_statement_timeout_ms: db::DEFAULT_STATEMENT_TIMEOUT_MS,
            database_password_file: None,
        },
        redis: cache::RedisSettings {
            redis_url: settings::REDIS_URL.parse_url(redis_url).unwrap(),
            redis_timeout_ms: 150,
            redis_key_prefix: prefix.to_owned(),
            redis_password_file: None,
        },
        common: settings::CommonSettings {
            release_id: "test-release".to_owned(),
            log_filter: "warn".to_owned(),
            ..Default::default()
        },
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(15, &redis_url()).await
    }

    /// With a given hot-cache period and Redis URL (a closed port simulates Redis being down).
    pub async fn spawn_with(hot_ttl: u64, redis_url: &str) -> TestApp {
        let database = TestDatabase::create().await.unwrap();
        let config = config(&database.url, redis_url, &format!("{}:", database.name), hot_ttl);
        let clock = Clock::manual(at(0));
        let cache = cache::Cache::connect(&config.redis).unwrap();
        let state = AppState::new(&config, database.pool.clone(), cache, clock.clone());
        TestApp { state, clock, database, config }
    }

    /// This app with other write limits (and trusted proxies).
    pub fn with_write_limits(mut self, limits: api::rate_limit::WriteLimits) -> TestApp {
        self.config.write_limits = limits;
        let cache = cache::Cache::connect(&self.config.redis).unwrap();
        self.state =
            AppState::new(&self.config, self.database.pool.clone(), cache, self.clock.clone());
        self
    }

    /// Another api process on the same database and Redis namespace, sharing the clock.
    pub fn second_replica(&self, pool: sqlx::PgPool) -> AppState {
        let cache = cache::Cache::connect(&self.config.redis).unwrap();
        AppState::new(&self.config, pool, cache, self.clock.clone())
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> TestResponse {
        request_to(&self.state, method, path, headers, body).await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        self.request(Method::GET, path, &[], None).await
    }

    /// A GET on the admin listener's routes.
    pub async fn admin(&self, path: &str) -> TestResponse {
        admin_get(&self.state, path).await
    }

    pub async fn execute(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
            .execute(&self.database.pool)
            .await
            .unwrap();
    }

    /// Records a successful collection of `source` at `offset` seconds.
    pub async fn source_ok(&self, source: &str, offset: i64) {
        sqlx::query(
            "insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome, consecutive_failures)
             values ($1, $2, $2, 'ok', 0)
             on conflict (source) do update set last_attempt_at = excluded.last_attempt_at,
                last_success_at = excluded.last_success_at, last_outcome = 'ok', consecutive_failures = 0,
                last_error_class = null",
        )
        .bind(source)
        .bind(db::db_time(at(offset)))
        .execute(&self.database.pool)
        .await
        .unwrap();
    }

    /// Records `failures` failed collections of `source` after its last success.
    pub async fn source_failing(&self, source: &str, offset: i64, failures: i32) {
        sqlx::query(
            "update ingest.source_status set last_attempt_at = $2, last_outcome = 'failed',
                consecutive_failures = $3, last_error_class = 'timeout', last_error_message = 'timed out after 10s'
             where source = $1",
        )
        .bind(source)
        .bind(db::db_time(at(offset)))
        .bind(failures)
        .execute(&self.database.pool)
        .await
        .unwrap();
    }

    pub async fn lot_observation(&self, lot_id: &str, offset: i64, available: i32, capacity: i32) {
        sqlx::query(
            "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
             values ($1, $2, $2, $3, $4)",
        )
        .bind(lot_id)
        .bind(db::db_time(at(offset)))
        .bind(available)
        .bind(capacity)
        .execute(&self.database.pool)
        .await
        .unwrap();
    }

    /// A realistic afternoon: parking, congestion and weather for Yeouido, an event, a notice, forecasts.
    pub async fn seed_afternoon(&self) {
        self.source_ok("parking_portal", -60).await;
        self.source_ok("seoul_citydata", -120).await;
        self.source_ok("seoul_cultural_events", -1_800).await;
        self.source_ok("hangang_notices", -3_600).await;
        for (lot, available, capacity) in [
            ("yeouido-1", 40, 371),
            ("yeouido-2", 132, 1_087),
            ("yeouido-3", 0, 283),
            ("yeouido-4", 55, 238),
            ("yeouido-5", 66, 32),
        ] {
            self.lot_observation(lot, -60, available, capacity).await;
        }
        self.lot_observation("banpo-1", -60, 12, 310).await;
        self.execute(&format!(
            "insert into ingest.congestion_observation (park_id, observed_at, fetched_at, level, message_ko, population_min, population_max)
             values ('yeouido', to_timestamp({o}), to_timestamp({f}), 'slightly_crowded', '사람이 몰려있을 수 있어요.', 34000, 36000);
             insert into ingest.translation (source_hash, lang, text, origin)
             values ('{h}', 'en', 'It may be a little crowded.', 'curated');
             insert into ingest.weather_observation (park_id, observed_at, fetched_at, source, temperature_c, precipitation, sky, rain_chance_percent, pm10, pm25)
             values ('yeouido', to_timestamp({w}), to_timestamp({f}), 'seoul_citydata', 26.3, 'none', 'partly_cloudy', 20, 31, 15);
             insert into ingest.event (event_id, park_id, source, title_ko, place_ko, starts_on, ends_on, free, url, first_seen_at, last_seen_at)
             values ('ev-1', 'yeouido', 'seoul_cultural_events', '한강 여름축제', '물빛광장', '2026-06-01', '2026-06-30', true, 'https://example.org/e/1', to_timestamp({e}), to_timestamp({e})),
                    ('ev-2', 'yeouido', 'seoul_cultural_events', '취소된 공연', null, '2026-06-14', '2026-06-14', false, null, to_timestamp({e}), to_timestamp({e}));
             update ingest.event set cancelled_at = to_timestamp({e}) where event_id = 'ev-2';
             insert into ingest.notice (notice_id, park_id, lot_id, kind, title_ko, url, source, starts_at, ends_at)
             values ('nt-1', 'yeouido', 'yeouido-5', 'lot_closure', '축제 기간 여의도5주차장 21시 이후 폐쇄', 'https://example.org/n/1', 'hangang_notices', to_timestamp({ns}), null);
             insert into forecast.lot_forecast (lot_id, issued_at, based_on_observed_at, capacity, horizons, confidence, reasons)
             values ('yeouido-2', to_timestamp({fi}), to_timestamp({o2}), 1087,
                     '[{{\"horizon_minutes\":15,\"target_at\":\"{t15}\",\"p10\":96,\"p50\":118,\"p90\":139,\"risk_full\":0.02,\"risk\":\"low\",\"confidence\":\"high\"}},
                       {{\"horizon_minutes\":60,\"target_at\":\"{t60}\",\"p10\":12,\"p50\":70,\"p90\":131,\"risk_full\":0.21,\"risk\":\"medium\",\"confidence\":\"medium\"}}]',
                     'medium', '{{rapid_fill,event_nearby}}');
             insert into forecast.park_forecast (park_id, issued_at, hours, confidence, reasons)
             values ('yeouido', to_timestamp({fi}),
                     '[{{\"target_at\":\"{t60}\",\"level\":\"crowded\",\"population_min\":38000,\"population_max\":40000,\"confidence\":\"high\"}}]',
                     'high', '{{official_forecast}}');",
            o = T0 - 900,
            f = T0 - 120,
            w = T0 - 300,
            e = T0 - 1_800,
            ns = T0 + 3_600,
            fi = T0 - 30,
            o2 = T0 - 60,
            h = db::translation_key("사람이 몰려있을 수 있어요."),
            t15 = at(15 * 60 - 30),
            t60 = at(60 * 60 - 30),
        ))
        .await;
    }

    pub async fn cleanup(self) {
        self.database.drop_now().await.unwrap();
    }
}

/// A request to the app router of `state`.
pub async fn request_to(
    state: &AppState,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> TestResponse {
    send_to(api::router(state.clone()), method, path, headers, body).await
}

/// A GET to the admin router of `state`.
pub async fn admin_get(state: &AppState, path: &str) -> TestResponse {
    send_to(api::admin_router(state.clone()), Method::GET, path, &[], None).await
}

/// The api's two listeners on loopback ports, with their base URLs.
pub async fn loopback_listeners() -> (api::Listeners, String, String) {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", http.local_addr().unwrap());
    let admin_base = format!("http://{}", admin.local_addr().unwrap());
    (api::Listeners { http, admin }, base, admin_base)
}

async fn send_to(
    router: axum::Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> TestResponse {
    let mut builder = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let request =
        builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).unwrap();
    let response = router.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let raw = axum::body::to_bytes(response.into_body(), 1 << 24).await.unwrap().to_vec();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    TestResponse { status, headers, body, raw }
}
