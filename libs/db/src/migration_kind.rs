//! Whether a migration is *expand* (it only adds: the previous release keeps working against the migrated
//! database, so a rollback across it works) or *contract* (it drops, renames, changes a type, adds a NOT NULL
//! column without a default, …: the previous release may fail against it), judged from its SQL.
//!
//! Every statement is judged on its own; a migration is contract when any statement is. A statement this
//! module cannot judge (a data backfill, a `do` block, a replaced function) needs an explicit override in the
//! file, a comment line `-- migration-kind: expand (why)` or `-- migration-kind: contract (why)`, which CI
//! prints beside the migration. The override wins over what the statements say, so it can also mark a
//! statement that looks destructive but is not (a CHECK constraint dropped and replaced by a wider one).

use std::fmt;

/// The two kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Expand,
    Contract,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Expand => "expand",
            Kind::Contract => "contract",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        match text {
            "expand" => Some(Kind::Expand),
            "contract" => Some(Kind::Contract),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What one statement does to the previous release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Session settings, comments, grants: nothing the previous release can notice.
    Neutral,
    /// Only adds.
    Expand,
    /// May break the previous release, and why.
    Contract(&'static str),
    /// Cannot be judged from the text, and why.
    Unknown(&'static str),
}

/// A migration's kind and how it was decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub kind: Kind,
    /// Set when the file's `-- migration-kind:` comment decided: its reason.
    pub overridden: Option<String>,
    /// The statements that make it contract (or that the override judged), each with why.
    pub findings: Vec<String>,
}

/// Why a migration could not be judged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum JudgeError {
    #[error(
        "cannot tell whether it is expand or contract: {}; add `-- migration-kind: expand (why)` or \
         `-- migration-kind: contract (why)`",
        .0.join("; ")
    )]
    Unjudgeable(Vec<String>),
    #[error("`-- migration-kind:` must name expand or contract and give a reason, found `{0}`")]
    BadOverride(String),
}

/// The marker of an override comment.
const OVERRIDE: &str = "migration-kind:";

/// Judges a migration's SQL.
pub fn judge(sql: &str) -> Result<Judgement, JudgeError> {
    let overridden = override_comment(sql)?;
    let mut findings = Vec::new();
    let mut unknown = Vec::new();
    let mut contract = false;
    for statement in statements(sql) {
        match effect(&statement) {
            Effect::Neutral | Effect::Expand => {}
            Effect::Contract(why) => {
                contract = true;
                findings.push(format!("`{}`: {why}", abbreviate(&statement)));
            }
            Effect::Unknown(why) => unknown.push(format!("`{}`: {why}", abbreviate(&statement))),
        }
    }
    match overridden {
        Some((kind, reason)) => {
            findings.extend(unknown);
            Ok(Judgement { kind, overridden: Some(reason), findings })
        }
        None if !unknown.is_empty() => Err(JudgeError::Unjudgeable(unknown)),
        None => Ok(Judgement {
            kind: if contract { Kind::Contract } else { Kind::Expand },
            overridden: None,
            findings,
        }),
    }
}

/// The kind of a migration that must be decided even when it cannot be judged (at run time, where a CI
/// check has already passed): contract then, the kind that refuses rather than risks.
pub fn kind_or_contract(sql: &str) -> Kind {
    judge(sql).map_or(Kind::Contract, |judgement| judgement.kind)
}

fn override_comment(sql: &str) -> Result<Option<(Kind, String)>, JudgeError> {
    let Some(line) = sql
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("--"))
        .map(str::trim)
        .find(|comment| comment.starts_with(OVERRIDE))
    else {
        return Ok(None);
    };
    let rest = line[OVERRIDE.len()..].trim();
    let (word, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let reason = reason.trim().trim_start_matches('(').trim_end_matches(')').trim();
    match Kind::parse(word) {
        Some(kind) if !reason.is_empty() => Ok(Some((kind, reason.to_owned()))),
        _ => Err(JudgeError::BadOverride(line.to_owned())),
    }
}

fn abbreviate(statement: &str) -> String {
    const LONGEST: usize = 90;
    if statement.chars().count() <= LONGEST {
        return statement.to_owned();
    }
    let cut: String = statement.chars().take(LONGEST).collect();
    format!("{cut}…")
}

/// The statements of `sql`, comments removed, string and identifier contents blanked, lower-cased and with
/// single spaces, so the rules below see only the SQL's structure.
pub fn statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                current.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut previous = ' ';
                for c in chars.by_ref() {
                    if previous == '*' && c == '/' {
                        break;
                    }
                    previous = c;
                }
                current.push(' ');
            }
            '\'' | '"' => {
                // '' and "" inside are escapes: the loop simply reopens the quote.
                for inner in chars.by_ref() {
                    if inner == c {
                        break;
                    }
                }
                current.push(c);
                current.push(c);
            }
            '$' => {
                // A dollar-quoted body: `$$ … $$` or `$tag$ … $tag$`.
                let mut tag = String::from("$");
                while let Some(&next) = chars.peek() {
                    if next == '$' || next.is_alphanumeric() || next == '_' {
                        tag.push(next);
                        chars.next();
                        if next == '$' {
                            break;
                        }
                    } else {
                        break;
                    }
                }
                if tag.len() >= 2 && tag.ends_with('$') {
                    let mut body = String::new();
                    for inner in chars.by_ref() {
                        body.push(inner);
                        if body.ends_with(&tag) {
                            break;
                        }
                    }
                    current.push_str("$$");
                } else {
                    current.push_str(&tag); // a positional parameter such as $1
                }
            }
            ';' => statements.push(std::mem::take(&mut current)),
            c => current.extend(c.to_lowercase()),
        }
    }
    statements.push(current);
    statements
        .into_iter()
        .map(|statement| statement.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// What one normalized statement (see [`statements`]) does.
pub fn effect(statement: &str) -> Effect {
    let has = |prefix: &str| statement.starts_with(prefix);
    if ["set ", "reset ", "comment on ", "grant ", "analyze"].iter().any(|prefix| has(prefix)) {
        return Effect::Neutral;
    }
    if has("create or replace ") {
        return Effect::Unknown("replaces an existing definition the previous release may use");
    }
    let created = [
        "create schema ",
        "create table ",
        "create unlogged table ",
        "create index ",
        "create unique index ",
        "create sequence ",
        "create type ",
        "create domain ",
        "create extension ",
        "create view ",
        "create materialized view ",
        "create function ",
        "create procedure ",
        "create trigger ",
    ];
    if created.iter().any(|prefix| has(prefix)) || has("insert into ") {
        return Effect::Expand;
    }
    if has("alter table ") {
        return alter_table(statement);
    }
    if has("alter type ") {
        return if statement.contains(" add value ") {
            Effect::Expand
        } else if statement.contains(" rename ") {
            Effect::Contract("renames a type or one of its values")
        } else {
            Effect::Unknown("changes a type")
        };
    }
    if has("alter ") && statement.contains(" rename ") {
        return Effect::Contract("renames something the previous release may name");
    }
    if has("drop ") {
        return Effect::Contract("drops something the previous release may use");
    }
    if has("truncate ") || has("delete from ") {
        return Effect::Contract("deletes rows the previous release may read");
    }
    if has("revoke ") {
        return Effect::Contract("revokes a permission the previous release may need");
    }
    if has("update ") {
        return Effect::Unknown(
            "rewrites rows: a backfill of a new column, or a change of meaning",
        );
    }
    if has("do ") {
        return Effect::Unknown("runs procedural code");
    }
    Effect::Unknown("a statement the classifier does not know")
}

/// `alter table [if exists] [only] <name> <action>[, <action>…]`: contract when any action is.
fn alter_table(statement: &str) -> Effect {
    let mut rest = statement.trim_start_matches("alter table ");
    for optional in ["if exists ", "only "] {
        rest = rest.strip_prefix(optional).unwrap_or(rest);
    }
    let Some((_table, actions)) = rest.split_once(' ') else {
        return Effect::Unknown("an ALTER TABLE without an action");
    };
    let mut overall = Effect::Neutral;
    for action in top_level_parts(actions) {
        let effect = alter_table_action(action.trim());
        overall = match (&overall, &effect) {
            (Effect::Contract(_), _) => overall,
            (_, Effect::Contract(_)) => effect,
            (Effect::Unknown(_), _) => overall,
            (_, Effect::Unknown(_)) => effect,
            (Effect::Expand, _) | (_, Effect::Expand) => Effect::Expand,
            _ => Effect::Neutral,
        };
    }
    overall
}

fn alter_table_action(action: &str) -> Effect {
    let has = |prefix: &str| action.starts_with(prefix);
    if has("add constraint ")
        || ["add check ", "add check(", "add unique ", "add primary key ", "add foreign key "]
            .iter()
            .any(|prefix| has(prefix))
    {
        return if action.ends_with(" not valid") {
            Effect::Expand
        } else {
            Effect::Contract(
                "adds a constraint without NOT VALID: every row is checked under a lock, and what the \
                 previous release writes may break it",
            )
        };
    }
    if has("add ") {
        let column = action.trim_start_matches("add ").trim_start_matches("column ");
        let column = column.trim_start_matches("if not exists ");
        let required = column.contains(" not null") || column.contains(" primary key");
        let filled = column.contains(" default ") || column.contains(" generated ");
        return if required && !filled {
            Effect::Contract(
                "adds a NOT NULL column without a default: the previous release's inserts fail",
            )
        } else {
            Effect::Expand
        };
    }
    if has("validate constraint ") {
        return Effect::Neutral;
    }
    if has("alter ") {
        return alter_column(action);
    }
    if has("drop ") {
        return Effect::Contract("drops a column or constraint the previous release may use");
    }
    if has("rename ") {
        return Effect::Contract("renames the table or a column the previous release names");
    }
    if has("owner to ") || has("set (") || has("reset (") {
        return Effect::Neutral;
    }
    if has("set schema ") {
        return Effect::Contract("moves the table away from where the previous release looks");
    }
    Effect::Unknown("an ALTER TABLE action the classifier does not know")
}

fn alter_column(action: &str) -> Effect {
    let contains = |part: &str| action.contains(part);
    if contains(" drop not null") || contains(" set default ") {
        Effect::Expand
    } else if contains(" set statistics ") || contains(" set storage ") {
        Effect::Neutral
    } else if contains(" set not null") {
        Effect::Contract("makes a column NOT NULL: the previous release may leave it empty")
    } else if contains(" drop default") {
        Effect::Contract("drops a default the previous release's inserts may rely on")
    } else if contains(" type ") {
        Effect::Contract("changes a column's type")
    } else {
        Effect::Unknown("an ALTER COLUMN the classifier does not know")
    }
}

/// `text` split at commas outside parentheses.
fn top_level_parts(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of statement the rules know, with the kind a migration of only that statement has.
    #[test]
    fn each_statement_kind_is_judged() {
        use Kind::{Contract, Expand};
        let table: &[(&str, Kind)] = &[
            ("create schema ops", Expand),
            ("create table ops.t (id bigint primary key, note text not null)", Expand),
            ("create index t_note on ops.t (note)", Expand),
            ("create unique index concurrently t_u on ops.t (note)", Expand),
            ("create type mood as enum ('ok', 'sad')", Expand),
            ("create view ops.v as select 1", Expand),
            ("create function ops.f() returns int language sql as $$ select 1 $$", Expand),
            ("insert into ops.t (id, note) values (1, 'drop table x')", Expand),
            ("alter table ops.t add column seen_at timestamptz", Expand),
            ("alter table ops.t add column n integer not null default 0", Expand),
            ("alter table ops.t add column id2 bigint generated always as identity", Expand),
            ("alter table ops.t add constraint t_check check (n >= 0) not valid", Expand),
            ("alter table ops.t validate constraint t_check", Expand),
            ("alter table ops.t alter column note drop not null", Expand),
            ("alter table ops.t alter column n set default 1", Expand),
            ("alter type mood add value 'glad'", Expand),
            ("set local lock_timeout = '1s'", Expand),
            ("comment on table ops.t is 'rename me'", Expand),
            ("drop table ops.t", Contract),
            ("drop index t_note", Contract),
            ("alter table ops.t drop column note", Contract),
            ("alter table ops.t drop constraint t_check", Contract),
            ("alter table ops.t rename column note to remark", Contract),
            ("alter table ops.t rename to u", Contract),
            ("alter table ops.t alter column n type bigint", Contract),
            ("alter table ops.t alter column n set data type bigint", Contract),
            ("alter table ops.t alter column note set not null", Contract),
            ("alter table ops.t alter column n drop default", Contract),
            ("alter table ops.t add column owner text not null", Contract),
            ("alter table ops.t add column k bigint primary key", Contract),
            ("alter table ops.t add constraint t_check check (n >= 0)", Contract),
            ("alter table ops.t add unique (note)", Contract),
            ("alter table ops.t set schema archive", Contract),
            ("alter index t_note rename to t_remark", Contract),
            ("alter type mood rename value 'sad' to 'blue'", Contract),
            ("truncate ops.t", Contract),
            ("delete from ops.t where n < 0", Contract),
            ("revoke select on ops.t from reader", Contract),
            ("alter table ops.t add column a text, drop column b", Contract),
        ];
        for (sql, expected) in table {
            let judged = judge(sql).unwrap_or_else(|error| panic!("{sql}: {error}"));
            assert_eq!(judged.kind, *expected, "{sql}: {judged:?}");
        }
    }

    #[test]
    fn what_cannot_be_judged_needs_an_override_with_a_reason() {
        for sql in [
            "update ops.t set n = 0 where n is null",
            "do $$ begin perform 1; end $$",
            "create or replace function ops.f() returns int language sql as $$ select 2 $$",
            "alter table ops.t enable trigger all",
            "cluster ops.t",
        ] {
            let error = judge(sql).unwrap_err();
            assert!(matches!(error, JudgeError::Unjudgeable(_)), "{sql}: {error}");
            assert!(error.to_string().contains("migration-kind: expand (why)"), "{error}");
            let overridden =
                judge(&format!("-- migration-kind: expand (a backfill of a new column)\n{sql}"))
                    .unwrap();
            assert_eq!(overridden.kind, Kind::Expand);
            assert_eq!(overridden.overridden.as_deref(), Some("a backfill of a new column"));
        }
        assert!(matches!(
            judge("-- migration-kind: expand\nupdate t set n = 0"),
            Err(JudgeError::BadOverride(_))
        ));
        assert!(matches!(
            judge("-- migration-kind: maybe (unsure)\nupdate t set n = 0"),
            Err(JudgeError::BadOverride(_))
        ));
    }

    #[test]
    fn an_override_wins_and_its_findings_are_kept() {
        let sql = "-- migration-kind: expand (the check is replaced by a wider one)\n\
                   alter table t drop constraint t_check;\n\
                   alter table t add constraint t_check check (n in (1, 2, 3)) not valid;";
        let judged = judge(sql).unwrap();
        assert_eq!(judged.kind, Kind::Expand);
        assert_eq!(judged.findings.len(), 1, "{judged:?}");
        assert!(judged.findings[0].contains("drop constraint t_check"), "{judged:?}");
    }

    #[test]
    fn statements_ignore_comments_strings_and_function_bodies() {
        let sql = "-- drop table a;\ncreate table b (note text default 'x; drop table c');\n\
                   /* rename */ create function f() returns void language plpgsql as $body$\n\
                   begin drop table d; end $body$;\ninsert into b values ($1)";
        let statements = statements(sql);
        assert_eq!(
            statements,
            [
                "create table b (note text default '')",
                "create function f() returns void language plpgsql as $$",
                "insert into b values ($1)"
            ]
        );
        assert_eq!(judge(sql).unwrap().kind, Kind::Expand);
    }
}
