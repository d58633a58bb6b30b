//! `GET /v2/config`: what the server decides for the calling build — the builds it should update from and
//! the feature switches that are on for it — read from the environment's features file.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    example::{Example, example_time},
};

/// The server's answer for one app build (and, for switches rolled out to a share of installations, one
/// installation).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AppConfig {
    pub generated_at: Timestamp,
    /// Until when the app may act on this answer before asking again: switches change with the deployment's
    /// configuration, not with time, so this is a fixed period after `generated_at`.
    pub valid_until: Timestamp,
    /// Builds (`CFBundleVersion`) below this one are no longer supported: the app asks the user to update.
    /// `null` when every build is.
    pub minimum_supported_build: Option<String>,
    /// Builds below this one are told that an update is available; `null` when none is recommended.
    pub recommended_build: Option<String>,
    /// Every server feature switch by name, on or off for the calling build. A name the app does not know is
    /// ignored; a name it knows that is missing means off.
    pub switches: BTreeMap<String, bool>,
}

impl Example for AppConfig {
    fn example() -> Self {
        AppConfig {
            generated_at: example_time(0),
            valid_until: example_time(900),
            minimum_supported_build: Some("400".into()),
            recommended_build: Some("431".into()),
            switches: BTreeMap::from([
                ("lot_forecast_card".to_owned(), true),
                ("park_events_tab".to_owned(), false),
            ]),
        }
    }
}
