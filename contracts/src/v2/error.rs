//! The one error envelope every non-2xx answer carries: `{"error": {"code", "message", "request_id", …}}`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{enums::open_enum, example::Example};

open_enum! {
    /// Machine-readable error class; the app switches on it, so it is open and clients keep a fallback.
    pub enum ErrorCode {
        /// A parameter or body field is malformed; `field` names it.
        BadRequest => "bad_request",
        /// Missing or wrong installation secret.
        Unauthorized => "unauthorized",
        /// Unknown park, lot or installation.
        NotFound => "not_found",
        /// The body is larger than allowed.
        PayloadTooLarge => "payload_too_large",
        /// Too many requests from this client.
        RateLimited => "rate_limited",
        /// A dependency is down and no fallback exists; retry later.
        Unavailable => "unavailable",
        /// A bug on our side; the request id finds it in the logs.
        Internal => "internal",
    }
}

/// Every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For people reading logs; the app shows its own localized text for `code`.
    pub message: String,
    /// Also sent as the `x-request-id` header.
    pub request_id: String,
    /// The request parameter or body field at fault (`lang`, `subscriptions[1].threshold`); `null` otherwise.
    pub field: Option<String>,
}

impl Example for ErrorEnvelope {
    fn example() -> Self {
        ErrorEnvelope {
            error: ErrorBody {
                code: ErrorCode::BadRequest,
                message: "lang: expected one of ko, en, ja, zh-Hans".into(),
                request_id: "01JXYZ4S7W2Q8K3M5N6P7R8T9V".into(),
                field: Some("lang".into()),
            },
        }
    }
}
