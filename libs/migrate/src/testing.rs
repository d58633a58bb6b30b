//! Throwaway databases for tests and local sandboxes: a fresh, migrated database per caller on the server
//! named by `DATABASE_URL` (default: the local trust-auth PostgreSQL), dropped by [`TestDatabase::drop_now`].

use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::Context;
// Database names are built here from a fixed prefix and numbers, never from input, so formatting them into
// DDL is safe (DDL cannot take bind parameters).
use sqlx::{AssertSqlSafe, Connection, PgConnection, PgPool, postgres::PgPoolOptions};

/// The server tests use when `DATABASE_URL` is unset.
pub const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A migrated database of its own, with the curated reference data synced.
#[derive(Debug)]
pub struct TestDatabase {
    pub pool: PgPool,
    pub name: String,
    pub url: String,
    admin_url: String,
}

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) =
        url.split_once('?').map_or((url, None), |(base, query)| (base, Some(query)));
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_end..].find('/').map_or(base.len(), |i| authority_end + i);
    let mut result = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        result.push('?');
        result.push_str(query);
    }
    result
}

/// Drops databases left by test processes that died before cleaning up (their pid is gone).
async fn drop_orphans(admin: &mut PgConnection) -> anyhow::Result<()> {
    let names: Vec<(String,)> =
        sqlx::query_as("select datname from pg_database where datname like 'hangang\\_test\\_%'")
            .fetch_all(&mut *admin)
            .await?;
    for (name,) in names {
        let pid = name
            .trim_start_matches("hangang_test_")
            .split('_')
            .next()
            .and_then(|pid| pid.parse::<u32>().ok());
        let orphaned =
            pid.is_some_and(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists());
        let safe = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if orphaned && safe {
            sqlx::query(AssertSqlSafe(format!("drop database if exists {name} with (force)")))
                .execute(&mut *admin)
                .await?;
        }
    }
    Ok(())
}

impl TestDatabase {
    /// Creates `hangang_test_<pid>_<n>`, migrates it and syncs the reference data.
    pub async fn create() -> anyhow::Result<TestDatabase> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let admin_url = admin_url();
        let name = format!(
            "hangang_test_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = PgConnection::connect(&admin_url)
            .await
            .with_context(|| "cannot reach the test PostgreSQL (set DATABASE_URL)".to_owned())?;
        drop_orphans(&mut admin).await?;
        sqlx::query(AssertSqlSafe(format!("drop database if exists {name}")))
            .execute(&mut admin)
            .await?;
        sqlx::query(AssertSqlSafe(format!("create database {name}"))).execute(&mut admin).await?;
        admin.close().await?;
        let url = with_database(&admin_url, &name);
        let pool = PgPoolOptions::new().max_connections(8).connect(&url).await?;
        crate::migrate(&pool, "test").await?;
        Ok(TestDatabase { pool, name, url, admin_url })
    }

    /// Closes the pool and drops the database.
    pub async fn drop_now(self) -> anyhow::Result<()> {
        self.pool.close().await;
        let mut admin = PgConnection::connect(&self.admin_url).await?;
        sqlx::query(AssertSqlSafe(format!("drop database if exists {} with (force)", self.name)))
            .execute(&mut admin)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "t1"), "postgres://u@h:5432/t1");
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "t1"),
            "postgres://u@h/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t1"), "postgres://u@h/t1");
    }
}
