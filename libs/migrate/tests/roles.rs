//! The services' roles on a real PostgreSQL: each can do its own work and nothing else; the api writes no
//! collected data. And connections can use TLS (`sslmode`).

use migrate::{roles, testing::TestDatabase};
use sqlx::{Connection as _, PgConnection, postgres::PgConnectOptions};

/// A connection to `database` as `role` (the local server trusts loopback, so no password is asked).
async fn connect_as(database: &TestDatabase, role: &str) -> PgConnection {
    let options: PgConnectOptions = database.url.parse().unwrap();
    PgConnection::connect_with(&options.username(role)).await.unwrap()
}

/// Whether `sql` ran, or the PostgreSQL error code it failed with.
async fn run(connection: &mut PgConnection, sql: &str) -> Result<(), String> {
    match sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(connection).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(error)) => Err(error.code().unwrap_or_default().into_owned()),
        Err(other) => panic!("{sql}: {other}"),
    }
}

fn denied(outcome: Result<(), String>) -> bool {
    outcome.is_err_and(|code| code == "42501")
}

#[tokio::test]
async fn each_service_role_does_its_own_work_and_nothing_else() {
    let database = TestDatabase::create().await.unwrap();
    roles::ensure(&database.pool, None).await.unwrap();

    let mut api = connect_as(&database, "hangang_api").await;
    assert_eq!(run(&mut api, "select count(*) from ingest.lot_observation").await, Ok(()));
    assert_eq!(run(&mut api, "select count(*) from forecast.lot_forecast").await, Ok(()));
    assert_eq!(run(&mut api, "select count(*) from reference.park").await, Ok(()));
    assert!(
        denied(run(&mut api, "delete from ingest.lot_observation").await),
        "the api reads only"
    );
    assert!(denied(run(&mut api, "update reference.park set park_id = park_id").await));
    assert!(denied(run(&mut api, "delete from forecast.lot_forecast").await));
    assert!(denied(run(&mut api, "select count(*) from push.installation").await), "no push data");
    assert!(denied(run(&mut api, "create table ops.mine (id int)").await), "no DDL");

    let mut ingest = connect_as(&database, "hangang_ingest").await;
    assert_eq!(run(&mut ingest, "delete from ingest.lot_observation").await, Ok(()));
    assert_eq!(run(&mut ingest, "update reference.park set park_id = park_id").await, Ok(()));
    assert!(denied(run(&mut ingest, "delete from forecast.lot_forecast").await));
    assert!(denied(run(&mut ingest, "delete from push.fact").await));

    let mut forecast = connect_as(&database, "hangang_forecast").await;
    assert_eq!(run(&mut forecast, "delete from forecast.lot_forecast").await, Ok(()));
    assert_eq!(run(&mut forecast, "select count(*) from ingest.lot_observation").await, Ok(()));
    assert!(denied(run(&mut forecast, "delete from ingest.lot_observation").await));

    let mut push = connect_as(&database, "hangang_push").await;
    assert_eq!(run(&mut push, "delete from push.fact").await, Ok(()));
    assert_eq!(run(&mut push, "select count(*) from reference.lot").await, Ok(()));
    assert!(denied(run(&mut push, "select count(*) from ingest.lot_observation").await));

    // Every role records and prunes its own process starts.
    for connection in [&mut api, &mut ingest, &mut forecast, &mut push] {
        assert_eq!(run(connection, "delete from ops.process_start where false").await, Ok(()));
    }
    database.drop_now().await.unwrap();
}

#[tokio::test]
async fn passwords_come_from_files_and_connections_can_use_tls() {
    let database = TestDatabase::create().await.unwrap();
    let dir = std::env::temp_dir().join(format!("{}-role-passwords", database.name));
    std::fs::create_dir_all(&dir).unwrap();
    for role in roles::ROLES {
        std::fs::write(dir.join(role.service), format!("{}-password-of-this-test\n", role.service))
            .unwrap();
    }
    roles::ensure(&database.pool, Some(&dir)).await.unwrap();
    let (with_password,): (i64,) = sqlx::query_as(
        "select count(*) from pg_authid where rolname like 'hangang\\_%' and rolpassword is not null",
    )
    .fetch_one(&database.pool)
    .await
    .unwrap();
    assert!(with_password >= 4, "{with_password}");
    // A short password is refused before anything is set.
    std::fs::write(dir.join("push"), "short").unwrap();
    let refused = roles::ensure(&database.pool, Some(&dir)).await.unwrap_err();
    assert!(format!("{refused:#}").contains("under 16 characters"), "{refused:#}");

    // TLS: the services' settings take libpq's sslmode; this server offers TLS (Debian's default).
    let settings = db::DatabaseSettings {
        database_url: settings::DATABASE_URL
            .parse_url(&format!("{}?sslmode=require", database.url))
            .unwrap(),
        database_max_connections: 1,
        database_acquire_timeout_ms: 5_000,
        database_statement_timeout_ms: db::DEFAULT_STATEMENT_TIMEOUT_MS,
        database_password_file: None,
    };
    let pool = db::connect(&settings).unwrap();
    let (encrypted,): (bool,) =
        sqlx::query_as("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(encrypted, "sslmode=require connected without TLS");
    pool.close().await;
    std::fs::remove_dir_all(&dir).unwrap();
    database.drop_now().await.unwrap();
}
