//! The collection leader behind a path that goes silent (a dead node, a black-holed route: no FIN, no RST):
//! the follower takes over within two collection intervals, and the ex-leader's run in flight stores nothing.

use std::{sync::Arc, time::Duration};

use contracts::freshness::SourceId;
use ingest::{
    fetch::Fetcher,
    leadership::{LEADER_LOCK_KEY, Standing},
    runner::Runner,
    scheduler::{self, Schedule},
    sources::Upstreams,
    store::Peers,
};
use migrate::testing::TestDatabase;
use replay::{Endpoint, Fault, World};
use settings::Secret;
use sqlx::{PgPool, postgres::PgPoolOptions};
use tests::link::Link;
use tokio_util::sync::CancellationToken;

/// The production ratio of election interval to the parking interval (30 s to 2 min), sped up.
const SCALE: f64 = 1.0 / 30.0;
const ELECTION: Duration = Duration::from_secs(1);

fn parking_interval() -> Duration {
    ingest::sources::interval(SourceId::ParkingPortal).unwrap().mul_f64(SCALE)
}

fn runner(pool: PgPool, base: &str) -> Arc<Runner> {
    Arc::new(Runner {
        pool,
        fetcher: Fetcher::new(Duration::from_secs(2)).unwrap(),
        upstreams: Upstreams {
            parking_portal_url: base.parse().unwrap(),
            seoul_openapi_url: base.parse().unwrap(),
            seoul_openapi_key: Some(Secret::new("test-key")),
            kma_api_url: base.parse().unwrap(),
            kma_api_key: Some(Secret::new("test-key")),
            notices_url: None,
        },
        peers: Peers::default(),
        clock: server::clock::Clock::System,
    })
}

fn schedule() -> Schedule {
    Schedule {
        sources: vec![SourceId::ParkingPortal],
        election_interval: ELECTION,
        interval_scale: SCALE,
        standing: Standing::default(),
    }
}

/// The backend holding the leader lock in `pool`'s database.
async fn holder(pool: &PgPool) -> Option<i32> {
    sqlx::query_scalar(
        "select pid from pg_locks
         where locktype = 'advisory' and granted and objid = ($1::bigint & 4294967295)::oid
           and database = (select oid from pg_database where datname = current_database())",
    )
    .bind(LEADER_LOCK_KEY)
    .fetch_optional(pool)
    .await
    .unwrap()
}

async fn count(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(pool).await.unwrap()
}

async fn wait_for(what: &str, within: Duration, done: impl AsyncFnMut() -> bool) {
    wait_until(what, tokio::time::Instant::now() + within, done).await;
}

async fn wait_until(
    what: &str,
    deadline: tokio::time::Instant,
    mut done: impl AsyncFnMut() -> bool,
) {
    while !done().await {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test]
#[expect(clippy::print_stdout, reason = "the test reports how long the takeover took")]
async fn a_leader_behind_a_silent_path_is_replaced_and_its_run_in_flight_stores_nothing()
-> anyhow::Result<()> {
    let database = TestDatabase::create().await?;
    let shutdown = CancellationToken::new();
    let world = World::at("2026-06-13T15:30")?;
    let base = replay::spawn(world.clone(), shutdown.clone()).await?;
    // Replica A reaches PostgreSQL through a link the test silences; replica B directly.
    let link = Link::start(tests::postgres_address(&database.url).await?, shutdown.clone()).await?;
    let options: sqlx::postgres::PgConnectOptions = database.url.parse()?;
    let through_link = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(options.host("127.0.0.1").port(link.addr.port()));
    let (a_stop, b_stop) = (shutdown.child_token(), shutdown.child_token());
    let a = tokio::spawn(scheduler::run(runner(through_link, &base), schedule(), a_stop.clone()));
    wait_for("A to lead and collect", Duration::from_secs(10), async || {
        count(&database.pool, "select count(*) from ingest.ingestion_run where outcome = 'ok'")
            .await
            > 0
    })
    .await;
    let a_backend = holder(&database.pool).await.expect("A holds the lock");
    let b = tokio::spawn(scheduler::run(
        runner(database.pool.clone(), &base),
        schedule(),
        b_stop.clone(),
    ));

    // Slow answers keep a run in flight; A's next run is caught between fetching and storing.
    world.fail(Endpoint::ParkingPortal, Fault::Slow(Duration::from_millis(400)));
    wait_for("A to start a run", parking_interval() * 3, async || {
        count(&database.pool, "select count(*) from ingest.ingestion_run where finished_at is null")
            .await
            > 0
    })
    .await;
    let in_flight: i64 = sqlx::query_scalar(
        "select run_id from ingest.ingestion_run where finished_at is null order by run_id desc limit 1",
    )
    .fetch_one(&database.pool)
    .await?;
    link.silence();
    let silenced = tokio::time::Instant::now();
    // The answers A already waits for stay slow; the follower's are prompt.
    world.heal(Endpoint::ParkingPortal);

    // Takeover within two collection intervals of the silence, the follower's first collection included.
    let takeover = silenced + parking_interval() * 2;
    wait_until("B to take the lock", takeover, async || {
        holder(&database.pool).await.is_some_and(|pid| pid != a_backend)
    })
    .await;
    println!("B took the lock {:?} after A's path went silent", silenced.elapsed());
    let committed_by_b = format!(
        "select count(*) from ingest.ingestion_run where run_id > {in_flight} and outcome = 'ok'"
    );
    wait_until("B to collect", takeover, async || count(&database.pool, &committed_by_b).await > 0)
        .await;
    println!("B collected {:?} after A's path went silent", silenced.elapsed());

    // A's run in flight never stores (its observations, facts and outcome are one transaction).
    tokio::time::sleep(ELECTION * 2).await;
    let stored = format!("select count(*) from ingest.lot_observation where run_id = {in_flight}");
    assert_eq!(
        count(&database.pool, &stored).await,
        0,
        "the ex-leader's run in flight stored values"
    );
    let outcome: Option<String> =
        sqlx::query_scalar("select outcome from ingest.ingestion_run where run_id = $1")
            .bind(in_flight)
            .fetch_one(&database.pool)
            .await?;
    assert_eq!(outcome, None, "the ex-leader's run in flight has no outcome");
    // Only one replica stored each collection: no two committed runs overlap.
    let overlapping = count(
        &database.pool,
        "select count(*) from ingest.ingestion_run a join ingest.ingestion_run b
           on a.run_id < b.run_id and a.outcome is not null and b.outcome is not null
          and b.started_at < a.finished_at and a.started_at < b.finished_at",
    )
    .await;
    assert_eq!(overlapping, 0, "two leaders collected at once");

    a_stop.cancel();
    b_stop.cancel();
    let (a, b) = tokio::join!(a, b);
    a?;
    b?;
    shutdown.cancel();
    database.drop_now().await?;
    Ok(())
}
