//! Forecasts reach the app: ingest stores a parking cycle, asks the forecast service to refresh over gRPC,
//! and the api serves the stored forecast with the evidence it started from.

use std::time::{Duration, Instant};

use tests::Sandbox;

use crate::http::{get, get_json, metric};

#[tokio::test]
async fn a_parking_cycle_leads_to_a_served_lot_forecast() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    let deadline = Instant::now() + Duration::from_secs(15);
    let forecast = loop {
        let body = get_json(sandbox.api_http, "/v2/lots/yeouido-2/forecast").await?;
        if body["horizons"].as_array().is_some_and(|horizons| !horizons.is_empty()) {
            break body;
        }
        anyhow::ensure!(Instant::now() < deadline, "no forecast was served: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(forecast["issued_at"].is_string());
    assert!(forecast["confidence"].is_string());
    assert!(forecast["based_on"]["observed_at"].is_string(), "{forecast}");
    let minutes: Vec<u64> = forecast["horizons"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|horizon| horizon["horizon_minutes"].as_u64())
        .collect();
    assert_eq!(minutes, [15, 30, 60, 120]);

    // The operator sees the refreshes and the backtest on the forecast worker's admin listener.
    let forecast_admin =
        sandbox.workers.iter().find(|worker| worker.name == "forecast").unwrap().admin;
    let (_, metrics) = get(forecast_admin, "/metrics").await?;
    assert!(metric(&metrics, "hangang_forecast_lots_refreshed_total") >= 1.0);
    assert_eq!(metric(&metrics, "hangang_forecast_refresh_failures_total"), 0.0);
    assert_eq!(metric(&metrics, "hangang_forecast_backtest_up"), 1.0);
    sandbox.stop().await
}

#[tokio::test]
async fn a_refresh_warms_the_home_summary_before_anyone_asks() -> anyhow::Result<()> {
    let sandbox = Sandbox::start().await?;
    // No data request comes from this test: any snapshot the api builds is the forecast service's warming.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, metrics) = get(sandbox.api_admin, "/metrics").await?;
        let built = metrics
            .lines()
            .filter(|line| {
                line.starts_with("hangang_api_snapshot_lookups_total{tier=\"postgres\"}")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        if built >= 1.0 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the api was never warmed:\n{metrics}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sandbox.stop().await
}
