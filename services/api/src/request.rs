//! Reading requests: query parameters with errors that name the parameter, and the response language from
//! `lang=` or `Accept-Language`.

use std::collections::BTreeMap;

use axum::{
    extract::{FromRequestParts, RawQuery},
    http::{HeaderMap, header, request::Parts},
};
use contracts::v2::Lang;

use crate::error::ApiError;

/// Query parameters, parsed once; unknown parameters are ignored so newer apps can send more.
#[derive(Debug, Default)]
pub struct QueryParams(BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RawQuery(raw) =
            RawQuery::from_request_parts(parts, state).await.unwrap_or(RawQuery(None));
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
            .map_err(|error| {
                ApiError::bad_request("query", format!("malformed query string: {error}"))
            })?;
        Ok(QueryParams(pairs.into_iter().collect()))
    }
}

impl QueryParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

fn parse_lang(tag: &str) -> Option<Lang> {
    let lower = tag.trim().to_ascii_lowercase();
    let mut subtags = lower.split(['-', '_']);
    match subtags.next()? {
        "ko" => Some(Lang::Ko),
        "en" => Some(Lang::En),
        "ja" => Some(Lang::Ja),
        // Simplified Chinese: zh-Hans, zh-CN, zh-SG, or bare zh. Traditional (Hant, TW, HK, MO) is not served.
        "zh" => {
            let rest: Vec<&str> = subtags.collect();
            let traditional =
                rest.iter().any(|subtag| matches!(*subtag, "hant" | "tw" | "hk" | "mo"));
            (!traditional).then_some(Lang::ZhHans)
        }
        _ => None,
    }
}

/// The response language: `lang=` (exact: `ko`, `en`, `ja`, `zh-Hans`), else the first supported
/// `Accept-Language` entry by quality, else Korean.
pub fn negotiate_lang(query: &QueryParams, headers: &HeaderMap) -> Result<Lang, ApiError> {
    if let Some(value) = query.get("lang") {
        return match value {
            "ko" => Ok(Lang::Ko),
            "en" => Ok(Lang::En),
            "ja" => Ok(Lang::Ja),
            "zh-Hans" => Ok(Lang::ZhHans),
            _ => Err(ApiError::bad_request(
                "lang",
                format!("`{value}` is not one of ko, en, ja, zh-Hans"),
            )),
        };
    }
    let Some(accept) = headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok())
    else {
        return Ok(Lang::Ko);
    };
    let mut ranges: Vec<(f32, usize, Lang)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(position, range)| {
            let mut pieces = range.split(';');
            let lang = parse_lang(pieces.next()?)?;
            let quality = pieces
                .find_map(|piece| piece.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (quality > 0.0).then_some((quality, position, lang))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    Ok(ranges.first().map_or(Lang::Ko, |(_, _, lang)| *lang))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    /// The language negotiated, or the error message a client would read.
    fn negotiate(query: &str, accept: Option<&str>) -> Result<Lang, Rejected> {
        let params = QueryParams(
            serde_urlencoded::from_str::<Vec<(String, String)>>(query)
                .unwrap()
                .into_iter()
                .collect(),
        );
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT_LANGUAGE, HeaderValue::from_str(accept).unwrap());
        }
        negotiate_lang(&params, &headers).map_err(|error| Rejected(error.to_string()))
    }

    #[derive(Debug, PartialEq)]
    struct Rejected(String);

    #[test]
    fn query_wins_and_must_be_exact() {
        assert_eq!(negotiate("lang=ja", Some("en")), Ok(Lang::Ja));
        assert_eq!(negotiate("lang=zh-Hans", None), Ok(Lang::ZhHans));
        assert_eq!(
            negotiate("lang=fr", None),
            Err(Rejected("lang: `fr` is not one of ko, en, ja, zh-Hans".into()))
        );
    }

    #[test]
    fn accept_language_by_quality_then_order() {
        assert_eq!(negotiate("", Some("fr-FR, en-US;q=0.8, ja;q=0.9")), Ok(Lang::Ja));
        assert_eq!(negotiate("", Some("zh-CN,zh;q=0.9")), Ok(Lang::ZhHans));
        assert_eq!(negotiate("", Some("zh-TW, en;q=0.5")), Ok(Lang::En));
        assert_eq!(negotiate("", Some("de, fr")), Ok(Lang::Ko));
        assert_eq!(negotiate("", None), Ok(Lang::Ko));
    }
}
