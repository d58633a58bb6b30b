//! The Redis preference index: for each park and lot, the set of installations with a preference on it, so a
//! fact finds its candidates without scanning preferences. PostgreSQL stays the source of truth:
//!
//! - writes update the index after the preference change commits; if Redis cannot be written, the index is
//!   marked not ready and lookups fall back to PostgreSQL until it is rebuilt;
//! - every replica rebuilds it from PostgreSQL at start-up and every hour (rebuilding only adds);
//! - a stale member (a preference since removed) is harmless: candidates are loaded from PostgreSQL by
//!   installation *and* target, so it matches nothing.

use cache::{Cache, Key};
use sqlx::PgPool;

/// The index over a cache.
#[derive(Clone, Debug)]
pub struct PreferenceIndex {
    pub cache: Cache,
}

impl PreferenceIndex {
    fn target_key(&self, kind: &str, id: &str) -> Key {
        self.cache.key(&["v1", "push", "prefs", kind, id])
    }

    fn ready_key(&self) -> Key {
        self.cache.key(&["v1", "push", "prefs", "ready"])
    }

    /// Installations with a preference on the park or lot; `None` when the index cannot be trusted now.
    pub async fn candidates(&self, park_id: &str, lot_id: Option<&str>) -> Option<Vec<String>> {
        self.cache.get(&self.ready_key()).await.ok()??;
        let mut keys = vec![self.target_key("park", park_id)];
        if let Some(lot_id) = lot_id {
            keys.push(self.target_key("lot", lot_id));
        }
        self.cache.set_union(&keys).await.ok()
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
            result = result
                .and(self.cache.set_add(&self.target_key(kind, id), &[installation_id]).await);
        }
        if let Err(error) = result {
            tracing::warn!(%error, "preference index not updated; falling back to PostgreSQL until rebuilt");
            let _ = self.cache.delete(&self.ready_key()).await;
        }
    }

    /// Adds every preference in PostgreSQL to the index and marks it ready. Returns the entries written.
    pub async fn rebuild(&self, pool: &PgPool) -> anyhow::Result<usize> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "select distinct installation_id, target_kind, target_id from push.preference",
        )
        .fetch_all(pool)
        .await?;
        for (installation_id, kind, id) in &rows {
            self.cache.set_add(&self.target_key(kind, id), &[installation_id]).await?;
        }
        self.cache.set(&self.ready_key(), b"1", None).await?;
        Ok(rows.len())
    }

    /// Rebuilds now and every `every` until `shutdown`.
    pub async fn keep_rebuilt(
        self,
        pool: PgPool,
        every: std::time::Duration,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            match self.rebuild(&pool).await {
                Ok(entries) => tracing::info!(entries, "preference index rebuilt"),
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "preference index rebuild failed; using PostgreSQL"
                ),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
