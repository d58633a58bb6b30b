//! The rules themselves, one function per concern; each names its rule in every violation it reports.

use serde_json::Value;

use super::{
    super::{object::Container, waves},
    Findings, Object, ReleaseImages,
};

/// The user every container runs as: `nonroot` of the synthesized base layer.
const NONROOT: u64 = 65532;

/// The api answers within this (its `REQUEST_TIMEOUT`), so draining takes at most this after the preStop pause.
const API_REQUEST_TIMEOUT_SECONDS: u64 = 10;

/// The least grace each worker needs to finish its unit of work after SIGTERM: an ingest run (upstream requests
/// time out after 10 s, then one transaction), a forecast refresh, a batch of APNs sends.
const WORKER_DRAIN_SECONDS: [(&str, u64); 3] =
    [("hangang-ingest", 30), ("hangang-forecast", 15), ("hangang-push", 15)];

pub fn sync_order(object: &Object<'_>, findings: &mut Findings) {
    let Some((expected, why)) = waves::expected(object) else {
        findings.add(
            object,
            "sync-order",
            "has no place in the Argo CD order; add it to xtask/src/manifests/waves.rs",
        );
        return;
    };
    match waves::actual(object) {
        Err(problem) => findings.add(object, "sync-order", problem.to_string()),
        Ok(actual) if actual.hook != expected.hook => findings.add(
            object,
            "hook-phase",
            format!("is applied as {actual}, must be {expected}: {why}"),
        ),
        Ok(actual) if actual.wave != expected.wave => findings.add(
            object,
            "sync-wave",
            format!("is applied in {actual}, must be {expected}: {why}"),
        ),
        Ok(_) => {}
    }
}

pub fn no_secret_values(object: &Object<'_>, findings: &mut Findings) {
    let value = object.value();
    if object.kind() == "Secret" && (!value["data"].is_null() || !value["stringData"].is_null()) {
        findings.add(
            object,
            "secret-values",
            "secret values must never be in Git; create the Secret out of band and reference it",
        );
    }
}

pub fn hooks_are_disposable_jobs(object: &Object<'_>, findings: &mut Findings) {
    if object.kind() != "Job" {
        return;
    }
    if object.annotation(waves::HOOK).is_none() {
        findings.add(
            object,
            "job-hook",
            "a plain Job is immutable and cannot be re-applied with a new image; make it an Argo CD hook",
        );
    } else if object.annotation(waves::HOOK_DELETE_POLICY).is_none() {
        findings.add(
            object,
            "hook-delete-policy",
            format!(
                "a hook Job needs `{}` (BeforeHookCreation or HookSucceeded)",
                waves::HOOK_DELETE_POLICY
            ),
        );
    }
    let spec = &object.value()["spec"];
    for field in ["activeDeadlineSeconds", "backoffLimit"] {
        if spec[field].is_null() {
            findings.add(
                object,
                "job-deadline",
                format!("a Job needs spec.{field} so a stuck run ends"),
            );
        }
    }
}

pub fn container_security(object: &Object<'_>, findings: &mut Findings) {
    let pod = object.pod_spec().unwrap_or(&Value::Null);
    for namespace in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[namespace].as_bool() == Some(true) {
            findings.add(object, "host-namespaces", format!("{namespace} is not allowed"));
        }
    }
    for container in object.containers() {
        let name = container.name();
        match container.security("runAsUser").as_u64() {
            Some(NONROOT) => {}
            Some(0) => {
                findings.add_container(object, name, "run-as-nonroot", "runs as root (runAsUser 0)")
            }
            Some(other) => findings.add_container(
                object,
                name,
                "run-as-nonroot",
                format!("runs as {other}; every container runs as {NONROOT} (nonroot)"),
            ),
            None => findings.add_container(object, name, "run-as-nonroot", "sets no runAsUser"),
        }
        if container.security("runAsNonRoot").as_bool() != Some(true) {
            findings.add_container(object, name, "run-as-nonroot", "runAsNonRoot is not true");
        }
        if container.value["securityContext"]["readOnlyRootFilesystem"].as_bool() != Some(true) {
            findings.add_container(
                object,
                name,
                "read-only-root-fs",
                "readOnlyRootFilesystem is not true (mount an emptyDir where it must write)",
            );
        }
        if container.value["securityContext"]["allowPrivilegeEscalation"].as_bool() != Some(false) {
            findings.add_container(
                object,
                name,
                "no-privilege-escalation",
                "allowPrivilegeEscalation is not false",
            );
        }
        if container.value["securityContext"]["privileged"].as_bool() == Some(true) {
            findings.add_container(object, name, "no-privilege-escalation", "is privileged");
        }
        let capabilities = &container.value["securityContext"]["capabilities"];
        let drops_all = capabilities["drop"]
            .as_array()
            .is_some_and(|drop| drop.iter().any(|cap| cap.as_str() == Some("ALL")));
        if !drops_all {
            findings.add_container(
                object,
                name,
                "no-capabilities",
                "does not drop ALL capabilities",
            );
        }
        if capabilities["add"].as_array().is_some_and(|add| !add.is_empty()) {
            findings.add_container(object, name, "no-capabilities", "adds capabilities");
        }
        if container.security("seccompProfile")["type"].as_str() != Some("RuntimeDefault") {
            findings.add_container(object, name, "seccomp", "seccompProfile is not RuntimeDefault");
        }
    }
}

pub fn resources(object: &Object<'_>, findings: &mut Findings) {
    for container in object.containers() {
        for (kind, resource) in
            [("requests", "cpu"), ("requests", "memory"), ("limits", "cpu"), ("limits", "memory")]
        {
            if container.value["resources"][kind][resource].is_null() {
                findings.add_container(
                    object,
                    container.name(),
                    "resources",
                    format!("sets no resources.{kind}.{resource}"),
                );
            }
        }
    }
}

/// How a component must be probed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    /// The api: `/healthz` and `/readyz` over HTTP.
    Http,
    /// The workers: `grpc.health.v1` on their gRPC port.
    Grpc,
    /// Third-party workloads: whatever suits them.
    Any,
}

fn probe_kind(component: &str) -> ProbeKind {
    match component {
        "hangang-api" => ProbeKind::Http,
        "hangang-ingest" | "hangang-forecast" | "hangang-push" => ProbeKind::Grpc,
        _ => ProbeKind::Any,
    }
}

pub fn probes(object: &Object<'_>, findings: &mut Findings) {
    if !object.is_long_running() {
        return;
    }
    let kind = probe_kind(object.component());
    for container in object.containers() {
        let name = container.name();
        for probe_name in ["livenessProbe", "readinessProbe"] {
            let probe = &container.value[probe_name];
            if probe.is_null() {
                findings.add_container(object, name, "probes", format!("has no {probe_name}"));
                continue;
            }
            match kind {
                ProbeKind::Http if probe["httpGet"].is_null() => findings.add_container(
                    object,
                    name,
                    "probes",
                    format!("{probe_name} must be an HTTP probe (/healthz, /readyz)"),
                ),
                ProbeKind::Grpc if probe["grpc"].is_null() => findings.add_container(
                    object,
                    name,
                    "probes",
                    format!("{probe_name} must be a native gRPC probe (grpc.health.v1)"),
                ),
                _ => {}
            }
            for handler in ["httpGet", "tcpSocket", "grpc"] {
                let port = &probe[handler]["port"];
                if !probe[handler].is_null() && !container.declares_port(port) {
                    findings.add_container(
                        object,
                        name,
                        "probe-port",
                        format!(
                            "{probe_name} probes port {port}, which the container does not declare"
                        ),
                    );
                }
            }
        }
    }
}

pub fn graceful_termination(object: &Object<'_>, findings: &mut Findings) {
    if !object.is_long_running() {
        return;
    }
    let pod = object.pod_spec().unwrap_or(&Value::Null);
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(30);
    let component = object.component();
    let needed = if component == "hangang-api" {
        let pause = object.containers().first().and_then(|container| {
            container.value["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64()
        });
        let Some(pause) = pause else {
            findings.add(
                object,
                "graceful-termination",
                "the api needs a preStop sleep so endpoints drop the pod before it stops accepting requests",
            );
            return;
        };
        pause + API_REQUEST_TIMEOUT_SECONDS
    } else if let Some((_, drain)) =
        WORKER_DRAIN_SECONDS.iter().find(|(name, _)| *name == component)
    {
        *drain
    } else {
        return;
    };
    if grace < needed {
        findings.add(
            object,
            "graceful-termination",
            format!("terminationGracePeriodSeconds {grace} is shorter than the {needed} s it needs to drain"),
        );
    }
}

/// The repository's last path segment, without tag or digest: `hangang-api` for
/// `registry/x/hangang-api:1@sha256:…`.
fn image_basename(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

fn is_digest_pinned(image: &str) -> bool {
    image.split_once("@sha256:").is_some_and(|(_, hex)| {
        hex.len() == 64
            && hex.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
    })
}

pub fn images(object: &Object<'_>, release: &ReleaseImages, findings: &mut Findings) {
    for container in object.containers() {
        let (name, image) = (container.name(), container.image());
        if !is_digest_pinned(image) {
            findings.add_container(
                object,
                name,
                "image-digest",
                format!("image `{image}` is not pinned by digest (name:tag@sha256:…)"),
            );
        }
        let without_digest = image.split('@').next().unwrap_or(image);
        let tag = without_digest
            .rsplit('/')
            .next()
            .and_then(|last| last.split_once(':'))
            .map(|(_, tag)| tag);
        if matches!(tag, None | Some("latest")) {
            findings.add_container(
                object,
                name,
                "image-tag",
                format!("image `{image}` needs an explicit tag other than `latest`"),
            );
        }
        let Some(built) = release.images.get(image_basename(image)) else { continue };
        if image != built.reference() {
            findings.add_container(
                object,
                name,
                "release-image",
                format!(
                    "runs `{image}`, but release {} built `{}`",
                    release.release_id,
                    built.reference()
                ),
            );
        }
        let user = container.security("runAsUser");
        let group = container.security("runAsGroup");
        let runs_as = format!("{user}:{group}");
        if runs_as != release.image_user {
            findings.add_container(
                object,
                name,
                "image-user",
                format!("runs as {runs_as}, the image's config says User {}", release.image_user),
            );
        }
    }
}

/// Every container of ours reports the release and commit of the image it runs and its environment (health
/// bodies, metrics, rollout records); every pod of ours carries its image's release as `app.kubernetes.io/version`;
/// every workload of ours names the desired release in an annotation outside its pod template; the smoke check
/// expects each service to answer with its image's release and records its run as the desired release's.
pub fn release_identity(
    object: &Object<'_>,
    objects: &[Object<'_>],
    release: &ReleaseImages,
    environment: &str,
    findings: &mut Findings,
) {
    let mut ours = None;
    for container in object.containers() {
        let Some(image) = release.images.get(image_basename(container.image())) else { continue };
        ours = Some(image);
        let expected = [
            ("RELEASE_ID", image.release_id.as_str()),
            ("SOURCE_COMMIT", image.commit.as_str()),
            ("DEPLOYMENT_ENVIRONMENT", environment),
        ];
        for (name, expected) in expected {
            let resolved = env_value(&container, name, objects);
            if resolved.as_deref() != Some(expected) {
                findings.add_container(
                    object,
                    container.name(),
                    "release-id",
                    format!(
                        "{name} resolves to {}, expected `{expected}`",
                        resolved.map_or("nothing".to_owned(), |value| format!("`{value}`")),
                    ),
                );
            }
        }
        if object.name() == "hangang-smoke" {
            let wanted = release.smoke_expectations();
            let found = env_value(&container, "SMOKE_EXPECT_RELEASES", objects);
            if found.as_deref() != Some(wanted.as_str()) {
                findings.add_container(
                    object,
                    container.name(),
                    "smoke-expectations",
                    format!("SMOKE_EXPECT_RELEASES is {found:?}, expected `{wanted}`"),
                );
            }
            // What its record names, so a promotion finds the staging smoke of the release it promotes.
            let desired = env_value(&container, "SMOKE_DESIRED_RELEASE", objects);
            if desired.as_deref() != Some(release.release_id.as_str()) {
                findings.add_container(
                    object,
                    container.name(),
                    "smoke-expectations",
                    format!(
                        "SMOKE_DESIRED_RELEASE is {desired:?}, expected `{}`",
                        release.release_id
                    ),
                );
            }
        }
    }
    let Some(image) = ours else { return };
    let label = object.value().pointer("/spec/template/metadata/labels/app.kubernetes.io~1version");
    if label.and_then(Value::as_str) != Some(image.release_id.as_str()) {
        findings.add(
            object,
            "release-version-label",
            format!(
                "the pod template's app.kubernetes.io/version is {}, expected `{}` (its image's release)",
                label.map_or("missing".to_owned(), ToString::to_string),
                image.release_id
            ),
        );
    }
    let annotation = object
        .value()
        .pointer("/metadata/annotations/app.hangangjari~1release-id")
        .and_then(Value::as_str);
    if annotation != Some(release.release_id.as_str()) {
        findings.add(
            object,
            "release-annotation",
            format!(
                "metadata.annotations[app.hangangjari/release-id] is {annotation:?}, expected `{}`",
                release.release_id
            ),
        );
    }
}

/// What a container's environment variable resolves to: a literal, or a key of a ConfigMap among `objects`.
fn env_value(container: &Container<'_>, name: &str, objects: &[Object<'_>]) -> Option<String> {
    let var = container.env(name)?;
    let value = match (&var["value"], &var["valueFrom"]["configMapKeyRef"]) {
        (Value::String(literal), _) => Some(literal.as_str()),
        (_, reference) if reference.is_object() => objects
            .iter()
            .find(|candidate| {
                candidate.kind() == "ConfigMap"
                    && Some(candidate.name()) == reference["name"].as_str()
            })
            .and_then(|config| {
                config.value()["data"][reference["key"].as_str().unwrap_or("")].as_str()
            }),
        _ => None,
    };
    value.map(str::to_owned)
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector.as_object().is_some_and(|selector| {
        !selector.is_empty() && selector.iter().all(|(key, value)| labels[key] == *value)
    })
}

pub fn service_selects_workload(
    service: &Object<'_>,
    objects: &[Object<'_>],
    findings: &mut Findings,
) {
    let selector = &service.value()["spec"]["selector"];
    let workload = objects.iter().find(|object| {
        object.is_long_running()
            && object
                .pod_template()
                .is_some_and(|template| labels_match(selector, &template["metadata"]["labels"]))
    });
    let Some(workload) = workload else {
        findings.add(
            service,
            "service-selector",
            format!("selector {selector} matches no workload's pods"),
        );
        return;
    };
    for port in service.value()["spec"]["ports"].as_array().map(Vec::as_slice).unwrap_or_default() {
        let target = if port["targetPort"].is_null() { &port["port"] } else { &port["targetPort"] };
        if !workload.containers().iter().any(|container| container.declares_port(target)) {
            findings.add(
                service,
                "service-port",
                format!("targets port {target}, which no container of {} declares", workload.id()),
            );
        }
    }
}

pub fn network_policies(objects: &[Object<'_>], findings: &mut Findings) {
    let policies: Vec<_> =
        objects.iter().filter(|object| object.kind() == "NetworkPolicy").collect();
    let denies_by_default = policies.iter().any(|policy| {
        let spec = &policy.value()["spec"];
        let types = spec["policyTypes"].as_array().map(Vec::as_slice).unwrap_or_default();
        spec["podSelector"].as_object().is_some_and(|selector| selector.is_empty())
            && ["Ingress", "Egress"]
                .iter()
                .all(|kind| types.iter().any(|t| t.as_str() == Some(kind)))
    });
    if !denies_by_default {
        findings.0.push(super::Violation {
            object: "NetworkPolicy/*".to_owned(),
            rule: "network-policy",
            message: "no default-deny policy (empty podSelector, Ingress and Egress)".to_owned(),
        });
    }
    for workload in objects.iter().filter(|object| object.is_workload()) {
        let labels = &workload
            .pod_template()
            .map_or(&Value::Null, |template| &template["metadata"]["labels"]);
        let allowed = policies.iter().any(|policy| {
            labels_match(&policy.value()["spec"]["podSelector"]["matchLabels"], labels)
        });
        if !allowed {
            findings.add(
                workload,
                "network-policy",
                "no NetworkPolicy selects its pods, so the default deny cuts it off",
            );
        }
    }
}

pub fn argocd_application(object: &Object<'_>, findings: &mut Findings) {
    if object.kind() != "Application" {
        return;
    }
    let spec = &object.value()["spec"];
    if spec["project"].as_str() != Some("hangangjari") {
        findings.add(object, "argocd-project", "must belong to the `hangangjari` AppProject");
    }
    let path = spec["source"]["path"].as_str().unwrap_or("");
    if !path.starts_with("environments/") {
        findings.add(
            object,
            "argocd-source",
            format!(
                "deploys `{path}`; Applications deploy the deploy repository's environments/<env>"
            ),
        );
    }
    let options =
        spec["syncPolicy"]["syncOptions"].as_array().map(Vec::as_slice).unwrap_or_default();
    if !options.iter().any(|option| option.as_str() == Some("CreateNamespace=true")) {
        findings.add(
            object,
            "argocd-first-install",
            "needs CreateNamespace=true so the very first sync has a namespace to fill",
        );
    }
    if path.ends_with("/production") && !spec["syncPolicy"]["automated"].is_null() {
        findings.add(
            object,
            "argocd-manual-production",
            "production syncs only when a person decides; remove syncPolicy.automated",
        );
    }
    // Production follows the ref only `cargo xtask promote` (and a rollback of production) moves, so a Sync can
    // never apply a desired state nobody confirmed; every other environment follows `main`.
    let revision = spec["source"]["targetRevision"].as_str().unwrap_or("");
    let wanted = if path.ends_with("/production") {
        crate::deploy::PRODUCTION_BRANCH
    } else {
        crate::deploy::MAIN_BRANCH
    };
    if revision != wanted {
        findings.add(
            object,
            "argocd-tracked-ref",
            format!(
                "tracks `{revision}`; {path} must follow `{wanted}` (production: the branch only a promotion \
                 moves; staging: main)"
            ),
        );
    }
}

/// The AppProject must let the Applications own the cluster-scoped objects they carry: their Namespace and
/// their image verification ClusterPolicy (without it, Argo CD refuses the whole sync).
pub fn argocd_project(object: &Object<'_>, findings: &mut Findings) {
    if object.kind() != "AppProject" {
        return;
    }
    let allowed = object.value()["spec"]["clusterResourceWhitelist"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (group, kind) in [("", "Namespace"), ("kyverno.io", "ClusterPolicy")] {
        if !allowed.iter().any(|entry| entry["group"] == group && entry["kind"] == kind) {
            findings.add(
                object,
                "argocd-cluster-resources",
                format!("clusterResourceWhitelist lacks {group}/{kind}, so a sync carrying it is refused"),
            );
        }
    }
}
