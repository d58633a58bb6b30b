//! The Seoul Open Data Plaza envelope shared by `citydata`, `culturalEventInfo` and the parking datasets, and
//! the gateway XML that `data.go.kr` answers with when a quota or key problem occurs (even with HTTP 200 and
//! even when JSON was requested).
//!
//! Quirks handled: the result code key is `CODE` in most services but literally `RESULT.CODE` in `citydata`;
//! the envelope sits at the top level or under the service name; `INFO-200` means "no data", not failure.

use serde_json::Value;

use crate::outcome::{ErrorClass, Failure, excerpt};

/// What a well-formed answer said.
#[derive(Debug)]
pub enum Answer {
    /// `INFO-000`: the body carries data.
    Data(Value),
    /// `INFO-200`: the source has nothing for this request.
    NoData,
}

/// Parses a Seoul Open API body and classifies its result code.
pub fn classify(body: &[u8], service: &str) -> Result<Answer, Failure> {
    let value = parse_json(body)?;
    let result = value
        .get("RESULT")
        .or_else(|| value.get(service).and_then(|inner| inner.get("RESULT")))
        .ok_or_else(|| Failure::drift(format!("{service}: no RESULT block")))?;
    let field = |name: &str| {
        result
            .get(name)
            .or_else(|| result.get(format!("RESULT.{name}")))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let code = field("CODE");
    let message = field("MESSAGE");
    let failure = |class| Failure::new(class, format!("{service}: {code} {message}"));
    match code {
        "INFO-000" => Ok(Answer::Data(value)),
        "INFO-200" => Ok(Answer::NoData),
        "INFO-100" | "INFO-300" => Err(failure(ErrorClass::Auth)),
        "ERROR-337" => Err(failure(ErrorClass::Quota)),
        code if code.starts_with("ERROR-5") || code.starts_with("ERROR-6") => {
            Err(failure(ErrorClass::UpstreamError))
        }
        "" => Err(Failure::drift(format!("{service}: RESULT without a code"))),
        // ERROR-3xx: our request no longer matches the API (missing value, unknown service, bad range).
        _ => Err(failure(ErrorClass::SchemaDrift)),
    }
}

/// Parses JSON, recognising the answers that are not JSON at all.
pub fn parse_json(body: &[u8]) -> Result<Value, Failure> {
    let trimmed = body.trim_ascii_start();
    if trimmed.is_empty() {
        return Err(Failure::unexpected("empty body"));
    }
    if trimmed.starts_with(b"<") {
        return Err(gateway_xml(trimmed).unwrap_or_else(|| {
            Failure::unexpected(format!("markup where JSON was expected: {}", excerpt(trimmed)))
        }));
    }
    serde_json::from_slice(trimmed)
        .map_err(|error| Failure::unexpected(format!("not JSON ({error}): {}", excerpt(trimmed))))
}

/// The `data.go.kr` gateway's `<OpenAPI_ServiceResponse>` with a `returnReasonCode`.
pub fn gateway_xml(body: &[u8]) -> Option<Failure> {
    let text = String::from_utf8_lossy(body);
    if !text.contains("OpenAPI_ServiceResponse") && !text.contains("returnReasonCode") {
        return None;
    }
    let code = text
        .split("<returnReasonCode>")
        .nth(1)
        .and_then(|rest| rest.split("</returnReasonCode>").next())
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    let reason = text
        .split("<returnAuthMsg>")
        .nth(1)
        .and_then(|rest| rest.split("</returnAuthMsg>").next())
        .unwrap_or_default()
        .trim()
        .to_owned();
    let class = match code.as_str() {
        "22" => ErrorClass::Quota,
        "20" | "21" | "30" | "31" | "32" | "33" => ErrorClass::Auth,
        _ => ErrorClass::UpstreamError,
    };
    Some(Failure::new(class, format!("gateway code {code} {reason}").trim().to_owned()))
}

/// A block that arrives as a list, an object, or nested under its own name (`X.X`), as a list of objects.
pub fn block<'a>(parent: &'a Value, name: &str) -> Vec<&'a Value> {
    match parent.get(name) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(object @ Value::Object(map)) => match map.get(name) {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(inner @ Value::Object(_)) => vec![inner],
            _ => vec![object],
        },
        _ => Vec::new(),
    }
}

/// A number that may arrive as a JSON number or a string (`"34000"`, `"1260.0"`, `" 26.3 "`); blank is `None`.
pub fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => {
            let cleaned: String = text.trim().chars().filter(|c| *c != ',').collect();
            cleaned.parse().ok()
        }
        _ => None,
    }
}

/// A non-negative whole count from [`number`].
pub fn count(value: Option<&Value>) -> Option<u32> {
    number(value)
        .filter(|n| n.is_finite() && *n >= 0.0 && *n <= f64::from(u32::MAX))
        .map(|n| n.round() as u32)
}

/// A non-empty trimmed string.
pub fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(Value::as_str).map(str::trim).filter(|text| !text.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn result_code_key_quirks_and_no_data() {
        let citydata =
            br#"{"RESULT":{"RESULT.CODE":"INFO-000","RESULT.MESSAGE":"ok"},"CITYDATA":{}}"#;
        assert!(matches!(classify(citydata, "citydata"), Ok(Answer::Data(_))));
        let nested = br#"{"culturalEventInfo":{"RESULT":{"CODE":"INFO-000"},"row":[]}}"#;
        assert!(matches!(classify(nested, "culturalEventInfo"), Ok(Answer::Data(_))));
        let empty =
            r#"{"RESULT":{"CODE":"INFO-200","MESSAGE":"해당하는 데이터가 없습니다."}}"#.as_bytes();
        assert!(matches!(classify(empty, "citydata"), Ok(Answer::NoData)));
    }

    #[test]
    fn error_codes_are_classified() {
        let class = |code: &str| {
            let body = format!(r#"{{"RESULT":{{"CODE":"{code}","MESSAGE":"x"}}}}"#);
            classify(body.as_bytes(), "citydata").unwrap_err().class
        };
        assert_eq!(class("INFO-100"), ErrorClass::Auth);
        assert_eq!(class("ERROR-337"), ErrorClass::Quota);
        assert_eq!(class("ERROR-500"), ErrorClass::UpstreamError);
        assert_eq!(class("ERROR-336"), ErrorClass::SchemaDrift);
    }

    #[test]
    fn gateway_quota_xml_with_http_200_is_quota() {
        let xml = b"<OpenAPI_ServiceResponse><cmmMsgHeader><errMsg>SERVICE ERROR</errMsg><returnAuthMsg>LIMITED_NUMBER_OF_SERVICE_REQUESTS_EXCEEDS_ERROR</returnAuthMsg><returnReasonCode>22</returnReasonCode></cmmMsgHeader></OpenAPI_ServiceResponse>";
        let failure = parse_json(xml).unwrap_err();
        assert_eq!(failure.class, ErrorClass::Quota);
        assert!(failure.message.contains("LIMITED_NUMBER"), "{failure}");
    }

    #[test]
    fn html_and_garbage_are_unexpected_content() {
        assert_eq!(
            parse_json(b"<html><body>502 Bad Gateway</body></html>").unwrap_err().class,
            ErrorClass::UnexpectedContent
        );
        assert_eq!(parse_json(b"").unwrap_err().class, ErrorClass::UnexpectedContent);
        assert_eq!(
            parse_json(br#"{"RESULT": {"#).unwrap_err().class,
            ErrorClass::UnexpectedContent
        );
    }

    #[test]
    fn blocks_arrive_in_three_shapes() {
        let list = json!({"B": [{"x": 1}, {"x": 2}]});
        let object = json!({"B": {"x": 1}});
        let nested = json!({"B": {"B": [{"x": 1}]}});
        assert_eq!(block(&list, "B").len(), 2);
        assert_eq!(block(&object, "B"), vec![&json!({"x": 1})]);
        assert_eq!(block(&nested, "B"), vec![&json!({"x": 1})]);
        assert!(block(&json!({"B": null}), "B").is_empty());
    }

    #[test]
    fn numbers_arrive_as_strings_and_floats() {
        assert_eq!(count(Some(&json!("1260.0"))), Some(1260));
        assert_eq!(count(Some(&json!(" 34,000 "))), Some(34_000));
        assert_eq!(count(Some(&json!(""))), None);
        assert_eq!(count(Some(&json!(-3))), None);
        assert_eq!(number(Some(&json!("26.3"))), Some(26.3));
    }
}
