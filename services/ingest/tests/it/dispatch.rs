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
        metrics: ingest::metrics::Metrics::default(),
        pool: harness.database.pool.clone(),
        forecast: None,
        push: Some(contracts::proto::push::v1::push_client::PushClient::new(
            server::grpc_auth::authorized(
                dispatch::channel(&format!("http://{addr}")).unwrap(),
                None,
            ),
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

/// Queues `message` as a cycle would.
async fn enqueue(harness: &Harness, message: &ingest::outbox::Message) {
    let mut tx = harness.database.pool.begin().await.unwrap();
    ingest::outbox::enqueue(&mut tx, message).await.unwrap();
    tx.commit().await.unwrap();
}

fn closure(key: &str) -> ingest::outbox::Message {
    ingest::outbox::Message::Facts(contracts::fact::FactBatch {
        facts: vec![contracts::fact::Fact::new(
            key.into(),
            contracts::fact::FactKind::ParkClosed,
            "banpo".into(),
        )],
    })
}

/// A free loopback port (bound and released).
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A recording push peer serving on a free loopback port.
async fn recording_push()
-> (RecordingPush, SocketAddr, tokio::task::JoinHandle<Result<(), tonic::transport::Error>>) {
    let addr = free_addr();
    let push = RecordingPush::default();
    let server = tokio::spawn(
        tonic::transport::Server::builder().add_service(PushServer::new(push.clone())).serve(addr),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    (push, addr, server)
}

/// A forecast peer that accepts connections and never answers a byte.
async fn hung_forecast() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    addr
}

fn dispatcher(
    harness: &Harness,
    forecast: Option<SocketAddr>,
    push: SocketAddr,
) -> dispatch::Dispatcher {
    dispatch::Dispatcher {
        metrics: ingest::metrics::Metrics::default(),
        pool: harness.database.pool.clone(),
        forecast: forecast.map(|addr| {
            contracts::proto::forecast::v1::forecast_client::ForecastClient::new(
                server::grpc_auth::authorized(
                    dispatch::channel(&format!("http://{addr}")).unwrap(),
                    None,
                ),
            )
        }),
        push: Some(contracts::proto::push::v1::push_client::PushClient::new(
            server::grpc_auth::authorized(
                dispatch::channel(&format!("http://{push}")).unwrap(),
                None,
            ),
        )),
    }
}

#[tokio::test]
async fn a_hung_forecast_service_does_not_hold_back_push_facts() {
    let harness = Harness::start(Peers { forecast: true, push: true }).await;
    // Three refreshes queued before the facts: one at a time, each would wait out its 5 s deadline first.
    for cycle in 0..3 {
        let refresh = ingest::outbox::Message::Refresh(ingest::outbox::Refresh {
            lot_ids: vec!["yeouido-2".into()],
            park_ids: vec![],
            as_of: contracts::Timestamp::now(),
            cycle_id: cycle.to_string(),
        });
        enqueue(&harness, &refresh).await;
    }
    enqueue(&harness, &closure("park:banpo:closed:1")).await;
    let (push, push_addr, server) = recording_push().await;
    let dispatcher = dispatcher(&harness, Some(hung_forecast().await), push_addr);
    let round = tokio::spawn(async move { dispatcher.deliver_due().await });
    let mut arrived = false;
    for _ in 0..40 {
        if !push.0.lock().unwrap().is_empty() {
            arrived = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(arrived, "the push facts waited behind the hung forecast calls");
    assert!(
        !round.is_finished(),
        "the forecast calls are still hanging: push went first, not after them"
    );
    assert_eq!(round.await.unwrap().unwrap(), 1, "the refreshes time out and stay queued");
    assert_eq!(harness.count("select count(*) from ingest.outbox where destination = 'forecast' and delivered_at is null and attempts = 1").await, 3);
    server.abort();
    harness.stop().await;
}

#[tokio::test]
async fn a_closure_held_past_its_deadline_expires_instead_of_alerting_late() {
    let harness = Harness::start(Peers { forecast: false, push: true }).await;
    enqueue(&harness, &closure("park:banpo:closed:1")).await;
    let (deliver_by,): (f64,) = sqlx::query_as(
        "select extract(epoch from deliver_by - created_at)::float8 from ingest.outbox",
    )
    .fetch_one(&harness.database.pool)
    .await
    .unwrap();
    assert_eq!(deliver_by.round() as i64, 6 * 3600, "a closure stays news for six hours");
    // Push was down for longer than that.
    sqlx::query("update ingest.outbox set deliver_by = now() - interval '1 second'")
        .execute(&harness.database.pool)
        .await
        .unwrap();
    let (push, push_addr, server) = recording_push().await;
    let dispatcher = dispatcher(&harness, None, push_addr);
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0);
    assert!(push.0.lock().unwrap().is_empty(), "an expired closure is not delivered");
    assert_eq!(
        harness
            .count("select count(*) from ingest.outbox where expired_at is not null and delivered_at is null and next_attempt_at = 'infinity'")
            .await,
        1
    );
    assert!(
        dispatcher
            .metrics
            .encode()
            .contains("hangang_ingest_outbox_expired_total{destination=\"push\"} 1"),
        "{}",
        dispatcher.metrics.encode()
    );
    assert_eq!(dispatcher.deliver_due().await.unwrap(), 0, "and never picked again");

    // A week and a day later the row is pruned; a recent one is kept.
    enqueue(&harness, &closure("park:banpo:closed:2")).await;
    sqlx::query("update ingest.outbox set expired_at = now() - interval '8 days' where expired_at is not null")
        .execute(&harness.database.pool)
        .await
        .unwrap();
    assert_eq!(dispatcher.prune().await.unwrap(), 1);
    assert_eq!(harness.count("select count(*) from ingest.outbox").await, 1);
    server.abort();
    harness.stop().await;
}
