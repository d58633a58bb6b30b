//! Rendering an overlay for a release with `kubectl kustomize`: a generated kustomization on top of the
//! committed overlay pins every service image by digest and sets the release id; nothing rendered is committed
//! here (the deploy repository receives it from `cargo xtask release`).

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use serde::Deserialize as _;
use serde_json::Value;

use super::{ReleaseImages, verification};

/// One environment rendered for a release.
#[derive(Debug)]
pub struct Rendered {
    /// The generated kustomization (images and release id over the overlay).
    pub kustomization_path: PathBuf,
    /// The full manifest stream `kubectl kustomize` produced.
    pub manifests_path: PathBuf,
    pub objects: Vec<Value>,
}

/// Renders `kustomize/overlays/<environment>` for `release` into `out_dir`.
pub fn render(
    environment: &str,
    release: &ReleaseImages,
    out_dir: &Path,
) -> anyhow::Result<Rendered> {
    let overlay = crate::project_root().join("kustomize/overlays").join(environment);
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let overlay = overlay
        .canonicalize()
        .with_context(|| format!("no overlay for `{environment}` at {}", overlay.display()))?;
    let out_dir = out_dir.canonicalize()?;
    let relative = relative_path(&out_dir, &overlay);
    let policy = crate::project_root().join(verification::POLICY_DIR).canonicalize()?;
    let layers = Layers {
        overlay: relative,
        policy: relative_path(&out_dir, &policy),
        namespace: overlay_namespace(&overlay)?,
    };

    let kustomization_path = out_dir.join("kustomization.yaml");
    std::fs::write(&kustomization_path, release_kustomization(&layers, release, environment))
        .with_context(|| format!("cannot write {}", kustomization_path.display()))?;
    let manifests = kubectl_kustomize(&out_dir)?;
    let manifests_path = out_dir.join("manifests.yaml");
    std::fs::write(&manifests_path, &manifests)?;
    let objects = parse_stream(&manifests)
        .with_context(|| format!("kubectl kustomize produced invalid YAML for {environment}"))?;
    Ok(Rendered { kustomization_path, manifests_path, objects })
}

/// What a release's kustomization stands on: the overlay, the image verification policy beside it (outside,
/// so the overlay's `namespace:` does not stamp the cluster-scoped policy), and the overlay's namespace, which
/// the policy guards.
struct Layers {
    overlay: String,
    policy: String,
    namespace: String,
}

/// The `namespace:` an overlay puts its objects in.
fn overlay_namespace(overlay: &Path) -> anyhow::Result<String> {
    let path = overlay.join("kustomization.yaml");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let kustomization = Value::deserialize(serde_norway::Deserializer::from_str(&text))
        .with_context(|| format!("{} is not YAML", path.display()))?;
    kustomization["namespace"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("{} sets no namespace", path.display()))
}

/// Renders `kustomize/argocd` (the Argo CD project and Applications).
pub fn render_argocd() -> anyhow::Result<Vec<Value>> {
    let text = kubectl_kustomize(&crate::project_root().join("kustomize/argocd"))?;
    parse_stream(&text).context("kubectl kustomize produced invalid YAML for kustomize/argocd")
}

/// The workloads running our images: kind, name, container and the image it runs. Only these carry a release's
/// identity; PostgreSQL and Redis never restart with a release.
pub const OUR_WORKLOADS: [(&str, &str, &str, &str); 6] = [
    ("Deployment", "hangang-api", "api", "hangang-api"),
    ("Deployment", "hangang-ingest", "ingest", "hangang-ingest"),
    ("Deployment", "hangang-forecast", "forecast", "hangang-forecast"),
    ("Deployment", "hangang-push", "push", "hangang-push"),
    ("Job", "hangang-migrate", "migrate", "hangang-api"),
    ("Job", "hangang-smoke", "smoke", "hangang-api"),
];

/// The annotation on every workload (not its pod template) naming the release whose desired state it is.
pub const RELEASE_ANNOTATION: &str = "app.hangangjari/release-id";

/// The kustomization layered over an overlay: image pins; per workload the release and commit of its image
/// (`RELEASE_ID`, `SOURCE_COMMIT`, `app.kubernetes.io/version`), which change only when its image does; the
/// desired release as an annotation beside the pod template; what the smoke check must see each service
/// answer; the environment's name; the image verification policy as this environment's, with the release's
/// key. Written as text because its shape is fixed and a reviewer of the deploy repository reads it.
fn release_kustomization(layers: &Layers, release: &ReleaseImages, environment: &str) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Generated by `cargo xtask` for release {}; do not edit.",
        release.release_id
    );
    text.push_str("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n");
    let _ = writeln!(text, "resources:\n  - {}\n  - {}", layers.overlay, layers.policy);
    text.push_str("images:\n");
    for (name, image) in &release.images {
        let _ = writeln!(
            text,
            "  - name: {name}\n    newName: {}\n    newTag: {}\n    digest: {}",
            image.repository, image.tag, image.digest
        );
    }
    text.push_str("patches:\n");
    text.push_str(&verification::release_patch(
        environment,
        &layers.namespace,
        &release.public_key,
    ));
    let _ = writeln!(
        text,
        "  - patch: |-\n      apiVersion: v1\n      kind: ConfigMap\n      metadata:\n        name: hangang-config\n      \
         data:\n        DEPLOYMENT_ENVIRONMENT: {environment}"
    );
    let expected = release.smoke_expectations();
    for (kind, name, container, image_name) in OUR_WORKLOADS {
        let Some(image) = release.images.get(image_name) else { continue };
        let api_version = if kind == "Job" { "batch/v1" } else { "apps/v1" };
        let mut env = format!(
            "                - name: RELEASE_ID\n                  value: \"{}\"\n                \
             - name: SOURCE_COMMIT\n                  value: \"{}\"\n",
            image.release_id, image.commit
        );
        if name == "hangang-smoke" {
            let _ = writeln!(
                env,
                "                - name: SMOKE_EXPECT_RELEASES\n                  value: \"{expected}\"\n                \
                 - name: SMOKE_DESIRED_RELEASE\n                  value: \"{}\"",
                release.release_id
            );
        }
        let _ = write!(
            text,
            "  - patch: |-\n      apiVersion: {api_version}\n      kind: {kind}\n      metadata:\n        name: {name}\n        \
             annotations:\n          {RELEASE_ANNOTATION}: \"{}\"\n      spec:\n        template:\n          metadata:\n            \
             labels:\n              app.kubernetes.io/version: \"{}\"\n          spec:\n            containers:\n              \
             - name: {container}\n                env:\n{env}",
            release.release_id, image.release_id
        );
    }
    text
}

pub(crate) fn kubectl_kustomize(dir: &Path) -> anyhow::Result<String> {
    let output =
        Command::new("kubectl").arg("kustomize").arg(dir).output().context(
            "cannot run `kubectl` (kubectl 1.32 with kustomize v5; .ci/run installs it)",
        )?;
    if !output.status.success() {
        bail!(
            "kubectl kustomize {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    String::from_utf8(output.stdout).context("kubectl kustomize wrote non-UTF-8 output")
}

/// Parses a multi-document YAML stream into JSON values, skipping empty documents.
pub fn parse_stream(text: &str) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_norway::Deserializer::from_str(text) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

/// `to` relative to `from` (both absolute), for a kustomization that must work wherever the checkout is.
fn relative_path(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_owned(); from.len() - common];
    parts.extend(to[common..].iter().map(|part| part.as_os_str().to_string_lossy().into_owned()));
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_then_descend() {
        let path = relative_path(
            Path::new("/a/target/manifests/prod"),
            Path::new("/a/kustomize/overlays/prod"),
        );
        assert_eq!(path, "../../../kustomize/overlays/prod");
    }
}
