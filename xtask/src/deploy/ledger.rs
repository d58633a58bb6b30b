//! The deploy repository read back as a ledger: commit by commit, which release each environment's desired
//! state named, with the commit's time, subject and trailers. The rollback check and `cargo xtask history`
//! read it; nothing here writes.

use std::{collections::BTreeMap, path::Path, process::Command};

use anyhow::Context;

use super::state::ReleaseEntry;

/// One commit that changed an environment's desired state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredState {
    pub commit: String,
    /// Unix seconds.
    pub committed_at: i64,
    pub environment: String,
    /// The release the environment was told to run from this commit on.
    pub entry: ReleaseEntry,
    pub subject: String,
    /// `Release-Id`, `Source-Commit`, `Rollback-From`, … as written by release and rollback.
    pub trailers: BTreeMap<String, String>,
}

/// Runs git in `root` and returns its standard output.
fn git(root: &Path, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .with_context(|| format!("cannot run git {}", args.join(" ")))?;
    anyhow::ensure!(
        output.status.success(),
        "git {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Every desired state `environment` was given, oldest first (empty for a repository without commits).
pub fn desired_states(root: &Path, environment: &str) -> anyhow::Result<Vec<DesiredState>> {
    if git(root, &["rev-parse", "--verify", "--quiet", "HEAD"]).is_err() {
        return Ok(Vec::new());
    }
    let path = format!("environments/{environment}/release.json");
    let log = git(root, &["log", "--reverse", "--format=%H%x1f%ct%x1f%B%x1e", "--", &path])?;
    let mut states = Vec::new();
    for record in log.split('\x1e').map(str::trim).filter(|record| !record.is_empty()) {
        let mut fields = record.splitn(3, '\x1f');
        let (Some(commit), Some(time), Some(message)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        // A commit that deleted the file names no release.
        let Ok(pointer) = git(root, &["show", &format!("{commit}:{path}")]) else { continue };
        let entry: ReleaseEntry = serde_json::from_str(&pointer)
            .with_context(|| format!("{path} at {commit} is malformed"))?;
        states.push(DesiredState {
            commit: commit.to_owned(),
            committed_at: time.trim().parse().context("git printed a non-numeric time")?,
            environment: environment.to_owned(),
            entry,
            subject: message.lines().next().unwrap_or_default().to_owned(),
            trailers: trailers(message),
        });
    }
    Ok(states)
}

/// The `Key: value` lines of a message's last paragraph.
pub fn trailers(message: &str) -> BTreeMap<String, String> {
    let last = message.trim_end().rsplit("\n\n").next().unwrap_or_default();
    last.lines()
        .filter_map(|line| line.split_once(": "))
        .filter(|(key, _)| {
            !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .map(|(key, value)| (key.to_owned(), value.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_read_from_the_last_paragraph_only() {
        let message = "rollback to release 1\n\nNote: not a trailer here.\n\nRelease-Id: 1\nRollback-From: 2, 3\n";
        let trailers = trailers(message);
        assert_eq!(trailers.len(), 2, "{trailers:?}");
        assert_eq!(trailers["Release-Id"], "1");
        assert_eq!(trailers["Rollback-From"], "2, 3");
    }
}
