//! The Hangang integrated parking portal: one HTML page per park region (`/parking/region/region{1..11}`),
//! a table `주차장명 | 주소 | 길찾기 | 주차가능대수 | 주차구획수 | 면적`.
//!
//! Quirks: available may exceed the total (double parking is counted, e.g. 이촌1 66 / 32) and is accepted as
//! is; numbers carry thousands separators; there is no per-lot update time, so the fetch time is the
//! observation time; the server wants `Accept-Encoding: identity`. The markup is not documented, so the parser
//! reads table rows by position, checks the header when there is one, and reports drift instead of guessing.
//! A page nested deeper than [`crate::notices::MAX_DEPTH`] is refused before its tree is built (see
//! `crate::markup`: building it is quadratic in depth); lot names are capped ([`crate::text`]).

use scraper::{Html, Selector};

use crate::{
    markup, notices,
    outcome::{ErrorClass, Failure, excerpt},
    text as caps,
};

/// One row of a region page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortalRow {
    pub name: String,
    /// `None` when the cell is empty or `-` (the lot is not counted live).
    pub available: Option<u32>,
    pub capacity: Option<u32>,
}

/// Header words that identify the two columns we read.
const AVAILABLE_HEADER: [&str; 2] = ["주차가능", "가용"];
const TOTAL_HEADER: [&str; 2] = ["주차구획", "총"];

fn cell_text(element: scraper::ElementRef<'_>) -> String {
    element.text().collect::<Vec<_>>().join(" ").split_whitespace().collect::<Vec<_>>().join(" ")
}

fn count(text: &str) -> Option<u32> {
    let digits: String = text.chars().filter(|c| !matches!(c, ',' | ' ')).collect();
    digits.parse().ok()
}

/// Parses one region page.
pub fn parse_region_page(html: &str) -> Result<Vec<PortalRow>, Failure> {
    if !html.trim_start().starts_with('<') {
        return Err(Failure::unexpected(format!("not HTML: {}", excerpt(html.as_bytes()))));
    }
    // A page cut off mid-way still parses (HTML is forgiving) and would silently drop the lots after the cut.
    if html.contains("<table") && !html.contains("</table>") {
        return Err(Failure::unexpected("the page ends inside the lot table (truncated)"));
    }
    if let Err(too_deep) = markup::nesting_depth(html, notices::MAX_DEPTH) {
        return Err(Failure::new(ErrorClass::TooLarge, format!("region page: {too_deep}")));
    }
    let document = Html::parse_document(html);
    let row_selector = Selector::parse("tr").expect("static selector");
    let cell_selector = Selector::parse("td").expect("static selector");
    let header_selector = Selector::parse("th").expect("static selector");

    let headers: Vec<String> = document.select(&header_selector).map(cell_text).collect();
    if !headers.is_empty() {
        let has = |words: &[&str]| headers.iter().any(|h| words.iter().any(|w| h.contains(w)));
        if !(headers.iter().any(|h| h.contains("주차장"))
            && has(&AVAILABLE_HEADER)
            && has(&TOTAL_HEADER))
        {
            return Err(Failure::drift(format!(
                "unexpected table header: {}",
                headers.join(" | ")
            )));
        }
    }

    let mut rows = Vec::new();
    let mut unreadable = 0;
    for row in document.select(&row_selector) {
        let cells: Vec<String> = row.select(&cell_selector).map(cell_text).collect();
        if cells.len() < 5 || cells[0].is_empty() {
            continue;
        }
        let available = count(&cells[3]);
        let capacity = count(&cells[4]);
        let blank = |text: &str| text.is_empty() || text == "-";
        if (available.is_none() && !blank(&cells[3])) || (capacity.is_none() && !blank(&cells[4])) {
            unreadable += 1;
            continue;
        }
        rows.push(PortalRow {
            name: caps::cap(cells[0].clone(), caps::NAME_CHARS),
            available,
            capacity,
        });
    }
    if rows.is_empty() {
        return Err(if unreadable > 0 {
            Failure::drift(format!("{unreadable} lot rows with unreadable numbers"))
        } else if html.contains("<table") {
            Failure::drift("a table without lot rows")
        } else {
            Failure::unexpected(format!("no lot table: {}", excerpt(html.as_bytes())))
        });
    }
    Ok(rows)
}

/// Lot names are compared without spaces (the portal is not consistent about them).
pub fn normalize_name(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::ErrorClass;

    const PAGE: &str = include_str!("../fixtures/parking_portal/region8.html");

    #[test]
    fn reads_lots_with_separators_and_double_parking() {
        let rows = parse_region_page(PAGE).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[1],
            PortalRow {
                name: "여의도2주차장".into(), available: Some(132), capacity: Some(1_087)
            }
        );
        assert_eq!(rows[4].available, Some(66), "available above capacity is kept");
        assert_eq!(rows[4].capacity, Some(32));
        assert_eq!(rows[2].available, None, "a dash means not counted");
    }

    #[test]
    fn a_renamed_header_is_drift() {
        let page = PAGE.replace("주차가능대수(가용)", "잔여면수");
        assert_eq!(parse_region_page(&page).unwrap_err().class, ErrorClass::SchemaDrift);
    }

    #[test]
    fn error_pages_and_garbage_are_unexpected_content() {
        let error_page = "<html><body><h1>서비스 점검 중입니다</h1></body></html>";
        assert_eq!(parse_region_page(error_page).unwrap_err().class, ErrorClass::UnexpectedContent);
        assert_eq!(
            parse_region_page("{\"json\":true}").unwrap_err().class,
            ErrorClass::UnexpectedContent
        );
        assert_eq!(parse_region_page("").unwrap_err().class, ErrorClass::UnexpectedContent);
        let truncated = &PAGE[..PAGE.find("여의도4주차장").unwrap()];
        assert_eq!(parse_region_page(truncated).unwrap_err().class, ErrorClass::UnexpectedContent);
    }

    #[test]
    fn a_page_nested_too_deep_is_too_large_and_names_are_capped() {
        let deep = PAGE.replacen("<table", &format!("{}<table", "<div>".repeat(100_000)), 1);
        assert_eq!(parse_region_page(&deep).unwrap_err().class, ErrorClass::TooLarge);
        let long_name = "여의도2주차장 ".repeat(30);
        let rows = parse_region_page(&PAGE.replace("여의도2주차장", &long_name)).unwrap();
        assert!(rows[1].name.chars().count() <= caps::NAME_CHARS);
        assert!(
            rows[1].name.starts_with("여의도2주차장 여의도2주차장") && rows[1].name.ends_with('…')
        );
    }

    #[test]
    fn words_in_number_columns_are_drift() {
        let page = PAGE
            .replace(">132<", ">many<")
            .replace(">40<", ">some<")
            .replace(">0<", ">none<")
            .replace(">55<", ">x<")
            .replace(">66<", ">y<")
            .replace(">-<", ">z<");
        assert_eq!(parse_region_page(&page).unwrap_err().class, ErrorClass::SchemaDrift);
    }
}
