//! Throwaway git repositories for the release tests: a bare `origin` with a `main`, clones of it, commits that
//! need no git identity from the machine.

use std::path::Path;

use xshell::{Shell, cmd};

/// A shell in `dir` whose commits need no global git identity.
pub fn shell_in(dir: &Path) -> Shell {
    let sh = Shell::new().unwrap();
    sh.change_dir(dir);
    for (name, value) in [
        ("GIT_AUTHOR_NAME", "release test"),
        ("GIT_AUTHOR_EMAIL", "release-test@hangangjari.invalid"),
        ("GIT_COMMITTER_NAME", "release test"),
        ("GIT_COMMITTER_EMAIL", "release-test@hangangjari.invalid"),
        // The test's repositories, not whatever the machine's git configuration adds.
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ] {
        sh.set_var(name, value);
    }
    sh
}

/// An empty commit on HEAD; its hash.
pub fn commit(sh: &Shell, message: &str) -> String {
    cmd!(sh, "git commit --quiet --allow-empty -m {message}").run().unwrap();
    cmd!(sh, "git rev-parse HEAD").read().unwrap()
}

/// A bare `origin` whose `main` has one commit, and a clone of it.
pub fn origin_and_clone(dir: &Path) -> Shell {
    let origin = dir.join("origin.git");
    let sh = shell_in(dir);
    cmd!(sh, "git init --quiet --bare --initial-branch main {origin}").run().unwrap();
    let seed = dir.join("seed");
    cmd!(sh, "git init --quiet --initial-branch main {seed}").run().unwrap();
    let seed_sh = shell_in(&seed);
    commit(&seed_sh, "first");
    cmd!(seed_sh, "git push --quiet {origin} main").run().unwrap();
    let clone = dir.join("clone");
    cmd!(sh, "git clone --quiet {origin} {clone}").run().unwrap();
    shell_in(&clone)
}
