//! String keys the server emits for the app to localize, and the check that keeps them, the app's String
//! Catalog (`contracts/localization/Localizable.xcstrings`) and the documented key table
//! (`contracts/localization/KEYS.md`) in agreement.
//!
//! APNs resolves `loc-key` against the **app bundle's** strings, so a key the server sends but the catalog
//! lacks shows the raw key on a lock screen. Keys are derived from the types that emit them (push alerts,
//! reason codes, freshness and source states, congestion levels), so adding an enum value without a
//! translation fails the check.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::LazyLock,
};

use serde::Deserialize;

use crate::{
    app_release::AppRelease,
    enums::WireEnum,
    freshness::{FreshnessState, SourceStatus},
    v2::{CongestionLevel, Lang, ReasonCode},
};

/// The app's String Catalog and the key table, as shipped with this release.
const SHIPPED_CATALOG: &str = include_str!("../localization/Localizable.xcstrings");
const SHIPPED_TABLE: &str = include_str!("../localization/KEYS.md");

/// Languages every key must be translated into.
pub const LANGUAGES: [&str; 4] = ["ko", "en", "ja", "zh-Hans"];

/// Push alert bodies (`aps.alert.loc-key`), with the arguments they take in `loc-args`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PushKey {
    /// `[lot name, available spaces]`
    LotAvailableBelow,
    /// `[lot name, available spaces]`
    LotAvailableAbove,
    /// `[lot name]`
    LotFull,
    /// `[park name, congestion level text]`
    CongestionEased,
    /// `[park name, congestion level text]`
    CongestionRose,
    /// `[park name, event title]`
    EventCancelled,
    /// `[park name, event title]`
    EventReinstated,
    /// `[park name]`
    ParkClosed,
    /// `[]`
    Test,
}

impl PushKey {
    pub const ALL: [PushKey; 9] = [
        PushKey::LotAvailableBelow,
        PushKey::LotAvailableAbove,
        PushKey::LotFull,
        PushKey::CongestionEased,
        PushKey::CongestionRose,
        PushKey::EventCancelled,
        PushKey::EventReinstated,
        PushKey::ParkClosed,
        PushKey::Test,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PushKey::LotAvailableBelow => "PUSH_LOT_AVAILABLE_BELOW",
            PushKey::LotAvailableAbove => "PUSH_LOT_AVAILABLE_ABOVE",
            PushKey::LotFull => "PUSH_LOT_FULL",
            PushKey::CongestionEased => "PUSH_CONGESTION_EASED",
            PushKey::CongestionRose => "PUSH_CONGESTION_ROSE",
            PushKey::EventCancelled => "PUSH_EVENT_CANCELLED",
            PushKey::EventReinstated => "PUSH_EVENT_REINSTATED",
            PushKey::ParkClosed => "PUSH_PARK_CLOSED",
            PushKey::Test => "PUSH_TEST",
        }
    }

    /// How many `loc-args` the alert text consumes (`%1$@`, `%2$@`, …).
    pub fn arg_count(self) -> usize {
        match self {
            PushKey::LotAvailableBelow
            | PushKey::LotAvailableAbove
            | PushKey::CongestionEased
            | PushKey::CongestionRose
            | PushKey::EventCancelled
            | PushKey::EventReinstated => 2,
            PushKey::LotFull | PushKey::ParkClosed => 1,
            PushKey::Test => 0,
        }
    }
}

/// The String Catalog key of an enum value shown as text: `<PREFIX>_<WIRE VALUE IN UPPER CASE>`.
pub fn enum_key<E: WireEnum>(prefix: &str, value: E) -> String {
    format!("{prefix}_{}", value.as_str().to_uppercase())
}

/// Every key the server emits, with the number of arguments each takes.
pub fn emitted_keys() -> BTreeMap<String, usize> {
    let mut keys: BTreeMap<String, usize> =
        PushKey::ALL.iter().map(|key| (key.as_str().to_owned(), key.arg_count())).collect();
    keys.extend(ReasonCode::VALUES.iter().map(|&value| (enum_key("REASON", value), 0)));
    keys.extend(FreshnessState::VALUES.iter().map(|&value| (enum_key("FRESHNESS", value), 0)));
    keys.extend(SourceStatus::VALUES.iter().map(|&value| (enum_key("SOURCE_STATUS", value), 0)));
    keys.extend(CongestionLevel::VALUES.iter().map(|&value| (enum_key("CONGESTION", value), 0)));
    keys
}

/// One disagreement between the code, the catalog and the key table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    MissingFromCatalog {
        key: String,
    },
    MissingFromTable {
        key: String,
    },
    MissingLanguage {
        key: String,
        lang: &'static str,
    },
    WrongArgumentCount {
        key: String,
        lang: String,
        expected: usize,
        found: usize,
    },
    CatalogKeyNotEmitted {
        key: String,
    },
    TableKeyNotEmitted {
        key: String,
    },
    /// The table's `since` cell (the app release whose bundle first had the key) is missing or not a version.
    NoIntroducingRelease {
        key: String,
    },
    Malformed {
        what: String,
    },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::MissingFromCatalog { key } => {
                write!(f, "{key}: emitted by the server but missing from Localizable.xcstrings")
            }
            Problem::MissingFromTable { key } => {
                write!(f, "{key}: emitted by the server but missing from KEYS.md")
            }
            Problem::MissingLanguage { key, lang } => {
                write!(f, "{key}: no translated `{lang}` string in Localizable.xcstrings")
            }
            Problem::WrongArgumentCount { key, lang, expected, found } => write!(
                f,
                "{key} ({lang}): the server sends {expected} loc-args but the text uses {found}"
            ),
            Problem::CatalogKeyNotEmitted { key } => {
                write!(f, "{key}: in Localizable.xcstrings but nothing emits it")
            }
            Problem::TableKeyNotEmitted { key } => {
                write!(f, "{key}: in KEYS.md but nothing emits it")
            }
            Problem::NoIntroducingRelease { key } => write!(
                f,
                "{key}: KEYS.md gives no app release that introduced it (the `since` column, e.g. 2.4.0)"
            ),
            Problem::Malformed { what } => write!(f, "{what}"),
        }
    }
}

#[derive(Deserialize)]
struct Catalog {
    #[serde(rename = "sourceLanguage")]
    source_language: String,
    strings: BTreeMap<String, CatalogEntry>,
}

#[derive(Deserialize)]
struct CatalogEntry {
    #[serde(default)]
    localizations: BTreeMap<String, Localization>,
}

#[derive(Deserialize)]
struct Localization {
    #[serde(rename = "stringUnit")]
    string_unit: Option<StringUnit>,
}

#[derive(Deserialize)]
struct StringUnit {
    state: String,
    value: String,
}

/// Checks the catalog (`Localizable.xcstrings` JSON) and the key table (`KEYS.md`) against [`emitted_keys`].
/// Returns every problem found, sorted; empty means they agree.
pub fn check(catalog_json: &str, keys_table_markdown: &str) -> Vec<Problem> {
    let emitted = emitted_keys();
    let mut problems = BTreeSet::new();

    let catalog: Catalog = match serde_json::from_str(catalog_json) {
        Ok(catalog) => catalog,
        Err(error) => {
            return vec![Problem::Malformed { what: format!("Localizable.xcstrings: {error}") }];
        }
    };
    if catalog.source_language != "ko" {
        problems.insert(Problem::Malformed {
            what: format!(
                "Localizable.xcstrings: sourceLanguage is `{}`, expected `ko`",
                catalog.source_language
            ),
        });
    }
    let table_keys = table_keys(keys_table_markdown);
    let introduced = introducing_releases(keys_table_markdown);

    for (key, &expected_args) in &emitted {
        if !table_keys.contains(key) {
            problems.insert(Problem::MissingFromTable { key: key.clone() });
        } else if !introduced.contains_key(key) {
            problems.insert(Problem::NoIntroducingRelease { key: key.clone() });
        }
        let Some(entry) = catalog.strings.get(key) else {
            problems.insert(Problem::MissingFromCatalog { key: key.clone() });
            continue;
        };
        for lang in LANGUAGES {
            let unit = entry.localizations.get(lang).and_then(|l| l.string_unit.as_ref());
            match unit {
                Some(unit) if unit.state == "translated" && !unit.value.trim().is_empty() => {
                    let found = positional_args(&unit.value);
                    if found != expected_args {
                        problems.insert(Problem::WrongArgumentCount {
                            key: key.clone(),
                            lang: lang.to_owned(),
                            expected: expected_args,
                            found,
                        });
                    }
                }
                _ => {
                    problems.insert(Problem::MissingLanguage { key: key.clone(), lang });
                }
            }
        }
    }
    for key in catalog.strings.keys().filter(|key| !emitted.contains_key(*key)) {
        problems.insert(Problem::CatalogKeyNotEmitted { key: key.clone() });
    }
    for key in table_keys.iter().filter(|key| !emitted.contains_key(*key)) {
        problems.insert(Problem::TableKeyNotEmitted { key: key.clone() });
    }
    problems.into_iter().collect()
}

/// Keys in the first column of the Markdown table rows whose first cell is a code span: `` | `KEY` | … ``.
fn table_keys(markdown: &str) -> BTreeSet<String> {
    markdown
        .lines()
        .filter_map(|line| line.trim().strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(key, _)| key.to_owned())
        .collect()
}

/// Each table key's `since` cell, where it is an app release (`| `KEY` | … | 2.4.0 |`, the column the header
/// names `since`).
fn introducing_releases(markdown: &str) -> BTreeMap<String, AppRelease> {
    let cells = |line: &str| -> Vec<String> {
        line.trim().trim_matches('|').split('|').map(|cell| cell.trim().to_owned()).collect()
    };
    let Some(column) = markdown
        .lines()
        .find(|line| line.trim().starts_with("| key |"))
        .and_then(|header| cells(header).iter().position(|cell| cell == "since"))
    else {
        return BTreeMap::new();
    };
    markdown
        .lines()
        .filter(|line| line.trim().starts_with("| `"))
        .filter_map(|line| {
            let cells = cells(line);
            let key = cells.first()?.trim_matches('`').to_owned();
            let release = cells.get(column)?.trim_matches('`').parse().ok()?;
            Some((key, release))
        })
        .collect()
}

/// The app release whose bundle first had `key` (from the shipped `KEYS.md`): an installation on an earlier
/// release would show the raw key, so it is sent text instead. `None` for a key the table does not date.
pub fn introduced_in(key: &str) -> Option<AppRelease> {
    static INTRODUCED: LazyLock<BTreeMap<String, AppRelease>> =
        LazyLock::new(|| introducing_releases(SHIPPED_TABLE));
    INTRODUCED.get(key).copied()
}

/// `key`'s text in `lang` from the shipped catalog with `args` in place of its `%N$@` (and `%@`) arguments:
/// what the app would show, for installations whose build lacks the key. Korean, the catalog's source
/// language, when `lang` has no translation; `None` for a key the catalog lacks.
pub fn render(key: &str, lang: Lang, args: &[String]) -> Option<String> {
    static CATALOG: LazyLock<Option<Catalog>> =
        LazyLock::new(|| serde_json::from_str(SHIPPED_CATALOG).ok());
    let entry = CATALOG.as_ref()?.strings.get(key)?;
    let text = |lang: &str| {
        let unit = entry.localizations.get(lang)?.string_unit.as_ref()?;
        (unit.state == "translated").then_some(unit.value.as_str())
    };
    let format = text(lang.as_str()).or_else(|| text("ko"))?;
    Some(substitute(format, args))
}

/// `format` with `%N$@` replaced by `args[N - 1]`, `%@` by the next argument, and `%%` by `%`.
fn substitute(format: &str, args: &[String]) -> String {
    let mut out = String::with_capacity(format.len() + args.iter().map(String::len).sum::<usize>());
    let mut next = 0;
    let mut rest = format;
    while let Some(start) = rest.find('%') {
        out.push_str(&rest[..start]);
        rest = &rest[start + 1..];
        if let Some(after) = rest.strip_prefix('%') {
            out.push('%');
            rest = after;
        } else if let Some(after) = rest.strip_prefix('@') {
            out.push_str(args.get(next).map_or("", String::as_str));
            next += 1;
            rest = after;
        } else {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            match rest[digits.len()..].strip_prefix("$@") {
                Some(after) if !digits.is_empty() => {
                    let index = digits.parse::<usize>().unwrap_or(0);
                    out.push_str(
                        index.checked_sub(1).and_then(|i| args.get(i)).map_or("", String::as_str),
                    );
                    rest = after;
                }
                _ => out.push('%'),
            }
        }
    }
    out.push_str(rest);
    out
}

/// The catalog language for an installation's locale (`ko-KR`, `en_US`, `zh-Hans-CN`, `zh-CN`): Korean,
/// the source language, when none of the app's languages fits (Traditional Chinese included).
pub fn lang_of_locale(locale: &str) -> Lang {
    let lower = locale.trim().to_ascii_lowercase().replace('_', "-");
    let mut subtags = lower.split('-');
    match subtags.next() {
        Some("en") => Lang::En,
        Some("ja") => Lang::Ja,
        Some("zh") => {
            let traditional = subtags.any(|tag| matches!(tag, "hant" | "tw" | "hk" | "mo"));
            if traditional { Lang::Ko } else { Lang::ZhHans }
        }
        _ => Lang::Ko,
    }
}

/// The highest positional argument (`%N$@`) a format string uses; Apple requires positional arguments when
/// languages reorder them.
fn positional_args(format: &str) -> usize {
    let mut highest = 0;
    let mut rest = format;
    while let Some(start) = rest.find('%') {
        rest = &rest[start + 1..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() && rest[digits.len()..].starts_with("$@") {
            highest = highest.max(digits.parse().unwrap_or(0));
        }
    }
    highest
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = SHIPPED_CATALOG;
    const TABLE: &str = SHIPPED_TABLE;

    #[test]
    fn every_key_has_the_release_that_introduced_it() {
        for key in emitted_keys().keys() {
            assert!(introduced_in(key).is_some(), "{key} has no `since` release in KEYS.md");
        }
        let undated = TABLE.replacen("| 2.0.0 |", "|  |", 1);
        assert!(
            check(CATALOG, &undated)
                .iter()
                .any(|problem| matches!(problem, Problem::NoIntroducingRelease { .. })),
            "a key without its release must fail the check"
        );
    }

    #[test]
    fn keys_render_as_the_app_would_show_them() {
        let args = ["여의도2주차장".to_owned(), "7".to_owned()];
        assert_eq!(
            render("PUSH_LOT_AVAILABLE_BELOW", Lang::En, &args).as_deref(),
            Some("여의도2주차장: 7 spaces left")
        );
        assert_eq!(
            render("PUSH_LOT_AVAILABLE_BELOW", Lang::Ko, &args).as_deref(),
            Some("여의도2주차장: 남은 자리 7면")
        );
        assert_eq!(render("NO_SUCH_KEY", Lang::Ko, &[]), None);
        assert_eq!(substitute("%2$@ %1$@ 100%% %@", &["a".into(), "b".into()]), "b a 100% a");
        assert_eq!(lang_of_locale("ja-JP"), Lang::Ja);
        assert_eq!(lang_of_locale("zh-Hans-CN"), Lang::ZhHans);
        assert_eq!(lang_of_locale("zh-TW"), Lang::Ko);
        assert_eq!(lang_of_locale("en_GB"), Lang::En);
        assert_eq!(lang_of_locale("fr-FR"), Lang::Ko);
    }

    #[test]
    fn shipped_catalog_and_table_cover_every_emitted_key() {
        let problems = check(CATALOG, TABLE);
        assert!(
            problems.is_empty(),
            "{}",
            problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        );
    }

    fn catalog_without(key: &str) -> String {
        let mut catalog: serde_json::Value = serde_json::from_str(CATALOG).unwrap();
        catalog["strings"].as_object_mut().unwrap().remove(key);
        catalog.to_string()
    }

    #[test]
    fn a_key_missing_from_the_catalog_is_reported() {
        let problems = check(&catalog_without("PUSH_LOT_FULL"), TABLE);
        assert_eq!(problems, vec![Problem::MissingFromCatalog { key: "PUSH_LOT_FULL".into() }]);
    }

    #[test]
    fn a_missing_language_is_reported() {
        let mut catalog: serde_json::Value = serde_json::from_str(CATALOG).unwrap();
        catalog["strings"]["REASON_HOLIDAY"]["localizations"].as_object_mut().unwrap().remove("ja");
        let problems = check(&catalog.to_string(), TABLE);
        assert_eq!(
            problems,
            vec![Problem::MissingLanguage { key: "REASON_HOLIDAY".into(), lang: "ja" }]
        );
    }

    #[test]
    fn a_key_missing_from_the_table_is_reported() {
        let table = TABLE.replace("| `PUSH_TEST` |", "| PUSH_TEST |");
        let problems = check(CATALOG, &table);
        assert_eq!(problems, vec![Problem::MissingFromTable { key: "PUSH_TEST".into() }]);
    }

    #[test]
    fn keys_nothing_emits_are_reported() {
        let table = format!("{TABLE}\n| `PUSH_RETIRED` | push | gone |\n");
        let mut catalog: serde_json::Value = serde_json::from_str(CATALOG).unwrap();
        catalog["strings"]["PUSH_RETIRED"] = catalog["strings"]["PUSH_TEST"].clone();
        let problems = check(&catalog.to_string(), &table);
        assert_eq!(
            problems,
            vec![
                Problem::CatalogKeyNotEmitted { key: "PUSH_RETIRED".into() },
                Problem::TableKeyNotEmitted { key: "PUSH_RETIRED".into() },
            ]
        );
    }

    #[test]
    fn argument_counts_must_match_what_the_server_sends() {
        let mut catalog: serde_json::Value = serde_json::from_str(CATALOG).unwrap();
        catalog["strings"]["PUSH_LOT_FULL"]["localizations"]["en"]["stringUnit"]["value"] =
            "%1$@ is full (%2$@)".into();
        let problems = check(&catalog.to_string(), TABLE);
        assert_eq!(
            problems,
            vec![Problem::WrongArgumentCount {
                key: "PUSH_LOT_FULL".into(),
                lang: "en".into(),
                expected: 1,
                found: 2
            }]
        );
    }

    #[test]
    fn counts_positional_arguments() {
        assert_eq!(positional_args("%1$@: %2$@ spaces left"), 2);
        assert_eq!(positional_args("100% full"), 0);
        assert_eq!(positional_args("no args"), 0);
    }
}
