//! Two checkouts sharing one target directory: the xtask binary built for one operates on the other when it is
//! run there (as `cargo xtask` in that checkout runs it), never on the tree it was built from.

use std::{path::Path, process::Command};

fn root_reported(binary: &str, cwd: &Path, manifest_dir: Option<&Path>) -> String {
    let mut command = Command::new(binary);
    command.arg("root").current_dir(cwd).env_remove("CARGO_MANIFEST_DIR");
    if let Some(dir) = manifest_dir {
        command.env("CARGO_MANIFEST_DIR", dir);
    }
    let output = command.output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

#[test]
fn each_copy_of_the_workspace_operates_on_itself() {
    let binary = env!("CARGO_BIN_EXE_xtask");
    let original = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().canonicalize().unwrap();
    let scratch = std::env::temp_dir().join(format!("xtask-copies-{}", std::process::id()));
    let copy = scratch.join("copy");
    std::fs::create_dir_all(&scratch).unwrap();
    let cloned = Command::new("git")
        .args(["clone", "-q", "--no-hardlinks"])
        .arg(&original)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(cloned.success());
    let copy = copy.canonicalize().unwrap();

    // As `cargo xtask` in each checkout runs it: cargo sets that checkout's CARGO_MANIFEST_DIR.
    let in_copy = root_reported(binary, &copy.join("services"), Some(&copy.join("xtask")));
    let in_original = root_reported(binary, &original, Some(&original.join("xtask")));
    // Run by hand, without cargo: the workspace around the current directory.
    let by_hand = root_reported(binary, &copy.join("libs"), None);
    std::fs::remove_dir_all(&scratch).ok();
    assert_eq!(in_copy, copy.display().to_string());
    assert_eq!(in_original, original.display().to_string());
    assert_eq!(by_hand, copy.display().to_string());
}
