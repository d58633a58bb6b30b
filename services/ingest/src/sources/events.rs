//! Seoul cultural events, every page, matched to parks. Whether the pages add up to the complete list is
//! judged by `upstream::events::Listing`; only a complete list may let an event's absence count. A link that
//! is not https is dropped (the event is stored without one) and recorded in the batch.

use contracts::freshness::SourceId;
use upstream::events::{self, Listing};

use super::{CollectError, Collector, Context, key_or_missing, parks, seoul_url};
use crate::batch::{Batch, EventReading, EventSet};

/// Seoul cultural events, every page, matched to parks.
#[derive(Debug, Default)]
pub struct CulturalEvents;

impl Collector for CulturalEvents {
    fn source(&self) -> SourceId {
        SourceId::SeoulCulturalEvents
    }

    async fn collect(&self, ctx: &Context) -> Result<Batch, CollectError> {
        let key = key_or_missing(&ctx.upstreams.seoul_openapi_key, "SEOUL_OPENAPI_KEY")?;
        let parks: Vec<events::ParkForMatching> = parks(&ctx.pool)
            .await?
            .into_iter()
            .map(|park| events::ParkForMatching {
                park_id: park.park_id,
                name_ko: park.name_ko,
                short_ko: park.short_ko,
                center: park.center,
            })
            .collect();
        let mut batch = Batch::default();
        let mut listing = Listing::new();
        while let Some((start, end)) = listing.next_range() {
            let url = seoul_url(
                &ctx.upstreams.seoul_openapi_url,
                &key,
                "culturalEventInfo",
                (start, end),
                &[],
            );
            let label = format!("culturalEventInfo {start}-{end}");
            let page = ctx
                .fetcher
                .get(&url, &label, &[])
                .await
                .and_then(|fetched| events::parse_page(&fetched.body));
            match page {
                Ok(page) => listing.add(page),
                Err(failure) if start == 1 => return Err(failure.into()),
                Err(failure) => {
                    // Later pages failed: keep what was read; the list is incomplete.
                    listing.stop(format!("{label}: {failure}"));
                    batch.record_failure(failure);
                }
            }
        }
        let (rows, verdict) = listing.finish();
        if let Err(why) = &verdict {
            tracing::info!(%why, rows = rows.len(), "incomplete event list: no absence counts");
        }
        if rows.is_empty() && batch.partial_failure.is_none() {
            batch.no_data = true;
        }
        let mut items = Vec::new();
        for event in rows {
            let Some(park) = events::match_park(&event, &parks) else { continue };
            let content_key =
                events::event_id(&event.title_ko, event.place_ko.as_deref(), event.starts_on);
            items.push(EventReading {
                url: batch.link(&content_key, event.link),
                content_key,
                park_id: park.park_id.clone(),
                title_ko: event.title_ko,
                place_ko: event.place_ko,
                starts_on: event.starts_on,
                ends_on: event.ends_on,
                free: event.free,
                cancelled: event.cancelled,
            });
        }
        batch.events = Some(EventSet {
            source: SourceId::SeoulCulturalEvents,
            items,
            complete: verdict.is_ok(),
        });
        Ok(batch)
    }
}
