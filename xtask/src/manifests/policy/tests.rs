//! Each policy against the real rendered overlays: they pass as committed, and one broken field makes exactly
//! the rule about it fire, naming the object.

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::{check, check_argocd};
use crate::manifests::{ReleaseImages, render, verification::trusted_key};

fn release() -> ReleaseImages {
    ReleaseImages::unreleased("0123456789ab", trusted_key().unwrap())
}

/// The production overlay rendered once for the release above (needs kubectl, as CI has).
fn production() -> Vec<Value> {
    static RENDERED: OnceLock<Vec<Value>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("hangang-manifests-{}", std::process::id()));
            let rendered =
                render::render("production", &release(), &dir).expect("production renders");
            let _ = std::fs::remove_dir_all(&dir);
            rendered.objects
        })
        .clone()
}

/// The production objects with one object changed by `edit`.
fn with(id: &str, edit: impl FnOnce(&mut Value)) -> Vec<Value> {
    let mut objects = production();
    let object = objects
        .iter_mut()
        .find(|object| {
            format!(
                "{}/{}",
                object["kind"].as_str().unwrap(),
                object["metadata"]["name"].as_str().unwrap()
            ) == id
        })
        .unwrap_or_else(|| panic!("no {id} in the production overlay"));
    edit(object);
    objects
}

fn set(object: &mut Value, pointer: &str, value: Value) {
    *object.pointer_mut(pointer).unwrap_or_else(|| panic!("no {pointer}")) = value;
}

fn remove(object: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    object
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(&key.replace("~1", "/").replace("~0", "~"))
        .unwrap_or_else(|| panic!("no {pointer}"));
}

/// The rules that fired, as `object [rule]`, in the order they fired, repeats removed.
fn fired(objects: &[Value]) -> Vec<String> {
    let mut fired: Vec<_> = check(objects, &release(), "production")
        .iter()
        .map(|violation| format!("{} [{}]", violation.object, violation.rule))
        .collect();
    fired.dedup();
    fired
}

const CONTAINER: &str = "/spec/template/spec/containers/0";

#[test]
fn both_overlays_pass_every_policy() {
    assert_eq!(fired(&production()), Vec::<String>::new());
    let dir =
        std::env::temp_dir().join(format!("hangang-manifests-staging-{}", std::process::id()));
    let staging = render::render("staging", &release(), &dir).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(check(&staging.objects, &release(), "staging"), vec![]);
    assert_eq!(check_argocd(&render::render_argocd().unwrap()), vec![]);
}

#[test]
fn production_has_the_expected_objects_in_the_expected_waves() {
    let placements: Vec<(String, Option<String>, i64)> = production()
        .iter()
        .map(|object| {
            let annotations = &object["metadata"]["annotations"];
            let wave = annotations["argocd.argoproj.io/sync-wave"]
                .as_str()
                .map_or(0, |wave| wave.parse().unwrap());
            let id = format!(
                "{}/{}",
                object["kind"].as_str().unwrap(),
                object["metadata"]["name"].as_str().unwrap()
            );
            (id, annotations["argocd.argoproj.io/hook"].as_str().map(str::to_owned), wave)
        })
        .collect();
    let place = |id: &str| {
        placements
            .iter()
            .find(|(candidate, _, _)| candidate == id || candidate.starts_with(&format!("{id}-")))
            .map(|(_, hook, wave)| (hook.clone(), *wave))
            .unwrap_or_else(|| panic!("{id} is missing from the production overlay"))
    };
    let plain = |wave| (None, wave);
    let hook = |phase: &str, wave| (Some(phase.to_owned()), wave);
    let expected = [
        ("ServiceAccount/hangang-api", plain(-3)),
        ("ConfigMap/hangang-config", plain(-3)),
        ("ConfigMap/hangang-features", plain(-3)),
        ("NetworkPolicy/default-deny", plain(-3)),
        ("StatefulSet/hangang-postgres", plain(-2)),
        ("Service/hangang-postgres", plain(-2)),
        ("Deployment/hangang-redis", plain(-2)),
        ("Job/hangang-migrate", hook("Sync", -1)),
        ("Deployment/hangang-api", plain(0)),
        ("Service/hangang-api", plain(0)),
        ("PodDisruptionBudget/hangang-api", plain(0)),
        ("HorizontalPodAutoscaler/hangang-api", plain(0)),
        ("Ingress/hangang-api", plain(0)),
        ("Deployment/hangang-ingest", plain(1)),
        ("Deployment/hangang-forecast", plain(1)),
        ("Deployment/hangang-push", plain(1)),
        ("Job/hangang-smoke", hook("PostSync", 0)),
        ("ClusterPolicy/hangangjari-production-verify-images", plain(-3)),
    ];
    for (id, placement) in expected {
        assert_eq!(place(id), placement, "{id}");
    }
    // And nothing else: 5 ServiceAccounts, 2 ConfigMaps (the shared config and the api's features; no release
    // ConfigMap: a release's identity is in the pod templates of the workloads whose image it changes), 9
    // NetworkPolicies, 6 Services, 5 Deployments, a
    // StatefulSet, 2 Jobs, the api's PodDisruptionBudget, HorizontalPodAutoscaler and Ingress, and the image
    // verification ClusterPolicy.
    assert_eq!(placements.len(), 34, "{placements:#?}");
}

#[test]
fn a_missing_probe_is_named() {
    let objects =
        with("Deployment/hangang-api", |api| remove(api, &format!("{CONTAINER}/readinessProbe")));
    assert_eq!(fired(&objects), ["Deployment/hangang-api [probes]"]);
    let violation = check(&objects, &release(), "production").remove(0);
    assert_eq!(
        violation.to_string(),
        "Deployment/hangang-api: [probes] container `api`: has no readinessProbe"
    );
}

#[test]
fn workers_need_grpc_probes_and_the_api_http_probes() {
    let objects = with("Deployment/hangang-push", |push| {
        set(
            push,
            &format!("{CONTAINER}/livenessProbe"),
            json!({"httpGet": {"path": "/healthz", "port": "admin"}}),
        );
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-push [probes]"]);
    let objects = with("Deployment/hangang-api", |api| {
        set(api, &format!("{CONTAINER}/livenessProbe"), json!({"tcpSocket": {"port": "http"}}));
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-api [probes]"]);
}

#[test]
fn a_probe_on_an_undeclared_port_is_named() {
    let objects = with("Deployment/hangang-ingest", |ingest| {
        set(ingest, &format!("{CONTAINER}/readinessProbe/grpc/port"), json!(50099));
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-ingest [probe-port]"]);
}

#[test]
fn a_root_container_is_named() {
    let objects = with("Deployment/hangang-push", |push| {
        set(
            push,
            &format!("{CONTAINER}/securityContext"),
            json!({
                "runAsUser": 0, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]},
            }),
        );
    });
    // Root breaks both the non-root rule and the image's configured user.
    assert_eq!(
        fired(&objects),
        ["Deployment/hangang-push [run-as-nonroot]", "Deployment/hangang-push [image-user]"]
    );
}

#[test]
fn a_user_other_than_the_images_is_named() {
    let objects = with("Deployment/hangang-forecast", |forecast| {
        set(forecast, "/spec/template/spec/securityContext/runAsGroup", json!(1000));
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-forecast [image-user]"]);
}

#[test]
fn each_container_hardening_is_checked() {
    let cases = [
        ("readOnlyRootFilesystem", json!(false), "read-only-root-fs"),
        ("allowPrivilegeEscalation", json!(true), "no-privilege-escalation"),
        ("privileged", json!(true), "no-privilege-escalation"),
        ("capabilities", json!({"drop": ["ALL"], "add": ["NET_ADMIN"]}), "no-capabilities"),
        ("capabilities", json!({"drop": ["NET_RAW"]}), "no-capabilities"),
        ("seccompProfile", json!({"type": "Unconfined"}), "seccomp"),
    ];
    for (field, value, rule) in cases {
        // Set on the container, where it overrides the pod's setting.
        let objects = with("Deployment/hangang-redis", |redis| {
            redis.pointer_mut(&format!("{CONTAINER}/securityContext")).unwrap()[field] = value;
        });
        assert_eq!(fired(&objects), [format!("Deployment/hangang-redis [{rule}]")], "{field}");
    }
    let objects = with("Deployment/hangang-api", |api| {
        api["spec"]["template"]["spec"]["hostNetwork"] = json!(true)
    });
    assert!(fired(&objects).contains(&"Deployment/hangang-api [host-namespaces]".to_owned()));
}

#[test]
fn missing_requests_or_limits_are_named() {
    let objects = with("StatefulSet/hangang-postgres", |postgres| {
        remove(postgres, &format!("{CONTAINER}/resources/limits"))
    });
    assert_eq!(fired(&objects), ["StatefulSet/hangang-postgres [resources]"]);
}

#[test]
fn an_unpinned_image_is_named() {
    let objects = with("Deployment/hangang-ingest", |ingest| {
        set(ingest, &format!("{CONTAINER}/image"), json!("hangang-ingest:latest"))
    });
    assert_eq!(
        fired(&objects),
        [
            "Deployment/hangang-ingest [image-digest]",
            "Deployment/hangang-ingest [image-tag]",
            "Deployment/hangang-ingest [release-image]"
        ]
    );
    let objects = with("Deployment/hangang-redis", |redis| {
        set(redis, &format!("{CONTAINER}/image"), json!("redis:7-alpine"))
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-redis [image-digest]"]);
}

#[test]
fn an_image_of_another_release_is_named() {
    let other = ReleaseImages::unreleased("ba9876543210", trusted_key().unwrap());
    let stale = other.images["hangang-forecast"].reference();
    let objects = with("Deployment/hangang-forecast", |forecast| {
        set(forecast, &format!("{CONTAINER}/image"), json!(stale))
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-forecast [release-image]"]);
}

#[test]
fn every_service_container_must_report_its_images_release() {
    let objects = with("Deployment/hangang-push", |push| {
        let env = push.pointer_mut(&format!("{CONTAINER}/env")).unwrap().as_array_mut().unwrap();
        env.retain(|var| var["name"] != "RELEASE_ID");
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-push [release-id]"]);
    let objects = with("Deployment/hangang-forecast", |forecast| {
        let env =
            forecast.pointer_mut(&format!("{CONTAINER}/env")).unwrap().as_array_mut().unwrap();
        let release = env.iter_mut().find(|var| var["name"] == "RELEASE_ID").unwrap();
        release["value"] = json!("2026.01.01-1-old");
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-forecast [release-id]"]);
    // The desired release sits beside the pod template, not in it.
    let objects = with("Deployment/hangang-ingest", |ingest| {
        remove(ingest, "/metadata/annotations/app.hangangjari~1release-id")
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-ingest [release-annotation]"]);
    let objects = with("Job/hangang-smoke", |smoke| {
        let env = smoke.pointer_mut(&format!("{CONTAINER}/env")).unwrap().as_array_mut().unwrap();
        env.retain(|var| var["name"] != "SMOKE_EXPECT_RELEASES");
    });
    assert_eq!(fired(&objects), ["Job/hangang-smoke [smoke-expectations]"]);
}

/// A release whose build of every worker is byte-identical to `earlier`'s pins `earlier`'s worker images.
fn api_only(earlier: &ReleaseImages, commit: &str) -> ReleaseImages {
    let mut next = ReleaseImages::unreleased(commit, trusted_key().unwrap());
    for (name, image) in &earlier.images {
        if name != "hangang-api" {
            next.images.insert(name.clone(), image.clone());
        }
    }
    next
}

#[test]
fn a_release_that_changes_only_the_api_changes_only_the_pod_templates_running_it() {
    let render = |release: &ReleaseImages, label: &str| {
        let dir =
            std::env::temp_dir().join(format!("hangang-manifests-{label}-{}", std::process::id()));
        let rendered = render::render("production", release, &dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        rendered.objects
    };
    let before = release();
    let after = api_only(&before, "fedcba987654");
    assert!(check(&render(&after, "after"), &after, "production").is_empty());
    let templates = |objects: &[Value]| -> Vec<(String, Value)> {
        objects
            .iter()
            .filter(|object| object.pointer("/spec/template").is_some())
            .map(|object| {
                let id = format!(
                    "{}/{}",
                    object["kind"].as_str().unwrap(),
                    object["metadata"]["name"].as_str().unwrap()
                );
                (id, object["spec"]["template"].clone())
            })
            .collect()
    };
    let (old, new) = (templates(&render(&before, "before")), templates(&render(&after, "after")));
    assert_eq!(old.len(), new.len());
    let changed: Vec<&str> = old
        .iter()
        .zip(&new)
        .filter(|((_, a), (_, b))| a != b)
        .map(|((id, _), _)| id.as_str())
        .collect();
    // The api image also runs the migrate and smoke Jobs; the workers, PostgreSQL and Redis stay as they were.
    assert_eq!(changed, ["Deployment/hangang-api", "Job/hangang-migrate", "Job/hangang-smoke"]);
}

#[test]
fn every_service_container_knows_its_commit_and_environment() {
    let objects = with("Deployment/hangang-ingest", |ingest| {
        let env = ingest.pointer_mut(&format!("{CONTAINER}/env")).unwrap().as_array_mut().unwrap();
        env.retain(|var| var["name"] != "SOURCE_COMMIT");
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-ingest [release-id]"]);
    // Production's manifests checked as if they were staging's: every container names the wrong environment.
    let as_staging = check(&production(), &release(), "staging");
    let (identity, others): (Vec<_>, Vec<_>) =
        as_staging.iter().partition(|violation| violation.rule == "release-id");
    assert_eq!(identity.len(), 6, "{as_staging:?}");
    assert!(
        identity.iter().all(|violation| violation
            .message
            .contains("DEPLOYMENT_ENVIRONMENT resolves to `production`, expected `staging`")),
        "{as_staging:?}"
    );
    // Nor is staging's own image verification policy there.
    assert_eq!(
        others.iter().map(|violation| violation.to_string()).collect::<Vec<_>>(),
        [
            "ClusterPolicy/hangangjari-staging-verify-images: [image-verification] missing: nothing verifies \
          the release's signatures when a pod is admitted"
        ]
    );
}

#[test]
fn our_pods_carry_the_release_as_their_version_label() {
    let label = "/spec/template/metadata/labels/app.kubernetes.io~1version";
    let objects = with("Deployment/hangang-api", |api| remove(api, label));
    assert_eq!(fired(&objects), ["Deployment/hangang-api [release-version-label]"]);
    let objects = with("Job/hangang-smoke", |smoke| set(smoke, label, json!("2026.01.01-1-old")));
    assert_eq!(fired(&objects), ["Job/hangang-smoke [release-version-label]"]);
    let postgres = production()
        .into_iter()
        .find(|object| object["kind"] == "StatefulSet")
        .expect("the production overlay has PostgreSQL");
    assert!(
        postgres.pointer(label).is_none(),
        "PostgreSQL's pods must not restart with every release"
    );
}

#[test]
fn a_hook_in_the_wrong_phase_is_named() {
    let objects = with("Job/hangang-migrate", |job| {
        set(job, "/metadata/annotations/argocd.argoproj.io~1hook", json!("PreSync"));
    });
    let violations = check(&objects, &release(), "production");
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].rule, "hook-phase");
    assert!(violations[0].message.contains("PreSync hook, wave -1"), "{}", violations[0]);
}

#[test]
fn a_workload_in_the_wrong_wave_is_named() {
    let objects = with("Deployment/hangang-push", |push| {
        set(push, "/metadata/annotations/argocd.argoproj.io~1sync-wave", json!("0"));
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-push [sync-wave]"]);
    let objects = with("Deployment/hangang-push", |push| {
        set(push, "/metadata/annotations/argocd.argoproj.io~1sync-wave", json!("soon"));
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-push [sync-order]"]);
}

#[test]
fn an_object_outside_the_order_is_named() {
    let mut objects = production();
    objects.push(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "stray"}, "spec": {
        "selector": {"app.kubernetes.io/name": "hangang-api"}, "ports": [{"port": 8080, "targetPort": "http"}]}}));
    assert_eq!(fired(&objects), ["Service/stray [sync-order]"]);
}

#[test]
fn jobs_must_be_disposable_hooks_with_deadlines() {
    let objects = with("Job/hangang-smoke", |job| {
        remove(job, "/metadata/annotations/argocd.argoproj.io~1hook-delete-policy")
    });
    assert_eq!(fired(&objects), ["Job/hangang-smoke [hook-delete-policy]"]);
    let objects = with("Job/hangang-smoke", |job| remove(job, "/spec/activeDeadlineSeconds"));
    assert_eq!(fired(&objects), ["Job/hangang-smoke [job-deadline]"]);
    let objects = with("Job/hangang-migrate", |job| {
        remove(job, "/metadata/annotations/argocd.argoproj.io~1hook");
    });
    assert_eq!(
        fired(&objects),
        ["Job/hangang-migrate [hook-phase]", "Job/hangang-migrate [job-hook]"]
    );
}

#[test]
fn draining_needs_enough_grace() {
    let objects = with("Deployment/hangang-api", |api| {
        set(api, "/spec/template/spec/terminationGracePeriodSeconds", json!(10))
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-api [graceful-termination]"]);
    let objects =
        with("Deployment/hangang-api", |api| remove(api, &format!("{CONTAINER}/lifecycle")));
    assert_eq!(fired(&objects), ["Deployment/hangang-api [graceful-termination]"]);
    let objects = with("Deployment/hangang-ingest", |ingest| {
        set(ingest, "/spec/template/spec/terminationGracePeriodSeconds", json!(20))
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-ingest [graceful-termination]"]);
}

#[test]
fn services_must_select_a_workload_and_its_ports() {
    let objects = with("Service/hangang-push", |service| {
        set(service, "/spec/selector", json!({"app.kubernetes.io/name": "push"}))
    });
    assert_eq!(fired(&objects), ["Service/hangang-push [service-selector]"]);
    let objects = with("Service/hangang-push", |service| {
        set(service, "/spec/ports/1/targetPort", json!("metrics"))
    });
    assert_eq!(fired(&objects), ["Service/hangang-push [service-port]"]);
}

#[test]
fn network_policies_deny_by_default_and_cover_every_workload() {
    let mut objects = production();
    objects.retain(|object| object["metadata"]["name"] != "default-deny");
    assert_eq!(fired(&objects), ["NetworkPolicy/* [network-policy]"]);
    let mut objects = production();
    objects.retain(|object| {
        !(object["kind"] == "NetworkPolicy" && object["metadata"]["name"] == "hangang-forecast")
    });
    assert_eq!(fired(&objects), ["Deployment/hangang-forecast [network-policy]"]);
}

#[test]
fn secret_values_are_refused() {
    let mut objects = production();
    objects.push(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hangang-database",
        "annotations": {"argocd.argoproj.io/sync-wave": "-3"}}, "stringData": {"url": "postgres://…"}}));
    assert!(fired(&objects).contains(&"Secret/hangang-database [secret-values]".to_owned()));
}

#[test]
fn production_must_not_sync_by_itself() {
    let mut objects = render::render_argocd().unwrap();
    let production = objects
        .iter_mut()
        .find(|object| object["metadata"]["name"] == "hangangjari-production")
        .unwrap();
    production["spec"]["syncPolicy"]["automated"] = json!({"prune": true});
    let fired: Vec<_> = check_argocd(&objects).iter().map(|violation| violation.rule).collect();
    assert_eq!(fired, ["argocd-manual-production"]);
}

#[test]
fn production_syncs_only_the_promoted_branch_and_staging_follows_main() {
    for (application, revision) in
        [("hangangjari-production", "main"), ("hangangjari-staging", "production")]
    {
        let mut objects = render::render_argocd().unwrap();
        let object =
            objects.iter_mut().find(|object| object["metadata"]["name"] == application).unwrap();
        object["spec"]["source"]["targetRevision"] = json!(revision);
        let fired: Vec<_> = check_argocd(&objects).iter().map(|violation| violation.rule).collect();
        assert_eq!(fired, ["argocd-tracked-ref"], "{application} on {revision}");
    }
}

const POLICY: &str = "ClusterPolicy/hangangjari-production-verify-images";
const VERIFY: &str = "/spec/rules/0/verifyImages/0";

/// The messages of the image verification rule, in order.
fn verification_messages(objects: &[Value], release: &ReleaseImages) -> Vec<String> {
    check(objects, release, "production")
        .into_iter()
        .filter(|violation| violation.rule == "image-verification")
        .map(|violation| format!("{}: {}", violation.object, violation.message))
        .collect()
}

#[test]
fn the_rendered_policy_names_the_release_key_for_its_namespace() {
    let objects = production();
    let policy = objects
        .iter()
        .find(|object| {
            format!("ClusterPolicy/{}", object["metadata"]["name"].as_str().unwrap()) == POLICY
        })
        .expect("production renders its image verification policy");
    assert!(policy["metadata"]["namespace"].is_null(), "a cluster-scoped policy got a namespace");
    assert_eq!(
        policy["spec"]["rules"][0]["match"]["any"][0]["resources"]["namespaces"],
        json!(["hangangjari"])
    );
    for pointer in crate::manifests::verification::KEY_POINTERS {
        assert_eq!(policy.pointer(pointer).unwrap().as_str().unwrap(), trusted_key().unwrap());
    }

    // A release signed with another key (a test of the release path) renders a policy that names that key,
    // and it passes; checked against the committed key instead, it fails, naming both.
    let other_key = supply_chain::signing::ReleaseKey::throwaway().public_pem().unwrap();
    let other = ReleaseImages { public_key: other_key.clone(), ..release() };
    let dir = std::env::temp_dir().join(format!("hangang-manifests-key-{}", std::process::id()));
    let rendered = render::render("production", &other, &dir).unwrap().objects;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(verification_messages(&rendered, &other).is_empty());
    let messages = verification_messages(&rendered, &release());
    let fingerprint = crate::manifests::verification::fingerprint;
    let expected = |what: &str| {
        format!(
            "{POLICY}: rule 0 verifyImages[0] {what}: names key {}, but the release signs with {}",
            fingerprint(&other_key),
            fingerprint(&trusted_key().unwrap())
        )
    };
    assert_eq!(messages, [expected("signature"), expected("provenance")]);
}

#[test]
fn a_missing_or_wrong_key_fails_the_manifests_check() {
    let key = format!("{VERIFY}/attestors/0/entries/0/keys/publicKeys");
    let objects = with(POLICY, |policy| remove(policy, &key));
    assert_eq!(
        verification_messages(&objects, &release()),
        [format!("{POLICY}: rule 0 verifyImages[0] signature: an attestor names no public key")]
    );
    let wrong = supply_chain::signing::ReleaseKey::throwaway().public_pem().unwrap();
    let objects = with(POLICY, |policy| set(policy, &key, json!(wrong)));
    let messages = verification_messages(&objects, &release());
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(messages[0].contains("signature: names key sha256:"), "{messages:?}");

    let objects: Vec<Value> =
        production().into_iter().filter(|object| object["kind"] != "ClusterPolicy").collect();
    assert_eq!(
        verification_messages(&objects, &release()),
        [format!(
            "{POLICY}: missing: nothing verifies the release's signatures when a pod is admitted"
        )]
    );
}

#[test]
fn the_policy_must_enforce_cover_every_image_and_check_the_provenance() {
    let objects =
        with(POLICY, |policy| set(policy, &format!("{VERIFY}/failureAction"), json!("Audit")));
    assert_eq!(
        verification_messages(&objects, &release()),
        [format!("{POLICY}: rule 0 verifyImages[0]: failureAction is not Enforce (only audits)")]
    );

    let objects = with(POLICY, |policy| {
        set(policy, &format!("{VERIFY}/imageReferences"), json!(["*/hangang-api:*"]))
    });
    let uncovered = verification_messages(&objects, &release());
    // The three workers' images are no longer covered; the api's (and its Jobs', which run it) still are.
    for worker in ["ingest", "forecast", "push"] {
        let named = format!(
            "Deployment/hangang-{worker}'s image registry.invalid/hangangjari/hangang-{worker}:"
        );
        assert!(uncovered.iter().any(|message| message.contains(&named)), "{uncovered:?}");
    }
    assert_eq!(uncovered.len(), 3, "{uncovered:?}");
    assert!(uncovered.iter().all(|message| message.contains("is not covered")), "{uncovered:?}");

    // A policy for another namespace guards nothing here.
    let objects = with(POLICY, |policy| {
        set(
            policy,
            "/spec/rules/0/match/any/0/resources/namespaces",
            json!(["hangangjari-staging"]),
        )
    });
    assert_eq!(verification_messages(&objects, &release()).len(), 6);

    let objects =
        with(POLICY, |policy| remove(policy, &format!("{VERIFY}/attestations/0/conditions")));
    let messages = verification_messages(&objects, &release());
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains("provenance: no condition requires buildDefinition.buildType"),
        "{messages:?}"
    );

    let objects = with(POLICY, |policy| {
        set(policy, &format!("{VERIFY}/attestors/0/entries/0/keys/rekor/ignoreTlog"), json!(false))
    });
    let messages = verification_messages(&objects, &release());
    assert!(messages[0].contains("rekor.ignoreTlog must be true"), "{messages:?}");
}

#[test]
fn the_argocd_project_lets_the_environments_own_their_policies() {
    let mut objects = render::render_argocd().unwrap();
    assert!(check_argocd(&objects).is_empty());
    let project = objects.iter_mut().find(|object| object["kind"] == "AppProject").unwrap();
    project["spec"]["clusterResourceWhitelist"]
        .as_array_mut()
        .unwrap()
        .retain(|entry| entry["kind"] != "ClusterPolicy");
    let fired: Vec<String> = check_argocd(&objects).iter().map(ToString::to_string).collect();
    assert_eq!(
        fired,
        ["AppProject/hangangjari: [argocd-cluster-resources] clusterResourceWhitelist lacks \
          kyverno.io/ClusterPolicy, so a sync carrying it is refused"]
    );
}
