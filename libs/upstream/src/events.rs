//! Seoul cultural events (`culturalEventInfo`, OA-15486), paged 1,000 rows at a time, matched to parks.
//!
//! The service has no stable id, so an event's id is derived from its content (title, place, start date), the
//! way public clients do; the same event collected again keeps its id. An event is matched to a park when its
//! place names the park (`여의도한강공원`, `여의도 한강공원`, `반포 한강`) or its coordinates lie within
//! [`MATCH_RADIUS_METERS`] of the park centre. Titles and places are capped ([`crate::text`]); the link is the
//! first https one of `ORG_LINK` and `HMPG_ADDR` ([`crate::link`]), anything else is dropped.

use jiff::civil::Date;
use serde_json::Value;

use crate::seoul::{self, Answer, number, text};
use crate::{kst, link::Link, outcome::Failure, text as caps};

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
    /// The organiser's page, if it is an https link.
    pub link: Link,
    pub location: Option<(f64, f64)>,
    /// The organiser marked it cancelled: a bracketed tag such as `[취소]` or `(행사 취소)` (see
    /// [`marked_cancelled`]).
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
            // Read on the whole title: a marker at the end of an over-long one still counts.
            cancelled: marked_cancelled(&title),
            title_ko: caps::cap(title, caps::TITLE_CHARS),
            place_ko: text(row.get("PLACE")).map(|place| caps::cap(place, caps::NAME_CHARS)),
            starts_on,
            ends_on,
            free: text(row.get("IS_FREE")).map(|free| free == "무료"),
            link: Link::first_of(
                ["ORG_LINK", "HMPG_ADDR"].map(|field| row.get(field).and_then(Value::as_str)),
            ),
            location,
        });
    }
    Ok(Some(Page { total, rows: events }))
}

/// Whether a title carries the organiser's cancellation marker: a bracketed tag whose text is `취소` or ends
/// in it (`[취소]`, `(취소)`, `【행사취소】`, `(우천 취소)`). Not any title containing 취소: "취소표 재판매" or
/// "우천 시 취소될 수 있음" are events that are on.
pub fn marked_cancelled(title: &str) -> bool {
    const BRACKETS: [(char, char); 7] = [
        ('[', ']'),
        ('(', ')'),
        ('【', '】'),
        ('<', '>'),
        ('〈', '〉'),
        ('［', '］'),
        ('（', '）'),
    ];
    let mut rest = title;
    while let Some(start) = rest.find(|c: char| BRACKETS.iter().any(|(open, _)| *open == c)) {
        let open = rest[start..].chars().next().expect("found above");
        let close = BRACKETS.iter().find(|(o, _)| *o == open).map(|(_, c)| *c).expect("an opener");
        let after = &rest[start + open.len_utf8()..];
        let Some(end) = after.find(close) else { return false };
        let tag: String = after[..end].chars().filter(|c| !c.is_whitespace()).collect();
        if tag.ends_with("취소") && tag.chars().count() <= 6 {
            return true;
        }
        rest = &after[end + close.len_utf8()..];
    }
    false
}

/// Rows per request; the service allows at most 1,000.
pub const PAGE_SIZE: u32 = 1_000;

/// The most pages one listing reads (a bound against a total that runs away).
const MAX_PAGES: u32 = 100;

/// Why a listing is not the complete list.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Incomplete(pub String);

/// Reading the whole list page by page, and judging whether what was read is the complete list: only a
/// complete list may say that an event it lacks is gone.
///
/// A listing is complete when every page answered with data, each page held the rows its range asked for,
/// the rows add up to `list_total_count`, and that total did not move between pages. `INFO-200` (no data), an
/// empty or short page, a shifting total, or an empty list make it incomplete: its rows are still events that
/// are listed.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    rows: Vec<CulturalEvent>,
    total: Option<u32>,
    next_start: u32,
    done: bool,
    incomplete: Option<String>,
}

impl Listing {
    pub fn new() -> Listing {
        Listing { next_start: 1, ..Listing::default() }
    }

    /// The `(start, end)` range the next request asks for; `None` when the listing is over.
    pub fn next_range(&self) -> Option<(u32, u32)> {
        (!self.done).then(|| (self.next_start, self.next_start + PAGE_SIZE - 1))
    }

    /// Adds the answer to [`Listing::next_range`]: a page, or `None` for `INFO-200`.
    pub fn add(&mut self, page: Option<Page>) {
        let Some((start, end)) = self.next_range() else { return };
        let Some(page) = page else {
            self.stop(if start == 1 {
                "the source answered that it has no events (INFO-200)".to_owned()
            } else {
                format!("rows {start}-{end} answered no data")
            });
            return;
        };
        let total = *self.total.get_or_insert(page.total);
        if page.total != total {
            self.incomplete.get_or_insert(format!(
                "the total moved from {total} to {} between pages",
                page.total
            ));
        }
        let expected = total.min(end).saturating_sub(start - 1) as usize;
        let received = page.rows.len();
        self.rows.extend(page.rows);
        if received == 0 && expected > 0 {
            self.stop(format!("rows {start}-{end} came back empty"));
            return;
        }
        if received < expected {
            self.incomplete
                .get_or_insert(format!("rows {start}-{end} held {received} of {expected} rows"));
        }
        self.next_start = end + 1;
        if end >= total {
            self.done = true;
        } else if end / PAGE_SIZE >= MAX_PAGES {
            self.stop(format!("more than {MAX_PAGES} pages ({total} rows)"));
        }
    }

    /// Ends the listing early (a page failed, answered no data or came back empty): what was read is kept.
    pub fn stop(&mut self, why: String) {
        self.done = true;
        self.incomplete.get_or_insert(why);
    }

    /// The rows read, and `Ok(())` when they are the complete list or why not.
    pub fn finish(mut self) -> (Vec<CulturalEvent>, Result<(), Incomplete>) {
        if self.incomplete.is_none()
            && let Some(total) = self.total
            && self.rows.len() != total as usize
        {
            self.incomplete =
                Some(format!("{} rows read, {total} in list_total_count", self.rows.len()));
        }
        let verdict = match self.incomplete {
            // An empty list is no evidence that every event is gone: Seoul says "none" with INFO-200.
            None if self.total == Some(0) => Err(Incomplete("the list is empty".to_owned())),
            None if self.total.is_some() => Ok(()),
            None => Err(Incomplete("no page was read".to_owned())),
            Some(why) => Err(Incomplete(why)),
        };
        (self.rows, verdict)
    }
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
        let link = |row: usize| page.rows[row].link.url().map(|url| url.as_str().to_owned());
        assert_eq!(link(0).as_deref(), Some("https://example.org/events/summer"));
        assert_eq!(link(1).as_deref(), Some("https://example.org/events/moonlight"), "HMPG_ADDR");
        assert_eq!(page.rows[2].link, Link::Absent);
    }

    #[test]
    fn links_other_than_https_are_dropped_and_the_event_stays() {
        let body = String::from_utf8_lossy(PAGE)
            .replace("https://example.org/events/summer", "javascript:alert(document.cookie)")
            .replace("https://example.org/events/moonlight", "sms:01012345678");
        let page = parse_page(body.as_bytes()).unwrap().unwrap();
        assert_eq!(page.rows.len(), 4, "every event is still listed");
        let dropped: Vec<Option<&str>> =
            page.rows.iter().map(|row| row.link.dropped().map(|why| why.label())).collect();
        assert_eq!(dropped, vec![Some("javascript"), Some("sms"), None, None]);
        assert!(page.rows.iter().all(|row| row.link.url().is_none()));
        // A safe link in the second field is taken over an unsafe first one.
        let body = String::from_utf8_lossy(PAGE).replace(
            r#""ORG_LINK":"","STRTDATE":"2026-06-14"#,
            r#""ORG_LINK":"http://example.org/plain","STRTDATE":"2026-06-14"#,
        );
        let page = parse_page(body.as_bytes()).unwrap().unwrap();
        assert_eq!(
            page.rows[1].link.url().map(|url| url.as_str()),
            Some("https://example.org/events/moonlight")
        );
    }

    #[test]
    fn over_long_titles_and_places_are_capped() {
        let title = format!("[취소] {}", "한강 여름축제 ".repeat(100));
        let body = String::from_utf8_lossy(PAGE)
            .replace("[취소] 달빛무지개분수 음악회", &title)
            .replace("반포 한강 달빛광장", &"반포 한강 달빛광장 ".repeat(50));
        let page = parse_page(body.as_bytes()).unwrap().unwrap();
        let row = &page.rows[1];
        assert!(
            (caps::TITLE_CHARS - 2..=caps::TITLE_CHARS).contains(&row.title_ko.chars().count())
        );
        assert!(row.title_ko.starts_with("[취소] 한강 여름축제") && row.title_ko.ends_with('…'));
        assert!(row.cancelled);
        assert!(row.place_ko.as_ref().unwrap().chars().count() <= caps::NAME_CHARS);
        assert_eq!(page.rows[0].title_ko, "한강 여름축제", "real titles are untouched");
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
    fn only_a_bracketed_tag_marks_a_cancellation() {
        let cases = [
            ("[취소] 한강 여름 음악회", true),
            ("(취소)한강 여름 음악회", true),
            ("한강 여름 음악회 (취소)", true),
            ("【행사취소】 여의도 불꽃축제", true),
            ("반포 달빛무지개분수 쇼 (우천 취소)", true),
            ("［공연 취소］ 잠실 재즈 나이트", true),
            ("한강 여름 음악회 취소표 재판매", false),
            ("우천 시 취소될 수 있는 야외 영화제", false),
            ("(연기) 한강 여름 음악회", false),
            ("[취소표 양도 안내] 음악회", false),
            ("한강 여름 음악회 (여의도", false),
            ("한강 여름 음악회", false),
        ];
        for (title, expected) in cases {
            assert_eq!(marked_cancelled(title), expected, "{title}");
        }
    }

    fn page(total: u32, rows: usize) -> Option<Page> {
        let row = parse_page(PAGE).unwrap().unwrap().rows[0].clone();
        Some(Page { total, rows: vec![row; rows] })
    }

    fn read(pages: Vec<Option<Page>>) -> (usize, Result<(), Incomplete>) {
        let mut listing = Listing::new();
        for page in pages {
            assert!(listing.next_range().is_some(), "asked for a page after the end");
            listing.add(page);
        }
        assert_eq!(listing.next_range(), None, "stopped early");
        let (rows, verdict) = listing.finish();
        (rows.len(), verdict)
    }

    #[test]
    fn a_listing_is_complete_only_when_every_page_adds_up() {
        assert_eq!(read(vec![page(3, 3)]), (3, Ok(())));
        assert_eq!(read(vec![page(1_500, 1_000), page(1_500, 500)]), (1_500, Ok(())));
        // No data, short or empty pages, a shifting total: rows are kept, the list is not complete.
        let incomplete = |pages| read(pages).1.is_err();
        assert!(incomplete(vec![None]));
        assert!(incomplete(vec![page(0, 0)]));
        assert!(incomplete(vec![page(3, 2)]));
        assert!(incomplete(vec![page(1_500, 1_000), page(1_500, 499)]));
        assert!(incomplete(vec![page(1_500, 1_000), page(1_600, 500)]));
        assert!(incomplete(vec![page(1_500, 1_000), page(1_500, 0)]));
        assert!(incomplete(vec![page(1_500, 1_000), None]));
        assert!(incomplete(vec![page(1_500, 999), page(1_500, 500)]));
        assert_eq!(read(vec![page(1_500, 1_000), page(1_500, 0)]).0, 1_000, "what was read stays");
    }

    #[test]
    fn a_listing_ends_at_the_total_or_when_told() {
        let mut listing = Listing::new();
        assert_eq!(listing.next_range(), Some((1, 1_000)));
        listing.add(page(2_500, 1_000));
        assert_eq!(listing.next_range(), Some((1_001, 2_000)));
        listing.stop("rows 1001-2000: timeout".into());
        assert_eq!(listing.next_range(), None);
        assert_eq!(listing.finish().1, Err(Incomplete("rows 1001-2000: timeout".to_owned())));
    }

    #[test]
    fn missing_rows_are_drift() {
        let body = br#"{"culturalEventInfo":{"list_total_count":3,"RESULT":{"CODE":"INFO-000","MESSAGE":"ok"}}}"#;
        assert_eq!(parse_page(body).unwrap_err().class, ErrorClass::SchemaDrift);
    }
}
