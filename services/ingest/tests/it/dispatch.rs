//! Facts queued while push is down are delivered, once, when it comes back — over real gRPC.

use contracts::freshness::SourceId;
use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use contracts::proto::push::v1::{
    DeleteInstallationRequest, DeleteInstallationResponse, Fact, SendTestRequest, SendTestResponse,
    SubmitFactsRequest, SubmitFactsResponse, UpdatePreferencesRequest, UpdatePreferencesResponse,
    UpsertInstallationRequest, UpsertInstallationResponse,
    push_server::{Push, PushServer},
};
use ingest::{dispatch, store::Peers};
use tonic::{Request, Response, Status};

use crate::support::{AFTERNOON, Harness};

/// A push peer that records the facts it receives.
#[derive(Clone, Default)]
struct RecordingPush(Arc<Mutex<Vec<Fact>>>);

#[tonic::async_trait]
impl Push for RecordingPush {
    async fn submit_facts(
        &self,
        request: Request<SubmitFactsRequest>,
    ) -> Result<Response<SubmitFactsResponse>, Status> {
        let facts = request.into_inner().facts;
        let accepted = facts.len() as u32;
        self.0.lock().unwrap().extend(facts);
        Ok(Response::new(SubmitFactsResponse { accepted, duplicates: 0, decisions: 0 }))
    }
    async fn upsert_installation(
        &self,
        _: Request<UpsertInstallationRequest>,
    ) -> Result<Response<UpsertInstallationResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn update_preferences(
        &self,
        _: Request<UpdatePreferencesRequest>,
    ) -> Result<Response<UpdatePreferencesResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn delete_installation(
        &self,
        _: Request<DeleteInstallationRequest>,
    ) -> Result<Response<DeleteInstallationResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
    async fn send_test(
        &self,
        _: Request<SendTestRequest>,
    ) -> Result<Response<SendTestResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

#[tokio::test]
async fn facts_wait_for_push_and_are_delivered_once() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    harness.run(SourceId::ParkingPortal, AFTERNOON).await;
    harness.world.set_available("여의도2주차장", Some(500));
    harness.run(SourceId::ParkingPortal, "2026-06-13T15:32").await;

    // Push is down: nothing listens on the port yet.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    let dispatcher = dispatch::Dispatcher {
        pool: harness.database.pool.clone(),
        forecast: None,
        push: Some(contracts::proto::push::v1::push_client::PushClient::new(
            dispatch::channel(&format!("http://{addr}")).unwrap(),
        )),
    };
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    assert_eq!(harness.count("select count(*) from ingest.outbox where delivered_at is null and attempts = 1 and last_error is not null").await, 1);

    // Push comes back; the retry is due after its backoff (1 s for the first retry).
    let push = RecordingPush::default();
    let server = tokio::spawn(
        tonic::transport::Server::builder().add_service(PushServer::new(push.clone())).serve(addr),
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let delivered = dispatcher.deliver_due().await.unwrap();
    let (error,): (Option<String>,) = sqlx::query_as("select last_error from ingest.outbox")
        .fetch_one(&harness.database.pool)
        .await
        .unwrap();
    assert_eq!(delivered, 1, "{error:?}");
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0, "delivered rows are not sent again");
    let received = push.0.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].lot_id.as_deref(), Some("yeouido-2"));
    assert_eq!(received[0].park_id, "yeouido");
    assert_eq!(received[0].current_value, Some(500));
    assert!(received[0].observed_at.is_some());
    server.abort();
    harness.stop().await;
}
