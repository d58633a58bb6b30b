//! The deploy repository through the `git` command: a private checkout that xtask resets to the remote head
//! before every attempt, and pushes that are never forced.

use std::{
    hash::{BuildHasher as _, Hasher as _},
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use anyhow::{Context, bail};

/// The branch every write goes to; staging's Argo CD Application follows it.
pub const BRANCH: &str = "main";

/// The branch production's Argo CD Application follows: moved (to a commit of `main`) only by a promotion or a
/// rollback of production, so a Sync can never apply a desired state nobody confirmed.
pub const PRODUCTION_BRANCH: &str = "production";

/// How many times a rejected push is retried from the new remote head.
const ATTEMPTS: u32 = 8;

/// A checkout of the deploy repository owned by xtask (local changes in it are discarded).
#[derive(Debug)]
pub struct DeployRepository {
    url: String,
    checkout: PathBuf,
}

/// How desired-state commits are signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Signing {
    None,
    /// An SSH key (`gpg.format=ssh`), verifiable with `git verify-commit` and an allowed-signers file.
    Ssh(PathBuf),
}

/// A commit that reached the remote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pushed {
    pub commit: String,
    /// 1 when the first push went through.
    pub attempts: u32,
}

impl DeployRepository {
    /// Clones `url` (a URL or a path) into `checkout`, or reuses an earlier checkout of it.
    pub fn open(url: &str, checkout: &Path) -> anyhow::Result<DeployRepository> {
        let repository = DeployRepository { url: url.to_owned(), checkout: checkout.to_owned() };
        if checkout.join(".git").is_dir() {
            repository.git(&["remote", "set-url", "origin", url])?;
        } else {
            if let Some(parent) = checkout.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let output = Command::new("git")
                .args(["clone", "--quiet", "--no-checkout", url])
                .arg(checkout)
                .output()
                .context("cannot run git")?;
            check(&output, &format!("git clone {url}"))?;
        }
        Ok(repository)
    }

    /// [`Self::open`] in xtask's own checkout of `url` under `target` (the target directory), one per URL, so
    /// release, promote, rollback and history reuse one clone.
    pub fn open_in_target(url: &str, target: &Path) -> anyhow::Result<DeployRepository> {
        let checkout =
            target.join("deploy-checkouts").join(&oci::Digest::of(url.as_bytes()).hex()[..16]);
        DeployRepository::open(url, &checkout)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The checkout, made equal to the remote branch first: for reading the ledger.
    pub fn fresh_checkout(&self) -> anyhow::Result<&Path> {
        self.reset_to_remote()?;
        Ok(&self.checkout)
    }

    /// Fetch → `change` → commit → push to `main`, until the push is accepted. `change` edits the checkout's
    /// files and returns the commit message, or `None` when there is nothing to commit (the state is already
    /// there).
    pub fn publish(
        &self,
        change: impl FnMut(&Path) -> anyhow::Result<Option<String>>,
    ) -> anyhow::Result<Option<Pushed>> {
        self.publish_moving(false, &Signing::None, change)
    }

    /// [`Self::publish`], also moving [`PRODUCTION_BRANCH`] to the new commit when `production` is set (in the
    /// same atomic push: both refs move or neither), and signing the commit as `signing` says.
    pub fn publish_moving(
        &self,
        production: bool,
        signing: &Signing,
        mut change: impl FnMut(&Path) -> anyhow::Result<Option<String>>,
    ) -> anyhow::Result<Option<Pushed>> {
        for attempt in 1..=ATTEMPTS {
            self.reset_to_remote()?;
            let Some(message) = change(&self.checkout)? else { return Ok(None) };
            self.git(&["add", "--all", "--", "."])?;
            if self.git_status(&["diff", "--cached", "--quiet"])? {
                return Ok(None);
            }
            self.commit(&message, signing)?;
            let main = format!("HEAD:refs/heads/{BRANCH}");
            let production_ref = format!("HEAD:refs/heads/{PRODUCTION_BRANCH}");
            let mut args =
                vec!["push", "--quiet", "--porcelain", "--atomic", "origin", main.as_str()];
            if production {
                args.push(production_ref.as_str());
            }
            let push = self.run(&args)?;
            if push.status.success() {
                let commit = self.git(&["rev-parse", "HEAD"])?;
                return Ok(Some(Pushed { commit, attempts: attempt }));
            }
            let report = format!(
                "{}{}",
                String::from_utf8_lossy(&push.stdout),
                String::from_utf8_lossy(&push.stderr)
            );
            if !is_rejection(&report) {
                bail!("git push to {} failed:\n{report}", self.url);
            }
            let pause = jitter(attempt);
            eprintln!(
                "deploy: {} moved while we committed (attempt {attempt}); starting over in {} ms",
                self.url,
                pause.as_millis()
            );
            std::thread::sleep(pause);
        }
        bail!(
            "gave up after {ATTEMPTS} rejected pushes to {}: another writer keeps winning",
            self.url
        )
    }

    fn commit(&self, message: &str, signing: &Signing) -> anyhow::Result<()> {
        let mut command = Command::new("git");
        command.arg("-C").arg(&self.checkout).args(identity());
        if let Signing::Ssh(key) = signing {
            command
                .args(["-c", "gpg.format=ssh", "-c"])
                .arg(format!("user.signingkey={}", key.display()));
        }
        command.args(["commit", "--quiet", "--file", "-"]);
        if !matches!(signing, Signing::None) {
            command.arg("--gpg-sign");
        }
        let mut child = command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .context("cannot run git commit")?;
        use std::io::Write as _;
        child.stdin.take().context("git commit has no stdin")?.write_all(message.as_bytes())?;
        check(&child.wait_with_output()?, "git commit")
    }

    /// Makes the checkout equal to the remote branch (or empty when the remote has no commits yet).
    fn reset_to_remote(&self) -> anyhow::Result<()> {
        self.git(&["fetch", "--quiet", "--prune", "origin"])?;
        let remote = format!("refs/remotes/origin/{BRANCH}");
        if self.git_status(&["rev-parse", "--verify", "--quiet", &remote])? {
            self.git(&["checkout", "--quiet", "--force", "-B", BRANCH, &remote])?;
        } else {
            // A new deploy repository: start the branch from nothing.
            self.git(&["checkout", "--quiet", "--orphan", BRANCH])?;
            self.git(&["rm", "-r", "--quiet", "--force", "--cached", "--ignore-unmatch", "."])?;
        }
        self.git(&["clean", "--quiet", "-d", "--force", "-x"])?;
        Ok(())
    }

    /// The commit the remote's `branch` points at, if the branch exists.
    #[cfg(test)]
    pub fn remote_head(&self, branch: &str) -> anyhow::Result<Option<String>> {
        self.git(&["fetch", "--quiet", "--prune", "origin"])?;
        let output = self.run(&[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/remotes/origin/{branch}"),
        ])?;
        Ok(output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned()))
    }

    /// The commit message of each commit on the remote branch, newest first.
    #[cfg(test)]
    pub fn log(&self) -> anyhow::Result<Vec<String>> {
        self.git(&["fetch", "--quiet", "origin"])?;
        let text = self.git(&["log", "--format=%B%x00", &format!("origin/{BRANCH}")])?;
        Ok(text
            .split('\0')
            .map(str::trim)
            .filter(|message| !message.is_empty())
            .map(str::to_owned)
            .collect())
    }

    fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Command::new("git")
            .arg("-C")
            .arg(&self.checkout)
            .args(identity())
            .args(args)
            .output()
            .with_context(|| format!("cannot run git {}", args.join(" ")))
    }

    fn git(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run(args)?;
        check(&output, &format!("git {}", args.join(" ")))?;
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    }

    /// Runs a git command whose exit status is the answer.
    fn git_status(&self, args: &[&str]) -> anyhow::Result<bool> {
        Ok(self.run(args)?.status.success())
    }
}

/// The committer of every desired-state commit: the release tool, not whoever ran it.
fn identity() -> [&'static str; 4] {
    ["-c", "user.name=Hangangjari release", "-c", "user.email=release@hangangjari.app"]
}

fn check(output: &Output, what: &str) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    )
}

/// Whether a failed push was refused because the branch moved (the only failure worth retrying).
fn is_rejection(report: &str) -> bool {
    ["[rejected]", "non-fast-forward", "fetch first", "cannot lock ref", "failed to update ref"]
        .iter()
        .any(|marker| report.contains(marker))
}

/// 100–400 ms times the attempt, spread so two writers that collided do not collide again in step.
fn jitter(attempt: u32) -> Duration {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(attempt);
    let spread = hasher.finish() % 300;
    Duration::from_millis((100 + spread) * u64::from(attempt))
}
