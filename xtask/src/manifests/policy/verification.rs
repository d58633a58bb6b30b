//! The image verification policy of a rendered environment, against the release: Kyverno must admit only what
//! this release's key signed, so the policy has to exist, enforce, guard the namespace the workloads run in,
//! name the release's key for the signature and the provenance attestation (checked to come from
//! `cargo xtask release`), skip the transparency log the release never writes to, and cover every image
//! reference the workloads pin.

use serde_json::Value;

use super::{
    super::{
        ReleaseImages,
        verification::{fingerprint, policy_name, same_key},
    },
    Findings, Object, Violation,
};

const RULE: &str = "image-verification";

/// The provenance predicate the release attaches.
const PROVENANCE_TYPE: &str = supply_chain::provenance::PREDICATE_TYPE;

pub fn image_verification(
    objects: &[Object<'_>],
    release: &ReleaseImages,
    environment: &str,
    findings: &mut Findings,
) {
    let name = policy_name(environment);
    let Some(policy) = objects.iter().find(|object| {
        object.kind() == "ClusterPolicy"
            && object.value()["apiVersion"].as_str() == Some("kyverno.io/v1")
            && object.name() == name
    }) else {
        findings.0.push(Violation {
            object: format!("ClusterPolicy/{name}"),
            rule: RULE,
            message: "missing: nothing verifies the release's signatures when a pod is admitted"
                .to_owned(),
        });
        return;
    };
    let release_key = &release.public_key;
    let rules = policy.value()["spec"]["rules"].as_array().map(Vec::as_slice).unwrap_or_default();
    for (rule_index, rule) in rules.iter().enumerate() {
        let entries = rule["verifyImages"].as_array().map(Vec::as_slice).unwrap_or_default();
        for (index, entry) in entries.iter().enumerate() {
            let at = format!("rule {rule_index} verifyImages[{index}]");
            if entry["failureAction"].as_str() != Some("Enforce") {
                findings.add(
                    policy,
                    RULE,
                    format!("{at}: failureAction is not Enforce (only audits)"),
                );
            }
            for field in ["required", "verifyDigest"] {
                if entry[field].as_bool() == Some(false) {
                    findings.add(policy, RULE, format!("{at}: {field} is false"));
                }
            }
            check_keys(
                policy,
                &format!("{at} signature"),
                &entry["attestors"],
                release_key,
                findings,
            );
            let attestations =
                entry["attestations"].as_array().map(Vec::as_slice).unwrap_or_default();
            let provenance = attestations.iter().find(|attestation| {
                attestation["type"].as_str().or(attestation["predicateType"].as_str())
                    == Some(PROVENANCE_TYPE)
            });
            match provenance {
                None => findings.add(
                    policy,
                    RULE,
                    format!("{at}: no attestation checks the {PROVENANCE_TYPE} provenance"),
                ),
                Some(provenance) => {
                    let what = format!("{at} provenance");
                    check_keys(policy, &what, &provenance["attestors"], release_key, findings);
                    if !names_build_type(&provenance["conditions"]) {
                        findings.add(
                            policy,
                            RULE,
                            format!(
                                "{what}: no condition requires buildDefinition.buildType {}",
                                supply_chain::provenance::BUILD_TYPE
                            ),
                        );
                    }
                }
            }
        }
    }
    for workload in objects.iter().filter(|object| object.is_workload()) {
        let namespace = workload.value()["metadata"]["namespace"].as_str().unwrap_or("default");
        for container in workload.containers() {
            let image = container.image();
            if !release.images.values().any(|pinned| pinned.reference() == image) {
                continue;
            }
            let covered = rules.iter().any(|rule| {
                guards(rule, namespace)
                    && rule["verifyImages"].as_array().is_some_and(|entries| {
                        entries.iter().any(|entry| {
                            entry["imageReferences"].as_array().is_some_and(|patterns| {
                                patterns
                                    .iter()
                                    .filter_map(Value::as_str)
                                    .any(|pattern| wildcard_match(pattern, image))
                            })
                        })
                    })
            });
            if !covered {
                findings.add(
                    policy,
                    RULE,
                    format!(
                        "{}'s image {image} in namespace {namespace} is not covered: no rule matching Pods \
                         there lists an imageReferences pattern for it",
                        workload.id()
                    ),
                );
            }
        }
    }
}

/// Every attestor key is the release's, there is at least one, and none asks for a transparency log or
/// certificate timestamps the release never produces.
fn check_keys(
    policy: &Object<'_>,
    what: &str,
    attestors: &Value,
    release_key: &str,
    findings: &mut Findings,
) {
    let keys: Vec<&Value> = attestors
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|set| set["entries"].as_array().into_iter().flatten())
        .map(|entry| &entry["keys"])
        .collect();
    if keys.is_empty() {
        findings.add(policy, RULE, format!("{what}: no key attestor"));
    }
    for keys in keys {
        match keys["publicKeys"].as_str() {
            None => findings.add(policy, RULE, format!("{what}: an attestor names no public key")),
            Some(key) if !same_key(key, release_key) => findings.add(
                policy,
                RULE,
                format!(
                    "{what}: names key {}, but the release signs with {}",
                    fingerprint(key),
                    fingerprint(release_key)
                ),
            ),
            Some(_) => {}
        }
        if keys["rekor"]["ignoreTlog"].as_bool() != Some(true) {
            findings.add(
                policy,
                RULE,
                format!(
                    "{what}: rekor.ignoreTlog must be true (the release writes no transparency log)"
                ),
            );
        }
    }
}

/// Whether the conditions require the release's build type.
fn names_build_type(conditions: &Value) -> bool {
    conditions.as_array().into_iter().flatten().any(|block| {
        block["all"].as_array().into_iter().flatten().any(|condition| {
            condition["key"].as_str().map(|key| key.replace(' ', ""))
                == Some("{{buildDefinition.buildType}}".to_owned())
                && condition["operator"].as_str() == Some("Equals")
                && condition["value"].as_str() == Some(supply_chain::provenance::BUILD_TYPE)
        })
    })
}

/// Whether `rule` applies to Pods in `namespace`.
fn guards(rule: &Value, namespace: &str) -> bool {
    rule["match"]["any"].as_array().into_iter().flatten().any(|filter| {
        let resources = &filter["resources"];
        let kinds = resources["kinds"].as_array().map(Vec::as_slice).unwrap_or_default();
        let namespaces = resources["namespaces"].as_array();
        kinds.iter().any(|kind| kind.as_str() == Some("Pod"))
            && namespaces.is_none_or(|names| names.iter().any(|n| n.as_str() == Some(namespace)))
    })
}

/// Kyverno's image pattern match: `*` is any run of characters (`/` included), `?` any one.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let (pattern, text): (Vec<char>, Vec<char>) =
        (pattern.chars().collect(), text.chars().collect());
    // matched[j]: the pattern so far matches text[..j].
    let mut matched = vec![false; text.len() + 1];
    matched[0] = true;
    for &p in &pattern {
        let mut next = vec![false; text.len() + 1];
        for j in 0..=text.len() {
            next[j] = match p {
                '*' => matched[j] || (j > 0 && next[j - 1]),
                '?' => j > 0 && matched[j - 1],
                c => j > 0 && matched[j - 1] && text[j - 1] == c,
            };
        }
        matched = next;
    }
    matched[text.len()]
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn patterns_match_as_kyverno_does() {
        let image = "127.0.0.1:5000/team/hangangjari/hangang-api:2026.11.27-1@sha256:abc";
        assert!(wildcard_match("*/hangang-api:*", image));
        assert!(wildcard_match("127.0.0.1:5000/team/*", image));
        assert!(!wildcard_match("*/hangang-push:*", image));
        assert!(!wildcard_match("*/hangang-api", image));
        assert!(wildcard_match("?27.0.0.1:5000/*", image));
        assert!(!wildcard_match("*/hangang-api:*", "evil.example/hangang-api-x:1"));
    }
}
