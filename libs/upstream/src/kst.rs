//! Seoul's public data writes times in Korea Standard Time without an offset (`2026-06-14 17:20`,
//! `20260614 1700`): the source formats, read into instants through `contracts::seoul`, Seoul's clock.

use contracts::{Timestamp, seoul};
use jiff::civil;

/// Parses `YYYY-MM-DD HH:MM` or `YYYY-MM-DD HH:MM:SS` (also with `/` or `.` date separators) in KST.
pub fn parse_datetime(text: &str) -> Option<Timestamp> {
    let normalized: String = text.trim().replace(['/', '.'], "-");
    let (date, time) = normalized.split_once(' ')?;
    let date: civil::Date = date.parse().ok()?;
    let time = time.trim();
    let time: civil::Time =
        if time.len() == 5 { format!("{time}:00").parse().ok()? } else { time.parse().ok()? };
    at(date, time)
}

/// Parses compact `YYYYMMDDHHMM` (KMA, citydata hourly forecasts) in KST.
pub fn parse_compact(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<i16>().ok();
    let date = civil::Date::new(number(0..4)?, number(4..6)? as i8, number(6..8)? as i8).ok()?;
    let time = civil::Time::new(number(8..10)? as i8, number(10..12)? as i8, 0, 0).ok()?;
    at(date, time)
}

/// Parses a date `YYYY-MM-DD` (also `YYYY.MM.DD`, `YYYY/MM/DD`, `YYYYMMDD`).
pub fn parse_date(text: &str) -> Option<civil::Date> {
    let text = text.trim();
    if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        return format!("{}-{}-{}", &text[0..4], &text[4..6], &text[6..8]).parse().ok();
    }
    text.get(..10)?.replace(['/', '.'], "-").parse().ok()
}

fn at(date: civil::Date, time: civil::Time) -> Option<Timestamp> {
    seoul::instant(date.to_datetime(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kst_wall_clock_becomes_utc() {
        assert_eq!(parse_datetime("2026-06-14 17:20").unwrap().to_string(), "2026-06-14T08:20:00Z");
        assert_eq!(
            parse_datetime("2025-12-13 15:24:30").unwrap().to_string(),
            "2025-12-13T06:24:30Z"
        );
        assert_eq!(parse_datetime("2026.06.14 00:10").unwrap().to_string(), "2026-06-13T15:10:00Z");
        assert_eq!(parse_compact("202606141700").unwrap().to_string(), "2026-06-14T08:00:00Z");
        assert!(parse_datetime("yesterday").is_none());
        assert!(parse_compact("2026061417").is_none());
        assert_eq!(parse_date("20260614").unwrap().to_string(), "2026-06-14");
        assert_eq!(parse_date("2026.06.14").unwrap().to_string(), "2026-06-14");
    }
}
