//! The APNs client: HTTP/2 to `api.push.apple.com` (or the sandbox host, by installation), token auth with
//! one reused provider token, many concurrent streams on one connection.
//!
//! reqwest is used rather than a dedicated APNs crate: it is already the workspace's HTTP client, speaks
//! HTTP/2 over rustls (ALPN `h2`, or prior knowledge for `http://` test fakes), multiplexes concurrent
//! requests on one connection, and lets us set every APNs header ourselves; the APNs-specific parts (token,
//! headers, reasons) are small and live here, fully tested against the fake.

use std::time::Duration;

use crate::jwt::ProviderToken;

/// Largest payload APNs accepts for an alert.
pub const MAX_PAYLOAD_BYTES: usize = 4_096;

/// Where APNs is and who we are to it.
#[derive(Clone, Debug, clap::Args)]
pub struct ApnsSettings {
    /// APNs for production tokens (`http://` means HTTP/2 with prior knowledge; tests only).
    #[arg(long, env = "APNS_URL", default_value = "https://api.push.apple.com")]
    pub apns_url: String,

    /// APNs for sandbox (development build) tokens.
    #[arg(long, env = "APNS_SANDBOX_URL", default_value = "https://api.sandbox.push.apple.com")]
    pub apns_sandbox_url: String,

    /// The token-auth key Apple issued (`.p8`, PKCS#8 PEM). Alerts stay queued while it is missing.
    #[arg(long, env = "APNS_KEY_PATH")]
    pub apns_key_path: Option<String>,

    /// The key's 10-character id.
    #[arg(long, env = "APNS_KEY_ID", default_value = "")]
    pub apns_key_id: String,

    /// The Apple developer team id.
    #[arg(long, env = "APNS_TEAM_ID", default_value = "")]
    pub apns_team_id: String,

    /// The app's bundle id (`apns-topic`).
    #[arg(long, env = "APNS_TOPIC", default_value = "app.hangangjari")]
    pub apns_topic: String,

    /// An extra CA certificate (PEM) to trust, for a private gateway or a TLS test fake.
    #[arg(long, env = "APNS_CA_FILE")]
    pub apns_ca_file: Option<String>,

    /// The longest one request to APNs may take, answer included (milliseconds).
    #[arg(long, env = "APNS_TIMEOUT_MS", default_value_t = 10_000)]
    pub apns_timeout_ms: u64,
}

/// One alert to send.
#[derive(Clone, Debug)]
pub struct Notification<'a> {
    pub device_token: &'a str,
    pub sandbox: bool,
    pub payload: &'a [u8],
    pub collapse_id: &'a str,
    /// Unix seconds after which APNs must not deliver.
    pub expiration: i64,
    /// Our id for the request (`apns-id`), stable across retries.
    pub apns_id: &'a str,
}

/// What APNs answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub apns_id: Option<String>,
    /// The `reason` of an error body (`Unregistered`, `BadDeviceToken`, `TooManyRequests`, …).
    pub reason: Option<String>,
}

/// The client; cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct ApnsClient {
    http: reqwest::Client,
    production_url: String,
    sandbox_url: String,
    topic: String,
    request_timeout: Duration,
    pub token: ProviderToken,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    Key(#[from] crate::jwt::KeyError),
    #[error("APNS_CA_FILE: {0}")]
    Ca(String),
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
}

/// No answer from APNs: the connection could not be made, broke, or timed out (the device token is not in the
/// message; reqwest's URL is stripped).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

impl ApnsClient {
    pub fn new(settings: &ApnsSettings, token: ProviderToken) -> Result<ApnsClient, ClientError> {
        let mut builder = reqwest::Client::builder()
            .http2_prior_knowledge()
            .timeout(Duration::from_millis(settings.apns_timeout_ms))
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(None);
        if let Some(path) = &settings.apns_ca_file {
            let pem =
                std::fs::read(path).map_err(|error| ClientError::Ca(format!("{path}: {error}")))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|error| ClientError::Ca(error.to_string()))?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(ApnsClient {
            http: builder.build()?,
            production_url: settings.apns_url.trim_end_matches('/').to_owned(),
            sandbox_url: settings.apns_sandbox_url.trim_end_matches('/').to_owned(),
            topic: settings.apns_topic.clone(),
            request_timeout: Duration::from_millis(settings.apns_timeout_ms),
            token,
        })
    }

    /// The longest [`ApnsClient::send`] can take: two requests (an expired provider token is replaced once).
    pub fn longest_send(&self) -> Duration {
        self.request_timeout * 2
    }

    /// The same client (connection pool, endpoints, topic) signing with another provider token.
    pub fn with_token(&self, token: ProviderToken) -> ApnsClient {
        ApnsClient {
            http: self.http.clone(),
            production_url: self.production_url.clone(),
            sandbox_url: self.sandbox_url.clone(),
            topic: self.topic.clone(),
            request_timeout: self.request_timeout,
            token,
        }
    }

    /// Builds the client from settings; `None` when no key is configured.
    pub fn from_settings(settings: &ApnsSettings) -> Result<Option<ApnsClient>, ClientError> {
        let Some(path) = &settings.apns_key_path else { return Ok(None) };
        let token = ProviderToken::from_file(path, &settings.apns_key_id, &settings.apns_team_id)?;
        Ok(Some(ApnsClient::new(settings, token)?))
    }

    /// Sends one alert. Transport failures (connect, timeout, reset) are `Err`; any answer of APNs is `Ok`.
    pub async fn send(
        &self,
        notification: &Notification<'_>,
        now: i64,
    ) -> Result<Answer, TransportError> {
        let mut token = self.token.current(now);
        for attempt in 0..2 {
            let answer = self.post(notification, &token).await?;
            // A token APNs considers expired is replaced once, then the alert retried with it.
            if attempt == 0
                && answer.status == 403
                && answer.reason.as_deref() == Some("ExpiredProviderToken")
            {
                token = self.token.replace_expired(&token, now);
                continue;
            }
            return Ok(answer);
        }
        unreachable!("the loop returns on its second pass")
    }

    async fn post(
        &self,
        notification: &Notification<'_>,
        token: &str,
    ) -> Result<Answer, TransportError> {
        let base = if notification.sandbox { &self.sandbox_url } else { &self.production_url };
        let response = self
            .http
            .post(format!("{base}/3/device/{}", notification.device_token))
            .header("authorization", format!("bearer {token}"))
            .header("apns-topic", &self.topic)
            .header("apns-push-type", "alert")
            .header("apns-priority", "10")
            .header("apns-expiration", notification.expiration.to_string())
            .header("apns-collapse-id", notification.collapse_id)
            .header("apns-id", notification.apns_id)
            .header("content-type", "application/json")
            .body(notification.payload.to_vec())
            .send()
            .await
            .map_err(|error| TransportError(error.without_url().to_string()))?;
        let status = response.status().as_u16();
        let apns_id =
            response.headers().get("apns-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let reason = if status == 200 {
            None
        } else {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            body["reason"].as_str().map(str::to_owned)
        };
        Ok(Answer { status, apns_id, reason })
    }
}
