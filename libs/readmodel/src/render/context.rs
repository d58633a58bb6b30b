//! The rendering context: the snapshot, the language, the instant, and the earliest instant at which the body
//! being rendered would change by time alone (its `valid_until`), noted by every rule that reads the clock.

use std::{cell::Cell, collections::BTreeMap};

use contracts::{
    Timestamp,
    freshness::{Freshness, SourceId},
    seoul,
    v2::{self, Lang},
};

use crate::{
    freshness::{Evidence, Health},
    snapshot::Snapshot,
};

/// One body being rendered.
#[derive(Debug)]
pub(crate) struct Render<'a> {
    pub snapshot: &'a Snapshot,
    pub lang: Lang,
    pub now: Timestamp,
    valid_until: Cell<Option<Timestamp>>,
}

impl<'a> Render<'a> {
    pub fn new(snapshot: &'a Snapshot, lang: Lang, now: Timestamp) -> Render<'a> {
        Render { snapshot, lang, now, valid_until: Cell::new(None) }
    }

    /// Notes that what was just rendered changes at `instant` (when it lies ahead).
    pub fn changes_at(&self, instant: Option<Timestamp>) {
        if let Some(instant) = instant.filter(|&instant| instant > self.now) {
            let until = self.valid_until.get().map_or(instant, |until| until.min(instant));
            self.valid_until.set(Some(until));
        }
    }

    /// The earliest noted change: the body's `valid_until`.
    pub fn valid_until(&self) -> Option<Timestamp> {
        self.valid_until.get()
    }

    /// The freshness of one value, noting when it turns stale and expired.
    pub fn assess(&self, evidence: Evidence) -> Freshness {
        let freshness = evidence.assess(self.now);
        self.changes_at(freshness.stale_at);
        self.changes_at(freshness.expires_at);
        freshness
    }

    /// A source's health, narrowed to `part` (a park) where the source is collected per park.
    pub fn health(&self, source: SourceId, part: Option<&str>) -> Option<Health> {
        self.snapshot.source(source).map(|health| Health::of(health, part))
    }

    /// Whether something announced for `[starts_at, ends_at)` is in force now; its edges are changes.
    pub fn is_active(&self, starts_at: Option<Timestamp>, ends_at: Option<Timestamp>) -> bool {
        self.changes_at(starts_at);
        self.changes_at(ends_at);
        starts_at.is_none_or(|start| start <= self.now) && ends_at.is_none_or(|end| self.now < end)
    }

    /// Today's date in Seoul; the next midnight there is a change.
    pub fn today(&self) -> jiff::civil::Date {
        self.changes_at(seoul::next_midnight(self.now));
        seoul::date(self.now)
    }

    /// A curated name in the body's language, falling back to Korean.
    pub fn name(&self, names: &BTreeMap<String, String>, name_ko: &str) -> String {
        if self.lang == Lang::Ko {
            return name_ko.to_owned();
        }
        names.get(self.lang.as_str()).cloned().unwrap_or_else(|| name_ko.to_owned())
    }

    /// Public-data text in the body's language where a translation exists, else the Korean original (and
    /// says so).
    pub fn text(&self, source_text: &str) -> v2::LocalizedText {
        let translated = (self.lang != Lang::Ko)
            .then(|| self.snapshot.translations.get(source_text)?.get(self.lang.as_str()))
            .flatten();
        match translated {
            Some(text) => v2::LocalizedText {
                text: text.clone(),
                lang: self.lang,
                source_text: source_text.to_owned(),
            },
            None => v2::LocalizedText {
                text: source_text.to_owned(),
                lang: Lang::Ko,
                source_text: source_text.to_owned(),
            },
        }
    }
}
