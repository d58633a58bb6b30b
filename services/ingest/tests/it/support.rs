//! A runner wired to its own database and a replay upstream.

use contracts::freshness::SourceId;
use std::time::Duration;

use contracts::Timestamp;
use ingest::{
    fetch::Fetcher,
    leadership::Lock,
    runner::{RunReport, Runner},
    sources::Upstreams,
    store::Peers,
};
use migrate::testing::TestDatabase;
use replay::World;
use settings::Secret;
use tokio_util::sync::CancellationToken;

/// Saturday 2026-06-13, 15:30 in Seoul: a busy weekend afternoon.
pub const AFTERNOON: &str = "2026-06-13T15:30";

pub fn kst(text: &str) -> Timestamp {
    contracts::seoul::instant(text.parse().unwrap()).unwrap()
}

pub struct Harness {
    pub runner: Runner,
    /// The collection leader lock, held for the test's runs (every run is fenced by it); `None` for a test
    /// that runs schedulers of its own.
    pub lock: Option<Lock>,
    pub world: World,
    pub database: TestDatabase,
    shutdown: CancellationToken,
}

impl Harness {
    /// A harness whose runs are the leader's.
    pub async fn start(peers: Peers) -> Harness {
        let mut harness = Harness::without_lock(peers).await;
        let lock =
            Lock::try_acquire(&harness.database.pool, Duration::from_secs(30)).await.unwrap();
        harness.lock = Some(lock.expect("a new database has no leader"));
        harness
    }

    /// A harness that leaves the leader lock to the schedulers a test starts.
    pub async fn without_lock(peers: Peers) -> Harness {
        let database = TestDatabase::create().await.unwrap();
        let world = World::at(AFTERNOON).unwrap();
        let shutdown = CancellationToken::new();
        let base = replay::spawn(world.clone(), shutdown.clone()).await.unwrap();
        let runner = Runner {
            pool: database.pool.clone(),
            fetcher: Fetcher::new(Duration::from_millis(800)).unwrap(),
            upstreams: Upstreams {
                parking_portal_url: base.parse().unwrap(),
                seoul_openapi_url: base.parse().unwrap(),
                seoul_openapi_key: Some(Secret::new("test-key")),
                kma_api_url: base.parse().unwrap(),
                kma_api_key: Some(Secret::new("test-key")),
                notices_url: Some(format!("{base}/notices").parse().unwrap()),
            },
            peers,
            clock: server::clock::Clock::System,
        };
        Harness { runner, lock: None, world, database, shutdown }
    }

    pub async fn run(&self, source: SourceId, kst_time: &str) -> RunReport {
        let leader = &self.lock.as_ref().expect("this harness leads").leadership;
        self.runner.run_once_at(source, kst(kst_time), leader).await.unwrap()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        let (count,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&self.database.pool)
            .await
            .unwrap();
        count
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        if let Some(lock) = self.lock {
            lock.release().await;
        }
        self.database.drop_now().await.unwrap();
    }
}
