//! The api's server over real sockets: a client that never finishes its headers, or idles on a kept-alive
//! connection, is cut off after the header timeout, and connections beyond the cap wait until one closes.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_util::sync::CancellationToken;

use crate::app::TestApp;

/// Serves `app` with `limits` on a loopback port; returns its address and the shutdown token.
async fn serve(
    mut app: TestApp,
    limits: api::serve::HttpLimits,
) -> (std::net::SocketAddr, CancellationToken, TestApp) {
    app.state = app.state.with_http_limits(limits);
    let (listeners, _, _) = crate::app::loopback_listeners().await;
    let addr = listeners.http.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(api::run(app.state.clone(), listeners, shutdown.clone()));
    (addr, shutdown, app)
}

fn limits(header_read_timeout_ms: u64, max_connections: usize) -> api::serve::HttpLimits {
    api::serve::HttpLimits {
        http_header_read_timeout_ms: header_read_timeout_ms,
        http_max_connections: max_connections,
        http_drain_timeout_ms: 1_000,
        // More than one, so connections are spread over serving threads as in production.
        http_threads: std::num::NonZeroUsize::new(2),
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n";

/// Reads until the peer closes, or `within` passes; whether it closed, and what was read.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> (bool, Vec<u8>) {
    let mut read = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (true, read),
            Ok(Ok(n)) => read.extend_from_slice(&buffer[..n]),
            Err(_) => return (false, read),
        }
    }
}

#[tokio::test]
async fn unfinished_headers_and_idle_connections_are_closed_after_the_header_timeout() {
    let (addr, shutdown, _app) = serve(TestApp::spawn().await, limits(300, 64)).await;
    // Slowloris: half a request, then nothing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: api\r\n").await.unwrap();
    let (closed, _) = closed_within(&mut slow, Duration::from_secs(10)).await;
    assert!(closed, "a connection that never finished its headers is still open");

    // A kept-alive connection that answered one request and then idles.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(HEALTHZ).await.unwrap();
    let (closed, answered) = closed_within(&mut idle, Duration::from_secs(10)).await;
    assert!(closed, "an idle kept-alive connection is still open");
    assert!(answered.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answered));
    shutdown.cancel();
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let (addr, shutdown, _app) = serve(TestApp::spawn().await, limits(30_000, 1)).await;
    // The one connection the cap allows, held open without a request.
    let holder = TcpStream::connect(addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut waiting = TcpStream::connect(addr).await.unwrap();
    waiting.write_all(HEALTHZ).await.unwrap();
    let mut buffer = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buffer)).await;
    assert!(early.is_err(), "the second connection was served while the first held the only slot");
    drop(holder);
    let read = tokio::time::timeout(Duration::from_secs(10), waiting.read(&mut buffer))
        .await
        .expect("served once the first connection closed")
        .unwrap();
    assert!(
        buffer[..read].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..read])
    );
    shutdown.cancel();
}

/// How many of `count` registrations, each with `forwarded_for(n)` as its `X-Forwarded-For`, are refused by
/// a rate limit.
async fn registrations_refused(
    addr: std::net::SocketAddr,
    count: usize,
    forwarded_for: impl Fn(usize) -> String,
) -> usize {
    let client = reqwest::Client::new();
    let mut refused = 0;
    for n in 0..count {
        let response = client
            .post(format!("http://{addr}/v2/installations"))
            .header("x-forwarded-for", forwarded_for(n))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    refused
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies_and_only_its_rightmost_untrusted_entry()
 {
    // No trusted proxy: a client inventing X-Forwarded-For addresses is still one client (20 a minute).
    let (addr, shutdown, _app) = serve(TestApp::spawn().await, limits(10_000, 64)).await;
    assert_eq!(registrations_refused(addr, 25, |n| format!("198.51.100.{n}")).await, 5);
    shutdown.cancel();

    // Behind a trusted proxy (this test's loopback peer), each address the proxy saw is its own client...
    let trusted = api::rate_limit::WriteLimits {
        proxies: api::client_address::TrustedProxies {
            trusted_proxies: vec!["127.0.0.1/32".parse().unwrap()],
            trusted_proxy_hops: 0,
        },
        ..Default::default()
    };
    let app = TestApp::spawn().await.with_write_limits(trusted);
    let (addr, shutdown, _app) = serve(app, limits(10_000, 64)).await;
    assert_eq!(registrations_refused(addr, 25, |n| format!("198.51.100.{n}")).await, 0);
    // ...and what a client writes to the left of the proxy's entry does not make it someone else.
    let spoofing = |n| format!("10.9.9.{n}, 203.0.113.7");
    assert_eq!(registrations_refused(addr, 25, spoofing).await, 5);
    shutdown.cancel();
}
