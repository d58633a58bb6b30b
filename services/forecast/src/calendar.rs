//! Day types in Asia/Seoul: weekends and Korean public holidays behave alike at the parks.

use std::{collections::BTreeSet, sync::LazyLock};

use contracts::Timestamp;
use jiff::civil::{Date, Weekday};

const HOLIDAYS_TOML: &str = include_str!("../holidays.toml");

static HOLIDAYS: LazyLock<BTreeSet<Date>> = LazyLock::new(|| {
    #[derive(serde::Deserialize)]
    struct File {
        dates: Vec<String>,
    }
    let file: File = toml::from_str(HOLIDAYS_TOML).expect("holidays.toml is valid (tested)");
    file.dates
        .iter()
        .map(|date| date.parse().expect("holidays.toml dates are YYYY-MM-DD (tested)"))
        .collect()
});

/// The curated holidays, for SQL that needs them.
pub fn holidays() -> Vec<Date> {
    HOLIDAYS.iter().copied().collect()
}

/// Weekday or weekend (weekends and holidays).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DayType {
    Weekday,
    Weekend,
}

impl DayType {
    pub fn as_str(self) -> &'static str {
        match self {
            DayType::Weekday => "weekday",
            DayType::Weekend => "weekend",
        }
    }

    /// Reads the spelling stored in `forecast.baseline` and computed by the rollup queries.
    pub fn from_stored(text: &str) -> DayType {
        if text == DayType::Weekend.as_str() { DayType::Weekend } else { DayType::Weekday }
    }
}

fn seoul(instant: Timestamp) -> jiff::civil::DateTime {
    contracts::seoul::datetime(instant)
}

pub fn is_holiday(instant: Timestamp) -> bool {
    HOLIDAYS.contains(&seoul(instant).date())
}

pub fn day_type(instant: Timestamp) -> DayType {
    let local = seoul(instant);
    if matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday)
        || HOLIDAYS.contains(&local.date())
    {
        DayType::Weekend
    } else {
        DayType::Weekday
    }
}

/// The quarter-hour slot of the day in Seoul, 0..=95.
pub fn slot(instant: Timestamp) -> i16 {
    let local = seoul(instant);
    (i16::from(local.hour()) * 4) + i16::from(local.minute()) / 15
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kst(text: &str) -> Timestamp {
        contracts::seoul::instant(text.parse().unwrap()).unwrap()
    }

    #[test]
    fn holidays_and_weekends_are_weekend_days() {
        assert!(holidays().len() > 30);
        assert_eq!(day_type(kst("2026-06-13T15:00")), DayType::Weekend, "Saturday");
        assert_eq!(day_type(kst("2026-06-15T15:00")), DayType::Weekday, "Monday");
        assert_eq!(day_type(kst("2026-09-24T15:00")), DayType::Weekend, "Chuseok, a Thursday");
        assert!(is_holiday(kst("2026-09-24T15:00")));
    }

    #[test]
    fn slots_are_quarter_hours_in_seoul() {
        assert_eq!(slot(kst("2026-06-13T00:00")), 0);
        assert_eq!(slot(kst("2026-06-13T15:29")), 61);
        assert_eq!(slot(kst("2026-06-13T23:59")), 95);
    }
}
