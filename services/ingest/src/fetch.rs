//! Fetching from upstream: one HTTP client with timeouts, a polite User-Agent and a body size limit, whose
//! every error becomes a classified [`Failure`].

use std::{error::Error as _, time::Duration};

use crate::outcome::{ErrorClass, Failure};

/// Largest body accepted from any source (the biggest real answers are a few hundred KB).
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;

/// Identifies us to the public servers we poll, with a way to reach us.
pub const USER_AGENT: &str =
    concat!("Hangangjari-ingest/", env!("CARGO_PKG_VERSION"), " (+https://hangangjari.app)");

/// A successful HTTP answer.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// The shared client.
#[derive(Clone, Debug)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    pub fn new(timeout: Duration) -> anyhow::Result<Fetcher> {
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()?;
        Ok(Fetcher { client })
    }

    /// GETs `url`. `label` names the request in failure messages instead of the URL, which may contain an API
    /// key. `extra_headers` carries per-source quirks (the parking portal wants `Accept-Encoding: identity`).
    pub async fn get(
        &self,
        url: &str,
        label: &str,
        extra_headers: &[(&str, &str)],
    ) -> Result<Fetched, Failure> {
        let mut request = self.client.get(url);
        for (name, value) in extra_headers {
            request = request.header(*name, *value);
        }
        let mut response = request.send().await.map_err(|error| classify(&error, label))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::new(ErrorClass::HttpStatus, format!("{label}: HTTP {status}")));
        }
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| classify(&error, label))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(Failure::new(
                    ErrorClass::TooLarge,
                    format!("{label}: body over {MAX_BODY_BYTES} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { content_type, body })
    }
}

/// Classifies a transport error. TLS problems surface as connect errors whose source chain contains a
/// rustls error; they get their own class because the fix (a certificate) is different.
fn classify(error: &reqwest::Error, label: &str) -> Failure {
    let mut chain = String::new();
    let mut source = error.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    let lower = chain.to_ascii_lowercase();
    let class = if error.is_timeout() {
        ErrorClass::Timeout
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
    {
        ErrorClass::Tls
    } else if error.is_connect() {
        ErrorClass::Connect
    } else if error.is_body() || error.is_decode() {
        ErrorClass::UnexpectedContent
    } else {
        ErrorClass::Connect
    };
    // reqwest errors include the URL, and API keys live in URLs: name the request by its label instead.
    let mut message = error.to_string();
    if let Some(url) = error.url() {
        message = message.replace(url.as_str(), label);
    }
    Failure::new(class, format!("{label}: {message}{chain}"))
}
