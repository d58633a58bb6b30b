//! Length caps for text taken from upstream: titles, names and messages are the organisers' free text, and
//! nothing stops a source from sending a 100,000-character "title" that would then be stored, translated,
//! rendered into every body and sent in alerts.
//!
//! The rule, the same for every field: text longer than its cap (counted in characters, i.e. Unicode scalar
//! values, not bytes) keeps its first `cap - 1` characters, loses trailing whitespace and ends in `…`, so a
//! capped text is at most `cap` characters, is cut on a character boundary, and visibly says it was cut. The
//! caps are far above what the real sources write (titles run to about 60 characters), so real text never
//! changes.

/// Event and notice titles.
pub const TITLE_CHARS: usize = 200;

/// Places, lot and park names.
pub const NAME_CHARS: usize = 100;

/// Longer prose: Seoul's congestion message.
pub const MESSAGE_CHARS: usize = 500;

/// What a capped text ends in.
pub const ELLIPSIS: char = '…';

/// `text` within `max_chars` characters, by the rule above.
pub fn cap(text: String, max_chars: usize) -> String {
    // The byte offset of the character after the first `max_chars`, if there is one: only then is it too long.
    let Some((too_long_at, _)) = text.char_indices().nth(max_chars) else { return text };
    let keep = max_chars.saturating_sub(1);
    let cut = text.char_indices().nth(keep).map_or(too_long_at, |(at, _)| at);
    let mut capped = text[..cut].trim_end().to_owned();
    if max_chars > 0 {
        capped.push(ELLIPSIS);
    }
    capped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_unchanged() {
        assert_eq!(cap("한강 여름축제".into(), 7), "한강 여름축제");
        assert_eq!(cap(String::new(), 3), "");
    }

    #[test]
    fn long_text_is_cut_on_a_character_boundary_and_says_so() {
        // Eight characters, each three bytes in UTF-8: a byte cut would land inside one.
        let capped = cap("여의도한강공원축".into(), 5);
        assert_eq!(capped, "여의도한…");
        assert_eq!(capped.chars().count(), 5);
        // Whitespace before the cut is dropped, so the ellipsis follows a word.
        assert_eq!(cap("한강 여름 축제 안내".into(), 4), "한강…");
    }

    #[test]
    fn every_capped_text_fits_its_cap() {
        let long: String = "가나다 abc 😀 ".repeat(100);
        for max in 1..60 {
            let capped = cap(long.clone(), max);
            assert!(capped.chars().count() <= max, "{max}: {capped}");
            assert!(capped.ends_with(ELLIPSIS), "{max}: {capped}");
            assert!(long.starts_with(capped.trim_end_matches(ELLIPSIS)), "{max}: {capped}");
        }
    }
}
