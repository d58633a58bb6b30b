//! Redis, for caches that can always be rebuilt from PostgreSQL.
//!
//! Redis is an accelerator, never a dependency: every call has a short timeout, and after a failure a breaker
//! skips Redis for a moment, so an outage costs one timeout per breaker period instead of one per request.
//! Keys are built with [`Cache::key`], which prefixes a per-deployment (or per-test) namespace and the
//! schema version of what is stored (`hj:v2:…`).

pub mod acl;

use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use deadpool_redis::{
    Pool, Runtime,
    redis::{AsyncCommands, SetExpiry, SetOptions, cmd},
};
use settings::{ConnectionUrl, REDIS_URL};

/// Where Redis is and how long to wait for it.
#[derive(Clone, Debug, clap::Args)]
pub struct RedisSettings {
    /// Redis connection URL, e.g. `redis://127.0.0.1:6379/0` (credentials are never logged).
    #[arg(long, env = "REDIS_URL", value_parser = REDIS_URL)]
    pub redis_url: ConnectionUrl,

    /// Longest a cache call may take before the cache is treated as down (milliseconds).
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 150)]
    pub redis_timeout_ms: u64,

    /// Key namespace, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "")]
    pub redis_key_prefix: String,

    /// A file holding the password of this service's Redis user (a mounted Secret key); the user is named in
    /// `REDIS_URL` (`redis://hangang-api@hangang-redis:6379`). Read once, at start.
    #[arg(long, env = "REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<std::path::PathBuf>,
}

/// Why a cache could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("REDIS_URL is not a Redis URL: {0}")]
    Url(#[source] deadpool_redis::redis::RedisError),
    #[error("cannot read REDIS_PASSWORD_FILE {path}: {source}")]
    PasswordFile { path: std::path::PathBuf, source: std::io::Error },
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::CreatePoolError),
}

/// Why a cache call did not succeed. Callers treat every variant the same way (fall back to PostgreSQL); the
/// variants exist for logs and metrics.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("redis is skipped for a moment after a recent failure")]
    BreakerOpen,
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("redis pool: {0}")]
    Pool(#[from] deadpool_redis::PoolError),
    #[error("redis: {0}")]
    Redis(#[from] deadpool_redis::redis::RedisError),
}

/// A cache key, already namespaced.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key(String);

impl Key {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A cheap, clonable handle to the cache.
#[derive(Clone)]
pub struct Cache {
    pool: Pool,
    prefix: String,
    timeout: Duration,
    breaker: std::sync::Arc<Breaker>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How long Redis is skipped after a failure.
const BREAKER_PERIOD: Duration = Duration::from_secs(2);

/// Opens after a failure and stays open for [`BREAKER_PERIOD`]; the first call after that probes Redis again.
#[derive(Debug, Default)]
struct Breaker {
    open_until_ms: AtomicI64,
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

impl Breaker {
    fn is_open(&self) -> bool {
        now_ms() < self.open_until_ms.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        self.open_until_ms.store(now_ms() + BREAKER_PERIOD.as_millis() as i64, Ordering::Relaxed);
    }

    fn reset(&self) {
        self.open_until_ms.store(0, Ordering::Relaxed);
    }
}

impl Cache {
    /// Creates the pool; no connection is made until the first call, so the api starts while Redis is down.
    /// The password, when there is one, comes from `REDIS_PASSWORD_FILE` (or the URL).
    pub fn connect(settings: &RedisSettings) -> Result<Cache, ConnectError> {
        let timeout = Duration::from_millis(settings.redis_timeout_ms);
        let mut info: deadpool_redis::redis::ConnectionInfo =
            deadpool_redis::redis::IntoConnectionInfo::into_connection_info(
                settings.redis_url.expose(),
            )
            .map_err(ConnectError::Url)?;
        if let Some(path) = &settings.redis_password_file {
            let password = std::fs::read_to_string(path)
                .map_err(|source| ConnectError::PasswordFile { path: path.clone(), source })?;
            let redis = info.redis_settings().clone().set_password(password.trim());
            info = info.set_redis_settings(redis);
        }
        let mut config = deadpool_redis::Config::from_connection_info(info);
        let mut pool_config = deadpool_redis::PoolConfig::new(16);
        pool_config.timeouts.wait = Some(timeout);
        pool_config.timeouts.create = Some(timeout);
        pool_config.timeouts.recycle = Some(timeout);
        config.pool = Some(pool_config);
        let pool = config.create_pool(Some(Runtime::Tokio1))?;
        Ok(Cache {
            pool,
            prefix: settings.redis_key_prefix.clone(),
            timeout,
            breaker: std::sync::Arc::default(),
        })
    }

    /// `prefix` + `hj:` + the given parts joined by `:`.
    pub fn key(&self, parts: &[&str]) -> Key {
        Key(format!("{}hj:{}", self.prefix, parts.join(":")))
    }

    async fn call<T, F>(&self, operation: F) -> Result<T, CacheError>
    where
        F: AsyncFnOnce(&mut deadpool_redis::Connection) -> Result<T, CacheError>,
    {
        if self.breaker.is_open() {
            return Err(CacheError::BreakerOpen);
        }
        let result = tokio::time::timeout(self.timeout, async {
            let mut connection = self.pool.get().await?;
            operation(&mut connection).await
        })
        .await
        .unwrap_or(Err(CacheError::Timeout(self.timeout)));
        match &result {
            Ok(_) => self.breaker.reset(),
            Err(error) => {
                tracing::warn!(%error, "cache unavailable; falling back");
                self.breaker.trip();
            }
        }
        result
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Vec<u8>>, CacheError> {
        self.call(async |connection| Ok(connection.get(key.as_str()).await?)).await
    }

    /// Stores `value`, expiring after `ttl` when given (hot entries) or never (stale entries).
    pub async fn set(
        &self,
        key: &Key,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), CacheError> {
        self.call(async |connection| {
            match ttl {
                Some(ttl) => {
                    let millis = ttl.as_millis().max(1) as u64;
                    let _: () = connection.pset_ex(key.as_str(), value, millis).await?;
                }
                None => {
                    let _: () = connection.set(key.as_str(), value).await?;
                }
            }
            Ok(())
        })
        .await
    }

    pub async fn delete(&self, key: &Key) -> Result<(), CacheError> {
        self.call(async |connection| {
            let _: () = connection.del(key.as_str()).await?;
            Ok(())
        })
        .await
    }

    /// Adds members to a set.
    pub async fn set_add(&self, key: &Key, members: &[&str]) -> Result<(), CacheError> {
        if members.is_empty() {
            return Ok(());
        }
        self.call(async |connection| {
            let _: () = connection.sadd(key.as_str(), members).await?;
            Ok(())
        })
        .await
    }

    /// Removes members from a set.
    pub async fn set_remove(&self, key: &Key, members: &[&str]) -> Result<(), CacheError> {
        if members.is_empty() {
            return Ok(());
        }
        self.call(async |connection| {
            let _: () = connection.srem(key.as_str(), members).await?;
            Ok(())
        })
        .await
    }

    /// The union of several sets.
    pub async fn set_union(&self, keys: &[Key]) -> Result<Vec<String>, CacheError> {
        let names: Vec<&str> = keys.iter().map(Key::as_str).collect();
        self.call(async |connection| Ok(connection.sunion(names).await?)).await
    }

    /// Increments an integer (a generation counter); returns the new value.
    pub async fn increment(&self, key: &Key) -> Result<i64, CacheError> {
        self.call(async |connection| Ok(connection.incr(key.as_str(), 1).await?)).await
    }

    /// Sets `key` to `value` unless it exists (`SET NX`); whether it was set.
    pub async fn set_if_absent(&self, key: &Key, value: &str) -> Result<bool, CacheError> {
        self.call(async |connection| {
            let options =
                SetOptions::default().conditional_set(deadpool_redis::redis::ExistenceCheck::NX);
            let reply: Option<String> =
                connection.set_options(key.as_str(), value, options).await?;
            Ok(reply.is_some())
        })
        .await
    }

    /// Several reads at one moment (`MULTI`/`EXEC`): the values of `values` and, for the sets `sets`, how many
    /// exist and the union of their members. A missing set and an empty one differ here, which a plain
    /// `SUNION` hides.
    pub async fn read_together(
        &self,
        values: &[Key],
        sets: &[Key],
    ) -> Result<(Vec<Option<String>>, usize, Vec<String>), CacheError> {
        let values: Vec<&str> = values.iter().map(Key::as_str).collect();
        let sets: Vec<&str> = sets.iter().map(Key::as_str).collect();
        self.call(async |connection| {
            let mut pipeline = deadpool_redis::redis::pipe();
            pipeline.atomic();
            pipeline.cmd("MGET").arg(&values).cmd("EXISTS").arg(&sets).cmd("SUNION").arg(&sets);
            Ok(pipeline.query_async(connection).await?)
        })
        .await
    }

    /// Takes a short-lived lock (`SET NX PX`) so only one replica rebuilds a key at a time. Returns `false`
    /// when another holder has it. The lock expires by itself if its holder dies.
    pub async fn try_lock(&self, key: &Key, ttl: Duration) -> Result<bool, CacheError> {
        self.call(async |connection| {
            let options = SetOptions::default()
                .conditional_set(deadpool_redis::redis::ExistenceCheck::NX)
                .with_expiration(SetExpiry::PX(ttl.as_millis() as u64));
            let reply: Option<String> = connection.set_options(key.as_str(), "1", options).await?;
            Ok(reply.is_some())
        })
        .await
    }

    /// Answers whether Redis is reachable now, ignoring the breaker (readiness probes).
    pub async fn ping(&self) -> Result<(), CacheError> {
        let result = tokio::time::timeout(self.timeout, async {
            let mut connection = self.pool.get().await?;
            let _: String = cmd("PING").query_async(&mut *connection).await?;
            Ok::<(), CacheError>(())
        })
        .await
        .unwrap_or(Err(CacheError::Timeout(self.timeout)));
        if result.is_ok() {
            self.breaker.reset();
        }
        result
    }
}
