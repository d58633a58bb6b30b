//! One PostgreSQL role per service, each with the least it needs, made and granted by the migration job after
//! every migration (so a table a new migration adds is granted before the release's pods start).
//!
//! The schemas' owner (the migration job's user) keeps DDL; services get data privileges only:
//! - `hangang_api` reads (reference, ingest, forecast, ops) and writes nothing but its own records: its
//!   start, the smoke check's outcome and the daily usage counts;
//! - `hangang_ingest` writes `ingest` and `reference` (the curated daily sync);
//! - `hangang_forecast` reads `ingest` and writes `forecast`;
//! - `hangang_push` writes `push`.
//!
//! Every role reads `reference` and records (and prunes) its process starts in `ops.process_start`. Grants are
//! repeated on every run: they are idempotent, and a role's rights always match this release's table of them.

use std::path::Path;

use anyhow::Context as _;
use sqlx::{AssertSqlSafe, PgPool};

/// A service's role and the statements that grant it what it needs (beyond what every role gets).
#[derive(Clone, Copy, Debug)]
pub struct ServiceRole {
    /// The service, and the name of its password file.
    pub service: &'static str,
    /// The role.
    pub role: &'static str,
    grants: &'static [&'static str],
}

/// Write privileges on every table and sequence of a schema: `{schema}` and `{role}` are filled in.
const WRITE_SCHEMA: [&str; 3] = [
    "grant usage on schema {schema} to {role}",
    "grant select, insert, update, delete on all tables in schema {schema} to {role}",
    "grant usage, select on all sequences in schema {schema} to {role}",
];

/// Read privileges on every table of a schema.
const READ_SCHEMA: [&str; 2] = [
    "grant usage on schema {schema} to {role}",
    "grant select on all tables in schema {schema} to {role}",
];

/// What every role gets: reference data to read, and its own process starts.
const COMMON: [&str; 4] = [
    "grant usage on schema reference, ops to {role}",
    "grant select on all tables in schema reference to {role}",
    "grant select, insert, delete on ops.process_start to {role}",
    "grant usage, select on all sequences in schema ops to {role}",
];

/// The services' roles.
pub const ROLES: [ServiceRole; 4] = [
    ServiceRole {
        service: "api",
        role: "hangang_api",
        grants: &[
            "read:ingest",
            "read:forecast",
            "read:ops",
            "grant insert, delete on ops.smoke_run to {role}",
            "grant insert, update on ops.api_usage_day to {role}",
        ],
    },
    ServiceRole {
        service: "ingest",
        role: "hangang_ingest",
        grants: &["write:ingest", "write:reference"],
    },
    ServiceRole {
        service: "forecast",
        role: "hangang_forecast",
        grants: &["read:ingest", "write:forecast"],
    },
    ServiceRole { service: "push", role: "hangang_push", grants: &["write:push"] },
];

impl ServiceRole {
    /// Every statement this role's grants expand to.
    pub fn statements(&self) -> Vec<String> {
        let fill = |template: &str, schema: &str| {
            template.replace("{schema}", schema).replace("{role}", self.role)
        };
        let mut statements: Vec<String> = COMMON.iter().map(|t| fill(t, "")).collect();
        for grant in self.grants {
            match grant.split_once(':') {
                Some(("read", schema)) => {
                    statements.extend(READ_SCHEMA.iter().map(|t| fill(t, schema)))
                }
                Some(("write", schema)) => {
                    statements.extend(WRITE_SCHEMA.iter().map(|t| fill(t, schema)));
                }
                _ => statements.push(fill(grant, "")),
            }
        }
        statements
    }
}

/// Makes every service role (able to log in), sets the passwords found in `passwords_dir` (a file per
/// service, named after it: a mounted Secret), and grants each its privileges. Without a directory the roles
/// are made without passwords: they can log in only where the server trusts the connection (local tests).
pub async fn ensure(pool: &PgPool, passwords_dir: Option<&Path>) -> anyhow::Result<()> {
    for role in ROLES {
        // Roles are the cluster's, shared by every database on it (tests make many at once): two sessions
        // creating the same role race, and the loser's error only means it exists.
        let create = format!(
            "do $$ begin create role {name} login; \
             exception when duplicate_object or unique_violation then null; end $$",
            name = role.role
        );
        sqlx::raw_sql(AssertSqlSafe(create))
            .execute(pool)
            .await
            .with_context(|| format!("cannot create role {}", role.role))?;
        if let Some(dir) = passwords_dir {
            let path = dir.join(role.service);
            let password = std::fs::read_to_string(&path).with_context(|| {
                format!("cannot read {}'s password from {}", role.role, path.display())
            })?;
            let password = password.trim();
            anyhow::ensure!(
                password.len() >= 16,
                "{} holds a password under 16 characters",
                path.display()
            );
            // PostgreSQL quotes the password itself (`format`'s %L): no SQL is built from its text here.
            let (alter,): (String,) = sqlx::query_as(
                "select format('alter role %I login password %L', $1::text, $2::text)",
            )
            .bind(role.role)
            .bind(password)
            .fetch_one(pool)
            .await?;
            sqlx::raw_sql(AssertSqlSafe(alter))
                .execute(pool)
                .await
                .with_context(|| format!("cannot set {}'s password", role.role))?;
        }
        for statement in role.statements() {
            sqlx::raw_sql(AssertSqlSafe(statement.clone()))
                .execute(pool)
                .await
                .with_context(|| format!("`{statement}` failed"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_expand_to_statements_naming_the_role() {
        let api = ROLES.iter().find(|role| role.service == "api").unwrap();
        let statements = api.statements();
        assert!(
            statements
                .contains(&"grant select on all tables in schema ingest to hangang_api".to_owned())
        );
        assert!(
            statements.iter().all(|s| s.contains("hangang_api") && !s.contains('{')),
            "{statements:?}"
        );
        assert!(
            !statements.iter().any(|s| s.contains("insert") && s.contains("schema ingest")),
            "the api writes no collected data"
        );
    }
}
