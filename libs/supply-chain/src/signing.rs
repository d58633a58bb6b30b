//! Keyed, cosign-compatible signatures: ECDSA P-256 over SHA-256, DER-encoded, on cosign's "simple signing"
//! payload (the image's manifest digest and repository), stored by the release as the `sha256-<hex>.sig` tag;
//! and DSSE envelopes (in-toto's signing wrapper) for attestations such as the provenance.
//!
//! Keys are PKCS#8 PEM (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`), unencrypted on
//! disk only for throwaway CI keys; the public half is what `openssl dgst -verify` and
//! `cosign verify --key` take.

use std::path::Path;

use anyhow::Context;
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use p256::{
    ecdsa::{Signature, SigningKey, signature::Signer as _},
    pkcs8::{DecodePrivateKey as _, EncodePublicKey as _, LineEnding},
};
use serde::Serialize;

/// Media type of a simple-signing payload layer.
pub const SIMPLE_SIGNING_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";

/// Annotation on that layer holding the base64 DER signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// The in-toto payload type of DSSE envelopes.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A release signing key.
pub struct ReleaseKey {
    key: SigningKey,
}

impl std::fmt::Debug for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReleaseKey([redacted])")
    }
}

impl ReleaseKey {
    /// Reads a PKCS#8 PEM P-256 private key.
    pub fn load(path: &Path) -> anyhow::Result<ReleaseKey> {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the signing key {}", path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|error| {
            anyhow::anyhow!("{} is not a PKCS#8 PEM P-256 private key: {error}", path.display())
        })?;
        Ok(ReleaseKey { key })
    }

    /// A fresh key from the system's random source, for dry runs and CI, where nothing signed is kept.
    pub fn throwaway() -> ReleaseKey {
        loop {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).expect("the operating system provides randomness");
            // Nearly every 32 bytes are a valid scalar; the rare ones that are not are drawn again.
            if let Ok(key) = SigningKey::from_bytes(&bytes.into()) {
                return ReleaseKey { key };
            }
        }
    }

    /// Writes the private key as PKCS#8 PEM (mode 0600); only tests keep a generated key.
    #[cfg(test)]
    pub fn write_private(&self, path: &Path) -> anyhow::Result<()> {
        use p256::pkcs8::EncodePrivateKey as _;
        let pem =
            self.key.to_pkcs8_pem(LineEnding::LF).map_err(|error| anyhow::anyhow!("{error}"))?;
        std::fs::write(path, pem.as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
        Ok(())
    }

    /// The public key as SubjectPublicKeyInfo PEM (`cosign.pub`).
    pub fn public_pem(&self) -> anyhow::Result<String> {
        self.key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|error| anyhow::anyhow!("cannot encode the public key: {error}"))
    }

    /// An ECDSA P-256 SHA-256 signature over `message`, DER-encoded (what cosign and openssl exchange).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        let signature: Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    /// A DSSE envelope around `payload`: the signature covers the pre-authentication encoding, so the type
    /// cannot be swapped.
    pub fn envelope(&self, payload_type: &str, payload: &[u8]) -> serde_json::Value {
        let signature = self.sign(&pre_authentication_encoding(payload_type, payload));
        serde_json::json!({
            "payloadType": payload_type,
            "payload": BASE64.encode(payload),
            "signatures": [{"keyid": "", "sig": BASE64.encode(signature)}],
        })
    }
}

/// DSSE's PAE: `DSSEv1 <len(type)> <type> <len(body)> <body>`.
pub fn pre_authentication_encoding(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut encoded =
        format!("DSSEv1 {} {payload_type} {} ", payload_type.len(), payload.len()).into_bytes();
    encoded.extend_from_slice(payload);
    encoded
}

/// The signed claim: this repository's image has this manifest digest.
#[derive(Serialize)]
struct SimpleSigning<'a> {
    critical: Critical<'a>,
    optional: Option<()>,
}

#[derive(Serialize)]
struct Critical<'a> {
    identity: Identity<'a>,
    image: Image<'a>,
    #[serde(rename = "type")]
    kind: &'static str,
}

#[derive(Serialize)]
struct Identity<'a> {
    #[serde(rename = "docker-reference")]
    docker_reference: &'a str,
}

#[derive(Serialize)]
struct Image<'a> {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: &'a str,
}

/// cosign's simple-signing payload for `repository` (without tag) at `digest`, byte for byte as cosign
/// writes it (fields in this order, `"optional":null`).
pub fn simple_signing_payload(repository: &str, digest: &str) -> Vec<u8> {
    let payload = SimpleSigning {
        critical: Critical {
            identity: Identity { docker_reference: repository },
            image: Image { docker_manifest_digest: digest },
            kind: "cosign container image signature",
        },
        optional: None,
    };
    serde_json::to_vec(&payload).expect("the payload serializes")
}

/// The tag cosign looks for: `sha256-<hex>.sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replace(':', "-"))
}

/// The base64 of a DER signature, as the layer annotation carries it.
pub fn encode_signature(der: &[u8]) -> String {
    BASE64.encode(der)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    const DIGEST: &str = "sha256:9b45a2da7c5a1d8b96b9e5d8a1f6f0c8f4e1b4b3c0a2d8c7e6f5a4b3c2d1e0f9";

    #[test]
    fn the_payload_is_cosigns() {
        let payload = simple_signing_payload("registry.local/hangang-api", DIGEST);
        assert_eq!(
            String::from_utf8(payload).unwrap(),
            format!(
                "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"registry.local/hangang-api\"}},\
                 \"image\":{{\"docker-manifest-digest\":\"{DIGEST}\"}},\"type\":\"cosign container image signature\"}},\
                 \"optional\":null}}"
            )
        );
        assert_eq!(signature_tag(DIGEST), format!("sha256-{}.sig", &DIGEST[7..]));
    }

    #[test]
    fn pae_matches_the_dsse_specification() {
        // The example from the DSSE protocol document.
        assert_eq!(
            pre_authentication_encoding("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    /// An independent verifier accepts the signature: openssl, given only the public key.
    #[test]
    fn openssl_verifies_a_signature() {
        let dir = tempfile::tempdir().unwrap();
        let key = ReleaseKey::throwaway();
        key.write_private(&dir.path().join("cosign.key")).unwrap();
        let key = ReleaseKey::load(&dir.path().join("cosign.key")).unwrap();
        std::fs::write(dir.path().join("cosign.pub"), key.public_pem().unwrap()).unwrap();
        let payload = simple_signing_payload("registry.local/hangang-api", DIGEST);
        std::fs::write(dir.path().join("payload.json"), &payload).unwrap();
        std::fs::write(dir.path().join("payload.sig"), key.sign(&payload)).unwrap();
        let verify = |file: &str| {
            Command::new("openssl")
                .args([
                    "dgst",
                    "-sha256",
                    "-verify",
                    "cosign.pub",
                    "-signature",
                    "payload.sig",
                    file,
                ])
                .current_dir(dir.path())
                .output()
                .unwrap()
        };
        let output = verify("payload.json");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
        assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "Verified OK");
        std::fs::write(dir.path().join("tampered.json"), b"{}").unwrap();
        assert!(!verify("tampered.json").status.success());
    }
}
