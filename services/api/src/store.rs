//! Where the api gets its [`Snapshot`]: memory → Redis hot → PostgreSQL → last good build (memory, then Redis
//! stale).
//!
//! - A hot copy lives `hot_ttl` in this process's memory and in Redis (shared by replicas). Bodies rendered
//!   from it say `served_from: hot_cache`.
//! - A rebuild reads PostgreSQL. Only one request per process rebuilds at a time (the others wait for its
//!   result), and a short Redis lock keeps replicas from rebuilding the same snapshot together.
//! - Every successful build is also kept as the *last good* copy, in memory and in Redis without expiry.
//!   When PostgreSQL cannot be read, that copy is served with `served_from: stale_fallback`; freshness is
//!   still computed at serve time, so its values honestly age to `stale` and `expired`.
//! - Redis down: hot and stale copies simply come from memory and PostgreSQL. PostgreSQL down: stale copy.
//!   Both down and no copy in this process: [`Unavailable`].
//! - After a failed rebuild PostgreSQL is not retried for [`DB_RETRY_AFTER`], so an outage does not add a
//!   connection timeout to every request.
//! - A rebuild that does not finish within [`REBUILD_TIMEOUT`] counts as failed, and no request waits longer
//!   than that for another's rebuild: a database whose path went silent (no FIN, no RST) would otherwise hold
//!   every request on the rebuild lock until TCP gives up, although the last good copy is in memory.
//! - Everything past the in-memory hot copy runs as a task on the runtime the store was made on, which owns
//!   the PostgreSQL and Redis connections: requests are served on the serving threads' own runtimes
//!   (`serve.rs`), and a connection opened there would depend on that thread's runtime for as long as it lives.

use std::{
    sync::{
        Arc, RwLock,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use cache::Cache;
use contracts::{Timestamp, freshness::ServedFrom};
use readmodel::Snapshot;
use sqlx::PgPool;
use tracing::Instrument;

use crate::{clock::Clock, metrics::Metrics};

/// How long PostgreSQL is left alone after a failed rebuild.
pub const DB_RETRY_AFTER: Duration = Duration::from_secs(2);

/// The longest a rebuild may take before the last good copy is served instead. A healthy rebuild takes
/// milliseconds (`cargo xtask bench api`); the request timeout is 10 s.
pub const REBUILD_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a rebuild produced no snapshot.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Load(#[from] readmodel::snapshot::LoadError),
    #[error("PostgreSQL did not answer within {0:?}")]
    TimedOut(Duration),
}

/// How long a replica waits for another replica's rebuild before doing its own.
const PEER_REBUILD_WAIT: Duration = Duration::from_millis(250);

/// A snapshot and how it was obtained.
#[derive(Clone, Debug)]
pub struct Current {
    pub snapshot: Arc<Snapshot>,
    pub served_from: ServedFrom,
}

/// Neither PostgreSQL nor any cached copy could provide a snapshot.
#[derive(Debug, thiserror::Error)]
#[error("no data source is reachable and no earlier build is cached")]
pub struct Unavailable;

/// The snapshot tiers; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct SnapshotStore {
    db: PgPool,
    cache: Cache,
    clock: Clock,
    hot_ttl_seconds: i64,
    hot: RwLock<Option<Arc<Snapshot>>>,
    last_good: RwLock<Option<Arc<Snapshot>>>,
    rebuild: tokio::sync::Mutex<()>,
    /// Unix seconds before which PostgreSQL is not retried.
    db_retry_at: AtomicI64,
    metrics: Metrics,
    /// The runtime that owns the PostgreSQL and Redis connections; lookups past memory run on it.
    backends: tokio::runtime::Handle,
}

impl SnapshotStore {
    /// A store whose lookups past memory run on the current runtime (so it must be made inside one).
    pub fn new(
        db: PgPool,
        cache: Cache,
        clock: Clock,
        hot_ttl: Duration,
        metrics: Metrics,
    ) -> SnapshotStore {
        SnapshotStore {
            db,
            cache,
            clock,
            hot_ttl_seconds: hot_ttl.as_secs().max(1) as i64,
            hot: RwLock::new(None),
            last_good: RwLock::new(None),
            rebuild: tokio::sync::Mutex::new(()),
            db_retry_at: AtomicI64::new(0),
            metrics,
            backends: tokio::runtime::Handle::current(),
        }
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn db(&self) -> &PgPool {
        &self.db
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    fn hot_key(&self) -> cache::Key {
        self.cache.key(&["v2", "snapshot", "hot"])
    }

    fn stale_key(&self) -> cache::Key {
        self.cache.key(&["v2", "snapshot", "stale"])
    }

    fn lock_key(&self) -> cache::Key {
        self.cache.key(&["v2", "snapshot", "rebuild-lock"])
    }

    fn is_hot(&self, snapshot: &Snapshot, now: Timestamp) -> bool {
        snapshot.built_at.seconds_until(now) < self.hot_ttl_seconds
    }

    fn memory_hot(&self, now: Timestamp) -> Option<Arc<Snapshot>> {
        let hot = self.hot.read().expect("lock is never poisoned").clone()?;
        self.is_hot(&hot, now).then_some(hot)
    }

    /// The snapshot to render this request from.
    pub async fn current(self: &Arc<Self>) -> Result<Current, Unavailable> {
        let now = self.clock.now();
        if let Some(snapshot) = self.memory_hot(now) {
            self.metrics.cache_lookup("memory");
            return Ok(Current { snapshot, served_from: ServedFrom::HotCache });
        }
        // A task of its own: it runs where the connections live, a request that goes away does not waste a
        // rebuild others wait for, and its large future is not part of every request's.
        let store = Arc::clone(self);
        let lookup =
            async move { store.beyond_memory().await }.instrument(tracing::Span::current());
        self.backends.spawn(lookup).await.unwrap_or_else(|error| {
            tracing::error!(%error, "the snapshot lookup failed");
            Err(Unavailable)
        })
    }

    /// The hot copy from Redis, a rebuild from PostgreSQL, or the last good copy.
    async fn beyond_memory(&self) -> Result<Current, Unavailable> {
        // Waiting for another request's rebuild is bounded like a rebuild: with a silent database the queue
        // behind the lock would otherwise grow by one rebuild attempt per waiter.
        let Ok(_rebuilding) = tokio::time::timeout(REBUILD_TIMEOUT, self.rebuild.lock()).await
        else {
            return self.stale().await;
        };
        // Another request may have rebuilt while this one waited.
        let now = self.clock.now();
        if let Some(snapshot) = self.memory_hot(now) {
            self.metrics.cache_lookup("memory");
            return Ok(Current { snapshot, served_from: ServedFrom::HotCache });
        }
        if let Some(snapshot) = self.redis_hot(now).await {
            self.metrics.cache_lookup("redis_hot");
            return Ok(Current { snapshot, served_from: ServedFrom::HotCache });
        }
        if now.as_unix_seconds() >= self.db_retry_at.load(Ordering::Relaxed) {
            if let Some(snapshot) = self.wait_for_peer(now).await {
                self.metrics.cache_lookup("redis_hot");
                return Ok(Current { snapshot, served_from: ServedFrom::HotCache });
            }
            match self.build(now).await {
                Ok(snapshot) => {
                    self.metrics.cache_lookup("postgres");
                    return Ok(Current { snapshot, served_from: ServedFrom::Live });
                }
                Err(error) => {
                    tracing::error!(error = %error, "snapshot rebuild failed; serving the last good build");
                    self.metrics.rebuild_failed();
                    // From the failure's end, not the request's start: a failure that took longer than
                    // the pause would otherwise let the next waiter try again at once.
                    let retry_at =
                        self.clock.now().as_unix_seconds() + DB_RETRY_AFTER.as_secs() as i64;
                    self.db_retry_at.store(retry_at, Ordering::Relaxed);
                }
            }
        }
        self.stale().await
    }

    async fn redis_hot(&self, now: Timestamp) -> Option<Arc<Snapshot>> {
        let bytes = self.cache.get(&self.hot_key()).await.ok()??;
        let snapshot = Snapshot::from_bytes(&bytes)?;
        if !self.is_hot(&snapshot, now) {
            return None;
        }
        let snapshot = Arc::new(snapshot);
        *self.hot.write().expect("lock is never poisoned") = Some(snapshot.clone());
        Some(snapshot)
    }

    /// When another replica holds the rebuild lock, waits briefly for its result instead of rebuilding too.
    async fn wait_for_peer(&self, now: Timestamp) -> Option<Arc<Snapshot>> {
        match self.cache.try_lock(&self.lock_key(), Duration::from_secs(5)).await {
            Ok(false) => {}
            // We hold the lock, or Redis is down (then there is nothing to coordinate through).
            Ok(true) | Err(_) => return None,
        }
        let deadline = Instant::now() + PEER_REBUILD_WAIT;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(25)).await;
            if let Some(snapshot) = self.redis_hot(now).await {
                return Some(snapshot);
            }
        }
        None
    }

    async fn build(&self, now: Timestamp) -> Result<Arc<Snapshot>, RebuildError> {
        let started = Instant::now();
        let loaded =
            tokio::time::timeout(REBUILD_TIMEOUT, readmodel::snapshot::load(&self.db, now))
                .await
                .map_err(|_| RebuildError::TimedOut(REBUILD_TIMEOUT))??;
        let snapshot = Arc::new(loaded);
        self.metrics.rebuild_took(started.elapsed());
        *self.hot.write().expect("lock is never poisoned") = Some(snapshot.clone());
        *self.last_good.write().expect("lock is never poisoned") = Some(snapshot.clone());
        self.db_retry_at.store(0, Ordering::Relaxed);
        // Best effort: a cache that is down only means other replicas rebuild for themselves.
        let bytes = snapshot.to_bytes();
        let hot_ttl = Duration::from_secs(self.hot_ttl_seconds as u64);
        if self.cache.set(&self.hot_key(), &bytes, Some(hot_ttl)).await.is_ok() {
            let _ = self.cache.set(&self.stale_key(), &bytes, None).await;
            let _ = self.cache.delete(&self.lock_key()).await;
        }
        Ok(snapshot)
    }

    async fn stale(&self) -> Result<Current, Unavailable> {
        let in_memory = self.last_good.read().expect("lock is never poisoned").clone();
        if let Some(snapshot) = in_memory {
            self.metrics.cache_lookup("stale_memory");
            return Ok(Current { snapshot, served_from: ServedFrom::StaleFallback });
        }
        if let Ok(Some(bytes)) = self.cache.get(&self.stale_key()).await
            && let Some(snapshot) = Snapshot::from_bytes(&bytes)
        {
            let snapshot = Arc::new(snapshot);
            *self.last_good.write().expect("lock is never poisoned") = Some(snapshot.clone());
            self.metrics.cache_lookup("redis_stale");
            return Ok(Current { snapshot, served_from: ServedFrom::StaleFallback });
        }
        self.metrics.cache_lookup("unavailable");
        Err(Unavailable)
    }

    /// Forgets hot copies after the data changed (a `NOTIFY` from a writer), so the next request rebuilds.
    pub async fn invalidate(&self) {
        *self.hot.write().expect("lock is never poisoned") = None;
        let _ = self.cache.delete(&self.hot_key()).await;
    }

    /// Whether PostgreSQL answers now (readiness).
    pub async fn database_reachable(&self) -> bool {
        sqlx::query("select 1").execute(&self.db).await.is_ok()
    }

    /// Whether a snapshot could be served even without PostgreSQL.
    pub fn has_last_good(&self) -> bool {
        self.last_good.read().expect("lock is never poisoned").is_some()
    }
}
