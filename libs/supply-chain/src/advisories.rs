//! The offline advisory scan: `Cargo.lock` against the vendored RustSec snapshot (`../shared/advisory-db`),
//! with the snapshot's age printed and limited, and a reviewed ignore file whose every entry says why and
//! until when.
//!
//! A stale database under-reports silently (grype fails past 5 days by default); ours is refreshed by hand,
//! so the limit is a setting, but it is always enforced.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jiff::{Timestamp, civil::Date};
use rustsec::{Database, Lockfile, database::Query};
use serde::Deserialize;

/// The default staleness limit of the advisory snapshot, in days.
pub const DEFAULT_MAX_AGE_DAYS: i64 = 120;

/// Where the scan reads from and what it tolerates.
#[derive(Clone, Debug)]
pub struct ScanSettings {
    pub database: PathBuf,
    pub lockfile: PathBuf,
    pub ignore_file: PathBuf,
    pub max_age_days: i64,
    pub today: Date,
}

/// `SNAPSHOT.toml` beside the database: which commit of advisory-db it is, and when that was made.
#[derive(Clone, Debug, Deserialize)]
pub struct Snapshot {
    pub source: String,
    pub commit: String,
    pub committed_at: String,
}

/// One advisory that applies to a locked package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub id: String,
    pub package: String,
    pub version: String,
    pub title: String,
    pub patched: Vec<String>,
}

/// A reviewed exception.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ignore {
    id: String,
    reason: String,
    expires: Date,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreFile {
    #[serde(default)]
    ignore: Vec<Ignore>,
}

/// What the scan found.
#[derive(Clone, Debug)]
pub struct ScanReport {
    pub snapshot: Snapshot,
    pub age_days: i64,
    pub advisories: usize,
    pub packages: usize,
    /// Vulnerabilities that block the release.
    pub vulnerable: Vec<Finding>,
    /// Vulnerabilities accepted by the ignore file, with its reason.
    pub ignored: Vec<(Finding, String)>,
    /// Informational advisories (unmaintained, unsound): printed, not blocking.
    pub warnings: Vec<Finding>,
}

impl ScanReport {
    /// Whether the release may proceed.
    pub fn passed(&self) -> bool {
        self.vulnerable.is_empty()
    }

    /// One line for the summary.
    pub fn summary(&self) -> String {
        format!(
            "{} vulnerable, {} ignored, {} warnings ({} packages, {} advisories, snapshot {} days old)",
            self.vulnerable.len(),
            self.ignored.len(),
            self.warnings.len(),
            self.packages,
            self.advisories,
            self.age_days
        )
    }
}

/// Scans; fails (before looking at packages) when the snapshot is older than allowed or an ignore entry is
/// malformed or expired. Vulnerabilities are returned in the report; [`ScanReport::passed`] judges them.
pub fn scan(settings: &ScanSettings) -> anyhow::Result<ScanReport> {
    let snapshot = read_snapshot(&settings.database)?;
    let committed: Timestamp = snapshot.committed_at.parse().with_context(|| {
        format!("SNAPSHOT.toml: committed_at `{}` is not RFC 3339", snapshot.committed_at)
    })?;
    let committed_day = committed.to_zoned(jiff::tz::TimeZone::UTC).date();
    let age_days = i64::from((settings.today - committed_day).get_days());
    if age_days > settings.max_age_days {
        bail!(
            "the advisory database snapshot is {age_days} days old (commit {}, {}), over the limit of {} days: \
             refresh {} from {}",
            snapshot.commit,
            snapshot.committed_at,
            settings.max_age_days,
            settings.database.display(),
            snapshot.source
        );
    }
    let ignores = read_ignores(&settings.ignore_file, settings.today)?;

    let database = Database::open(&settings.database).with_context(|| {
        format!("cannot open the advisory database at {}", settings.database.display())
    })?;
    let lockfile = Lockfile::load(&settings.lockfile)
        .with_context(|| format!("cannot read {}", settings.lockfile.display()))?;
    let finding = |vulnerability: &rustsec::Vulnerability| Finding {
        id: vulnerability.advisory.id.to_string(),
        package: vulnerability.package.name.to_string(),
        version: vulnerability.package.version.to_string(),
        title: vulnerability.advisory.title.clone(),
        patched: vulnerability.versions.patched().iter().map(ToString::to_string).collect(),
    };
    let mut vulnerable = Vec::new();
    let mut ignored = Vec::new();
    for vulnerability in database.vulnerabilities(&lockfile) {
        let found = finding(&vulnerability);
        match ignores.iter().find(|ignore| ignore.id == found.id) {
            Some(ignore) => ignored.push((found, ignore.reason.clone())),
            None => vulnerable.push(found),
        }
    }
    let informational = Query::crate_scope().informational(true);
    let warnings =
        database.query_vulnerabilities(&lockfile, &informational).iter().map(finding).collect();
    Ok(ScanReport {
        snapshot,
        age_days,
        advisories: database.iter().count(),
        packages: lockfile.packages.len(),
        vulnerable,
        ignored,
        warnings,
    })
}

impl ScanSettings {
    /// The project's defaults: the snapshot in `shared/advisory-db` beside the checkout (or beside the
    /// repository it was cloned from, as CI's fresh clones are; `ADVISORY_DB` overrides both), `Cargo.lock`, and
    /// the reviewed ignore file `supply-chain/advisories-ignore.toml`.
    pub fn for_project(root: &Path, max_age_days: i64) -> ScanSettings {
        ScanSettings {
            database: advisory_database(root),
            lockfile: root.join("Cargo.lock"),
            ignore_file: root.join("supply-chain/advisories-ignore.toml"),
            max_age_days,
            today: Timestamp::now().to_zoned(jiff::tz::TimeZone::UTC).date(),
        }
    }
}

/// Where the advisory snapshot is: `ADVISORY_DB`, else `../shared/advisory-db` from the checkout, else from the
/// repository `origin` points at when that is a local path.
fn advisory_database(root: &Path) -> PathBuf {
    if let Some(path) = std::env::var_os("ADVISORY_DB") {
        return PathBuf::from(path);
    }
    let beside = |checkout: &Path| checkout.join("../shared/advisory-db");
    let origin = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["remote", "get-url", "origin"])
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    std::iter::once(beside(root))
        .chain(origin.filter(|origin| origin.is_dir()).map(|origin| beside(&origin)))
        .find(|candidate| candidate.join("SNAPSHOT.toml").is_file())
        .unwrap_or_else(|| beside(root))
}

impl std::fmt::Display for ScanReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "advisory database {} at {} ({}), {} days old",
            self.snapshot.source, self.snapshot.commit, self.snapshot.committed_at, self.age_days
        )?;
        for finding in &self.vulnerable {
            writeln!(
                f,
                "  VULNERABLE {} {}@{}: {} (patched: {})",
                finding.id,
                finding.package,
                finding.version,
                finding.title,
                finding.patched.join(", ")
            )?;
        }
        for (finding, reason) in &self.ignored {
            writeln!(
                f,
                "  ignored    {} {}@{}: {reason}",
                finding.id, finding.package, finding.version
            )?;
        }
        for finding in &self.warnings {
            writeln!(
                f,
                "  warning    {} {}@{}: {}",
                finding.id, finding.package, finding.version, finding.title
            )?;
        }
        write!(f, "  {}", self.summary())
    }
}

fn read_snapshot(database: &Path) -> anyhow::Result<Snapshot> {
    let path = database.join("SNAPSHOT.toml");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!("cannot read {}: the advisory snapshot must say which commit it is", path.display())
    })?;
    toml::from_str(&text).with_context(|| format!("{} is malformed", path.display()))
}

/// The ignore file's entries, each reviewed: a reason and an expiry that has not passed. A missing file means
/// nothing is ignored.
fn read_ignores(path: &Path, today: Date) -> anyhow::Result<Vec<Ignore>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let file: IgnoreFile = toml::from_str(&text).with_context(|| {
        format!("{} is malformed (each [[ignore]] needs id, reason and expires)", path.display())
    })?;
    for ignore in &file.ignore {
        if ignore.reason.trim().is_empty() {
            bail!("{}: the ignore of {} gives no reason", path.display(), ignore.id);
        }
        if ignore.expires < today {
            bail!(
                "{}: the ignore of {} expired on {}; review it again or fix the dependency",
                path.display(),
                ignore.id,
                ignore.expires
            );
        }
    }
    Ok(file.ignore)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A throwaway database with one advisory against `smallvec < 1.10.0`, and a lockfile that has 1.6.1.
    fn fixture(dir: &Path, committed_at: &str) -> ScanSettings {
        let advisory = dir.join("db/crates/smallvec");
        std::fs::create_dir_all(&advisory).unwrap();
        std::fs::write(
            dir.join("db/SNAPSHOT.toml"),
            format!("source = \"https://github.com/rustsec/advisory-db\"\ncommit = \"abc\"\ncommitted_at = \"{committed_at}\"\n"),
        )
        .unwrap();
        std::fs::write(
            advisory.join("RUSTSEC-2021-0003.md"),
            "```toml\n[advisory]\nid = \"RUSTSEC-2021-0003\"\npackage = \"smallvec\"\ndate = \"2021-01-08\"\n\
             url = \"https://github.com/servo/rust-smallvec/issues/252\"\n\n[versions]\npatched = [\">= 1.6.1\"]\n\
             unaffected = [\"< 1.3.0\"]\n```\n\n# Buffer overflow in SmallVec::insert_many\n\nDetails.\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("Cargo.lock"),
            "version = 4\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.5.0\"\n\
             source = \"registry+https://github.com/rust-lang/crates.io-index\"\n\
             checksum = \"7acad6f34eb9e8a259d3283d1e8c1d34d7415943d4895f65cc73813c7396fc85\"\n",
        )
        .unwrap();
        ScanSettings {
            database: dir.join("db"),
            lockfile: dir.join("Cargo.lock"),
            ignore_file: dir.join("ignore.toml"),
            max_age_days: 30,
            today: Date::constant(2026, 11, 27),
        }
    }

    #[test]
    fn a_vulnerable_crate_fails_unless_ignored_with_a_reason_and_an_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let settings = fixture(dir.path(), "2026-11-20T10:00:00+02:00");
        let report = scan(&settings).unwrap();
        assert_eq!(report.age_days, 7);
        assert!(!report.passed());
        assert_eq!(report.vulnerable[0].id, "RUSTSEC-2021-0003");
        assert_eq!(report.vulnerable[0].patched, [">=1.6.1"]);

        std::fs::write(
            &settings.ignore_file,
            "[[ignore]]\nid = \"RUSTSEC-2021-0003\"\nreason = \"insert_many is never called\"\nexpires = \"2026-12-31\"\n",
        )
        .unwrap();
        let report = scan(&settings).unwrap();
        assert!(report.passed(), "{}", report.summary());
        assert_eq!(report.ignored[0].1, "insert_many is never called");

        std::fs::write(
            &settings.ignore_file,
            "[[ignore]]\nid = \"RUSTSEC-2021-0003\"\nreason = \"old\"\nexpires = \"2026-11-26\"\n",
        )
        .unwrap();
        let error = scan(&settings).unwrap_err().to_string();
        assert!(error.contains("expired on 2026-11-26"), "{error}");

        std::fs::write(
            &settings.ignore_file,
            "[[ignore]]\nid = \"RUSTSEC-2021-0003\"\nexpires = \"2027-01-01\"\n",
        )
        .unwrap();
        assert!(scan(&settings).unwrap_err().to_string().contains("malformed"));
    }

    #[test]
    fn a_stale_snapshot_stops_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let settings = fixture(dir.path(), "2026-08-21T08:28:40+02:00");
        let error = scan(&settings).unwrap_err().to_string();
        assert!(error.contains("98 days old"), "{error}");
        assert!(error.contains("over the limit of 30 days"), "{error}");
    }
}
