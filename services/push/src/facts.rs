//! What a `SubmitFacts` request may carry, checked before anything of it is stored: a fact's text reaches
//! every subscriber's lock screen, so its park and lot must be ones the reference data knows (and the lot
//! must be in the park), and every key, id, count and attribute is bounded.
//!
//! A request is accepted or refused whole. It is one ingest outbox row and is stored in one transaction, so
//! refusing only its bad facts would need a partial answer the contract does not have, and a row with one bad
//! fact is a bug or a forgery, not news to alert on: nothing of it is stored, and the refusal
//! (`InvalidArgument`, naming the first bad field as `facts[<i>].<field>`) stays in ingest's outbox as the
//! row's error until the row's deadline expires it. Facts of a kind this build does not know are still
//! skipped, not refused, since a newer ingest may send more.

use std::collections::{BTreeSet, HashMap};

use contracts::fact::{Fact, FactKind};
use sqlx::PgPool;

/// Most facts in one request (a collection run queues a few dozen).
pub const MAX_FACTS: usize = 1_000;

/// Longest fact key, in characters (ingest's are `kind:id:unix seconds`, under 100).
pub const MAX_KEY_CHARS: usize = 200;

/// Longest park, lot or event id, in characters.
pub const MAX_ID_CHARS: usize = 64;

/// Most attributes on one fact (ingest sends at most three).
pub const MAX_ATTRIBUTES: usize = 16;

/// Longest attribute name, in characters: lowercase letters, digits and `_`.
pub const MAX_ATTRIBUTE_NAME_CHARS: usize = 64;

/// Longest attribute value, in characters: an event title is one, and ingest caps titles at 200.
pub const MAX_ATTRIBUTE_VALUE_CHARS: usize = 300;

/// The largest count a fact may report: no lot holds more spaces.
pub const MAX_COUNT: i64 = 100_000;

/// A fact that may not be stored: the field, as `facts[<i>].<field>`, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidFact {
    pub field: String,
    pub problem: String,
}

impl InvalidFact {
    pub fn new(index: usize, field: &str, problem: impl Into<String>) -> InvalidFact {
        InvalidFact { field: format!("facts[{index}].{field}"), problem: problem.into() }
    }
}

/// The parks and lots the reference data knows, of those a request names.
#[derive(Clone, Debug, Default)]
pub struct Known {
    parks: BTreeSet<String>,
    /// Lot id → its park.
    lots: HashMap<String, String>,
}

impl Known {
    /// Reads from `reference.park` and `reference.lot` the parks and lots `facts` name.
    pub async fn load(pool: &PgPool, facts: &[(usize, Fact)]) -> sqlx::Result<Known> {
        let park_ids: Vec<&str> = facts.iter().map(|(_, fact)| fact.park_id.as_str()).collect();
        let lot_ids: Vec<&str> =
            facts.iter().filter_map(|(_, fact)| fact.lot_id.as_deref()).collect();
        let parks: Vec<(String,)> =
            sqlx::query_as("select park_id from reference.park where park_id = any($1)")
                .bind(&park_ids)
                .fetch_all(pool)
                .await?;
        let lots: Vec<(String, String)> =
            sqlx::query_as("select lot_id, park_id from reference.lot where lot_id = any($1)")
                .bind(&lot_ids)
                .fetch_all(pool)
                .await?;
        Ok(Known {
            parks: parks.into_iter().map(|(park,)| park).collect(),
            lots: lots.into_iter().collect(),
        })
    }
}

/// The first reason the facts (each with its index in the request) may not be stored, if any.
pub fn check(facts: &[(usize, Fact)], known: &Known) -> Result<(), InvalidFact> {
    facts.iter().try_for_each(|(index, fact)| check_one(*index, fact, known))
}

fn check_one(index: usize, fact: &Fact, known: &Known) -> Result<(), InvalidFact> {
    let invalid = |field: &str, problem: String| InvalidFact::new(index, field, problem);
    bounded_text(&fact.fact_key, MAX_KEY_CHARS).map_err(|problem| invalid("fact_key", problem))?;
    if !known.parks.contains(&fact.park_id) {
        return Err(invalid("park_id", format!("unknown park `{}`", shown(&fact.park_id))));
    }
    match &fact.lot_id {
        Some(lot_id) => match known.lots.get(lot_id) {
            None => return Err(invalid("lot_id", format!("unknown lot `{}`", shown(lot_id)))),
            Some(park_id) if *park_id != fact.park_id => {
                return Err(invalid(
                    "lot_id",
                    format!("lot `{lot_id}` is in park `{park_id}`, not `{}`", fact.park_id),
                ));
            }
            Some(_) => {}
        },
        None if fact.kind == FactKind::LotAvailability => {
            return Err(invalid("lot_id", "a lot_availability fact names its lot".into()));
        }
        None => {}
    }
    if let Some(event_id) = &fact.event_id {
        bounded_text(event_id, MAX_ID_CHARS).map_err(|problem| invalid("event_id", problem))?;
    }
    for (field, value) in
        [("previous_value", fact.previous_value), ("current_value", fact.current_value)]
    {
        if value.is_some_and(|count| !(0..=MAX_COUNT).contains(&count)) {
            return Err(invalid(field, format!("expected a count from 0 to {MAX_COUNT}")));
        }
    }
    if fact.attributes.len() > MAX_ATTRIBUTES {
        return Err(invalid(
            "attributes",
            format!("{} attributes, at most {MAX_ATTRIBUTES}", fact.attributes.len()),
        ));
    }
    for (name, value) in &fact.attributes {
        let well_named = (1..=MAX_ATTRIBUTE_NAME_CHARS).contains(&name.chars().count())
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !well_named {
            return Err(invalid(
                "attributes",
                format!(
                    "attribute name `{}`: expected 1 to {MAX_ATTRIBUTE_NAME_CHARS} of a-z, 0-9 and _",
                    shown(name)
                ),
            ));
        }
        bounded_text(value, MAX_ATTRIBUTE_VALUE_CHARS)
            .map_err(|problem| invalid(&format!("attributes.{name}"), problem))?;
    }
    Ok(())
}

/// Non-empty text of at most `max_chars` characters, without control characters (an alert is one line).
fn bounded_text(text: &str, max_chars: usize) -> Result<(), String> {
    let chars = text.chars().count();
    if chars == 0 {
        return Err("must not be empty".into());
    }
    if chars > max_chars {
        return Err(format!("{chars} characters, at most {max_chars}"));
    }
    if text.chars().any(char::is_control) {
        return Err("contains control characters".into());
    }
    Ok(())
}

/// A value as an error message may show it: its first [`MAX_ID_CHARS`] characters, escaped.
fn shown(value: &str) -> String {
    let mut shown: String =
        value.chars().take(MAX_ID_CHARS).flat_map(char::escape_default).collect();
    if value.chars().count() > MAX_ID_CHARS {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn known() -> Known {
        Known {
            parks: ["yeouido".to_owned(), "banpo".to_owned()].into(),
            lots: [("yeouido-2".to_owned(), "yeouido".to_owned())].into(),
        }
    }

    fn lot_fact() -> Fact {
        Fact {
            lot_id: Some("yeouido-2".into()),
            previous_value: Some(60),
            current_value: Some(40),
            attributes: BTreeMap::from([("lot_name_ko".into(), "여의도2주차장".into())]),
            ..Fact::new("lot:yeouido-2:1".into(), FactKind::LotAvailability, "yeouido".into())
        }
    }

    fn refused(fact: Fact) -> String {
        check(&[(0, lot_fact()), (1, fact)], &known()).unwrap_err().to_string()
    }

    #[test]
    fn facts_from_ingest_pass() {
        let closed =
            Fact::new("park-closed:hn-1:banpo".into(), FactKind::ParkClosed, "banpo".into());
        assert_eq!(check(&[(0, lot_fact()), (1, closed)], &known()), Ok(()));
    }

    #[test]
    fn unknown_or_mismatched_places_are_refused_naming_the_field() {
        assert_eq!(
            refused(Fact { park_id: "atlantis".into(), ..lot_fact() }),
            "facts[1].park_id: unknown park `atlantis`"
        );
        assert_eq!(
            refused(Fact { lot_id: Some("yeouido-99".into()), ..lot_fact() }),
            "facts[1].lot_id: unknown lot `yeouido-99`"
        );
        assert_eq!(
            refused(Fact { park_id: "banpo".into(), ..lot_fact() }),
            "facts[1].lot_id: lot `yeouido-2` is in park `yeouido`, not `banpo`"
        );
        assert_eq!(
            refused(Fact { lot_id: None, ..lot_fact() }),
            "facts[1].lot_id: a lot_availability fact names its lot"
        );
    }

    #[test]
    fn values_at_and_past_the_caps() {
        let mut fact = lot_fact();
        fact.attributes.insert("event_title_ko".into(), "가".repeat(MAX_ATTRIBUTE_VALUE_CHARS));
        assert_eq!(check(&[(0, fact.clone())], &known()), Ok(()), "at the cap");
        fact.attributes.insert("event_title_ko".into(), "가".repeat(MAX_ATTRIBUTE_VALUE_CHARS + 1));
        assert_eq!(
            refused(fact),
            "facts[1].attributes.event_title_ko: 301 characters, at most 300"
        );
        let mut fact = lot_fact();
        fact.attributes.insert("event_title_ko".into(), "줄\n바꿈".into());
        assert_eq!(
            refused(fact),
            "facts[1].attributes.event_title_ko: contains control characters"
        );
        let mut fact = lot_fact();
        fact.attributes.insert("Bad Name".into(), "x".into());
        assert!(refused(fact).starts_with("facts[1].attributes: attribute name `Bad Name`"));
        let mut fact = lot_fact();
        fact.attributes = (0..=MAX_ATTRIBUTES).map(|i| (format!("a{i}"), "x".into())).collect();
        assert_eq!(refused(fact), "facts[1].attributes: 17 attributes, at most 16");
        assert_eq!(
            refused(Fact { fact_key: "k".repeat(MAX_KEY_CHARS + 1), ..lot_fact() }),
            "facts[1].fact_key: 201 characters, at most 200"
        );
        assert_eq!(
            refused(Fact { fact_key: String::new(), ..lot_fact() }),
            "facts[1].fact_key: must not be empty"
        );
        assert_eq!(
            refused(Fact { event_id: Some("e".repeat(65)), ..lot_fact() }),
            "facts[1].event_id: 65 characters, at most 64"
        );
        assert_eq!(
            refused(Fact { current_value: Some(-1), ..lot_fact() }),
            "facts[1].current_value: expected a count from 0 to 100000"
        );
        assert_eq!(
            refused(Fact { previous_value: Some(MAX_COUNT + 1), ..lot_fact() }),
            "facts[1].previous_value: expected a count from 0 to 100000"
        );
    }

    #[test]
    fn refusals_never_echo_a_long_value_whole() {
        let message =
            refused(Fact { park_id: format!("{}\u{1b}[31m", "p".repeat(5_000)), ..lot_fact() });
        assert!(message.chars().count() < 120, "{message}");
        assert!(message.ends_with("…`"), "{message}");
        let escaped = refused(Fact { park_id: "a\u{1b}[31mb".into(), ..lot_fact() });
        assert_eq!(escaped, "facts[1].park_id: unknown park `a\\u{1b}[31mb`");
    }
}
