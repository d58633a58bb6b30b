//! Registry authentication as the distribution spec's token flow describes it: a registry that wants
//! credentials answers `401` with a `WWW-Authenticate` challenge; `Basic` is answered with the user name and
//! password, `Bearer realm=…,service=…,scope=…` by fetching a token from the realm (with the credentials as
//! Basic auth when there are any, anonymously otherwise) and sending it as `Authorization: Bearer`.
//!
//! Credentials come from the environment (`REGISTRY_USERNAME` and `REGISTRY_PASSWORD`), else from the docker
//! CLI's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: `auths.<host>.auth`, the
//! base64 of `user:password`, or its `username` and `password` fields). Credential helpers (`credsStore`,
//! `credHelpers`) and identity tokens are not consulted: they need the docker tooling this release path does
//! without. A password never reaches a log, an error or `Debug` output: [`Credentials`] redacts it, and every
//! `Authorization` value is marked sensitive.

use std::{collections::BTreeMap, fmt, path::PathBuf};

use anyhow::Context;
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use reqwest::header::HeaderValue;
use serde::Deserialize;

/// The environment variables credentials are read from first.
pub const USERNAME_VARIABLE: &str = "REGISTRY_USERNAME";
pub const PASSWORD_VARIABLE: &str = "REGISTRY_PASSWORD";

/// A user name and its password (or access token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    username: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Credentials and where they were found, for the one line that says so (never the password).
#[derive(Clone, Debug)]
pub struct Found {
    pub credentials: Credentials,
    /// `REGISTRY_USERNAME/REGISTRY_PASSWORD`, or the config file's path.
    pub source: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), password: password.into() }
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    /// Credentials for the registry `host` (`host[:port]`) from this process's environment.
    pub fn from_environment(host: &str) -> anyhow::Result<Option<Found>> {
        Credentials::lookup(host, |name| std::env::var(name).ok())
    }

    /// Credentials for `host`, reading variables through `variable` (so tests need not touch the process's
    /// environment): `REGISTRY_USERNAME` and `REGISTRY_PASSWORD` together, else the docker config.
    pub fn lookup(
        host: &str,
        variable: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Found>> {
        let set = |name: &str| variable(name).filter(|value| !value.is_empty());
        match (set(USERNAME_VARIABLE), set(PASSWORD_VARIABLE)) {
            (Some(username), Some(password)) => {
                return Ok(Some(Found {
                    credentials: Credentials { username, password },
                    source: format!("{USERNAME_VARIABLE}/{PASSWORD_VARIABLE}"),
                }));
            }
            (Some(_), None) => {
                anyhow::bail!("{USERNAME_VARIABLE} is set but {PASSWORD_VARIABLE} is not")
            }
            (None, Some(_)) => {
                anyhow::bail!("{PASSWORD_VARIABLE} is set but {USERNAME_VARIABLE} is not")
            }
            (None, None) => {}
        }
        let path = match (set("DOCKER_CONFIG"), set("HOME")) {
            (Some(dir), _) => PathBuf::from(dir).join("config.json"),
            (None, Some(home)) => PathBuf::from(home).join(".docker/config.json"),
            (None, None) => return Ok(None),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        let config: DockerConfig = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a docker config", path.display()))?;
        let Some(entry) = config.entry_for(host) else { return Ok(None) };
        let credentials = entry
            .credentials()
            .with_context(|| format!("{}: the entry for {host}", path.display()))?;
        Ok(credentials.map(|credentials| Found { credentials, source: path.display().to_string() }))
    }

    /// `Authorization: Basic …`, marked sensitive.
    pub fn basic_authorization(&self) -> HeaderValue {
        let encoded = BASE64.encode(format!("{}:{}", self.username, self.password));
        sensitive(&format!("Basic {encoded}")).expect("base64 is always a valid header value")
    }
}

/// An `Authorization` value that the HTTP stack never prints.
pub fn sensitive(value: &str) -> Result<HeaderValue, reqwest::header::InvalidHeaderValue> {
    let mut header = HeaderValue::from_str(value)?;
    header.set_sensitive(true);
    Ok(header)
}

/// The part of the docker CLI's config.json that holds credentials.
#[derive(Debug, Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    identity_token: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthEntry([redacted])")
    }
}

impl DockerConfig {
    /// The entry for `host`: keys are written as `host`, `https://host`, `http://host/v1/`, …; Docker Hub's
    /// is `https://index.docker.io/v1/` whatever host name the pushes use.
    fn entry_for(&self, host: &str) -> Option<&AuthEntry> {
        let wanted = if matches!(host, "docker.io" | "registry-1.docker.io") {
            "index.docker.io"
        } else {
            host
        };
        self.auths.iter().find_map(|(key, entry)| {
            let without_scheme = key.split_once("://").map_or(key.as_str(), |(_, rest)| rest);
            let key_host = without_scheme.split('/').next().unwrap_or_default();
            (key_host == wanted).then_some(entry)
        })
    }
}

impl AuthEntry {
    fn credentials(&self) -> anyhow::Result<Option<Credentials>> {
        if let Some(auth) = self.auth.as_deref().filter(|auth| !auth.is_empty()) {
            let decoded = BASE64.decode(auth.trim()).context("`auth` is not base64")?;
            let decoded = String::from_utf8(decoded).context("`auth` is not UTF-8")?;
            let (username, password) =
                decoded.split_once(':').context("`auth` is not `user:password`")?;
            return Ok(Some(Credentials::new(username, password)));
        }
        match (&self.username, &self.password) {
            (Some(username), Some(password)) => {
                Ok(Some(Credentials::new(username.clone(), password.clone())))
            }
            _ if self.identity_token.is_some() => anyhow::bail!(
                "it holds an identity token, which this client cannot use; set {USERNAME_VARIABLE} and \
                 {PASSWORD_VARIABLE} instead"
            ),
            _ => Ok(None),
        }
    }
}

/// What a `401` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

impl Challenge {
    /// The challenge in a `WWW-Authenticate` value (`Bearer realm="…",service="…",scope="…"` or
    /// `Basic realm="…"`); `None` for a scheme this client cannot answer.
    pub fn parse(header: &str) -> Option<Challenge> {
        let header = header.trim();
        let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
        let parameters = auth_parameters(rest);
        let parameter = |name: &str| {
            parameters
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("basic") {
            Some(Challenge::Basic)
        } else if scheme.eq_ignore_ascii_case("bearer") {
            Some(Challenge::Bearer {
                realm: parameter("realm")?,
                service: parameter("service"),
                scope: parameter("scope"),
            })
        } else {
            None
        }
    }

    /// `Basic` or `Bearer`, for messages.
    pub fn scheme(&self) -> &'static str {
        match self {
            Challenge::Basic => "Basic",
            Challenge::Bearer { .. } => "Bearer",
        }
    }
}

/// RFC 7235 auth-params: `key=token` or `key="quoted, \"escaped\""`, separated by commas. Quoted values keep
/// their commas (a scope is `repository:team/api:pull,push`).
fn auth_parameters(text: &str) -> Vec<(String, String)> {
    let mut parameters = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return parameters;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| *c != ',') {
                value.push(c);
            }
        }
        parameters.push((key.trim().to_owned(), value.trim().to_owned()));
    }
}

/// A token service's answer: `token`, or OAuth2's `access_token` (the spec allows either).
#[derive(Deserialize)]
pub struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

impl fmt::Debug for TokenAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenAnswer([redacted])")
    }
}

impl TokenAnswer {
    pub fn into_token(self) -> Option<String> {
        self.token.or(self.access_token).filter(|token| !token.is_empty())
    }
}

/// Why a registry would not let us in; callers match on it to tell a missing login from a wrong one.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "registry {registry} requires authentication ({scheme}) and no credentials were found: set \
         {USERNAME_VARIABLE} and {PASSWORD_VARIABLE}, or give $DOCKER_CONFIG/config.json (else \
         ~/.docker/config.json) an `auths` entry for {registry}"
    )]
    Required { registry: String, scheme: &'static str },
    #[error("registry {registry} refused the credentials of `{username}` ({scheme}): {detail}")]
    Refused { registry: String, username: String, scheme: &'static str, detail: String },
    #[error(
        "registry {registry} answered 401 with a challenge this client cannot answer: `{header}`"
    )]
    Unanswerable { registry: String, header: String },
    #[error("the token service {realm} of registry {registry} answered {status}: {body}")]
    TokenService { registry: String, realm: String, status: reqwest::StatusCode, body: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_keep_commas_inside_quotes() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:team/api:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".to_owned(),
                service: Some("registry.example".to_owned()),
                scope: Some("repository:team/api:pull,push".to_owned()),
            })
        );
        assert_eq!(Challenge::parse(r#"Basic realm="Registry Realm""#), Some(Challenge::Basic));
        assert_eq!(
            Challenge::parse("bearer realm=https://a/token, service=b"),
            Some(Challenge::Bearer {
                realm: "https://a/token".to_owned(),
                service: Some("b".to_owned()),
                scope: None
            })
        );
        assert_eq!(Challenge::parse(r#"Bearer service="no realm""#), None);
        assert_eq!(Challenge::parse(r#"Negotiate abc"#), None);
    }

    fn variables(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.clone())
    }

    #[test]
    fn the_environment_comes_before_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().to_str().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            format!(
                r#"{{"auths": {{
                    "127.0.0.1:5000": {{"auth": "{}"}},
                    "https://registry.example/v1/": {{"username": "robot$ci", "password": "p:w"}},
                    "https://index.docker.io/v1/": {{"auth": "{}"}},
                    "tokens.example": {{"identitytoken": "refresh"}}
                }}, "credsStore": "desktop"}}"#,
                BASE64.encode("minji:s3cret:with:colons"),
                BASE64.encode("hub:hubpass")
            ),
        )
        .unwrap();
        let from_config = |host: &str| {
            Credentials::lookup(host, variables(&[("DOCKER_CONFIG", docker)]))
                .unwrap()
                .map(|found| found.credentials)
        };
        assert_eq!(
            from_config("127.0.0.1:5000"),
            Some(Credentials::new("minji", "s3cret:with:colons"))
        );
        assert_eq!(from_config("registry.example"), Some(Credentials::new("robot$ci", "p:w")));
        assert_eq!(from_config("registry-1.docker.io"), Some(Credentials::new("hub", "hubpass")));
        assert_eq!(from_config("elsewhere.example"), None);
        let error = Credentials::lookup("tokens.example", variables(&[("DOCKER_CONFIG", docker)]))
            .unwrap_err();
        assert!(format!("{error:#}").contains("identity token"), "{error:#}");

        let found = Credentials::lookup(
            "127.0.0.1:5000",
            variables(&[
                ("DOCKER_CONFIG", docker),
                (USERNAME_VARIABLE, "ci"),
                (PASSWORD_VARIABLE, "from-env"),
            ]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(found.credentials, Credentials::new("ci", "from-env"));
        assert_eq!(found.source, "REGISTRY_USERNAME/REGISTRY_PASSWORD");

        // ~/.docker/config.json without DOCKER_CONFIG; nothing at all is not an error.
        std::fs::create_dir_all(dir.path().join("home/.docker")).unwrap();
        std::fs::copy(dir.path().join("config.json"), dir.path().join("home/.docker/config.json"))
            .unwrap();
        let home = dir.path().join("home");
        let found =
            Credentials::lookup("127.0.0.1:5000", variables(&[("HOME", home.to_str().unwrap())]))
                .unwrap()
                .unwrap();
        assert!(found.source.ends_with("home/.docker/config.json"), "{}", found.source);
        assert!(Credentials::lookup("127.0.0.1:5000", variables(&[])).unwrap().is_none());
        assert!(Credentials::lookup("x", variables(&[(USERNAME_VARIABLE, "only")])).is_err());
    }

    #[test]
    fn passwords_never_show() {
        let credentials = Credentials::new("minji", "hunter2-secret");
        let shown = format!("{credentials:?} {:?}", credentials.basic_authorization());
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(!shown.contains(&BASE64.encode("minji:hunter2-secret")), "{shown}");
        assert!(shown.contains("minji"), "{shown}");
        let found = Found { credentials, source: "test".to_owned() };
        assert!(!format!("{found:?}").contains("hunter2-secret"));
        let answer: TokenAnswer =
            serde_json::from_str(r#"{"access_token": "tok-secret"}"#).unwrap();
        assert!(!format!("{answer:?}").contains("tok-secret"));
        assert_eq!(answer.into_token().as_deref(), Some("tok-secret"));
    }
}
