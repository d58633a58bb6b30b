//! Which workspace xtask operates on, found when it runs, never when it was built: one target directory may be
//! shared by several checkouts (`.ci/run` shares one across clones), and a binary built for one checkout must
//! not build, check or publish another's tree.
//!
//! The root is the parent of the `CARGO_MANIFEST_DIR` cargo sets for `cargo run` (what `cargo xtask` is), or
//! else the workspace `cargo locate-project --workspace` finds from the current directory; either way the
//! current directory must lie inside it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use anyhow::{Context, bail};

/// The workspace this run operates on (found once, on first use).
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| match find() {
        Ok(root) => root,
        // main() calls `find` first and reports the error; nothing reaches here without a root.
        Err(error) => panic!("{error:#}"),
    })
}

/// Finds the workspace root for the current process.
pub fn find() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("no current directory")?;
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    find_from(&cwd, manifest_dir.as_deref())
}

fn find_from(cwd: &Path, manifest_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let root = match manifest_dir {
        Some(xtask_dir) => xtask_dir
            .parent()
            .with_context(|| format!("CARGO_MANIFEST_DIR {} has no parent", xtask_dir.display()))?
            .to_owned(),
        None => locate_project(cwd)?,
    };
    let root = root.canonicalize().with_context(|| format!("{} does not exist", root.display()))?;
    let cwd = cwd.canonicalize()?;
    if !cwd.starts_with(&root) {
        bail!(
            "xtask would operate on the workspace at {} but runs in {}: run it there, with `cargo xtask`",
            root.display(),
            cwd.display()
        );
    }
    if !root.join("xtask/Cargo.toml").is_file() {
        bail!("{} is not this project's workspace (it has no xtask/Cargo.toml)", root.display());
    }
    Ok(root)
}

/// The workspace containing `cwd`, as cargo sees it.
fn locate_project(cwd: &Path) -> anyhow::Result<PathBuf> {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .current_dir(cwd)
        .output()
        .context("cannot run `cargo locate-project`")?;
    if !output.status.success() {
        bail!(
            "no Cargo workspace around {}: {}",
            cwd.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let manifest = PathBuf::from(String::from_utf8(output.stdout)?.trim());
    Ok(manifest.parent().context("the workspace manifest has no directory")?.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_comes_from_where_xtask_runs_and_must_contain_the_current_directory() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let root = here.parent().unwrap().canonicalize().unwrap();
        assert_eq!(find_from(&root.join("contracts"), Some(&here)).unwrap(), root);
        assert_eq!(find_from(&root.join("libs/db"), None).unwrap(), root, "cargo locate-project");
        let elsewhere = std::env::temp_dir();
        let error = find_from(&elsewhere, Some(&here)).unwrap_err();
        assert!(format!("{error:#}").contains("but runs in"), "{error:#}");
    }
}
