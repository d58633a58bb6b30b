//! The operator path for closures that must reach users within minutes, without waiting for the notice board:
//! `hangang-ingest notice add …` and `notice end …`. An operator notice is stored like a board notice (source
//! `operator`); a park closure also becomes a fact for push; the api is notified at once.

use anyhow::{Context as _, bail};
use contracts::Timestamp;
use contracts::{enums::WireEnum, fact::FactBatch, v2::NoticeKind};
use sqlx::PgPool;

use crate::store::{self, Peers};

/// A notice kind an operator may announce, named on the command line as on the wire (`park_closure`) or with
/// dashes (`park-closure`).
#[derive(Debug, thiserror::Error)]
#[error(
    "`{0}` is not a notice kind; one of: park-closure, lot-closure, control, facility-closure, general"
)]
pub struct UnknownKind(String);

pub fn parse_kind(name: &str) -> Result<NoticeKind, UnknownKind> {
    NoticeKind::from_wire(&name.replace('-', "_")).ok_or_else(|| UnknownKind(name.to_owned()))
}

/// A new operator notice.
#[derive(Clone, Debug)]
pub struct NewNotice {
    /// `None`: every park.
    pub park_id: Option<String>,
    pub lot_id: Option<String>,
    pub kind: NoticeKind,
    pub title_ko: String,
    /// Only https links reach the app, from operators as from the board.
    pub url: Option<upstream::link::HttpsUrl>,
    pub starts_at: Timestamp,
    pub ends_at: Option<Timestamp>,
}

/// Stores the notice; returns its id.
pub async fn add(pool: &PgPool, notice: &NewNotice, peers: Peers) -> anyhow::Result<String> {
    if notice.title_ko.trim().is_empty() {
        bail!("--title must not be empty");
    }
    if notice.kind == NoticeKind::LotClosure && notice.lot_id.is_none() {
        bail!("a lot closure needs --lot");
    }
    let mut tx = pool.begin().await?;
    if let Some(park_id) = &notice.park_id {
        let known: Option<(String,)> =
            sqlx::query_as("select park_id from reference.park where park_id = $1")
                .bind(park_id)
                .fetch_optional(&mut *tx)
                .await?;
        known.with_context(|| format!("no park `{park_id}` (see reference.park)"))?;
    }
    if let Some(lot_id) = &notice.lot_id {
        let park: Option<(String,)> =
            sqlx::query_as("select park_id from reference.lot where lot_id = $1")
                .bind(lot_id)
                .fetch_optional(&mut *tx)
                .await?;
        let (park,) = park.with_context(|| format!("no lot `{lot_id}` (see reference.lot)"))?;
        if notice.park_id.as_ref().is_some_and(|park_id| *park_id != park) {
            bail!("lot `{lot_id}` belongs to park `{park}`");
        }
    }
    let notice_id = format!(
        "op-{}",
        &db::translation_key(&format!(
            "{}|{:?}|{}",
            notice.title_ko, notice.park_id, notice.starts_at
        ))[..16]
    );
    sqlx::query(
        "insert into ingest.notice (notice_id, park_id, lot_id, kind, title_ko, url, source, starts_at, ends_at,
                                    reliable)
         values ($1, $2, $3, $4, $5, $6, 'operator', $7, $8, true)
         on conflict (notice_id) do nothing",
    )
    .bind(&notice_id)
    .bind(&notice.park_id)
    .bind(&notice.lot_id)
    .bind(notice.kind.as_str())
    .bind(&notice.title_ko)
    .bind(notice.url.as_ref().map(|url| url.as_str()))
    .bind(db::db_time(notice.starts_at))
    .bind(notice.ends_at.map(db::db_time))
    .execute(&mut *tx)
    .await?;
    if notice.kind == NoticeKind::ParkClosure && peers.push {
        let facts = store::park_closed_facts(
            &mut tx,
            &notice_id,
            notice.park_id.as_deref(),
            notice.starts_at,
        )
        .await?;
        crate::outbox::enqueue(&mut tx, &crate::outbox::Message::Facts(FactBatch { facts }))
            .await?;
    }
    db::notify_data_changed(&mut *tx, "operator").await?;
    tx.commit().await?;
    Ok(notice_id)
}

/// Ends a notice now (any source).
pub async fn end(pool: &PgPool, notice_id: &str, at: Timestamp) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    let ended = sqlx::query(
        "update ingest.notice set ends_at = $2, updated_at = now() where notice_id = $1",
    )
    .bind(notice_id)
    .bind(db::db_time(at))
    .execute(&mut *tx)
    .await?;
    if ended.rows_affected() == 0 {
        bail!("no notice `{notice_id}`");
    }
    db::notify_data_changed(&mut *tx, "operator").await?;
    tx.commit().await?;
    Ok(())
}
