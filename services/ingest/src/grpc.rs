//! `hangang.ingest.v1.Ingest`: `RunNow` (one collection now, by the collecting leader only, through the same
//! fenced path as the schedule) and `GetSourceStatus`.

use std::sync::Arc;

use contracts::{
    Timestamp,
    proto::ingest::v1::{
        GetSourceStatusRequest, GetSourceStatusResponse, IngestionRun, RunNowRequest,
        RunNowResponse, SourceStatus, ingest_server::Ingest,
    },
};
use tonic::{Request, Response, Status};

use crate::{leadership::Standing, runner::Runner, sources, store::StoreError};

/// How long `RunNow` waits for this replica to lead (it campaigns at start) before refusing.
const LEADERSHIP_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// The gRPC service over a [`Runner`].
#[derive(Debug)]
pub struct IngestService {
    pub runner: Arc<Runner>,
    /// This replica's leadership, as the schedule publishes it.
    pub standing: Standing,
}

fn proto_time(instant: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: instant.as_unix_seconds(), nanos: 0 }
}

fn outcome_code(outcome: &str) -> i32 {
    use contracts::proto::ingest::v1::Outcome as Proto;
    match outcome {
        "ok" => Proto::Ok as i32,
        "no_data" => Proto::NoData as i32,
        "failed" => Proto::Failed as i32,
        "partial" => Proto::Partial as i32,
        _ => Proto::Unspecified as i32,
    }
}

#[tonic::async_trait]
impl Ingest for IngestService {
    async fn run_now(
        &self,
        request: Request<RunNowRequest>,
    ) -> Result<Response<RunNowResponse>, Status> {
        let source = request.into_inner().source;
        let name = sources::collected(&source)
            .map_err(|unknown| Status::invalid_argument(unknown.to_string()))?;
        let Some(leader) = self.standing.leadership(LEADERSHIP_PATIENCE).await else {
            return Err(Status::failed_precondition(
                "this replica is not the collecting leader; only the leader runs collections",
            ));
        };
        let report = self.runner.run_once(name, &leader).await.map_err(|error| match error
            .downcast_ref::<StoreError>(
        ) {
            Some(StoreError::Fenced) => Status::failed_precondition(error.to_string()),
            _ => Status::unavailable(format!("{error:#}")),
        })?;
        let (error_class, error_message) = match report.outcome.failure() {
            Some(failure) => (failure.class.as_str().to_owned(), failure.message.clone()),
            None => (String::new(), String::new()),
        };
        let items = report.outcome.items();
        Ok(Response::new(RunNowResponse {
            run: Some(IngestionRun {
                run_id: report.run_id.to_string(),
                source,
                started_at: Some(proto_time(report.started_at)),
                finished_at: Some(proto_time(report.finished_at)),
                outcome: outcome_code(report.outcome.as_str()),
                error_class,
                error_message,
                items,
            }),
        }))
    }

    async fn get_source_status(
        &self,
        request: Request<GetSourceStatusRequest>,
    ) -> Result<Response<GetSourceStatusResponse>, Status> {
        let wanted = request.into_inner().sources;
        type Row = (
            String,
            time::OffsetDateTime,
            Option<time::OffsetDateTime>,
            i32,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = sqlx::query_as(
            "select source, last_attempt_at, last_success_at, consecutive_failures, last_outcome,
                    last_error_class, last_error_message
             from ingest.source_status
             where cardinality($1::text[]) = 0 or source = any($1)
             order by source",
        )
        .bind(&wanted)
        .fetch_all(&self.runner.pool)
        .await
        .map_err(|error| Status::unavailable(format!("database: {error}")))?;
        let sources = rows
            .into_iter()
            .map(|(source, attempt, success, failures, outcome, class, message)| SourceStatus {
                source,
                last_attempt_at: Some(proto_time(db::wire_time(attempt))),
                last_success_at: success.map(|at| proto_time(db::wire_time(at))),
                consecutive_failures: failures.max(0) as u32,
                last_outcome: outcome_code(&outcome),
                last_error_class: class.unwrap_or_default(),
                last_error_message: message.unwrap_or_default(),
            })
            .collect();
        Ok(Response::new(GetSourceStatusResponse { sources }))
    }
}
