//! The Redis preference index is what finds candidates while it is ready; PostgreSQL takes over when it is not,
//! and a rebuild brings back what the index missed.

use contracts::proto::push::v1::SubmitFactsRequest;
use push::index::PreferenceIndex;

use crate::{Harness, below, lot_fact};

fn index_for(harness: &Harness) -> PreferenceIndex {
    let redis_url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let settings = cache::RedisSettings {
        redis_url: settings::REDIS_URL.parse_url(&redis_url).unwrap(),
        redis_timeout_ms: 150,
        redis_key_prefix: format!("{}:", harness.database.name),
    };
    PreferenceIndex { cache: cache::Cache::connect(&settings).unwrap() }
}

async fn decisions(harness: &Harness) -> i64 {
    let (count,): (i64,) = sqlx::query_as("select count(*) from push.decision")
        .fetch_one(&harness.database.pool)
        .await
        .unwrap();
    count
}

#[tokio::test]
async fn candidates_come_from_the_index_while_it_is_ready() {
    let mut harness = Harness::start().await;
    let index = index_for(&harness);
    // The service rebuilds the index at start-up; wait until it is ready.
    for _ in 0..50 {
        if index.candidates("yeouido", None).await.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    assert_eq!(index.candidates("yeouido", Some("yeouido-2")).await, Some(vec![id.clone()]));

    // A preference written behind the index's back (as if its update had been lost) is not a candidate...
    let (other, other_secret) = harness.register().await;
    sqlx::query("insert into push.preference (installation_id, position, target_kind, target_id, signal, threshold) values ($1, 0, 'lot', 'yeouido-2', 'lot_available_below', 50)")
        .bind(&other)
        .execute(&harness.database.pool)
        .await
        .unwrap();
    let _ = other_secret;
    harness
        .client
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:1", 60, 40, 10)] })
        .await
        .unwrap();
    assert_eq!(decisions(&harness).await, 1, "only the indexed installation");

    // ...until a rebuild adds it.
    index.rebuild(&harness.database.pool).await.unwrap();
    harness
        .client
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:2", 40, 60, 10)] })
        .await
        .unwrap();
    harness
        .client
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:3", 60, 30, 10)] })
        .await
        .unwrap();
    assert_eq!(decisions(&harness).await, 3, "both installations decided for the third fact");
    harness.stop().await;
}
