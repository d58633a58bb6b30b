//! What one collection produced, in our own terms, ready to be stored in one transaction.

use contracts::{Timestamp, freshness::SourceId, v2::CongestionLevel};
use jiff::civil::Date;

use crate::outcome::Failure;

/// The output of a collector.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    pub lots: Vec<LotReading>,
    pub congestion: Vec<CongestionReading>,
    pub official_forecast: Vec<OfficialForecast>,
    pub weather: Vec<WeatherReading>,
    /// Events of one source; `complete` when every page was read, so events missing from it were removed.
    pub events: Option<EventSet>,
    pub notices: Vec<NoticeReading>,
    /// Names the source used that no curated lot or park lists.
    pub unmapped: Vec<String>,
    /// The source answered "no data" for at least one request.
    pub no_data: bool,
    /// A part of the collection failed (one region page, one park); the rest is stored and the run is
    /// recorded as failed with this class.
    pub partial_failure: Option<Failure>,
}

impl Batch {
    /// Values stored by this batch.
    pub fn items(&self) -> u32 {
        let events = self.events.as_ref().map_or(0, |set| set.items.len());
        (self.lots.len() + self.congestion.len() + self.weather.len() + events + self.notices.len())
            as u32
    }

    /// The outcome of a collection made of one request per park: the batch when at least one park answered,
    /// else the first failure (or drift, when there was no park to ask).
    pub fn unless_no_park_answered(self, answered: usize) -> Result<Batch, Failure> {
        if answered == 0 {
            return Err(self
                .partial_failure
                .unwrap_or_else(|| Failure::drift("no parks configured")));
        }
        Ok(self)
    }

    /// Keeps the first partial failure; later ones only add to its message count.
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
    pub available: Option<u32>,
    pub capacity: Option<u32>,
    pub not_linked: bool,
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
    pub precipitation: Option<&'static str>,
    pub sky: Option<&'static str>,
    pub rain_chance_percent: Option<u8>,
    pub pm10: Option<u32>,
    pub pm25: Option<u32>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventSet {
    pub source: SourceId,
    pub items: Vec<EventReading>,
    pub complete: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct EventReading {
    pub event_id: String,
    pub park_id: String,
    pub title_ko: String,
    pub place_ko: Option<String>,
    pub starts_on: Date,
    pub ends_on: Date,
    pub free: Option<bool>,
    pub url: Option<String>,
    pub cancelled: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NoticeReading {
    pub notice_id: String,
    /// `None`: every park.
    pub park_id: Option<String>,
    pub lot_id: Option<String>,
    pub kind: &'static str,
    pub title_ko: String,
    pub url: Option<String>,
    pub source: SourceId,
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
}
