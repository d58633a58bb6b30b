//! Per-client rate limiting for write routes: a token bucket per client address, in memory.
//!
//! Per process, so the effective limit scales with replicas; it exists to stop a misbehaving client from
//! flooding registrations, not to meter anyone precisely. An IPv6 client is keyed by its /64 (one device or
//! one home gets a whole /64, and rotates addresses within it), and a refusal says in `Retry-After` when the
//! next token comes.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{AppState, error::ApiError};

/// A token bucket per client.
#[derive(Debug)]
pub struct RateLimiter {
    capacity: f64,
    per_second: f64,
    trust_forwarded_for: bool,
    buckets: Mutex<HashMap<Option<IpAddr>, (f64, Instant)>>,
}

/// Buckets idle this long are forgotten, bounding memory.
const IDLE_SECONDS: f64 = 600.0;

impl RateLimiter {
    /// `burst` requests at once, refilled at `per_minute`.
    pub fn new(burst: u32, per_minute: u32, trust_forwarded_for: bool) -> RateLimiter {
        RateLimiter {
            capacity: f64::from(burst),
            per_second: f64::from(per_minute) / 60.0,
            trust_forwarded_for,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token of `client`'s bucket, or says how long until the next one.
    fn allow(&self, client: Option<IpAddr>) -> Result<(), Duration> {
        let client = client.map(bucket_key);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("lock is never poisoned");
        if buckets.len() > 10_000 {
            buckets.retain(|_, (_, last)| now.duration_since(*last).as_secs_f64() < IDLE_SECONDS);
        }
        let (tokens, last) = buckets.entry(client).or_insert((self.capacity, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second)
            .min(self.capacity);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / self.per_second.max(f64::MIN_POSITIVE)))
        }
    }

    fn client(&self, request: &Request) -> Option<IpAddr> {
        if self.trust_forwarded_for {
            // Behind the ingress the first X-Forwarded-For entry is the client.
            let forwarded = request
                .headers()
                .get("x-forwarded-for")
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.split(',').next())
                .and_then(|first| first.trim().parse().ok());
            if forwarded.is_some() {
                return forwarded;
            }
        }
        request.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(addr)| addr.ip())
    }
}

/// Middleware for write routes.
pub async fn limit_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let client = state.rate_limiter.client(&request);
    if let Err(wait) = state.rate_limiter.allow(client) {
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
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1_u128 << 64) - 1))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_limited_per_client() {
        let limiter = RateLimiter::new(3, 1, false);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        assert!((0..3).all(|_| limiter.allow(a).is_ok()));
        let wait = limiter.allow(a).unwrap_err();
        // One token a minute: the next one is about a minute away.
        assert!((Duration::from_secs(55)..=Duration::from_secs(60)).contains(&wait), "{wait:?}");
        assert_eq!(retry_after(wait), HeaderValue::from(60_u64));
        assert!(limiter.allow(b).is_ok());
    }

    #[test]
    fn ipv6_clients_share_a_bucket_per_64_and_mapped_ipv4_is_ipv4() {
        let limiter = RateLimiter::new(1, 1, false);
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:fffe".parse().unwrap();
        let next_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.allow(Some(first)).is_ok());
        assert!(limiter.allow(Some(same_64)).is_err(), "a rotated address in the same /64");
        assert!(limiter.allow(Some(next_64)).is_ok());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(limiter.allow(Some(v4)).is_ok());
        assert!(limiter.allow(Some(mapped)).is_err(), "the same IPv4 client");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up() {
        assert_eq!(retry_after(Duration::from_millis(10)), HeaderValue::from(1_u64));
        assert_eq!(retry_after(Duration::from_millis(2_001)), HeaderValue::from(3_u64));
    }
}
