//! The Hangang headquarters' notice board (HTML): announced controls and closures.
//!
//! Its markup is not documented, so the parser is defensive: any table row or list item that holds a link and
//! a date is a notice; the park is found by name in the title (or "every park" for 전 한강공원 / 한강공원 전체);
//! the kind by keywords. A page with no such entry is drift, not "no notices": an empty board still has its
//! layout, and a redesign must not silently empty the app.

use contracts::Timestamp;
use scraper::{ElementRef, Html, Selector};

use crate::{
    kst,
    outcome::{Failure, excerpt},
};

/// One notice as the board shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct BoardNotice {
    pub title_ko: String,
    pub url: Option<String>,
    pub posted_at: Timestamp,
    /// `None`: applies to every park.
    pub park_id: Option<String>,
    /// Our wire value: `park_closure`, `lot_closure`, `control`, `facility_closure`, `general`.
    pub kind: &'static str,
}

/// A park as the board matcher sees it.
#[derive(Clone, Debug)]
pub struct ParkNames {
    pub park_id: String,
    pub name_ko: String,
    pub short_ko: String,
}

fn text_of(element: ElementRef<'_>) -> String {
    element.text().collect::<Vec<_>>().join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first `YYYY-MM-DD` / `YYYY.MM.DD` / `YYYY/MM/DD` in `text`.
fn find_date(text: &str) -> Option<jiff::civil::Date> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(9)).find_map(|i| {
        let candidate = text.get(i..i + 10)?;
        let b = candidate.as_bytes();
        let shape = b[..4].iter().all(u8::is_ascii_digit)
            && matches!(b[4], b'-' | b'.' | b'/')
            && b[5..7].iter().all(u8::is_ascii_digit)
            && b[7] == b[4]
            && b[8..10].iter().all(u8::is_ascii_digit);
        shape.then(|| kst::parse_date(candidate)).flatten()
    })
}

/// Classifies a notice by its title.
pub fn kind(title: &str) -> &'static str {
    let has = |words: &[&str]| words.iter().any(|word| title.contains(word));
    if has(&["홍수", "침수", "호우", "전면 통제", "전면통제", "출입 통제", "출입통제"])
    {
        "park_closure"
    } else if title.contains("주차") && has(&["폐쇄", "통제", "제한", "이용 불가"]) {
        "lot_closure"
    } else if has(&["통제", "제한"]) {
        "control"
    } else if has(&["휴관", "운영 중단", "운영중단", "폐쇄", "임시 휴장"]) {
        "facility_closure"
    } else {
        "general"
    }
}

/// The park a title names, `Ok(None)` for all parks, `Err(())` when it names none.
fn park_of(title: &str, parks: &[ParkNames]) -> Result<Option<String>, ()> {
    let compact: String = title.chars().filter(|c| !c.is_whitespace()).collect();
    if ["전한강공원", "한강공원전체", "11개한강공원", "한강공원전역"]
        .iter()
        .any(|all| compact.contains(all))
    {
        return Ok(None);
    }
    parks
        .iter()
        .find(|park| {
            compact.contains(&park.name_ko) || compact.contains(&format!("{}한강", park.short_ko))
        })
        .map(|park| Some(park.park_id.clone()))
        .ok_or(())
}

/// Parses the board page. `base_url` resolves relative links. Notices that name no park and not all parks are
/// skipped (general announcements).
pub fn parse_board(
    html: &str,
    base_url: &str,
    parks: &[ParkNames],
) -> Result<Vec<BoardNotice>, Failure> {
    if !html.trim_start().starts_with('<') {
        return Err(Failure::unexpected(format!("not HTML: {}", excerpt(html.as_bytes()))));
    }
    let document = Html::parse_document(html);
    let entries = Selector::parse("tr, li").expect("static selector");
    let links = Selector::parse("a").expect("static selector");
    let mut seen_entries = 0;
    let mut notices = Vec::new();
    for entry in document.select(&entries) {
        let Some(link) = entry.select(&links).next() else { continue };
        let title = text_of(link);
        let Some(date) = find_date(&text_of(entry)) else { continue };
        if title.is_empty() {
            continue;
        }
        seen_entries += 1;
        let Ok(park_id) = park_of(&title, parks) else { continue };
        let url = link.value().attr("href").map(|href| resolve(base_url, href));
        let posted_at =
            kst::parse_datetime(&format!("{date} 00:00")).expect("a valid date at midnight");
        notices.push(BoardNotice { kind: kind(&title), title_ko: title, url, posted_at, park_id });
    }
    if seen_entries == 0 {
        return Err(Failure::drift("no entry with a link and a date: the board's layout changed"));
    }
    Ok(notices)
}

fn resolve(base_url: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        return href.to_owned();
    }
    let origin_end = base_url.find("://").map_or(0, |i| i + 3);
    let origin = base_url[origin_end..].find('/').map_or(base_url, |i| &base_url[..origin_end + i]);
    if href.starts_with('/') {
        return format!("{origin}{href}");
    }
    // Relative to the directory of the page.
    let directory =
        base_url.rfind('/').filter(|&i| i >= origin_end).map_or(base_url, |i| &base_url[..i]);
    format!("{directory}/{href}")
}

/// The stable id of a board notice.
pub fn notice_id(title: &str, url: Option<&str>, posted_at: Timestamp) -> String {
    let key = format!("{}|{}|{posted_at}", title.trim(), url.unwrap_or_default());
    crate::content_id("hn", &key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorClass;

    const BOARD: &str = include_str!("../fixtures/notices/board.html");

    fn parks() -> Vec<ParkNames> {
        vec![
            ParkNames {
                park_id: "yeouido".into(),
                name_ko: "여의도한강공원".into(),
                short_ko: "여의도".into(),
            },
            ParkNames {
                park_id: "jamsil".into(),
                name_ko: "잠실한강공원".into(),
                short_ko: "잠실".into(),
            },
        ]
    }

    #[test]
    fn reads_notices_with_park_kind_date_and_link() {
        let notices =
            parse_board(BOARD, "https://hangang.example.org/notice/list", &parks()).unwrap();
        let summary: Vec<(Option<&str>, &str)> =
            notices.iter().map(|n| (n.park_id.as_deref(), n.kind)).collect();
        assert_eq!(
            summary,
            vec![
                (None, "park_closure"),
                (Some("yeouido"), "lot_closure"),
                (Some("jamsil"), "facility_closure")
            ]
        );
        assert_eq!(
            notices[1].url.as_deref(),
            Some("https://hangang.example.org/notice/view?id=1002")
        );
        assert_eq!(notices[1].posted_at.to_string(), "2026-06-12T15:00:00Z");
    }

    #[test]
    fn a_redesigned_board_is_drift_not_silence() {
        let redesigned =
            "<html><body><div class='cards'><div class='card'>공지</div></div></body></html>";
        assert_eq!(
            parse_board(redesigned, "https://x", &parks()).unwrap_err().class,
            ErrorClass::SchemaDrift
        );
    }
}
