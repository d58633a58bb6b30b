//! `SubmitFacts` stores only what the reference data knows and what is within bounds: a request with one
//! unknown park or lot, a lot of another park, over-long text or a level that is none is refused whole with
//! `InvalidArgument` naming the field, and nothing of it is stored. The service is called directly, as its
//! gRPC server calls it once a caller is let through.

use contracts::proto::push::v1::{Fact, FactKind, SubmitFactsRequest, push_server::Push};
use migrate::testing::TestDatabase;
use tonic::{Code, Request};

use crate::lot_fact;

#[tokio::test]
async fn facts_the_reference_data_does_not_know_or_oversized_are_refused_whole() {
    let database = TestDatabase::create().await.unwrap();
    let service = push::grpc::PushService {
        pool: database.pool.clone(),
        index: None,
        metrics: push::metrics::Metrics::default(),
        clock: server::clock::Clock::System,
    };
    let submit =
        |facts: Vec<Fact>| service.submit_facts(Request::new(SubmitFactsRequest { facts }));
    let closed = |park_id: &str| Fact {
        kind: FactKind::ParkClosed as i32,
        park_id: park_id.into(),
        lot_id: None,
        previous_value: None,
        current_value: None,
        ..lot_fact(&format!("park-closed:op-1:{park_id}"), 0, 0, 10)
    };
    let mut long_title = Fact {
        kind: FactKind::EventCancelled as i32,
        lot_id: None,
        event_id: Some("ev-0123456789abcdef".into()),
        ..lot_fact("event-cancelled:ev-0123456789abcdef:1", 0, 0, 10)
    };
    long_title.attributes.insert("event_title_ko".into(), "가".repeat(301));
    let not_a_level = Fact {
        kind: FactKind::CongestionLevel as i32,
        lot_id: None,
        previous_level: Some("relaxed".into()),
        current_level: Some("<b>panic</b>".into()),
        ..lot_fact("congestion:yeouido:1", 0, 0, 10)
    };
    let cases = [
        (
            vec![lot_fact("lot:yeouido-2:1", 60, 40, 10), closed("atlantis")],
            "facts[1].park_id: unknown park `atlantis`",
        ),
        (
            vec![Fact { park_id: "banpo".into(), ..lot_fact("lot:yeouido-2:2", 60, 40, 10) }],
            "facts[0].lot_id: lot `yeouido-2` is in park `yeouido`, not `banpo`",
        ),
        (
            vec![Fact {
                lot_id: Some("yeouido-99".into()),
                ..lot_fact("lot:yeouido-99:1", 60, 40, 10)
            }],
            "facts[0].lot_id: unknown lot `yeouido-99`",
        ),
        (
            vec![closed("banpo"), long_title],
            "facts[1].attributes.event_title_ko: 301 characters, at most 300",
        ),
        (vec![not_a_level], "facts[0].current_level: not a congestion level"),
    ];
    for (facts, expected) in cases {
        let refused = submit(facts).await.unwrap_err();
        assert_eq!((refused.code(), refused.message()), (Code::InvalidArgument, expected));
    }
    let stored = || async {
        let (facts,): (i64,) = sqlx::query_as("select count(*) from push.fact")
            .fetch_one(&database.pool)
            .await
            .unwrap();
        facts
    };
    assert_eq!(
        stored().await,
        0,
        "nothing of a refused request is stored, not even its good facts"
    );

    // The same facts, corrected, are taken.
    let accepted = submit(vec![lot_fact("lot:yeouido-2:1", 60, 40, 10), closed("banpo")])
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.accepted, 2);
    assert_eq!(stored().await, 2);
    database.drop_now().await.unwrap();
}
