//! Who is calling over gRPC, and whether it may call that method.
//!
//! Every caller inside the cluster (the api, ingest, an operator) has a bearer token of its own, mounted from
//! a Secret; it sends it as `authorization: Bearer <token>` on every call. A server knows its callers only by
//! the SHA-256 of their tokens (`GRPC_CALLERS`), so a server's configuration lets nobody call anything, and
//! one table per server says which caller may call which method. A call without a known token is
//! `UNAUTHENTICATED`, a known caller outside its methods `PERMISSION_DENIED`; only `grpc.health.v1` is open,
//! because the kubelet's native gRPC probes cannot send a token (and health says nothing but "serving").
//!
//! Bearer tokens rather than mTLS: the same protection against a pod that merely gets a permitted network
//! label, rotation by replacing one Secret key and its digest, and nothing to run beside the cluster (no CA,
//! no cert-manager issuer). The tokens travel in the clear inside the cluster network, which NetworkPolicy
//! already confines to the pods that may talk.

use std::{
    fmt,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    task::{Context, Poll},
};

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use tonic::{Status, service::Interceptor};

/// The only methods callable without a token: health checks (kubelet probes, the smoke check).
const OPEN_PREFIX: &str = "/grpc.health.v1.Health/";
/// Reflection, when it is served at all (`GRPC_REFLECTION`), is for any known caller.
const REFLECTION_PREFIX: &str = "/grpc.reflection.";

/// A caller's bearer token; never printed.
#[derive(Clone)]
pub struct BearerToken(String);

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// Tokens shorter than this are refused: a token must be too long to guess (32 random bytes, hex or base64).
pub const MIN_TOKEN_LEN: usize = 32;

impl BearerToken {
    /// A token as it is; refused when too short or not a valid header value.
    pub fn new(token: &str) -> anyhow::Result<BearerToken> {
        let token = token.trim();
        anyhow::ensure!(
            token.len() >= MIN_TOKEN_LEN,
            "a gRPC bearer token must be at least {MIN_TOKEN_LEN} characters"
        );
        anyhow::ensure!(
            token.bytes().all(|byte| byte.is_ascii_graphic()),
            "a gRPC bearer token must be printable ASCII without spaces"
        );
        Ok(BearerToken(token.to_owned()))
    }

    /// The token in `path` (a mounted Secret key), surrounding whitespace ignored.
    pub fn from_file(path: &Path) -> anyhow::Result<BearerToken> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the gRPC token file {}", path.display()))?;
        BearerToken::new(&text).with_context(|| format!("in {}", path.display()))
    }

    /// A new random token (32 bytes, hex), for tests and for `cargo xtask` to provision.
    pub fn generate() -> BearerToken {
        let mut bytes = [0_u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system provides randomness");
        BearerToken(hex::encode(bytes))
    }

    /// The token's SHA-256, as a server is configured with it.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// `name=<sha-256 hex>`, the form of a `GRPC_CALLERS` entry for this token.
    pub fn caller_entry(&self, name: &str) -> String {
        format!("{name}={}", hex::encode(self.digest()))
    }

    /// The token as it goes on the wire; only for writing it into a file or header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A caller a server knows: its name and its token's SHA-256 (`api=3f2a…`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownCaller {
    pub name: String,
    digest: [u8; 32],
}

/// A malformed `GRPC_CALLERS` entry.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not `caller=<sha-256 of its token, 64 hex digits>`")]
pub struct KnownCallerError(String);

impl FromStr for KnownCaller {
    type Err = KnownCallerError;

    fn from_str(text: &str) -> Result<KnownCaller, KnownCallerError> {
        let error = || KnownCallerError(text.chars().take(80).collect());
        let (name, digest) = text.trim().split_once('=').ok_or_else(error)?;
        let valid_name = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(digest, &mut bytes).map_err(|_| error())?;
        valid_name.then(|| KnownCaller { name: name.to_owned(), digest: bytes }).ok_or_else(error)
    }
}

/// How a gRPC server authenticates its callers, from the command line or environment.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GrpcServerAuth {
    /// The callers this server accepts, as `name=<sha-256 hex of the caller's token>` (comma-separated; from
    /// a Secret). Without any, every call but health is refused.
    #[arg(long, env = "GRPC_CALLERS", value_delimiter = ',')]
    pub grpc_callers: Vec<KnownCaller>,

    /// Serve gRPC reflection (to known callers only); off in production.
    #[arg(long, env = "GRPC_REFLECTION", default_value_t = false)]
    pub grpc_reflection: bool,
}

/// How a gRPC client proves who it is, from the command line or environment.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct GrpcClientAuth {
    /// A file holding this service's own gRPC bearer token (a mounted Secret key); without it calls carry
    /// no token and the servers refuse them.
    #[arg(long, env = "GRPC_TOKEN_FILE")]
    pub grpc_token_file: Option<PathBuf>,
}

impl GrpcClientAuth {
    /// The token to send, read from its file now (so a missing or malformed file stops the process at start).
    pub fn token(&self) -> anyhow::Result<Option<BearerToken>> {
        self.grpc_token_file.as_deref().map(BearerToken::from_file).transpose()
    }
}

/// Which methods (full gRPC paths, `/hangang.push.v1.Push/SubmitFacts`) each caller may call.
pub type Permissions = &'static [(&'static str, &'static [&'static str])];

/// The name of the caller of a request that passed authentication (in the request's extensions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller(pub String);

/// Why a call was refused.
#[derive(Debug, PartialEq, Eq)]
enum Refusal {
    Unauthenticated,
    PermissionDenied { caller: String, method: String },
}

impl From<Refusal> for Status {
    fn from(refusal: Refusal) -> Status {
        match refusal {
            Refusal::Unauthenticated => {
                Status::unauthenticated("this call needs a known caller's bearer token")
            }
            Refusal::PermissionDenied { caller, method } => {
                Status::permission_denied(format!("caller `{caller}` may not call {method}"))
            }
        }
    }
}

/// The authentication and authorization rules of one server.
#[derive(Clone, Debug)]
pub struct Policy {
    callers: Arc<[KnownCaller]>,
    permissions: Permissions,
}

impl Policy {
    pub fn new(auth: &GrpcServerAuth, permissions: Permissions) -> Policy {
        Policy { callers: auth.grpc_callers.clone().into(), permissions }
    }

    /// The caller of a call to `method` with `authorization`, or why it is refused; `None` for open methods.
    fn check(&self, method: &str, authorization: Option<&[u8]>) -> Result<Option<Caller>, Refusal> {
        if method.starts_with(OPEN_PREFIX) {
            return Ok(None);
        }
        let token = authorization
            .and_then(|value| value.strip_prefix(b"Bearer "))
            .ok_or(Refusal::Unauthenticated)?;
        let digest: [u8; 32] = Sha256::digest(token.trim_ascii()).into();
        // Digests are compared, not tokens: how long a comparison takes says nothing about a token.
        let caller = self
            .callers
            .iter()
            .find(|known| known.digest == digest)
            .ok_or(Refusal::Unauthenticated)?;
        let allowed = method.starts_with(REFLECTION_PREFIX)
            || self
                .permissions
                .iter()
                .any(|(name, methods)| *name == caller.name && methods.contains(&method));
        if allowed {
            Ok(Some(Caller(caller.name.clone())))
        } else {
            Err(Refusal::PermissionDenied {
                caller: caller.name.clone(),
                method: method.to_owned(),
            })
        }
    }
}

/// The tower layer that applies a [`Policy`] to every call of a tonic server.
#[derive(Clone, Debug)]
pub struct AuthLayer(pub Policy);

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService { inner, policy: self.0.clone() }
    }
}

/// [`AuthLayer`]'s service.
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    inner: S,
    policy: Policy,
}

impl<S, B, R> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = http::Response<R>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<http::Response<R>, S::Error>> + Send>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let authorization = request.headers().get(http::header::AUTHORIZATION);
        match self.policy.check(request.uri().path(), authorization.map(|value| value.as_bytes())) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                Box::pin(self.inner.call(request))
            }
            Err(refusal) => {
                tracing::warn!(method = request.uri().path(), ?refusal, "gRPC call refused");
                let status: Status = refusal.into();
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

/// Adds this service's token to every call of a client (none when it has no token).
#[derive(Clone, Debug)]
pub struct WithToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl WithToken {
    pub fn new(token: Option<&BearerToken>) -> WithToken {
        WithToken(token.map(|token| {
            format!("Bearer {}", token.expose()).parse().expect("tokens are printable ASCII")
        }))
    }
}

impl Interceptor for WithToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// A channel whose calls carry this service's token.
pub type AuthChannel =
    tonic::service::interceptor::InterceptedService<tonic::transport::Channel, WithToken>;

/// `channel` with `token` on every call.
pub fn authorized(channel: tonic::transport::Channel, token: Option<&BearerToken>) -> AuthChannel {
    tonic::service::interceptor::InterceptedService::new(channel, WithToken::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERMISSIONS: Permissions = &[
        ("api", &["/hangang.push.v1.Push/UpsertInstallation"]),
        ("ingest", &["/hangang.push.v1.Push/SubmitFacts"]),
    ];

    fn policy(tokens: &[(&str, &BearerToken)]) -> Policy {
        let auth = GrpcServerAuth {
            grpc_callers: tokens
                .iter()
                .map(|(name, token)| token.caller_entry(name).parse().unwrap())
                .collect(),
            grpc_reflection: false,
        };
        Policy::new(&auth, PERMISSIONS)
    }

    fn bearer(token: &BearerToken) -> Vec<u8> {
        format!("Bearer {}", token.expose()).into_bytes()
    }

    #[test]
    fn callers_are_known_by_their_tokens_digest_and_held_to_their_methods() {
        let (api, ingest) = (BearerToken::generate(), BearerToken::generate());
        let policy = policy(&[("api", &api), ("ingest", &ingest)]);
        let submit = "/hangang.push.v1.Push/SubmitFacts";
        let upsert = "/hangang.push.v1.Push/UpsertInstallation";
        assert_eq!(policy.check(submit, Some(&bearer(&ingest))), Ok(Some(Caller("ingest".into()))));
        assert_eq!(policy.check(upsert, Some(&bearer(&api))), Ok(Some(Caller("api".into()))));
        assert_eq!(
            policy.check(submit, Some(&bearer(&api))),
            Err(Refusal::PermissionDenied { caller: "api".into(), method: submit.into() })
        );
        assert_eq!(policy.check(submit, None), Err(Refusal::Unauthenticated));
        let stranger = BearerToken::generate();
        assert_eq!(policy.check(submit, Some(&bearer(&stranger))), Err(Refusal::Unauthenticated));
        assert_eq!(
            policy.check(submit, Some(ingest.expose().as_bytes())),
            Err(Refusal::Unauthenticated)
        );
        // Health is open to the kubelet; reflection only to known callers.
        assert_eq!(policy.check("/grpc.health.v1.Health/Check", None), Ok(None));
        let reflection = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
        assert_eq!(policy.check(reflection, None), Err(Refusal::Unauthenticated));
        assert!(policy.check(reflection, Some(&bearer(&api))).is_ok());
    }

    #[test]
    fn a_server_without_callers_accepts_nobody() {
        let policy = policy(&[]);
        let token = BearerToken::generate();
        let upsert = "/hangang.push.v1.Push/UpsertInstallation";
        assert_eq!(policy.check(upsert, Some(&bearer(&token))), Err(Refusal::Unauthenticated));
    }

    #[test]
    fn tokens_and_caller_entries_are_checked_and_never_printed() {
        assert!(BearerToken::new("short").is_err());
        assert!(BearerToken::new(&format!("{} x", "a".repeat(40))).is_err());
        let token = BearerToken::generate();
        assert_eq!(format!("{token:?}"), "BearerToken([redacted])");
        let entry = token.caller_entry("api");
        assert_eq!(entry.len(), "api=".len() + 64);
        assert!(entry.parse::<KnownCaller>().is_ok());
        for bad in ["api", "api=zz", "=00", &format!("API={}", "0".repeat(64))] {
            assert!(bad.parse::<KnownCaller>().is_err(), "{bad}");
        }
    }
}
