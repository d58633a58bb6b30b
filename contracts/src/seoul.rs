//! Seoul's clock, the one home of every conversion between an instant and Seoul's wall clock: dates of events,
//! "today" in the app, quiet hours, forecast day types, KST strings from the sources. KST is UTC+9 without
//! daylight saving since 1988, so a fixed offset is exact and needs no tz database.

use jiff::{
    civil,
    tz::{self, TimeZone},
};

use crate::Timestamp;

/// UTC+9.
pub const OFFSET: tz::Offset = tz::offset(9);

/// Seoul's time zone.
pub fn zone() -> TimeZone {
    TimeZone::fixed(OFFSET)
}

/// The wall-clock date and time in Seoul at `instant`.
pub fn datetime(instant: Timestamp) -> civil::DateTime {
    instant.as_jiff().to_zoned(zone()).datetime()
}

/// The date in Seoul at `instant`.
pub fn date(instant: Timestamp) -> civil::Date {
    datetime(instant).date()
}

/// The instant of a wall-clock time in Seoul (whole seconds).
pub fn instant(datetime: civil::DateTime) -> Option<Timestamp> {
    Some(Timestamp::from_jiff(datetime.to_zoned(zone()).ok()?.timestamp()))
}

/// The next midnight in Seoul after `instant`: when "today" changes.
pub fn next_midnight(instant: Timestamp) -> Option<Timestamp> {
    self::instant(date(instant).tomorrow().ok()?.to_datetime(civil::Time::midnight()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seoul_is_nine_hours_ahead_all_year() {
        let summer = Timestamp::from_unix_seconds(1_781_425_200).unwrap(); // 2026-06-14T08:20:00Z
        assert_eq!(datetime(summer).to_string(), "2026-06-14T17:20:00");
        let late = Timestamp::from_unix_seconds(1_781_449_200).unwrap(); // 15:00Z = midnight in Seoul
        assert_eq!(date(late).to_string(), "2026-06-15");
        assert_eq!(next_midnight(summer), Some(late));
        assert_eq!(instant("2026-06-14T17:20".parse().unwrap()), Some(summer));
        let winter = Timestamp::from_unix_seconds(1_798_761_600).unwrap(); // 2027-01-01T00:00:00Z
        assert_eq!(datetime(winter).to_string(), "2027-01-01T09:00:00");
    }
}
