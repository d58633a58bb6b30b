//! Every service is up, answers its probes, and reports the release it belongs to — the facts the
//! post-deploy smoke check relies on.

use tests::{ENVIRONMENT, RELEASE_ID, SOURCE_COMMIT, Sandbox};

use crate::http::get as http_get;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn every_service_is_live_ready_and_reports_the_release() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;

    // The app port answers liveness bare and nothing operational: that is the admin listener's.
    let (status, body) = http_get(sandbox.api_http, "/healthz").await?;
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", r#"{"status":"ok"}"#));
    for path in ["/readyz", "/metrics"] {
        let (status, _) = http_get(sandbox.api_http, path).await?;
        assert_eq!(status, "HTTP/1.1 404 Not Found", "api {path} on the app port");
    }
    let mut http_targets = vec![("api", sandbox.api_admin)];
    http_targets.extend(sandbox.workers.iter().map(|worker| (worker.name, worker.admin)));
    for (service, addr) in http_targets {
        for path in ["/healthz", "/readyz"] {
            let (status, body) = http_get(addr, path).await?;
            assert_eq!(status, "HTTP/1.1 200 OK", "{service} {path}");
            let body: serde_json::Value = serde_json::from_str(&body)?;
            assert_eq!(body["service"], service, "{service} {path}: {body}");
            assert_eq!(body["release_id"], RELEASE_ID, "{service} {path}: {body}");
            assert_eq!(body["commit"], SOURCE_COMMIT, "{service} {path}: {body}");
        }
        // Every service exports the release it runs under one metric name, whatever its own prefix.
        let (status, metrics) = http_get(addr, "/metrics").await?;
        assert_eq!(status, "HTTP/1.1 200 OK", "{service} /metrics");
        let build_info = format!(
            r#"hangang_build_info{{service="{service}",release_id="{RELEASE_ID}",commit="{SOURCE_COMMIT}"}} 1"#
        );
        assert!(metrics.lines().any(|line| line == build_info), "{service} /metrics:\n{metrics}");
        assert_eq!(metrics.matches("# EOF").count(), 1, "{service}: one exposition");
        assert!(metrics.trim_end().ends_with("# EOF"), "{service}");
    }

    // Each process recorded its start: the rollout leg of the release ledger.
    let mut starts: Vec<(String, String, String, String)> = Vec::new();
    for _ in 0..50 {
        starts = sqlx::query_as(
            "select service, release_id, source_commit, environment from ops.process_start order by service",
        )
        .fetch_all(sandbox.database())
        .await?;
        if starts.len() >= 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let expected: Vec<_> = ["api", "forecast", "ingest", "push"]
        .map(|service| {
            (
                service.to_owned(),
                RELEASE_ID.to_owned(),
                SOURCE_COMMIT.to_owned(),
                ENVIRONMENT.to_owned(),
            )
        })
        .into();
    assert_eq!(starts, expected);

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
