//! Who still calls each API version, from the counts the api records in `ops.api_usage_day`: the table
//! `cargo xtask contracts usage` prints, and the evidence the retirement rule of `cargo xtask contracts`
//! judges by (`contracts::retirement`), with the schedule read from the production overlay's ConfigMap.

use std::{fmt::Write as _, path::Path};

use anyhow::Context;
use contracts::retirement::{Evidence, Schedule, USAGE_WINDOW_DAYS};
use jiff::{Timestamp, civil::Date, tz::TimeZone};
use serde_json::Value;

/// The overlay whose `API_RETIREMENT` the gate reads: what production is told is what old apps see.
const SCHEDULE_OVERLAY: &str = "kustomize/overlays/production";

/// One API version × app version over the window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    pub api_version: String,
    pub app_version: String,
    pub requests: i64,
    pub last_seen: Timestamp,
}

/// What `ops.api_usage_day` holds for the [`USAGE_WINDOW_DAYS`] ending `today` (UTC days, as recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub first_day: Date,
    pub today: Date,
    pub rows: Vec<UsageRow>,
    /// The first day anything was recorded at all; `None` for an empty table.
    pub recorded_since: Option<Date>,
}

impl Recorded {
    /// Whether the record covers the whole window: a table only a week old cannot show two quiet weeks.
    pub fn covers_window(&self) -> bool {
        self.recorded_since.is_some_and(|since| since <= self.first_day)
    }

    /// Requests to `api_version` over the window.
    pub fn requests(&self, api_version: &str) -> u64 {
        let total: i64 = self
            .rows
            .iter()
            .filter(|row| row.api_version == api_version)
            .map(|row| row.requests)
            .sum();
        u64::try_from(total).unwrap_or(0)
    }

    /// The evidence about `api_version`: unknown unless the record covers the window.
    pub fn evidence(&self, api_version: &str, threshold: u64) -> Evidence {
        let recent_requests = self.covers_window().then(|| self.requests(api_version));
        Evidence { recent_requests, threshold }
    }
}

/// Reads the window ending `today` from `ops.api_usage_day`.
pub async fn read(pool: &sqlx::PgPool, today: Date) -> anyhow::Result<Recorded> {
    let first_day = today
        .checked_sub(jiff::Span::new().days(USAGE_WINDOW_DAYS - 1))
        .context("the usage window starts before the calendar does")?;
    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select api_version, app_version, sum(requests)::bigint,
                extract(epoch from max(last_seen_at))::bigint
         from ops.api_usage_day
         where day between $1::text::date and $2::text::date
         group by api_version, app_version
         order by api_version, sum(requests) desc, app_version",
    )
    .bind(first_day.to_string())
    .bind(today.to_string())
    .fetch_all(pool)
    .await
    .context("failed to read ops.api_usage_day")?;
    let (recorded_since,): (Option<String>,) =
        sqlx::query_as("select min(day)::text from ops.api_usage_day")
            .fetch_one(pool)
            .await
            .context("failed to read ops.api_usage_day")?;
    let rows = rows
        .into_iter()
        .map(|(api_version, app_version, requests, last_seen)| {
            let last_seen =
                Timestamp::from_second(last_seen).context("a last_seen_at out of range")?;
            Ok(UsageRow { api_version, app_version, requests, last_seen })
        })
        .collect::<anyhow::Result<_>>()?;
    let recorded_since = recorded_since.map(|day| day.parse()).transpose()?;
    Ok(Recorded { first_day, today, rows, recorded_since })
}

/// Today in UTC, the calendar `ops.api_usage_day` is kept in.
pub fn utc_today(now: Timestamp) -> Date {
    now.to_zoned(TimeZone::UTC).date()
}

/// The schedule production is configured with: `API_RETIREMENT` of the `hangang-config` ConfigMap in the
/// rendered production overlay (empty when the key is absent).
pub fn production_schedule(root: &Path) -> anyhow::Result<Schedule> {
    let overlay = root.join(SCHEDULE_OVERLAY);
    let rendered = crate::manifests::render::kubectl_kustomize(&overlay)?;
    let objects = crate::manifests::render::parse_stream(&rendered)?;
    schedule_from_manifests(&objects)
        .with_context(|| format!("API_RETIREMENT in {SCHEDULE_OVERLAY} is not a valid schedule"))
}

fn schedule_from_manifests(objects: &[Value]) -> anyhow::Result<Schedule> {
    let config = objects.iter().find(|object| {
        object["kind"] == "ConfigMap" && object["metadata"]["name"] == "hangang-config"
    });
    let text = config.and_then(|config| config["data"]["API_RETIREMENT"].as_str()).unwrap_or("");
    Ok(Schedule::parse(text)?)
}

/// The table `cargo xtask contracts usage` prints: per API version its total and schedule, then each app
/// version calling it, most requests first.
pub fn report(recorded: &Recorded, schedule: Option<&Schedule>) -> String {
    let mut text = format!(
        "requests per API version and app build, {} to {} (UTC days, ops.api_usage_day)\n",
        recorded.first_day, recorded.today
    );
    match recorded.recorded_since {
        None => text.push_str("nothing recorded yet\n"),
        Some(since) if !recorded.covers_window() => {
            let _ = writeln!(text, "recorded only since {since}: the window is not fully covered");
        }
        Some(_) => {}
    }
    let mut versions: Vec<&str> =
        recorded.rows.iter().map(|row| row.api_version.as_str()).collect();
    versions.dedup();
    for version in versions {
        let retiring = match schedule.and_then(|schedule| schedule.get(version)) {
            Some(retirement) => {
                format!("  deprecated {}, sunset {}", retirement.deprecation, retirement.sunset)
            }
            None => String::new(),
        };
        let _ =
            writeln!(text, "\n{version:<6} {:>10} requests{retiring}", recorded.requests(version));
        for row in recorded.rows.iter().filter(|row| row.api_version == version) {
            let last_seen = row.last_seen.strftime("%Y-%m-%d %H:%MZ");
            let _ = writeln!(
                text,
                "  {:<22} {:>10}  last seen {last_seen}",
                row.app_version, row.requests
            );
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use contracts::retirement::judge_retirement;

    use super::*;

    const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
    const SCHEDULE: &str = "v1 deprecation=2026-12-01T00:00:00Z sunset=2027-03-31T15:00:00Z \
                            link=https://hangangjari.app/docs/api/v1-sunset";

    /// A throwaway database holding only `ops.api_usage_day`, made by the shipped migration's own SQL.
    struct UsageDatabase {
        admin: sqlx::PgPool,
        name: String,
        pool: sqlx::PgPool,
    }

    impl UsageDatabase {
        async fn create() -> UsageDatabase {
            let admin_url = std::env::var("DATABASE_URL").unwrap_or_else(|_| ADMIN_URL.to_owned());
            let admin = sqlx::PgPool::connect(&admin_url).await.unwrap();
            let name =
                format!("xtask_usage_{}_{}", std::process::id(), Timestamp::now().as_nanosecond());
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&admin)
                .await
                .unwrap();
            let (base, _) = admin_url.rsplit_once('/').unwrap();
            let pool = sqlx::PgPool::connect(&format!("{base}/{name}")).await.unwrap();
            let migration = std::fs::read_to_string(
                crate::project_root()
                    .join("libs/migrate/migrations/20261204000001_api_usage_day.sql"),
            )
            .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "create schema ops; begin; {migration} commit;"
            )))
            .execute(&pool)
            .await
            .unwrap();
            UsageDatabase { admin, name, pool }
        }

        async fn add(&self, day: &str, api_version: &str, app_version: &str, requests: i64) {
            sqlx::query(
                "insert into ops.api_usage_day (day, api_version, app_version, requests, last_seen_at)
                 values ($1::text::date, $2, $3, $4, ($1::text::date + time '12:00') at time zone 'UTC')",
            )
            .bind(day)
            .bind(api_version)
            .bind(app_version)
            .bind(requests)
            .execute(&self.pool)
            .await
            .unwrap();
        }

        async fn drop(self) {
            self.pool.close().await;
            let drop = format!("drop database {} with (force)", self.name);
            sqlx::raw_sql(sqlx::AssertSqlSafe(drop)).execute(&self.admin).await.unwrap();
        }
    }

    fn day(text: &str) -> Date {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn retiring_v1_is_refused_with_recent_usage_and_accepted_after_the_sunset_with_none() {
        let database = UsageDatabase::create().await;
        let schedule = Schedule::parse(SCHEDULE).unwrap();
        // Recorded since long before the window; v2 is busy throughout.
        database.add("2027-01-02", "v1", "2.3.0 (420)", 900).await;
        database.add("2027-04-01", "v2", "2.4.0 (431)", 50_000).await;
        database.add("2027-04-10", "v1", "build 412", 320).await;
        database.add("2027-04-12", "v1", "2.3.0 (420)", 80).await;
        let after_sunset: Timestamp = "2027-04-15T00:00:00Z".parse().unwrap();

        let recorded = read(&database.pool, utc_today(after_sunset)).await.unwrap();
        assert_eq!(recorded.first_day, day("2027-04-02"));
        assert_eq!(recorded.requests("v1"), 400, "the January row is outside the window");
        let refused = judge_retirement("v1", &schedule, after_sunset, recorded.evidence("v1", 100));
        assert_eq!(
            refused.unwrap_err().to_string(),
            "v1 still had 400 request(s) in the last 14 days; retiring needs fewer than 100 (--retire-below)"
        );

        // Two weeks later nobody has called v1 since the 12th: accepted.
        let quiet: Timestamp = "2027-04-27T00:00:00Z".parse().unwrap();
        database.add("2027-04-26", "v2", "2.4.0 (431)", 48_000).await;
        let recorded = read(&database.pool, utc_today(quiet)).await.unwrap();
        assert_eq!(recorded.requests("v1"), 0);
        assert_eq!(judge_retirement("v1", &schedule, quiet, recorded.evidence("v1", 100)), Ok(()));
        // The same quiet record before the sunset is still refused.
        let early: Timestamp = "2027-03-01T00:00:00Z".parse().unwrap();
        assert!(judge_retirement("v1", &schedule, early, recorded.evidence("v1", 100)).is_err());
        database.drop().await;
    }

    #[tokio::test]
    async fn a_record_younger_than_the_window_is_no_evidence() {
        let database = UsageDatabase::create().await;
        let schedule = Schedule::parse(SCHEDULE).unwrap();
        database.add("2027-04-20", "v2", "2.4.0 (431)", 10).await;
        let now: Timestamp = "2027-04-27T00:00:00Z".parse().unwrap();
        let recorded = read(&database.pool, utc_today(now)).await.unwrap();
        assert!(!recorded.covers_window());
        let refused = judge_retirement("v1", &schedule, now, recorded.evidence("v1", 100));
        assert!(refused.unwrap_err().to_string().contains("no usage record"));
        database.drop().await;
    }

    #[tokio::test]
    #[expect(clippy::print_stdout, reason = "shows the report as the command prints it")]
    async fn the_report_lists_each_version_and_build() {
        let database = UsageDatabase::create().await;
        database.add("2027-04-01", "v2", "2.4.0 (431)", 50_000).await;
        database.add("2027-04-10", "v1", "build 412", 320).await;
        database.add("2027-04-12", "v1", "2.3.0 (420)", 80).await;
        database.add("2027-04-13", "v1", "2.3.0 (420)", 7).await;
        let recorded = read(&database.pool, day("2027-04-14")).await.unwrap();
        let schedule = Schedule::parse(SCHEDULE).unwrap();
        let text = report(&recorded, Some(&schedule));
        println!("{text}");
        assert_eq!(
            text,
            "requests per API version and app build, 2027-04-01 to 2027-04-14 (UTC days, ops.api_usage_day)\n\
             \n\
             v1            407 requests  deprecated 2026-12-01T00:00:00Z, sunset 2027-03-31T15:00:00Z\n  \
             build 412                     320  last seen 2027-04-10 12:00Z\n  \
             2.3.0 (420)                    87  last seen 2027-04-13 12:00Z\n\
             \n\
             v2          50000 requests\n  \
             2.4.0 (431)                 50000  last seen 2027-04-01 12:00Z\n"
        );
        database.drop().await;
    }

    #[test]
    fn the_schedule_is_the_config_maps_api_retirement() {
        let objects = vec![
            serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "other"}, "data": {"API_RETIREMENT": "bad"}}),
            serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "hangang-config"}, "data": {"API_RETIREMENT": SCHEDULE}}),
        ];
        let schedule = schedule_from_manifests(&objects).unwrap();
        assert_eq!(schedule.get("v1").unwrap().link, "https://hangangjari.app/docs/api/v1-sunset");
        let unset = vec![
            serde_json::json!({"kind": "ConfigMap", "metadata": {"name": "hangang-config"}, "data": {}}),
        ];
        assert_eq!(schedule_from_manifests(&unset).unwrap(), Schedule::default());
    }
}
