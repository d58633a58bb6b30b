//! Storing a collection: history appended in batches (`unnest`, not row by row), events and notices upserted,
//! drift recorded, the run and the source's status updated, outbox rows for forecast and push, and a
//! `NOTIFY` for the api, all in one transaction, so readers never see half a cycle and a crash loses nothing.

use std::collections::{BTreeMap, BTreeSet};

use contracts::{Timestamp, freshness::SourceId};
use serde_json::{Value, json};
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::{
    batch::Batch,
    kst,
    outcome::{Failure, Outcome},
};

/// The channel the api listens on (`api::DATA_CHANGED_CHANNEL`).
pub const DATA_CHANGED_CHANNEL: &str = "hangang_data_changed";

/// Which peers want notifications; rows are queued only for configured peers.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peers {
    pub forecast: bool,
    pub push: bool,
}

fn db_time(instant: Timestamp) -> OffsetDateTime {
    db::db_time(instant)
}

fn int(value: Option<u32>) -> Option<i32> {
    value.and_then(|value| i32::try_from(value).ok())
}

/// Opens a run; returns its id.
pub async fn start_run(
    pool: &PgPool,
    source: SourceId,
    started_at: Timestamp,
) -> sqlx::Result<i64> {
    let (run_id,): (i64,) = sqlx::query_as(
        "insert into ingest.ingestion_run (source, started_at) values ($1, $2) returning run_id",
    )
    .bind(source.as_str())
    .bind(db_time(started_at))
    .fetch_one(pool)
    .await?;
    Ok(run_id)
}

/// Stores what a run produced (or that it failed) and closes the run.
pub async fn finish_run(
    pool: &PgPool,
    source: SourceId,
    run_id: i64,
    now: Timestamp,
    result: Result<Batch, Failure>,
    peers: Peers,
) -> sqlx::Result<Outcome> {
    let mut tx = pool.begin().await?;
    let outcome = match result {
        Err(failure) => Outcome::Failed(failure),
        Ok(batch) => {
            let items = batch.items();
            let facts = write_batch(&mut tx, source, run_id, now, &batch).await?;
            if items > 0 {
                enqueue(&mut tx, run_id, now, &batch, facts, peers).await?;
                sqlx::query("select pg_notify($1, $2)")
                    .bind(DATA_CHANGED_CHANNEL)
                    .bind(source.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            match batch.partial_failure {
                Some(failure) => Outcome::Failed(failure),
                None if items == 0 && batch.no_data => Outcome::NoData,
                None => Outcome::Ok { items },
            }
        }
    };
    let (class, message, items) = match &outcome {
        Outcome::Failed(failure) => {
            (Some(failure.class.as_str()), Some(failure.message.as_str()), 0)
        }
        Outcome::Ok { items } => (None, None, *items as i32),
        Outcome::NoData => (None, None, 0),
    };
    sqlx::query(
        "update ingest.ingestion_run
         set finished_at = $2, outcome = $3, error_class = $4, error_message = $5, items = $6
         where run_id = $1",
    )
    .bind(run_id)
    // Tests pin `now` in the past; the run still finished at the real current time.
    .bind(db_time(Timestamp::now().max(now)))
    .bind(outcome.as_str())
    .bind(class)
    .bind(message)
    .bind(items)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome,
                                           consecutive_failures, last_error_class, last_error_message)
         values ($1, $2, case when $3 <> 'failed' then $2 end, $3, case when $3 = 'failed' then 1 else 0 end, $4, $5)
         on conflict (source) do update set
            last_attempt_at = excluded.last_attempt_at,
            last_success_at = coalesce(excluded.last_success_at, ingest.source_status.last_success_at),
            last_outcome = excluded.last_outcome,
            consecutive_failures = case when excluded.last_outcome = 'failed'
                                        then ingest.source_status.consecutive_failures + 1 else 0 end,
            last_error_class = excluded.last_error_class,
            last_error_message = excluded.last_error_message,
            updated_at = now()",
    )
    .bind(source.as_str())
    .bind(db_time(now))
    .bind(outcome.as_str())
    .bind(class)
    .bind(message)
    .execute(&mut *tx)
    .await?;
    if matches!(outcome, Outcome::Failed(_)) {
        // The api shows the source as failing from now on.
        sqlx::query("select pg_notify($1, $2)")
            .bind(DATA_CHANGED_CHANNEL)
            .bind(source.as_str())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(outcome)
}

/// Appends history and upserts events and notices; returns the facts the changes imply.
async fn write_batch(
    tx: &mut Transaction<'_, Postgres>,
    source: SourceId,
    run_id: i64,
    now: Timestamp,
    batch: &Batch,
) -> sqlx::Result<Vec<Value>> {
    let mut facts = Vec::new();
    let fetched = db_time(now);

    if !batch.lots.is_empty() {
        let lot_ids: Vec<&str> = batch.lots.iter().map(|lot| lot.lot_id.as_str()).collect();
        let previous: Vec<(String, Option<i32>, String, String)> = sqlx::query_as(
            "select distinct on (o.lot_id) o.lot_id, o.available, l.name_ko, l.park_id
             from ingest.lot_observation o join reference.lot l using (lot_id)
             where o.lot_id = any($1)
             order by o.lot_id, o.observed_at desc",
        )
        .bind(&lot_ids)
        .fetch_all(&mut **tx)
        .await?;
        let previous: BTreeMap<String, (Option<i32>, String, String)> = previous
            .into_iter()
            .map(|(lot_id, available, name, park_id)| (lot_id, (available, name, park_id)))
            .collect();
        // Only observations actually stored may become facts: a second run within the same second (a new
        // leader right after a failover) finds its rows already there and must not report a change the
        // history does not show; the next run reports it once.
        let stored: Vec<(String,)> = sqlx::query_as(
            "insert into ingest.lot_observation (lot_id, observed_at, fetched_at, available, capacity, not_linked, run_id)
             select lot_id, observed_at, $3, available, capacity, not_linked, $7
             from unnest($1::text[], $2::timestamptz[], $4::int[], $5::int[], $6::bool[])
                  as t(lot_id, observed_at, available, capacity, not_linked)
             on conflict (lot_id, observed_at) do nothing
             returning lot_id",
        )
        .bind(&lot_ids)
        .bind(batch.lots.iter().map(|lot| db_time(lot.observed_at)).collect::<Vec<_>>())
        .bind(fetched)
        .bind(batch.lots.iter().map(|lot| int(lot.available)).collect::<Vec<_>>())
        .bind(batch.lots.iter().map(|lot| int(lot.capacity)).collect::<Vec<_>>())
        .bind(batch.lots.iter().map(|lot| lot.not_linked).collect::<Vec<_>>())
        .bind(run_id)
        .fetch_all(&mut **tx)
        .await?;
        let stored: std::collections::BTreeSet<String> =
            stored.into_iter().map(|(lot_id,)| lot_id).collect();
        for lot in batch.lots.iter().filter(|lot| stored.contains(&lot.lot_id)) {
            let (Some((Some(before), name, park_id)), Some(now_available)) =
                (previous.get(&lot.lot_id), int(lot.available))
            else {
                continue;
            };
            if *before != now_available {
                facts.push(json!({
                    "fact_key": format!("lot:{}:{}", lot.lot_id, lot.observed_at.as_unix_seconds()),
                    "kind": "lot_availability",
                    "park_id": park_id,
                    "lot_id": lot.lot_id,
                    "observed_at": lot.observed_at,
                    "fetched_at": now,
                    "previous_value": before,
                    "current_value": now_available,
                    "attributes": {"lot_name_ko": name, "capacity": lot.capacity},
                }));
            }
        }
    }

    if !batch.congestion.is_empty() {
        let park_ids: Vec<&str> = batch.congestion.iter().map(|row| row.park_id.as_str()).collect();
        let previous: Vec<(String, String)> = sqlx::query_as(
            "select distinct on (park_id) park_id, level from ingest.congestion_observation
             where park_id = any($1) order by park_id, observed_at desc",
        )
        .bind(&park_ids)
        .fetch_all(&mut **tx)
        .await?;
        let previous: BTreeMap<String, String> = previous.into_iter().collect();
        sqlx::query(
            "insert into ingest.congestion_observation
                (park_id, observed_at, fetched_at, level, message_ko, population_min, population_max, run_id)
             select park_id, observed_at, $3, level, message_ko, population_min, population_max, $8
             from unnest($1::text[], $2::timestamptz[], $4::text[], $5::text[], $6::int[], $7::int[])
                  as t(park_id, observed_at, level, message_ko, population_min, population_max)
             on conflict (park_id, observed_at) do nothing",
        )
        .bind(&park_ids)
        .bind(batch.congestion.iter().map(|row| db_time(row.observed_at)).collect::<Vec<_>>())
        .bind(fetched)
        .bind(batch.congestion.iter().map(|row| row.level.as_str()).collect::<Vec<_>>())
        .bind(batch.congestion.iter().map(|row| row.message_ko.clone()).collect::<Vec<_>>())
        .bind(batch.congestion.iter().map(|row| int(row.population_min)).collect::<Vec<_>>())
        .bind(batch.congestion.iter().map(|row| int(row.population_max)).collect::<Vec<_>>())
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
        for row in &batch.congestion {
            if let Some(before) = previous.get(&row.park_id)
                && before != row.level.as_str()
            {
                facts.push(json!({
                    "fact_key": format!("congestion:{}:{}", row.park_id, row.observed_at.as_unix_seconds()),
                    "kind": "congestion_level",
                    "park_id": row.park_id,
                    "observed_at": row.observed_at,
                    "fetched_at": now,
                    "previous_level": before,
                    "current_level": row.level.as_str(),
                }));
            }
        }
    }

    if !batch.official_forecast.is_empty() {
        let rows = &batch.official_forecast;
        sqlx::query(
            "insert into ingest.congestion_forecast_official
                (park_id, issued_at, target_at, level, population_min, population_max)
             select * from unnest($1::text[], $2::timestamptz[], $3::timestamptz[], $4::text[], $5::int[], $6::int[])
             on conflict do nothing",
        )
        .bind(rows.iter().map(|row| row.park_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| db_time(row.issued_at)).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| db_time(row.target_at)).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.level.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| int(row.population_min)).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| int(row.population_max)).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }

    if !batch.weather.is_empty() {
        let rows = &batch.weather;
        sqlx::query(
            "insert into ingest.weather_observation (park_id, observed_at, fetched_at, source, temperature_c,
                 precipitation, sky, rain_chance_percent, pm10, pm25, run_id)
             select park_id, observed_at, $3, source, temperature_c, precipitation, sky, rain_chance, pm10, pm25, $11
             from unnest($1::text[], $2::timestamptz[], $4::text[], $5::float8[], $6::text[], $7::text[],
                         $8::smallint[], $9::int[], $10::int[])
                  as t(park_id, observed_at, source, temperature_c, precipitation, sky, rain_chance, pm10, pm25)
             on conflict (park_id, observed_at) do nothing",
        )
        .bind(rows.iter().map(|row| row.park_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| db_time(row.observed_at)).collect::<Vec<_>>())
        .bind(fetched)
        .bind(rows.iter().map(|row| row.source.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.temperature_c).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.precipitation).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.sky).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.rain_chance_percent.map(i16::from)).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| int(row.pm10)).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| int(row.pm25)).collect::<Vec<_>>())
        .bind(run_id)
        .execute(&mut **tx)
        .await?;
    }

    if let Some(set) = &batch.events {
        write_events(tx, set, now, &mut facts).await?;
    }
    if !batch.notices.is_empty() {
        write_notices(tx, batch, now, &mut facts).await?;
    }
    if !batch.unmapped.is_empty() {
        let names: BTreeSet<&str> = batch.unmapped.iter().map(String::as_str).collect();
        tracing::warn!(source = source.as_str(), names = ?names, "names no curated lot or park lists");
        sqlx::query(
            "insert into ingest.unmapped_name (source, name, first_seen_at, last_seen_at)
             select $1, name, $2, $2 from unnest($3::text[]) name
             on conflict (source, name) do update
             set last_seen_at = excluded.last_seen_at, times_seen = ingest.unmapped_name.times_seen + 1",
        )
        .bind(source.as_str())
        .bind(fetched)
        .bind(names.into_iter().collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    Ok(facts)
}

async fn write_events(
    tx: &mut Transaction<'_, Postgres>,
    set: &crate::batch::EventSet,
    now: Timestamp,
    facts: &mut Vec<Value>,
) -> sqlx::Result<()> {
    let seen = db_time(now);
    let items = &set.items;
    // The same event may appear twice in one answer (several rows for one place): keep the first.
    let mut unique = BTreeMap::new();
    for item in items {
        unique.entry(item.event_id.as_str()).or_insert(item);
    }
    let items: Vec<_> = unique.into_values().collect();
    sqlx::query(
        "insert into ingest.event (event_id, park_id, source, title_ko, place_ko, starts_on, ends_on, free, url,
                                   first_seen_at, last_seen_at)
         select event_id, park_id, $3, title_ko, place_ko, starts_on::date, ends_on::date, free, url, $10, $10
         from unnest($1::text[], $2::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::bool[], $9::text[])
              as t(event_id, park_id, title_ko, place_ko, starts_on, ends_on, free, url)
         on conflict (event_id) do update set
            park_id = excluded.park_id, title_ko = excluded.title_ko, place_ko = excluded.place_ko,
            starts_on = excluded.starts_on, ends_on = excluded.ends_on, free = excluded.free, url = excluded.url,
            last_seen_at = excluded.last_seen_at",
    )
    .bind(items.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>())
    .bind(items.iter().map(|e| e.park_id.as_str()).collect::<Vec<_>>())
    .bind(set.source.as_str())
    .bind(items.iter().map(|e| e.title_ko.as_str()).collect::<Vec<_>>())
    .bind(items.iter().map(|e| e.place_ko.as_deref()).collect::<Vec<_>>())
    .bind(items.iter().map(|e| e.starts_on.to_string()).collect::<Vec<_>>())
    .bind(items.iter().map(|e| e.ends_on.to_string()).collect::<Vec<_>>())
    .bind(items.iter().map(|e| e.free).collect::<Vec<_>>())
    .bind(items.iter().map(|e| e.url.as_deref()).collect::<Vec<_>>())
    .bind(seen)
    .execute(&mut **tx)
    .await?;

    // Cancelled: marked so by the organiser, or (from a complete list) gone before it ended.
    let marked: Vec<&str> =
        items.iter().filter(|e| e.cancelled).map(|e| e.event_id.as_str()).collect();
    let today = kst::seoul_date(now).to_string();
    let cancelled: Vec<(String, String, String)> = sqlx::query_as(
        "update ingest.event set cancelled_at = $1
         where cancelled_at is null and source = $2 and ends_on >= $3::date
           and (event_id = any($4) or ($5 and last_seen_at < $1))
         returning event_id, park_id, title_ko",
    )
    .bind(seen)
    .bind(set.source.as_str())
    .bind(&today)
    .bind(&marked)
    .bind(set.complete)
    .fetch_all(&mut **tx)
    .await?;
    for (event_id, park_id, title) in cancelled {
        facts.push(json!({
            "fact_key": format!("event-cancelled:{event_id}"),
            "kind": "event_cancelled",
            "park_id": park_id,
            "event_id": event_id,
            "observed_at": now,
            "fetched_at": now,
            "attributes": {"event_title_ko": title},
        }));
    }
    Ok(())
}

async fn write_notices(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
    now: Timestamp,
    facts: &mut Vec<Value>,
) -> sqlx::Result<()> {
    let notices = &batch.notices;
    let inserted: Vec<(String, Option<String>, String, bool)> = sqlx::query_as(
        "insert into ingest.notice (notice_id, park_id, lot_id, kind, title_ko, url, source, starts_at, ends_at)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::timestamptz[], $9::timestamptz[])
         on conflict (notice_id) do update set
            kind = excluded.kind, title_ko = excluded.title_ko, url = excluded.url, updated_at = now()
         returning notice_id, park_id, kind, (xmax = 0) as inserted",
    )
    .bind(notices.iter().map(|n| n.notice_id.as_str()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.park_id.as_deref()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.lot_id.as_deref()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.kind).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.title_ko.as_str()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.url.as_deref()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.source.as_str()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.starts_at.map(db_time)).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.ends_at.map(db_time)).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    for (notice_id, park_id, kind, is_new) in inserted {
        if is_new && kind == "park_closure" {
            facts.extend(park_closed_facts(tx, &notice_id, park_id.as_deref(), now).await?);
        }
    }
    Ok(())
}

/// Facts for a new park closure: one per park it closes (every park when `park_id` is `None`).
pub async fn park_closed_facts(
    tx: &mut Transaction<'_, Postgres>,
    notice_id: &str,
    park_id: Option<&str>,
    now: Timestamp,
) -> sqlx::Result<Vec<Value>> {
    let parks: Vec<(String,)> =
        sqlx::query_as("select park_id from reference.park where $1::text is null or park_id = $1")
            .bind(park_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(parks
        .into_iter()
        .map(|(park_id,)| {
            json!({
                "fact_key": format!("park-closed:{notice_id}:{park_id}"),
                "kind": "park_closed",
                "park_id": park_id,
                "observed_at": now,
                "fetched_at": now,
                "attributes": {"notice_id": notice_id},
            })
        })
        .collect())
}

/// Queues a forecast refresh for what changed and the facts for push.
async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    now: Timestamp,
    batch: &Batch,
    facts: Vec<Value>,
    peers: Peers,
) -> sqlx::Result<()> {
    if peers.forecast && (!batch.lots.is_empty() || !batch.congestion.is_empty()) {
        let lot_ids: BTreeSet<&str> = batch.lots.iter().map(|lot| lot.lot_id.as_str()).collect();
        let park_ids: BTreeSet<&str> =
            batch.congestion.iter().map(|row| row.park_id.as_str()).collect();
        enqueue_one(tx, "forecast", json!({"lot_ids": lot_ids, "park_ids": park_ids, "as_of": now, "cycle_id": run_id.to_string()}))
            .await?;
    }
    if peers.push && !facts.is_empty() {
        enqueue_one(tx, "push", json!({"facts": facts})).await?;
    }
    Ok(())
}

/// Queues one notification for a peer, with the current trace so its delivery joins the cycle's trace.
pub async fn enqueue_one(
    tx: &mut Transaction<'_, Postgres>,
    destination: &str,
    payload: Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "insert into ingest.outbox (destination, payload, traceparent) values ($1, $2, $3)",
    )
    .bind(destination)
    .bind(payload)
    .bind(telemetry::current_traceparent())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
