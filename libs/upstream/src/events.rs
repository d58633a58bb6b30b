//! Seoul cultural events (`culturalEventInfo`, OA-15486), paged 1,000 rows at a time, matched to parks.
//!
//! The service has no stable id, so an event's id is derived from its content (title, place, start date), the
//! way public clients do; the same event collected again keeps its id. An event is matched to a park when its
//! place names the park (`여의도한강공원`, `여의도 한강공원`, `반포 한강`) or its coordinates lie within
//! [`MATCH_RADIUS_METERS`] of the park centre.

use jiff::civil::Date;
use serde_json::Value;

use crate::seoul::{self, Answer, number, text};
use crate::{kst, outcome::Failure};

/// How close an event's coordinates must be to a park centre to belong to it.
pub const MATCH_RADIUS_METERS: f64 = 1_200.0;

/// One row of the service.
#[derive(Clone, Debug, PartialEq)]
pub struct CulturalEvent {
    pub title_ko: String,
    pub place_ko: Option<String>,
    pub starts_on: Date,
    pub ends_on: Date,
    pub free: Option<bool>,
    pub url: Option<String>,
    pub location: Option<(f64, f64)>,
    /// The organiser marked it cancelled (취소) in its title.
    pub cancelled: bool,
}

/// One page: the rows and the total the service reports.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub total: u32,
    pub rows: Vec<CulturalEvent>,
}

/// Parses one page. `Ok(None)` is `INFO-200` (no events at all).
pub fn parse_page(body: &[u8]) -> Result<Option<Page>, Failure> {
    let value = match seoul::classify(body, "culturalEventInfo")? {
        Answer::NoData => return Ok(None),
        Answer::Data(value) => value,
    };
    let service = value
        .get("culturalEventInfo")
        .ok_or_else(|| Failure::drift("no culturalEventInfo object"))?;
    let total = seoul::count(service.get("list_total_count"))
        .ok_or_else(|| Failure::drift("no list_total_count"))?;
    let rows = service
        .get("row")
        .and_then(Value::as_array)
        .ok_or_else(|| Failure::drift("no row list"))?;
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        let (Some(title), Some(start), Some(end)) = (
            text(row.get("TITLE")),
            text(row.get("STRTDATE")).or_else(|| {
                text(row.get("DATE")).map(|d| d.split('~').next().unwrap_or_default().to_owned())
            }),
            text(row.get("END_DATE")).or_else(|| {
                text(row.get("DATE")).and_then(|d| d.split('~').nth(1).map(str::to_owned))
            }),
        ) else {
            return Err(Failure::drift("an event row without TITLE or dates"));
        };
        let (Some(starts_on), Some(ends_on)) = (kst::parse_date(&start), kst::parse_date(&end))
        else {
            return Err(Failure::drift(format!("unreadable event dates `{start}` / `{end}`")));
        };
        // LAT and LOT are swapped in some rows; coordinates are only used when they look like Seoul.
        let (a, b) = (number(row.get("LAT")), number(row.get("LOT")));
        let location = match (a, b) {
            (Some(lat), Some(lng))
                if (37.0..38.0).contains(&lat) && (126.0..128.0).contains(&lng) =>
            {
                Some((lat, lng))
            }
            (Some(lng), Some(lat))
                if (37.0..38.0).contains(&lat) && (126.0..128.0).contains(&lng) =>
            {
                Some((lat, lng))
            }
            _ => None,
        };
        events.push(CulturalEvent {
            cancelled: title.contains("취소"),
            title_ko: title,
            place_ko: text(row.get("PLACE")),
            starts_on,
            ends_on,
            free: text(row.get("IS_FREE")).map(|free| free == "무료"),
            url: text(row.get("ORG_LINK")).or_else(|| text(row.get("HMPG_ADDR"))),
            location,
        });
    }
    Ok(Some(Page { total, rows: events }))
}

/// A park as the matcher sees it.
#[derive(Clone, Debug)]
pub struct ParkForMatching {
    pub park_id: String,
    pub name_ko: String,
    pub short_ko: String,
    pub center: (f64, f64),
}

fn without_spaces(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// Great-circle distance in metres.
pub fn distance_meters(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lon1, lat2, lon2) =
        (a.0.to_radians(), a.1.to_radians(), b.0.to_radians(), b.1.to_radians());
    let h = ((lat2 - lat1) / 2.0).sin().powi(2)
        + lat1.cos() * lat2.cos() * ((lon2 - lon1) / 2.0).sin().powi(2);
    2.0 * 6_371_000.0 * h.sqrt().asin()
}

/// The park an event takes place in, if any.
pub fn match_park<'a>(
    event: &CulturalEvent,
    parks: &'a [ParkForMatching],
) -> Option<&'a ParkForMatching> {
    if let Some(place) = &event.place_ko {
        let place = without_spaces(place);
        let named = parks.iter().find(|park| {
            place.contains(&without_spaces(&park.name_ko))
                || (place.contains(&park.short_ko) && place.contains("한강"))
        });
        if named.is_some() {
            return named;
        }
    }
    let location = event.location?;
    parks
        .iter()
        .map(|park| (park, distance_meters(location, park.center)))
        .filter(|(_, distance)| *distance <= MATCH_RADIUS_METERS)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(park, _)| park)
}

/// The stable id of an event: derived from title, place and start date.
pub fn event_id(title: &str, place: Option<&str>, starts_on: Date) -> String {
    let key = format!("{}|{}|{starts_on}", title.trim(), place.unwrap_or_default().trim());
    crate::content_id("ev", &key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorClass;

    const PAGE: &[u8] = include_bytes!("../fixtures/events/page1.json");

    fn parks() -> Vec<ParkForMatching> {
        vec![
            ParkForMatching {
                park_id: "yeouido".into(),
                name_ko: "여의도한강공원".into(),
                short_ko: "여의도".into(),
                center: (37.5285, 126.9337),
            },
            ParkForMatching {
                park_id: "banpo".into(),
                name_ko: "반포한강공원".into(),
                short_ko: "반포".into(),
                center: (37.5126, 126.9995),
            },
        ]
    }

    #[test]
    fn reads_rows_and_matches_them_to_parks() {
        let page = parse_page(PAGE).unwrap().unwrap();
        assert_eq!(page.total, 4);
        assert_eq!(page.rows.len(), 4);
        let parks = parks();
        let matched: Vec<Option<&str>> = page
            .rows
            .iter()
            .map(|event| match_park(event, &parks).map(|park| park.park_id.as_str()))
            .collect();
        // By name, by "short name + 한강", by coordinates (swapped LAT/LOT), and one elsewhere in Seoul.
        assert_eq!(matched, vec![Some("yeouido"), Some("banpo"), Some("yeouido"), None]);
        assert!(page.rows[1].cancelled);
    }

    #[test]
    fn ids_are_stable_and_content_derived() {
        let date: Date = "2026-06-01".parse().unwrap();
        assert_eq!(
            event_id("축제", Some("여의도"), date),
            event_id(" 축제 ", Some("여의도 "), date)
        );
        assert_ne!(event_id("축제", Some("여의도"), date), event_id("축제", Some("반포"), date));
    }

    #[test]
    fn missing_rows_are_drift() {
        let body = br#"{"culturalEventInfo":{"list_total_count":3,"RESULT":{"CODE":"INFO-000","MESSAGE":"ok"}}}"#;
        assert_eq!(parse_page(body).unwrap_err().class, ErrorClass::SchemaDrift);
    }
}
