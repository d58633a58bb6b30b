//! The Hangang headquarters' notice board (HTML): announced controls and closures.
//!
//! Its markup is not documented, so the parser is defensive: any table row or list item that holds a link and
//! a date is a notice; the park is found by name in the title (or "every park" for 전 한강공원 / 한강공원 전체);
//! the kind by the rule table in [`classify`]. A page with no such entry is drift, not "no notices": an empty
//! board still has its layout, and a redesign must not silently empty the app.
//!
//! A title is only ever a hint. The classifier is deliberately conservative about closures: an advisory
//! ("호우 대비 안전수칙 안내"), a forecast or a completed repair is not one, a lifted closure ("전면 통제 해제")
//! ends one instead of announcing it, and only the rules marked reliable may close a park in the app or alert.
//!
//! The page is the board's to write, so it is bounded before it is believed: elements may nest at most
//! [`MAX_DEPTH`] levels (measured by `crate::markup` before the tree is built, since building it is quadratic
//! in depth) and the page may hold at most [`MAX_ENTRIES`] rows and list items; a page beyond either is a
//! failure of class `too_large`, never a partial list (which would read as notices that ended). Titles are
//! capped ([`crate::text`]); a notice's link is kept only when it is https ([`crate::link`]), which the
//! `javascript:goView(…)` links many boards use are not. The parser is synchronous and can take tens of
//! milliseconds on a large page: callers run it off the async runtime.

use contracts::{Timestamp, v2::NoticeKind};
use scraper::{ElementRef, Html, Selector};

use crate::{
    kst,
    link::{self, Link},
    markup,
    outcome::{ErrorClass, Failure, excerpt},
    text as caps,
};

/// How deeply the board's elements may nest (real boards: 20 to 40 levels).
pub const MAX_DEPTH: usize = 256;

/// How many rows and list items (candidate entries, menus included) the board page may hold (real boards:
/// a few dozen notices and a few hundred menu items).
pub const MAX_ENTRIES: usize = 2_000;

/// One notice as the board shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct BoardNotice {
    /// Stable across collections: derived from the whole title, the link as the board wrote it and the date
    /// (see [`parse_board`]).
    pub notice_id: String,
    /// Capped to [`caps::TITLE_CHARS`].
    pub title_ko: String,
    /// The notice's page, if it is an https link.
    pub link: Link,
    pub posted_at: Timestamp,
    /// `None`: applies to every park.
    pub park_id: Option<String>,
    pub classification: Classification,
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

/// What a notice's title says, by the rule table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classification {
    pub kind: NoticeKind,
    /// Reliable enough to act on: a park closure read this way closes the park in the app and alerts.
    pub reliable: bool,
    /// The notice lifts a closure of this kind (`통제 해제`, `운영 재개`) rather than announcing one.
    pub lifts: Option<NoticeKind>,
}

/// Words that make a title an advisory, a forecast or a report rather than a closure in force.
pub const NOT_A_CLOSURE: [&str; 12] = [
    "안내",
    "대비",
    "예보",
    "완료",
    "수칙",
    "예방",
    "자제",
    "훈련",
    "캠페인",
    "모의",
    "예정",
    "점검",
];

/// Words that lift a closure.
const LIFTS: [&str; 5] = ["해제", "재개", "정상운영", "재개방", "다시개방"];

/// Words that close something.
const CLOSES: [&str; 9] =
    ["통제", "폐쇄", "휴장", "휴관", "운영중단", "운영중지", "출입금지", "이용불가", "이용중지"];

/// One row of the rule table: a title matching every word group is of `kind`.
struct Rule {
    /// Each group needs one of its words (in the title without spaces).
    groups: &'static [&'static [&'static str]],
    kind: NoticeKind,
    reliable: bool,
}

/// Closure rules, tried in order on titles without an advisory word. Reliable: the whole park explicitly shut
/// (`전면 통제`, `공원 폐쇄`) or access shut for a flood. Not reliable: `출입 통제` alone may be one area.
const CLOSURE_RULES: [Rule; 4] = [
    Rule {
        groups: &[&["전면통제", "전면폐쇄", "공원폐쇄", "전면출입통제", "출입전면통제"]],
        kind: NoticeKind::ParkClosure,
        reliable: true,
    },
    Rule {
        groups: &[&["침수", "홍수", "범람", "수위상승"], &["통제", "폐쇄", "출입금지"]],
        kind: NoticeKind::ParkClosure,
        reliable: true,
    },
    Rule {
        groups: &[&["출입통제", "출입금지"]], kind: NoticeKind::ParkClosure, reliable: false
    },
    Rule {
        groups: &[&["주차"], &["폐쇄", "통제", "제한", "이용불가", "이용중지"]],
        kind: NoticeKind::LotClosure,
        reliable: false,
    },
];

/// Everything else, tried in order.
const OTHER_RULES: [Rule; 2] = [
    Rule { groups: &[&["통제", "제한", "차단"]], kind: NoticeKind::Control, reliable: false },
    Rule {
        groups: &[&["휴관", "운영중단", "운영중지", "폐쇄", "휴장"]],
        kind: NoticeKind::FacilityClosure,
        reliable: false,
    },
];

fn matches(compact: &str, rule: &Rule) -> bool {
    rule.groups.iter().all(|group| group.iter().any(|word| compact.contains(word)))
}

/// Classifies a notice by its title.
pub fn classify(title: &str) -> Classification {
    let compact: String = title.chars().filter(|c| !c.is_whitespace()).collect();
    let has = |words: &[&str]| words.iter().any(|word| compact.contains(word));
    if has(&LIFTS) && has(&CLOSES) || has(&["침수", "출입"]) && has(&LIFTS) {
        let lifted = if compact.contains("주차") {
            NoticeKind::LotClosure
        } else if has(&["휴관", "휴장", "운영중단", "운영중지"]) {
            NoticeKind::FacilityClosure
        } else {
            NoticeKind::ParkClosure
        };
        return Classification { kind: NoticeKind::General, reliable: true, lifts: Some(lifted) };
    }
    let advisory = has(&NOT_A_CLOSURE);
    let rule = (!advisory)
        .then(|| CLOSURE_RULES.iter().find(|rule| matches(&compact, rule)))
        .flatten()
        .or_else(|| OTHER_RULES.iter().find(|rule| matches(&compact, rule)));
    match rule {
        Some(rule) => Classification { kind: rule.kind, reliable: rule.reliable, lifts: None },
        None => Classification { kind: NoticeKind::General, reliable: false, lifts: None },
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
    if let Err(too_deep) = markup::nesting_depth(html, MAX_DEPTH) {
        return Err(Failure::new(ErrorClass::TooLarge, format!("notice board: {too_deep}")));
    }
    let document = Html::parse_document(html);
    let entries = Selector::parse("tr, li").expect("static selector");
    let links = Selector::parse("a").expect("static selector");
    let candidates = document.select(&entries).count();
    if candidates > MAX_ENTRIES {
        return Err(Failure::new(
            ErrorClass::TooLarge,
            format!("notice board: {candidates} rows and list items (at most {MAX_ENTRIES})"),
        ));
    }
    let mut seen_entries = 0;
    let mut notices = Vec::new();
    for entry in document.select(&entries) {
        let Some(anchor) = entry.select(&links).next() else { continue };
        let title = text_of(anchor);
        let Some(date) = find_date(&text_of(entry)) else { continue };
        if title.is_empty() {
            continue;
        }
        seen_entries += 1;
        let Ok(park_id) = park_of(&title, parks) else { continue };
        let href = anchor.value().attr("href");
        let posted_at =
            kst::parse_datetime(&format!("{date} 00:00")).expect("a valid date at midnight");
        // The id keeps the inputs of earlier releases (the whole title, the href joined to the base as they
        // joined it), so a notice already stored is never seen as new: a new park closure alerts.
        let identity = href.map(|href| resolve(base_url, href));
        notices.push(BoardNotice {
            notice_id: notice_id(&title, identity.as_deref(), posted_at),
            classification: classify(&title),
            link: href.map_or(Link::Absent, |href| link_of(base_url, href)),
            title_ko: caps::cap(title, caps::TITLE_CHARS),
            posted_at,
            park_id,
        });
    }
    if seen_entries == 0 {
        return Err(Failure::drift("no entry with a link and a date: the board's layout changed"));
    }
    Ok(notices)
}

/// The href joined to the page's URL as earlier releases did, for ids only: every href without `http://`
/// or `https://` is a path (so `javascript:goView('1')` becomes `…/notice/javascript:goView('1')`).
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

/// The link an href leads to, joined to the page's URL the way a browser joins it; kept only when https.
fn link_of(base_url: &str, href: &str) -> Link {
    let href = href.trim();
    if href.is_empty() {
        return Link::Absent;
    }
    let joined = if link::scheme_of(href).is_some() {
        href.to_owned()
    } else if href.starts_with("//") {
        let scheme = link::scheme_of(base_url).unwrap_or("https");
        format!("{scheme}:{href}")
    } else if href.starts_with('?') || href.starts_with('#') {
        let end = base_url.find(if href.starts_with('?') { ['?', '#'] } else { ['#', '#'] });
        format!("{}{href}", &base_url[..end.unwrap_or(base_url.len())])
    } else {
        resolve(base_url, href)
    };
    Link::read(Some(&joined))
}

/// The stable id of a board notice.
fn notice_id(title: &str, url: Option<&str>, posted_at: Timestamp) -> String {
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
        let summary: Vec<(Option<&str>, NoticeKind)> =
            notices.iter().map(|n| (n.park_id.as_deref(), n.classification.kind)).collect();
        // The all-parks notice is an announcement (`안내`): shown as an access control, not a closure.
        assert_eq!(
            summary,
            vec![
                (None, NoticeKind::Control),
                (Some("yeouido"), NoticeKind::LotClosure),
                (Some("jamsil"), NoticeKind::FacilityClosure)
            ]
        );
        assert_eq!(
            notices[1].link.url().map(|url| url.as_str()),
            Some("https://hangang.example.org/notice/view?id=1002")
        );
        assert_eq!(notices[1].posted_at.to_string(), "2026-06-12T15:00:00Z");
    }

    #[test]
    fn ids_stay_what_earlier_releases_derived() {
        // Pinned: a notice stored by an earlier release must keep its id, or its closure would alert again.
        let notices =
            parse_board(BOARD, "https://hangang.example.org/notice/list", &parks()).unwrap();
        assert_eq!(notices[1].notice_id, "hn-000633397babcc83");
        let script = BOARD.replace("view?id=1002", "javascript:goView('1002')");
        let notices =
            parse_board(&script, "https://hangang.example.org/notice/list", &parks()).unwrap();
        assert_eq!(
            notices[1].notice_id,
            notice_id(
                "여의도한강공원 축제 기간 여의도5주차장 21시 이후 폐쇄",
                Some("https://hangang.example.org/notice/javascript:goView('1002')"),
                notices[1].posted_at
            )
        );
    }

    #[test]
    fn only_https_links_are_kept_and_the_notice_stays() {
        let board = |href: &str| BOARD.replace("view?id=1002", href);
        let link =
            |html: String, base: &str| parse_board(&html, base, &parks()).unwrap()[1].link.clone();
        let https = "https://hangang.example.org/notice/list";
        assert_eq!(
            link(board("javascript:goView('1002')"), https).dropped().map(|why| why.label()),
            Some("javascript")
        );
        assert_eq!(link(board("sms:010"), https).dropped().map(|why| why.label()), Some("sms"));
        assert_eq!(
            link(board("http://hangang.example.org/v?id=2"), https)
                .dropped()
                .map(|why| why.label()),
            Some("http")
        );
        // Relative links are as safe as the page they are on.
        assert_eq!(link(board("view?id=1002"), "http://127.0.0.1:8080/notice/list").url(), None);
        let joined = |href: &str| link(board(href), https).url().map(|url| url.to_string());
        assert_eq!(
            joined("?id=7").as_deref(),
            Some("https://hangang.example.org/notice/list?id=7")
        );
        assert_eq!(joined("//cdn.example.org/a").as_deref(), Some("https://cdn.example.org/a"));
        assert_eq!(joined("/v?id=3").as_deref(), Some("https://hangang.example.org/v?id=3"));
    }

    #[test]
    fn a_board_nested_too_deep_is_too_large_before_it_is_parsed() {
        let depth = MAX_DEPTH * 400;
        let deep = BOARD.replace(
            "<table class=\"board-list\">",
            &format!("{}<table class=\"board-list\">", "<div>".repeat(depth)),
        );
        let started = std::time::Instant::now();
        let failure = parse_board(&deep, "https://x.example.org/n", &parks()).unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "refused without building it"
        );
        assert_eq!(failure.class, ErrorClass::TooLarge);
        assert!(failure.message.contains("deeper than 256 levels"), "{failure}");
        // At the cap, the page is read.
        let deep_enough = BOARD.replace(
            "<table class=\"board-list\">",
            &format!("{}<table class=\"board-list\">", "<div>".repeat(MAX_DEPTH - 8)),
        );
        assert_eq!(
            parse_board(&deep_enough, "https://x.example.org/n", &parks()).unwrap().len(),
            3
        );
    }

    #[test]
    fn a_board_with_too_many_entries_is_too_large_not_a_partial_list() {
        let rows = "<tr><td>1</td><td>공고</td></tr>\n".repeat(MAX_ENTRIES);
        let crowded = BOARD.replace("</tbody>", &format!("{rows}</tbody>"));
        let failure = parse_board(&crowded, "https://x.example.org/n", &parks()).unwrap_err();
        assert_eq!(failure.class, ErrorClass::TooLarge);
        assert!(failure.message.contains("at most 2000"), "{failure}");
    }

    #[test]
    fn over_long_titles_are_capped_but_still_classified_whole() {
        let padding = "안전 ".repeat(150);
        let long = BOARD.replace(
            "잠실한강공원 수영장 임시 휴장 안내",
            &format!("잠실한강공원 {padding}수영장 임시 휴장"),
        );
        let notices = parse_board(&long, "https://x.example.org/n", &parks()).unwrap();
        let capped = &notices[2];
        assert!(
            (caps::TITLE_CHARS - 2..=caps::TITLE_CHARS).contains(&capped.title_ko.chars().count())
        );
        assert!(capped.title_ko.ends_with('…'));
        assert_eq!(
            capped.classification.kind,
            NoticeKind::FacilityClosure,
            "read on the whole title"
        );
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

    /// The classifier's table: real-looking titles and what they must be read as.
    #[test]
    fn titles_are_classified_by_the_rule_table() {
        use NoticeKind::*;
        // (title, kind, reliable, lifts)
        let cases: &[(&str, NoticeKind, bool, Option<NoticeKind>)] = &[
            // Advisories, forecasts and reports are not closures.
            ("호우 대비 안전수칙 안내", General, false, None),
            ("[여의도] 집중호우 대비 시설물 점검", General, false, None),
            ("호우주의보 발령", General, false, None),
            ("한강 수위 상승 예보", General, false, None),
            ("잠원한강공원 침수 피해 복구 완료", General, false, None),
            ("한강공원 침수 대비 출입 자제 요청", General, false, None),
            ("여의도한강공원 전면통제 예정 안내", Control, false, None),
            ("호우경보에 따른 전 한강공원 출입 통제 안내", Control, false, None),
            ("여의도한강공원 물놀이 안전 캠페인", General, false, None),
            // Lifted closures end closures instead of announcing them.
            ("여의도한강공원 전면 통제 해제", General, true, Some(ParkClosure)),
            ("망원한강공원 통제 해제 및 정상 운영", General, true, Some(ParkClosure)),
            ("잠실한강공원 침수 구간 출입 재개", General, true, Some(ParkClosure)),
            ("반포2,3주차장 폐쇄 해제", General, true, Some(LotClosure)),
            ("뚝섬 수영장 휴장 해제, 운영 재개", General, true, Some(FacilityClosure)),
            // Closures in force: reliable when the whole park is shut or a flood shuts access.
            ("여의도한강공원 전면 통제", ParkClosure, true, None),
            ("홍수로 인한 반포한강공원 전면 폐쇄", ParkClosure, true, None),
            ("잠실한강공원 침수로 출입 통제", ParkClosure, true, None),
            ("한강 범람으로 난지한강공원 출입금지", ParkClosure, true, None),
            ("반포한강공원 달빛광장 출입통제", ParkClosure, false, None),
            // Lots, controls and facilities.
            ("여의도2주차장 임시 폐쇄", LotClosure, false, None),
            ("여의도한강공원 축제 기간 여의도5주차장 21시 이후 폐쇄", LotClosure, false, None),
            ("주차장 이용 요금 변경", General, false, None),
            ("여의도 봄꽃축제 기간 교통 통제", Control, false, None),
            ("잠실한강공원 수영장 임시 휴장", FacilityClosure, false, None),
            ("뚝섬 자벌레 전시관 휴관", FacilityClosure, false, None),
            ("한강사업본부 채용 공고", General, false, None),
        ];
        let failures: Vec<String> = cases
            .iter()
            .filter_map(|&(title, kind, reliable, lifts)| {
                let got = classify(title);
                let expected = Classification { kind, reliable, lifts };
                (got != expected).then(|| format!("{title}: {got:?}, expected {expected:?}"))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
