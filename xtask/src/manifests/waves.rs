//! The Argo CD sync order that works on the very first install, as data: where each object must sit
//! (phase, hook or not, wave), and where the annotations put it.
//!
//! Argo CD orders a sync by phase, then wave, then kind. PreSync hooks run before *every* Sync wave, so a
//! migration there would find no PostgreSQL on a first install (argo-cd#5086); it is a Sync hook in an early
//! wave instead, after the data stores and before anything that needs the new schema.

use std::fmt;

use super::object::Object;

pub const HOOK: &str = "argocd.argoproj.io/hook";
pub const SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
pub const HOOK_DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";

/// Where in a sync an object is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    /// `None` for a plain resource, else the hook phase (`PreSync`, `Sync`, `PostSync`, `SyncFail`).
    pub hook: Option<&'static str>,
    pub wave: i32,
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hook {
            Some(phase) => write!(f, "{phase} hook, wave {}", self.wave),
            None => write!(f, "Sync phase, wave {}", self.wave),
        }
    }
}

const fn resource(wave: i32) -> Placement {
    Placement { hook: None, wave }
}

const fn hook(phase: &'static str, wave: i32) -> Placement {
    Placement { hook: Some(phase), wave }
}

/// Where `object` belongs, with the reason; `None` for an object the table does not know (itself a failure:
/// every new object must be placed on purpose).
pub fn expected(object: &Object<'_>) -> Option<(Placement, &'static str)> {
    // Namespace-wide plumbing first: everything after may reference it.
    if matches!(object.kind(), "ServiceAccount" | "ConfigMap" | "NetworkPolicy") {
        return Some((resource(-3), "accounts, configuration and network policies come first"));
    }
    if object.kind() == "ClusterPolicy" {
        return Some((
            resource(-3),
            "image verification is in force before any pod of the release is admitted",
        ));
    }
    Some(match object.component() {
        "hangang-postgres" | "hangang-redis" => {
            (resource(-2), "the data stores must be up before the migration hook runs")
        }
        "hangang-migrate" => (
            hook("Sync", -1),
            "migrations run as a Sync hook after the data stores (a PreSync hook would run before them)",
        ),
        "hangang-api" => (resource(0), "the api starts once the schema is migrated"),
        "hangang-ingest" | "hangang-forecast" | "hangang-push" => {
            (resource(1), "the workers start after the api they warm and serve")
        }
        "hangang-smoke" => {
            (hook("PostSync", 0), "the smoke check runs after everything is applied and Healthy")
        }
        _ => return None,
    })
}

/// Annotations that do not say where an object goes.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("unknown hook phase `{0}`")]
    HookPhase(String),
    #[error("sync-wave `{0}` is not an integer")]
    SyncWave(String),
}

/// Where the annotations actually put `object`, or why they cannot be read.
pub fn actual(object: &Object<'_>) -> Result<Placement, Unreadable> {
    let hook = match object.annotation(HOOK) {
        None => None,
        Some(phase @ ("PreSync" | "Sync" | "PostSync" | "SyncFail" | "Skip")) => {
            Some(static_phase(phase))
        }
        Some(other) => return Err(Unreadable::HookPhase(other.to_owned())),
    };
    let wave = match object.annotation(SYNC_WAVE) {
        None => 0,
        Some(text) => text.parse().map_err(|_| Unreadable::SyncWave(text.to_owned()))?,
    };
    Ok(Placement { hook, wave })
}

fn static_phase(phase: &str) -> &'static str {
    match phase {
        "PreSync" => "PreSync",
        "Sync" => "Sync",
        "PostSync" => "PostSync",
        "SyncFail" => "SyncFail",
        _ => "Skip",
    }
}
