//! The image half of `cargo xtask release`: static binaries → one OCI image layout per service → optional push.
//!
//! Nothing is pulled and no daemon runs. Every image is two layers: the synthesized base layer, byte-identical
//! across the four services (and across releases), and the service's binary at `/app/<binary>`. Layouts are
//! written under `<out>/<service>/` (default `target/release-images/`), checked with [`image::Layout::fsck`],
//! and pushed only when a registry is given, blobs first and the tag last, so a registry never shows a tag
//! whose content is incomplete. `cargo xtask images` runs this and prints a table; `images.json` in the output
//! directory records every digest for the later release steps.
//!
//! # Layout
//!
//! - [`binaries`]: the static build, the `.dep-v0` dependency list, static-pie and path-leak checks.
//! - the OCI side (layers, image layout, registry push) is the `oci` library.
//! - [`pipeline`]: `cargo xtask release` / `rollback`.

mod binaries;
mod firewall;
#[cfg(test)]
mod git_fixture;
pub mod pipeline;
#[cfg(test)]
mod tests;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Instant,
};

use anyhow::Context;
use serde::Serialize;
use xshell::{Shell, cmd};

pub use oci::Digest;
use oci::{image, layer, registry};

/// One service: its package and the binary it ships, which also names its image repository.
#[derive(Debug)]
pub struct Service {
    pub package: &'static str,
    pub binary: &'static str,
}

pub const SERVICES: [Service; 4] = [
    Service { package: "api", binary: "hangang-api" },
    Service { package: "ingest", binary: "hangang-ingest" },
    Service { package: "forecast", binary: "hangang-forecast" },
    Service { package: "push", binary: "hangang-push" },
];

/// The image config's `User`: numeric, so `runAsNonRoot` can be verified without `/etc/passwd`.
pub const IMAGE_USER: &str = "65532:65532";

/// What identifies a release in its images.
#[derive(Debug, Clone)]
pub struct ReleaseMeta {
    /// The tag and `org.opencontainers.image.version`.
    pub release_id: String,
    /// The source commit, `org.opencontainers.image.revision`.
    pub commit: String,
    /// Seconds since the epoch (the commit time): every mtime, `created` and history entry derives from it.
    pub source_date_epoch: u64,
    /// `org.opencontainers.image.source`, when known.
    pub source: Option<String>,
}

impl ReleaseMeta {
    /// `SOURCE_DATE_EPOCH` from the environment, or the commit time of HEAD.
    pub fn from_git(sh: &Shell, release_id: Option<String>) -> anyhow::Result<ReleaseMeta> {
        let commit = cmd!(sh, "git rev-parse HEAD").quiet().read()?;
        let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(value) => value,
            Err(_) => cmd!(sh, "git log -1 --format=%ct").quiet().read()?,
        };
        let source_date_epoch = source_date_epoch
            .trim()
            .parse()
            .with_context(|| format!("SOURCE_DATE_EPOCH `{source_date_epoch}` is not a number"))?;
        let source = cmd!(sh, "git remote get-url origin")
            .quiet()
            .ignore_stderr()
            .read()
            .ok()
            .filter(|url| !url.contains('@')) // never publish credentials or ssh user names
            .filter(|url| !url.is_empty());
        let release_id = release_id.unwrap_or_else(|| format!("git-{}", &commit[..12]));
        Ok(ReleaseMeta { release_id, commit, source_date_epoch, source })
    }

    /// `SOURCE_DATE_EPOCH` as RFC 3339.
    pub fn created(&self) -> anyhow::Result<String> {
        let seconds = i64::try_from(self.source_date_epoch)?;
        Ok(jiff::Timestamp::from_second(seconds)?.to_string())
    }

    /// The config labels of `binary`'s image, also its manifest's and index's annotations.
    pub fn annotations(&self, binary: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let mut annotations = BTreeMap::from([
            ("app.hangangjari.release-id".to_owned(), self.release_id.clone()),
            ("org.opencontainers.image.created".to_owned(), self.created()?),
            ("org.opencontainers.image.revision".to_owned(), self.commit.clone()),
            ("org.opencontainers.image.title".to_owned(), binary.to_owned()),
            ("org.opencontainers.image.version".to_owned(), self.release_id.clone()),
        ]);
        if let Some(source) = &self.source {
            annotations.insert("org.opencontainers.image.source".to_owned(), source.clone());
        }
        Ok(annotations)
    }
}

/// One service's image, as `images.json` records it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceImage {
    pub service: &'static str,
    pub binary: &'static str,
    pub binary_size: u64,
    pub binary_digest: Digest,
    /// The digest a release pins (the image index).
    pub index: Digest,
    pub manifest: Digest,
    pub config: Digest,
    /// Bottom first: the shared base layer, then the binary's.
    pub layers: Vec<Digest>,
    /// Compressed layers plus config, manifest and index.
    pub image_size: u64,
    pub layout: PathBuf,
    /// Layers, JSON and layout written, from the built binary; not the fsck.
    pub assemble_ms: u64,
    /// Where it went (`registry/repository:tag@digest`) and how many blobs the registry already had.
    pub pushed: Option<registry::Pushed>,
}

/// Everything [`images`] built.
#[derive(Debug, Serialize)]
pub struct Images {
    pub release_id: String,
    pub commit: String,
    pub source_date_epoch: u64,
    pub build_seconds: f64,
    pub base_layer: Digest,
    pub services: Vec<ServiceImage>,
}

/// The registry `spec` names, with the credentials this environment has for it ([`oci::auth`]:
/// `REGISTRY_USERNAME`/`REGISTRY_PASSWORD`, else the docker config); says where they came from, never what
/// they are.
pub fn connect_registry(spec: &str) -> anyhow::Result<registry::Registry> {
    let registry = registry::Registry::parse(spec)?;
    let host = registry.host();
    let found = oci::auth::Credentials::from_environment(&host)
        .with_context(|| format!("cannot read the credentials for registry {host}"))?;
    match &found {
        Some(found) => eprintln!(
            "registry {host}: pushing as `{}` (credentials from {})",
            found.credentials.username(),
            found.source
        ),
        None => eprintln!("registry {host}: no credentials found, pushing anonymously"),
    }
    Ok(registry.with_credentials(found.map(|found| found.credentials)))
}

/// Builds the four binaries, writes and checks one layout per service under `out_dir`, pushes them to
/// `registry` when given, and records the result in `out_dir/images.json`.
pub fn images(
    sh: &Shell,
    meta: &ReleaseMeta,
    out_dir: &Path,
    registry: Option<&str>,
) -> anyhow::Result<Images> {
    image::check_tag(&meta.release_id)?;
    // Parse the registry before the long build, so a typo fails in a second.
    let registry = registry.map(connect_registry).transpose()?;
    let metadata = binaries::Metadata::load(sh)?;
    let (built, build_duration) = binaries::build(sh, &metadata, &SERVICES, &out_dir.join("bin"))?;

    let base = layer::base(meta.source_date_epoch)?;
    let mut services = Vec::new();
    for binary in &built {
        let dir = out_dir.join(binary.service.package);
        let started = Instant::now();
        let written = assemble(binary.service.binary, &binary.path, meta, &base, &dir)?;
        let assemble_duration = started.elapsed();
        image::Layout::open(&dir)?
            .fsck()
            .with_context(|| format!("the layout in {} is inconsistent", dir.display()))?;
        services.push(ServiceImage {
            service: binary.service.package,
            binary: binary.service.binary,
            binary_size: binary.size,
            binary_digest: binary.digest.clone(),
            index: written.index.digest.clone(),
            manifest: written.manifest.digest.clone(),
            config: written.config.digest.clone(),
            layers: written.layers.iter().map(|layer| layer.digest.clone()).collect(),
            image_size: written.size(),
            layout: dir,
            assemble_ms: u64::try_from(assemble_duration.as_millis())?,
            pushed: None,
        });
    }

    if let Some(registry) = registry {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        for service in &mut services {
            let layout = image::Layout::open(&service.layout)?;
            let pushed = runtime
                .block_on(registry.push(&layout, &meta.release_id, service.binary))
                .with_context(|| format!("failed to push {}", service.binary))?;
            anyhow::ensure!(
                pushed.digest == service.index,
                "{} was pushed as {}, but its layout's index is {}",
                service.binary,
                pushed.digest,
                service.index
            );
            service.pushed = Some(pushed);
        }
    }

    let images = Images {
        release_id: meta.release_id.clone(),
        commit: meta.commit.clone(),
        source_date_epoch: meta.source_date_epoch,
        build_seconds: build_duration.as_secs_f64(),
        base_layer: base.digest.clone(),
        services,
    };
    std::fs::write(out_dir.join("images.json"), serde_json::to_vec_pretty(&images)?)?;
    Ok(images)
}

/// Writes the image of `binary_name` (read from `binary_path`) over `base` as a fresh layout in `dir`,
/// replacing an earlier layout there.
pub fn assemble(
    binary_name: &str,
    binary_path: &Path,
    meta: &ReleaseMeta,
    base: &layer::Layer,
    dir: &Path,
) -> anyhow::Result<image::Written> {
    if dir.exists() {
        // Only ever delete what is recognisably a layout we wrote.
        image::Layout::open(dir)
            .with_context(|| format!("refusing to replace {}: not an OCI layout", dir.display()))?;
        std::fs::remove_dir_all(dir)?;
    }
    let binary = std::fs::read(binary_path)
        .with_context(|| format!("failed to read {}", binary_path.display()))?;
    let app = layer::app(binary_name, binary, meta.source_date_epoch)?;
    let annotations = meta.annotations(binary_name)?;
    let created = meta.created()?;
    let spec = image::ImageSpec {
        tag: &meta.release_id,
        created: &created,
        user: IMAGE_USER,
        entrypoint: vec![format!("/app/{binary_name}")],
        env: vec!["PATH=/app".to_owned()],
        annotations: &annotations,
    };
    image::Layout::create(dir)?.write_image(&spec, &[base, &app])
}

/// `cargo xtask images`: [`images`] for HEAD, then a table.
pub fn run(
    sh: &Shell,
    release_id: Option<String>,
    out_dir: Option<PathBuf>,
    registry: Option<&str>,
) -> anyhow::Result<()> {
    let meta = ReleaseMeta::from_git(sh, release_id)?;
    if !cmd!(sh, "git status --porcelain --untracked-files=no").quiet().read()?.is_empty() {
        eprintln!(
            "images: the working tree has uncommitted changes; the images are labelled with HEAD {}",
            meta.commit
        );
    }
    let out_dir = match out_dir {
        Some(dir) => dir,
        None => binaries::Metadata::load(sh)?.target_directory.join("release-images"),
    };
    let images = images(sh, &meta, &out_dir, registry)?;

    const MIB: f64 = 1024.0 * 1024.0;
    println!(
        "release {} (commit {}, SOURCE_DATE_EPOCH {}): static build {:.0} s, base layer {}",
        images.release_id,
        images.commit,
        images.source_date_epoch,
        images.build_seconds,
        images.base_layer
    );
    println!(
        "{:<10} {:<71} {:>10} {:>9} {:>11}",
        "service", "index digest", "binary MiB", "image MiB", "assembly ms"
    );
    for service in &images.services {
        println!(
            "{:<10} {:<71} {:>10.2} {:>9.2} {:>11}",
            service.service,
            service.index.as_str(),
            service.binary_size as f64 / MIB,
            service.image_size as f64 / MIB,
            service.assemble_ms
        );
        if let Some(pushed) = &service.pushed {
            println!(
                "{:<10} pushed {} ({} blobs uploaded, {} already there)",
                "", pushed.reference, pushed.blobs_uploaded, pushed.blobs_present
            );
        }
    }
    println!("layouts and images.json in {}", out_dir.display());
    Ok(())
}
