//! How a collection run ends. "The source has no data" and "we could not read the source" look alike from
//! outside and must never be stored alike: [`Outcome::NoData`] is a successful answer, [`Outcome::Failed`]
//! carries an [`ErrorClass`] that says what went wrong.

use std::fmt;

/// Why a collection failed. Stored in `ingest.ingestion_run.error_class` and shown by `/v2/status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// No connection could be made (DNS, refused, reset).
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// The TLS handshake failed (expired or untrusted certificate, protocol mismatch).
    Tls,
    /// The server answered with a non-success HTTP status.
    HttpStatus,
    /// The source answered but reported an error of its own (Seoul `ERROR-5xx`/`6xx`, KMA `01`-`04`).
    UpstreamError,
    /// Not the format asked for: an HTML error page where JSON was expected, an empty or truncated body.
    UnexpectedContent,
    /// The expected format, but not the expected shape: missing columns, renamed fields, unknown codes.
    SchemaDrift,
    /// The daily or per-second request quota is exhausted (also when reported as XML with HTTP 200).
    Quota,
    /// The API key was refused.
    Auth,
    /// Every item named a park or lot we do not know.
    Unmapped,
    /// The answer exceeded a size limit: its bytes, or (markup) its nesting depth or number of entries.
    TooLarge,
    /// The process collecting it stopped before the run ended (a kill, a lost node); recorded by the next
    /// leader, which found the run unfinished.
    Interrupted,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Tls => "tls",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::UpstreamError => "upstream_error",
            ErrorClass::UnexpectedContent => "unexpected_content",
            ErrorClass::SchemaDrift => "schema_drift",
            ErrorClass::Quota => "quota",
            ErrorClass::Auth => "auth",
            ErrorClass::Unmapped => "unmapped",
            ErrorClass::TooLarge => "too_large",
            ErrorClass::Interrupted => "interrupted",
        }
    }
}

/// A failed collection: its class and a message for operators (never containing API keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub class: ErrorClass,
    pub message: String,
}

impl Failure {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Failure {
        Failure { class, message: message.into() }
    }

    pub fn drift(message: impl Into<String>) -> Failure {
        Failure::new(ErrorClass::SchemaDrift, message)
    }

    pub fn unexpected(message: impl Into<String>) -> Failure {
        Failure::new(ErrorClass::UnexpectedContent, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class.as_str(), self.message)
    }
}

impl std::error::Error for Failure {}

/// How a run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Collected and stored `items` values.
    Ok { items: u32 },
    /// A source collected per park answered for some parks and failed for `failed_parts` others (`failure`
    /// is the first); what the others delivered (`items`) is stored.
    Partial { items: u32, failed_parts: u32, failure: Failure },
    /// The source answered that it has nothing (e.g. Seoul `INFO-200`). Not a failure.
    NoData,
    /// Could not collect (what was collected before the failure is still stored).
    Failed(Failure),
}

impl Outcome {
    /// The failure behind a failed or partial run.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Outcome::Failed(failure) | Outcome::Partial { failure, .. } => Some(failure),
            Outcome::Ok { .. } | Outcome::NoData => None,
        }
    }

    /// Values stored by the run.
    pub fn items(&self) -> u32 {
        match self {
            Outcome::Ok { items } | Outcome::Partial { items, .. } => *items,
            Outcome::NoData | Outcome::Failed(_) => 0,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok { .. } => "ok",
            Outcome::Partial { .. } => "partial",
            Outcome::NoData => "no_data",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// A short, single-line excerpt of an unexpected body for a failure message.
pub fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(120)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
