//! The `db` crate against a real PostgreSQL: the reference sync and the rollout records, on throwaway
//! migrated databases (`migrate::testing`).

use contracts::Timestamp;
use db::{
    ops::{ProcessStart, record_process_start, rollouts, spawn_start_record},
    reference::{CURATED, Reference, sync},
};
use migrate::testing::TestDatabase;

#[tokio::test]
async fn sync_is_idempotent_and_removes_what_the_file_dropped() {
    // A test database is migrated and synced with the curated file on creation.
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool.clone();
    let reference = Reference::curated().unwrap();
    let again = sync(&pool, &reference).await.unwrap();
    assert!(!again.changed);

    let (parks, lots): (i64, i64) = sqlx::query_as(
        "select (select count(*) from reference.park), (select count(*) from reference.lot)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((parks, lots), (11, 30));

    let without_gangseo = {
        let mut text = String::new();
        let mut skipping = false;
        for block in CURATED.split("\n\n") {
            if block.starts_with("[[park]]") {
                skipping = block.contains("park_id = \"gangseo\"");
            }
            if !skipping {
                text.push_str(block);
                text.push_str("\n\n");
            }
        }
        Reference::parse(&text).unwrap()
    };
    let third = sync(&pool, &without_gangseo).await.unwrap();
    assert!(third.changed);
    let (parks,): (i64,) =
        sqlx::query_as("select count(*) from reference.park").fetch_one(&pool).await.unwrap();
    assert_eq!(parks, 10);
    database.drop_now().await.unwrap();
}

#[tokio::test]
async fn a_lot_with_history_is_not_silently_deleted() {
    let database = TestDatabase::create().await.unwrap();
    let pool = database.pool.clone();
    sqlx::query(
        "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity)
         values ('gangseo-1', now(), now(), 10, 99)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let text = CURATED.replace("lot_id = \"gangseo-1\"", "lot_id = \"gangseo-1-renamed\"");
    let error = sync(&pool, &Reference::parse(&text).unwrap()).await.unwrap_err();
    assert!(format!("{error:#}").contains("lot `gangseo-1`"), "{error:#}");
    database.drop_now().await.unwrap();
}

fn start(release_id: &str, started_at: i64) -> ProcessStart {
    ProcessStart {
        service: "api".to_owned(),
        release_id: release_id.to_owned(),
        source_commit: "c0ffee".to_owned(),
        environment: "production".to_owned(),
        host: "hangang-api-1".to_owned(),
        pid: 7,
        started_at: Timestamp::from_unix_seconds(started_at).unwrap(),
    }
}

#[tokio::test]
async fn records_older_than_the_retention_are_deleted_by_the_next_write() {
    let database = TestDatabase::create().await.unwrap();
    let now = Timestamp::now().as_unix_seconds();
    let day = 86_400;
    record_process_start(&database.pool, &start("old", now - 500 * day), 400).await.unwrap();
    record_process_start(&database.pool, &start("recent", now - 300 * day), 400).await.unwrap();
    let records = rollouts(&database.pool).await.unwrap();
    let kept: Vec<&str> =
        records.process_starts.iter().map(|start| start.release_id.as_str()).collect();
    assert_eq!(kept, ["recent"], "the 500-day-old start went with the second write");
    record_process_start(&database.pool, &start("new", now), 200).await.unwrap();
    let records = rollouts(&database.pool).await.unwrap();
    let kept: Vec<&str> =
        records.process_starts.iter().map(|start| start.release_id.as_str()).collect();
    assert_eq!(kept, ["new"], "a shorter retention applies at once");
    database.drop_now().await.unwrap();
}

#[tokio::test]
async fn a_start_record_that_cannot_be_written_reports_false_and_does_not_panic() {
    let database = TestDatabase::create().await.unwrap();
    sqlx::query("drop table ops.process_start").execute(&database.pool).await.unwrap();
    let written = spawn_start_record(database.pool.clone(), start("x", 0), 400).await.unwrap();
    assert!(!written);
    database.drop_now().await.unwrap();
}

#[tokio::test]
async fn every_connection_has_a_statement_timeout() {
    let database = TestDatabase::create().await.unwrap();
    let settings = db::DatabaseSettings {
        database_url: settings::DATABASE_URL.parse_url(&database.url).unwrap(),
        database_max_connections: 1,
        database_acquire_timeout_ms: 2_000,
        database_statement_timeout_ms: 200,
        database_password_file: None,
    };
    let pool = db::connect(&settings).unwrap();
    let (timeout,): (String,) = sqlx::query_as("select current_setting('statement_timeout')")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(timeout, "200ms");
    let error = sqlx::query("select pg_sleep(5)").execute(&pool).await.unwrap_err();
    let code =
        error.as_database_error().and_then(|error| error.code().map(|code| code.into_owned()));
    assert_eq!(code.as_deref(), Some("57014"), "query_canceled: {error}");
    pool.close().await;
    database.drop_now().await.unwrap();
}
