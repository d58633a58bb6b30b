//! The one-screen status `cargo xtask dev` refreshes: the processes, every source's health, what the app is
//! being shown, forecasts, both outboxes and the alerts that reached the local APNs sink. It reads what an
//! operator would read (the api, the admin endpoints, the database), so a wrong number here is a real one.

use std::{fmt::Write as _, process::Command};

use contracts::{
    Timestamp,
    freshness::FreshnessState,
    v2::{HomeSummary, Status},
};
use serde::Deserialize;

/// Why a part of the screen could not be read, as the screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable(pub String);

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Unreadable {
    fn from(why: &str) -> Unreadable {
        Unreadable(why.to_owned())
    }
}

/// One reading of the whole system; each part may have failed on its own.
#[derive(Debug)]
pub struct Reading {
    pub services: Vec<ServiceState>,
    pub status: Result<Status, Unreadable>,
    pub home: Result<HomeSummary, Unreadable>,
    pub database: Result<DatabaseCounts, Unreadable>,
    /// Free spaces the replay upstream is showing right now, summed over its lots.
    pub upstream_free: u32,
    pub alerts_delivered: usize,
}

/// A service process and whether it says it is ready.
#[derive(Debug)]
pub struct ServiceState {
    pub name: &'static str,
    pub pid: u32,
    pub ready: Result<(), Unreadable>,
}

/// Counts read from the database in one query.
#[derive(Debug, Default, Deserialize)]
pub struct DatabaseCounts {
    pub lots: i64,
    pub lot_forecasts: i64,
    pub newest_forecast_age_s: Option<i64>,
    pub low_confidence: i64,
    pub ingest_outbox: Vec<IngestOutbox>,
    /// Push outbox rows by status (`pending`, `sent`, `dead`, `expired`, `deactivated`).
    pub push_outbox: std::collections::BTreeMap<String, i64>,
    /// Decisions by kind (`push_now`, `suppress`).
    pub decisions: std::collections::BTreeMap<String, i64>,
}

/// Ingest's outbox towards one peer.
#[derive(Debug, Deserialize)]
pub struct IngestOutbox {
    pub destination: String,
    pub pending: i64,
    pub oldest_pending_age_s: Option<i64>,
    pub delivered: i64,
}

const COUNTS_SQL: &str = "select json_build_object(
  'lots', (select count(*) from reference.lot),
  'lot_forecasts', (select count(*) from forecast.lot_forecast),
  'newest_forecast_age_s', (select extract(epoch from now() - max(issued_at))::bigint from forecast.lot_forecast),
  'low_confidence', (select count(*) from forecast.lot_forecast where confidence = 'low'),
  'ingest_outbox', (select coalesce(json_agg(o order by o.destination), '[]') from (
      select destination,
             count(*) filter (where delivered_at is null) as pending,
             extract(epoch from now() - min(created_at) filter (where delivered_at is null))::bigint
               as oldest_pending_age_s,
             count(*) filter (where delivered_at is not null) as delivered
      from ingest.outbox group by destination) o),
  'push_outbox', (select coalesce(json_object_agg(status, n), '{}') from (
      select status, count(*) as n from push.outbox group by status) p),
  'decisions', (select coalesce(json_object_agg(decision, n), '{}') from (
      select decision, count(*) as n from push.decision group by decision) d))";

/// Reads the counts with `psql` (installed with every PostgreSQL server this command can use).
pub fn database_counts(database_url: &str) -> Result<DatabaseCounts, Unreadable> {
    let output = Command::new("psql")
        .args([database_url, "-X", "-q", "-A", "-t", "-c", COUNTS_SQL])
        .output()
        .map_err(|error| Unreadable(format!("psql: {error}")))?;
    if !output.status.success() {
        let message = String::from_utf8_lossy(&output.stderr);
        return Err(Unreadable(message.lines().next().unwrap_or("psql failed").to_owned()));
    }
    serde_json::from_slice(&output.stdout)
        .map_err(|error| Unreadable(format!("unexpected counts: {error}")))
}

fn age(seconds: i64) -> String {
    match seconds {
        ..60 => format!("{}s", seconds.max(0)),
        60..3_600 => format!("{}m", seconds / 60),
        _ => format!("{}h{:02}m", seconds / 3_600, seconds % 3_600 / 60),
    }
}

fn ago(then: Option<Timestamp>, now: Timestamp) -> String {
    then.map_or_else(|| "never".to_owned(), |then| format!("{} ago", age(then.seconds_until(now))))
}

/// The screen for `reading`, in plain text (the caller decides whether to clear the terminal first).
pub fn render(reading: &Reading, header: &[String]) -> String {
    let mut screen = String::new();
    for line in header {
        let _ = writeln!(screen, "{line}");
    }
    let services: Vec<String> = reading
        .services
        .iter()
        .map(|service| match &service.ready {
            Ok(()) => format!("{} ready (pid {})", service.name, service.pid),
            Err(why) => format!("{} NOT READY: {why}", service.name),
        })
        .collect();
    let _ = writeln!(screen, "\nSERVICES   {}", services.join(" · "));

    let _ = writeln!(screen);
    match &reading.status {
        Ok(status) => {
            let _ = writeln!(
                screen,
                "{:<22} {:<8} {:<10} {:<14} {:>8}  LAST ERROR",
                "SOURCE", "STATE", "STATUS", "LAST SUCCESS", "FAILURES"
            );
            for source in &status.sources {
                let _ = writeln!(
                    screen,
                    "{:<22} {:<8} {:<10} {:<14} {:>8}  {}",
                    source.source.as_str(),
                    source.state.as_str(),
                    source.source_status.as_str(),
                    ago(source.last_success_at, status.generated_at),
                    source.consecutive_failures,
                    source.last_error.as_deref().unwrap_or("-"),
                );
            }
        }
        Err(why) => {
            let _ = writeln!(screen, "SOURCES    api not answering /v2/status: {why}");
        }
    }

    let _ = writeln!(screen);
    match &reading.home {
        Ok(home) => {
            let parking = home.parks.iter().map(|park| &park.parking);
            let shown: u32 = parking.clone().filter_map(|parking| parking.available).sum();
            let reporting: u32 = parking.clone().map(|parking| parking.lots_reporting).sum();
            let total: u32 = parking.clone().map(|parking| parking.lots_total).sum();
            let count = |state| parking.clone().filter(|p| p.freshness.state == state).count();
            let _ = writeln!(
                screen,
                "PARKING    upstream {} free · app shown {shown} free, {reporting}/{total} lots reporting · \
                 parks fresh {}, stale {}, expired {} · served from {}",
                reading.upstream_free,
                count(FreshnessState::Fresh),
                count(FreshnessState::Stale),
                count(FreshnessState::Expired),
                home.served_from.as_str(),
            );
        }
        Err(why) => {
            let _ = writeln!(screen, "PARKING    api not answering /v2/home-summary: {why}");
        }
    }
    match &reading.database {
        Ok(counts) => {
            let _ = writeln!(
                screen,
                "FORECASTS  {}/{} lots, newest issued {}, {} low confidence",
                counts.lot_forecasts,
                counts.lots,
                counts.newest_forecast_age_s.map_or_else(|| "never".into(), |s| age(s) + " ago"),
                counts.low_confidence,
            );
            let ingest: Vec<String> = counts
                .ingest_outbox
                .iter()
                .map(|outbox| {
                    let oldest = outbox
                        .oldest_pending_age_s
                        .map_or_else(String::new, |s| format!(", oldest {}", age(s)));
                    format!(
                        "ingest→{} {} pending{oldest} ({} delivered)",
                        outbox.destination, outbox.pending, outbox.delivered
                    )
                })
                .collect();
            let _ = writeln!(
                screen,
                "OUTBOX     {}",
                if ingest.is_empty() {
                    "ingest: nothing queued yet".into()
                } else {
                    ingest.join(" · ")
                }
            );
            let by = |map: &std::collections::BTreeMap<String, i64>| {
                let parts: Vec<String> = map.iter().map(|(key, n)| format!("{n} {key}")).collect();
                if parts.is_empty() { "none".to_owned() } else { parts.join(", ") }
            };
            let _ = writeln!(
                screen,
                "           push outbox: {} · decisions: {}",
                by(&counts.push_outbox),
                by(&counts.decisions)
            );
        }
        Err(why) => {
            let _ = writeln!(screen, "FORECASTS  database not answering: {why}");
        }
    }
    let _ = writeln!(
        screen,
        "ALERTS     {} delivered to the local APNs sink",
        reading.alerts_delivered
    );
    screen
}

#[cfg(test)]
mod tests {
    use contracts::example::Example;

    use super::*;

    fn reading() -> Reading {
        let status = Status::example();
        Reading {
            services: vec![
                ServiceState { name: "api", pid: 41, ready: Ok(()) },
                ServiceState {
                    name: "push",
                    pid: 44,
                    ready: Err("503 Service Unavailable".into()),
                },
            ],
            status: Ok(status),
            home: Ok(HomeSummary::example()),
            database: Ok(DatabaseCounts {
                lots: 40,
                lot_forecasts: 38,
                newest_forecast_age_s: Some(75),
                low_confidence: 5,
                ingest_outbox: vec![IngestOutbox {
                    destination: "push".into(),
                    pending: 2,
                    oldest_pending_age_s: Some(4),
                    delivered: 120,
                }],
                push_outbox: [("sent".to_owned(), 3)].into(),
                decisions: [("push_now".to_owned(), 3), ("suppress".to_owned(), 9)].into(),
            }),
            upstream_free: 1234,
            alerts_delivered: 3,
        }
    }

    #[test]
    fn the_screen_shows_every_part_of_the_system() {
        let screen = render(&reading(), &["Hangangjari dev".to_owned()]);
        assert!(screen.starts_with("Hangangjari dev\n"), "{screen}");
        assert!(screen.contains("api ready (pid 41) · push NOT READY: 503"), "{screen}");
        assert!(screen.contains("parking_portal"), "{screen}");
        assert!(screen.contains("upstream 1234 free · app shown"), "{screen}");
        assert!(
            screen.contains("FORECASTS  38/40 lots, newest issued 1m ago, 5 low confidence"),
            "{screen}"
        );
        assert!(screen.contains("ingest→push 2 pending, oldest 4s (120 delivered)"), "{screen}");
        assert!(
            screen.contains("push outbox: 3 sent · decisions: 3 push_now, 9 suppress"),
            "{screen}"
        );
        assert!(screen.contains("ALERTS     3 delivered"), "{screen}");
    }

    #[test]
    fn a_part_that_cannot_be_read_says_why_instead_of_hiding() {
        let reading = Reading {
            status: Err("connection refused".into()),
            home: Err("connection refused".into()),
            database: Err("psql: not found".into()),
            ..reading()
        };
        let screen = render(&reading, &[]);
        assert!(screen.contains("api not answering /v2/status: connection refused"), "{screen}");
        assert!(screen.contains("database not answering: psql: not found"), "{screen}");
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(age(-3), "0s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(61), "1m");
        assert_eq!(age(3_725), "1h02m");
    }
}
