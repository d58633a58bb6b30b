//! Generated artifacts that are committed: gRPC code and the descriptor set from `contracts/proto/`, and the
//! JSON Schema document and OpenAPI 3.1 document of every contract version from `contracts::catalogue`.
//!
//! They are committed so reviewers see generated changes in diffs and builds need no code generator. A test
//! (below) fails when any of them is stale and names the command that refreshes them.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use prost::Message;

use crate::project_root;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Write,
    Check,
}

/// The `.proto` files, relative to `contracts/proto`.
const PROTO_FILES: [&str; 3] = [
    "hangang/forecast/v1/forecast.proto",
    "hangang/ingest/v1/ingest.proto",
    "hangang/push/v1/push.proto",
];

pub fn run(mode: Mode) -> anyhow::Result<()> {
    let root = project_root();
    let artifacts = generate(&root)?;
    let mut stale = Vec::new();
    for (path, contents) in &artifacts {
        let absolute = root.join(path);
        let committed = std::fs::read(&absolute).ok();
        if committed.as_deref() == Some(contents.as_slice()) {
            continue;
        }
        match mode {
            Mode::Check => stale.push(path.display().to_string()),
            Mode::Write => {
                std::fs::create_dir_all(absolute.parent().expect("artifact paths have a parent"))?;
                std::fs::write(&absolute, contents)
                    .with_context(|| format!("failed to write {}", absolute.display()))?;
                eprintln!("wrote {}", path.display());
            }
        }
    }
    if !stale.is_empty() {
        bail!(
            "generated artifacts are stale: {}\nrun `cargo xtask codegen` and commit the result",
            stale.join(", ")
        );
    }
    Ok(())
}

/// Every committed artifact as (path relative to the workspace root, exact bytes).
pub fn generate(root: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut artifacts = proto_artifacts(root)?;
    for version in contracts::catalogue::versions() {
        let mut text = serde_json::to_string_pretty(&version.schema_document())?;
        text.push('\n');
        artifacts.push((
            PathBuf::from(format!("contracts/schemas/{}.json", version.version)),
            text.into_bytes(),
        ));
        let mut openapi = serde_json::to_string_pretty(&contracts::openapi::document(&version))?;
        openapi.push('\n');
        artifacts.push((
            PathBuf::from(format!("contracts/openapi/{}.json", version.version)),
            openapi.into_bytes(),
        ));
    }
    Ok(artifacts)
}

/// Descriptor set of the current `.proto` files, encoded (imports included, for reflection).
pub fn descriptor_set(root: &Path) -> anyhow::Result<prost_types::FileDescriptorSet> {
    let mut compiler = protox::Compiler::new([root.join("contracts/proto")])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(PROTO_FILES).context("failed to compile contracts/proto")?;
    Ok(compiler.file_descriptor_set())
}

fn proto_artifacts(root: &Path) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let set = descriptor_set(root)?;
    let out_dir = std::env::temp_dir().join(format!("hangang-codegen-{}", std::process::id()));
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir)?;
    }
    std::fs::create_dir_all(&out_dir)?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .emit_rerun_if_changed(false)
        .out_dir(&out_dir)
        .compile_fds(set.clone())
        .context("failed to generate gRPC code")?;

    let gen_dir = PathBuf::from("contracts/src/gen");
    let mut artifacts = vec![(gen_dir.join("descriptor.binpb"), set.encode_to_vec())];
    let mut entries: Vec<_> = std::fs::read_dir(&out_dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("google.") {
            continue; // well-known types come from prost-types
        }
        artifacts.push((gen_dir.join(&name), std::fs::read(entry.path())?));
    }
    std::fs::remove_dir_all(&out_dir)?;
    Ok(artifacts)
}

#[cfg(test)]
mod tests {
    #[test]
    fn committed_artifacts_are_fresh() {
        if let Err(error) = super::run(super::Mode::Check) {
            panic!("{error:#}");
        }
    }
}
