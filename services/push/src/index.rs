//! The Redis preference index: for each park and lot, the set of installations with a preference on it, so a
//! fact finds its candidates without scanning preferences. PostgreSQL stays the source of truth, and the index
//! never answers "nobody" when it does not know:
//!
//! - every park's and lot's set holds a sentinel member, written by each rebuild, so a set that is missing
//!   (evicted: Redis runs `allkeys-lru` for its caches, or created after the rebuild) is told apart from an
//!   empty one, and the lookup falls back to PostgreSQL instead of reading it as "no subscriber";
//! - writes update the index after the preference change commits; if Redis cannot be written, the failure
//!   bumps a generation counter, and the index is ready only while the generation its last rebuild started
//!   from is still current, so a rebuild racing a failed update cannot mark the index ready without that
//!   update (lookups use PostgreSQL until a later rebuild);
//! - every replica rebuilds it from PostgreSQL at start-up and every hour (rebuilding only adds);
//! - a stale member (a preference since removed) is harmless: candidates are loaded from PostgreSQL by
//!   installation *and* target, so it matches nothing.

use cache::{Cache, Key};
use sqlx::PgPool;

/// The member every target set carries, so an existing set is never empty; never an installation id (those
/// are UUIDs).
const SENTINEL: &str = "-";

/// How many times a rebuild is retried at once when an update failed while it ran.
const REBUILD_ATTEMPTS: u32 = 3;

/// The generation a rebuild started from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generation(Vec<u8>);

/// The index over a cache.
#[derive(Clone, Debug)]
pub struct PreferenceIndex {
    pub cache: Cache,
}

impl PreferenceIndex {
    /// The set of installations with a preference on a park (`kind` `park`) or a lot (`lot`).
    pub fn target_key(&self, kind: &str, id: &str) -> Key {
        self.cache.key(&["v1", "push", "prefs", kind, id])
    }

    /// The generation the last completed rebuild started from.
    fn ready_key(&self) -> Key {
        self.cache.key(&["v1", "push", "prefs", "ready"])
    }

    /// The current generation, bumped by every update that could not be written.
    fn generation_key(&self) -> Key {
        self.cache.key(&["v1", "push", "prefs", "generation"])
    }

    /// Installations with a preference on the park or lot; `None` when the index cannot answer for them now
    /// (not ready, an update lost since the last rebuild, or a target's set missing).
    pub async fn candidates(&self, park_id: &str, lot_id: Option<&str>) -> Option<Vec<String>> {
        let mut keys = vec![self.target_key("park", park_id)];
        if let Some(lot_id) = lot_id {
            keys.push(self.target_key("lot", lot_id));
        }
        let (generations, existing, members) = self
            .cache
            .read_together(&[self.ready_key(), self.generation_key()], &keys)
            .await
            .ok()?;
        let [Some(ready), Some(current)] = generations.as_slice() else { return None };
        if ready != current {
            return None;
        }
        if existing < keys.len() {
            tracing::warn!(
                park_id,
                lot_id,
                "a preference set is missing from the index; using PostgreSQL"
            );
            return None;
        }
        Some(members.into_iter().filter(|member| member != SENTINEL).collect())
    }

    /// Records that `installation_id` now has preferences on `targets` (kind, id) and no longer on `removed`.
    pub async fn update(
        &self,
        installation_id: &str,
        removed: &[(String, String)],
        targets: &[(String, String)],
    ) {
        let mut result = Ok(());
        for (kind, id) in removed {
            if !targets.contains(&(kind.clone(), id.clone())) {
                result = result.and(
                    self.cache.set_remove(&self.target_key(kind, id), &[installation_id]).await,
                );
            }
        }
        for (kind, id) in targets {
            result = result.and(
                self.cache.set_add(&self.target_key(kind, id), &[SENTINEL, installation_id]).await,
            );
        }
        if let Err(error) = result {
            tracing::warn!(%error, "preference index not updated; falling back to PostgreSQL until rebuilt");
            self.invalidate().await;
        }
    }

    /// Makes the index unusable until the next rebuild completes (an update could not be written).
    pub async fn invalidate(&self) {
        if let Err(error) = self.cache.increment(&self.generation_key()).await {
            tracing::warn!(%error, "the preference index's generation could not be bumped");
        }
    }

    /// Adds every preference in PostgreSQL to the index, gives every park and lot its set, and marks the index
    /// ready at the generation it started from. Returns the preference entries written and whether the index
    /// is ready (`false`: an update failed meanwhile, so what was read may lack it).
    pub async fn rebuild(&self, pool: &PgPool) -> anyhow::Result<(usize, bool)> {
        let generation = self.begin_rebuild().await?;
        let entries = self.fill(pool).await?;
        Ok((entries, self.finish_rebuild(generation).await?))
    }

    /// A rebuild's first step: the generation it starts from (read before PostgreSQL is).
    pub async fn begin_rebuild(&self) -> anyhow::Result<Generation> {
        self.cache.set_if_absent(&self.generation_key(), "0").await?;
        Ok(Generation(self.cache.get(&self.generation_key()).await?.unwrap_or_default()))
    }

    /// Writes every park's and lot's set (with the sentinel) and every preference in PostgreSQL into them.
    pub async fn fill(&self, pool: &PgPool) -> anyhow::Result<usize> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "select distinct installation_id, target_kind, target_id from push.preference",
        )
        .fetch_all(pool)
        .await?;
        let targets: Vec<(String, String)> = sqlx::query_as(
            "select 'park', park_id from reference.park union all select 'lot', lot_id from reference.lot",
        )
        .fetch_all(pool)
        .await?;
        for (kind, id) in &targets {
            self.cache.set_add(&self.target_key(kind, id), &[SENTINEL]).await?;
        }
        for (installation_id, kind, id) in &rows {
            self.cache.set_add(&self.target_key(kind, id), &[SENTINEL, installation_id]).await?;
        }
        Ok(rows.len())
    }

    /// Marks the index ready at `generation`; whether that is still the current one (else an update failed
    /// during the rebuild and the index stays unusable until the next).
    pub async fn finish_rebuild(&self, generation: Generation) -> anyhow::Result<bool> {
        self.cache.set(&self.ready_key(), &generation.0, None).await?;
        let current = self.cache.get(&self.generation_key()).await?;
        Ok(current.as_deref() == Some(generation.0.as_slice()))
    }

    /// Rebuilds now and every `every` until `shutdown`.
    pub async fn keep_rebuilt(
        self,
        pool: PgPool,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            for attempt in 1..=REBUILD_ATTEMPTS {
                match self.rebuild(&pool).await {
                    Ok((entries, true)) => {
                        tracing::info!(entries, "preference index rebuilt");
                        break;
                    }
                    Ok((entries, false)) => tracing::warn!(
                        entries,
                        attempt,
                        "an update failed during the preference index rebuild; rebuilding again"
                    ),
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "preference index rebuild failed; using PostgreSQL"
                        );
                        break;
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
