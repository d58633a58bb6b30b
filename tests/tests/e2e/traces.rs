//! One trace across services: an app request follows from the api into push over gRPC, and an ingest cycle
//! follows through its outbox into forecast and push and through push's outbox to the alert's send to APNs;
//! the api the forecast warms links to it (the api continues no caller's trace). Recorded by an in-memory
//! OpenTelemetry exporter.

use std::time::{Duration, Instant};

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tests::Sandbox;
use tracing_subscriber::{Layer, filter::LevelFilter, prelude::*};

use crate::app;

const TOKEN: &str = "7e57000000000000000000000000000000000000000000000000000000007ace";

/// A test that picks out one kind of span.
type SpanTest = fn(&SpanData) -> bool;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    let found = span.attributes.iter().find(|attribute| attribute.key.as_str() == key);
    found.map(|attribute| attribute.value.as_str().into_owned())
}

fn is_call(span: &SpanData, method: &str) -> bool {
    span.name == "grpc request"
        && attribute(span, "rpc.method").is_some_and(|path| path.ends_with(method))
}

fn is_request(span: &SpanData, route: &str) -> bool {
    span.name == "http request" && attribute(span, "http.route").as_deref() == Some(route)
}

/// Waits until a span satisfying `call` and one satisfying `origin` share a trace.
async fn wait_for_shared_trace(
    exporter: &InMemorySpanExporter,
    what: &str,
    called: &str,
    call: impl Fn(&SpanData) -> bool,
    origin: impl Fn(&SpanData) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = exporter.get_finished_spans()?;
        let calls = spans.iter().filter(|span| call(span));
        let shared = calls.into_iter().any(|call| {
            spans.iter().any(|span| {
                origin(span) && span.span_context.trace_id() == call.span_context.trace_id()
            })
        });
        if shared {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: no {called} in its trace");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until a span satisfying `linked` has its own trace and a link into the trace of one satisfying
/// `origin`.
async fn wait_for_linked_trace(
    exporter: &InMemorySpanExporter,
    what: &str,
    linked: impl Fn(&SpanData) -> bool,
    origin: impl Fn(&SpanData) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let spans = exporter.get_finished_spans()?;
        let found = spans.iter().filter(|span| linked(span)).any(|span| {
            spans.iter().filter(|other| origin(other)).any(|origin| {
                let trace = origin.span_context.trace_id();
                span.span_context.trace_id() != trace
                    && span.links.links.iter().any(|link| link.span_context.trace_id() == trace)
            })
        });
        if found {
            return Ok(());
        }
        anyhow::ensure!(Instant::now() < deadline, "{what}: no link into the origin's trace");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn one_trace_follows_a_request_and_an_ingest_cycle_across_services() -> anyhow::Result<()> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let otel = telemetry::otel_layer("sandbox", &provider).with_filter(LevelFilter::INFO);
    // The sandbox runs on this test's single-threaded runtime, so a thread-local subscriber sees every service.
    let _recording = tracing_subscriber::registry().with(otel).set_default();

    let sandbox = Sandbox::start().await?;
    sandbox.world.set_available("여의도2주차장", Some(410));
    app::wait_served(&sandbox, 410).await?;
    app::subscribe(&sandbox, TOKEN, true).await?;
    let upsert = |span: &SpanData| is_call(span, "/UpsertInstallation");
    let register = |span: &SpanData| is_request(span, "/v2/installations");
    wait_for_shared_trace(&exporter, "POST /v2/installations", "push's call", upsert, register)
        .await?;

    sandbox.world.set_available("여의도2주차장", Some(12));
    let parking_cycle = |span: &SpanData| {
        span.name == "collect" && attribute(span, "source").as_deref() == Some("parking_portal")
    };
    let calls: [(&str, SpanTest); 3] = [
        ("forecast's Refresh", |span| is_call(span, "/Refresh")),
        ("push's SubmitFacts", |span| is_call(span, "/SubmitFacts")),
        ("the alert's send to APNs", |span| span.name == "apns send"),
    ];
    for (called, call) in calls {
        wait_for_shared_trace(&exporter, "a parking cycle", called, call, parking_cycle).await?;
    }
    // The api is the edge: the warming request's trace context is linked, not continued (as a client's is).
    let warmed = |span: &SpanData| is_request(span, "/v2/home-summary");
    wait_for_linked_trace(&exporter, "the api's warmed home summary", warmed, parking_cycle)
        .await?;
    sandbox.stop().await
}
