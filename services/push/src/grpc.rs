//! `hangang.push.v1.Push` over the installation store and the fact pipeline; submitted facts are checked by
//! `crate::facts` before the pipeline sees them.

use contracts::{
    Timestamp,
    fact::{Fact, FactError},
    proto::push::v1::{
        ApnsEnvironment, DeleteInstallationRequest, DeleteInstallationResponse,
        Installation as ProtoInstallation, QuietHours, SendTestRequest, SendTestResponse,
        SignalType, SubmitFactsRequest, SubmitFactsResponse, Subscription, TargetKind,
        UpdatePreferencesRequest, UpdatePreferencesResponse, UpsertInstallationRequest,
        UpsertInstallationResponse, Weekday, push_server::Push,
    },
};
use sqlx::PgPool;
use tonic::{Request, Response, Status};

use crate::{
    facts,
    installations::{self, InstallationError, InstallationFields, PreferenceFields},
    pipeline,
};

/// The gRPC service.
#[derive(Clone, Debug)]
pub struct PushService {
    pub pool: PgPool,
    /// The Redis preference index, when configured.
    pub index: Option<crate::index::PreferenceIndex>,
    pub metrics: crate::metrics::Metrics,
    /// Decisions are made as of this clock's now.
    pub clock: server::clock::Clock,
}

impl From<InstallationError> for Status {
    fn from(error: InstallationError) -> Status {
        match error {
            // One answer for "unknown" and "wrong secret": ids cannot be probed.
            InstallationError::NotFound => {
                Status::not_found("no such installation, or the secret does not match")
            }
            InstallationError::Invalid { field, message } => {
                Status::invalid_argument(format!("{field}: {message}"))
            }
            InstallationError::Database(error) => {
                tracing::error!(%error, "push database error");
                Status::unavailable("the push store is unavailable")
            }
        }
    }
}

fn proto_time(instant: Timestamp) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds: instant.as_unix_seconds(), nanos: 0 }
}

fn environment_name(value: i32) -> Result<&'static str, Status> {
    match ApnsEnvironment::try_from(value) {
        Ok(ApnsEnvironment::Production) => Ok("production"),
        Ok(ApnsEnvironment::Sandbox) => Ok("sandbox"),
        _ => Err(Status::invalid_argument("apns_environment: expected production or sandbox")),
    }
}

fn to_proto(installation: installations::Installation) -> ProtoInstallation {
    ProtoInstallation {
        installation_id: installation.installation_id,
        apns_environment: if installation.apns_environment == "sandbox" {
            ApnsEnvironment::Sandbox as i32
        } else {
            ApnsEnvironment::Production as i32
        },
        locale: installation.locale,
        app_version: installation.app_version,
        active: installation.active,
        created_at: Some(proto_time(db::wire_time(installation.created_at))),
        updated_at: Some(proto_time(db::wire_time(installation.updated_at))),
    }
}

fn signal_name(value: i32) -> Option<&'static str> {
    Some(match SignalType::try_from(value).ok()? {
        SignalType::LotAvailableBelow => "lot_available_below",
        SignalType::LotAvailableAbove => "lot_available_above",
        SignalType::LotFull => "lot_full",
        SignalType::CongestionEased => "congestion_eased",
        SignalType::CongestionRose => "congestion_rose",
        SignalType::EventCancelled => "event_cancelled",
        SignalType::EventReinstated => "event_reinstated",
        SignalType::ParkClosed => "park_closed",
        SignalType::Unspecified => return None,
    })
}

fn weekday_name(value: i32) -> Option<&'static str> {
    Some(match Weekday::try_from(value).ok()? {
        Weekday::Mon => "mon",
        Weekday::Tue => "tue",
        Weekday::Wed => "wed",
        Weekday::Thu => "thu",
        Weekday::Fri => "fri",
        Weekday::Sat => "sat",
        Weekday::Sun => "sun",
        Weekday::Unspecified => return None,
    })
}

fn minutes(field: &str, hh_mm: &str) -> Result<u16, Status> {
    let parsed = hh_mm.split_once(':').and_then(|(h, m)| {
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    });
    parsed.ok_or_else(|| Status::invalid_argument(format!("{field}: expected HH:MM")))
}

#[tonic::async_trait]
impl Push for PushService {
    async fn upsert_installation(
        &self,
        request: Request<UpsertInstallationRequest>,
    ) -> Result<Response<UpsertInstallationResponse>, Status> {
        let request = request.into_inner();
        let fields = InstallationFields {
            apns_token: request.apns_token,
            apns_environment: environment_name(request.apns_environment)?.to_owned(),
            locale: request.locale,
            app_version: request.app_version,
        };
        let response = match (request.installation_id, request.secret) {
            (None, _) => {
                let (installation, secret) = installations::register(&self.pool, &fields).await?;
                UpsertInstallationResponse {
                    installation: Some(to_proto(installation)),
                    secret: Some(secret),
                    created: true,
                }
            }
            (Some(id), Some(secret)) => {
                let installation =
                    installations::refresh(&self.pool, &id, &secret, &fields).await?;
                UpsertInstallationResponse {
                    installation: Some(to_proto(installation)),
                    secret: None,
                    created: false,
                }
            }
            (Some(_), None) => {
                return Err(Status::unauthenticated("the installation secret is required"));
            }
        };
        Ok(Response::new(response))
    }

    async fn update_preferences(
        &self,
        request: Request<UpdatePreferencesRequest>,
    ) -> Result<Response<UpdatePreferencesResponse>, Status> {
        let request = request.into_inner();
        let quiet_hours = match &request.quiet_hours {
            Some(quiet) => Some((
                minutes("quiet_hours.start", &quiet.start)?,
                minutes("quiet_hours.end", &quiet.end)?,
            )),
            None => None,
        };
        let mut preferences = Vec::with_capacity(request.subscriptions.len());
        for (i, subscription) in request.subscriptions.iter().enumerate() {
            let target_kind = match TargetKind::try_from(subscription.target_kind) {
                Ok(TargetKind::Park) => "park",
                Ok(TargetKind::Lot) => "lot",
                _ => {
                    return Err(Status::invalid_argument(format!(
                        "subscriptions[{i}].target_kind: expected park or lot"
                    )));
                }
            };
            let signal = signal_name(subscription.signal).ok_or_else(|| {
                Status::invalid_argument(format!("subscriptions[{i}].signal: unknown signal type"))
            })?;
            let weekdays = subscription
                .weekdays
                .iter()
                .map(|day| weekday_name(*day).map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Status::invalid_argument(format!(
                        "subscriptions[{i}].weekdays: unknown weekday"
                    ))
                })?;
            preferences.push(PreferenceFields {
                target_kind: target_kind.to_owned(),
                target_id: subscription.target_id.clone(),
                signal: signal.to_owned(),
                threshold: subscription.threshold.map(i64::from),
                weekdays,
                enabled: subscription.enabled,
            });
        }
        let (updated_at, removed, targets) = installations::replace_preferences(
            &self.pool,
            &request.installation_id,
            &request.secret,
            quiet_hours,
            &preferences,
        )
        .await?;
        if let Some(index) = &self.index {
            index.update(&request.installation_id, &removed, &targets).await;
        }
        Ok(Response::new(UpdatePreferencesResponse {
            installation_id: request.installation_id,
            quiet_hours: request
                .quiet_hours
                .map(|quiet| QuietHours { start: quiet.start, end: quiet.end }),
            subscriptions: request
                .subscriptions
                .into_iter()
                .map(|s| Subscription { ..s })
                .collect(),
            updated_at: Some(proto_time(updated_at)),
        }))
    }

    async fn delete_installation(
        &self,
        request: Request<DeleteInstallationRequest>,
    ) -> Result<Response<DeleteInstallationResponse>, Status> {
        let request = request.into_inner();
        let removed =
            installations::delete(&self.pool, &request.installation_id, &request.secret).await?;
        if let Some(index) = &self.index {
            index.update(&request.installation_id, &removed, &[]).await;
        }
        Ok(Response::new(DeleteInstallationResponse {}))
    }

    async fn submit_facts(
        &self,
        request: Request<SubmitFactsRequest>,
    ) -> Result<Response<SubmitFactsResponse>, Status> {
        let request = request.into_inner();
        if request.facts.len() > facts::MAX_FACTS {
            return Err(Status::invalid_argument(format!(
                "facts: {} facts, at most {}",
                request.facts.len(),
                facts::MAX_FACTS
            )));
        }
        // Converted once, here, then checked against the reference data; the whole request is refused for one
        // bad fact (see `facts`). A kind this build does not know is skipped, not an error: a newer ingest may
        // send more.
        let mut indexed = Vec::with_capacity(request.facts.len());
        for (index, fact) in request.facts.into_iter().enumerate() {
            match Fact::try_from(fact) {
                Ok(fact) => indexed.push((index, fact)),
                Err(FactError::Kind(_)) => tracing::warn!(index, "fact of an unknown kind skipped"),
                Err(FactError::Level { field, .. }) => {
                    let field = format!("facts[{index}].{field}");
                    return Err(Status::invalid_argument(format!(
                        "{field}: not a congestion level"
                    )));
                }
                Err(FactError::Time(_)) => {
                    return Err(Status::invalid_argument(format!(
                        "facts[{index}]: a timestamp is out of range"
                    )));
                }
            }
        }
        let known = facts::Known::load(&self.pool, &indexed).await.map_err(|error| {
            tracing::error!(%error, "reading reference data failed");
            Status::unavailable("the push store is unavailable")
        })?;
        facts::check(&indexed, &known).map_err(|invalid| {
            tracing::warn!(%invalid, "facts refused");
            Status::invalid_argument(invalid.to_string())
        })?;
        let facts: Vec<Fact> = indexed.into_iter().map(|(_, fact)| fact).collect();
        let submitted = pipeline::submit(&self.pool, self.index.as_ref(), &facts, self.clock.now())
            .await
            .map_err(|error| {
                tracing::error!(%error, "storing facts failed");
                Status::unavailable("the push store is unavailable")
            })?;
        self.metrics.submitted(&submitted);
        Ok(Response::new(SubmitFactsResponse {
            accepted: submitted.accepted,
            duplicates: submitted.duplicates,
            decisions: submitted.decisions,
        }))
    }

    async fn send_test(
        &self,
        request: Request<SendTestRequest>,
    ) -> Result<Response<SendTestResponse>, Status> {
        let request = request.into_inner();
        installations::authorize(&self.pool, &request.installation_id, &request.secret).await?;
        let outbox_id =
            pipeline::queue_test(&self.pool, &request.installation_id, self.clock.now())
                .await
                .map_err(InstallationError::Database)?;
        Ok(Response::new(SendTestResponse { outbox_id: outbox_id.to_string() }))
    }
}
