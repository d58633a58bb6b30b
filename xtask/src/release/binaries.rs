//! The four service binaries, static and reproducible, each carrying its dependency list.
//!
//! `cargo build --release --locked --target x86_64-unknown-linux-gnu` with `+crt-static`: the musl target
//! cannot be installed on our machines, and glibc ≥ 2.34 has the `files` and `dns` NSS modules built in, so a
//! static-pie glibc binary resolves `localhost` and DNS names and runs from scratch (other NSS modules, such as
//! LDAP or mDNS, are unavailable). Passing `--target`, even the host's, keeps these flags off build scripts and
//! proc macros and puts the artifacts under `target/x86_64-unknown-linux-gnu/`, so the host builds others run
//! are not invalidated. `[profile.release]` strips symbols; `--remap-path-prefix` replaces the workspace,
//! `CARGO_HOME` and target paths so two checkouts give the same bytes.
//!
//! The dependency list is cargo-auditable's format 1 (`.dep-v0`: zlib-compressed JSON, proc macros and their
//! dependencies recorded as build-time), computed from `cargo metadata` and added with `objcopy` to a copy of
//! the binary: cargo's own output is left untouched, so a no-op rebuild cannot add the section twice, and
//! objcopy adds the same bytes for the same inputs.

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use anyhow::Context;
use flate2::{Compression, write::ZlibEncoder};
use serde::{Deserialize, Serialize};
use xshell::{Shell, cmd};

use oci::Digest;

use super::Service;

/// The only target our machines have; the images are linux/amd64.
pub const TARGET: &str = "x86_64-unknown-linux-gnu";

/// A built, audited service binary.
#[derive(Debug, Clone)]
pub struct Binary {
    pub service: &'static Service,
    pub path: PathBuf,
    pub size: u64,
    pub digest: Digest,
}

/// The part of `cargo metadata` we read.
#[derive(Debug, Deserialize)]
pub struct Metadata {
    packages: Vec<Package>,
    workspace_members: Vec<String>,
    resolve: Resolve,
    pub workspace_root: PathBuf,
    pub target_directory: PathBuf,
}

#[derive(Debug, Deserialize)]
struct Package {
    id: String,
    name: String,
    version: String,
    source: Option<String>,
    targets: Vec<Target>,
}

#[derive(Debug, Deserialize)]
struct Target {
    kind: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Resolve {
    nodes: Vec<Node>,
}

#[derive(Debug, Deserialize)]
struct Node {
    id: String,
    deps: Vec<NodeDep>,
}

#[derive(Debug, Deserialize)]
struct NodeDep {
    pkg: String,
    dep_kinds: Vec<DepKindInfo>,
}

#[derive(Debug, Deserialize)]
struct DepKindInfo {
    /// `null` for normal dependencies, `"build"` or `"dev"`.
    kind: Option<String>,
}

impl Metadata {
    /// `cargo metadata` for our one target, so platform-specific dependencies of other targets drop out.
    pub fn load(sh: &Shell) -> anyhow::Result<Metadata> {
        let json =
            cmd!(sh, "cargo metadata --format-version 1 --locked --filter-platform {TARGET}")
                .quiet()
                .read()
                .context("cargo metadata failed")?;
        serde_json::from_str(&json).context("unexpected cargo metadata output")
    }
}

/// Builds the services' binaries and writes audited, checked copies into `out_dir`.
pub fn build(
    sh: &Shell,
    metadata: &Metadata,
    services: &'static [Service],
    out_dir: &Path,
) -> anyhow::Result<(Vec<Binary>, Duration)> {
    let cargo_home = match std::env::var_os("CARGO_HOME") {
        Some(home) => PathBuf::from(home),
        None => {
            PathBuf::from(std::env::var_os("HOME").context("neither CARGO_HOME nor HOME is set")?)
                .join(".cargo")
        }
    };
    // rustc applies the last matching prefix: the target directory may sit inside the workspace.
    let remaps = [
        (&metadata.workspace_root, "/build/workspace"),
        (&cargo_home, "/build/cargo"),
        (&metadata.target_directory, "/build/target"),
    ];
    let mut rustflags = vec!["-C".to_owned(), "target-feature=+crt-static".to_owned()];
    for (from, to) in remaps {
        rustflags.push(format!("--remap-path-prefix={}={to}", from.display()));
    }
    let packages: Vec<String> =
        services.iter().flat_map(|service| ["-p".to_owned(), service.package.to_owned()]).collect();

    let started = Instant::now();
    // CARGO_ENCODED_RUSTFLAGS wins over RUSTFLAGS, and takes paths with spaces. SOURCE_DATE_EPOCH is for
    // the images only: `cc` (ring's build script) watches it because GCC expands `__DATE__` with it, which
    // ring's C does not use, so the binaries are the same either way; passing it on would only rebuild ring
    // and everything above it whenever it changes.
    cmd!(sh, "cargo build --release --locked --target {TARGET} {packages...}")
        .env("CARGO_ENCODED_RUSTFLAGS", rustflags.join("\x1f"))
        .env_remove("SOURCE_DATE_EPOCH")
        .run()
        .context("static release build failed")?;
    let build_duration = started.elapsed();

    std::fs::create_dir_all(out_dir)?;
    let leak_markers = [&metadata.workspace_root, &cargo_home, &metadata.target_directory];
    let mut binaries = Vec::new();
    for service in services {
        let built = metadata.target_directory.join(TARGET).join("release").join(service.binary);
        let audited = out_dir.join(service.binary);
        let section = out_dir.join(format!("{}.dep-v0", service.binary));
        std::fs::write(&section, compressed_dependency_list(metadata, service.package)?)?;
        if audited.exists() {
            std::fs::remove_file(&audited)?;
        }
        let section_arg = format!(".dep-v0={}", section.display());
        cmd!(sh, "objcopy --add-section {section_arg} {built} {audited}")
            .quiet()
            .run()
            .with_context(|| format!("failed to add .dep-v0 to {}", built.display()))?;
        std::fs::remove_file(&section)?;

        let bytes = std::fs::read(&audited)?;
        anyhow::ensure!(
            is_static_pie(&bytes)?,
            "{} is not a static-pie executable (has it an ELF interpreter?)",
            audited.display()
        );
        for marker in leak_markers {
            let marker = marker.display().to_string();
            anyhow::ensure!(
                !contains(&bytes, marker.as_bytes()),
                "{} still contains the path {marker}: --remap-path-prefix missed it",
                audited.display()
            );
        }
        cmd!(sh, "{audited} --help")
            .quiet()
            .ignore_stdout()
            .run()
            .with_context(|| format!("{} --help failed", audited.display()))?;
        binaries.push(Binary {
            service,
            path: audited,
            size: bytes.len() as u64,
            digest: Digest::of(&bytes),
        });
    }
    Ok((binaries, build_duration))
}

/// cargo-auditable's JSON (format 1), in its field order.
#[derive(Debug, Serialize)]
struct VersionInfo {
    packages: Vec<AuditPackage>,
    format: u32,
}

#[derive(Debug, Serialize)]
struct AuditPackage {
    name: String,
    version: String,
    source: String,
    #[serde(skip_serializing_if = "DepKind::is_runtime")]
    kind: DepKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dependencies: Vec<usize>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    root: bool,
}

/// Ordered weakest first: a package reached both ways is a runtime dependency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
enum DepKind {
    Build,
    Runtime,
}

impl DepKind {
    fn is_runtime(&self) -> bool {
        *self == DepKind::Runtime
    }
}

/// The dependency list of workspace package `root`, zlib-compressed as `.dep-v0` holds it.
fn compressed_dependency_list(metadata: &Metadata, root: &str) -> anyhow::Result<Vec<u8>> {
    let json = serde_json::to_vec(&dependency_list(metadata, root)?)?;
    let mut encoder = ZlibEncoder::new(Vec::new(), Compression::new(7));
    encoder.write_all(&json)?;
    Ok(encoder.finish()?)
}

fn dependency_list(metadata: &Metadata, root: &str) -> anyhow::Result<VersionInfo> {
    let packages: BTreeMap<&str, &Package> =
        metadata.packages.iter().map(|package| (package.id.as_str(), package)).collect();
    let nodes: BTreeMap<&str, &Node> =
        metadata.resolve.nodes.iter().map(|node| (node.id.as_str(), node)).collect();
    let root_id = metadata
        .workspace_members
        .iter()
        .find(|id| packages.get(id.as_str()).is_some_and(|package| package.name == root))
        .with_context(|| format!("no workspace package `{root}`"))?;

    // Breadth first from the root, keeping the strongest kind each package is reached with: whatever hangs
    // below a build script or a proc macro is build-time unless a runtime path reaches it too.
    let mut kinds: BTreeMap<&str, DepKind> = BTreeMap::from([(root_id.as_str(), DepKind::Runtime)]);
    let mut queue = vec![root_id.as_str()];
    while let Some(parent) = queue.pop() {
        let parent_kind = kinds[parent];
        let node =
            nodes.get(parent).with_context(|| format!("{parent} is not in the resolve graph"))?;
        for dep in &node.deps {
            let Some(edge_kind) = edge_kind(dep) else { continue };
            let is_proc_macro = packages[dep.pkg.as_str()]
                .targets
                .iter()
                .any(|target| target.kind.iter().any(|kind| kind == "proc-macro"));
            let kind = if is_proc_macro { DepKind::Build } else { edge_kind }.min(parent_kind);
            if kinds.get(dep.pkg.as_str()).is_none_or(|seen| kind > *seen) {
                kinds.insert(&dep.pkg, kind);
                queue.push(&dep.pkg);
            }
        }
    }

    // Sorted by what the JSON shows, so the list does not depend on where the workspace lives (path
    // package ids contain it).
    let mut reached: Vec<&Package> = kinds.keys().map(|id| packages[id]).collect();
    reached.sort_by(|a, b| {
        (&a.name, &a.version, source_kind(a.source.as_deref()), &a.source).cmp(&(
            &b.name,
            &b.version,
            source_kind(b.source.as_deref()),
            &b.source,
        ))
    });
    let index: BTreeMap<&str, usize> =
        reached.iter().enumerate().map(|(at, package)| (package.id.as_str(), at)).collect();
    let mut list = Vec::new();
    for package in &reached {
        let mut dependencies: Vec<usize> = nodes[package.id.as_str()]
            .deps
            .iter()
            .filter(|dep| edge_kind(dep).is_some())
            .filter_map(|dep| index.get(dep.pkg.as_str()).copied())
            .collect();
        dependencies.sort_unstable();
        dependencies.dedup();
        list.push(AuditPackage {
            name: package.name.clone(),
            version: package.version.clone(),
            source: source_kind(package.source.as_deref()).to_owned(),
            kind: kinds[package.id.as_str()],
            dependencies,
            root: package.id == *root_id,
        });
    }
    Ok(VersionInfo { packages: list, format: 1 })
}

/// The strongest kind of a resolve edge, `None` for development-only edges.
fn edge_kind(dep: &NodeDep) -> Option<DepKind> {
    dep.dep_kinds
        .iter()
        .filter_map(|info| match info.kind.as_deref() {
            None => Some(DepKind::Runtime),
            Some("build") => Some(DepKind::Build),
            _ => None,
        })
        .max()
}

/// cargo-auditable's source names: `crates.io`, `registry`, `git`, `local`.
fn source_kind(source: Option<&str>) -> &str {
    match source {
        None => "local",
        Some(
            "registry+https://github.com/rust-lang/crates.io-index"
            | "sparse+https://index.crates.io/",
        ) => "crates.io",
        Some(source) if source.starts_with("registry+") || source.starts_with("sparse+") => {
            "registry"
        }
        Some(source) => source.split('+').next().unwrap_or(source),
    }
}

/// An ELF64 little-endian executable of type `ET_DYN` without a `PT_INTERP` program header: what `file`
/// calls "static-pie linked".
fn is_static_pie(elf: &[u8]) -> anyhow::Result<bool> {
    const ET_DYN: u16 = 3;
    const PT_INTERP: u32 = 3;
    let u16_at = |at: usize| elf.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at =
        |at: usize| elf.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    let u64_at =
        |at: usize| elf.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    anyhow::ensure!(elf.starts_with(b"\x7fELF\x02\x01"), "not a little-endian ELF64 file");
    let (Some(kind), Some(phoff), Some(phentsize), Some(phnum)) =
        (u16_at(16), u64_at(32), u16_at(54), u16_at(56))
    else {
        anyhow::bail!("truncated ELF header");
    };
    let mut has_interpreter = false;
    for n in 0..usize::from(phnum) {
        let at = usize::try_from(phoff)? + n * usize::from(phentsize);
        has_interpreter |= u32_at(at).context("truncated program headers")? == PT_INTERP;
    }
    Ok(kind == ET_DYN && !has_interpreter)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace `app` with a build script dependency (`cc`), a proc macro (`derive`, which depends on
    /// `syn`), `syn` also at runtime through `uses-syn`, and a dev-only `insta`.
    fn metadata() -> Metadata {
        let json = serde_json::json!({
            "packages": [
                {"id": "path+file:///w/app#0.1.0", "name": "app", "version": "0.1.0", "source": null,
                 "targets": [{"kind": ["bin"]}]},
                {"id": "cc 1.0", "name": "cc", "version": "1.0.0",
                 "source": "registry+https://github.com/rust-lang/crates.io-index", "targets": [{"kind": ["lib"]}]},
                {"id": "derive 1.0", "name": "derive", "version": "1.0.0",
                 "source": "sparse+https://index.crates.io/", "targets": [{"kind": ["proc-macro"]}]},
                {"id": "syn 2.0", "name": "syn", "version": "2.0.0",
                 "source": "sparse+https://index.crates.io/", "targets": [{"kind": ["lib"]}]},
                {"id": "uses-syn 1.0", "name": "uses-syn", "version": "1.0.0",
                 "source": "git+https://example.org/x#abc", "targets": [{"kind": ["lib"]}]},
                {"id": "insta 1.0", "name": "insta", "version": "1.0.0",
                 "source": "sparse+https://index.crates.io/", "targets": [{"kind": ["lib"]}]},
                {"id": "only-build 1.0", "name": "only-build", "version": "1.0.0",
                 "source": "sparse+https://example.org/index/", "targets": [{"kind": ["lib"]}]},
            ],
            "workspace_members": ["path+file:///w/app#0.1.0"],
            "workspace_root": "/w",
            "target_directory": "/w/target",
            "resolve": {"nodes": [
                {"id": "path+file:///w/app#0.1.0", "deps": [
                    {"pkg": "cc 1.0", "dep_kinds": [{"kind": "build"}]},
                    {"pkg": "derive 1.0", "dep_kinds": [{"kind": null}]},
                    {"pkg": "uses-syn 1.0", "dep_kinds": [{"kind": null}]},
                    {"pkg": "insta 1.0", "dep_kinds": [{"kind": "dev"}]},
                ]},
                {"id": "cc 1.0", "deps": [{"pkg": "only-build 1.0", "dep_kinds": [{"kind": null}]}]},
                {"id": "derive 1.0", "deps": [{"pkg": "syn 2.0", "dep_kinds": [{"kind": null}]}]},
                {"id": "syn 2.0", "deps": []},
                {"id": "uses-syn 1.0", "deps": [{"pkg": "syn 2.0", "dep_kinds": [{"kind": null}]}]},
                {"id": "insta 1.0", "deps": []},
                {"id": "only-build 1.0", "deps": []},
            ]},
        });
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn dependency_list_follows_cargo_auditable_format_1() {
        let list = dependency_list(&metadata(), "app").unwrap();
        assert_eq!(
            serde_json::to_string(&list).unwrap(),
            r#"{"packages":["#.to_owned()
                + r#"{"name":"app","version":"0.1.0","source":"local","dependencies":[1,2,5],"root":true},"#
                + r#"{"name":"cc","version":"1.0.0","source":"crates.io","kind":"build","dependencies":[3]},"#
                + r#"{"name":"derive","version":"1.0.0","source":"crates.io","kind":"build","dependencies":[4]},"#
                + r#"{"name":"only-build","version":"1.0.0","source":"registry","kind":"build"},"#
                + r#"{"name":"syn","version":"2.0.0","source":"crates.io"},"#
                + r#"{"name":"uses-syn","version":"1.0.0","source":"git","dependencies":[4]}"#
                + r#"],"format":1}"#
        );
        let compressed = compressed_dependency_list(&metadata(), "app").unwrap();
        let mut json = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&compressed[..]), &mut json)
            .unwrap();
        assert_eq!(json, serde_json::to_vec(&list).unwrap());
        assert!(dependency_list(&metadata(), "cc").is_err(), "only workspace members are roots");
    }

    #[test]
    fn static_pie_means_no_interpreter() {
        // The test binary itself is a dynamically linked PIE: it has an interpreter.
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        assert!(!is_static_pie(&this).unwrap());

        // A minimal ET_DYN header with one PT_LOAD program header.
        let mut elf = vec![0u8; 64 + 56];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        elf[16..18].copy_from_slice(&3u16.to_le_bytes());
        elf[32..40].copy_from_slice(&64u64.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&1u16.to_le_bytes());
        elf[64..68].copy_from_slice(&1u32.to_le_bytes());
        assert!(is_static_pie(&elf).unwrap());
        elf[64..68].copy_from_slice(&3u32.to_le_bytes());
        assert!(!is_static_pie(&elf).unwrap());
        assert!(is_static_pie(b"#!/bin/sh").is_err());
    }
}
