//! W3C trace context over gRPC: outgoing calls carry the caller's span, and incoming calls continue it, so one
//! trace follows a request from the api into push, and an ingest cycle into forecast and push.

/// Writes the current span's `traceparent` into an outgoing call's metadata.
pub fn propagate<T>(request: &mut tonic::Request<T>) {
    if let Some(value) = telemetry::current_traceparent().and_then(|value| value.parse().ok()) {
        request.metadata_mut().insert("traceparent", value);
    }
}

/// The span an incoming call runs in, a child of the caller's trace when it sent one. Health checks get
/// none: probes every few seconds would bury the traces worth reading.
pub fn incoming_span(request: &http::Request<()>) -> tracing::Span {
    let path = request.uri().path();
    if path.starts_with("/grpc.health.") {
        return tracing::Span::none();
    }
    let span = tracing::info_span!("grpc request", rpc.method = %path);
    telemetry::extract_parent(&span, request.headers());
    span
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_checks_are_not_traced() {
        let request =
            http::Request::builder().uri("/grpc.health.v1.Health/Check").body(()).unwrap();
        assert!(incoming_span(&request).is_none());
    }
}
