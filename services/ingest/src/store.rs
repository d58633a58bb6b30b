//! Storing a collection: history appended in batches (`unnest`, not row by row), events reconciled
//! (`crate::event_ledger`) and notices upserted, drift and anomalies recorded, the run, the source's status and
//! each park's share of it updated, outbox rows for forecast and push, and a `NOTIFY` for the api, all in one
//! transaction, so readers never see half a cycle and a crash loses nothing.

use std::collections::{BTreeMap, BTreeSet};

use contracts::{
    Timestamp,
    enums::WireEnum,
    fact::{Fact, FactBatch, FactKind},
    freshness::SourceId,
    v2::{AnomalyKind, CongestionLevel, NoticeKind},
};
use serde_json::Value;
use sqlx::{PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use crate::{
    batch::{Anomaly, Batch, DroppedLink, NoticeReading, PartResult},
    event_ledger::{self, CancelReason, KnownEvent},
    leadership::{self, LockSession},
    outbox::{self, Message, Refresh},
    outcome::{Failure, Outcome},
};

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

/// Closes a run that could not be made for a reason of our own (our database failed while collecting): the
/// source's status is left as it was, since nothing is known about the source.
pub async fn abandon_run(pool: &PgPool, run_id: i64, message: &str) -> sqlx::Result<()> {
    sqlx::query(
        "update ingest.ingestion_run set finished_at = now(), error_message = $2 where run_id = $1",
    )
    .bind(run_id)
    .bind(format!("abandoned: {message}"))
    .execute(pool)
    .await?;
    Ok(())
}

/// Closes every run still unfinished that started before `started_before` as failed with the class
/// `interrupted`: its process died mid-run (a run ends within minutes, each fetch and statement having a
/// timeout). Called by a new leader, which is the only writer of runs; the source's status is left as it was.
/// Returns the runs closed.
pub async fn close_interrupted_runs(pool: &PgPool, started_before: Timestamp) -> sqlx::Result<u64> {
    let closed = sqlx::query(
        "update ingest.ingestion_run
         set finished_at = now(), outcome = 'failed', error_class = $2,
             error_message = 'interrupted: the process collecting it stopped before the run ended'
         where finished_at is null and started_at < $1",
    )
    .bind(db_time(started_before))
    .bind(upstream::outcome::ErrorClass::Interrupted.as_str())
    .execute(pool)
    .await?;
    Ok(closed.rows_affected())
}

/// How a run that produced `batch` ended.
fn outcome_of(batch: &Batch) -> Outcome {
    let items = batch.items();
    let mut failed = batch.failed_parts();
    if let Some(failure) = &batch.partial_failure {
        return Outcome::Failed(failure.clone());
    }
    if let Some((park_id, first)) = failed.next() {
        let failed_parts = 1 + failed.count() as u32;
        let answered = batch.parts.len() as u32 - failed_parts;
        let failure = Failure::new(
            first.class,
            format!(
                "{failed_parts} of {} parks failed (first: {park_id}: {}); {answered} answered",
                batch.parts.len(),
                first.message
            ),
        );
        return Outcome::Partial { items, failed_parts, failure };
    }
    if items == 0 && batch.no_data { Outcome::NoData } else { Outcome::Ok { items } }
}

/// Impossible values of one kind, as the `anomalies` columns store them (read back by
/// `readmodel::snapshot::AnomalyRow`).
#[derive(serde::Serialize)]
struct AnomalyGroup<'a> {
    kind: AnomalyKind,
    items: Vec<&'a str>,
}

/// Impossible values grouped by kind; `None` when there were none.
fn anomalies_json(anomalies: &[Anomaly]) -> Option<Value> {
    if anomalies.is_empty() {
        return None;
    }
    let mut by_kind: BTreeMap<&str, AnomalyGroup<'_>> = BTreeMap::new();
    for anomaly in anomalies {
        by_kind
            .entry(anomaly.kind.as_str())
            .or_insert_with(|| AnomalyGroup { kind: anomaly.kind, items: Vec::new() })
            .items
            .push(anomaly.item.as_str());
    }
    let groups: Vec<AnomalyGroup<'_>> = by_kind.into_values().collect();
    Some(serde_json::to_value(groups).expect("anomalies are plain data"))
}

/// Dropped links grouped by why (`javascript`, `http`, `sms`, …, see `upstream::link::Rejected::label`), as
/// `ingestion_run.dropped_links` stores them: `[{"reason": "javascript", "items": ["hn-…"]}]`; `None` when
/// none were dropped.
fn dropped_links_json(dropped: &[DroppedLink]) -> Option<Value> {
    if dropped.is_empty() {
        return None;
    }
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for link in dropped {
        by_reason.entry(link.why.label()).or_default().push(link.item.as_str());
    }
    let groups: Vec<Value> = by_reason
        .into_iter()
        .map(|(reason, items)| serde_json::json!({"reason": reason, "items": items}))
        .collect();
    Some(Value::Array(groups))
}

/// Why a run's results were not stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The replica no longer holds the leader lock: another leader may be collecting, so nothing was written.
    #[error("fenced: this replica no longer holds the collection leader lock; nothing was stored")]
    Fenced,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Stores what a run as of `now` produced (or that it failed) and closes the run as finished at `finished_at`,
/// in one transaction that first proves `leader` still holds the leader lock (and otherwise writes nothing).
pub async fn finish_run(
    pool: &PgPool,
    leader: LockSession,
    source: SourceId,
    run_id: i64,
    (now, finished_at): (Timestamp, Timestamp),
    result: Result<Batch, Failure>,
    peers: Peers,
) -> Result<Outcome, StoreError> {
    let mut tx = pool.begin().await?;
    if !leadership::holds(&mut tx, leader).await? {
        tx.rollback().await?;
        return Err(StoreError::Fenced);
    }
    let (outcome, anomalies, dropped_links) = match result {
        Err(failure) => (Outcome::Failed(failure), None, None),
        Ok(batch) => {
            let facts = write_batch(&mut tx, source, run_id, now, &batch).await?;
            enqueue(&mut tx, run_id, now, &batch, facts, peers).await?;
            write_parts(&mut tx, source, now, &batch).await?;
            if !batch.anomalies.is_empty() {
                tracing::warn!(
                    source = source.as_str(),
                    count = batch.anomalies.len(),
                    anomalies = ?batch.anomalies,
                    "impossible values clamped"
                );
            }
            if !batch.dropped_links.is_empty() {
                tracing::warn!(
                    source = source.as_str(),
                    count = batch.dropped_links.len(),
                    dropped = ?batch.dropped_links,
                    "links that are not https dropped; their items are stored without them"
                );
            }
            (
                outcome_of(&batch),
                anomalies_json(&batch.anomalies),
                dropped_links_json(&batch.dropped_links),
            )
        }
    };
    let failure = outcome.failure();
    let (class, message) =
        (failure.map(|failure| failure.class.as_str()), failure.map(|f| f.message.as_str()));
    sqlx::query(
        "update ingest.ingestion_run
         set finished_at = $2, outcome = $3, error_class = $4, error_message = $5, items = $6,
             anomalies = $7, dropped_links = $8
         where run_id = $1",
    )
    .bind(run_id)
    .bind(db_time(finished_at))
    .bind(outcome.as_str())
    .bind(class)
    .bind(message)
    .bind(outcome.items() as i32)
    .bind(&anomalies)
    .bind(&dropped_links)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into ingest.source_status (source, last_attempt_at, last_success_at, last_outcome,
                                           consecutive_failures, last_error_class, last_error_message,
                                           anomalies)
         values ($1, $2, case when $3 <> 'failed' then $2 end, $3, case when $3 = 'failed' then 1 else 0 end,
                 $4, $5, $6)
         on conflict (source) do update set
            last_attempt_at = excluded.last_attempt_at,
            last_success_at = coalesce(excluded.last_success_at, ingest.source_status.last_success_at),
            last_outcome = excluded.last_outcome,
            consecutive_failures = case when excluded.last_outcome = 'failed'
                                        then ingest.source_status.consecutive_failures + 1 else 0 end,
            last_error_class = excluded.last_error_class,
            last_error_message = excluded.last_error_message,
            -- The anomalies of the last successful run: a failed run says nothing about the values.
            anomalies = case when excluded.last_outcome = 'failed' then ingest.source_status.anomalies
                             else excluded.anomalies end,
            updated_at = now()",
    )
    .bind(source.as_str())
    .bind(db_time(now))
    .bind(outcome.as_str())
    .bind(class)
    .bind(message)
    .bind(&anomalies)
    .execute(&mut *tx)
    .await?;
    // Every run changes what the api shows: new values, or a source's (or a park's) health and age.
    db::notify_data_changed(&mut *tx, source.as_str()).await?;
    tx.commit().await?;
    Ok(outcome)
}

/// Updates each park's share of a source collected per park.
async fn write_parts(
    tx: &mut Transaction<'_, Postgres>,
    source: SourceId,
    now: Timestamp,
    batch: &Batch,
) -> sqlx::Result<()> {
    if batch.parts.is_empty() {
        return Ok(());
    }
    let failure = |result: &PartResult| match result {
        PartResult::Failed(failure) => Some(failure.clone()),
        PartResult::Delivered | PartResult::NoData => None,
    };
    let failures: Vec<Option<Failure>> =
        batch.parts.iter().map(|part| failure(&part.result)).collect();
    sqlx::query(
        "insert into ingest.source_part_status (source, part, last_attempt_at, last_success_at,
                                                consecutive_failures, last_error_class, last_error_message)
         select $1, part, $2, case when failed then null else $2 end, case when failed then 1 else 0 end,
                class, message
         from unnest($3::text[], $4::bool[], $5::text[], $6::text[]) as t(part, failed, class, message)
         on conflict (source, part) do update set
            last_attempt_at = excluded.last_attempt_at,
            last_success_at = coalesce(excluded.last_success_at, ingest.source_part_status.last_success_at),
            consecutive_failures = case when excluded.consecutive_failures > 0
                                        then ingest.source_part_status.consecutive_failures + 1 else 0 end,
            last_error_class = excluded.last_error_class,
            last_error_message = excluded.last_error_message,
            updated_at = now()",
    )
    .bind(source.as_str())
    .bind(db_time(now))
    .bind(batch.parts.iter().map(|part| part.park_id.as_str()).collect::<Vec<_>>())
    .bind(failures.iter().map(Option::is_some).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.as_ref().map(|f| f.class.as_str())).collect::<Vec<_>>())
    .bind(failures.iter().map(|f| f.as_ref().map(|f| f.message.clone())).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Appends history and upserts events and notices; returns the facts the changes imply.
async fn write_batch(
    tx: &mut Transaction<'_, Postgres>,
    source: SourceId,
    run_id: i64,
    now: Timestamp,
    batch: &Batch,
) -> sqlx::Result<Vec<Fact>> {
    let mut facts = Vec::new();
    let fetched = db_time(now);

    if !batch.lots.is_empty() {
        let lot_ids: Vec<&str> = batch.lots.iter().map(|lot| lot.lot_id.as_str()).collect();
        let previous: Vec<(String, Option<i32>, String, String)> = sqlx::query_as(
            // Per lot, newest first through the primary key: the cost is the batch's, not the history's.
            "select l.lot_id, o.available, l.name_ko, l.park_id
             from reference.lot l
             cross join lateral (
                 select available from ingest.lot_observation
                 where lot_id = l.lot_id order by observed_at desc limit 1
             ) o
             where l.lot_id = any($1)",
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
        // A reading already stored (same observation time) was carried by this collection too: its fetch
        // time moves on, so the api knows the latest collection confirmed it.
        let stored: Vec<(String, bool)> = sqlx::query_as(
            "insert into ingest.lot_observation
                (lot_id, observed_at, fetched_at, available, capacity, not_linked, run_id, reported_available)
             select lot_id, observed_at, $3, available, capacity, not_linked, $7, reported_available
             from unnest($1::text[], $2::timestamptz[], $4::int[], $5::int[], $6::bool[], $8::int[])
                  as t(lot_id, observed_at, available, capacity, not_linked, reported_available)
             on conflict (lot_id, observed_at) do update set fetched_at = excluded.fetched_at
             returning lot_id, (xmax = 0) as inserted",
        )
        .bind(&lot_ids)
        .bind(batch.lots.iter().map(|lot| db_time(lot.observed_at)).collect::<Vec<_>>())
        .bind(fetched)
        .bind(batch.lots.iter().map(|lot| int(lot.available)).collect::<Vec<_>>())
        .bind(batch.lots.iter().map(|lot| int(lot.capacity)).collect::<Vec<_>>())
        .bind(batch.lots.iter().map(|lot| lot.not_linked).collect::<Vec<_>>())
        .bind(run_id)
        .bind(batch.lots.iter().map(|lot| int(lot.reported_available)).collect::<Vec<_>>())
        .fetch_all(&mut **tx)
        .await?;
        let stored: BTreeSet<String> = stored
            .into_iter()
            .filter(|(_, inserted)| *inserted)
            .map(|(lot_id, _)| lot_id)
            .collect();
        for lot in batch.lots.iter().filter(|lot| stored.contains(&lot.lot_id)) {
            let (Some((Some(before), name, park_id)), Some(now_available)) =
                (previous.get(&lot.lot_id), int(lot.available))
            else {
                continue;
            };
            if *before != now_available {
                let key = format!("lot:{}:{}", lot.lot_id, lot.observed_at.as_unix_seconds());
                let mut attributes = BTreeMap::from([("lot_name_ko".to_owned(), name.clone())]);
                attributes.extend(lot.capacity.map(|c| ("capacity".to_owned(), c.to_string())));
                facts.push(Fact {
                    lot_id: Some(lot.lot_id.clone()),
                    observed_at: Some(lot.observed_at),
                    fetched_at: Some(now),
                    previous_value: Some(i64::from(*before)),
                    current_value: Some(i64::from(now_available)),
                    attributes,
                    ..Fact::new(key, FactKind::LotAvailability, park_id.clone())
                });
            }
        }
    }

    if !batch.congestion.is_empty() {
        let park_ids: Vec<&str> = batch.congestion.iter().map(|row| row.park_id.as_str()).collect();
        let previous: Vec<(String, String)> = sqlx::query_as(
            "select p.park_id, o.level
             from reference.park p
             cross join lateral (
                 select level from ingest.congestion_observation
                 where park_id = p.park_id order by observed_at desc limit 1
             ) o
             where p.park_id = any($1)",
        )
        .bind(&park_ids)
        .fetch_all(&mut **tx)
        .await?;
        let previous: BTreeMap<String, CongestionLevel> = previous
            .into_iter()
            .filter_map(|(park_id, level)| Some((park_id, CongestionLevel::from_wire(&level)?)))
            .collect();
        sqlx::query(
            "insert into ingest.congestion_observation
                (park_id, observed_at, fetched_at, level, message_ko, population_min, population_max, run_id)
             select park_id, observed_at, $3, level, message_ko, population_min, population_max, $8
             from unnest($1::text[], $2::timestamptz[], $4::text[], $5::text[], $6::int[], $7::int[])
                  as t(park_id, observed_at, level, message_ko, population_min, population_max)
             on conflict (park_id, observed_at) do update set fetched_at = excluded.fetched_at",
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
            if let Some(&before) = previous.get(&row.park_id)
                && before != row.level
            {
                let key =
                    format!("congestion:{}:{}", row.park_id, row.observed_at.as_unix_seconds());
                facts.push(Fact {
                    observed_at: Some(row.observed_at),
                    fetched_at: Some(now),
                    previous_level: Some(before),
                    current_level: Some(row.level),
                    ..Fact::new(key, FactKind::CongestionLevel, row.park_id.clone())
                });
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
             on conflict (park_id, observed_at) do update set fetched_at = excluded.fetched_at
             where ingest.weather_observation.source = excluded.source",
        )
        .bind(rows.iter().map(|row| row.park_id.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| db_time(row.observed_at)).collect::<Vec<_>>())
        .bind(fetched)
        .bind(rows.iter().map(|row| row.source.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.temperature_c).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.precipitation.map(|kind| kind.as_str())).collect::<Vec<_>>())
        .bind(rows.iter().map(|row| row.sky.map(|sky| sky.as_str())).collect::<Vec<_>>())
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

/// Reconciles a listing with the source's known events (`event_ledger`) and stores the plan: listed events
/// upserted under their resolved ids, absence streaks, cancellations and reinstatements, with their facts.
async fn write_events(
    tx: &mut Transaction<'_, Postgres>,
    set: &crate::batch::EventSet,
    now: Timestamp,
    facts: &mut Vec<Fact>,
) -> sqlx::Result<()> {
    let seen = db_time(now);
    let today = contracts::seoul::date(now);
    let keys: Vec<&str> = set.items.iter().map(|item| item.content_key.as_str()).collect();
    type KnownTuple = (
        String,
        Option<String>,
        String,
        String,
        Option<String>,
        String,
        String,
        Option<OffsetDateTime>,
        Option<String>,
        Option<OffsetDateTime>,
        i32,
    );
    let rows: Vec<KnownTuple> = sqlx::query_as(
        "select event_id, content_key, park_id, title_ko, place_ko, starts_on::text, ends_on::text,
                cancelled_at, cancel_reason, missing_since, missing_lists
         from ingest.event
         where source = $1
           and (ends_on >= $2::date or event_id = any($3) or content_key = any($3))",
    )
    .bind(set.source.as_str())
    .bind(today.to_string())
    .bind(&keys)
    .fetch_all(&mut **tx)
    .await?;
    let known: Vec<KnownEvent> = rows
        .into_iter()
        .filter_map(
            |(
                event_id,
                key,
                park_id,
                title,
                place,
                starts,
                ends,
                cancelled_at,
                reason,
                since,
                lists,
            )| {
                Some(KnownEvent {
                    content_key: key.unwrap_or_else(|| event_id.clone()),
                    event_id,
                    park_id,
                    title_ko: title,
                    place_ko: place,
                    starts_on: starts.parse().ok()?,
                    ends_on: ends.parse().ok()?,
                    cancelled: cancelled_at.map(|_| CancelReason::from_db(reason.as_deref())),
                    missing_since: since.map(db::wire_time),
                    missing_lists: u32::try_from(lists).unwrap_or(0),
                })
            },
        )
        .collect();
    let plan = event_ledger::reconcile(
        &known,
        event_ledger::Listing { items: &set.items, complete: set.complete, at: now, today },
    );
    if !plan.retitled.is_empty() {
        tracing::info!(events = ?plan.retitled, "events listed under a new title keep their ids");
    }

    let listed = &plan.listed;
    sqlx::query(
        "insert into ingest.event (event_id, content_key, park_id, source, title_ko, place_ko, starts_on,
                                   ends_on, free, url, first_seen_at, last_seen_at)
         select event_id, content_key, park_id, $4, title_ko, place_ko, starts_on::date, ends_on::date, free,
                url, $11, $11
         from unnest($1::text[], $2::text[], $3::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                     $9::bool[], $10::text[])
              as t(event_id, content_key, park_id, title_ko, place_ko, starts_on, ends_on, free, url)
         on conflict (event_id) do update set
            content_key = excluded.content_key, park_id = excluded.park_id, title_ko = excluded.title_ko,
            place_ko = excluded.place_ko, starts_on = excluded.starts_on, ends_on = excluded.ends_on,
            free = excluded.free, url = excluded.url, last_seen_at = excluded.last_seen_at,
            missing_since = null, missing_lists = 0",
    )
    .bind(listed.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>())
    .bind(listed.iter().map(|(_, e)| e.content_key.as_str()).collect::<Vec<_>>())
    .bind(listed.iter().map(|(_, e)| e.park_id.as_str()).collect::<Vec<_>>())
    .bind(set.source.as_str())
    .bind(listed.iter().map(|(_, e)| e.title_ko.as_str()).collect::<Vec<_>>())
    .bind(listed.iter().map(|(_, e)| e.place_ko.as_deref()).collect::<Vec<_>>())
    .bind(listed.iter().map(|(_, e)| e.starts_on.to_string()).collect::<Vec<_>>())
    .bind(listed.iter().map(|(_, e)| e.ends_on.to_string()).collect::<Vec<_>>())
    .bind(listed.iter().map(|(_, e)| e.free).collect::<Vec<_>>())
    .bind(listed.iter().map(|(_, e)| e.url.as_ref().map(|url| url.as_str())).collect::<Vec<_>>())
    .bind(seen)
    .execute(&mut **tx)
    .await?;

    if !plan.missing.is_empty() {
        sqlx::query(
            "update ingest.event e set missing_since = t.since, missing_lists = t.lists
             from unnest($1::text[], $2::timestamptz[], $3::int[]) as t(event_id, since, lists)
             where e.event_id = t.event_id",
        )
        .bind(plan.missing.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>())
        .bind(plan.missing.iter().map(|(_, since, _)| db_time(*since)).collect::<Vec<_>>())
        .bind(plan.missing.iter().map(|(_, _, lists)| *lists as i32).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    }
    let reasons = |changes: &[(String, CancelReason)]| {
        (
            changes.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(),
            changes.iter().map(|(_, reason)| reason.as_str()).collect::<Vec<_>>(),
        )
    };
    let (ids, why) = reasons(&plan.reason_changed);
    sqlx::query(
        "update ingest.event e set cancel_reason = t.reason
         from unnest($1::text[], $2::text[]) as t(event_id, reason) where e.event_id = t.event_id",
    )
    .bind(&ids)
    .bind(&why)
    .execute(&mut **tx)
    .await?;
    let (ids, why) = reasons(&plan.cancelled);
    let cancelled: Vec<(String, String, String, String)> = sqlx::query_as(
        "update ingest.event e set cancelled_at = $3, cancel_reason = t.reason
         from unnest($1::text[], $2::text[]) as t(event_id, reason)
         where e.event_id = t.event_id and e.cancelled_at is null
         returning e.event_id, e.park_id, e.title_ko, t.reason",
    )
    .bind(&ids)
    .bind(&why)
    .bind(seen)
    .fetch_all(&mut **tx)
    .await?;
    for (event_id, park_id, title, reason) in cancelled {
        let key = format!("event-cancelled:{event_id}:{}", now.as_unix_seconds());
        facts.push(Fact {
            observed_at: Some(now),
            fetched_at: Some(now),
            attributes: BTreeMap::from([
                ("event_title_ko".to_owned(), title),
                ("reason".to_owned(), reason),
            ]),
            event_id: Some(event_id),
            ..Fact::new(key, FactKind::EventCancelled, park_id)
        });
    }
    let reinstated: Vec<(String, String, String)> = sqlx::query_as(
        "update ingest.event set cancelled_at = null, cancel_reason = null
         where event_id = any($1) and cancelled_at is not null
         returning event_id, park_id, title_ko",
    )
    .bind(&plan.reinstated)
    .fetch_all(&mut **tx)
    .await?;
    for (event_id, park_id, title) in reinstated {
        let key = format!("event-reinstated:{event_id}:{}", now.as_unix_seconds());
        facts.push(Fact {
            observed_at: Some(now),
            fetched_at: Some(now),
            attributes: BTreeMap::from([("event_title_ko".to_owned(), title)]),
            event_id: Some(event_id),
            ..Fact::new(key, FactKind::EventReinstated, park_id)
        });
    }
    Ok(())
}

/// Upserts the board's notices; lifted closures end the closures they lift; a new reliable park closure is a
/// fact for push.
async fn write_notices(
    tx: &mut Transaction<'_, Postgres>,
    batch: &Batch,
    now: Timestamp,
    facts: &mut Vec<Fact>,
) -> sqlx::Result<()> {
    let notices = &batch.notices;
    let inserted: Vec<(String, Option<String>, String, bool, bool)> = sqlx::query_as(
        "insert into ingest.notice (notice_id, park_id, lot_id, kind, title_ko, url, source, starts_at, ends_at,
                                    reliable)
         select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                              $8::timestamptz[], $9::timestamptz[], $10::bool[])
         on conflict (notice_id) do update set
            kind = excluded.kind, title_ko = excluded.title_ko, url = excluded.url,
            reliable = excluded.reliable, updated_at = now()
         returning notice_id, park_id, kind, reliable, (xmax = 0) as inserted",
    )
    .bind(notices.iter().map(|n| n.notice_id.as_str()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.park_id.as_deref()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.lot_id.as_deref()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.kind.as_str()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.title_ko.as_str()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.url.as_ref().map(|url| url.as_str())).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.source.as_str()).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.starts_at.map(db_time)).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.ends_at.map(db_time)).collect::<Vec<_>>())
    .bind(notices.iter().map(|n| n.reliable).collect::<Vec<_>>())
    .fetch_all(&mut **tx)
    .await?;
    for notice in notices.iter().filter(|notice| notice.lifts.is_some()) {
        end_lifted(tx, notice, now).await?;
    }
    for (notice_id, park_id, kind, reliable, is_new) in inserted {
        // Only a reliable closure of one named park alerts; an inference for every park waits for an operator.
        if is_new && reliable && park_id.is_some() && kind == NoticeKind::ParkClosure.as_str() {
            facts.extend(park_closed_facts(tx, &notice_id, park_id.as_deref(), now).await?);
        }
    }
    Ok(())
}

/// Ends the closures a lifting notice lifts: those of its kind, for the same park, seen no later than the lift
/// itself (the board dates notices by day only, so a closure posted after the lift stays) and still open. A
/// lift for one named park also ends an operator's closure there; one for every park leaves operators' alone.
async fn end_lifted(
    tx: &mut Transaction<'_, Postgres>,
    lift: &NoticeReading,
    now: Timestamp,
) -> sqlx::Result<()> {
    let Some(kind) = lift.lifts else { return Ok(()) };
    let ended: Vec<(String,)> = sqlx::query_as(
        "update ingest.notice set ends_at = $4, ended_by = $1, updated_at = now()
         where notice_id <> $1 and kind = $2 and park_id is not distinct from $3
           and (ends_at is null or ends_at > $4)
           and created_at <= (select created_at from ingest.notice where notice_id = $1)
           and (source = 'hangang_notices' or ($3::text is not null and source = 'operator'))
         returning notice_id",
    )
    .bind(&lift.notice_id)
    .bind(kind.as_str())
    .bind(lift.park_id.as_deref())
    .bind(db_time(now))
    .fetch_all(&mut **tx)
    .await?;
    if !ended.is_empty() {
        tracing::info!(lift = lift.notice_id, ended = ?ended, "lifted closures ended");
    }
    Ok(())
}

/// Facts for a new park closure: one per park it closes (every park when `park_id` is `None`).
pub async fn park_closed_facts(
    tx: &mut Transaction<'_, Postgres>,
    notice_id: &str,
    park_id: Option<&str>,
    now: Timestamp,
) -> sqlx::Result<Vec<Fact>> {
    let parks: Vec<(String,)> =
        sqlx::query_as("select park_id from reference.park where $1::text is null or park_id = $1")
            .bind(park_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(parks
        .into_iter()
        .map(|(park_id,)| Fact {
            observed_at: Some(now),
            fetched_at: Some(now),
            attributes: BTreeMap::from([("notice_id".to_owned(), notice_id.to_owned())]),
            ..Fact::new(format!("park-closed:{notice_id}:{park_id}"), FactKind::ParkClosed, park_id)
        })
        .collect())
}

/// Queues a forecast refresh for what changed and the facts for push.
async fn enqueue(
    tx: &mut Transaction<'_, Postgres>,
    run_id: i64,
    now: Timestamp,
    batch: &Batch,
    facts: Vec<Fact>,
    peers: Peers,
) -> sqlx::Result<()> {
    if peers.forecast && (!batch.lots.is_empty() || !batch.congestion.is_empty()) {
        let lot_ids: BTreeSet<&str> = batch.lots.iter().map(|lot| lot.lot_id.as_str()).collect();
        let park_ids: BTreeSet<&str> =
            batch.congestion.iter().map(|row| row.park_id.as_str()).collect();
        let refresh = Refresh {
            lot_ids: lot_ids.into_iter().map(str::to_owned).collect(),
            park_ids: park_ids.into_iter().map(str::to_owned).collect(),
            as_of: now,
            cycle_id: run_id.to_string(),
        };
        outbox::enqueue(tx, &Message::Refresh(refresh)).await?;
    }
    if peers.push && !facts.is_empty() {
        outbox::enqueue(tx, &Message::Facts(FactBatch { facts })).await?;
    }
    Ok(())
}
