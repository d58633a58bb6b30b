//! How deeply an HTML page's elements nest, estimated in one linear pass before a tree builder sees the page.
//!
//! html5ever (behind `scraper`) is quadratic in nesting depth: for nearly every start tag it asks whether a
//! `<p>` is "in button scope", walking the stack of open elements down to a boundary, so 50,000 nested
//! `<div>`s (550 KB) take six seconds to parse and 200,000 (2 MB, well under the body limit) three minutes. A
//! depth cap checked on the finished tree comes too late; [`nesting_depth`] refuses such a page first.
//!
//! The scan keeps its own stack of open elements and follows the parsing rules that pop it, because a page
//! is only as deep as what stays open: end tags close the nearest open element of their name unless the
//! parser would ignore them (a scope boundary such as `table` in between, or a special element such as `div`
//! above an inline one); start tags close what they implicitly end (`<li>` an open `<li>`, block tags an open
//! `<p>`, `<td>` a cell, `<tr>` a row, `<a>` an open `<a>`, `<option>` an option, a heading a heading); void
//! elements, comments, doctypes and the text of `script`, `style`, `textarea` and `title` open nothing, and
//! `/>` closes an element only inside `svg` or `math`. Where it simplifies (foster parenting, the adoption
//! agency's reparenting, `select`), it keeps elements open rather than closing them, so it may overestimate a
//! broken page but does not let deep nesting through; real pages nest 20 to 40 levels.

/// An element nesting deeper than the limit: where, for the error message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("elements nest deeper than {limit} levels (at byte {at})")]
pub struct TooDeep {
    pub limit: usize,
    pub at: usize,
}

/// The deepest nesting of `html`'s elements, or [`TooDeep`] as soon as it passes `limit`.
pub fn nesting_depth(html: &str, limit: usize) -> Result<usize, TooDeep> {
    let mut scan =
        Scan { html, at: 0, open: Vec::new(), counts: Default::default(), deepest: 0, limit };
    scan.run()?;
    Ok(scan.deepest)
}

/// Elements without content: they never stay open.
const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

/// Elements whose content is text up to their end tag.
const RAW_TEXT: &[&str] = &["script", "style", "textarea", "title", "xmp", "iframe", "noembed"];

/// Never pushed: the document has one of each, whatever the markup says.
const DOCUMENT: &[&str] = &["html", "head", "body", "frameset"];

/// SVG and MathML elements in which HTML starts again: special, and scope boundaries.
const INTEGRATION_POINTS: &[&str] =
    &["foreignobject", "desc", "mi", "mo", "mn", "ms", "mtext", "annotation-xml"];

/// Where "in scope" searches stop (the default scope), besides the [`INTEGRATION_POINTS`].
const SCOPE_BOUNDARY: &[&str] =
    &["applet", "caption", "html", "table", "td", "th", "marquee", "object", "template"];

/// The parser's special elements (minus the void ones, which are never open, the [`INTEGRATION_POINTS`] and
/// the [`HEADINGS`]):
/// an end tag of another name is ignored when one of these is above its element; `<li>`, `<dd>` and `<dt>`
/// stop looking at them.
#[rustfmt::skip]
const SPECIAL: &[&str] = &[
    "address", "applet", "article", "aside", "blockquote", "body", "button", "caption", "center",
    "colgroup", "dd", "details", "dialog", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
    "footer", "form", "frameset", "head", "header", "hgroup", "html", "iframe", "li", "listing", "main",
    "marquee", "menu", "nav", "noembed", "noframes", "noscript", "object", "ol", "p", "plaintext", "pre",
    "script", "search", "section", "select", "style", "summary", "table", "tbody", "td", "template",
    "textarea", "tfoot", "th", "thead", "title", "tr", "ul", "xmp",
];

/// Start tags that close an open `<p>` (in button scope) before they open, besides the [`HEADINGS`].
#[rustfmt::skip]
const CLOSES_P: &[&str] = &[
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div", "dl",
    "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu", "nav", "ol", "p",
    "search", "section", "summary", "ul", "pre", "listing", "form", "li", "dd", "dt",
];

/// Inline formatting elements, closed by the adoption agency.
const FORMATTING: &[&str] = &[
    "a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u",
];

const HEADINGS: &[&str] = &["h1", "h2", "h3", "h4", "h5", "h6"];

/// What an open element is to the searches, worked out once when it opens.
mod role {
    pub const SPECIAL: u8 = 1;
    /// Stops a default-scope search.
    pub const SCOPE: u8 = 1 << 1;
    /// Stops a button-scope search (`<p>`).
    pub const BUTTON_SCOPE: u8 = 1 << 2;
    /// Stops a list-item-scope search (`</li>`).
    pub const LIST_SCOPE: u8 = 1 << 3;
    /// Stops a table-scope search (cells, rows, sections).
    pub const TABLE_SCOPE: u8 = 1 << 4;
    /// Stops the search of a new `<table>` for an open one: inside a cell or caption a table nests.
    pub const NESTS_TABLE: u8 = 1 << 5;
    /// Stops the search of a new `<li>`, `<dd>` or `<dt>`: special, but not `address`, `div` or `p`.
    pub const ENDS_ITEM_SEARCH: u8 = 1 << 6;
    pub const HEADING: u8 = 1 << 7;
}

fn roles(name: &str) -> u8 {
    let mut roles = 0;
    let integration_point = INTEGRATION_POINTS.contains(&name);
    let special = SPECIAL.contains(&name) || integration_point || HEADINGS.contains(&name);
    let scope = SCOPE_BOUNDARY.contains(&name) || integration_point;
    let table = matches!(name, "html" | "table" | "template");
    for (applies, role) in [
        (special, role::SPECIAL),
        (scope, role::SCOPE),
        (scope || name == "button", role::BUTTON_SCOPE),
        (scope || matches!(name, "ol" | "ul"), role::LIST_SCOPE),
        (table, role::TABLE_SCOPE),
        (table || matches!(name, "td" | "th" | "caption"), role::NESTS_TABLE),
        (special && !matches!(name, "address" | "div" | "p"), role::ENDS_ITEM_SEARCH),
        (HEADINGS.contains(&name), role::HEADING),
    ] {
        if applies {
            roles |= role;
        }
    }
    roles
}

/// An open element.
struct Open {
    name: String,
    roles: u8,
}

struct Scan<'a> {
    html: &'a str,
    at: usize,
    /// Open elements, innermost last.
    open: Vec<Open>,
    /// How many of each name are open, so a search for a name that is not open costs nothing.
    counts: std::collections::HashMap<String, u32>,
    deepest: usize,
    limit: usize,
}

/// ASCII whitespace as the HTML tokenizer knows it.
fn is_space(byte: u8) -> bool {
    matches!(byte, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

impl Scan<'_> {
    fn run(&mut self) -> Result<(), TooDeep> {
        while let Some(offset) = self.html[self.at..].find('<') {
            self.at += offset;
            let rest = &self.html[self.at..];
            if let Some(comment) = rest.strip_prefix("<!--") {
                // `<!-->` and `<!--->` are empty comments; otherwise up to `-->` (or `--!>`).
                let end = if comment.starts_with('>') {
                    Some(1)
                } else if comment.starts_with("->") {
                    Some(2)
                } else {
                    [comment.find("-->").map(|i| i + 3), comment.find("--!>").map(|i| i + 4)]
                        .into_iter()
                        .flatten()
                        .min()
                };
                self.at = end.map_or(self.html.len(), |end| self.at + 4 + end);
            } else if rest.starts_with("<![CDATA[") && self.in_foreign() {
                self.at = rest.find("]]>").map_or(self.html.len(), |end| self.at + end + 3);
            } else if rest.starts_with("<!") || rest.starts_with("<?") {
                self.skip_past('>');
            } else if let Some(end_tag) = rest.strip_prefix("</") {
                if end_tag.starts_with(|c: char| c.is_ascii_alphabetic()) {
                    let (name, _) = self.tag(2);
                    self.end(&name);
                } else {
                    // `</>` is ignored, `</ x>` a bogus comment: either way nothing opens or closes.
                    self.skip_past('>');
                }
            } else if rest[1..].starts_with(|c: char| c.is_ascii_alphabetic()) {
                let (name, self_closing) = self.tag(1);
                if name == "plaintext" {
                    // Everything after it is text.
                    return self.push(name);
                }
                self.start(name, self_closing)?;
            } else {
                self.at += 1;
            }
        }
        Ok(())
    }

    /// Reads the tag at `self.at` (its name starting `name_at` bytes in) up to its `>`, honouring quoted
    /// attribute values; returns the lowercase name and whether it ended in `/>`.
    fn tag(&mut self, name_at: usize) -> (String, bool) {
        let bytes = self.html.as_bytes();
        let skip_spaces = |mut i: usize| {
            while i < bytes.len() && is_space(bytes[i]) {
                i += 1;
            }
            i
        };
        let mut i = self.at + name_at;
        let name_start = i;
        while i < bytes.len() && !is_space(bytes[i]) && !matches!(bytes[i], b'/' | b'>') {
            i += 1;
        }
        let name = self.html[name_start..i].to_ascii_lowercase();
        let mut self_closing = false;
        while i < bytes.len() {
            match bytes[i] {
                b'>' => {
                    i += 1;
                    break;
                }
                b'/' => {
                    self_closing = bytes.get(i + 1) == Some(&b'>');
                    i += 1;
                }
                byte if is_space(byte) => i += 1,
                _ => {
                    self_closing = false;
                    // An attribute: its name, then perhaps `=` and a value.
                    while i < bytes.len()
                        && !is_space(bytes[i])
                        && !matches!(bytes[i], b'/' | b'>' | b'=')
                    {
                        i += 1;
                    }
                    let equals = skip_spaces(i);
                    if bytes.get(equals) != Some(&b'=') {
                        continue;
                    }
                    let value = skip_spaces(equals + 1);
                    i = match bytes.get(value) {
                        Some(&quote @ (b'"' | b'\'')) => bytes[value + 1..]
                            .iter()
                            .position(|&b| b == quote)
                            .map_or(bytes.len(), |end| value + 1 + end + 1),
                        _ => {
                            let mut end = value;
                            while end < bytes.len() && !is_space(bytes[end]) && bytes[end] != b'>' {
                                end += 1;
                            }
                            end
                        }
                    };
                }
            }
        }
        self.at = i;
        (name, self_closing)
    }

    fn skip_past(&mut self, end: char) {
        self.at = self.html[self.at..].find(end).map_or(self.html.len(), |i| self.at + i + 1);
    }

    fn is_open(&self, name: &str) -> bool {
        self.counts.get(name).is_some_and(|count| *count > 0)
    }

    fn in_foreign(&self) -> bool {
        self.is_open("svg") || self.is_open("math")
    }

    fn start(&mut self, name: String, self_closing: bool) -> Result<(), TooDeep> {
        let name_is = |names: &[&str]| names.contains(&name.as_str());
        if name_is(VOID) || name_is(DOCUMENT) || (self_closing && self.in_foreign()) {
            return Ok(());
        }
        if name_is(RAW_TEXT) {
            // The text runs to the first matching end tag, in any case.
            let closing = format!("</{name}");
            self.at = self.html.as_bytes()[self.at..]
                .windows(closing.len())
                .position(|window| window.eq_ignore_ascii_case(closing.as_bytes()))
                .map_or(self.html.len(), |i| self.at + i);
            return Ok(());
        }
        match name.as_str() {
            "li" => self.close_item(&["li"]),
            "dd" | "dt" => self.close_item(&["dd", "dt"]),
            "td" | "th" => self.close_in_scope(&["td", "th"], role::TABLE_SCOPE),
            "tr" => self.close_in_scope(&["tr"], role::TABLE_SCOPE),
            "thead" | "tbody" | "tfoot" => {
                self.close_in_scope(&["thead", "tbody", "tfoot"], role::TABLE_SCOPE)
            }
            "table" => self.close_in_scope(&["table"], role::NESTS_TABLE),
            "a" | "nobr" => self.close_formatting(&name),
            "button" => self.close_in_scope(&["button"], role::SCOPE),
            "option" | "optgroup" => {
                if self.open.last().is_some_and(|top| top.name == "option") {
                    self.pop_to(self.open.len() - 1);
                }
                if name == "optgroup" && self.open.last().is_some_and(|top| top.name == "optgroup")
                {
                    self.pop_to(self.open.len() - 1);
                }
            }
            _ => {}
        }
        if name_is(CLOSES_P) || name_is(HEADINGS) {
            self.close_in_scope(&["p"], role::BUTTON_SCOPE);
        }
        if name_is(HEADINGS) && self.open.last().is_some_and(|top| top.roles & role::HEADING != 0) {
            self.pop_to(self.open.len() - 1);
        }
        self.push(name)
    }

    fn push(&mut self, name: String) -> Result<(), TooDeep> {
        *self.counts.entry(name.clone()).or_default() += 1;
        self.open.push(Open { roles: roles(&name), name });
        self.deepest = self.deepest.max(self.open.len());
        if self.open.len() > self.limit {
            return Err(TooDeep { limit: self.limit, at: self.at });
        }
        Ok(())
    }

    /// Closes the element at `at` and everything inside it.
    fn pop_to(&mut self, at: usize) {
        for closed in self.open.drain(at..) {
            if let Some(count) = self.counts.get_mut(&closed.name) {
                *count -= 1;
            }
        }
    }

    fn end(&mut self, name: &str) {
        if DOCUMENT.contains(&name) || VOID.contains(&name) {
            return;
        }
        if FORMATTING.contains(&name) {
            return self.close_formatting(name);
        }
        match name {
            "p" => self.close_in_scope(&["p"], role::BUTTON_SCOPE),
            "li" => self.close_in_scope(&["li"], role::LIST_SCOPE),
            "td" | "th" | "tr" | "thead" | "tbody" | "tfoot" | "table" | "caption" => {
                self.close_in_scope(&[name], role::TABLE_SCOPE)
            }
            _ if HEADINGS.contains(&name) => self.close_in_scope(HEADINGS, role::SCOPE),
            _ if SPECIAL.contains(&name) => self.close_in_scope(&[name], role::SCOPE),
            // Any other end tag closes the nearest element of its name, unless a special element is nearer.
            _ => self.close_in_scope(&[name], role::SPECIAL),
        }
    }

    /// The index of the innermost open element named one of `names`, unless an element with the role
    /// `boundary` (not itself one of `names`) is nearer.
    fn find_in_scope(&self, names: &[&str], boundary: u8) -> Option<usize> {
        if !names.iter().any(|name| self.is_open(name)) {
            return None;
        }
        for (at, open) in self.open.iter().enumerate().rev() {
            if names.contains(&open.name.as_str()) {
                return Some(at);
            }
            if open.roles & boundary != 0 {
                return None;
            }
        }
        None
    }

    fn close_in_scope(&mut self, names: &[&str], boundary: u8) {
        if let Some(at) = self.find_in_scope(names, boundary) {
            self.pop_to(at);
        }
    }

    /// `<li>` (`<dd>`, `<dt>`) closes an open one unless a special element other than `address`, `div`
    /// and `p` is nearer.
    fn close_item(&mut self, names: &[&str]) {
        self.close_in_scope(names, role::ENDS_ITEM_SEARCH);
    }

    /// A formatting element's end (or a new `<a>` or `<nobr>`): with nothing special above it, everything
    /// from it up closes; with a special element above it, the adoption agency moves that one under a clone,
    /// so only the formatting element itself is counted as closed.
    fn close_formatting(&mut self, name: &str) {
        let Some(at) = self.find_in_scope(&[name], role::SCOPE) else { return };
        if self.open[at + 1..].iter().any(|open| open.roles & role::SPECIAL != 0) {
            let closed = self.open.remove(at);
            if let Some(count) = self.counts.get_mut(&closed.name) {
                *count -= 1;
            }
        } else {
            self.pop_to(at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn depth(html: &str) -> usize {
        nesting_depth(html, 10_000).unwrap()
    }

    #[test]
    fn nesting_is_measured_through_closed_elements() {
        assert_eq!(depth("<div><span>a</span><p>b</p></div>"), 2);
        assert_eq!(depth("<html><head><title>x</title></head><body><div></div></body></html>"), 1);
        assert_eq!(depth(&"<div>".repeat(300)), 300);
        assert_eq!(depth(&format!("{}x{}", "<div>".repeat(50), "</div>".repeat(50)).repeat(3)), 50);
    }

    #[test]
    fn implied_ends_close_what_the_parser_closes() {
        // Unclosed items, cells, rows, paragraphs and links, as sloppy boards write them.
        let list = format!("<ul>{}</ul>", "<li><a href='/n'>공지</a> 2026-06-13".repeat(500));
        assert_eq!(depth(&list), 3);
        let table = format!(
            "<table><tbody>{}</table>",
            "<tr><td>1<td><a href=/v?id=1>공지</a><td>x".repeat(500)
        );
        assert_eq!(depth(&table), 5);
        assert_eq!(depth(&"<p>문단 <div>블록</div>".repeat(500)), 1);
        assert_eq!(depth(&"<a href=x>one ".repeat(500)), 1);
        assert_eq!(depth(&"<dl><dt>a<dd>b</dl>".repeat(200)), 2);
        assert_eq!(depth(&"<h2>x<h3>y".repeat(200)), 1);
        assert_eq!(depth(&"<select><option>a<option>b</select>".repeat(200)), 2);
    }

    #[test]
    fn what_opens_nothing_is_not_counted() {
        assert_eq!(depth(&"<br><img src=x><input><hr>".repeat(500)), 0);
        assert_eq!(depth(&format!("<!-- {} -->", "<div>".repeat(500))), 0);
        assert_eq!(depth(&format!("<script>{}</SCRIPT>", "<div>".repeat(500))), 0);
        assert_eq!(depth(&format!("<textarea>{}</textarea>", "<div>".repeat(500))), 0);
        assert_eq!(depth(&format!("<div title='>{}'>", "<div>".repeat(500))), 1);
        assert_eq!(depth(&format!("<svg>{}</svg>", "<path d='M0 0'/>".repeat(500))), 1);
        assert_eq!(depth("<!DOCTYPE html><?xml version='1.0'?></><div></div>"), 1);
    }

    #[test]
    fn tricks_that_keep_elements_open_are_counted() {
        // The parser ignores each of these end tags (or `/>`), so the elements stay open and nest.
        assert_eq!(depth(&"<div/>".repeat(300)), 300, "`/>` does not close an HTML element");
        assert_eq!(depth(&"<span><div></span>".repeat(150)), 300, "a div above the span");
        assert_eq!(depth(&"<p><div>".repeat(300)), 300, "each div closes a p, then stays open");
        assert_eq!(depth(&"<table><tr><td>".repeat(100)), 300, "a table in a cell nests");
        assert_eq!(
            depth(&"<div><table></div>".repeat(100)),
            3,
            "a table directly in a table closes it"
        );
        assert_eq!(depth(&"<b><div></b>".repeat(300)), 301, "the adoption agency keeps the div");
        assert_eq!(depth(&"<li><ul>".repeat(150)), 300, "a list is special: li stops there");
        assert_eq!(depth(&"<div></p>".repeat(300)), 300, "a stray end tag closes nothing");
        assert_eq!(depth(&"<div><![CDATA[>]]>".repeat(300)), 300, "CDATA outside svg ends at `>`");
    }

    #[test]
    fn the_scan_stops_past_the_limit() {
        let deep = "<div>".repeat(1_000_000);
        let started = std::time::Instant::now();
        assert_eq!(nesting_depth(&deep, 256), Err(TooDeep { limit: 256, at: 257 * 5 }));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(nesting_depth(&"<div>".repeat(256), 256), Ok(256));
    }
}
