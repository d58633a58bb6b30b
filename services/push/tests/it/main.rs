//! The push service over real gRPC and PostgreSQL: installations and secrets, preferences, facts and every
//! decision they lead to; and the sender against a fake APNs over HTTP/2.

mod crash;
mod facts;
mod index;
mod sending;

use std::collections::HashMap;

use contracts::{
    Timestamp,
    proto::push::v1::{
        ApnsEnvironment, DeleteInstallationRequest, Fact, FactKind, QuietHours, SendTestRequest,
        SignalType, SubmitFactsRequest, Subscription, TargetKind, UpdatePreferencesRequest,
        UpsertInstallationRequest, push_client::PushClient,
    },
};
use migrate::testing::TestDatabase;
use server::grpc_auth::{AuthChannel, BearerToken};
use tokio_util::sync::CancellationToken;
use tonic::Code;

pub(crate) const TOKEN: &str = "5b0c2a4e9f1d3c7b8a6e0f2d4c6b8a0e1f3d5c7b9a1e3f5d7c9b1a3e5f7d9c1b";

/// A fake APNs trusting a new key of `KEY0000001` in `TEAM000001` for `app.hangangjari`: the key's PEM, the
/// fake, its URL and the token that stops it.
pub(crate) async fn fake_apns() -> (String, replay::apns::FakeApns, String, CancellationToken) {
    let pem = replay::apns::generate_key();
    let fake = replay::apns::FakeApns::new(
        &replay::apns::public_pem(&pem).unwrap(),
        "KEY0000001",
        "TEAM000001",
        "app.hangangjari",
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let url = replay::apns::spawn(fake.clone(), shutdown.clone()).await.unwrap();
    (pem, fake, url, shutdown)
}

pub(crate) struct Harness {
    /// Calls as the api does (installations and preferences).
    pub(crate) client: PushClient<AuthChannel>,
    /// Calls as ingest does (facts).
    pub(crate) ingest: PushClient<AuthChannel>,
    /// Calls as an operator does (test alerts).
    pub(crate) operator: PushClient<AuthChannel>,
    /// The server's gRPC address, for calls with other credentials.
    pub(crate) grpc: std::net::SocketAddr,
    pub(crate) database: TestDatabase,
    shutdown: CancellationToken,
}

impl Harness {
    pub(crate) async fn start() -> Harness {
        let database = TestDatabase::create().await.unwrap();
        let listeners = server::WorkerListeners::bind(
            "127.0.0.1:0".parse().unwrap(),
            "127.0.0.1:0".parse().unwrap(),
        )
        .await
        .unwrap();
        let grpc = listeners.grpc.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let redis_url =
            std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let (api, ingest, operator) =
            (BearerToken::generate(), BearerToken::generate(), BearerToken::generate());
        let config = push::Config {
            retention_days: 90,
            send_lease_seconds: push::sender::DEFAULT_LEASE.as_secs_f64(),
            grpc_addr: grpc,
            senders: 1,
            redis_url: Some(settings::REDIS_URL.parse_url(&redis_url).unwrap()),
            redis_key_prefix: format!("{}:", database.name),
            redis_password_file: None,
            apns: push::apns::ApnsSettings {
                apns_url: "http://127.0.0.1:1".into(),
                apns_sandbox_url: "http://127.0.0.1:1".into(),
                // No key: this harness decides and queues; the sender tests drive senders themselves.
                apns_key_path: None,
                apns_key_id: String::new(),
                apns_team_id: String::new(),
                apns_topic: "app.hangangjari".into(),
                apns_ca_file: None,
                apns_timeout_ms: 10_000,
            },
            database: db::DatabaseSettings {
                database_url: settings::DATABASE_URL.parse_url(&database.url).unwrap(),
                database_max_connections: 4,
                database_acquire_timeout_ms: 2_000,
                database_statement_timeout_ms: db::DEFAULT_STATEMENT_TIMEOUT_MS,
                database_password_file: None,
            },
            admin: settings::AdminSettings { admin_addr: "127.0.0.1:0".parse().unwrap() },
            grpc: server::GrpcServerAuth {
                grpc_callers: [("api", &api), ("ingest", &ingest), ("operator", &operator)]
                    .iter()
                    .map(|(name, token)| token.caller_entry(name).parse().unwrap())
                    .collect(),
                grpc_reflection: false,
            },
            common: settings::CommonSettings {
                release_id: "test".into(),
                log_filter: "warn".into(),
                ..Default::default()
            },
        };
        tokio::spawn(push::run(
            config,
            Default::default(),
            database.pool.clone(),
            listeners,
            shutdown.clone(),
        ));
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        let caller = |token: &BearerToken| {
            PushClient::new(server::grpc_auth::authorized(channel.clone(), Some(token)))
        };
        Harness {
            client: caller(&api),
            ingest: caller(&ingest),
            operator: caller(&operator),
            grpc,
            database,
            shutdown,
        }
    }

    pub(crate) async fn register(&mut self) -> (String, String) {
        self.register_as(TOKEN, "ko-KR", "2.3.0 (412)").await
    }

    /// Registers a device with its own token, locale and app build.
    pub(crate) async fn register_as(
        &mut self,
        apns_token: &str,
        locale: &str,
        app_version: &str,
    ) -> (String, String) {
        let response = self
            .client
            .upsert_installation(UpsertInstallationRequest {
                installation_id: None,
                secret: None,
                apns_token: apns_token.into(),
                apns_environment: ApnsEnvironment::Production as i32,
                locale: locale.into(),
                app_version: app_version.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(response.created);
        (response.installation.unwrap().installation_id, response.secret.unwrap())
    }

    async fn subscribe(
        &mut self,
        id: &str,
        secret: &str,
        subscriptions: Vec<Subscription>,
        quiet: Option<(&str, &str)>,
    ) {
        self.client
            .update_preferences(UpdatePreferencesRequest {
                installation_id: id.into(),
                secret: secret.into(),
                quiet_hours: quiet
                    .map(|(start, end)| QuietHours { start: start.into(), end: end.into() }),
                subscriptions,
            })
            .await
            .unwrap();
    }

    async fn decisions(&self) -> Vec<(String, String, Option<String>)> {
        sqlx::query_as("select fact_key, decision, reason from push.decision order by decision_id")
            .fetch_all(&self.database.pool)
            .await
            .unwrap()
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        self.database.drop_now().await.unwrap();
    }
}

pub(crate) fn below(threshold: u32) -> Subscription {
    Subscription {
        target_kind: TargetKind::Lot as i32,
        target_id: "yeouido-2".into(),
        signal: SignalType::LotAvailableBelow as i32,
        threshold: Some(threshold),
        weekdays: vec![],
        enabled: true,
    }
}

pub(crate) fn lot_fact(key: &str, before: i64, after: i64, age_seconds: i64) -> Fact {
    let observed = Timestamp::now().as_unix_seconds() - age_seconds;
    Fact {
        fact_key: key.into(),
        kind: FactKind::LotAvailability as i32,
        park_id: "yeouido".into(),
        lot_id: Some("yeouido-2".into()),
        observed_at: Some(prost_types::Timestamp { seconds: observed, nanos: 0 }),
        fetched_at: None,
        previous_value: Some(before),
        current_value: Some(after),
        previous_level: None,
        current_level: None,
        event_id: None,
        attributes: HashMap::new(),
    }
}

#[tokio::test]
async fn every_call_needs_a_known_callers_token_and_only_its_own_methods() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", harness.grpc))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let facts = || SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:1", 60, 40, 30)] };
    let delete =
        || DeleteInstallationRequest { installation_id: id.clone(), secret: secret.clone() };

    // No token, or a token the server does not know: unauthenticated.
    let mut anonymous = PushClient::new(channel.clone());
    assert_eq!(anonymous.submit_facts(facts()).await.unwrap_err().code(), Code::Unauthenticated);
    let stranger = BearerToken::generate();
    let mut stranger = PushClient::new(server::grpc_auth::authorized(channel, Some(&stranger)));
    assert_eq!(
        stranger.delete_installation(delete()).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // A known caller outside its methods: the api (or code running in it) cannot submit facts, ingest cannot
    // touch installations.
    let refused = harness.client.submit_facts(facts()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("`api`"), "{}", refused.message());
    let refused = harness.ingest.delete_installation(delete()).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied);
    let (facts_stored,): (i64,) = sqlx::query_as("select count(*) from push.fact")
        .fetch_one(&harness.database.pool)
        .await
        .unwrap();
    assert_eq!(facts_stored, 0, "no refused fact was stored");
    // Each caller's own methods work.
    harness.ingest.submit_facts(facts()).await.unwrap();
    harness.client.delete_installation(delete()).await.unwrap();
}

#[tokio::test]
async fn secrets_are_required_and_never_reveal_whether_an_installation_exists() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    let (stored,): (String,) = sqlx::query_as("select secret_hash from push.installation")
        .fetch_one(&harness.database.pool)
        .await
        .unwrap();
    assert_ne!(stored, secret, "only a hash is stored");

    let delete = |id: &str, secret: &str| DeleteInstallationRequest {
        installation_id: id.into(),
        secret: secret.into(),
    };
    let wrong = harness.client.delete_installation(delete(&id, "hjs_wrong")).await.unwrap_err();
    let unknown =
        harness.client.delete_installation(delete("feedface", &secret)).await.unwrap_err();
    assert_eq!((wrong.code(), wrong.message()), (unknown.code(), unknown.message()));
    assert_eq!(wrong.code(), Code::NotFound);

    let refresh_without_secret = harness
        .client
        .upsert_installation(UpsertInstallationRequest {
            installation_id: Some(id.clone()),
            secret: None,
            apns_token: TOKEN.into(),
            apns_environment: ApnsEnvironment::Sandbox as i32,
            locale: "en".into(),
            app_version: "2.4".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refresh_without_secret.code(), Code::Unauthenticated);

    harness.client.delete_installation(delete(&id, &secret)).await.unwrap();
    harness.stop().await;
}

#[tokio::test]
async fn bad_input_is_rejected_naming_the_field() {
    let mut harness = Harness::start().await;
    let bad_token = harness
        .client
        .upsert_installation(UpsertInstallationRequest {
            installation_id: None,
            secret: None,
            apns_token: "xyz".into(),
            apns_environment: ApnsEnvironment::Production as i32,
            locale: "ko".into(),
            app_version: "1.0".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(bad_token.code(), Code::InvalidArgument);
    assert!(bad_token.message().starts_with("apns_token:"), "{}", bad_token.message());

    let (id, secret) = harness.register().await;
    let too_high = harness
        .client
        .update_preferences(UpdatePreferencesRequest {
            installation_id: id,
            secret,
            quiet_hours: None,
            subscriptions: vec![below(90_000)],
        })
        .await
        .unwrap_err();
    assert_eq!(too_high.code(), Code::InvalidArgument);
    assert!(
        too_high.message().starts_with("subscriptions[0].threshold:"),
        "{}",
        too_high.message()
    );
    harness.stop().await;
}

#[tokio::test]
async fn facts_are_stored_once_and_every_candidate_gets_a_recorded_decision() {
    let mut harness = Harness::start().await;
    let (alerted, secret) = harness.register().await;
    harness.subscribe(&alerted, &secret, vec![below(50)], None).await;
    // A second installation that is asleep: quiet all day.
    let (sleeping, secret2) = harness.register().await;
    harness.subscribe(&sleeping, &secret2, vec![below(50)], Some(("00:00", "23:59"))).await;
    // A third that switched the alert off.
    let (switched_off, secret3) = harness.register().await;
    harness
        .subscribe(
            &switched_off,
            &secret3,
            vec![Subscription { enabled: false, ..below(50) }],
            None,
        )
        .await;

    let submit = |facts: Vec<Fact>| SubmitFactsRequest { facts };
    let response = harness
        .ingest
        .submit_facts(submit(vec![lot_fact("lot:yeouido-2:1", 60, 40, 30)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((response.accepted, response.duplicates, response.decisions), (1, 0, 3));

    let again = harness
        .ingest
        .submit_facts(submit(vec![lot_fact("lot:yeouido-2:1", 60, 40, 30)]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (again.accepted, again.duplicates, again.decisions),
        (0, 1, 0),
        "idempotent by fact key"
    );

    // Back above and below again a few minutes later: the first installation is cooling down; a stale one is
    // suppressed as such; a fact that crosses nothing is no candidate at all.
    harness
        .ingest
        .submit_facts(submit(vec![lot_fact("lot:yeouido-2:2", 40, 45, 20)]))
        .await
        .unwrap();
    harness
        .ingest
        .submit_facts(submit(vec![lot_fact("lot:yeouido-2:3", 70, 30, 30)]))
        .await
        .unwrap();
    harness
        .ingest
        .submit_facts(submit(vec![lot_fact("lot:yeouido-2:4", 80, 10, 3_600)]))
        .await
        .unwrap();

    let decisions: Vec<(String, Option<String>)> = harness
        .decisions()
        .await
        .into_iter()
        .map(|(key, decision, reason)| (format!("{key} {decision}"), reason))
        .collect();
    let reasons = |key: &str| -> Vec<Option<String>> {
        let mut found: Vec<Option<String>> = decisions
            .iter()
            .filter(|(d, _)| d.starts_with(&format!("{key} ")))
            .map(|(_, r)| r.clone())
            .collect();
        found.sort();
        found
    };
    let some = |reason: &str| Some(reason.to_owned());
    assert_eq!(reasons("lot:yeouido-2:1"), vec![None, some("preference_off"), some("quiet_hours")]);
    assert!(reasons("lot:yeouido-2:2").is_empty(), "40 → 45 crosses no threshold of 50");
    assert_eq!(
        reasons("lot:yeouido-2:3"),
        vec![some("cool_down"), some("preference_off"), some("quiet_hours")]
    );
    assert_eq!(
        reasons("lot:yeouido-2:4"),
        vec![some("preference_off"), some("quiet_hours"), some("source_stale")]
    );

    let outbox: Vec<(String, serde_json::Value)> =
        sqlx::query_as("select collapse_id, payload from push.outbox")
            .fetch_all(&harness.database.pool)
            .await
            .unwrap();
    assert_eq!(outbox.len(), 1, "one alert for one push_now decision");
    assert_eq!(outbox[0].0, "lot:yeouido-2:lot_available_below");
    let alert = &outbox[0].1["aps"]["alert"];
    assert_eq!(alert["loc-key"], "PUSH_LOT_AVAILABLE_BELOW");
    assert_eq!(alert["loc-args"], serde_json::json!(["여의도2주차장", "40"]));
    assert_eq!(outbox[0].1["aps"]["thread-id"], "park:yeouido");
    assert_eq!(outbox[0].1["deeplink"], "hangangjari://parks/yeouido/lots/yeouido-2");

    let test = harness
        .operator
        .send_test(SendTestRequest { installation_id: alerted.clone(), secret: secret.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(!test.outbox_id.is_empty());
    harness.stop().await;
}

#[tokio::test]
async fn the_cool_down_follows_the_target_through_a_preference_edit() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    harness
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:1", 60, 40, 10)] })
        .await
        .unwrap();
    // The app adds a park subscription in front: the lot's preference moves from position 0 to 1.
    let closure = Subscription {
        target_kind: TargetKind::Park as i32,
        target_id: "yeouido".into(),
        signal: SignalType::ParkClosed as i32,
        threshold: None,
        weekdays: vec![],
        enabled: true,
    };
    harness.subscribe(&id, &secret, vec![closure, below(50)], None).await;
    harness
        .ingest
        .submit_facts(SubmitFactsRequest { facts: vec![lot_fact("lot:yeouido-2:2", 55, 30, 10)] })
        .await
        .unwrap();
    let decisions = harness.decisions().await;
    let outcomes: Vec<(&str, &str, Option<&str>)> = decisions
        .iter()
        .map(|(key, decision, reason)| (key.as_str(), decision.as_str(), reason.as_deref()))
        .collect();
    assert_eq!(
        outcomes,
        [("lot:yeouido-2:1", "push_now", None), ("lot:yeouido-2:2", "suppress", Some("cool_down"))],
        "the second crossing is within the lot's cool-down, wherever its preference now sits"
    );
    harness.stop().await;
}

#[tokio::test]
async fn retention_prunes_old_decisions_and_facts_but_never_a_pending_alert() {
    let mut harness = Harness::start().await;
    let (id, secret) = harness.register().await;
    harness.subscribe(&id, &secret, vec![below(50)], None).await;
    let pool = harness.database.pool.clone();
    let execute = |sql: &'static str| {
        let pool = pool.clone();
        async move { sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&pool).await.unwrap() }
    };
    let submit = |key: &'static str, before: i64, after: i64| SubmitFactsRequest {
        facts: vec![lot_fact(key, before, after, 10)],
    };
    // Four months ago: an alert that was sent.
    harness.ingest.submit_facts(submit("f1", 60, 40)).await.unwrap();
    execute("update push.outbox set status = 'sent'").await;
    execute("update push.decision set decided_at = now() - interval '120 days'").await;
    // Another crossing, still pending (APNs unreachable since), and a recent one suppressed by its cool-down.
    for (key, before, after) in [("f2", 40, 60), ("f3", 60, 30), ("f4", 30, 60), ("f5", 60, 20)] {
        harness.ingest.submit_facts(submit(key, before, after)).await.unwrap();
    }
    execute(
        "update push.decision set decided_at = now() - interval '120 days' where fact_key = 'f3'",
    )
    .await;
    execute("update push.fact set received_at = now() - interval '120 days' where fact_key in ('f1', 'f2', 'f3')")
        .await;
    execute(
        "insert into push.fact (fact_key, kind, park_id, body, received_at)
         values ('old-undecided', 'lot_availability', 'yeouido', '{}', now() - interval '120 days')",
    )
    .await;

    let pruned = push::retention::prune(&pool, 90).await.unwrap();
    assert_eq!(pruned, push::retention::Pruned { decisions: 1, facts: 3 });
    let remaining: Vec<(String, String, Option<String>)> = harness.decisions().await;
    let remaining: Vec<(&str, &str, Option<&str>)> =
        remaining.iter().map(|(k, d, r)| (k.as_str(), d.as_str(), r.as_deref())).collect();
    assert_eq!(
        remaining,
        [("f3", "push_now", None), ("f5", "suppress", Some("cool_down"))],
        "the old sent alert goes; the old pending one and the recent one stay"
    );
    let outbox: Vec<(String,)> =
        sqlx::query_as("select status from push.outbox").fetch_all(&pool).await.unwrap();
    assert_eq!(outbox, [("pending".to_owned(),)]);
    let facts: Vec<(String,)> = sqlx::query_as("select fact_key from push.fact order by fact_key")
        .fetch_all(&pool)
        .await
        .unwrap();
    let facts: Vec<&str> = facts.iter().map(|(key,)| key.as_str()).collect();
    assert_eq!(facts, ["f3", "f4", "f5"], "old facts no decision names are gone");
    harness.stop().await;
}
