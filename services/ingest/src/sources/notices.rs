//! The Hangang headquarters' notice board: every entry classified by `upstream::notices::classify`.

use contracts::freshness::SourceId;
use upstream::notices;

use super::{CollectError, Collector, Context, parks};
use crate::{
    batch::{Batch, NoticeReading},
    outcome::{ErrorClass, Failure},
};

/// The Hangang headquarters' notice board.
#[derive(Debug, Default)]
pub struct NoticeBoard;

impl Collector for NoticeBoard {
    fn source(&self) -> SourceId {
        SourceId::HangangNotices
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, CollectError> {
        let Some(url) = &ctx.upstreams.notices_url else {
            return Err(
                Failure::new(ErrorClass::Auth, "HANGANG_NOTICES_URL is not configured").into()
            );
        };
        let names: Vec<notices::ParkNames> = parks(&ctx.pool)
            .await?
            .into_iter()
            .map(|park| notices::ParkNames {
                park_id: park.park_id,
                name_ko: park.name_ko,
                short_ko: park.short_ko,
            })
            .collect();
        let fetched = ctx.fetcher.get(url, "notice board", &[]).await?;
        let board = notices::parse_board(&String::from_utf8_lossy(&fetched.body), url, &names)?;
        let no_data = board.is_empty();
        let notices = board
            .into_iter()
            .map(|notice| NoticeReading {
                notice_id: notices::notice_id(
                    &notice.title_ko,
                    notice.url.as_deref(),
                    notice.posted_at,
                ),
                // An inference for every park is never acted on without an operator.
                reliable: notice.classification.reliable && notice.park_id.is_some(),
                park_id: notice.park_id,
                lot_id: None,
                kind: notice.classification.kind,
                lifts: notice.classification.lifts,
                title_ko: notice.title_ko,
                url: notice.url,
                source: SourceId::HangangNotices,
                starts_at: Some(notice.posted_at),
                ends_at: None,
            })
            .collect();
        Ok(Batch { notices, no_data, ..Batch::default() })
    }
}
