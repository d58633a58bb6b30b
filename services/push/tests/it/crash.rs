//! A real `hangang-push` process killed with SIGKILL in the middle of a large round against the APNs fake:
//! a restarted one delivers every alert, and the only alerts sent twice are those that were on the wire.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::Duration,
};

use migrate::testing::TestDatabase;
use push::sender::DEFAULT_IN_FLIGHT;

const ALERTS: i64 = 2_000;
const SENDERS: usize = 2;

/// Installations, each with one decided alert waiting in the outbox (as decisions leave them).
async fn seed(database: &TestDatabase) {
    let pool = &database.pool;
    let statements = [
        "insert into push.installation (installation_id, secret_hash, apns_token, apns_environment, locale, app_version)
         select 'crash-' || n, 'hash', lpad(to_hex(n), 64, 'a'), 'production', 'ko-KR', '2.4.0 (431)'
         from generate_series(1, $1) as n",
        "insert into push.fact (fact_key, kind, park_id, lot_id, body)
         values ('lot:yeouido-2:crash', 'lot_availability', 'yeouido', 'yeouido-2', '{}')",
        "insert into push.decision (fact_key, installation_id, position, signal, decision, decided_at)
         select 'lot:yeouido-2:crash', 'crash-' || n, 0, 'lot_available_below', 'push_now', now()
         from generate_series(1, $1) as n",
        "insert into push.outbox (decision_id, installation_id, collapse_id, payload, expires_at)
         select decision_id, installation_id, 'lot:yeouido-2:lot_available_below',
                '{\"aps\": {\"alert\": {\"title\": \"여의도2주차장\", \"body\": \"12\"}}}', now() + interval '1 hour'
         from push.decision",
    ];
    for statement in statements {
        let query = sqlx::query(statement);
        let query = if statement.contains("$1") { query.bind(ALERTS) } else { query };
        query.execute(pool).await.unwrap();
    }
}

/// `hangang-push` sending through the fake, its claims held for 3 s and its APNs requests bounded by 500 ms.
fn spawn_push(database: &TestDatabase, apns_url: &str, key_path: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hangang-push"))
        .env_clear()
        .env("DATABASE_URL", &database.url)
        .env("APNS_URL", apns_url)
        .env("APNS_SANDBOX_URL", apns_url)
        .env("APNS_KEY_PATH", key_path)
        .env("APNS_KEY_ID", "KEY0000001")
        .env("APNS_TEAM_ID", "TEAM000001")
        .env("APNS_TOPIC", "app.hangangjari")
        .env("APNS_TIMEOUT_MS", "500")
        .env("PUSH_SEND_LEASE_SECONDS", "3")
        .env("PUSH_SENDERS", SENDERS.to_string())
        .env("GRPC_ADDR", "127.0.0.1:0")
        .env("ADMIN_ADDR", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hangang-push starts")
}

async fn pending(database: &TestDatabase) -> i64 {
    sqlx::query_scalar("select count(*) from push.outbox where status <> 'sent'")
        .fetch_one(&database.pool)
        .await
        .unwrap()
}

#[tokio::test]
#[expect(clippy::print_stdout, reason = "the test reports the duplicates it saw")]
async fn a_sender_process_killed_mid_round_resends_at_most_what_was_in_flight() {
    let database = TestDatabase::create().await.unwrap();
    seed(&database).await;
    let (pem, fake, url, shutdown) = crate::fake_apns().await;
    // A loaded APNs: every alert is accepted at once and answered 40 ms later.
    fake.answer_after(Duration::from_millis(40));
    let key_path = std::env::temp_dir().join(format!("{}-apns.p8", database.name));
    std::fs::write(&key_path, &pem).unwrap();

    let mut first = spawn_push(&database, &url, &key_path);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while fake.deliveries().len() < 400 {
        assert!(tokio::time::Instant::now() < deadline, "the first process did not send");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    first.kill().unwrap(); // SIGKILL: no shutdown, no release, no last record
    first.wait().unwrap();
    let at_kill = fake.deliveries().len();
    assert!((at_kill as i64) < ALERTS, "killed mid-round, not after it: {at_kill}");

    let mut second = spawn_push(&database, &url, &key_path);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while pending(&database).await > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the restarted process did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.kill().unwrap();
    second.wait().unwrap();

    let mut per_alert: HashMap<String, u32> = HashMap::new();
    for delivery in fake.deliveries() {
        *per_alert.entry(delivery.apns_id).or_default() += 1;
    }
    assert_eq!(per_alert.len() as i64, ALERTS, "every alert reached APNs");
    let duplicates: u32 = per_alert.values().map(|sent| sent - 1).sum();
    let in_flight_limit = SENDERS * DEFAULT_IN_FLIGHT;
    println!(
        "{ALERTS} alerts, killed after {at_kill} deliveries: {duplicates} sent twice \
         (at most {in_flight_limit} in flight; the fake saw at most {} at once)",
        fake.max_in_flight()
    );
    assert!(
        duplicates as usize <= in_flight_limit,
        "{duplicates} duplicates: more than the {in_flight_limit} that can be in flight"
    );
    let (attempts,): (i64,) = sqlx::query_as("select count(*) from push.delivery_attempt")
        .fetch_one(&database.pool)
        .await
        .unwrap();
    assert_eq!(
        attempts, ALERTS,
        "one recorded attempt per alert: the killed process recorded none twice"
    );
    shutdown.cancel();
    let _ = std::fs::remove_file(&key_path);
    database.drop_now().await.unwrap();
}
