//! `AppState`: what every handler shares (the snapshot store, metrics, the rate limiter, the push client) and
//! the pre-serialized hot bodies kept until their snapshot or a freshness state in them changes.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use cache::Cache;
use contracts::{
    Timestamp, freshness::ServedFrom, proto::push::v1::push_client::PushClient, v2::Lang,
};
use readmodel::Snapshot;

use crate::{
    clock::Clock,
    config::Config,
    error::ApiError,
    metrics::Metrics,
    rate_limit::RateLimiter,
    respond::{self, Rendered},
    retirement::RetirementSettings,
    store::{Current, SnapshotStore},
    usage::UsageSettings,
};

/// Which pre-serialized body: a route, a language and the park or lot it is about. Only bodies that rendered
/// are kept, so the subjects are bounded by the reference data, whatever ids clients send.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BodyKey {
    pub route: &'static str,
    pub lang: Lang,
    pub subject: Option<Box<str>>,
}

impl BodyKey {
    /// The body of a route without a subject.
    pub fn route(route: &'static str, lang: Lang) -> BodyKey {
        BodyKey { route, lang, subject: None }
    }

    /// The body of a route about one park or lot.
    pub fn about(route: &'static str, lang: Lang, subject: &str) -> BodyKey {
        BodyKey { route, lang, subject: Some(subject.into()) }
    }
}

#[derive(Debug)]
struct CachedBody {
    snapshot: Arc<Snapshot>,
    served_from: ServedFrom,
    rendered: Rendered,
}

/// Shared state of every handler, behind one `Arc`: axum clones the state for every request (the middleware,
/// the handler service, each `State` extractor), and one reference count is much cheaper than one per handle.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds: cheap handles only, so a state still being configured (`with_*`) clones cheaply.
#[derive(Clone, Debug)]
pub struct Shared {
    pub store: Arc<SnapshotStore>,
    pub metrics: Metrics,
    /// Who this process is: release, commit, environment (health bodies, `/v2/status`, `/metrics`).
    pub identity: Arc<server::Identity>,
    /// How long `ops` rollout records are kept.
    pub ops_retention_days: u32,
    hot_ttl_seconds: i64,
    bodies: Arc<RwLock<HashMap<BodyKey, Arc<CachedBody>>>>,
    pub(crate) rate_limiter: Arc<RateLimiter>,
    /// The push service, when configured.
    pub push: Option<PushClient<server::grpc_auth::AuthChannel>>,
    /// What one connection may cost the server.
    pub http_limits: crate::serve::HttpLimits,
    /// Requests counted by API version and app build, written to `ops.api_usage_day` in the background.
    pub usage: Arc<crate::usage::Usage>,
    /// How often `usage` is written.
    pub usage_flush: Duration,
    /// The API versions being retired: their responses carry `Deprecation` and `Sunset`.
    pub retirement: Arc<contracts::retirement::Schedule>,
    /// The features file in force (`/v2/config`), reloaded in the background when it changes.
    pub features: Arc<crate::features::LiveFeatures>,
}

impl AppState {
    pub fn new(config: &Config, db: sqlx::PgPool, cache: Cache, clock: Clock) -> AppState {
        let metrics = Metrics::default();
        // Checked at start by `main` (`Config::grpc_client.token()`); a file gone since leaves calls without it.
        let push_token = config.grpc_client.token().unwrap_or_else(|error| {
            tracing::error!(error = %format!("{error:#}"), "the gRPC token is unusable; push will refuse the api");
            None
        });
        let hot_ttl = Duration::from_secs(config.hot_cache_ttl_seconds.max(1));
        AppState(Arc::new(Shared {
            store: Arc::new(SnapshotStore::new(db, cache, clock, hot_ttl, metrics.clone())),
            metrics: metrics.clone(),
            identity: Arc::new(server::Identity::new("api", &config.common)),
            ops_retention_days: config.common.ops_retention_days,
            hot_ttl_seconds: hot_ttl.as_secs() as i64,
            bodies: Arc::default(),
            rate_limiter: Arc::new(RateLimiter::new(&config.write_limits)),
            push: config.push_grpc_url.as_deref().and_then(|url| {
                let endpoint = tonic::transport::Endpoint::from_shared(url.to_owned())
                    .map_err(|error| tracing::error!(%error, "PUSH_GRPC_URL is not a URL; installations are unavailable"))
                    .ok()?;
                let channel = endpoint.connect_timeout(Duration::from_secs(2)).connect_lazy();
                Some(PushClient::new(server::grpc_auth::authorized(channel, push_token.as_ref())))
            }),
            http_limits: config.http.clone(),
            usage: Arc::new(crate::usage::Usage::new(&UsageSettings::default(), metrics.clone())),
            usage_flush: Duration::from_secs(UsageSettings::default().usage_flush_seconds),
            retirement: Arc::default(),
            features: Arc::new(crate::features::LiveFeatures::none(metrics.clone())),
        }))
    }

    /// The shared part, to change while the state is being configured (a copy if it is already shared).
    fn configure(&mut self) -> &mut Shared {
        Arc::make_mut(&mut self.0)
    }

    /// This state counting calling builds as `settings` say (fresh counts).
    pub fn with_usage(mut self, settings: &UsageSettings) -> AppState {
        let usage = Arc::new(crate::usage::Usage::new(settings, self.metrics.clone()));
        let shared = self.configure();
        shared.usage = usage;
        shared.usage_flush = Duration::from_secs(settings.usage_flush_seconds.max(1));
        self
    }

    /// This state with the API versions being retired.
    pub fn with_retirement(mut self, settings: &RetirementSettings) -> AppState {
        self.configure().retirement = Arc::new(settings.api_retirement.clone());
        self
    }

    /// This state with the features file `settings` name, read now (an invalid file is an error).
    pub fn with_features(
        mut self,
        settings: &crate::features::FeatureSettings,
    ) -> anyhow::Result<AppState> {
        let features =
            Arc::new(crate::features::LiveFeatures::load(settings, self.metrics.clone())?);
        self.configure().features = features;
        Ok(self)
    }

    /// This state serving connections within `limits`.
    pub fn with_http_limits(mut self, limits: crate::serve::HttpLimits) -> AppState {
        self.configure().http_limits = limits;
        self
    }

    pub fn now(&self) -> Timestamp {
        self.store.clock().now()
    }

    pub(crate) async fn current(&self) -> Result<Current, ApiError> {
        self.store
            .current()
            .await
            .map_err(|unavailable| ApiError::Unavailable(unavailable.to_string()))
    }

    /// Until when a body rendered from `current` may be reused by clients and caches.
    pub(crate) fn reusable_until(&self, current: &Current, now: Timestamp) -> Option<Timestamp> {
        let hot_until = Timestamp::from_unix_seconds(
            current.snapshot.built_at.as_unix_seconds() + self.hot_ttl_seconds,
        )
        .expect("in range");
        respond::reusable_until(
            current.served_from,
            hot_until,
            current.snapshot.next_transition(now),
        )
    }

    /// The pre-serialized body for `key`, rendered again only when the snapshot, its origin, or a freshness
    /// state in it changed. A render that fails (an unknown park) is returned and not kept.
    pub(crate) fn cached_body<E>(
        &self,
        key: BodyKey,
        current: &Current,
        now: Timestamp,
        render: impl FnOnce(Option<Timestamp>) -> Result<Rendered, E>,
    ) -> Result<Rendered, E> {
        let cached = self.bodies.read().expect("lock is never poisoned").get(&key).cloned();
        if let Some(cached) = cached
            && Arc::ptr_eq(&cached.snapshot, &current.snapshot)
            && cached.served_from == current.served_from
            && cached.rendered.reusable_until.is_some_and(|until| now < until)
        {
            return Ok(cached.rendered.clone());
        }
        let rendered = render(self.reusable_until(current, now))?;
        if rendered.reusable_until.is_some() {
            let entry = Arc::new(CachedBody {
                snapshot: current.snapshot.clone(),
                served_from: current.served_from,
                rendered: rendered.clone(),
            });
            self.bodies.write().expect("lock is never poisoned").insert(key, entry);
        }
        Ok(rendered)
    }
}
