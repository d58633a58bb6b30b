//! What must be true of the checkout before anything leaves the machine: HEAD is contained in the protected
//! branch as just fetched from its remote, and the tree is exactly the commit.
//!
//! The branch is judged from git, never from what the environment says: CI variables such as
//! `GITHUB_REF_NAME` name the ref that triggered a run, and any job (or anyone with a shell) can set them, so
//! a feature branch could claim to be `main`. The local branch's name proves nothing either (anyone can name a
//! branch `main`). What is hard to fake is ancestry: `git merge-base --is-ancestor HEAD <remote>/main` after a
//! fetch of that one ref, so only commits that reached the protected branch on the remote publish. A checkout
//! without a remote (a developer's scratch repository, the tests) falls back to the local `main` ref, which
//! at least keeps a side branch from publishing by accident.
//!
//! "Exactly the commit" means no tracked change and no untracked file under the directories that ship as they
//! are: `libs/migrate/migrations/` (sqlx's `migrate!` embeds every file there at build time, tracked or not,
//! ignored or not) and `contracts/` (the wire contracts and their baselines). A stray file there would be
//! shipped or judged without anyone having committed it.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The directories whose untracked files would change what a release ships.
pub const SHIPPED_AS_IS: [&str; 2] = [crate::migrations::DIRECTORY, "contracts"];

/// Whether HEAD is on the protected branch, and which ref said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Containment {
    /// HEAD is `reference` or one of its ancestors.
    Contained { reference: String },
    /// HEAD is not in `reference`'s history.
    NotContained { head: String, reference: String },
}

/// Fetches `branch` from the remote it tracks (else `origin`) and asks whether HEAD is in its history; with no
/// remote, asks the local `branch`. A remote that cannot be fetched is an error, not a pass.
pub fn protected_branch(sh: &Shell, branch: &str) -> anyhow::Result<Containment> {
    let reference = match remote_of(sh, branch)? {
        Some(remote) => {
            let tracking = format!("refs/remotes/{remote}/{branch}");
            let refspec = format!("+refs/heads/{branch}:{tracking}");
            cmd!(sh, "git fetch --quiet --no-tags {remote} {refspec}").quiet().run().with_context(
                || {
                    format!(
                        "cannot fetch `{branch}` from the remote `{remote}`: a release must see the protected \
                         branch as it is now to know that HEAD is on it"
                    )
                },
            )?;
            tracking
        }
        None => {
            let local = format!("refs/heads/{branch}");
            let exists = cmd!(sh, "git rev-parse --verify --quiet {local}")
                .quiet()
                .ignore_stdout()
                .ignore_status()
                .output()?
                .status
                .success();
            if !exists {
                bail!("this checkout has no remote and no `{branch}` branch to judge HEAD against");
            }
            local
        }
    };
    let head = cmd!(sh, "git rev-parse HEAD").quiet().read()?;
    let answer = cmd!(sh, "git merge-base --is-ancestor {head} {reference}")
        .quiet()
        .ignore_status()
        .output()?;
    // `--is-ancestor` answers 0 (yes) or 1 (no); anything else is git failing (an unknown commit in a shallow
    // clone, a broken repository), which must not read as either.
    match answer.status.code() {
        Some(0) => Ok(Containment::Contained { reference }),
        Some(1) => Ok(Containment::NotContained { head, reference }),
        _ => bail!(
            "git merge-base --is-ancestor {head} {reference} failed: {}",
            String::from_utf8_lossy(&answer.stderr).trim()
        ),
    }
}

/// The remote `branch` tracks (`branch.<name>.remote`), else `origin` if there is one, else none.
fn remote_of(sh: &Shell, branch: &str) -> anyhow::Result<Option<String>> {
    let key = format!("branch.{branch}.remote");
    let configured = cmd!(sh, "git config --get {key}").quiet().ignore_status().read()?;
    // `.` means "this repository": the local branch is the one to ask.
    if configured == "." {
        return Ok(None);
    }
    if !configured.is_empty() {
        return Ok(Some(configured));
    }
    let remotes = cmd!(sh, "git remote").quiet().read()?;
    Ok(remotes.lines().any(|remote| remote == "origin").then(|| "origin".to_owned()))
}

/// Refuses a checkout that is not exactly its commit: tracked changes, or untracked files (ignored ones too)
/// under [`SHIPPED_AS_IS`].
pub fn check_clean(sh: &Shell) -> anyhow::Result<()> {
    if !cmd!(sh, "git status --porcelain --untracked-files=no").quiet().read()?.is_empty() {
        bail!("the working tree has uncommitted changes: a release must be exactly its commit");
    }
    let top = cmd!(sh, "git rev-parse --show-toplevel").quiet().read()?;
    // Without `--exclude-standard`, `--others` lists ignored files too: the migrations macro embeds them alike.
    let untracked =
        cmd!(sh, "git -C {top} ls-files --others -- {SHIPPED_AS_IS...}").quiet().read()?;
    if !untracked.is_empty() {
        let files: Vec<&str> = untracked.lines().collect();
        bail!(
            "untracked files under {} would ship without being committed: {}; commit or remove them",
            SHIPPED_AS_IS.join(" and "),
            files.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{super::git_fixture::*, *};

    #[test]
    fn head_of_the_fetched_main_is_contained() {
        let dir = tempfile::tempdir().unwrap();
        let sh = origin_and_clone(dir.path());
        assert_eq!(
            protected_branch(&sh, "main").unwrap(),
            Containment::Contained { reference: "refs/remotes/origin/main".to_owned() }
        );
    }

    /// A local branch named `main` with a commit the remote never accepted: its name is `main`, which the old
    /// check (the branch name, or CI's variables) took at its word.
    #[test]
    fn a_local_main_ahead_of_the_remote_is_not_contained() {
        let dir = tempfile::tempdir().unwrap();
        let sh = origin_and_clone(dir.path());
        let head = commit(&sh, "never pushed");
        assert_eq!(
            protected_branch(&sh, "main").unwrap(),
            Containment::NotContained { head, reference: "refs/remotes/origin/main".to_owned() }
        );
    }

    /// The fetch is what counts: a commit pushed to `main` by someone else since the clone is contained once
    /// fetched, and a feature branch based on it is not.
    #[test]
    fn the_remote_is_fetched_before_judging() {
        let dir = tempfile::tempdir().unwrap();
        let sh = origin_and_clone(dir.path());
        let other = dir.path().join("other");
        let origin = dir.path().join("origin.git");
        cmd!(sh, "git clone --quiet {origin} {other}").run().unwrap();
        let other_sh = shell_in(&other);
        let pushed = commit(&other_sh, "landed on main elsewhere");
        cmd!(other_sh, "git push --quiet origin main").run().unwrap();

        cmd!(sh, "git fetch --quiet origin {pushed}").run().unwrap();
        cmd!(sh, "git checkout --quiet --detach {pushed}").run().unwrap();
        // Without the release's own fetch, refs/remotes/origin/main would still be the first commit.
        assert!(matches!(protected_branch(&sh, "main").unwrap(), Containment::Contained { .. }));

        cmd!(sh, "git checkout --quiet -b feature").run().unwrap();
        let feature = commit(&sh, "feature work");
        assert_eq!(
            protected_branch(&sh, "main").unwrap(),
            Containment::NotContained {
                head: feature,
                reference: "refs/remotes/origin/main".to_owned()
            }
        );
    }

    #[test]
    fn without_a_remote_the_local_main_decides() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shell_in(dir.path());
        cmd!(sh, "git init --quiet --initial-branch main").run().unwrap();
        commit(&sh, "first");
        assert!(matches!(protected_branch(&sh, "main").unwrap(), Containment::Contained { .. }));
        cmd!(sh, "git checkout --quiet -b side").run().unwrap();
        commit(&sh, "side work");
        assert!(matches!(
            protected_branch(&sh, "main").unwrap(),
            Containment::NotContained { reference, .. } if reference == "refs/heads/main"
        ));
    }

    #[test]
    fn an_unreachable_remote_is_an_error_not_a_pass() {
        let dir = tempfile::tempdir().unwrap();
        let sh = origin_and_clone(dir.path());
        std::fs::remove_dir_all(dir.path().join("origin.git")).unwrap();
        let error = format!("{:#}", protected_branch(&sh, "main").unwrap_err());
        assert!(error.contains("cannot fetch `main` from the remote `origin`"), "{error}");
    }

    #[test]
    fn untracked_files_under_migrations_or_contracts_refuse() {
        let dir = tempfile::tempdir().unwrap();
        let sh = shell_in(dir.path());
        cmd!(sh, "git init --quiet --initial-branch main").run().unwrap();
        for shipped in SHIPPED_AS_IS {
            std::fs::create_dir_all(dir.path().join(shipped)).unwrap();
            std::fs::write(dir.path().join(shipped).join("tracked"), "").unwrap();
        }
        std::fs::write(dir.path().join(".gitignore"), "*.ignored\n").unwrap();
        cmd!(sh, "git add .").run().unwrap();
        commit(&sh, "first");
        check_clean(&sh).unwrap();

        // Untracked files elsewhere do not ship.
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        check_clean(&sh).unwrap();

        let migration = dir.path().join(crate::migrations::DIRECTORY).join("20990101000000_x.sql");
        std::fs::write(&migration, "select 1;").unwrap();
        let error = format!("{:#}", check_clean(&sh).unwrap_err());
        assert!(error.contains("libs/migrate/migrations/20990101000000_x.sql"), "{error}");
        std::fs::remove_file(&migration).unwrap();

        // Ignored files count too: the build embeds them just the same.
        std::fs::write(dir.path().join("contracts/baseline.ignored"), "{}").unwrap();
        let error = format!("{:#}", check_clean(&sh).unwrap_err());
        assert!(error.contains("contracts/baseline.ignored"), "{error}");
        assert!(error.contains("would ship without being committed"), "{error}");
        std::fs::remove_file(dir.path().join("contracts/baseline.ignored")).unwrap();

        // From a subdirectory the paths are still the project's.
        std::fs::write(dir.path().join("contracts/new.json"), "{}").unwrap();
        let sub = shell_in(&dir.path().join(crate::migrations::DIRECTORY));
        assert!(check_clean(&sub).is_err());
        std::fs::remove_file(dir.path().join("contracts/new.json")).unwrap();

        std::fs::write(dir.path().join("contracts/tracked"), "changed").unwrap();
        let error = format!("{:#}", check_clean(&sh).unwrap_err());
        assert!(error.contains("uncommitted changes"), "{error}");
    }
}
