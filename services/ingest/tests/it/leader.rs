//! Only one replica collects; when it dies another takes over within one election interval; a replica that
//! lost the lock stores nothing, and `RunNow` runs only on the leader.

use contracts::freshness::SourceId;
use std::{sync::Arc, time::Duration};

use ingest::{
    leadership::{Leadership, Lock, LockSession, Standing},
    scheduler,
    store::{Peers, StoreError},
};
use tokio_util::sync::CancellationToken;

use crate::support::Harness;

const ELECTION: Duration = Duration::from_millis(150);

fn schedule() -> scheduler::Schedule {
    // Parking every ~120 ms.
    scheduler::Schedule {
        sources: vec![SourceId::ParkingPortal],
        election_interval: ELECTION,
        interval_scale: 0.001,
        standing: Default::default(),
    }
}

/// Backend pids holding the leader lock in this test's database (other tests run leaders elsewhere).
async fn holders(pool: &sqlx::PgPool) -> Vec<i32> {
    let rows: Vec<(i32,)> = sqlx::query_as(
        "select pid from pg_locks
         where locktype = 'advisory' and granted and objid = ($1::bigint & 4294967295)::oid
           and database = (select oid from pg_database where datname = current_database())",
    )
    .bind(ingest::leadership::LEADER_LOCK_KEY)
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(pid,)| pid).collect()
}

async fn runs(harness: &Harness) -> i64 {
    harness.count("select count(*) from ingest.ingestion_run").await
}

#[tokio::test]
async fn one_leader_collects_and_a_follower_takes_over() {
    let harness = Harness::without_lock(Peers::default()).await;
    let runner = Arc::new(harness.runner.clone());
    let first = CancellationToken::new();
    let first_task = tokio::spawn(scheduler::run(runner.clone(), schedule(), first.clone()));
    // Wait until the first replica leads and collects.
    for _ in 0..50 {
        if runs(&harness).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let leader = holders(&harness.database.pool).await;
    assert_eq!(leader.len(), 1, "one holder: {leader:?}");

    let second = CancellationToken::new();
    let second_task = tokio::spawn(scheduler::run(runner.clone(), schedule(), second.clone()));
    tokio::time::sleep(ELECTION * 3).await;
    assert_eq!(holders(&harness.database.pool).await, leader, "the follower did not take the lock");

    // The leader dies; within an election interval or two the follower leads and collects.
    first.cancel();
    first_task.await.unwrap();
    let before = runs(&harness).await;
    tokio::time::sleep(ELECTION * 4).await;
    let new_leader = holders(&harness.database.pool).await;
    assert_eq!(new_leader.len(), 1);
    assert_ne!(new_leader, leader);
    assert!(runs(&harness).await > before, "the new leader collects");

    second.cancel();
    second_task.await.unwrap();
    harness.stop().await;
}

#[tokio::test]
async fn a_new_leader_closes_the_runs_a_dead_process_left_unfinished() {
    let harness = Harness::without_lock(Peers::default()).await;
    let now = harness.runner.clock.now().as_unix_seconds();
    // One run of a process that died an hour ago, and one that may still be in flight.
    for started in [now - 3_600, now - 5] {
        sqlx::query("insert into ingest.ingestion_run (source, started_at) values ('parking_portal', to_timestamp($1))")
            .bind(started as f64)
            .execute(&harness.database.pool)
            .await
            .unwrap();
    }
    let runner = Arc::new(harness.runner.clone());
    let leading = CancellationToken::new();
    let task = tokio::spawn(scheduler::run(runner, schedule(), leading.clone()));
    let interrupted = "select count(*) from ingest.ingestion_run
                       where outcome = 'failed' and error_class = 'interrupted' and finished_at is not null";
    for _ in 0..50 {
        if harness.count(interrupted).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(harness.count(interrupted).await, 1, "the hour-old run is closed as interrupted");
    let recent = format!(
        "select count(*) from ingest.ingestion_run where finished_at is null and started_at = to_timestamp({})",
        now - 5
    );
    assert_eq!(harness.count(&recent).await, 1, "a run that may still be in flight is left alone");
    leading.cancel();
    task.await.unwrap();
    harness.stop().await;
}

#[tokio::test]
async fn a_run_whose_leader_lost_the_lock_stores_nothing_and_a_new_leader_stores() {
    let mut harness = Harness::start(Peers::default()).await;
    let lock = harness.lock.take().unwrap();
    let stale = lock.leadership.clone();
    // The server ends the lock session (a failover, an idle timeout) while the replica still thinks it leads.
    let pid = stale.session.pid;
    sqlx::query("select pg_terminate_backend($1)")
        .bind(pid)
        .execute(&harness.database.pool)
        .await
        .unwrap();
    for _ in 0..100 {
        if holders(&harness.database.pool).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let error = harness
        .runner
        .run_once_at(
            SourceId::ParkingPortal,
            crate::support::kst(crate::support::AFTERNOON),
            &stale,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error.downcast_ref::<StoreError>(), Some(StoreError::Fenced)),
        "fenced, not {error:#}"
    );
    assert_eq!(harness.count("select count(*) from ingest.lot_observation").await, 0);
    assert_eq!(harness.count("select count(*) from ingest.source_status").await, 0);
    assert_eq!(
        harness
            .count(
                "select count(*) from ingest.ingestion_run
                 where outcome is null and finished_at is not null and error_message like 'abandoned: fenced%'"
            )
            .await,
        1,
        "the fenced run is closed as abandoned"
    );
    drop(lock);

    // A pid reused by a later session does not pass for the old one: the fence checks the session's start.
    let fresh = Lock::try_acquire(&harness.database.pool, ELECTION).await.unwrap().unwrap();
    let impostor = Leadership {
        session: LockSession { pid: fresh.leadership.session.pid, ..stale.session },
        lost: CancellationToken::new(),
    };
    let error = harness
        .runner
        .run_once_at(
            SourceId::ParkingPortal,
            crate::support::kst(crate::support::AFTERNOON),
            &impostor,
        )
        .await
        .unwrap_err();
    assert!(matches!(error.downcast_ref::<StoreError>(), Some(StoreError::Fenced)));
    let report = harness
        .runner
        .run_once_at(
            SourceId::ParkingPortal,
            crate::support::kst(crate::support::AFTERNOON),
            &fresh.leadership,
        )
        .await
        .unwrap();
    assert!(report.outcome.items() > 0, "{:?}", report.outcome);
    assert!(harness.count("select count(*) from ingest.lot_observation").await > 0);
    harness.lock = Some(fresh);
    harness.stop().await;
}

#[tokio::test]
async fn run_now_on_a_follower_is_refused_and_runs_nothing() {
    use contracts::proto::ingest::v1::{RunNowRequest, ingest_server::Ingest as _};
    let harness = Harness::start(Peers::default()).await;
    // The harness holds the lock; this replica's standing says it follows.
    let service = ingest::grpc::IngestService {
        runner: Arc::new(harness.runner.clone()),
        standing: Standing::default(),
    };
    let status = service
        .run_now(tonic::Request::new(RunNowRequest { source: "parking_portal".into() }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert_eq!(runs(&harness).await, 0);
    harness.stop().await;
}
