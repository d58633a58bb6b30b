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
        redis_password_file: None,
    };
    PreferenceIndex { cache: cache::Cache::connect(&settings).unwrap() }
}

/// The service's index, once its start-up rebuild made it ready.
async fn ready_index(harness: &Harness) -> PreferenceIndex {
    let index = index_for(harness);
    for _ in 0..100 {
        if index.candidates("yeouido", None).await.is_some() {
            return index;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the preference index did not become ready");
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
    let index = ready_index(&harness).await;
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
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:1", 60, 40, 10)] })
        .await
        .unwrap();
    assert_eq!(decisions(&harness).await, 1, "only the indexed installation");

    // ...until a rebuild adds it.
    assert_eq!(index.rebuild(&harness.database.pool).await.unwrap(), (2, true));
    harness
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:2", 40, 60, 10)] })
        .await
        .unwrap();
    harness
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:3", 60, 30, 10)] })
        .await
        .unwrap();
    assert_eq!(decisions(&harness).await, 3, "both installations decided for the third fact");
    harness.stop().await;
}

#[tokio::test]
async fn an_evicted_set_is_not_read_as_nobody_subscribed() {
    let mut harness = Harness::start().await;
    let index = ready_index(&harness).await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    // Redis evicts the lot's set and the park's (allkeys-lru) while the index is ready.
    for (kind, target) in [("lot", "yeouido-2"), ("park", "yeouido")] {
        index.cache.delete(&index.target_key(kind, target)).await.unwrap();
    }
    assert_eq!(index.candidates("yeouido", Some("yeouido-2")).await, None, "unknown, not empty");
    harness
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:1", 60, 40, 10)] })
        .await
        .unwrap();
    assert_eq!(decisions(&harness).await, 1, "the alert is decided from PostgreSQL");
    let (queued,): (i64,) =
        sqlx::query_as("select count(*) from push.outbox where installation_id = $1")
            .bind(&id)
            .fetch_one(&harness.database.pool)
            .await
            .unwrap();
    assert_eq!(queued, 1, "and queued for sending");
    // A park with no subscriber has a set too (the sentinel's): nobody, known.
    assert_eq!(index.candidates("ttukseom", None).await, Some(Vec::new()));
    harness.stop().await;
}

#[tokio::test]
async fn a_rebuild_racing_a_failed_update_does_not_mark_the_index_ready() {
    let harness = Harness::start().await;
    let index = ready_index(&harness).await;
    let generation = index.begin_rebuild().await.unwrap();
    // An update fails after the rebuild read its generation: what the rebuild reads may lack it.
    index.invalidate().await;
    index.fill(&harness.database.pool).await.unwrap();
    assert!(!index.finish_rebuild(generation).await.unwrap(), "not ready");
    assert_eq!(
        index.candidates("yeouido", None).await,
        None,
        "PostgreSQL answers until a full rebuild"
    );
    assert!(index.rebuild(&harness.database.pool).await.unwrap().1, "ready again");
    assert!(index.candidates("yeouido", None).await.is_some());
    harness.stop().await;
}
