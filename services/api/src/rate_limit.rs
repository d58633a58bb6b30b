//! Rate limits on the write routes, in memory, per replica: a token bucket per client address, one per
//! installation, and one ceiling on registrations for everyone.
//!
//! They exist to stop a misbehaving client, a looping app build or a registration flood, not to meter anyone
//! precisely, so per-replica counts are enough (the effective limit scales with replicas). A client is its
//! address as `client_address.rs` finds it; an IPv6 client is keyed by its /64 (one device or one home gets a
//! whole /64 and rotates addresses within it). A refusal says in `Retry-After` when the next token comes.
//!
//! Buckets live in a fixed table ([`BucketTable`]), so memory is bounded and every request costs O(1) under
//! one small lock, whatever number of addresses a flood uses.

use std::{
    collections::hash_map::RandomState,
    hash::{BuildHasher, Hash},
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{AppState, client_address::TrustedProxies, error::ApiError};

/// The write limits, from the command line or environment.
#[derive(Clone, Debug, clap::Args)]
pub struct WriteLimits {
    /// Writes per minute from one client address (IPv6: one /64), also its burst.
    #[arg(long, env = "WRITE_LIMIT_PER_CLIENT_PER_MINUTE", default_value_t = 20)]
    pub write_limit_per_client_per_minute: u32,

    /// Writes per minute to one installation (its updates, preferences and delete), also the burst: an app
    /// changes its preferences a few times a minute at most, so more is a loop or someone else.
    #[arg(long, env = "WRITE_LIMIT_PER_INSTALLATION_PER_MINUTE", default_value_t = 10)]
    pub write_limit_per_installation_per_minute: u32,

    /// Registrations per minute this replica accepts from everyone together, also the burst: a ceiling on
    /// floods from many addresses, far above a launch day's real rate.
    #[arg(long, env = "REGISTRATIONS_PER_MINUTE", default_value_t = 600)]
    pub registrations_per_minute: u32,

    #[command(flatten)]
    pub proxies: TrustedProxies,
}

impl Default for WriteLimits {
    fn default() -> Self {
        WriteLimits {
            write_limit_per_client_per_minute: 20,
            write_limit_per_installation_per_minute: 10,
            registrations_per_minute: 600,
            proxies: TrustedProxies::default(),
        }
    }
}

/// A token bucket's rule: `capacity` at once, refilled at `per_second`.
#[derive(Clone, Copy, Debug)]
struct Rate {
    capacity: f64,
    per_second: f64,
}

impl Rate {
    fn per_minute(per_minute: u32) -> Rate {
        let per_minute = per_minute.max(1);
        Rate { capacity: f64::from(per_minute), per_second: f64::from(per_minute) / 60.0 }
    }
}

/// One bucket: its tokens as of `last`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Bucket {
        Bucket { tokens: rate.capacity, last: now }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_second).min(rate.capacity);
        self.last = now;
    }

    /// Takes a token, or says how long until the next one.
    fn take(&mut self, rate: Rate) -> Result<(), Duration> {
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate.per_second))
        }
    }
}

/// Ways per set of [`BucketTable`].
const WAYS: usize = 8;

/// One set of [`BucketTable`]: its keys and their buckets.
type Set<K> = [Option<(K, Bucket)>; WAYS];

/// Token buckets for many keys in a fixed table: `sets` sets of [`WAYS`] slots, a key's set chosen by a
/// per-process random hash (so no client can aim at another's set), each set under its own lock.
///
/// A key without a slot takes an empty one, else one whose bucket has refilled to capacity (a full bucket is
/// the same as no bucket, so forgetting it loses nothing), else the set's least recently used. Only a flood
/// of more active keys than slots evicts state, and then the stalest.
#[derive(Debug)]
pub struct BucketTable<K> {
    rate: Rate,
    sets: Box<[Mutex<Set<K>>]>,
    hasher: RandomState,
}

impl<K: Hash + Eq + Clone> BucketTable<K> {
    /// Room for `sets * WAYS` keys.
    fn new(rate: Rate, sets: usize) -> BucketTable<K> {
        let sets = (0..sets.max(1)).map(|_| Mutex::new(std::array::from_fn(|_| None))).collect();
        BucketTable { rate, sets, hasher: RandomState::new() }
    }

    /// Takes a token of `key`'s bucket at `now`, or says how long until the next one.
    fn take(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let index = (self.hasher.hash_one(key) % self.sets.len() as u64) as usize;
        let mut set = self.sets[index].lock().expect("lock is never poisoned");
        if let Some((_, bucket)) = set.iter_mut().flatten().find(|(held, _)| held == key) {
            bucket.refill(self.rate, now);
            return bucket.take(self.rate);
        }
        let slot = self.victim(&mut set, now);
        let mut bucket = Bucket::full(self.rate, now);
        let taken = bucket.take(self.rate);
        *slot = Some((key.clone(), bucket));
        taken
    }

    fn victim<'a>(&self, set: &'a mut Set<K>, now: Instant) -> &'a mut Option<(K, Bucket)> {
        let refilled = |slot: &Option<(K, Bucket)>| {
            slot.as_ref().is_none_or(|(_, bucket)| {
                let mut bucket = *bucket;
                bucket.refill(self.rate, now);
                bucket.tokens >= self.rate.capacity
            })
        };
        let index = set.iter().position(refilled).unwrap_or_else(|| {
            (0..WAYS)
                .min_by_key(|&i| set[i].as_ref().map(|(_, bucket)| bucket.last))
                .expect("a set has slots")
        });
        &mut set[index]
    }
}

/// Sets in the per-client and per-installation tables: 4,096 × 8 ways = 32,768 keys each (about 2 MB).
const TABLE_SETS: usize = 4_096;

/// The api's write limits.
#[derive(Debug)]
pub struct RateLimiter {
    proxies: TrustedProxies,
    per_client: BucketTable<Option<IpAddr>>,
    per_installation: BucketTable<Box<str>>,
    registrations: Mutex<Bucket>,
    registration_rate: Rate,
}

/// Which limit refused a write, for the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Limit {
    Client,
    Installation,
    Registrations,
}

impl RateLimiter {
    pub fn new(limits: &WriteLimits) -> RateLimiter {
        let registration_rate = Rate::per_minute(limits.registrations_per_minute);
        RateLimiter {
            proxies: limits.proxies.clone(),
            per_client: BucketTable::new(
                Rate::per_minute(limits.write_limit_per_client_per_minute),
                TABLE_SETS,
            ),
            per_installation: BucketTable::new(
                Rate::per_minute(limits.write_limit_per_installation_per_minute),
                TABLE_SETS,
            ),
            registrations: Mutex::new(Bucket::full(registration_rate, Instant::now())),
            registration_rate,
        }
    }

    /// Checks one write by `client` to `target` (`None` for a registration) at `now`: the client's limit,
    /// then the installation's or the registration ceiling.
    fn allow(
        &self,
        client: Option<IpAddr>,
        target: Option<&str>,
        now: Instant,
    ) -> Result<(), (Limit, Duration)> {
        self.per_client.take(&client.map(bucket_key), now).map_err(|wait| (Limit::Client, wait))?;
        match target {
            Some(installation) => self
                .per_installation
                .take(&Box::from(installation), now)
                .map_err(|wait| (Limit::Installation, wait)),
            None => {
                let mut bucket = self.registrations.lock().expect("lock is never poisoned");
                bucket.refill(self.registration_rate, now);
                bucket.take(self.registration_rate).map_err(|wait| (Limit::Registrations, wait))
            }
        }
    }

    fn client(&self, request: &Request) -> Option<IpAddr> {
        let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
        Some(self.proxies.client(peer.ip(), request.headers()))
    }
}

/// The installation a write is about: the path segment after `/v2/installations/`, `None` for a registration.
/// Ids longer than any valid one are cut, so a client cannot store long keys (the route refuses them anyway).
fn write_target(request: &Request) -> Option<&str> {
    let rest = request.uri().path().strip_prefix("/v2/installations/")?;
    let id = rest.split('/').next().unwrap_or(rest);
    Some(id.get(..64).unwrap_or(id))
}

/// Middleware for write routes.
pub async fn limit_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client = state.rate_limiter.client(&request);
    let target = if request.method() == Method::POST && request.uri().path() == "/v2/installations"
    {
        None
    } else {
        Some(write_target(&request).unwrap_or(""))
    };
    if let Err((limit, wait)) = state.rate_limiter.allow(client, target, Instant::now()) {
        tracing::debug!(?client, ?limit, ?wait, "write refused by a rate limit");
        let mut response = ApiError::RateLimited.into_response();
        response.headers_mut().insert(header::RETRY_AFTER, retry_after(wait));
        return response;
    }
    next.run(request).await
}

/// `Retry-After` in whole seconds, rounded up (never 0: the next token is not there yet).
fn retry_after(wait: Duration) -> HeaderValue {
    let seconds = wait.as_secs_f64().ceil().clamp(1.0, 86_400.0) as u64;
    HeaderValue::from(seconds)
}

/// The bucket of an address: IPv4 as it is (an IPv4-mapped IPv6 address too), IPv6 by its /64.
fn bucket_key(address: IpAddr) -> IpAddr {
    match crate::client_address::canonical(address) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1_u128 << 64) - 1))),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_client: u32, per_installation: u32, registrations: u32) -> RateLimiter {
        RateLimiter::new(&WriteLimits {
            write_limit_per_client_per_minute: per_client,
            write_limit_per_installation_per_minute: per_installation,
            registrations_per_minute: registrations,
            proxies: TrustedProxies::default(),
        })
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_burst_is_allowed_then_limited_per_client() {
        let limiter = limiter(3, 100, 100);
        let now = Instant::now();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        assert!((0..3).all(|_| limiter.allow(a, Some("x"), now).is_ok()));
        let (limit, wait) = limiter.allow(a, Some("x"), now).unwrap_err();
        assert_eq!(limit, Limit::Client);
        // Three tokens a minute: the next one is 20 s away.
        assert_eq!(retry_after(wait), HeaderValue::from(20_u64));
        assert!(limiter.allow(b, Some("x"), now).is_ok());
        // Tokens come back with time.
        assert!(limiter.allow(a, Some("x"), now + Duration::from_secs(20)).is_ok());
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        let limiter = limiter(1, 100, 100);
        let now = Instant::now();
        assert!(limiter.allow(ip("2001:db8:1:2::1"), Some("x"), now).is_ok());
        let rotated = ip("2001:db8:1:2:ffff:ffff:ffff:fffe");
        assert!(
            limiter.allow(rotated, Some("x"), now).is_err(),
            "a rotated address in the same /64"
        );
        assert!(limiter.allow(ip("2001:db8:1:3::1"), Some("x"), now).is_ok());
        assert!(limiter.allow(ip("192.0.2.7"), Some("x"), now).is_ok());
        assert!(limiter.allow(ip("::ffff:192.0.2.7"), Some("x"), now).is_err(), "the same client");
    }

    #[test]
    fn an_installation_is_limited_whoever_writes_to_it() {
        let limiter = limiter(100, 2, 100);
        let now = Instant::now();
        assert!(limiter.allow(ip("10.0.0.1"), Some("inst-1"), now).is_ok());
        assert!(limiter.allow(ip("10.0.0.2"), Some("inst-1"), now).is_ok());
        let (limit, wait) = limiter.allow(ip("10.0.0.3"), Some("inst-1"), now).unwrap_err();
        assert_eq!((limit, retry_after(wait)), (Limit::Installation, HeaderValue::from(30_u64)));
        assert!(limiter.allow(ip("10.0.0.3"), Some("inst-2"), now).is_ok());
    }

    #[test]
    fn registrations_have_one_ceiling_for_every_client() {
        let limiter = limiter(100, 100, 3);
        let now = Instant::now();
        for n in 0..3 {
            assert!(limiter.allow(ip(&format!("10.0.1.{n}")), None, now).is_ok());
        }
        let (limit, _) = limiter.allow(ip("10.0.1.99"), None, now).unwrap_err();
        assert_eq!(limit, Limit::Registrations);
        // Updates to existing installations are not held back by the registration ceiling.
        assert!(limiter.allow(ip("10.0.1.99"), Some("inst-1"), now).is_ok());
    }

    #[test]
    fn the_table_is_bounded_whatever_the_number_of_keys() {
        let table: BucketTable<u32> = BucketTable::new(Rate::per_minute(2), 4);
        let now = Instant::now();
        for key in 0..10_000 {
            assert!(table.take(&key, now).is_ok(), "a new key starts with a full bucket");
        }
        let held: usize =
            table.sets.iter().map(|set| set.lock().unwrap().iter().flatten().count()).sum();
        assert_eq!(held, 4 * WAYS, "the table never grows");
        // A key still held keeps its count.
        let kept = table.sets[0].lock().unwrap()[0].as_ref().unwrap().0;
        assert!(table.take(&kept, now).is_ok());
        assert!(table.take(&kept, now).is_err());
    }

    #[test]
    fn a_refilled_bucket_is_forgotten_before_an_active_one() {
        let table: BucketTable<u32> = BucketTable::new(Rate::per_minute(1), 1);
        let start = Instant::now();
        // Key 0 is active (its token spent); keys 1..WAYS fill the set and then sit idle for a minute.
        assert!(table.take(&0, start + Duration::from_secs(59)).is_ok());
        for key in 1..WAYS as u32 {
            assert!(table.take(&key, start).is_ok());
        }
        // A new key needs a slot: the refilled ones go first, so key 0 stays limited.
        let now = start + Duration::from_secs(60);
        assert!(table.take(&100, now).is_ok());
        assert!(table.take(&0, now).is_err(), "the active client kept its empty bucket");
    }

    #[test]
    fn write_targets_come_from_the_path() {
        let request =
            |path: &str| Request::builder().uri(path).body(axum::body::Body::empty()).unwrap();
        assert_eq!(write_target(&request("/v2/installations/abc")), Some("abc"));
        assert_eq!(write_target(&request("/v2/installations/abc/preferences")), Some("abc"));
        let long = format!("/v2/installations/{}", "a".repeat(500));
        assert_eq!(write_target(&request(&long)).map(str::len), Some(64));
        assert_eq!(write_target(&request("/v2/installations")), None);
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after(Duration::from_millis(10)), HeaderValue::from(1_u64));
        assert_eq!(retry_after(Duration::from_millis(2_001)), HeaderValue::from(3_u64));
    }
}
