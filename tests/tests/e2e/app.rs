//! What the app does, as the scenarios need it: read a lot from the park screen, wait for a value to be
//! served, register an installation subscribed to a lot.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::Sandbox;

use crate::http::{get_json, send};

const JSON: (&str, &str) = ("content-type", "application/json");

/// The lot `yeouido-2` in a `/v2/parks/yeouido` body (`null` when absent).
pub fn yeouido_2(park: &Value) -> Value {
    let lots = park["lots"].as_array().cloned().unwrap_or_default();
    lots.into_iter().find(|lot| lot["lot_id"] == "yeouido-2").unwrap_or_default()
}

/// Waits until the park screen shows `value` free spaces at yeouido-2.
pub async fn wait_served(sandbox: &Sandbox, value: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while yeouido_2(&get_json(sandbox.api_http, "/v2/parks/yeouido").await?)["available"] != value {
        anyhow::ensure!(Instant::now() < deadline, "{value} was never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// An installation as the app registers it.
#[derive(Debug)]
pub struct Installation {
    pub id: String,
    /// `Bearer <secret>`, for the installation's own routes.
    pub authorization: String,
}

/// Registers an installation with `token` and subscribes it (enabled or not) to yeouido-2 dropping below 100.
pub async fn subscribe(
    sandbox: &Sandbox,
    token: &str,
    enabled: bool,
) -> anyhow::Result<Installation> {
    let body = format!(
        r#"{{"apns_token":"{token}","apns_environment":"sandbox","locale":"ko-KR","app_version":"2.3.0 (412)"}}"#
    );
    let (status, created) =
        send(sandbox.api_http, "POST", "/v2/installations", &[JSON], Some(&body)).await?;
    anyhow::ensure!(status == 201, "{status}: {created}");
    let created: Value = serde_json::from_str(&created)?;
    let installation = Installation {
        id: created["installation_id"].as_str().unwrap().to_owned(),
        authorization: format!("Bearer {}", created["secret"].as_str().unwrap()),
    };
    let (status, answer) = send(
        sandbox.api_http,
        "PUT",
        &preferences_path(&installation.id),
        &[JSON, ("authorization", &installation.authorization)],
        Some(&preferences(enabled)),
    )
    .await?;
    anyhow::ensure!(status == 200, "{status}: {answer}");
    Ok(installation)
}

/// The route of an installation's preferences.
pub fn preferences_path(installation_id: &str) -> String {
    format!("/v2/installations/{installation_id}/preferences")
}

/// A subscription to yeouido-2 dropping below 100 free spaces.
pub fn preferences(enabled: bool) -> String {
    format!(
        r#"{{"subscriptions":[{{"target_kind":"lot","target_id":"yeouido-2","signal":"lot_available_below","threshold":100,"enabled":{enabled}}}]}}"#
    )
}
