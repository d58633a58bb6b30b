//! First-screen warming: after a refresh, ask the api for the home summary once, so the first person to open
//! the app after new data finds the snapshot already built (in the api's memory and Redis hot copy, which
//! every replica shares).
//!
//! Warming goes through the api's own HTTP route rather than writing Redis from here: the api decides what a
//! snapshot is and when a copy is stale, and a copy written from outside could race its `NOTIFY`
//! invalidation and hide a newer change. The request waits [`SETTLE`] so the api has handled this refresh's
//! `NOTIFY` first; if it has not, the api serves its previous copy and nothing is lost but the warming.

use std::time::Duration;

/// Time for the api to receive and act on the refresh's `NOTIFY` before the warming request.
const SETTLE: Duration = Duration::from_millis(200);

/// Requests the api's home summary after refreshes.
#[derive(Clone, Debug)]
pub struct Warmer {
    client: reqwest::Client,
    home_summary_url: String,
}

impl Warmer {
    pub fn new(api_url: &str) -> reqwest::Result<Warmer> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build()?;
        Ok(Warmer {
            client,
            home_summary_url: format!("{}/v2/home-summary", api_url.trim_end_matches('/')),
        })
    }

    /// Warms in the background; a failure is logged, never passed to the refresh's caller.
    pub fn after_refresh(&self) {
        let warmer = self.clone();
        // The warming request belongs to the refresh's trace, though it runs after the refresh answered.
        let mut trace_context = reqwest::header::HeaderMap::new();
        telemetry::inject_current(&mut trace_context);
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE).await;
            let request = warmer.client.get(&warmer.home_summary_url).headers(trace_context);
            let outcome = request.send().await;
            match outcome.and_then(reqwest::Response::error_for_status) {
                Ok(_) => tracing::debug!("home summary warmed"),
                Err(error) => tracing::warn!(%error, "home summary warming failed"),
            }
        });
    }
}
