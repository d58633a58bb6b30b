//! `sha256:<64 lowercase hex>`, the only digest our images use, parsed once so every path and URL built from
//! one is safe to build.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// A SHA-256 content digest in OCI form (`sha256:` + 64 lowercase hex digits).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
    }

    /// Accepts only `sha256:` followed by 64 lowercase hex digits: other algorithms never occur in our
    /// layouts, and a digest becomes a file name and a URL path segment.
    pub fn parse(text: &str) -> anyhow::Result<Digest> {
        let Some(hex) = text.strip_prefix("sha256:") else {
            anyhow::bail!("`{text}` is not a sha256 digest");
        };
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            anyhow::bail!("`{text}` is not a sha256 digest (64 lowercase hex digits)");
        }
        Ok(Digest(text.to_owned()))
    }

    /// The hex part, which names the blob under `blobs/sha256/`.
    pub fn hex(&self) -> &str {
        &self.0["sha256:".len()..]
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = anyhow::Error;

    fn try_from(text: String) -> anyhow::Result<Digest> {
        Digest::parse(&text)
    }
}

impl From<Digest> for String {
    fn from(digest: Digest) -> String {
        digest.0
    }
}

#[cfg(test)]
mod tests {
    use super::Digest;

    #[test]
    fn parses_only_sha256() {
        let digest = Digest::of(b"");
        assert_eq!(
            digest.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(digest.as_str()).unwrap(), digest);
        assert!(Digest::parse("sha512:00").is_err());
        assert!(Digest::parse(&format!("sha256:{}", digest.hex().to_uppercase())).is_err());
        assert!(Digest::parse("sha256:../../etc/passwd").is_err());
    }
}
