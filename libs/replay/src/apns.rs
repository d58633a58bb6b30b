//! A fake APNs: HTTP/2 (prior knowledge) on loopback, answering like Apple's server. It verifies the provider
//! token's ES256 signature against the public key and its `kid`/`iss`/`iat`, checks the headers and the
//! payload size, records every accepted delivery, and can be told to answer 410/400/429/500 or slowly for
//! chosen device tokens.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use p256::{
    ecdsa::{Signature, SigningKey, VerifyingKey, signature::Verifier},
    pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding},
};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// A fresh P-256 key as PKCS#8 PEM, standing in for Apple's `.p8` (the sandbox, `cargo xtask dev`, tests and
/// benchmarks; production uses the key Apple issued).
pub fn generate_key() -> String {
    loop {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        // Nearly every 32 bytes are a valid scalar; the rare ones that are not are drawn again.
        if let Ok(key) = SigningKey::from_bytes(&bytes.into()) {
            return key.to_pkcs8_pem(LineEnding::LF).expect("a valid key encodes").to_string();
        }
    }
}

/// The public key of a PEM private key, PEM-encoded: what [`FakeApns`] verifies provider tokens against.
pub fn public_pem(private_pem: &str) -> anyhow::Result<String> {
    let key = SigningKey::from_pkcs8_pem(private_pem)
        .map_err(|error| anyhow::anyhow!("not a PKCS#8 P-256 private key: {error}"))?;
    key.verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|error| anyhow::anyhow!("cannot encode the public key: {error}"))
}

/// One accepted alert.
#[derive(Clone, Debug, PartialEq)]
pub struct Delivery {
    pub device_token: String,
    pub apns_id: String,
    pub collapse_id: Option<String>,
    pub expiration: Option<i64>,
    pub priority: String,
    pub payload: Value,
    /// `iat` of the provider token used.
    pub token_issued_at: i64,
    /// When the fake received it (benchmarks measure fact → delivered with it).
    pub received_at: std::time::Instant,
}

/// How the fake answers a device token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// An error status with its reason (`410 Unregistered`, `429 TooManyRequests`, `500 InternalServerError`).
    Fail(u16, &'static str),
    /// Accept (the delivery is recorded at once, as Apple would have it), but answer after a delay.
    Slow(Duration),
    /// [`Behaviour::Fail`] after a delay (the device refreshes its token while the answer is on its way).
    FailAfter(u16, &'static str, Duration),
}

#[derive(Debug)]
struct FakeState {
    key: VerifyingKey,
    key_id: String,
    team_id: String,
    topic: String,
    deliveries: Vec<Delivery>,
    behaviours: HashMap<String, Behaviour>,
    /// Every accepted alert is answered this long after it is accepted (a loaded APNs).
    answer_delay: Duration,
    requests: u32,
    /// Requests received and not yet answered (nor dropped by the client), and the most seen at once.
    in_flight: u32,
    max_in_flight: u32,
    /// Provider tokens already verified, with their `iat` (a token is reused for up to an hour, so its
    /// signature is checked once, as Apple's servers also cache).
    verified: HashMap<String, i64>,
}

/// A fake APNs server's shared state.
#[derive(Clone, Debug)]
pub struct FakeApns(Arc<Mutex<FakeState>>);

fn reject(status: StatusCode, reason: &str) -> Response {
    (status, Json(json!({"reason": reason}))).into_response()
}

impl FakeApns {
    /// Trusts tokens signed by the key whose public half is `public_pem`, with `key_id` and `team_id`.
    pub fn new(
        public_pem: &str,
        key_id: &str,
        team_id: &str,
        topic: &str,
    ) -> anyhow::Result<FakeApns> {
        let key = VerifyingKey::from_public_key_pem(public_pem)
            .map_err(|error| anyhow::anyhow!("public key: {error}"))?;
        Ok(FakeApns(Arc::new(Mutex::new(FakeState {
            key,
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            topic: topic.to_owned(),
            deliveries: Vec::new(),
            behaviours: HashMap::new(),
            answer_delay: Duration::ZERO,
            requests: 0,
            in_flight: 0,
            max_in_flight: 0,
            verified: HashMap::new(),
        }))))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.0.lock().expect("the fake's lock is never poisoned")
    }

    pub fn behave(&self, device_token: &str, behaviour: Behaviour) {
        self.lock().behaviours.insert(device_token.to_ascii_lowercase(), behaviour);
    }

    pub fn heal(&self, device_token: &str) {
        self.lock().behaviours.remove(&device_token.to_ascii_lowercase());
    }

    /// Answers every accepted alert `delay` after accepting it (token behaviours still apply).
    pub fn answer_after(&self, delay: Duration) {
        self.lock().answer_delay = delay;
    }

    /// The most requests the fake had on hand at once.
    pub fn max_in_flight(&self) -> u32 {
        self.lock().max_in_flight
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.lock().deliveries.clone()
    }

    /// Requests received, accepted or not.
    pub fn requests(&self) -> u32 {
        self.lock().requests
    }

    /// Checks `authorization: bearer <jwt>`; returns the token's `iat`, or the reason APNs would give.
    fn verify_token(&self, headers: &HeaderMap) -> Result<i64, &'static str> {
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("bearer "))
            .ok_or("MissingProviderToken")?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if let Some(&issued_at) = self.lock().verified.get(bearer) {
            return if now - issued_at > 3_600 {
                Err("ExpiredProviderToken")
            } else {
                Ok(issued_at)
            };
        }
        let (signing_input, signature) = bearer.rsplit_once('.').ok_or("InvalidProviderToken")?;
        let (header, claims) = signing_input.split_once('.').ok_or("InvalidProviderToken")?;
        let decode = |part: &str| -> Option<Value> {
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
        };
        let (Some(header), Some(claims)) = (decode(header), decode(claims)) else {
            return Err("InvalidProviderToken");
        };
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or("InvalidProviderToken")?;
        let state = self.lock();
        if header["alg"] != "ES256"
            || header["kid"] != state.key_id.as_str()
            || claims["iss"] != state.team_id.as_str()
        {
            return Err("InvalidProviderToken");
        }
        state
            .key
            .verify(signing_input.as_bytes(), &signature)
            .map_err(|_| "InvalidProviderToken")?;
        let issued_at = claims["iat"].as_i64().ok_or("InvalidProviderToken")?;
        drop(state);
        self.lock().verified.insert(bearer.to_owned(), issued_at);
        if now - issued_at > 3_600 {
            return Err("ExpiredProviderToken");
        }
        Ok(issued_at)
    }
}

/// Counts a request as in flight until its answer is sent or its client goes away (the handler is dropped).
struct InFlight(FakeApns);

impl InFlight {
    fn enter(fake: &FakeApns) -> InFlight {
        let mut state = fake.lock();
        state.requests += 1;
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        drop(state);
        InFlight(fake.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().in_flight -= 1;
    }
}

async fn deliver(
    State(fake): State<FakeApns>,
    Path(device_token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _in_flight = InFlight::enter(&fake);
    let issued_at = match fake.verify_token(&headers) {
        Ok(issued_at) => issued_at,
        Err(reason) => return reject(StatusCode::FORBIDDEN, reason),
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header("apns-topic").as_deref() != Some(fake.lock().topic.as_str()) {
        return reject(StatusCode::BAD_REQUEST, "BadTopic");
    }
    if header("apns-push-type").as_deref() != Some("alert") {
        return reject(StatusCode::BAD_REQUEST, "InvalidPushType");
    }
    let priority = header("apns-priority").unwrap_or_else(|| "10".into());
    if !matches!(priority.as_str(), "10" | "5") {
        return reject(StatusCode::BAD_REQUEST, "BadPriority");
    }
    let collapse_id = header("apns-collapse-id");
    if collapse_id.as_ref().is_some_and(|id| id.len() > 64) {
        return reject(StatusCode::BAD_REQUEST, "BadCollapseId");
    }
    let expiration = match header("apns-expiration").map(|v| v.parse::<i64>()) {
        Some(Ok(at)) => Some(at),
        Some(Err(_)) => return reject(StatusCode::BAD_REQUEST, "BadExpirationDate"),
        None => None,
    };
    if device_token.len() < 64 || !device_token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return reject(StatusCode::BAD_REQUEST, "BadDeviceToken");
    }
    if body.is_empty() {
        return reject(StatusCode::BAD_REQUEST, "PayloadEmpty");
    }
    if body.len() > 4_096 {
        return reject(StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge");
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return reject(StatusCode::BAD_REQUEST, "PayloadEmpty");
    };
    let behaviour = fake.lock().behaviours.get(&device_token.to_ascii_lowercase()).cloned();
    if let Some(Behaviour::FailAfter(_, _, delay)) = &behaviour {
        tokio::time::sleep(*delay).await;
    }
    let delay = match behaviour {
        Some(Behaviour::Fail(status, reason) | Behaviour::FailAfter(status, reason, _)) => {
            let mut response = reject(
                StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                reason,
            );
            if status == 410 {
                response = (
                    StatusCode::GONE,
                    Json(json!({"reason": reason, "timestamp": 1_781_332_200_000_i64})),
                )
                    .into_response();
            }
            return response;
        }
        Some(Behaviour::Slow(delay)) => Some(delay),
        None => Some(fake.lock().answer_delay).filter(|delay| !delay.is_zero()),
    };
    let apns_id =
        header("apns-id").unwrap_or_else(|| "00000000-0000-4000-8000-000000000000".into());
    fake.lock().deliveries.push(Delivery {
        device_token,
        apns_id: apns_id.clone(),
        collapse_id,
        expiration,
        priority,
        payload,
        token_issued_at: issued_at,
        received_at: std::time::Instant::now(),
    });
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    ([("apns-id", apns_id)], StatusCode::OK).into_response()
}

/// The routes Apple serves.
pub fn router(fake: FakeApns) -> Router {
    Router::new().route("/3/device/{token}", post(deliver)).with_state(fake)
}

/// Serves on loopback port 0 until `shutdown`; returns the base URL (`http://…`, HTTP/2 prior knowledge).
pub async fn spawn(fake: FakeApns, shutdown: CancellationToken) -> anyhow::Result<String> {
    let listener =
        tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        axum::serve(listener, router(fake)).with_graceful_shutdown(shutdown.cancelled_owned()).await
    });
    Ok(base)
}
