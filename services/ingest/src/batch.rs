//! What one collection produced, in our own terms, ready to be stored in one transaction.

use contracts::{
    Timestamp,
    freshness::SourceId,
    v2::{AnomalyKind, CongestionLevel, NoticeKind, PrecipitationType, Sky},
};
use jiff::civil::Date;
use upstream::link::{HttpsUrl, Link, Rejected};

use crate::outcome::Failure;

/// The output of a collector.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub lots: Vec<LotReading>,
    pub congestion: Vec<CongestionReading>,
    pub official_forecast: Vec<OfficialForecast>,
    pub weather: Vec<WeatherReading>,
    /// Events of one source, with whether the list they came in was complete.
    pub events: Option<EventSet>,
    pub notices: Vec<NoticeReading>,
    /// Names the source used that no curated lot or park lists.
    pub unmapped: Vec<String>,
    /// The source answered "no data" for at least one request.
    pub no_data: bool,
    /// A source read as one list failed part-way (a later page); what was read is stored and the run is
    /// recorded as failed with this class.
    pub partial_failure: Option<Failure>,
    /// How each park's share of a source collected per park ended; empty for sources read as one list.
    pub parts: Vec<Part>,
    /// Impossible values the source delivered, as corrected before storing.
    pub anomalies: Vec<Anomaly>,
    /// Links of stored items that were not https and were dropped (the items are stored without them).
    pub dropped_links: Vec<DroppedLink>,
}

/// A link an item carried that is not passed on to the app.
#[derive(Clone, Debug, PartialEq)]
pub struct DroppedLink {
    /// The event or notice it belonged to.
    pub item: String,
    pub why: Rejected,
}

/// One park's share of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub park_id: String,
    pub result: PartResult,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PartResult {
    /// The park's request answered with data.
    Delivered,
    /// The park's request answered that there is nothing (`INFO-200`).
    NoData,
    Failed(Failure),
}

/// An impossible value, as the source reported it and as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    /// The lot (or other item) it concerned.
    pub item: String,
    pub reported: u32,
    pub stored: u32,
}

impl Batch {
    /// Values stored by this batch.
    pub fn items(&self) -> u32 {
        let events = self.events.as_ref().map_or(0, |set| set.items.len());
        (self.lots.len() + self.congestion.len() + self.weather.len() + events + self.notices.len())
            as u32
    }

    /// Records how one park's share ended.
    pub fn part(&mut self, park_id: &str, result: PartResult) {
        if result == PartResult::NoData {
            self.no_data = true;
        }
        self.parts.push(Part { park_id: park_id.to_owned(), result });
    }

    /// The parks whose share failed, with the failure.
    pub fn failed_parts(&self) -> impl Iterator<Item = (&str, &Failure)> {
        self.parts.iter().filter_map(|part| match &part.result {
            PartResult::Failed(failure) => Some((part.park_id.as_str(), failure)),
            _ => None,
        })
    }

    /// The outcome of a collection made of one request per park: the batch when at least one park answered
    /// (the others are recorded as failed parts), else the first failure (or drift, when there was no park to
    /// ask).
    pub fn unless_no_park_answered(self) -> Result<Batch, Failure> {
        if self.parts.iter().any(|part| !matches!(part.result, PartResult::Failed(_))) {
            return Ok(self);
        }
        Err(self
            .failed_parts()
            .next()
            .map(|(_, failure)| failure.clone())
            .unwrap_or_else(|| Failure::drift("no parks configured")))
    }

    /// The link of `item` as stored: its https URL, or `None`, recording a link that was dropped.
    pub fn link(&mut self, item: &str, link: Link) -> Option<HttpsUrl> {
        match link {
            Link::Https(url) => Some(url),
            Link::Absent => None,
            Link::Dropped(why) => {
                self.dropped_links.push(DroppedLink { item: item.to_owned(), why });
                None
            }
        }
    }

    /// Keeps the first failure of a list read part-way.
    pub fn record_failure(&mut self, failure: Failure) {
        if self.partial_failure.is_none() {
            self.partial_failure = Some(failure);
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct LotReading {
    pub lot_id: String,
    pub observed_at: Timestamp,
    /// Never above `capacity`: an impossible count is clamped and kept in `reported_available`.
    pub available: Option<u32>,
    pub capacity: Option<u32>,
    pub not_linked: bool,
    /// What the source reported when `available` was clamped.
    pub reported_available: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CongestionReading {
    pub park_id: String,
    pub observed_at: Timestamp,
    pub level: CongestionLevel,
    pub message_ko: Option<String>,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OfficialForecast {
    pub park_id: String,
    pub issued_at: Timestamp,
    pub target_at: Timestamp,
    pub level: CongestionLevel,
    pub population_min: Option<u32>,
    pub population_max: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct WeatherReading {
    pub park_id: String,
    pub observed_at: Timestamp,
    pub source: SourceId,
    pub temperature_c: Option<f64>,
    pub precipitation: Option<PrecipitationType>,
    pub sky: Option<Sky>,
    pub rain_chance_percent: Option<u8>,
    pub pm10: Option<u32>,
    pub pm25: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventSet {
    pub source: SourceId,
    pub items: Vec<EventReading>,
    /// Every page answered and the counts add up (`upstream::events::Listing`): only then may an event
    /// missing from it count as gone.
    pub complete: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventReading {
    /// Derived from the content (title, place, start date; `upstream::events::event_id`). A known event
    /// listed under a new title keeps its stored id (`crate::event_ledger`).
    pub content_key: String,
    pub park_id: String,
    pub title_ko: String,
    pub place_ko: Option<String>,
    pub starts_on: Date,
    pub ends_on: Date,
    pub free: Option<bool>,
    pub url: Option<HttpsUrl>,
    /// The organiser marked it cancelled.
    pub cancelled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NoticeReading {
    pub notice_id: String,
    /// `None`: every park.
    pub park_id: Option<String>,
    pub lot_id: Option<String>,
    pub kind: NoticeKind,
    /// The classification is reliable enough to act on (a park shown closed, an alert).
    pub reliable: bool,
    /// A notice that lifts a closure of this kind (`전면 통제 해제`): it ends the closures it lifts.
    pub lifts: Option<NoticeKind>,
    pub title_ko: String,
    pub url: Option<HttpsUrl>,
    pub source: SourceId,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
}
