//! Redis stopped mid-run: the api keeps answering from memory and PostgreSQL, with no 5xx and new data still
//! visible; when Redis comes back, empty, the next build refills it.

use std::time::{Duration, Instant};

use tests::Sandbox;

use crate::{
    app,
    http::{get, get_json},
};

async fn served(sandbox: &Sandbox, value: u32) -> anyhow::Result<bool> {
    Ok(app::yeouido_2(&get_json(sandbox.api_http, "/v2/parks/yeouido").await?)["available"]
        == value)
}

#[tokio::test]
async fn the_api_rides_out_a_redis_outage_and_refills_it() -> anyhow::Result<()> {
    let mut sandbox = Sandbox::start_with_private_redis().await?;
    sandbox.world.set_available("여의도2주차장", Some(321));
    app::wait_served(&sandbox, 321).await?;
    assert!(!sandbox.redis_keys()?.is_empty(), "the api caches its builds in Redis");

    sandbox.stop_redis()?;
    // New data while Redis is gone still reaches the app, and no route fails.
    sandbox.world.set_available("여의도2주차장", Some(123));
    app::wait_served(&sandbox, 123).await?;
    for path in [
        "/v2/home-summary",
        "/v2/parks/yeouido",
        "/v2/status",
        "/v2/widgets/parking?lot_ids=yeouido-2",
    ] {
        let (status, body) = get(sandbox.api_http, path).await?;
        assert_eq!(status, "HTTP/1.1 200 OK", "{path} without Redis: {body}");
    }
    let ready = get_json(sandbox.api_admin, "/readyz").await?;
    assert_eq!(
        (ready["status"].as_str(), ready["redis"].as_bool()),
        (Some("ok"), Some(false)),
        "{ready}"
    );

    sandbox.start_redis()?;
    assert!(sandbox.redis_keys()?.is_empty(), "a restarted Redis starts empty");
    // The next change makes the api build again, and the build lands in Redis again.
    sandbox.world.set_available("여의도2주차장", Some(222));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if served(&sandbox, 222).await? && !sandbox.redis_keys()?.is_empty() {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "Redis was never refilled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = get_json(sandbox.api_admin, "/readyz").await?;
    assert_eq!(ready["redis"], true, "{ready}");
    sandbox.stop().await
}
