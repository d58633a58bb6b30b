//! Per-client rate limiting for write routes: a token bucket per client address, in memory.
//!
//! Per process, so the effective limit scales with replicas; it exists to stop a misbehaving client from
//! flooding registrations, not to meter anyone precisely.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::Instant,
};

use axum::{
    extract::{ConnectInfo, Request, State},
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

    fn allow(&self, client: Option<IpAddr>) -> bool {
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
            true
        } else {
            false
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
    if !state.rate_limiter.allow(client) {
        return ApiError::RateLimited.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_allowed_then_limited_per_client() {
        let limiter = RateLimiter::new(3, 1, false);
        let a = Some(IpAddr::from([10, 0, 0, 1]));
        let b = Some(IpAddr::from([10, 0, 0, 2]));
        assert!((0..3).all(|_| limiter.allow(a)));
        assert!(!limiter.allow(a));
        assert!(limiter.allow(b));
    }
}
