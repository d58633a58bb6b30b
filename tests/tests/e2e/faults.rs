//! The outside world failing: the portal answering errors. The api keeps the last good value, says the source
//! is failing (never that the value is current from a fresh fetch), and recovers when the portal does.

use std::time::{Duration, Instant};

use replay::{Endpoint, Fault};
use tests::Sandbox;

use crate::{
    app,
    http::{get, get_json},
};

fn parking_source(status: &serde_json::Value) -> serde_json::Value {
    let sources = status["sources"].as_array().cloned().unwrap_or_default();
    sources.into_iter().find(|source| source["source"] == "parking_portal").unwrap_or_default()
}

/// Polls `/v2/status` until the parking source satisfies `done`.
async fn wait_for_parking(
    sandbox: &Sandbox,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let source = parking_source(&get_json(sandbox.api_http, "/v2/status").await?);
        if done(&source) {
            return Ok(source);
        }
        anyhow::ensure!(Instant::now() < deadline, "parking never {what}: {source}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_portal_keeps_the_last_value_and_says_so() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(123));
    app::wait_served(&sandbox, 123).await?;

    sandbox.world.fail(Endpoint::ParkingPortal, Fault::Status(503));
    // The portal "changes" while failing: nobody can see that, so the api must keep serving 123.
    sandbox.world.set_available("여의도2주차장", Some(5));
    let failing = wait_for_parking(&sandbox, "reported failing", |source| {
        source["source_status"] == "failing" && source["consecutive_failures"].as_u64() >= Some(2)
    })
    .await?;
    assert_eq!(failing["last_error"], "http_status", "{failing}");
    for path in ["/v2/parks/yeouido", "/v2/home-summary", "/v2/widgets/parking?lot_ids=yeouido-2"] {
        let (status, _) = get(sandbox.api_http, path).await?;
        assert_eq!(status, "HTTP/1.1 200 OK", "{path} while the portal fails");
    }
    let park = get_json(sandbox.api_http, "/v2/parks/yeouido").await?;
    let lot = app::yeouido_2(&park);
    assert_eq!(lot["available"], 123, "{lot}");
    assert_eq!(lot["freshness"]["source_status"], "failing", "{lot}");

    sandbox.world.heal(Endpoint::ParkingPortal);
    wait_for_parking(&sandbox, "recovered", |source| source["source_status"] == "ok").await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let lot = app::yeouido_2(&get_json(sandbox.api_http, "/v2/parks/yeouido").await?);
        if lot["available"] == 5 {
            assert_eq!(lot["freshness"]["state"], "fresh", "{lot}");
            assert_eq!(lot["freshness"]["source_status"], "ok", "{lot}");
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the recovered value never showed: {lot}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sandbox.stop().await
}
