//! Every service is up, answers its probes, and reports the release it belongs to — the facts the
//! post-deploy smoke check relies on.

use tests::{RELEASE_ID, Sandbox};

use crate::http::get as http_get;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

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
