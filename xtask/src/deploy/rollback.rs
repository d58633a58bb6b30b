//! Whether a rollback can work, decided from the records before anything is written: returning an
//! environment to a release is refused when a release that environment was told to run since has a migration
//! the target release lacks and that is not expand. The older release's `migrate` would refuse that database
//! (`migrate::AheadByContract`), so the sync would fail exactly when a rollback is needed.

use std::{fmt, path::Path};

use super::{ledger, state};
use crate::migrations::KindName;

/// A migration that stands in a rollback's way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blocker {
    pub environment: String,
    pub migration: String,
    /// `None` when the release that shipped it did not record kinds.
    pub kind: Option<KindName>,
    /// The release that shipped it.
    pub shipped_by: String,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.map_or("kind not recorded", KindName::as_str);
        write!(
            f,
            "{}: {} ({kind}, shipped by {})",
            self.environment, self.migration, self.shipped_by
        )
    }
}

/// A refused rollback.
#[derive(Debug, thiserror::Error)]
#[error(
    "refusing to roll back to {release_id}: the database is ahead of it by migrations it cannot run \
     against:\n{}\nnothing was written; roll forward with a fix instead",
    .blockers.iter().map(|blocker| format!("  {blocker}")).collect::<Vec<_>>().join("\n")
)]
pub struct Refused {
    pub release_id: String,
    pub blockers: Vec<Blocker>,
}

/// The migrations that make returning `environments` to `release_id` unsafe (empty: it can work).
pub fn blockers(
    root: &Path,
    release_id: &str,
    environments: &[String],
) -> anyhow::Result<Vec<Blocker>> {
    let target = state::recorded_migrations(&state::record(root, release_id)?);
    let mut blockers = Vec::new();
    for environment in environments {
        let mut told: Vec<String> = ledger::desired_states(root, environment)?
            .into_iter()
            .map(|desired| desired.entry.release_id)
            .filter(|id| id != release_id)
            .collect();
        told.dedup();
        for id in told {
            for migration in state::recorded_migrations(&state::record(root, &id)?) {
                let missing = target.iter().all(|known| known.name != migration.name);
                let unsafe_kind = migration.kind != Some(KindName::Expand);
                let listed = blockers.iter().any(|blocker: &Blocker| {
                    blocker.environment == *environment && blocker.migration == migration.name
                });
                if missing && unsafe_kind && !listed {
                    blockers.push(Blocker {
                        environment: environment.clone(),
                        migration: migration.name,
                        kind: migration.kind,
                        shipped_by: id.clone(),
                    });
                }
            }
        }
    }
    Ok(blockers)
}
