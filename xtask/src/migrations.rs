//! The shipped migrations, each judged expand or contract from its SQL (`db::migration_kind`): a CI stage,
//! and what the release record, the deploy commit's summary and `cargo xtask rollback` read.

use std::path::Path;

use anyhow::Context;
use db::migration_kind::{self, Kind};
use serde::{Deserialize, Serialize};

/// Where the migrations live, relative to the workspace root.
pub const DIRECTORY: &str = "libs/migrate/migrations";

/// One migration file and its kind, as `release.json` records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// The file name, `<version>_<description>.sql`.
    pub name: String,
    pub kind: KindName,
    /// The reason of the file's `-- migration-kind:` override, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overridden: Option<String>,
}

/// [`Kind`] as it is written in records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KindName {
    Expand,
    Contract,
}

impl From<Kind> for KindName {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Expand => KindName::Expand,
            Kind::Contract => KindName::Contract,
        }
    }
}

impl KindName {
    pub fn as_str(self) -> &'static str {
        match self {
            KindName::Expand => "expand",
            KindName::Contract => "contract",
        }
    }
}

/// Every migration under `root`, oldest first, judged; fails naming every file that cannot be judged.
pub fn judge_all(root: &Path) -> anyhow::Result<Vec<(Migration, Vec<String>)>> {
    let directory = root.join(DIRECTORY);
    let mut names: Vec<String> = std::fs::read_dir(&directory)
        .with_context(|| format!("cannot read {}", directory.display()))?
        .map(|entry| entry.map(|entry| entry.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    names.retain(|name| name.ends_with(".sql"));
    names.sort();
    let mut judged = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        let sql = std::fs::read_to_string(directory.join(&name))?;
        match migration_kind::judge(&sql) {
            Ok(judgement) => judged.push((
                Migration { name, kind: judgement.kind.into(), overridden: judgement.overridden },
                judgement.findings,
            )),
            Err(error) => problems.push(format!("{name}: {error}")),
        }
    }
    anyhow::ensure!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(judged)
}

/// The CI stage: every migration judged, one line each.
pub fn check(root: &Path) -> anyhow::Result<String> {
    let judged = judge_all(root)?;
    for (migration, findings) in &judged {
        let how = match &migration.overridden {
            Some(reason) => format!(" (override: {reason})"),
            None => String::new(),
        };
        println!("  {:<9} {}{how}", migration.kind.as_str(), migration.name);
        for finding in findings {
            println!("            {finding}");
        }
    }
    let contracts = judged.iter().filter(|(m, _)| m.kind == KindName::Contract).count();
    Ok(format!(
        "{} migrations: {} expand, {contracts} contract",
        judged.len(),
        judged.len() - contracts
    ))
}
