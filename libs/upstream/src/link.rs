//! Links the app may open: only absolute `https` URLs with a plain domain name ([`HttpsUrl`]). Organisers write
//! anything into a link field (`javascript:goView('1234')` on board pages, `sms:`, `tel:`, plain `http:`,
//! a path, a sentence), and the app opens what it is given; so a link that is not https is dropped at the
//! parser, never stored or served, and the item it belonged to stays, without a link (an event is still on
//! whether or not its organiser's page is safe to open). Why each one was dropped ([`Rejected`]) is kept for
//! the run's record.

use std::{fmt, str::FromStr};

/// The longest link kept, in bytes (browsers and iOS cope with more; nothing real comes close).
pub const MAX_BYTES: usize = 2_048;

/// An absolute `https` URL: lowercase scheme and host, an optional port, no credentials, and a path, query
/// and fragment without spaces, control characters or characters that break out of markup (`<>"'\` …);
/// non-ASCII characters in them are percent-encoded. Built only by [`HttpsUrl::parse`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpsUrl(String);

/// Why a link was dropped.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Another scheme (`javascript`, `http`, `sms`, `data`, …), lowercased and at most 32 characters.
    #[error("`{0}:` links are not https")]
    Scheme(String),
    /// No scheme at all: a relative path or plain text.
    #[error("not an absolute link")]
    NoScheme,
    /// An https link that is not well formed: the reason.
    #[error("an https link {0}")]
    Malformed(&'static str),
    /// Longer than [`MAX_BYTES`].
    #[error("a link of {0} bytes (at most {MAX_BYTES})")]
    TooLong(usize),
}

impl Rejected {
    /// A short label for records: the scheme (`javascript`, `http`, `sms`), or `none`, `malformed`,
    /// `too_long`.
    pub fn label(&self) -> &str {
        match self {
            Rejected::Scheme(scheme) => scheme,
            Rejected::NoScheme => "none",
            Rejected::Malformed(_) => "malformed",
            Rejected::TooLong(_) => "too_long",
        }
    }
}

/// Characters kept out of links even where URLs would percent-encode them: they end attributes and strings
/// in whatever markup a link is later written into.
const FORBIDDEN: [char; 10] = ['"', '\'', '<', '>', '\\', '^', '`', '{', '|', '}'];

impl HttpsUrl {
    /// Reads `raw` (surrounding whitespace ignored) as an https link.
    pub fn parse(raw: &str) -> Result<HttpsUrl, Rejected> {
        let raw = raw.trim();
        if raw.len() > MAX_BYTES {
            return Err(Rejected::TooLong(raw.len()));
        }
        let scheme = scheme_of(raw);
        if let Some(scheme) = scheme.filter(|scheme| !scheme.eq_ignore_ascii_case("https")) {
            let label: String = scheme.to_ascii_lowercase().chars().take(32).collect();
            return Err(Rejected::Scheme(label));
        }
        // Browsers drop tabs and newlines inside URLs (`java\nscript:` is `javascript:` to them), so a link
        // with any of these is no link, whatever its scheme looks like.
        if raw.chars().any(|c| c.is_control() || c.is_whitespace() || FORBIDDEN.contains(&c)) {
            return Err(Rejected::Malformed("with a space, control or markup character"));
        }
        let scheme = scheme.ok_or(Rejected::NoScheme)?;
        let rest = raw[scheme.len() + 1..]
            .strip_prefix("//")
            .ok_or(Rejected::Malformed("without `//` and a host"))?;
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        if authority.contains('@') {
            return Err(Rejected::Malformed("with credentials"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        if !plain_domain(host) {
            return Err(Rejected::Malformed("without a plain domain name as its host"));
        }
        let mut url = format!("https://{}", host.to_ascii_lowercase());
        if let Some(port) = port {
            if port.is_empty()
                || port.len() > 5
                || !port.bytes().all(|b| b.is_ascii_digit())
                || !matches!(port.parse::<u32>(), Ok(1..=65_535))
            {
                return Err(Rejected::Malformed("with an invalid port"));
            }
            url.push(':');
            url.push_str(port);
        }
        push_encoded(&mut url, tail);
        if url.len() > MAX_BYTES {
            return Err(Rejected::TooLong(url.len()));
        }
        Ok(HttpsUrl(url))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for HttpsUrl {
    type Err = Rejected;

    fn from_str(raw: &str) -> Result<HttpsUrl, Rejected> {
        HttpsUrl::parse(raw)
    }
}

impl fmt::Display for HttpsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The scheme of an absolute reference (RFC 3986: a letter, then letters, digits, `+`, `-`, `.`, then `:`
/// before any `/`, `?` or `#`).
pub fn scheme_of(reference: &str) -> Option<&str> {
    let colon = reference.find(':')?;
    let scheme = &reference[..colon];
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// A DNS name of at least two labels of ASCII letters, digits and inner hyphens (IPv4 addresses pass too;
/// IPv6 literals and internationalized names do not: nothing the sources link to uses them).
fn plain_domain(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    host.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Appends the path, query and fragment with non-ASCII characters and stray `%` signs percent-encoded, so
/// every client reads the same URL.
fn push_encoded(url: &mut String, tail: &str) {
    let bytes = tail.as_bytes();
    for (at, c) in tail.char_indices() {
        let escape = c == '%'
            && !(bytes.get(at + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(at + 2).is_some_and(u8::is_ascii_hexdigit));
        if c.is_ascii() && !escape {
            url.push(c);
            continue;
        }
        let mut buffer = [0; 4];
        for byte in c.encode_utf8(&mut buffer).bytes() {
            url.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// What an item's link field held, once read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Link {
    /// Nothing (the field was missing or blank).
    Absent,
    Https(HttpsUrl),
    /// Something that is not a link the app may open: dropped, with why.
    Dropped(Rejected),
}

impl Link {
    /// Reads one field.
    pub fn read(raw: Option<&str>) -> Link {
        match raw.map(str::trim).filter(|raw| !raw.is_empty()) {
            None => Link::Absent,
            Some(raw) => HttpsUrl::parse(raw).map_or_else(Link::Dropped, Link::Https),
        }
    }

    /// The first https link among fields tried in order (`ORG_LINK`, then `HMPG_ADDR`); when none is, why the
    /// first non-blank one was dropped.
    pub fn first_of<'a>(fields: impl IntoIterator<Item = Option<&'a str>>) -> Link {
        let mut dropped = Link::Absent;
        for field in fields {
            match Link::read(field) {
                Link::Https(url) => return Link::Https(url),
                Link::Dropped(why) if dropped == Link::Absent => dropped = Link::Dropped(why),
                Link::Absent | Link::Dropped(_) => {}
            }
        }
        dropped
    }

    /// The link the app may be given.
    pub fn url(&self) -> Option<&HttpsUrl> {
        match self {
            Link::Https(url) => Some(url),
            Link::Absent | Link::Dropped(_) => None,
        }
    }

    /// Why the field's content was dropped, if it was.
    pub fn dropped(&self) -> Option<&Rejected> {
        match self {
            Link::Dropped(why) => Some(why),
            Link::Absent | Link::Https(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_links_are_kept_and_normalized() {
        let kept = |raw: &str| HttpsUrl::parse(raw).map(|url| url.to_string());
        assert_eq!(
            kept(" https://culture.seoul.go.kr/culture/view?cultcode=123#top ").as_deref(),
            Ok("https://culture.seoul.go.kr/culture/view?cultcode=123#top")
        );
        assert_eq!(kept("HTTPS://Example.ORG:8443").as_deref(), Ok("https://example.org:8443"));
        assert_eq!(
            kept("https://example.org/행사?q=100%").as_deref(),
            Ok("https://example.org/%ED%96%89%EC%82%AC?q=100%25")
        );
        assert_eq!(kept("https://example.org/a%20b").as_deref(), Ok("https://example.org/a%20b"));
    }

    #[test]
    fn every_other_scheme_is_dropped_with_its_name() {
        let label = |raw: &str| HttpsUrl::parse(raw).unwrap_err().label().to_owned();
        assert_eq!(label("javascript:alert(document.cookie)"), "javascript");
        assert_eq!(label("JavaScript:goView('1234')"), "javascript");
        assert_eq!(label("sms:01012345678?body=hi"), "sms");
        assert_eq!(label("tel:02-120"), "tel");
        assert_eq!(label("http://example.org/event"), "http");
        assert_eq!(label("data:text/html;base64,PHNjcmlwdD4="), "data");
        assert_eq!(label("file:///etc/passwd"), "file");
        assert_eq!(label("/notice/view?id=1"), "none");
        assert_eq!(label("//example.org/a"), "none");
        assert_eq!(label("홈페이지 참조"), "malformed");
        assert_eq!(label("www.example.org"), "none");
    }

    #[test]
    fn https_links_that_could_mislead_or_break_out_are_dropped() {
        let malformed = |raw: &str| {
            matches!(HttpsUrl::parse(raw), Err(Rejected::Malformed(_)) | Err(Rejected::TooLong(_)))
        };
        assert!(malformed("java\nscript:alert(1)"), "browsers drop the newline");
        assert!(malformed("https://example.org/\"onmouseover=\"alert(1)"));
        assert!(malformed("https://example.org/<script>"));
        assert!(malformed("https://user:pass@example.org/"));
        assert!(malformed("https://bank.example@evil.example/"));
        assert!(malformed("https:example.org"));
        assert!(malformed("https://"));
        assert!(malformed("https://localhost/"));
        assert!(malformed("https://[::1]/"));
        assert!(malformed("https://-bad-.example.org/"));
        assert!(malformed("https://example.org:0/"));
        assert!(malformed("https://example.org:99999/"));
        assert!(malformed("https://example.org:/"));
        assert!(malformed(&format!("https://example.org/{}", "a".repeat(MAX_BYTES))));
        assert!(malformed(&format!("https://example.org/{}", "가".repeat(600))), "after encoding");
    }

    #[test]
    fn the_first_https_field_wins_and_the_first_dropped_one_is_recorded() {
        let https = |raw: &str| Link::Https(HttpsUrl::parse(raw).unwrap());
        assert_eq!(
            Link::first_of([Some("javascript:void(0)"), Some("https://example.org/e")]),
            https("https://example.org/e")
        );
        assert_eq!(
            Link::first_of([Some("sms:010"), Some("http://example.org")]),
            Link::Dropped(Rejected::Scheme("sms".into()))
        );
        assert_eq!(Link::first_of([Some(" "), None]), Link::Absent);
        assert_eq!(
            Link::read(Some("https://example.org")).url().unwrap().as_str(),
            "https://example.org"
        );
    }
}
