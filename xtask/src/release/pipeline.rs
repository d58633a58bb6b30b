//! `cargo xtask release`: one path from a commit to a signed, reproducible image set and a desired-state
//! commit, leaving a record a person can follow in one line: commit → image digest → SBOM/signature →
//! desired-state commit → release id.
//!
//! Steps, each timed and recorded in `release.json`: branch firewall → the CI report of this exact commit and
//! tree ([`crate::checks`]; publishing refuses without a passing one) → advisory scan → contracts → static
//! build and images → SBOMs → signatures and provenance → manifests rendered and checked with the real digests
//! → push (images, then `.sig`/`.sbom`/`.att` tags) → release record → desired state in the deploy
//! repository. `--dry-run` runs everything but the push and the commit, and writes the desired state it would
//! have committed under `target/release/<id>/desired-state/`. Off the protected branch every check and build
//! runs and the release stops before publishing, saying so.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::json;
use xshell::{Shell, cmd};

use oci::{image, registry};
use supply_chain::{advisories, provenance, sbom, signing};

use super::{ReleaseMeta, firewall};
use crate::{
    checks,
    deploy::{self, DeployRepository, EnvironmentFiles, ReleaseEntry},
    manifests::{self, PinnedImage, ReleaseImages},
    migrations::{KindName, Migration},
    promote::summary::Side,
    stages::{Record, Stages},
};

/// The branch whose commits may change the desired state.
pub const PROTECTED_BRANCH: &str = "main";

/// Options of `cargo xtask release`.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {
    /// Run every step but the push and the deploy commit.
    #[arg(long)]
    pub dry_run: bool,
    /// The registry to push to, e.g. `http://127.0.0.1:5000` (plain http only on loopback).
    #[arg(long, env = "RELEASE_REGISTRY")]
    pub registry: Option<String>,
    /// The deploy repository (a URL or a path) whose desired state Argo CD syncs.
    #[arg(long, env = "RELEASE_DEPLOY_REPO")]
    pub deploy_repo: Option<String>,
    /// The PKCS#8 PEM P-256 signing key; a dry run without one signs with a throwaway key.
    #[arg(long, env = "RELEASE_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,
    /// Publish from a branch other than the protected one (for tests of the release path itself).
    #[arg(long)]
    pub allow_branch: bool,
    /// The oldest advisory snapshot accepted, in days.
    #[arg(long, default_value_t = advisories::DEFAULT_MAX_AGE_DAYS)]
    pub max_advisory_age_days: i64,
    /// The CI report of this commit (default: what `cargo xtask ci` wrote, `<target>/ci/report.json`).
    #[arg(long, value_name = "PATH")]
    pub checks_report: Option<PathBuf>,
    /// Run `cargo xtask ci` first instead of reading an earlier report.
    #[arg(long, conflicts_with = "skip_checks")]
    pub run_checks: bool,
    /// Publish without a CI report, recording why (only with --allow-branch: for tests of the release path).
    #[arg(long, value_name = "REASON")]
    pub skip_checks: Option<String>,
}

/// What the release knows of the checks its commit passed before it.
#[derive(Debug)]
enum Checks {
    /// A passing report of exactly this commit and tree, and its bytes.
    Passed(Box<checks::Report>, Vec<u8>),
    /// Skipped on purpose (tests of the release path), and why.
    Skipped(String),
    /// No usable report, and why; publishing refuses this.
    Missing(String),
}

impl Checks {
    fn find(sh: &Shell, options: &Options) -> anyhow::Result<Checks> {
        if let Some(reason) = &options.skip_checks {
            anyhow::ensure!(
                options.allow_branch || options.dry_run,
                "--skip-checks is for tests of the release path: it needs --allow-branch (or --dry-run)"
            );
            return Ok(Checks::Skipped(reason.clone()));
        }
        let path = if options.run_checks {
            crate::ci::run(sh)?
        } else {
            options.checks_report.clone().unwrap_or_else(checks::default_path)
        };
        let source = checks::Source::of_checkout(sh)?;
        Ok(match checks::read(&path)? {
            Some((report, bytes)) => match report.unusable_for(&source) {
                None => Checks::Passed(Box::new(report), bytes),
                Some(why) => {
                    Checks::Missing(format!("the CI report {} is unusable: {why}", path.display()))
                }
            },
            None => Checks::Missing(format!("there is no CI report at {}", path.display())),
        })
    }

    /// The stage's line.
    fn detail(&self) -> String {
        match self {
            Checks::Passed(report, _) => {
                let tests = report
                    .stages
                    .iter()
                    .find_map(|stage| stage.tests)
                    .map_or(String::new(), |counts| format!(", {} tests passed", counts.passed));
                let run = report
                    .ci_run
                    .as_ref()
                    .map_or(String::new(), |run| format!(", {} run {}", run.platform, run.id));
                format!(
                    "CI report of {}: {} stages passed{tests}{run}",
                    &report.source.commit[..12],
                    report.stages.len()
                )
            }
            Checks::Skipped(why) => format!("skipped on purpose: {why}"),
            Checks::Missing(why) => why.clone(),
        }
    }

    /// `release.json`'s `ci`.
    fn record(&self) -> serde_json::Value {
        match self {
            Checks::Passed(report, bytes) => json!({
                "report": report,
                "sha256": super::Digest::of(bytes).hex(),
            }),
            Checks::Skipped(why) => json!({"skipped": why}),
            Checks::Missing(why) => json!({"missing": why}),
        }
    }
}

/// Per image, what the supply-chain steps produced.
#[derive(Debug, Clone, Serialize)]
struct Attachments {
    sbom_cyclonedx: String,
    sbom_spdx: String,
    sbom_components: usize,
    signature_tag: String,
    signature: String,
    payload: String,
}

/// Whether this run publishes, decided before anything is built so a misconfiguration fails in a second.
#[derive(Debug)]
enum Mode {
    Publish {
        registry: registry::Registry,
        deploy_repo: String,
    },
    /// Everything is checked and built, nothing leaves the machine; the reason is printed.
    VerifyOnly(String),
}

fn mode(sh: &Shell, options: &Options) -> anyhow::Result<Mode> {
    if options.dry_run {
        return Ok(Mode::VerifyOnly("--dry-run".to_owned()));
    }
    if !options.allow_branch
        && let Some(why) = off_protected_branch(sh)?
    {
        return Ok(Mode::VerifyOnly(why));
    }
    firewall::check_clean(sh)?;
    let (Some(registry), Some(deploy_repo), Some(signing_key)) =
        (&options.registry, &options.deploy_repo, &options.signing_key)
    else {
        bail!("publishing needs --registry, --deploy-repo and --signing-key (or --dry-run)");
    };
    if !options.allow_branch {
        require_trusted_key(&signing::ReleaseKey::load(signing_key)?.public_pem()?)?;
    }
    Ok(Mode::Publish {
        registry: super::connect_registry(registry)?,
        deploy_repo: deploy_repo.clone(),
    })
}

/// A release that publishes signs with the key the cluster's image verification policy trusts, or Kyverno would
/// refuse every pod it deploys. Only tests of the release path (`--allow-branch`) sign with a key of their
/// own; the policy they render names that key instead.
fn require_trusted_key(public_key: &str) -> anyhow::Result<()> {
    use manifests::verification::{POLICY_FILE, fingerprint, same_key, trusted_key};
    let trusted = trusted_key()?;
    anyhow::ensure!(
        same_key(&trusted, public_key),
        "the signing key ({}) is not the one the cluster trusts ({}, in {POLICY_FILE}): every pod of this \
         release would be refused; sign with the key whose public half is there, or change both together",
        fingerprint(public_key),
        fingerprint(&trusted)
    );
    Ok(())
}

/// Why HEAD may not change the desired state, if it may not: it is not in the protected branch's history as
/// fetched just now ([`firewall::protected_branch`]; no environment variable is believed).
fn off_protected_branch(sh: &Shell) -> anyhow::Result<Option<String>> {
    Ok(match firewall::protected_branch(sh, PROTECTED_BRANCH)? {
        firewall::Containment::Contained { .. } => None,
        firewall::Containment::NotContained { head, reference } => Some(format!(
            "HEAD {} is not contained in `{reference}` (fetched just now), and only commits on the protected \
             `{PROTECTED_BRANCH}` change the desired state",
            &head[..12.min(head.len())]
        )),
    })
}

/// `<commit date>.<commit time>-<12 hex>` in UTC: sortable by commit time, the same for the same commit, so
/// releasing a commit twice gives the same tags and digests.
fn release_id(meta: &ReleaseMeta) -> anyhow::Result<String> {
    let time = jiff::Timestamp::from_second(i64::try_from(meta.source_date_epoch)?)?;
    Ok(format!("{}-{}", time.strftime("%Y.%m.%d.%H%M%S"), &meta.commit[..12]))
}

/// The dependency list `binary` embeds in its `.dep-v0` section, read back out of the binary itself, so the
/// SBOM lists exactly what the shipped bytes say they contain.
fn dependency_list(
    sh: &Shell,
    binary: &Path,
    scratch: &Path,
) -> anyhow::Result<sbom::DependencyList> {
    let section = scratch.join(format!(
        "{}.dep-v0",
        binary.file_name().context("a binary has a file name")?.to_string_lossy()
    ));
    let dump = format!(".dep-v0={}", section.display());
    cmd!(sh, "objcopy --dump-section {dump} {binary} /dev/null")
        .quiet()
        .run()
        .with_context(|| format!("{} has no .dep-v0 section", binary.display()))?;
    let compressed = std::fs::read(&section)?;
    std::fs::remove_file(&section)?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice()).read_to_end(&mut json)?;
    let list: sbom::DependencyList = serde_json::from_slice(&json)
        .with_context(|| format!("{}: .dep-v0 is not a cargo-auditable list", binary.display()))?;
    anyhow::ensure!(
        list.format == 1,
        "{}: unsupported dependency list format {}",
        binary.display(),
        list.format
    );
    Ok(list)
}

fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, &bytes).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(bytes)
}

/// Stores `payload` in the image's layout as a one-layer artifact manifest tagged `tag` (cosign's tag
/// conventions: `.sig`, `.sbom`, `.att`), with a config that lists the payload, as cosign writes it.
fn attach(
    layout: &image::Layout,
    tag: &str,
    created: &str,
    media_type: &str,
    payload: &[u8],
    annotations: BTreeMap<String, String>,
) -> anyhow::Result<image::Descriptor> {
    let mut layer = layout.write_blob(media_type, payload)?;
    layer.annotations = annotations;
    let config = image::ImageConfig {
        created: created.to_owned(),
        architecture: String::new(),
        os: String::new(),
        config: image::ContainerConfig {
            user: String::new(),
            env: Vec::new(),
            entrypoint: Vec::new(),
            labels: BTreeMap::new(),
        },
        rootfs: image::RootFs { kind: "layers".to_owned(), diff_ids: vec![layer.digest.clone()] },
        history: Vec::new(),
    };
    let config = layout.write_blob(image::MEDIA_TYPE_CONFIG, &serde_json::to_vec(&config)?)?;
    let manifest = image::Manifest {
        schema_version: 2,
        media_type: image::MEDIA_TYPE_MANIFEST.to_owned(),
        config,
        layers: vec![layer],
        annotations: BTreeMap::new(),
    };
    let manifest =
        layout.write_blob(image::MEDIA_TYPE_MANIFEST, &serde_json::to_vec(&manifest)?)?;
    layout.tag(tag, manifest.clone())?;
    Ok(manifest)
}

/// The tags cosign uses beside an image: signature, SBOM, attestation.
fn artifact_tags(index: &str) -> [String; 3] {
    let signature = signing::signature_tag(index);
    let stem = signature.trim_end_matches(".sig").to_owned();
    [signature, format!("{stem}.sbom"), format!("{stem}.att")]
}

/// Everything built for one release, on its way to the record.
struct Built {
    meta: ReleaseMeta,
    out: PathBuf,
    images: super::Images,
    attachments: BTreeMap<&'static str, Attachments>,
    release_images: ReleaseImages,
    environments: Vec<EnvironmentFiles>,
    scan: advisories::ScanReport,
    toolchain: String,
    lock_digest: String,
    provenance: String,
    /// `release.json`'s `ci`: the CI report the release was published on.
    ci: serde_json::Value,
    /// The source commit's subject line, for the ledger's reader.
    subject: String,
}

pub fn run(sh: &Shell, options: &Options) -> anyhow::Result<()> {
    let mode = mode(sh, options)?;
    let mut steps = Stages::new("release", 9);
    let checks = steps.run("CI checks", || {
        let checks = Checks::find(sh, options)?;
        if let (Mode::Publish { .. }, Checks::Missing(why)) = (&mode, &checks) {
            bail!(
                "refusing to publish without a passing CI report of this commit: {why}; run `cargo xtask ci` \
                 first (or `cargo xtask release --run-checks`)"
            );
        }
        let detail = checks.detail();
        Ok((checks, detail))
    })?;
    let mut built = build(sh, options, &mode, &checks, &mut steps)?;

    match &mode {
        Mode::Publish { registry, .. } => steps.run("push", || {
            push(registry, &mut built.images, &built.meta.release_id)?;
            Ok((
                (),
                format!(
                    "{} images with their signatures, SBOMs and provenance",
                    built.images.services.len()
                ),
            ))
        })?,
        Mode::VerifyOnly(why) => steps.skip("push", why),
    }
    let entry = ReleaseEntry {
        release_id: built.meta.release_id.clone(),
        source_commit: built.meta.commit.clone(),
        source_time: i64::try_from(built.meta.source_date_epoch)?,
    };
    let migrations = migrations()?;
    let record_bytes =
        // The deploy repository gets the record as it stands before its own commit; the local copy is
        // rewritten at the end with that step too.
        write_json(&built.out.join("release.json"), &record(&built, &migrations, &steps.records))?;
    match &mode {
        Mode::Publish { deploy_repo, .. } => {
            let checks = steps.records.clone();
            let target = super::binaries::Metadata::load(sh)?.target_directory;
            steps.run("desired state", || {
                let repository = DeployRepository::open_in_target(deploy_repo, &target)?;
                let (pushed, outcomes) = deploy::publish_release(
                    &repository,
                    &entry,
                    &record_bytes,
                    &built.environments,
                    |root| archive_files(root, &built, &record_bytes),
                    |previous| change_summary(&built, &migrations, &checks, previous),
                )?;
                let detail = match pushed {
                    Some(pushed) => format!(
                        "{} at {} (attempt {}): {}",
                        repository.url(),
                        &pushed.commit[..12],
                        pushed.attempts,
                        outcomes
                            .iter()
                            .map(|(env, outcome)| format!("{env} {outcome:?}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => "the deploy repository already holds this desired state".to_owned(),
                };
                Ok(((), detail))
            })?;
        }
        Mode::VerifyOnly(why) => {
            let preview = built.out.join("desired-state");
            let extra = archive_files(&preview, &built, &record_bytes)?;
            deploy::state::apply_release(
                &preview,
                &entry,
                &record_bytes,
                &built.environments,
                &extra,
            )?;
            steps.skip(
                "desired state",
                &format!("{why}; what would be committed is in {}", preview.display()),
            );
        }
    }
    write_json(&built.out.join("release.json"), &record(&built, &migrations, &steps.records))?;
    print_summary(&built, &steps.records);
    if let Mode::VerifyOnly(why) = &mode {
        println!("release {} checked and built, not published ({why})", built.meta.release_id);
    }
    Ok(())
}

/// Every step up to the push: scan, contracts, images, SBOMs, signatures, provenance, manifests.
/// What every build step reads: the release being built and where its records go.
struct Build<'a> {
    sh: &'a Shell,
    options: &'a Options,
    meta: ReleaseMeta,
    out: PathBuf,
    /// Where the images will be pulled from (`registry.invalid/…` when nothing is published).
    repository_prefix: String,
    started_on: jiff::Timestamp,
    /// The image config's creation time, also the SBOMs' and the attachments'.
    created: String,
}

impl Build<'_> {
    fn repository(&self, binary: &str) -> String {
        format!("{}/{binary}", self.repository_prefix)
    }
}

/// Per image what was attached beside it, and the digest of the signed provenance.
type Signed = (BTreeMap<&'static str, Attachments>, String);

/// The SBOMs of one image: CycloneDX and SPDX bytes, and how many components they list.
type Sboms = BTreeMap<&'static str, (Vec<u8>, Vec<u8>, usize)>;

fn build(
    sh: &Shell,
    options: &Options,
    mode: &Mode,
    checks: &Checks,
    steps: &mut Stages,
) -> anyhow::Result<Built> {
    let ctx = context(sh, options, mode)?;
    // What earlier releases built, so an unchanged service keeps its image (read before the long build, so an
    // unreachable deploy repository fails in seconds).
    let earlier = &match &options.deploy_repo {
        Some(url) => {
            let repository = open_deploy_repository(sh, url)?;
            deploy::state::earlier_builds(repository.fresh_checkout()?)?
        }
        None => deploy::state::EarlierBuilds::default(),
    };
    let scan = steps.run("advisory scan", || advisory_scan(&ctx))?;
    steps.run("contracts", || {
        crate::contracts::run()?;
        Ok(((), "compatible with every released API and protobuf baseline".to_owned()))
    })?;
    let images = steps.run("static build and images", || build_images(&ctx))?;
    let lockfile_path = crate::project_root().join("Cargo.lock");
    let lockfile = rustsec::Lockfile::load(&lockfile_path)?;
    let sboms = steps.run("SBOMs", || write_sboms(&ctx, &images, &lockfile))?;
    let key = match &options.signing_key {
        Some(path) => signing::ReleaseKey::load(path)?,
        None => signing::ReleaseKey::throwaway(),
    };
    std::fs::write(ctx.out.join("cosign.pub"), key.public_pem()?)?;
    let toolchain = cmd!(sh, "rustc -V").quiet().read()?;
    let lock_digest = super::Digest::of(&std::fs::read(&lockfile_path)?).hex().to_owned();
    let supply_chain =
        SupplyChain { key: &key, toolchain: &toolchain, lock_digest: &lock_digest, checks };
    let (attachments, provenance) = steps.run("signatures and provenance", || {
        sign_and_attest(&ctx, &images, &scan, &sboms, &supply_chain)
    })?;
    let release_images = pinned_images(&ctx, &images, earlier, key.public_pem()?);
    let environments = steps.run("manifests", || render_manifests(&ctx, &release_images))?;
    Ok(Built {
        meta: ctx.meta,
        out: ctx.out,
        images,
        attachments,
        release_images,
        environments,
        scan,
        toolchain,
        lock_digest,
        provenance,
        ci: checks.record(),
        subject: cmd!(sh, "git log -1 --format=%s HEAD").quiet().read()?,
    })
}

/// The release's identity and output directory, and where its images will be pulled from.
fn context<'a>(sh: &'a Shell, options: &'a Options, mode: &Mode) -> anyhow::Result<Build<'a>> {
    let started_on = jiff::Timestamp::now();
    let mut meta = ReleaseMeta::from_git(sh, None)?;
    meta.release_id = release_id(&meta)?;
    let target = super::binaries::Metadata::load(sh)?.target_directory;
    let out = target.join("release").join(&meta.release_id);
    std::fs::create_dir_all(&out)?;
    let repository_prefix = repository_prefix(mode, options)?;
    println!("release {} of commit {} → {}", meta.release_id, meta.commit, out.display());
    if let Mode::VerifyOnly(why) = mode {
        println!("release: checks and builds only: {why}");
    }
    let created = meta.created()?;
    Ok(Build { sh, options, meta, out, repository_prefix, started_on, created })
}

/// Where the images will be pulled from: the registry with its path prefix (`host:port/team/hangangjari`), so
/// the manifests, the signatures' `docker-reference` and the provenance's subjects name the repositories the
/// push writes to; `registry.invalid/…` when no registry is named, so nothing rendered could be pulled.
fn repository_prefix(mode: &Mode, options: &Options) -> anyhow::Result<String> {
    Ok(match (mode, &options.registry) {
        (Mode::Publish { registry, .. }, _) => registry.reference_prefix(),
        (Mode::VerifyOnly(_), Some(spec)) => registry::Registry::parse(spec)?.reference_prefix(),
        (Mode::VerifyOnly(_), None) => "registry.invalid/hangangjari".to_owned(),
    })
}

/// The offline advisory scan, kept as `advisories.txt`; fails on a vulnerability nobody reviewed.
fn advisory_scan(ctx: &Build<'_>) -> anyhow::Result<(advisories::ScanReport, String)> {
    let report = advisories::scan(&advisories::ScanSettings::for_project(
        &crate::project_root(),
        ctx.options.max_advisory_age_days,
    ))?;
    std::fs::write(ctx.out.join("advisories.txt"), format!("{report}\n"))?;
    anyhow::ensure!(report.passed(), "unreviewed vulnerabilities:\n{report}");
    let summary = report.summary();
    Ok((report, summary))
}

/// The static binaries and one image layout per service.
fn build_images(ctx: &Build<'_>) -> anyhow::Result<(super::Images, String)> {
    let images = super::images(ctx.sh, &ctx.meta, &ctx.out.join("images"), None)?;
    let slowest = images.services.iter().map(|service| service.assemble_ms).max().unwrap_or(0);
    let detail = format!(
        "{} images, static build {:.0} s, slowest assembly {slowest} ms",
        images.services.len(),
        images.build_seconds
    );
    Ok((images, detail))
}

/// A CycloneDX and an SPDX document per image, from the dependency list read back out of its binary.
fn write_sboms(
    ctx: &Build<'_>,
    images: &super::Images,
    lockfile: &rustsec::Lockfile,
) -> anyhow::Result<(Sboms, String)> {
    let checksums = sbom::lockfile_checksums(lockfile);
    let base = [sbom::BaseComponent {
        name: "hangangjari-base".to_owned(),
        version: images.base_layer.as_str().to_owned(),
        purl: None,
        description: "the synthesized base layer: /etc/passwd and /etc/group (root, nonroot 65532), \
                      /etc/nsswitch.conf, /home/nonroot, /root, /tmp (1777); CA roots (webpki-roots) and the \
                      time zone database (jiff) are compiled into the binary"
            .to_owned(),
    }];
    let mut written = BTreeMap::new();
    for service in &images.services {
        let binary = ctx.out.join("images/bin").join(service.binary);
        let list = dependency_list(ctx.sh, &binary, &ctx.out)?;
        let document = sbom::Sbom {
            subject: sbom::Subject {
                name: service.binary,
                digest: service.index.as_str(),
                created: &ctx.created,
            },
            dependencies: &list,
            checksums: &checksums,
            base: &base,
        };
        let sbom_dir = ctx.out.join("sbom");
        let cyclonedx = write_json(
            &sbom_dir.join(format!("{}.cdx.json", service.binary)),
            &document.cyclonedx(),
        )?;
        let spdx =
            write_json(&sbom_dir.join(format!("{}.spdx.json", service.binary)), &document.spdx())?;
        written.insert(service.binary, (cyclonedx, spdx, document.component_count()));
    }
    let components: usize = written.values().map(|(_, _, count)| count).sum();
    let detail = format!(
        "CycloneDX 1.5 and SPDX 2.3, {components} components over {} images",
        images.services.len()
    );
    Ok((written, detail))
}

/// The signing key and what the provenance says the release was built from.
struct SupplyChain<'a> {
    key: &'a signing::ReleaseKey,
    toolchain: &'a str,
    lock_digest: &'a str,
    checks: &'a Checks,
}

/// The SLSA provenance for every image, DSSE-signed.
fn provenance_statement(
    ctx: &Build<'_>,
    images: &super::Images,
    scan: &advisories::ScanReport,
    supply_chain: &SupplyChain<'_>,
) -> serde_json::Value {
    let sha256 = |hex: &str| ("sha256".to_owned(), hex.to_owned());
    let mut dependencies = vec![
        provenance::Dependency {
            uri: "file:Cargo.lock".to_owned(),
            digest: sha256(supply_chain.lock_digest),
        },
        provenance::Dependency {
            uri: format!("rustc:{}", supply_chain.toolchain),
            digest: sha256(super::Digest::of(supply_chain.toolchain.as_bytes()).hex()),
        },
        provenance::Dependency {
            uri: scan.snapshot.source.clone(),
            digest: ("gitCommit".to_owned(), scan.snapshot.commit.clone()),
        },
        provenance::Dependency {
            uri: "oci:hangangjari-base".to_owned(),
            digest: sha256(images.base_layer.hex()),
        },
    ];
    if let Checks::Passed(_, bytes) = supply_chain.checks {
        dependencies.push(provenance::Dependency {
            uri: "file:ci-report.json".to_owned(),
            digest: sha256(super::Digest::of(bytes).hex()),
        });
    }
    provenance::Provenance {
        subjects: images
            .services
            .iter()
            .map(|service| provenance::Subject {
                name: ctx.repository(service.binary),
                digest: service.index.as_str().to_owned(),
            })
            .collect(),
        source: format!(
            "git+{}",
            ctx.meta
                .source
                .clone()
                .unwrap_or_else(|| format!("file://{}", crate::project_root().display()))
        ),
        commit: ctx.meta.commit.clone(),
        arguments: std::env::args().skip(1).collect(),
        dependencies,
        checks: Some(checks_summary(supply_chain.checks)),
        release_id: ctx.meta.release_id.clone(),
        builder_id: "https://hangangjari.app/builders/cargo-xtask-release".to_owned(),
        started_on: ctx.started_on.to_string(),
        finished_on: jiff::Timestamp::now().to_string(),
    }
    .statement()
}

/// The checks as the provenance's `internalParameters.checks`: each stage's result and duration, test counts,
/// and the CI run.
fn checks_summary(checks: &Checks) -> serde_json::Value {
    match checks {
        Checks::Passed(report, _) => json!({
            "commit": report.source.commit,
            "tree": report.source.tree,
            "ciRun": report.ci_run,
            "stages": report.stages.iter().map(|stage| json!({
                "name": stage.name, "result": stage.result, "durationMs": stage.duration_ms,
                "tests": stage.tests,
            })).collect::<Vec<_>>(),
        }),
        Checks::Skipped(why) => json!({"skipped": why}),
        Checks::Missing(why) => json!({"missing": why}),
    }
}

/// Signs every image (cosign simple signing) and tags its signature, SBOM and signed provenance beside it.
fn sign_and_attest(
    ctx: &Build<'_>,
    images: &super::Images,
    scan: &advisories::ScanReport,
    sboms: &Sboms,
    supply_chain: &SupplyChain<'_>,
) -> anyhow::Result<(Signed, String)> {
    let key = supply_chain.key;
    let signatures = ctx.out.join("signatures");
    std::fs::create_dir_all(&signatures)?;
    let statement = provenance_statement(ctx, images, scan, supply_chain);
    write_json(&ctx.out.join("provenance.intoto.json"), &statement)?;
    let envelope = key.envelope(signing::IN_TOTO_PAYLOAD_TYPE, &serde_json::to_vec(&statement)?);
    let envelope = write_json(&ctx.out.join("provenance.dsse.json"), &envelope)?;

    let mut attachments = BTreeMap::new();
    for service in &images.services {
        let layout = image::Layout::open(&service.layout)?;
        let payload = signing::simple_signing_payload(
            &ctx.repository(service.binary),
            service.index.as_str(),
        );
        let signature = key.sign(&payload);
        std::fs::write(signatures.join(format!("{}.payload.json", service.binary)), &payload)?;
        std::fs::write(signatures.join(format!("{}.sig", service.binary)), &signature)?;
        let [signature_tag, sbom_tag, attestation_tag] = artifact_tags(service.index.as_str());
        let annotation =
            (signing::SIGNATURE_ANNOTATION.to_owned(), signing::encode_signature(&signature));
        let created = &ctx.created;
        attach(
            &layout,
            &signature_tag,
            created,
            signing::SIMPLE_SIGNING_MEDIA_TYPE,
            &payload,
            BTreeMap::from([annotation]),
        )?;
        let (cyclonedx, spdx, components) = &sboms[service.binary];
        let cyclonedx_type = "application/vnd.cyclonedx+json";
        attach(&layout, &sbom_tag, created, cyclonedx_type, cyclonedx, BTreeMap::new())?;
        let dsse_type = "application/vnd.dsse.envelope.v1+json";
        // As cosign writes an attestation layer: the signature is inside the envelope (the annotation stays
        // empty), and the predicate type is on the layer, where verifiers (Kyverno) look before decoding it.
        let attestation_annotations = BTreeMap::from([
            (signing::SIGNATURE_ANNOTATION.to_owned(), String::new()),
            ("predicateType".to_owned(), provenance::PREDICATE_TYPE.to_owned()),
        ]);
        attach(&layout, &attestation_tag, created, dsse_type, &envelope, attestation_annotations)?;
        layout.fsck().with_context(|| {
            format!("the layout of {} is inconsistent after signing", service.binary)
        })?;
        attachments.insert(
            service.binary,
            Attachments {
                sbom_cyclonedx: super::Digest::of(cyclonedx).as_str().to_owned(),
                sbom_spdx: super::Digest::of(spdx).as_str().to_owned(),
                sbom_components: *components,
                signature_tag,
                signature: super::Digest::of(&signature).as_str().to_owned(),
                payload: super::Digest::of(&payload).as_str().to_owned(),
            },
        );
    }
    let detail = format!(
        "{} images signed (ECDSA P-256, cosign simple signing), SLSA v1 provenance",
        attachments.len()
    );
    Ok(((attachments, super::Digest::of(&envelope).as_str().to_owned()), detail))
}

/// This release's own image of `service`, as it is pushed.
fn own_image(ctx: &Build<'_>, service: &super::ServiceImage) -> PinnedImage {
    PinnedImage {
        repository: ctx.repository(service.binary),
        tag: ctx.meta.release_id.clone(),
        digest: service.index.as_str().to_owned(),
        release_id: ctx.meta.release_id.clone(),
        commit: ctx.meta.commit.clone(),
    }
}

/// Every image pinned by tag and digest, as the manifests reference them: a service whose binary is
/// byte-identical to one an earlier release shipped from the same repository pins that earlier image, so its
/// workloads' pod templates stay as they were and it does not restart; the others pin this release's image.
fn pinned_images(
    ctx: &Build<'_>,
    images: &super::Images,
    earlier: &deploy::state::EarlierBuilds,
    public_key: String,
) -> ReleaseImages {
    ReleaseImages {
        release_id: ctx.meta.release_id.clone(),
        images: images
            .services
            .iter()
            .map(|service| {
                let own = own_image(ctx, service);
                let reused = earlier.get(service.binary).and_then(|builds| {
                    builds.iter().find(|(binary, image)| {
                        *binary == service.binary_digest.as_str()
                            && image.repository == own.repository
                    })
                });
                let pinned = reused.map_or(own, |(_, image)| image.clone());
                (service.binary.to_owned(), pinned)
            })
            .collect(),
        image_user: super::IMAGE_USER.to_owned(),
        public_key,
    }
}

/// Every environment's manifests rendered with these digests and checked.
fn render_manifests(
    ctx: &Build<'_>,
    release_images: &ReleaseImages,
) -> anyhow::Result<(Vec<EnvironmentFiles>, String)> {
    let rendered = manifests::check_all(release_images, &ctx.out.join("manifests"))?;
    let environments = rendered
        .iter()
        .map(|(environment, rendered)| {
            Ok(EnvironmentFiles {
                environment: (*environment).to_owned(),
                manifests: std::fs::read_to_string(&rendered.manifests_path)?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let detail = format!(
        "{} environments rendered with these digests; Kubernetes {} schemas and policies passed",
        environments.len(),
        manifests::KUBERNETES_VERSION
    );
    Ok((environments, detail))
}

/// Pushes every image under the release's tag, then its signature, SBOM and attestation tags.
fn push(
    registry: &registry::Registry,
    images: &mut super::Images,
    release_id: &str,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    for service in &mut images.services {
        let layout = image::Layout::open(&service.layout)?;
        let pushed = runtime.block_on(registry.push(&layout, release_id, service.binary))?;
        anyhow::ensure!(
            pushed.digest == service.index,
            "{} was stored as {}, its index is {}",
            service.binary,
            pushed.digest,
            service.index
        );
        for tag in artifact_tags(service.index.as_str()) {
            runtime.block_on(registry.push(&layout, &tag, service.binary))?;
        }
        service.pushed = Some(pushed);
    }
    Ok(())
}

/// The migrations this commit ships, each with its kind.
fn migrations() -> anyhow::Result<Vec<Migration>> {
    Ok(crate::migrations::judge_all(&crate::project_root())?
        .into_iter()
        .map(|(migration, _)| migration)
        .collect())
}

/// `release.json`: the whole release graph in one file.
fn record(built: &Built, migrations: &[Migration], checks: &[Record]) -> serde_json::Value {
    let images: BTreeMap<&str, serde_json::Value> = built
        .images
        .services
        .iter()
        .map(|service| {
            let attached = &built.attachments[service.binary];
            let pinned = &built.release_images.images[service.binary];
            let image = json!({
                // This release's own image (pushed either way); `pinned` is what the manifests run, an earlier
                // release's image of the same repository when the binary is byte-identical to it.
                "reference": format!("{}:{}@{}", pinned.repository, built.meta.release_id,
                                     service.index.as_str()),
                "pinned": pinned.reference(),
                "pinned_release": pinned.release_id,
                "index": service.index.as_str(),
                "manifest": service.manifest.as_str(),
                "config": service.config.as_str(),
                "layers": service.layers.iter().map(super::Digest::as_str).collect::<Vec<_>>(),
                "binary_sha256": service.binary_digest.as_str(),
                "binary_size": service.binary_size,
                "image_size": service.image_size,
                "assemble_ms": service.assemble_ms,
                "sbom": {"cyclonedx": attached.sbom_cyclonedx, "spdx": attached.sbom_spdx,
                         "components": attached.sbom_components},
                "signature": {"tag": attached.signature_tag, "payload": attached.payload,
                              "signature": attached.signature},
                "pushed": service.pushed.as_ref().map(|pushed| &pushed.reference),
            });
            (service.binary, image)
        })
        .collect();
    json!({
        "release_id": built.meta.release_id,
        "source_commit": built.meta.commit,
        "source_subject": built.subject,
        "source_time": built.meta.source_date_epoch,
        "source": built.meta.source,
        "toolchain": built.toolchain,
        "cargo_lock_sha256": built.lock_digest,
        "advisory_db": {"commit": built.scan.snapshot.commit, "committed_at": built.scan.snapshot.committed_at,
                        "age_days": built.scan.age_days, "result": built.scan.summary()},
        "base_layer": built.images.base_layer.as_str(),
        "images": images,
        "provenance": built.provenance,
        "migrations": migrations,
        "ci": built.ci,
        "checks": checks,
    })
}

/// The files a release archives beside its record in the deploy repository: the contract documents it serves
/// and its production candidate record, judged against production's desired state in `root`.
fn archive_files(
    root: &Path,
    built: &Built,
    record: &[u8],
) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let pretty = |value: &serde_json::Value| -> anyhow::Result<Vec<u8>> {
        let mut bytes = serde_json::to_vec_pretty(value)?;
        bytes.push(b'\n');
        Ok(bytes)
    };
    let documents: BTreeMap<String, serde_json::Value> = contracts::catalogue::versions()
        .iter()
        .map(|version| (version.version.to_owned(), version.schema_document()))
        .collect();
    let mut files = Vec::new();
    for (version, document) in &documents {
        files.push((format!("{}/{version}.json", deploy::state::CONTRACTS_DIR), pretty(document)?));
    }
    for environment in deploy::state::PROMOTED_ENVIRONMENTS {
        let rendered = built
            .environments
            .iter()
            .find(|files| files.environment == environment)
            .with_context(|| format!("the release rendered no {environment} manifests"))?;
        let candidate = Side {
            release_id: built.meta.release_id.clone(),
            record: serde_json::from_slice(record)?,
            objects: crate::manifests::parse_stream(&rendered.manifests)?,
            contracts: Some(documents.clone()),
        };
        let base = deploy::state::current(root, environment)?
            .map(|desired| Side::archived(root, &desired.release_id, environment))
            .transpose()?;
        let record = crate::promote::candidate_record(&candidate, base.as_ref(), environment);
        files.push((deploy::state::CANDIDATE_FILE.to_owned(), pretty(&record)?));
    }
    Ok(files)
}

/// What changed since the release staging was told to run before, for the deploy commit's reader: images,
/// migrations (contract ones flagged: no rollback across them), checks. Production's summary is promote's.
fn change_summary(
    built: &Built,
    migrations: &[Migration],
    checks: &[Record],
    previous: Option<&serde_json::Value>,
) -> String {
    let mut text = String::new();
    let since = previous
        .and_then(|record| record["release_id"].as_str())
        .unwrap_or("nothing (first release)");
    let _ = writeln!(text, "Changes since {since} (staging's previous desired state):");
    let changed: Vec<&str> = built
        .images
        .services
        .iter()
        .filter(|service| {
            previous.is_none_or(|record| {
                record["images"][service.binary]["index"] != service.index.as_str()
            })
        })
        .map(|service| service.binary)
        .collect();
    let _ = writeln!(
        text,
        "- images changed: {}",
        if changed.is_empty() { "none".to_owned() } else { changed.join(", ") }
    );
    let shipped = previous.map(deploy::state::recorded_migrations).unwrap_or_default();
    let new: Vec<&Migration> = migrations
        .iter()
        .filter(|migration| shipped.iter().all(|old| old.name != migration.name))
        .collect();
    if new.is_empty() {
        let _ = writeln!(text, "- migrations: none");
    }
    for migration in new {
        let flag = match migration.kind {
            KindName::Expand => " (expand)",
            KindName::Contract => " (CONTRACT: no rollback to an earlier release across it)",
        };
        let _ = writeln!(text, "- migration {}{flag}", migration.name);
    }
    match built.ci["report"]["stages"].as_array() {
        Some(stages) => {
            let _ = writeln!(text, "Checks the commit passed (cargo xtask ci):");
            for stage in stages {
                let _ = writeln!(
                    text,
                    "- {} {} ({} ms): {}",
                    stage["name"].as_str().unwrap_or("?"),
                    stage["result"].as_str().unwrap_or("?"),
                    stage["duration_ms"],
                    stage["detail"].as_str().unwrap_or_default()
                );
            }
        }
        None => {
            let why = built.ci.as_object().and_then(|ci| ci.values().next()).cloned();
            let _ = writeln!(
                text,
                "Checks the commit passed: none recorded ({})",
                why.unwrap_or_default()
            );
        }
    }
    let _ = writeln!(text, "Release steps:");
    for check in checks {
        let _ = writeln!(
            text,
            "- {} {} ({} ms): {}",
            check.name, check.result, check.duration_ms, check.detail
        );
    }
    text
}

fn print_summary(built: &Built, checks: &[Record]) {
    const MIB: f64 = 1024.0 * 1024.0;
    println!();
    println!("release {} (commit {})", built.meta.release_id, built.meta.commit);
    println!(
        "image             index digest        image MiB binary MiB   assembly SBOM parts signature  pushed"
    );
    for service in &built.images.services {
        let attached = &built.attachments[service.binary];
        println!(
            "{:<17} {:<19} {:>9.2} {:>10.2} {:>8} ms {:>10} {:<10} {}",
            service.binary,
            &service.index.as_str()[..19],
            service.image_size as f64 / MIB,
            service.binary_size as f64 / MIB,
            service.assemble_ms,
            attached.sbom_components,
            "ECDSA P-256",
            service.pushed.as_ref().map_or("no", |pushed| pushed.reference.as_str()),
        );
    }
    println!("advisories: {}", built.scan.summary());
    for check in checks {
        println!(
            "  {:<26} {:<8} {:>8} ms  {}",
            check.name, check.result, check.duration_ms, check.detail
        );
    }
    println!("record: {}", built.out.join("release.json").display());
}

/// Options of `cargo xtask rollback`.
#[derive(Debug, Clone, clap::Args)]
pub struct RollbackOptions {
    /// The release to return to (as recorded under `releases/` in the deploy repository).
    pub release_id: String,
    /// The deploy repository (a URL or a path).
    #[arg(long, env = "RELEASE_DEPLOY_REPO")]
    pub deploy_repo: String,
    /// Roll back only this environment (repeatable); default: every environment the release went to.
    #[arg(long = "env", value_name = "ENVIRONMENT")]
    pub environments: Vec<String>,
    /// Who is rolling back, for the record (default: `RELEASE_ACTOR`, else git's `user.name <user.email>`,
    /// else `USER`).
    #[arg(long)]
    pub by: Option<String>,
    /// Write from a branch other than the protected one (for tests of the release path).
    #[arg(long)]
    pub allow_branch: bool,
}

/// Options of `cargo xtask lift-hold`.
#[derive(Debug, Clone, clap::Args)]
pub struct LiftHoldOptions {
    /// The environment whose rollback hold ends.
    #[arg(long = "env", value_name = "ENVIRONMENT")]
    pub environment: String,
    /// Why the held release may deploy again (recorded in the commit).
    #[arg(long)]
    pub reason: String,
    /// Who lifts the hold (default: `RELEASE_ACTOR`, else git's `user.name <user.email>`, else `USER`).
    #[arg(long)]
    pub by: Option<String>,
    /// The deploy repository (a URL or a path).
    #[arg(long, env = "RELEASE_DEPLOY_REPO")]
    pub deploy_repo: String,
    /// Write from a branch other than the protected one (for tests of the release path).
    #[arg(long)]
    pub allow_branch: bool,
}

fn protected_branch_only(sh: &Shell, what: &str, allow_branch: bool) -> anyhow::Result<()> {
    if allow_branch {
        return Ok(());
    }
    if let Some(why) = off_protected_branch(sh)? {
        bail!("{what} is written only from `{PROTECTED_BRANCH}`: {why} (--allow-branch for tests)");
    }
    Ok(())
}

fn open_deploy_repository(sh: &Shell, url: &str) -> anyhow::Result<DeployRepository> {
    DeployRepository::open_in_target(url, &super::binaries::Metadata::load(sh)?.target_directory)
}

/// `cargo xtask rollback <release-id>`: that release's desired state, written again as a new commit, once the
/// migrations say it can work; the environments then hold there.
pub fn rollback(sh: &Shell, options: &RollbackOptions) -> anyhow::Result<()> {
    protected_branch_only(sh, "a rollback", options.allow_branch)?;
    let repository = open_deploy_repository(sh, &options.deploy_repo)?;
    let by = deploy::actor(options.by.as_deref());
    let request = deploy::RollbackRequest {
        release_id: &options.release_id,
        environments: &options.environments,
        by: &by,
    };
    match deploy::publish_rollback(&repository, &request)? {
        Some(pushed) => println!(
            "rolled back to {} by {by}: {} at {}",
            options.release_id,
            repository.url(),
            pushed.commit
        ),
        None => println!("{} is already the desired state", options.release_id),
    }
    Ok(())
}

/// `cargo xtask lift-hold --env <env>`: the next release deploys to that environment again.
pub fn lift_hold(sh: &Shell, options: &LiftHoldOptions) -> anyhow::Result<()> {
    protected_branch_only(sh, "lifting a hold", options.allow_branch)?;
    let repository = open_deploy_repository(sh, &options.deploy_repo)?;
    let by = deploy::actor(options.by.as_deref());
    match deploy::publish_hold_lift(&repository, &options.environment, &by, &options.reason)? {
        Some(pushed) => println!(
            "the hold on {} is lifted by {by}: {} at {}",
            options.environment,
            repository.url(),
            pushed.commit
        ),
        None => println!("{} is not held", options.environment),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};

    use super::{
        super::{
            SERVICES, ServiceImage,
            git_fixture::*,
            tests::{LocalRegistry, PRETEND_BINARY, meta},
        },
        *,
    };

    fn publishing_options(dir: &Path) -> Options {
        Options {
            dry_run: false,
            registry: Some("127.0.0.1:5000/team/hangangjari".to_owned()),
            deploy_repo: Some(dir.join("deploy.git").display().to_string()),
            signing_key: Some(dir.join("cosign.key")),
            allow_branch: false,
            max_advisory_age_days: advisories::DEFAULT_MAX_AGE_DAYS,
            checks_report: None,
            run_checks: false,
            skip_checks: None,
        }
    }

    /// A P-256 key made by openssl (as an operator would), in `dir/cosign.key`.
    fn signing_key(dir: &Path) -> PathBuf {
        let path = dir.join("cosign.key");
        let sh = Shell::new().unwrap();
        cmd!(sh, "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out {path}")
            .quiet()
            .ignore_stderr()
            .run()
            .unwrap();
        path
    }

    /// The decision that gates the push and the desired-state commit (both run only in `Mode::Publish`): a
    /// branch named `main` whose HEAD the remote's `main` never accepted stays verify-only, whatever CI's
    /// variables claim, before any key or registry is looked at; the remote's own `main` goes on to the
    /// publishing checks, where a signing key the cluster does not trust is refused.
    #[test]
    fn a_commit_off_the_fetched_protected_branch_is_never_published() {
        let dir = tempfile::tempdir().unwrap();
        let sh = origin_and_clone(dir.path());
        for variable in ["RELEASE_BRANCH", "CI_COMMIT_BRANCH", "GITHUB_REF_NAME"] {
            sh.set_var(variable, PROTECTED_BRANCH);
        }
        let options = Options {
            signing_key: Some(signing_key(dir.path())),
            ..publishing_options(dir.path())
        };
        let error = format!("{:#}", mode(&sh, &options).unwrap_err());
        assert!(error.contains("is not the one the cluster trusts"), "{error}");
        assert!(error.contains(manifests::verification::POLICY_FILE), "{error}");

        let head = commit(&sh, "never reached origin/main");
        match mode(&sh, &options).unwrap() {
            Mode::VerifyOnly(why) => {
                assert!(why.contains(&format!("HEAD {}", &head[..12])), "{why}");
                assert!(why.contains("not contained in `refs/remotes/origin/main`"), "{why}");
            }
            Mode::Publish { .. } => {
                panic!("a commit the remote's main does not contain would publish")
            }
        }
        let error = protected_branch_only(&sh, "a rollback", false).unwrap_err();
        assert!(
            format!("{error:#}").contains("a rollback is written only from `main`"),
            "{error:#}"
        );

        // --allow-branch (tests of the release path) is the one way past both.
        let allowed = Options { allow_branch: true, ..options };
        assert!(matches!(mode(&sh, &allowed).unwrap(), Mode::Publish { .. }));
    }

    /// Every service's image of a pretend binary, assembled as a release would, in `dir/<service>`.
    fn pretend_images(dir: &Path) -> super::super::Images {
        let meta = meta();
        std::fs::create_dir_all(dir).unwrap();
        let binary = dir.join("pretend-binary");
        std::fs::write(&binary, PRETEND_BINARY).unwrap();
        let base = oci::layer::base(meta.source_date_epoch).unwrap();
        let services = SERVICES
            .iter()
            .map(|service| {
                let layout = dir.join(service.package);
                let written =
                    super::super::assemble(service.binary, &binary, &meta, &base, &layout).unwrap();
                ServiceImage {
                    service: service.package,
                    binary: service.binary,
                    binary_size: PRETEND_BINARY.len() as u64,
                    binary_digest: super::super::Digest::of(PRETEND_BINARY),
                    index: written.index.digest.clone(),
                    manifest: written.manifest.digest.clone(),
                    config: written.config.digest.clone(),
                    layers: written.layers.iter().map(|layer| layer.digest.clone()).collect(),
                    image_size: written.size(),
                    layout,
                    assemble_ms: 0,
                    pushed: None,
                }
            })
            .collect();
        super::super::Images {
            release_id: meta.release_id.clone(),
            commit: meta.commit.clone(),
            source_date_epoch: meta.source_date_epoch,
            build_seconds: 0.0,
            base_layer: base.digest,
            services,
        }
    }

    /// A registry URL with a path prefix (`host:port/team/hangangjari`): the push writes
    /// `team/hangangjari/<image>` on the registry, and the rendered manifests, the signature's claim and the
    /// provenance's subject, read back from the registry, name exactly that repository.
    #[test]
    fn a_registry_path_prefix_reaches_every_reference() {
        let work = tempfile::tempdir().unwrap();
        let local = LocalRegistry::start(work.path());
        let spec = format!("http://{}/team/hangangjari", local.address);
        let options = Options { registry: Some(spec.clone()), ..publishing_options(work.path()) };
        let mode = Mode::Publish {
            registry: registry::Registry::parse(&spec).unwrap(),
            deploy_repo: spec,
        };
        let meta = meta();
        let sh = Shell::new().unwrap();
        let ctx = Build {
            sh: &sh,
            options: &options,
            meta: meta.clone(),
            out: work.path().join("out"),
            repository_prefix: repository_prefix(&mode, &options).unwrap(),
            started_on: jiff::Timestamp::now(),
            created: meta.created().unwrap(),
        };
        std::fs::create_dir_all(&ctx.out).unwrap();
        let mut images = pretend_images(&work.path().join("images"));

        let key = signing::ReleaseKey::throwaway();
        let checks = Checks::Skipped("a test of registry path prefixes".to_owned());
        let lock_digest = "0".repeat(64);
        let supply_chain = SupplyChain {
            key: &key,
            toolchain: "rustc (test)",
            lock_digest: &lock_digest,
            checks: &checks,
        };
        let scan = advisories::ScanReport {
            snapshot: advisories::Snapshot {
                source: "https://github.com/rustsec/advisory-db".to_owned(),
                commit: "0".repeat(40),
                committed_at: "2026-11-01T00:00:00Z".to_owned(),
            },
            age_days: 0,
            advisories: 0,
            packages: 0,
            vulnerable: Vec::new(),
            ignored: Vec::new(),
            warnings: Vec::new(),
        };
        let sboms: Sboms = SERVICES
            .iter()
            .map(|service| (service.binary, (b"{}".to_vec(), b"{}".to_vec(), 0)))
            .collect();
        sign_and_attest(&ctx, &images, &scan, &sboms, &supply_chain).unwrap();
        let Mode::Publish { registry, .. } = &mode else { unreachable!("built as Publish") };
        push(registry, &mut images, &meta.release_id)
            .unwrap_or_else(|error| panic!("{error:#}\nregistry log:\n{}", local.log()));

        let api = &images.services[0];
        let repository = format!("{}/team/hangangjari/hangang-api", local.address);
        let reference = format!("{repository}:{}@{}", meta.release_id, api.index);
        assert_eq!(api.pushed.as_ref().unwrap().reference, reference);

        // What the registry holds, under the prefix: the signature's claim and the provenance's subjects.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let get = |path: String| {
            let url = format!("http://{}/v2/team/hangangjari/hangang-api/{path}", local.address);
            runtime.block_on(async {
                let response = reqwest::Client::new()
                    .get(&url)
                    .header("accept", image::MEDIA_TYPE_MANIFEST)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success(), "GET {url}: {}", response.status());
                response.bytes().await.unwrap().to_vec()
            })
        };
        let [signature_tag, _, attestation_tag] = artifact_tags(api.index.as_str());
        let first_layer = |tag: &str| -> Vec<u8> {
            let manifest: serde_json::Value =
                serde_json::from_slice(&get(format!("manifests/{tag}"))).unwrap();
            get(format!("blobs/{}", manifest["layers"][0]["digest"].as_str().unwrap()))
        };
        let claim: serde_json::Value =
            serde_json::from_slice(&first_layer(&signature_tag)).unwrap();
        assert_eq!(claim["critical"]["identity"]["docker-reference"], repository.as_str());
        assert_eq!(claim["critical"]["image"]["docker-manifest-digest"], api.index.as_str());
        let attestation: serde_json::Value =
            serde_json::from_slice(&get(format!("manifests/{attestation_tag}"))).unwrap();
        assert_eq!(
            attestation["layers"][0]["annotations"]["predicateType"],
            provenance::PREDICATE_TYPE
        );
        let envelope: serde_json::Value =
            serde_json::from_slice(&first_layer(&attestation_tag)).unwrap();
        let statement: serde_json::Value =
            serde_json::from_slice(&BASE64.decode(envelope["payload"].as_str().unwrap()).unwrap())
                .unwrap();
        let subjects: Vec<&str> = statement["subject"]
            .as_array()
            .unwrap()
            .iter()
            .map(|subject| subject["name"].as_str().unwrap())
            .collect();
        assert!(subjects.contains(&repository.as_str()), "{subjects:?}");
        assert_eq!(statement["predicateType"], provenance::PREDICATE_TYPE);

        // The desired state pins the same reference, and the manifests check passes with it.
        let release_images = pinned_images(
            &ctx,
            &images,
            &deploy::state::EarlierBuilds::default(),
            key.public_pem().unwrap(),
        );
        assert_eq!(release_images.images["hangang-api"].reference(), reference);
        let (environments, _) = render_manifests(&ctx, &release_images).unwrap();
        for environment in &environments {
            assert!(
                environment.manifests.contains(&format!("image: {reference}")),
                "{} does not pin {reference}",
                environment.environment
            );
        }
    }
}
