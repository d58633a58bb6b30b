//! Facts → candidates → decisions → outbox, in one transaction per submission.
//!
//! A fact is stored once, by its key: submitting it again is a no-op, so ingest's at-least-once delivery
//! never alerts twice. Every candidate whose preference the fact triggers gets a recorded decision;
//! `push_now` decisions get an outbox row with the alert, its collapse id and its expiry.

use std::collections::{BTreeMap, HashMap};

use contracts::{
    Timestamp,
    app_release::AppRelease,
    enums::{OpenEnum, WireEnum},
    fact::{Fact, FactKind},
    localization::{self, PushKey},
    v2::{CongestionLevel, Lang, SignalType, TargetKind, Weekday},
};
use serde_json::json;
use sqlx::{PgPool, Postgres, Transaction};

use crate::decide::{self, Decision, Preference};

/// How long an alert stays worth delivering; APNs drops it after that (`apns-expiration`).
pub const ALERT_LIFETIME_SECONDS: i64 = 30 * 60;

/// What a submission did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Submitted {
    pub accepted: u32,
    pub duplicates: u32,
    pub decisions: u32,
    pub queued: u32,
}

/// Stores the facts and decides for every candidate, as of `now`.
pub async fn submit(
    pool: &PgPool,
    index: Option<&crate::index::PreferenceIndex>,
    facts: &[Fact],
    now: Timestamp,
) -> sqlx::Result<Submitted> {
    // Candidates from the Redis index when it is usable, asked before the transaction holds any lock.
    let mut indexed = Vec::with_capacity(facts.len());
    for fact in facts {
        indexed.push(match index {
            Some(index) => index.candidates(&fact.park_id, fact.lot_id.as_deref()).await,
            None => None,
        });
    }
    let mut tx = pool.begin().await?;
    let mut result = Submitted::default();
    for (fact, indexed) in facts.iter().zip(indexed) {
        let body = serde_json::to_value(fact).expect("facts are plain data");
        let inserted = sqlx::query(
            "insert into push.fact (fact_key, kind, park_id, lot_id, observed_at, body)
             values ($1, $2, $3, $4, $5, $6) on conflict (fact_key) do nothing",
        )
        .bind(&fact.fact_key)
        .bind(fact.kind.as_str())
        .bind(&fact.park_id)
        .bind(&fact.lot_id)
        .bind(fact.observed_at.map(db::db_time))
        .bind(&body)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            result.duplicates += 1;
            continue;
        }
        result.accepted += 1;
        let (decisions, queued) = decide_for(&mut tx, fact, indexed, now).await?;
        result.decisions += decisions;
        result.queued += queued;
    }
    tx.commit().await?;
    Ok(result)
}

/// Preferences on the fact's park or lot; only of `indexed` installations when the index supplied them.
async fn candidates(
    tx: &mut Transaction<'_, Postgres>,
    fact: &Fact,
    indexed: Option<Vec<String>>,
) -> sqlx::Result<Vec<Preference>> {
    type Row = (
        String,
        i16,
        String,
        String,
        String,
        Option<i32>,
        Vec<String>,
        bool,
        bool,
        Option<i16>,
        Option<i16>,
        String,
        String,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select p.installation_id, p.position, p.target_kind, p.target_id, p.signal, p.threshold, p.weekdays,
                p.enabled, i.active, i.quiet_start_minute, i.quiet_end_minute, i.app_version, i.locale
         from push.preference p join push.installation i using (installation_id)
         where ((p.target_kind = 'park' and p.target_id = $1) or (p.target_kind = 'lot' and p.target_id = $2))
           and ($3::text[] is null or p.installation_id = any($3))",
    )
    .bind(&fact.park_id)
    .bind(&fact.lot_id)
    .bind(indexed)
    .fetch_all(&mut **tx)
    .await?;
    // The stored spellings become types here, once; a signal a newer release stored triggers nothing.
    Ok(rows
        .into_iter()
        .filter_map(
            |(
                installation_id,
                position,
                target_kind,
                target_id,
                signal,
                threshold,
                weekdays,
                enabled,
                active,
                start,
                end,
                app_version,
                locale,
            )| {
                Some(Preference {
                    installation_id,
                    position,
                    target_kind: TargetKind::from_wire(&target_kind)?,
                    target_id,
                    signal: SignalType::from_wire(&signal).unwrap_or(SignalType::UNKNOWN),
                    threshold: threshold.map(i64::from),
                    weekdays: weekdays.iter().filter_map(|day| Weekday::from_wire(day)).collect(),
                    enabled,
                    installation_active: active,
                    quiet_hours: start.zip(end).map(|(start, end)| (start as u16, end as u16)),
                    app_release: AppRelease::of_installation(&app_version).ok(),
                    lang: localization::lang_of_locale(&locale),
                })
            },
        )
        .collect())
}

async fn decide_for(
    tx: &mut Transaction<'_, Postgres>,
    fact: &Fact,
    indexed: Option<Vec<String>>,
    now: Timestamp,
) -> sqlx::Result<(u32, u32)> {
    let triggered: Vec<Preference> = candidates(tx, fact, indexed)
        .await?
        .into_iter()
        .filter(|preference| decide::triggers(fact, preference))
        .collect();
    if triggered.is_empty() {
        return Ok((0, 0));
    }
    let names = display_names(tx, fact).await?;

    // When each candidate was last alerted for the same target and signal (cool-down), in one query.
    let installation_ids: Vec<&str> =
        triggered.iter().map(|p| p.installation_id.as_str()).collect();
    // Keyed by the target the decision recorded (a preference edit renumbers positions); decisions of
    // releases that did not record it are matched by position. Only alerts within the cool-down count.
    let since = Timestamp::from_unix_seconds(now.as_unix_seconds() - decide::COOL_DOWN_SECONDS)
        .expect("in range");
    let recent: Vec<(String, String, String, time::OffsetDateTime)> = sqlx::query_as(
        "select d.installation_id, d.signal, coalesce(d.target_id, p.target_id) as target, max(d.decided_at)
         from push.decision d left join push.preference p
           on d.target_id is null and p.installation_id = d.installation_id and p.position = d.position
         where d.installation_id = any($1) and d.decision = 'push_now' and d.decided_at >= $2
           and coalesce(d.target_id, p.target_id) is not null
         group by 1, 2, 3",
    )
    .bind(&installation_ids)
    .bind(db::db_time(since))
    .fetch_all(&mut **tx)
    .await?;
    let last_alert: HashMap<(String, String, String), Timestamp> = recent
        .into_iter()
        .map(|(installation, signal, target, at)| {
            ((installation, signal, target), db::wire_time(at))
        })
        .collect();

    let decisions: Vec<Decision> = triggered
        .iter()
        .map(|preference| {
            let key = (
                preference.installation_id.clone(),
                preference.signal.as_str().to_owned(),
                preference.target_id.clone(),
            );
            decide::decide(fact, preference, now, last_alert.get(&key).copied())
        })
        .collect();

    // Decisions and outbox rows in two set-based statements, however many candidates there are.
    let ids: Vec<(i64, String, i16)> = sqlx::query_as(
        "insert into push.decision (fact_key, installation_id, position, signal, decision, reason, decided_at,
                                    target_kind, target_id)
         select $1, installation_id, position, signal, decision, reason, $7, target_kind, target_id
         from unnest($2::text[], $3::smallint[], $4::text[], $5::text[], $6::text[], $8::text[], $9::text[])
              as t(installation_id, position, signal, decision, reason, target_kind, target_id)
         returning decision_id, installation_id, position",
    )
    .bind(&fact.fact_key)
    .bind(&installation_ids)
    .bind(triggered.iter().map(|p| p.position).collect::<Vec<_>>())
    .bind(triggered.iter().map(|p| p.signal.as_str()).collect::<Vec<_>>())
    .bind(decisions.iter().map(|d| if *d == Decision::PushNow { "push_now" } else { "suppress" }).collect::<Vec<_>>())
    .bind(
        decisions
            .iter()
            .map(|d| match d {
                Decision::PushNow => None,
                Decision::Suppress(why) => Some(why.as_str()),
            })
            .collect::<Vec<_>>(),
    )
    .bind(db::db_time(now))
    .bind(triggered.iter().map(|p| p.target_kind.as_str()).collect::<Vec<_>>())
    .bind(triggered.iter().map(|p| p.target_id.as_str()).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    let decision_ids: HashMap<(String, i16), i64> = ids
        .into_iter()
        .map(|(decision_id, installation, position)| ((installation, position), decision_id))
        .collect();

    let expires_at = db::db_time(
        Timestamp::from_unix_seconds(now.as_unix_seconds() + ALERT_LIFETIME_SECONDS)
            .expect("in range"),
    );
    let (mut outbox_decisions, mut outbox_installations, mut collapse_ids, mut payloads) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (preference, decision) in triggered.iter().zip(&decisions) {
        if *decision != Decision::PushNow {
            continue;
        }
        let (collapse_id, payload) = alert(fact, preference, &names);
        outbox_decisions
            .push(decision_ids[&(preference.installation_id.clone(), preference.position)]);
        outbox_installations.push(preference.installation_id.as_str());
        collapse_ids.push(collapse_id);
        payloads.push(payload);
    }
    if !outbox_decisions.is_empty() {
        sqlx::query(
            "insert into push.outbox (decision_id, installation_id, collapse_id, payload, expires_at, traceparent)
             select decision_id, installation_id, collapse_id, payload, $5, $6
             from unnest($1::bigint[], $2::text[], $3::text[], $4::jsonb[])
                  as t(decision_id, installation_id, collapse_id, payload)",
        )
        .bind(&outbox_decisions)
        .bind(&outbox_installations)
        .bind(&collapse_ids)
        .bind(&payloads)
        .bind(expires_at)
        // The alert's send continues the trace of the facts that caused it.
        .bind(telemetry::current_traceparent())
        .execute(&mut **tx)
        .await?;
    }
    Ok((decisions.len() as u32, outbox_decisions.len() as u32))
}

/// Korean display names for the fact's park and lot (the app localizes the key; names are data).
async fn display_names(
    tx: &mut Transaction<'_, Postgres>,
    fact: &Fact,
) -> sqlx::Result<BTreeMap<&'static str, String>> {
    let mut names = BTreeMap::new();
    let park: Option<(String,)> =
        sqlx::query_as("select name_ko from reference.park where park_id = $1")
            .bind(&fact.park_id)
            .fetch_optional(&mut **tx)
            .await?;
    names.insert("park", park.map_or_else(|| fact.park_id.clone(), |(name,)| name));
    if let Some(lot_id) = &fact.lot_id {
        let lot: Option<(String,)> =
            sqlx::query_as("select name_ko from reference.lot where lot_id = $1")
                .bind(lot_id)
                .fetch_optional(&mut **tx)
                .await?;
        names.insert("lot", lot.map_or_else(|| lot_id.clone(), |(name,)| name));
    }
    Ok(names)
}

/// The APNs payload and collapse id of an alert. The collapse id is stable per target and signal, so a retried
/// or repeated alert replaces the one on screen instead of stacking.
pub fn alert(
    fact: &Fact,
    preference: &Preference,
    names: &BTreeMap<&'static str, String>,
) -> (String, serde_json::Value) {
    let park = names.get("park").cloned().unwrap_or_default();
    let lot = names.get("lot").cloned().unwrap_or_default();
    let event = || fact.event_title().or(fact.event_id.as_deref()).unwrap_or_default().to_owned();
    let (key, args): (PushKey, Vec<String>) = match preference.signal {
        SignalType::LotAvailableBelow => {
            (PushKey::LotAvailableBelow, vec![lot, fact.current_value.unwrap_or(0).to_string()])
        }
        SignalType::LotAvailableAbove => {
            (PushKey::LotAvailableAbove, vec![lot, fact.current_value.unwrap_or(0).to_string()])
        }
        SignalType::LotFull => (PushKey::LotFull, vec![lot]),
        SignalType::CongestionEased => {
            (PushKey::CongestionEased, vec![park, level_text(fact.current_level)])
        }
        SignalType::CongestionRose => {
            (PushKey::CongestionRose, vec![park, level_text(fact.current_level)])
        }
        SignalType::EventCancelled => (PushKey::EventCancelled, vec![park, event()]),
        SignalType::EventReinstated => (PushKey::EventReinstated, vec![park, event()]),
        // `triggers` never matches an unknown signal, so no alert is built for one.
        SignalType::ParkClosed | SignalType::Unknown => (PushKey::ParkClosed, vec![park]),
    };
    debug_assert_eq!(args.len(), key.arg_count());
    let deeplink = match &fact.lot_id {
        Some(lot_id) if fact.kind == FactKind::LotAvailability => {
            format!("hangangjari://parks/{}/lots/{lot_id}", fact.park_id)
        }
        _ => format!("hangangjari://parks/{}", fact.park_id),
    };
    let collapse_id = format!(
        "{}:{}:{}",
        preference.target_kind.as_str(),
        preference.target_id,
        preference.signal.as_str()
    );
    let payload = json!({
        "aps": {
            "alert": alert_text(key, &args, preference.app_release, preference.lang),
            "sound": "default",
            "thread-id": format!("park:{}", fact.park_id),
        },
        "park_id": fact.park_id,
        "lot_id": fact.lot_id,
        "deeplink": deeplink,
    });
    (collapse_id, payload)
}

/// `aps.alert`: the key for the app to localize when the installation's release has it, otherwise the
/// catalog's text rendered here in the installation's language (a build without the key would show it raw).
/// An installation whose version does not parse counts as one without the key.
pub fn alert_text(
    key: PushKey,
    args: &[String],
    release: Option<AppRelease>,
    lang: Lang,
) -> serde_json::Value {
    let has_key = localization::introduced_in(key.as_str())
        .zip(release)
        .is_some_and(|(introduced, release)| release >= introduced);
    match localization::render(key.as_str(), lang, args) {
        Some(body) if !has_key => json!({"body": body}),
        // The catalog is checked to hold every key the server emits, so rendering cannot fail for one.
        _ => json!({"loc-key": key.as_str(), "loc-args": args}),
    }
}

fn level_text(level: Option<CongestionLevel>) -> String {
    match level {
        Some(CongestionLevel::Relaxed) => "여유",
        Some(CongestionLevel::Normal) => "보통",
        Some(CongestionLevel::SlightlyCrowded) => "약간 붐빔",
        Some(CongestionLevel::Crowded) => "붐빔",
        None => "",
    }
    .to_owned()
}

/// Queues a test alert (`PUSH_TEST`) to one installation, recorded like any other: a fact, a decision, an
/// outbox row. Returns the outbox id.
pub async fn queue_test(pool: &PgPool, installation_id: &str, now: Timestamp) -> sqlx::Result<i64> {
    let mut tx = pool.begin().await?;
    let fact_key = format!("test:{installation_id}:{}", now.as_unix_seconds());
    sqlx::query(
        "insert into push.fact (fact_key, kind, park_id, body) values ($1, 'test', '', '{}') on conflict do nothing",
    )
    .bind(&fact_key)
    .execute(&mut *tx)
    .await?;
    let (decision_id,): (i64,) = sqlx::query_as(
        "insert into push.decision (fact_key, installation_id, position, signal, decision, decided_at)
         values ($1, $2, -1, 'test', 'push_now', $3)
         on conflict (fact_key, installation_id, position) do update set decided_at = excluded.decided_at
         returning decision_id",
    )
    .bind(&fact_key)
    .bind(installation_id)
    .bind(db::db_time(now))
    .fetch_one(&mut *tx)
    .await?;
    let (app_version, locale): (String, String) = sqlx::query_as(
        "select app_version, locale from push.installation where installation_id = $1",
    )
    .bind(installation_id)
    .fetch_one(&mut *tx)
    .await?;
    let alert = alert_text(
        PushKey::Test,
        &[],
        AppRelease::of_installation(&app_version).ok(),
        localization::lang_of_locale(&locale),
    );
    let payload = json!({"aps": {"alert": alert, "sound": "default"},
                         "deeplink": "hangangjari://settings/notifications"});
    let (outbox_id,): (i64,) = sqlx::query_as(
        "insert into push.outbox (decision_id, installation_id, collapse_id, payload, expires_at, traceparent)
         values ($1, $2, 'test', $3, $4, $5)
         on conflict (decision_id) do update set payload = excluded.payload, traceparent = excluded.traceparent
         returning outbox_id",
    )
    .bind(decision_id)
    .bind(installation_id)
    .bind(payload)
    .bind(db::db_time(
        Timestamp::from_unix_seconds(now.as_unix_seconds() + ALERT_LIFETIME_SECONDS)
            .expect("in range"),
    ))
    .bind(telemetry::current_traceparent())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(outbox_id)
}
