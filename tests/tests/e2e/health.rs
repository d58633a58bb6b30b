//! Every service is up, answers its probes, and reports the release it belongs to — the facts the
//! post-deploy smoke check relies on.

use tests::{RELEASE_ID, Sandbox};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

/// A plain HTTP/1.1 GET returning (status line, body). Enough for probes; typed API calls get a real client
/// with the routes.
async fn http_get(addr: std::net::SocketAddr, path: &str) -> anyhow::Result<(String, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

#[tokio::test]
async fn every_service_is_live_ready_and_reports_the_release() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;

    let mut http_targets = vec![("api", sandbox.api_http)];
    http_targets.extend(sandbox.workers.iter().map(|worker| (worker.name, worker.admin)));
    for (service, addr) in http_targets {
        for path in ["/healthz", "/readyz"] {
            let (status, body) = http_get(addr, path).await?;
            assert_eq!(status, "HTTP/1.1 200 OK", "{service} {path}");
            let body: serde_json::Value = serde_json::from_str(&body)?;
            assert_eq!(body["service"], service, "{service} {path}: {body}");
            assert_eq!(body["release_id"], RELEASE_ID, "{service} {path}: {body}");
        }
    }

    for worker in &sandbox.workers {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", worker.grpc))?
            .connect()
            .await?;
        let mut client = HealthClient::new(channel);
        for service in ["", worker.name] {
            let response = client
                .check(HealthCheckRequest { service: service.to_owned() })
                .await?
                .into_inner();
            assert_eq!(response.status(), ServingStatus::Serving, "{} `{service}`", worker.name);
        }
        let unknown = client.check(HealthCheckRequest { service: "nope".to_owned() }).await;
        assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);
    }

    sandbox.stop().await
}
