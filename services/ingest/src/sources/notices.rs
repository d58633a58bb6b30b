//! The Hangang headquarters' notice board: every entry classified by `upstream::notices::classify`.
//!
//! The page is parsed on a blocking thread (`spawn_blocking`): building the HTML tree of a real board takes
//! milliseconds and of a hostile page within the caps much longer, which the async runtime must not spend. The parser's caps (nesting
//! depth, entries) make an oversized page a failed run of class `too_large`; a parser that panicked anyway is
//! a failed run too, never a crashed collector. Links that are not https are dropped and recorded.

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
        let fetched = ctx.fetcher.get(url.as_str(), "notice board", &[]).await?;
        let base_url = url.as_str().to_owned();
        let parsed = tokio::task::spawn_blocking(move || {
            notices::parse_board(&String::from_utf8_lossy(&fetched.body), &base_url, &names)
        })
        .await;
        let board = match parsed {
            Ok(board) => board?,
            Err(join) => {
                return Err(Failure::new(
                    ErrorClass::UnexpectedContent,
                    format!("notice board: the parser stopped ({join})"),
                )
                .into());
            }
        };
        let no_data = board.is_empty();
        let mut batch = Batch { no_data, ..Batch::default() };
        for notice in board {
            let url = batch.link(&notice.notice_id, notice.link);
            batch.notices.push(NoticeReading {
                // An inference for every park is never acted on without an operator.
                reliable: notice.classification.reliable && notice.park_id.is_some(),
                notice_id: notice.notice_id,
                park_id: notice.park_id,
                lot_id: None,
                kind: notice.classification.kind,
                lifts: notice.classification.lifts,
                title_ko: notice.title_ko,
                url,
                source: SourceId::HangangNotices,
                starts_at: Some(notice.posted_at),
                ends_at: None,
            });
        }
        Ok(batch)
    }
}
