//! Installation and preference bodies: `POST /v2/installations`, `PUT /v2/installations/{id}`,
//! `PUT /v2/installations/{id}/preferences`.
//!
//! An installation is anonymous: an APNs token, its environment, the locale and app version. Its secret is
//! returned once at registration and required (`Authorization: Bearer`) for every later change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Timestamp,
    enums::{closed_enum, open_enum},
    example::{Example, example_time},
};

closed_enum! {
    /// Which APNs environment the token belongs to.
    pub enum ApnsEnvironment {
        Production => "production",
        Sandbox => "sandbox",
    }
}

/// `POST /v2/installations` and `PUT /v2/installations/{id}` (token refresh).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstallationRequest {
    /// The APNs device token: hexadecimal, 64 characters or Apple's longer forms (up to 200).
    #[schemars(regex(pattern = r"^[0-9a-fA-F]{64,200}$"))]
    pub apns_token: String,
    pub apns_environment: ApnsEnvironment,
    /// BCP 47 locale of the app, e.g. `ko-KR`, `en`, `zh-Hans-CN`.
    pub locale: String,
    /// App version `MAJOR.MINOR[.PATCH]`, optionally `(BUILD)`.
    pub app_version: String,
}

/// The answer to a registration: the only time the secret is shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstallationCreated {
    pub installation_id: String,
    /// Send as `Authorization: Bearer <secret>`; it is stored only as a hash and cannot be shown again.
    pub secret: String,
    pub created_at: Timestamp,
}

/// An installation as the server holds it (never the secret).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Installation {
    pub installation_id: String,
    pub apns_environment: ApnsEnvironment,
    pub locale: String,
    pub app_version: String,
    /// `false` once APNs reported the token unregistered; a token refresh reactivates it.
    pub active: bool,
    pub updated_at: Timestamp,
}

open_enum! {
    /// What a subscription alerts about.
    pub enum SignalType {
        /// Available spaces fell below `threshold`.
        LotAvailableBelow => "lot_available_below",
        /// Available spaces rose above `threshold`.
        LotAvailableAbove => "lot_available_above",
        /// The lot became full.
        LotFull => "lot_full",
        /// Park congestion dropped by at least one level.
        CongestionEased => "congestion_eased",
        /// Park congestion rose by at least one level.
        CongestionRose => "congestion_rose",
        /// An event at the park was cancelled.
        EventCancelled => "event_cancelled",
        /// An event at the park that was shown cancelled is listed again (the cancellation was withdrawn or
        /// was only the source's listing gap). Only sent to those who ask for it.
        EventReinstated => "event_reinstated",
        /// The park was closed (e.g. flood warning).
        ParkClosed => "park_closed",
    }
}

closed_enum! {
    /// What a subscription watches.
    pub enum TargetKind {
        Park => "park",
        Lot => "lot",
    }
}

closed_enum! {
    /// Day of the week in Asia/Seoul.
    pub enum Weekday {
        Mon => "mon",
        Tue => "tue",
        Wed => "wed",
        Thu => "thu",
        Fri => "fri",
        Sat => "sat",
        Sun => "sun",
    }
}

/// Hours without alerts, in Asia/Seoul local time; may wrap midnight (`22:00`–`07:00`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct QuietHours {
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub start: String,
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub end: String,
}

/// One alert an installation wants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Subscription {
    pub target_kind: TargetKind,
    /// A `park_id` or `lot_id` from `/v2/parks`.
    pub target_id: String,
    pub signal: SignalType,
    /// Spaces, for `lot_available_below` and `lot_available_above`; must be absent for other signals.
    pub threshold: Option<u32>,
    /// Days on which the alert may fire; empty means every day.
    #[serde(default)]
    pub weekdays: Vec<Weekday>,
    /// A switched-off subscription is kept (and recorded as `preference_off` when it would have fired).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

fn enabled_by_default() -> bool {
    true
}

/// `PUT /v2/installations/{id}/preferences`: replaces the whole set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PreferencesRequest {
    pub quiet_hours: Option<QuietHours>,
    pub subscriptions: Vec<Subscription>,
}

/// The preferences the server holds for an installation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Preferences {
    pub installation_id: String,
    /// Always `Asia/Seoul`; quiet hours and weekdays are interpreted there.
    pub time_zone: String,
    pub quiet_hours: Option<QuietHours>,
    pub subscriptions: Vec<Subscription>,
    pub updated_at: Timestamp,
}

impl Example for InstallationRequest {
    fn example() -> Self {
        InstallationRequest {
            apns_token: "5b0c2a4e9f1d3c7b8a6e0f2d4c6b8a0e1f3d5c7b9a1e3f5d7c9b1a3e5f7d9c1b".into(),
            apns_environment: ApnsEnvironment::Production,
            locale: "ko-KR".into(),
            app_version: "2.3.0 (412)".into(),
        }
    }
}

impl Example for InstallationCreated {
    fn example() -> Self {
        InstallationCreated {
            installation_id: "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a".into(),
            secret: "hjs_4Jq9Zt2WmXc8Vb7Nn6Aa5Ss4Dd3Ff2Gg".into(),
            created_at: example_time(0),
        }
    }
}

impl Example for Installation {
    fn example() -> Self {
        Installation {
            installation_id: "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a".into(),
            apns_environment: ApnsEnvironment::Production,
            locale: "ko-KR".into(),
            app_version: "2.3.0 (412)".into(),
            active: true,
            updated_at: example_time(0),
        }
    }
}

impl Example for PreferencesRequest {
    fn example() -> Self {
        PreferencesRequest {
            quiet_hours: Some(QuietHours { start: "22:00".into(), end: "07:00".into() }),
            subscriptions: vec![
                Subscription {
                    target_kind: TargetKind::Lot,
                    target_id: "yeouido-2".into(),
                    signal: SignalType::LotAvailableBelow,
                    threshold: Some(50),
                    weekdays: vec![Weekday::Sat, Weekday::Sun],
                    enabled: true,
                },
                Subscription {
                    target_kind: TargetKind::Park,
                    target_id: "yeouido".into(),
                    signal: SignalType::ParkClosed,
                    threshold: None,
                    weekdays: vec![],
                    enabled: true,
                },
            ],
        }
    }
}

impl Example for Preferences {
    fn example() -> Self {
        let request = PreferencesRequest::example();
        Preferences {
            installation_id: "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a".into(),
            time_zone: "Asia/Seoul".into(),
            quiet_hours: request.quiet_hours,
            subscriptions: request.subscriptions,
            updated_at: example_time(0),
        }
    }
}
