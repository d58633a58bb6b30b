//! Waiting for the system to reach a state it reaches asynchronously, with a deadline that names what never
//! happened.

use std::time::{Duration, Instant};

use tests::Sandbox;

/// Polls until the fake APNs has received at least one alert, for up to `within`.
pub async fn until_delivered(
    sandbox: &Sandbox,
    what: &str,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while sandbox.apns.deliveries().is_empty() {
        anyhow::ensure!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Polls until `query` (one `bigint` column) returns at least one, for up to 30 seconds.
pub async fn until_rows(sandbox: &Sandbox, what: &str, query: &'static str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (rows,): (i64,) = sqlx::query_as(query).fetch_one(sandbox.database()).await?;
        if rows > 0 {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
