//! The cluster's image verification policy (`kustomize/policy/verify-images.yaml`, a Kyverno `ClusterPolicy`):
//! the public key it trusts, and how a release renders it for one environment.
//!
//! The committed policy is the record of the key the cluster trusts. A release renders it beside each overlay
//! under the environment's own name, matching only that environment's namespace (staging and production share
//! a cluster, and a cluster-scoped object may have only one owner), with the public half of the key the
//! release signed with; [`super::policy`] then checks the rendered policy against the release.

use anyhow::Context;
use serde::Deserialize as _;

/// The policy's kustomization, rendered beside every overlay.
pub const POLICY_DIR: &str = "kustomize/policy";

/// The policy itself, holding the trusted key.
pub const POLICY_FILE: &str = "kustomize/policy/verify-images.yaml";

/// The committed policy's name; each environment renders it as [`policy_name`].
const COMMITTED_NAME: &str = "hangangjari-verify-images";

/// Where the policy holds its keys: the signature's attestor and the provenance attestation's.
pub const KEY_POINTERS: [&str; 2] = [
    "/spec/rules/0/verifyImages/0/attestors/0/entries/0/keys/publicKeys",
    "/spec/rules/0/verifyImages/0/attestations/0/attestors/0/entries/0/keys/publicKeys",
];

/// Where the policy names the namespaces it guards.
const NAMESPACES_POINTER: &str = "/spec/rules/0/match/any/0/resources/namespaces";

/// The rendered policy of `environment`.
pub fn policy_name(environment: &str) -> String {
    format!("hangangjari-{environment}-verify-images")
}

/// The public key the committed policy trusts (its signature attestor's), as PEM.
pub fn trusted_key() -> anyhow::Result<String> {
    let path = crate::project_root().join(POLICY_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let policy = serde_json::Value::deserialize(serde_norway::Deserializer::from_str(&text))
        .with_context(|| format!("{} is not YAML", path.display()))?;
    let key = policy
        .pointer(KEY_POINTERS[0])
        .and_then(serde_json::Value::as_str)
        .filter(|key| key.contains("BEGIN PUBLIC KEY"))
        .with_context(|| {
            format!("{} holds no public key at {}", path.display(), KEY_POINTERS[0])
        })?;
    Ok(key.to_owned())
}

/// Whether two PEM texts hold the same key, whatever their line wrapping or final newline.
pub fn same_key(left: &str, right: &str) -> bool {
    let compact = |pem: &str| pem.split_whitespace().collect::<String>();
    compact(left) == compact(right)
}

/// A short name for a key in messages: the start of the SHA-256 of its PEM body.
pub fn fingerprint(pem: &str) -> String {
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    format!("sha256:{}", &oci::Digest::of(body.trim().as_bytes()).hex()[..16])
}

/// The kustomize patch that makes the committed policy `environment`'s: its name, the namespace it guards,
/// and `public_key` (the key the release signed with) in every attestor.
pub fn release_patch(environment: &str, namespace: &str, public_key: &str) -> String {
    // JSON strings are YAML scalars, so the PEM's newlines survive the nesting without indentation rules.
    let quoted = |text: &str| serde_json::to_string(text).expect("a string serializes");
    let mut operations = vec![
        ("/metadata/name".to_owned(), quoted(&policy_name(environment))),
        (NAMESPACES_POINTER.to_owned(), format!("[{}]", quoted(namespace))),
    ];
    operations
        .extend(KEY_POINTERS.iter().map(|pointer| ((*pointer).to_owned(), quoted(public_key))));
    let mut patch = format!(
        "  - target: {{group: kyverno.io, kind: ClusterPolicy, name: {COMMITTED_NAME}}}\n    patch: |-\n"
    );
    for (path, value) in operations {
        patch.push_str(&format!(
            "      - op: replace\n        path: {path}\n        value: {value}\n"
        ));
    }
    patch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_whatever_their_wrapping() {
        let key = trusted_key().unwrap();
        assert!(key.starts_with("-----BEGIN PUBLIC KEY-----"), "{key}");
        let rewrapped = format!("{}\n", key.replace('\n', "\r\n"));
        assert!(same_key(&key, &rewrapped));
        assert_eq!(fingerprint(&key), fingerprint(&rewrapped));
        let other = supply_chain::signing::ReleaseKey::throwaway().public_pem().unwrap();
        assert!(!same_key(&key, &other));
        assert_ne!(fingerprint(&key), fingerprint(&other));
    }
}
