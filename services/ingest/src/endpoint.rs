//! Where an upstream source is ([`UpstreamUrl`]): an `https` base URL, or plain `http` to a loopback host only
//! (the replay upstream of the tests, the sandbox and `cargo xtask dev`). Seoul's key travels in the request
//! path and data.go.kr's in the query, so a plain-http URL to any other host is refused when the
//! configuration is read, instead of sending keys in clear text on every run.

use std::{fmt, net::IpAddr, str::FromStr};

/// The error `reqwest::Url` parses with (`url::ParseError`), named through reqwest so `url` needs no entry of
/// its own.
type UrlParseError = <reqwest::Url as FromStr>::Err;

/// An upstream base URL, without a trailing slash: https, or http on loopback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamUrl(String);

/// Why a URL is not an upstream base URL.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamUrlError {
    #[error("not a URL: {0}")]
    Invalid(#[source] UrlParseError),
    #[error(
        "plain http to `{0}`: upstream sources are called over https (plain http only to loopback)"
    )]
    PlainHttp(String),
    #[error("`{0}:` URLs are not upstream URLs: expected https")]
    Scheme(String),
}

impl UpstreamUrl {
    pub fn parse(raw: &str) -> Result<UpstreamUrl, UpstreamUrlError> {
        let url = reqwest::Url::parse(raw.trim()).map_err(UpstreamUrlError::Invalid)?;
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&url) => {}
            "http" => {
                return Err(UpstreamUrlError::PlainHttp(url.host_str().unwrap_or_default().into()));
            }
            other => return Err(UpstreamUrlError::Scheme(other.to_owned())),
        }
        Ok(UpstreamUrl(url.as_str().trim_end_matches('/').to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `path` under this base (`path` starts with `/`, or `?` for a query on the base itself).
    pub fn join(&self, path: &str) -> String {
        format!("{}{path}", self.0)
    }
}

fn is_loopback(url: &reqwest::Url) -> bool {
    let Some(host) = url.host_str() else { return false };
    // IPv6 hosts come bracketed (`[::1]`).
    match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

impl FromStr for UpstreamUrl {
    type Err = UpstreamUrlError;

    fn from_str(raw: &str) -> Result<UpstreamUrl, UpstreamUrlError> {
        UpstreamUrl::parse(raw)
    }
}

impl fmt::Display for UpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_anywhere_and_http_only_on_loopback() {
        let ok = |raw: &str| UpstreamUrl::parse(raw).map(|url| url.to_string()).unwrap();
        assert_eq!(ok("https://openapi.seoul.go.kr/"), "https://openapi.seoul.go.kr");
        assert_eq!(ok("https://www.ihangangpark.kr"), "https://www.ihangangpark.kr");
        assert_eq!(ok("http://127.0.0.1:41234"), "http://127.0.0.1:41234");
        assert_eq!(ok("http://localhost:8080/notices"), "http://localhost:8080/notices");
        assert_eq!(ok("http://[::1]:9000"), "http://[::1]:9000");

        let refused = |raw: &str| UpstreamUrl::parse(raw).unwrap_err().to_string();
        assert!(
            refused("http://openapi.seoul.go.kr:8088")
                .contains("plain http to `openapi.seoul.go.kr`")
        );
        assert!(refused("http://10.0.0.7").contains("plain http"));
        assert!(refused("ftp://example.org").contains("`ftp:`"));
        assert!(refused("openapi.seoul.go.kr").starts_with("not a URL"));
    }

    #[test]
    fn paths_join_the_base() {
        let base = UpstreamUrl::parse("https://www.ihangangpark.kr/").unwrap();
        assert_eq!(
            base.join("/parking/region/region8"),
            "https://www.ihangangpark.kr/parking/region/region8"
        );
    }
}
