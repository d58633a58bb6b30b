//! The catalogue of every public DTO and endpoint, per contract version.
//!
//! Everything that must cover "all DTOs" is driven from here: the JSON Schema documents under
//! `contracts/schemas/`, the per-DTO snapshot tests, the compatibility checker (`libs/compat`) and, later,
//! the OpenAPI documents. Adding a DTO to a version without listing it here leaves it unchecked, so the
//! snapshot test also asserts that every type reachable from an endpoint is listed.

use schemars::{JsonSchema, generate::Contract, generate::SchemaSettings};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};

use crate::{Example, v1, v2};

/// Whether the app sends a body (request) or reads it (response). Decides the schema contract: responses are
/// described as they serialize, requests as they deserialize, so `#[serde(default)]` fields are optional in
/// request schemas but required in response schemas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// One wire type of a version.
#[derive(Clone, Copy, Debug)]
pub struct Dto {
    pub name: &'static str,
    pub direction: Direction,
    schema: fn(Direction) -> Value,
    example: fn() -> Value,
    round_trip: fn() -> Result<(), RoundTripError>,
}

impl Dto {
    fn of<T: JsonSchema + Serialize + DeserializeOwned + Example>(
        name: &'static str,
        direction: Direction,
    ) -> Dto {
        Dto {
            name,
            direction,
            schema: schema_for::<T>,
            example: example_of::<T>,
            round_trip: round_trip_of::<T>,
        }
    }

    /// The JSON Schema (draft 2020-12) of this DTO under its direction's contract.
    pub fn schema(&self) -> Value {
        (self.schema)(self.direction)
    }

    /// The canonical example, as JSON.
    pub fn example(&self) -> Value {
        (self.example)()
    }

    /// Serializes the example, reads it back into the Rust type and serializes again: both JSON forms must be
    /// equal, so what we send is exactly what we (and a client mirroring the types) can read.
    pub fn check_round_trip(&self) -> Result<(), RoundTripError> {
        (self.round_trip)()
    }
}

/// A query parameter of an endpoint.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
}

/// One route of a version.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint {
    pub method: &'static str,
    pub path: &'static str,
    pub query: &'static [Param],
    /// The request body DTO, if any.
    pub request: Option<&'static str>,
    /// The success body DTO; `None` for `204 No Content`.
    pub response: Option<&'static str>,
}

/// A contract version: its DTOs and endpoints.
#[derive(Clone, Debug)]
pub struct ContractVersion {
    pub version: &'static str,
    pub dtos: Vec<Dto>,
    pub endpoints: Vec<Endpoint>,
}

const LANG: Param = Param { name: "lang", required: false };

/// Every version the api serves, oldest first.
pub fn versions() -> Vec<ContractVersion> {
    vec![v1(), v2()]
}

fn v1() -> ContractVersion {
    ContractVersion {
        version: "v1",
        dtos: vec![Dto::of::<v1::HomeSummary>("HomeSummary", Direction::Response)],
        endpoints: vec![Endpoint {
            method: "GET",
            path: "/v1/home-summary",
            query: &[LANG],
            request: None,
            response: Some("HomeSummary"),
        }],
    }
}

fn v2() -> ContractVersion {
    use Direction::{Request, Response};
    let get = |path, query, response| Endpoint {
        method: "GET",
        path,
        query,
        request: None,
        response: Some(response),
    };
    ContractVersion {
        version: "v2",
        dtos: vec![
            Dto::of::<v2::HomeSummary>("HomeSummary", Response),
            Dto::of::<v2::ParkList>("ParkList", Response),
            Dto::of::<v2::ParkDetail>("ParkDetail", Response),
            Dto::of::<v2::LotForecast>("LotForecast", Response),
            Dto::of::<v2::ParkForecast>("ParkForecast", Response),
            Dto::of::<v2::ParkingWidget>("ParkingWidget", Response),
            Dto::of::<v2::ParkWidget>("ParkWidget", Response),
            Dto::of::<v2::InstallationRequest>("InstallationRequest", Request),
            Dto::of::<v2::InstallationCreated>("InstallationCreated", Response),
            Dto::of::<v2::Installation>("Installation", Response),
            Dto::of::<v2::PreferencesRequest>("PreferencesRequest", Request),
            Dto::of::<v2::Preferences>("Preferences", Response),
            Dto::of::<v2::Status>("Status", Response),
            Dto::of::<v2::AppConfig>("AppConfig", Response),
            Dto::of::<v2::ErrorEnvelope>("ErrorEnvelope", Response),
        ],
        endpoints: vec![
            get("/v2/home-summary", &[LANG], "HomeSummary"),
            get("/v2/parks", &[LANG], "ParkList"),
            get("/v2/parks/{park_id}", &[LANG], "ParkDetail"),
            get("/v2/lots/{lot_id}/forecast", &[], "LotForecast"),
            get("/v2/parks/{park_id}/forecast", &[], "ParkForecast"),
            get(
                "/v2/widgets/parking",
                &[Param { name: "lot_ids", required: true }, LANG],
                "ParkingWidget",
            ),
            get("/v2/widgets/park/{park_id}", &[LANG], "ParkWidget"),
            Endpoint {
                method: "POST",
                path: "/v2/installations",
                query: &[],
                request: Some("InstallationRequest"),
                response: Some("InstallationCreated"),
            },
            Endpoint {
                method: "PUT",
                path: "/v2/installations/{installation_id}",
                query: &[],
                request: Some("InstallationRequest"),
                response: Some("Installation"),
            },
            Endpoint {
                method: "PUT",
                path: "/v2/installations/{installation_id}/preferences",
                query: &[],
                request: Some("PreferencesRequest"),
                response: Some("Preferences"),
            },
            Endpoint {
                method: "DELETE",
                path: "/v2/installations/{installation_id}",
                query: &[],
                request: None,
                response: None,
            },
            get("/v2/status", &[], "Status"),
            get("/v2/config", &[Param { name: "installation_id", required: false }], "AppConfig"),
        ],
    }
}

/// The schema of `T` as the given direction sees it.
pub fn schema_for<T: JsonSchema>(direction: Direction) -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.contract = match direction {
        Direction::Request => Contract::Deserialize,
        Direction::Response => Contract::Serialize,
    };
    settings.into_generator().into_root_schema_for::<T>().to_value()
}

fn example_of<T: Serialize + Example>() -> Value {
    serde_json::to_value(T::example()).expect("examples serialize")
}

/// Why an example did not survive serializing and reading back.
#[derive(Debug, thiserror::Error)]
pub enum RoundTripError {
    #[error("the example does not read back: {0}")]
    Unreadable(#[from] serde_json::Error),
    #[error("{sent} came back as {resent}")]
    Changed { sent: Value, resent: Value },
}

fn round_trip_of<T: Serialize + DeserializeOwned + Example>() -> Result<(), RoundTripError> {
    let sent = example_of::<T>();
    let read: T = serde_json::from_value(sent.clone())?;
    let resent = serde_json::to_value(read)?;
    if sent == resent { Ok(()) } else { Err(RoundTripError::Changed { sent, resent }) }
}

impl ContractVersion {
    /// The version's schema document: endpoints plus every DTO's schema. Committed as
    /// `contracts/schemas/<version>.json` and, when released, as a baseline under `contracts/released/`.
    pub fn schema_document(&self) -> Value {
        let endpoints: Vec<Value> = self
            .endpoints
            .iter()
            .map(|endpoint| {
                let query: Vec<Value> = endpoint
                    .query
                    .iter()
                    .map(|param| json!({"name": param.name, "required": param.required}))
                    .collect();
                json!({
                    "method": endpoint.method,
                    "path": endpoint.path,
                    "query": query,
                    "request": endpoint.request,
                    "response": endpoint.response,
                })
            })
            .collect();
        let dtos: serde_json::Map<String, Value> = self
            .dtos
            .iter()
            .map(|dto| {
                (
                    dto.name.to_owned(),
                    json!({"direction": dto.direction.as_str(), "schema": dto.schema()}),
                )
            })
            .collect();
        json!({"version": self.version, "endpoints": endpoints, "dtos": dtos})
    }

    pub fn dto(&self, name: &str) -> Option<&Dto> {
        self.dtos.iter().find(|dto| dto.name == name)
    }
}
