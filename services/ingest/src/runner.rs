//! Running one collection of a source: open the run, collect, store, close the run. Used by the scheduler,
//! `hangang-ingest run-once` and the `RunNow` rpc alike, always as the collecting leader: the store step is
//! fenced by the leadership (`crate::leadership`), and a run stops the moment its leadership is lost.

use contracts::{Timestamp, freshness::SourceId};
use sqlx::PgPool;

use crate::{
    fetch::Fetcher,
    leadership::{Leadership, LockSession},
    outcome::Outcome,
    sources::{
        self, CollectError, Collector, Context, Upstreams, citydata::Citydata,
        events::CulturalEvents, kma::KmaWeather, notices::NoticeBoard,
        parking_portal::ParkingPortal,
    },
    store::{self, Peers, StoreError},
};

/// How long a run stopped by a lost leadership may take to record that it was abandoned.
const ABANDON_PATIENCE: std::time::Duration = std::time::Duration::from_secs(2);

/// What a run ended with.
#[derive(Clone, Debug)]
pub struct RunReport {
    pub run_id: i64,
    pub source: SourceId,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: Outcome,
    /// Time spent fetching and parsing.
    pub collect_time: std::time::Duration,
    /// Time spent storing (one transaction).
    pub store_time: std::time::Duration,
}

/// Everything needed to run collections.
#[derive(Clone, Debug)]
pub struct Runner {
    pub pool: PgPool,
    pub fetcher: Fetcher,
    pub upstreams: Upstreams,
    pub peers: Peers,
    /// Collections run as of this clock's now.
    pub clock: server::clock::Clock,
}

impl Runner {
    /// Runs one collection of `source` now as `leader`.
    pub async fn run_once(
        &self,
        source: SourceId,
        leader: &Leadership,
    ) -> anyhow::Result<RunReport> {
        self.run_once_at(source, self.clock.now(), leader).await
    }

    /// Runs one collection as of `now` (tests pin the instant) as `leader`: when the leadership is lost
    /// mid-run the run stops there (a silent database would hold it forever) and is closed as abandoned if the
    /// database can still be reached; its results are never stored.
    #[tracing::instrument(name = "collect", skip(self, leader), fields(source = source.as_str(), run_id))]
    pub async fn run_once_at(
        &self,
        source: SourceId,
        now: Timestamp,
        leader: &Leadership,
    ) -> anyhow::Result<RunReport> {
        anyhow::ensure!(
            sources::interval(source).is_some(),
            "{} is not collected",
            source.as_str()
        );
        let run_id = tokio::select! {
            biased;
            () = leader.lost.cancelled() => return Err(StoreError::Fenced.into()),
            started = store::start_run(&self.pool, source, now) => started?,
        };
        tracing::Span::current().record("run_id", run_id);
        tokio::select! {
            biased;
            () = leader.lost.cancelled() => Err(self.fenced(run_id).await),
            report = self.collect_and_store(source, run_id, now, leader.session) => report,
        }
    }

    /// Closes a run its lost leadership stopped as abandoned, if the database still answers soon.
    async fn fenced(&self, run_id: i64) -> anyhow::Error {
        let message = StoreError::Fenced.to_string();
        let closed = tokio::time::timeout(
            ABANDON_PATIENCE,
            store::abandon_run(&self.pool, run_id, &message),
        );
        if !matches!(closed.await, Ok(Ok(()))) {
            tracing::warn!(run_id, "could not close the run a lost leadership stopped");
        }
        StoreError::Fenced.into()
    }

    async fn collect_and_store(
        &self,
        source: SourceId,
        run_id: i64,
        now: Timestamp,
        leader: LockSession,
    ) -> anyhow::Result<RunReport> {
        let source_id = source;
        let ctx = Context {
            pool: self.pool.clone(),
            fetcher: self.fetcher.clone(),
            upstreams: self.upstreams.clone(),
            now,
        };
        let collect_started = std::time::Instant::now();
        let collected = match source {
            SourceId::ParkingPortal => ParkingPortal.collect(&ctx).await,
            SourceId::SeoulCitydata => Citydata.collect(&ctx).await,
            SourceId::SeoulCulturalEvents => CulturalEvents.collect(&ctx).await,
            SourceId::KmaForecast => KmaWeather.collect(&ctx).await,
            SourceId::HangangNotices => NoticeBoard.collect(&ctx).await,
            SourceId::Curated => sync_reference(&self.pool).await,
            SourceId::Operator | SourceId::HangangjariForecast | SourceId::Unknown => {
                unreachable!("checked above: only collected sources run")
            }
        };
        let collect_time = collect_started.elapsed();
        let result = match collected {
            Ok(batch) => Ok(batch),
            Err(CollectError::Source(failure)) => Err(failure),
            // Our own database failed: nothing is known about the source, so its status stays as it was.
            Err(CollectError::Database(error)) => {
                let message = format!("reading reference data: {error}");
                if let Err(close) = store::abandon_run(&self.pool, run_id, &message).await {
                    tracing::warn!(error = %close, "could not close the abandoned run");
                }
                anyhow::bail!("run {run_id} of {} abandoned: {message}", source_id.as_str());
            }
        };
        let store_started = std::time::Instant::now();
        // Tests pin `now` in the past; the run still finished at the clock's current time.
        let finished_at = self.clock.now().max(now);
        let outcome = match store::finish_run(
            &self.pool,
            leader,
            source_id,
            run_id,
            (now, finished_at),
            result,
            self.peers,
        )
        .await
        {
            Ok(outcome) => outcome,
            Err(StoreError::Fenced) => return Err(self.fenced(run_id).await),
            Err(StoreError::Database(error)) => return Err(error.into()),
        };
        let store_time = store_started.elapsed();
        match &outcome {
            Outcome::Failed(failure) => {
                tracing::warn!(class = failure.class.as_str(), message = %failure.message, "collection failed")
            }
            Outcome::Ok { items } => tracing::info!(
                items,
                collect_ms = collect_time.as_millis() as u64,
                store_ms = store_time.as_millis() as u64,
                "collected"
            ),
            Outcome::Partial { items, failed_parts, failure } => tracing::warn!(
                items,
                failed_parts,
                class = failure.class.as_str(),
                message = %failure.message,
                "collected, but some parks failed"
            ),
            Outcome::NoData => tracing::info!("source has no data"),
        }
        Ok(RunReport {
            run_id,
            source,
            started_at: now,
            finished_at,
            outcome,
            collect_time,
            store_time,
        })
    }
}

/// The reference "collection": makes the `reference` schema match the curated file of this release. It stores
/// through `db::reference::sync` itself, so the batch it returns is empty (`no_data` when nothing changed).
async fn sync_reference(pool: &PgPool) -> Result<crate::batch::Batch, CollectError> {
    use crate::outcome::{ErrorClass, Failure};
    let reference = db::reference::Reference::curated().map_err(|error| {
        Failure::new(ErrorClass::SchemaDrift, format!("curated reference file: {error}"))
    })?;
    let report = db::reference::sync(pool, &reference).await.map_err(|error| match error
        .downcast::<sqlx::Error>()
    {
        Ok(database) => CollectError::Database(database),
        Err(other) => {
            Failure::new(ErrorClass::SchemaDrift, format!("reference sync: {other:#}")).into()
        }
    })?;
    tracing::info!(version = %report.version, changed = report.changed, "reference synced");
    Ok(crate::batch::Batch { no_data: true, ..Default::default() })
}
