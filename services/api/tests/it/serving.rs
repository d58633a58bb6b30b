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
    app.state.http_limits = limits;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    tokio::spawn(api::run(app.state.clone(), listener, shutdown.clone()));
    (addr, shutdown, app)
}

fn limits(header_read_timeout_ms: u64, max_connections: usize) -> api::serve::HttpLimits {
    api::serve::HttpLimits {
        http_header_read_timeout_ms: header_read_timeout_ms,
        http_max_connections: max_connections,
        http_drain_timeout_ms: 1_000,
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
