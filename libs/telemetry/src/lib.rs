//! Tracing setup shared by every service: an `EnvFilter`, pretty logs locally and JSON lines in production.
//!
//! OpenTelemetry export (OTLP over gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set) and W3C trace-context
//! propagation across tonic join here when the services start calling each other.

use settings::LogFormat;
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Keeps telemetry running; dropping it flushes what is buffered. `main` holds it until exit.
#[derive(Debug)]
#[must_use = "dropping the guard stops telemetry"]
pub struct Guard {
    _private: (),
}

/// Why telemetry could not start.
#[derive(Debug)]
pub struct InitError(String);

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InitError {}

/// Installs the global subscriber for `service`. `filter` uses `EnvFilter` syntax (`info,api=debug`).
pub fn init(service: &'static str, filter: &str, format: LogFormat) -> Result<Guard, InitError> {
    let filter = EnvFilter::try_new(filter)
        .map_err(|error| InitError(format!("RUST_LOG: invalid filter `{filter}`: {error}")))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = match format {
        LogFormat::Pretty => registry.with(fmt::layer().with_target(true)).try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().flatten_event(true).with_current_span(true))
            .try_init(),
    };
    result.map_err(|error| {
        InitError(format!("a tracing subscriber is already installed: {error}"))
    })?;
    tracing::info!(service, "telemetry started");
    Ok(Guard { _private: () })
}
