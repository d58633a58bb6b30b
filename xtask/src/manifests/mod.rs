//! `cargo xtask manifests`: renders every kustomize overlay for a release, validates it against the Kubernetes
//! 1.32 schemas and checks the project's own deployment policies, naming the object and rule of each failure.
//!
//! The same path serves CI (with validation-only image pins, see [`ReleaseImages::unreleased`]) and
//! `cargo xtask release` (with the digests it just built).

mod features;
mod object;
mod policy;
pub(crate) mod render;
mod schema;
pub mod verification;
mod waves;

use std::{collections::BTreeMap, time::Instant};

use anyhow::Context;

pub use render::{Rendered, parse_stream};

/// The environments with an overlay under `kustomize/overlays/`.
pub const ENVIRONMENTS: [&str; 2] = ["staging", "production"];

/// The Kubernetes version the manifests must validate against (K3s in production).
pub const KUBERNETES_VERSION: &str = "1.32.0";

/// Our four service images, by the name the base manifests use for them.
pub const SERVICE_IMAGES: [&str; 4] =
    ["hangang-api", "hangang-ingest", "hangang-forecast", "hangang-push"];

/// An image pinned by digest, as the cluster will pull it, and the release that built it: a release whose
/// build of a service is byte-identical to an earlier one pins the earlier image, so that workload's pod
/// template (image, `RELEASE_ID`, `SOURCE_COMMIT`, version label) does not change and it does not restart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedImage {
    /// Repository, e.g. `registry.hangangjari.app/hangang-api`.
    pub repository: String,
    pub tag: String,
    /// `sha256:<64 hex>`.
    pub digest: String,
    /// The release that built the image (its `RELEASE_ID` and version label).
    pub release_id: String,
    /// That release's source commit (its `SOURCE_COMMIT`).
    pub commit: String,
}

impl PinnedImage {
    /// `repository:tag@sha256:…`, the form every manifest must use.
    pub fn reference(&self) -> String {
        format!("{}:{}@{}", self.repository, self.tag, self.digest)
    }

    /// Parses `repository:tag@sha256:…` (a reference this tool wrote) built by `release_id` of `commit`.
    pub fn parse(reference: &str, release_id: &str, commit: &str) -> Option<PinnedImage> {
        let (named, digest) = reference.split_once('@')?;
        let slash = named.rfind('/').map_or(0, |at| at + 1);
        let colon = slash + named[slash..].find(':')?;
        Some(PinnedImage {
            repository: named[..colon].to_owned(),
            tag: named[colon + 1..].to_owned(),
            digest: digest.to_owned(),
            release_id: release_id.to_owned(),
            commit: commit.to_owned(),
        })
    }
}

/// What a release puts into the manifests: its id and the image of each service.
#[derive(Clone, Debug)]
pub struct ReleaseImages {
    /// The release whose desired state this is (an annotation on every workload, not in its pod template).
    pub release_id: String,
    /// Keyed by the base manifests' image name (`hangang-api`, …).
    pub images: BTreeMap<String, PinnedImage>,
    /// The `User` of the images' config (`65532:65532`), which pods must run as.
    pub image_user: String,
    /// The public key (PEM) the release signed the images with, which the cluster's image verification
    /// policy must name.
    pub public_key: String,
}

impl ReleaseImages {
    /// `api=<release>,ingest=<release>,…`: the release each service must answer the smoke check with (its
    /// image's), as `SMOKE_EXPECT_RELEASES` carries it.
    pub fn smoke_expectations(&self) -> String {
        self.images
            .iter()
            .map(|(name, image)| {
                format!("{}={}", name.trim_start_matches("hangang-"), image.release_id)
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Validation-only pins for CI, where no image has been built: the digests are the SHA-256 of a
    /// description of what they stand for, the repository is under the reserved `.invalid` domain and the tag
    /// says `unreleased`, so nothing rendered this way could ever be pulled or mistaken for a release. The key
    /// is `public_key`: in CI the one the committed policy trusts ([`verification::trusted_key`]).
    pub fn unreleased(commit: &str, public_key: String) -> Self {
        let release_id = format!("unreleased-{commit}");
        let images = SERVICE_IMAGES
            .iter()
            .map(|name| {
                let digest = oci::Digest::of(format!("unreleased {name} {commit}").as_bytes());
                let pinned = PinnedImage {
                    repository: format!("registry.invalid/hangangjari/{name}"),
                    tag: release_id.clone(),
                    digest: digest.to_string(),
                    release_id: release_id.clone(),
                    commit: commit.to_owned(),
                };
                ((*name).to_owned(), pinned)
            })
            .collect();
        ReleaseImages { release_id, images, image_user: "65532:65532".to_owned(), public_key }
    }
}

/// Renders, validates and checks every environment for `release`, writing the results under `out_dir/<env>/`.
/// Fails after reporting every problem of every environment, not at the first.
pub fn check_all(
    release: &ReleaseImages,
    out_dir: &std::path::Path,
) -> anyhow::Result<Vec<(&'static str, Rendered)>> {
    let mut reports = Vec::new();
    let mut failures = 0;
    for environment in ENVIRONMENTS {
        let started = Instant::now();
        let rendered = render::render(environment, release, &out_dir.join(environment))?;
        let schema = schema::validate(&rendered.manifests_path, KUBERNETES_VERSION)?;
        let mut violations = policy::check(&rendered.objects, release, environment)
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        violations.extend(features::check(environment, &rendered.objects));
        println!(
            "  {environment:<11} {:>3} objects  schema {}  policies {}  ({} ms)",
            rendered.objects.len(),
            if schema.is_ok() { "ok" } else { "FAILED" },
            if violations.is_empty() {
                "ok".to_owned()
            } else {
                format!("{} FAILED", violations.len())
            },
            started.elapsed().as_millis(),
        );
        if let Err(report) = &schema {
            println!("{report}");
            failures += 1;
        }
        for violation in &violations {
            println!("    {violation}");
        }
        failures += violations.len();
        reports.push((environment, rendered));
    }
    let argocd = policy::check_argocd(&render::render_argocd()?);
    for violation in &argocd {
        println!("    {violation}");
    }
    failures += argocd.len();
    anyhow::ensure!(failures == 0, "the manifests failed {failures} check(s); see above");
    Ok(reports)
}

/// `cargo xtask manifests`: the CI stage, with validation-only pins for the current commit.
pub fn run(sh: &xshell::Shell) -> anyhow::Result<()> {
    let commit = xshell::cmd!(sh, "git rev-parse --short=12 HEAD")
        .read()
        .context("cannot read the current commit")?;
    let release = ReleaseImages::unreleased(&commit, verification::trusted_key()?);
    let out_dir = crate::target_dir().join("manifests");
    println!(
        "rendering and checking kustomize overlays for {} into {}",
        release.release_id,
        out_dir.display()
    );
    for (environment, rendered) in check_all(&release, &out_dir)? {
        println!(
            "  {environment}: {} over {}",
            rendered.manifests_path.display(),
            rendered.kustomization_path.display()
        );
    }
    Ok(())
}
