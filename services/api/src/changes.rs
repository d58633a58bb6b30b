//! Data changes: every writer `NOTIFY`s after committing (`db::notify_data_changed`), and the api drops its
//! hot copies so the next request sees the change within a second rather than after a hot-cache period.

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::store::SnapshotStore;

pub(crate) async fn subscribe(
    store: &SnapshotStore,
) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(store.db()).await?;
    listener.listen(db::DATA_CHANGED_CHANNEL).await?;
    Ok(listener)
}

/// Listens for data changes and drops hot copies so the next request sees them (within a second of the
/// writer's commit instead of a hot-cache period). Reconnects after errors until `shutdown`; while it is
/// disconnected, hot copies still expire by themselves.
pub(crate) async fn listen_for_changes(
    store: Arc<SnapshotStore>,
    mut subscribed: Option<sqlx::postgres::PgListener>,
    shutdown: CancellationToken,
) {
    loop {
        let listening = async {
            let mut listener = match subscribed.take() {
                Some(listener) => listener,
                None => subscribe(&store).await?,
            };
            // A reconnect may have missed notifications: start from a clean slate.
            store.invalidate().await;
            loop {
                listener.recv().await?;
                store.invalidate().await;
            }
            #[allow(unreachable_code)]
            Ok::<(), sqlx::Error>(())
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            result = listening => {
                if let Err(error) = result {
                    tracing::warn!(%error, "change listener lost its connection; retrying");
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
