//! gRPC reflection over a real connection: absent unless `GRPC_REFLECTION` turns it on (production leaves it
//! off), and then answered only to a caller the server knows.

use server::{
    GrpcServerAuth,
    grpc_auth::{BearerToken, Permissions, authorized},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{
    Code,
    codegen::tokio_stream,
    transport::{Channel, Endpoint},
};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};

/// No methods for anyone: only health and (when on) reflection are served.
const NOTHING: Permissions = &[];

/// A gRPC server with `reflection` on or off that knows the `operator` by `token`; its channel and the token
/// that stops it.
async fn start(reflection: bool, token: &BearerToken) -> (Channel, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = GrpcServerAuth {
        grpc_callers: vec![token.caller_entry("operator").parse().unwrap()],
        grpc_reflection: reflection,
    };
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone().cancelled_owned();
    tokio::spawn(async move {
        server::serve_grpc(listener, "test", &auth, NOTHING, |routes| routes, stop).await
    });
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    for _ in 0..50 {
        if let Ok(channel) = endpoint.connect().await {
            return (channel, shutdown);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the gRPC server did not start on {addr}");
}

/// Asks for the list of services; the answer's service names, or the refusal's code.
async fn list_services(
    channel: &Channel,
    token: Option<&BearerToken>,
) -> Result<Vec<String>, Code> {
    let mut client = ServerReflectionClient::new(authorized(channel.clone(), token));
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .map_err(|status| status.code())?
        .into_inner();
    let answer = answers.message().await.map_err(|status| status.code())?.expect("one answer");
    match answer.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|service| service.name).collect())
        }
        other => panic!("not a list of services: {other:?}"),
    }
}

#[tokio::test]
async fn reflection_is_absent_unless_enabled_and_then_only_for_known_callers() {
    let operator = BearerToken::generate();

    let (off, stop_off) = start(false, &operator).await;
    assert_eq!(list_services(&off, Some(&operator)).await, Err(Code::Unimplemented));
    stop_off.cancel();

    let (on, stop_on) = start(true, &operator).await;
    let services = list_services(&on, Some(&operator)).await.expect("a known caller is answered");
    assert!(services.iter().any(|name| name.starts_with("hangang.")), "{services:?}");
    assert_eq!(list_services(&on, None).await, Err(Code::Unauthenticated));
    let stranger = BearerToken::generate();
    assert_eq!(list_services(&on, Some(&stranger)).await, Err(Code::Unauthenticated));
    stop_on.cancel();
}
