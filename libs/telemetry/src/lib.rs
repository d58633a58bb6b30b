//! Tracing setup shared by every service: an `EnvFilter`, pretty logs locally and JSON lines in production
//! (each carrying the service and its release, so logs can be cut at a release), and, when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, OpenTelemetry export over OTLP/gRPC with W3C trace-context
//! propagation, so one trace follows a request across services. The resource names the release
//! (`service.version`) and the environment (`deployment.environment`), so dashboards can overlay releases.
//!
//! [`extract_parent`] and [`inject_current`] move the trace context in and out of HTTP/gRPC headers between
//! our services; [`link_remote`] links the api's request spans to a client's trace instead of continuing it;
//! [`current_traceparent`] and [`set_parent_traceparent`] carry it through a stored row (an outbox), so work
//! done later by another task still belongs to the trace that queued it.

use opentelemetry::{
    Context, KeyValue,
    propagation::{Extractor, Injector, TextMapPropagator},
    trace::{TraceContextExt as _, TracerProvider as _},
};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use settings::{CommonSettings, LogFormat};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    fmt::{self, FmtContext, FormatEvent, FormatFields, MakeWriter, format::Writer},
    prelude::*,
    registry::LookupSpan,
};

/// Keeps telemetry running; dropping it flushes buffered spans. `main` holds it until exit.
#[must_use = "dropping the guard stops telemetry"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard").field("exporting", &self.provider.is_some()).finish()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            // The subscriber may already be gone at exit; stderr is the one channel certainly left.
            #[allow(clippy::print_stderr, reason = "last-resort report during shutdown")]
            {
                eprintln!("telemetry: flushing spans failed: {error}");
            }
        }
    }
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

/// The OpenTelemetry resource of `service`: its name, its release as `service.version`, and its environment
/// as `deployment.environment` (and the newer `deployment.environment.name`).
pub fn resource(service: &'static str, common: &CommonSettings) -> Resource {
    Resource::builder()
        .with_service_name(service)
        .with_attributes([
            KeyValue::new("service.version", common.release_id.clone()),
            KeyValue::new("deployment.environment", common.environment.clone()),
            KeyValue::new("deployment.environment.name", common.environment.clone()),
            KeyValue::new("vcs.ref.head.revision", common.source_commit.clone()),
        ])
        .build()
}

/// A tracer provider exporting to `exporter` in batches, with `resource`.
pub fn provider_with<E>(resource: Resource, exporter: E) -> SdkTracerProvider
where
    E: opentelemetry_sdk::trace::SpanExporter + 'static,
{
    SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build()
}

/// The layer that turns `tracing` spans into OpenTelemetry spans of `provider`.
pub fn otel_layer<S>(service: &'static str, provider: &SdkTracerProvider) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer(service))
}

/// Installs the global subscriber for `service` as configured by `common`: the `RUST_LOG` filter
/// (`info,api=debug`), the log format, and the release and environment on every JSON line and on the
/// OpenTelemetry resource. Exports spans over OTLP/gRPC when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter
/// reads the standard `OTEL_EXPORTER_OTLP_*` variables itself).
pub fn init(service: &'static str, common: &CommonSettings) -> Result<Guard, InitError> {
    let filter = &common.log_filter;
    let filter = EnvFilter::try_new(filter)
        .map_err(|error| InitError(format!("RUST_LOG: invalid filter `{filter}`: {error}")))?;
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());

    let provider = match std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()
                .map_err(|error| InitError(format!("OTEL_EXPORTER_OTLP_ENDPOINT: {error}")))?;
            Some(provider_with(resource(service, common), exporter))
        }
        _ => None,
    };
    let otel = provider.as_ref().map(|provider| otel_layer::<Registry>(service, provider));
    let logs = match common.log_format {
        LogFormat::Pretty => fmt::layer().with_target(true).boxed(),
        LogFormat::Json => json_layer(service, &common.release_id, std::io::stdout).boxed(),
    };
    tracing_subscriber::registry().with(otel).with(logs.with_filter(filter)).try_init().map_err(
        |error| InitError(format!("a tracing subscriber is already installed: {error}")),
    )?;
    tracing::info!(service, exporting = provider.is_some(), "telemetry started");
    Ok(Guard { provider })
}

/// JSON lines, one object per event, each starting with `"service"` and `"release_id"`, written to `writer`.
pub fn json_layer<S, W>(service: &str, release_id: &str, writer: W) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let quoted =
        |text: &str| serde_json::to_string(text).expect("a string always serializes as JSON");
    let prefix = format!(r#""service":{},"release_id":{},"#, quoted(service), quoted(release_id));
    fmt::layer()
        .fmt_fields(fmt::format::JsonFields::new())
        .event_format(WithIdentity {
            inner: fmt::format().json().flatten_event(true).with_current_span(true),
            prefix,
        })
        .with_writer(writer)
}

/// Formats an event as `inner` does (a JSON object) and puts the process's identity first in it.
struct WithIdentity<F> {
    inner: F,
    /// `"service":"…","release_id":"…",` ready to follow the object's opening brace.
    prefix: String,
}

impl<S, N, F> FormatEvent<S, N> for WithIdentity<F>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    N: for<'writer> FormatFields<'writer> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) if !rest.trim_start().starts_with('}') => {
                writer.write_char('{')?;
                writer.write_str(&self.prefix)?;
                writer.write_str(rest)
            }
            _ => writer.write_str(&line),
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

/// Makes `span` a child of the W3C `traceparent` in `headers`, if any (incoming HTTP or gRPC requests).
pub fn extract_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent: Context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let _ = span.set_parent(parent);
}

/// Links `span` to the W3C `traceparent` in `headers`, if any, without continuing it: for requests from
/// outside (the app), whose trace ids and sampling flags are the client's to choose. The span starts a trace
/// of this system's own, with its own sampling decision, and the client's trace stays one link away.
pub fn link_remote(span: &tracing::Span, headers: &http::HeaderMap) {
    // Most requests carry no trace context: skip the propagator's work for them.
    if !headers.contains_key("traceparent") {
        return;
    }
    let remote: Context = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    let remote = remote.span().span_context().clone();
    if remote.is_valid() {
        span.add_link(remote);
    }
}

/// Writes the current span's W3C trace context into `headers` (outgoing requests).
pub fn inject_current(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    TraceContextPropagator::new().inject_context(&context, &mut HeaderInjector(headers));
}

/// The current span's W3C `traceparent`, to store beside work queued for later; `None` when no trace is
/// being recorded.
pub fn current_traceparent() -> Option<String> {
    let mut headers = http::HeaderMap::new();
    inject_current(&mut headers);
    headers.get("traceparent").and_then(|value| value.to_str().ok()).map(str::to_owned)
}

/// Makes `span` a child of a stored `traceparent` (see [`current_traceparent`]).
pub fn set_parent_traceparent(span: &tracing::Span, traceparent: &str) {
    let mut headers = http::HeaderMap::new();
    if let Ok(value) = http::HeaderValue::from_str(traceparent) {
        headers.insert("traceparent", value);
    }
    extract_parent(span, &headers);
}

#[cfg(test)]
mod tests {
    use std::{
        io::Write,
        sync::{Arc, Mutex},
    };

    use opentelemetry_sdk::trace::InMemorySpanExporter;

    use super::*;

    /// A `MakeWriter` that collects everything written, for reading the log lines back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'writer> MakeWriter<'writer> for Captured {
        type Writer = Captured;
        fn make_writer(&'writer self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn every_json_line_names_the_service_and_its_release() {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(json_layer(
            "ingest",
            "2026.12.01.101500-0123456789ab",
            captured.clone(),
        ));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(source = "parking_portal", "collected");
            tracing::info_span!("run", run_id = 7).in_scope(|| tracing::warn!("slow \"page\""));
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> =
            text.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        for line in &lines {
            assert_eq!(line["service"], "ingest", "{line}");
            assert_eq!(line["release_id"], "2026.12.01.101500-0123456789ab", "{line}");
        }
        assert_eq!(lines[0]["source"], "parking_portal");
        assert_eq!(lines[1]["message"], "slow \"page\"");
        assert_eq!(lines[1]["span"]["run_id"], 7);
    }

    #[test]
    fn the_resource_names_the_release_and_the_environment() {
        let common = CommonSettings {
            release_id: "2026.12.01.101500-0123456789ab".to_owned(),
            environment: "staging".to_owned(),
            source_commit: "0123456789abcdef".to_owned(),
            ..CommonSettings::default()
        };
        let resource = resource("push", &common);
        let value = |key: &'static str| {
            resource.get(&opentelemetry::Key::new(key)).map(|value| value.to_string())
        };
        assert_eq!(value("service.name").as_deref(), Some("push"));
        assert_eq!(value("service.version").as_deref(), Some("2026.12.01.101500-0123456789ab"));
        assert_eq!(value("deployment.environment").as_deref(), Some("staging"));
        assert_eq!(value("deployment.environment.name").as_deref(), Some("staging"));
    }

    #[test]
    fn a_request_span_continues_the_callers_trace_and_is_exported() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let subscriber = tracing_subscriber::registry().with(otel_layer("test", &provider));

        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        let mut outgoing = http::HeaderMap::new();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("handle request");
            extract_parent(&span, &incoming);
            let _entered = span.enter();
            assert_eq!(
                span.context().span().span_context().trace_id().to_string(),
                "4bf92f3577b34da6a3ce929d0e0e4736"
            );
            inject_current(&mut outgoing);
        });
        provider.force_flush().unwrap();

        let spans = exporter.get_finished_spans().unwrap();
        assert_eq!(spans.len(), 1);
        assert_eq!(spans[0].name, "handle request");
        assert_eq!(
            spans[0].span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(spans[0].parent_span_id.to_string(), "00f067aa0ba902b7");
        let traceparent = outgoing["traceparent"].to_str().unwrap();
        assert!(traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"), "{traceparent}");
    }

    #[test]
    fn a_clients_traceparent_is_a_link_and_not_the_parent() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let subscriber = tracing_subscriber::registry().with(otel_layer("test", &provider));
        let mut incoming = http::HeaderMap::new();
        incoming.insert(
            "traceparent",
            http::HeaderValue::from_static(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("http request");
            link_remote(&span, &incoming);
            drop(span);
            // Garbage is no link at all.
            let mut garbage = http::HeaderMap::new();
            garbage.insert("traceparent", http::HeaderValue::from_static("00-zz-yy-01"));
            let span = tracing::info_span!("garbage");
            link_remote(&span, &garbage);
        });
        provider.force_flush().unwrap();
        let spans = exporter.get_finished_spans().unwrap();
        let request = spans.iter().find(|span| span.name == "http request").unwrap();
        assert_ne!(request.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(request.parent_span_id, opentelemetry::trace::SpanId::INVALID);
        let links = &request.links.links;
        assert_eq!(links.len(), 1);
        assert_eq!(
            links[0].span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(links[0].span_context.span_id().to_string(), "00f067aa0ba902b7");
        let garbage = spans.iter().find(|span| span.name == "garbage").unwrap();
        assert!(garbage.links.links.is_empty());
    }

    #[test]
    fn a_stored_traceparent_continues_the_trace_that_queued_the_work() {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
        let subscriber = tracing_subscriber::registry().with(otel_layer("test", &provider));

        tracing::subscriber::with_default(subscriber, || {
            let queued = tracing::info_span!("collect").in_scope(current_traceparent);
            let stored = queued.expect("a recorded span has a traceparent");
            let delivery = tracing::info_span!("deliver");
            set_parent_traceparent(&delivery, &stored);
            drop(delivery);
        });
        assert_eq!(current_traceparent(), None, "nothing is recorded without the layer");
        provider.force_flush().unwrap();

        let spans = exporter.get_finished_spans().unwrap();
        let [collect, deliver] = [&spans[0], &spans[1]];
        assert_eq!(collect.name, "collect");
        assert_eq!(deliver.name, "deliver");
        assert_eq!(deliver.span_context.trace_id(), collect.span_context.trace_id());
        assert_eq!(deliver.parent_span_id, collect.span_context.span_id());
    }
}
