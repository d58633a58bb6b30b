//! OCI image-spec 1.1 objects and the image layout on disk (`oci-layout`, `index.json`, `blobs/sha256/…`).
//!
//! JSON is serialized from structs (fields in declaration order, maps as `BTreeMap`) and hashed as the exact
//! bytes written, because registries and clients hash bytes, not meaning. Each layout holds one tag whose
//! descriptor points at an image index over the single linux/amd64 manifest: the index digest is what a
//! release pins, so adding an architecture later keeps the same shape.

use std::{
    collections::BTreeMap,
    io::Read as _,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::{digest::Digest, layer::Layer};

pub const MEDIA_TYPE_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_TYPE_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_TYPE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_TYPE_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// The annotation of `index.json` descriptors that names the tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageConfig {
    pub created: String,
    pub architecture: String,
    pub os: String,
    pub config: ContainerConfig,
    pub rootfs: RootFs,
    pub history: Vec<History>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub user: String,
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct History {
    pub created: String,
    pub created_by: String,
}

/// What one image is made of, apart from its layers.
#[derive(Debug)]
pub struct ImageSpec<'a> {
    /// The tag, also `index.json`'s `org.opencontainers.image.ref.name`.
    pub tag: &'a str,
    /// RFC 3339, from `SOURCE_DATE_EPOCH`: `created` of the config and of every history entry.
    pub created: &'a str,
    /// `User` of the config (`uid:gid`).
    pub user: &'a str,
    pub entrypoint: Vec<String>,
    pub env: Vec<String>,
    /// The config's labels, also the manifest's and the index's annotations.
    pub annotations: &'a BTreeMap<String, String>,
}

/// The descriptors of one written image, from the top.
#[derive(Debug, Clone)]
pub struct Written {
    pub index: Descriptor,
    pub manifest: Descriptor,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

impl Written {
    /// What a registry stores for this image: the compressed layers and the JSON above them.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|layer| layer.size).sum::<u64>()
            + self.config.size
            + self.manifest.size
            + self.index.size
    }
}

/// An OCI image layout directory.
#[derive(Debug)]
pub struct Layout {
    dir: PathBuf,
}

impl Layout {
    /// Creates a layout in `dir`, which must not exist yet or be empty.
    pub fn create(dir: &Path) -> anyhow::Result<Layout> {
        if dir.exists() {
            let empty = std::fs::read_dir(dir)?.next().is_none();
            anyhow::ensure!(empty, "{} exists and is not empty", dir.display());
        }
        std::fs::create_dir_all(dir.join("blobs/sha256"))
            .with_context(|| format!("failed to create {}", dir.display()))?;
        std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        Ok(Layout { dir: dir.to_owned() })
    }

    /// Opens an existing layout, checking its `oci-layout` marker.
    pub fn open(dir: &Path) -> anyhow::Result<Layout> {
        let marker = std::fs::read(dir.join("oci-layout"))
            .with_context(|| format!("{} is not an OCI layout", dir.display()))?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Marker {
            image_layout_version: String,
        }
        let marker: Marker = serde_json::from_slice(&marker).context("invalid oci-layout")?;
        anyhow::ensure!(
            marker.image_layout_version == "1.0.0",
            "unsupported imageLayoutVersion {}",
            marker.image_layout_version
        );
        Ok(Layout { dir: dir.to_owned() })
    }

    /// Writes one image over `layers` (bottom first) and tags it.
    pub fn write_image(&self, spec: &ImageSpec<'_>, layers: &[&Layer]) -> anyhow::Result<Written> {
        check_tag(spec.tag)?;
        let mut layer_descriptors = Vec::new();
        for layer in layers {
            layer_descriptors.push(self.write_blob(MEDIA_TYPE_LAYER_GZIP, &layer.gzip)?);
        }
        let config = ImageConfig {
            created: spec.created.to_owned(),
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            config: ContainerConfig {
                user: spec.user.to_owned(),
                env: spec.env.clone(),
                entrypoint: spec.entrypoint.clone(),
                labels: spec.annotations.clone(),
            },
            rootfs: RootFs {
                kind: "layers".to_owned(),
                diff_ids: layers.iter().map(|layer| layer.diff_id.clone()).collect(),
            },
            history: layers
                .iter()
                .map(|layer| History {
                    created: spec.created.to_owned(),
                    created_by: layer.created_by.clone(),
                })
                .collect(),
        };
        let config = self.write_blob(MEDIA_TYPE_CONFIG, &serde_json::to_vec(&config)?)?;
        let manifest = Manifest {
            schema_version: 2,
            media_type: MEDIA_TYPE_MANIFEST.to_owned(),
            config: config.clone(),
            layers: layer_descriptors.clone(),
            annotations: spec.annotations.clone(),
        };
        let mut manifest = self.write_blob(MEDIA_TYPE_MANIFEST, &serde_json::to_vec(&manifest)?)?;
        manifest.platform =
            Some(Platform { architecture: "amd64".to_owned(), os: "linux".to_owned() });
        let index = Index {
            schema_version: 2,
            media_type: MEDIA_TYPE_INDEX.to_owned(),
            manifests: vec![manifest.clone()],
            annotations: spec.annotations.clone(),
        };
        let index = self.write_blob(MEDIA_TYPE_INDEX, &serde_json::to_vec(&index)?)?;

        let mut tagged = index.clone();
        tagged.annotations = BTreeMap::from([(REF_NAME.to_owned(), spec.tag.to_owned())]);
        let top = Index {
            schema_version: 2,
            media_type: MEDIA_TYPE_INDEX.to_owned(),
            manifests: vec![tagged],
            annotations: BTreeMap::new(),
        };
        std::fs::write(self.dir.join("index.json"), serde_json::to_vec(&top)?)?;
        Ok(Written { index, manifest, config, layers: layer_descriptors })
    }

    /// Stores `bytes` under their digest and describes them.
    pub fn write_blob(&self, media_type: &str, bytes: &[u8]) -> anyhow::Result<Descriptor> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if !path.exists() {
            std::fs::write(&path, bytes)
                .with_context(|| format!("failed to write {}", path.display()))?;
        }
        Ok(Descriptor {
            media_type: media_type.to_owned(),
            digest,
            size: bytes.len() as u64,
            platform: None,
            annotations: BTreeMap::new(),
        })
    }

    /// Reads the blob `descriptor` names, checking its size and digest.
    pub fn read_blob(&self, descriptor: &Descriptor) -> anyhow::Result<Vec<u8>> {
        let path = self.blob_path(&descriptor.digest);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("blob {} is missing", descriptor.digest))?;
        anyhow::ensure!(
            bytes.len() as u64 == descriptor.size,
            "blob {} has {} bytes, its descriptor says {}",
            descriptor.digest,
            bytes.len(),
            descriptor.size
        );
        anyhow::ensure!(
            Digest::of(&bytes) == descriptor.digest,
            "blob {} does not hash to its name",
            descriptor.digest
        );
        Ok(bytes)
    }

    /// Reads and parses a JSON blob, checking its media type first.
    pub fn read_json<T: DeserializeOwned>(
        &self,
        descriptor: &Descriptor,
        media_type: &str,
    ) -> anyhow::Result<T> {
        anyhow::ensure!(
            descriptor.media_type == media_type,
            "blob {} is a {}, expected {media_type}",
            descriptor.digest,
            descriptor.media_type
        );
        let bytes = self.read_blob(descriptor)?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("blob {} is not a valid {media_type}", descriptor.digest))
    }

    /// Points `tag` at `descriptor` in `index.json` (replacing an earlier target of the tag), as attached
    /// artifacts (signatures, SBOMs, attestations) are tagged beside the image.
    pub fn tag(&self, tag: &str, mut descriptor: Descriptor) -> anyhow::Result<()> {
        check_tag(tag)?;
        let path = self.dir.join("index.json");
        let mut top: Index =
            serde_json::from_slice(&std::fs::read(&path)?).context("invalid index.json")?;
        top.manifests
            .retain(|entry| entry.annotations.get(REF_NAME).is_none_or(|name| name != tag));
        descriptor.annotations.insert(REF_NAME.to_owned(), tag.to_owned());
        top.manifests.push(descriptor);
        std::fs::write(&path, serde_json::to_vec(&top)?)?;
        Ok(())
    }

    /// The descriptor `index.json` gives for `tag`.
    pub fn tagged(&self, tag: &str) -> anyhow::Result<Descriptor> {
        let top: Index = serde_json::from_slice(&std::fs::read(self.dir.join("index.json"))?)
            .context("invalid index.json")?;
        top.manifests
            .into_iter()
            .find(|descriptor| descriptor.annotations.get(REF_NAME).is_some_and(|name| name == tag))
            .with_context(|| format!("no tag `{tag}` in {}", self.dir.display()))
    }

    /// Checks the whole layout: every blob is named by its sha256, and everything `index.json` reaches
    /// exists with the size its descriptor gives; configs list one `diff_id` per layer and each decompressed
    /// layer hashes to its `diff_id`.
    pub fn fsck(&self) -> anyhow::Result<Fsck> {
        let mut summary = Fsck::default();
        for entry in std::fs::read_dir(self.dir.join("blobs"))? {
            let entry = entry?;
            anyhow::ensure!(
                entry.file_name() == "sha256",
                "unexpected blobs/{}",
                entry.file_name().to_string_lossy()
            );
        }
        for entry in std::fs::read_dir(self.dir.join("blobs/sha256"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let digest = Digest::parse(&format!("sha256:{name}"))
                .with_context(|| format!("unexpected blobs/sha256/{name}"))?;
            let bytes = std::fs::read(entry.path())?;
            anyhow::ensure!(
                Digest::of(&bytes) == digest,
                "blob {digest} does not hash to its name"
            );
            summary.blobs += 1;
            summary.bytes += bytes.len() as u64;
        }
        let top: Index = serde_json::from_slice(&std::fs::read(self.dir.join("index.json"))?)
            .context("invalid index.json")?;
        for descriptor in &top.manifests {
            anyhow::ensure!(
                descriptor.annotations.contains_key(REF_NAME),
                "index.json entry {} has no {REF_NAME}",
                descriptor.digest
            );
            self.check(descriptor, &mut summary)?;
        }
        Ok(summary)
    }

    fn check(&self, descriptor: &Descriptor, summary: &mut Fsck) -> anyhow::Result<()> {
        match descriptor.media_type.as_str() {
            MEDIA_TYPE_INDEX => {
                let index: Index = self.read_json(descriptor, MEDIA_TYPE_INDEX)?;
                for manifest in &index.manifests {
                    self.check(manifest, summary)?;
                }
            }
            MEDIA_TYPE_MANIFEST => {
                let manifest: Manifest = self.read_json(descriptor, MEDIA_TYPE_MANIFEST)?;
                let config: ImageConfig = self.read_json(&manifest.config, MEDIA_TYPE_CONFIG)?;
                anyhow::ensure!(
                    config.rootfs.diff_ids.len() == manifest.layers.len(),
                    "manifest {} has {} layers, its config {} diff_ids",
                    descriptor.digest,
                    manifest.layers.len(),
                    config.rootfs.diff_ids.len()
                );
                for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
                    if layer.media_type != MEDIA_TYPE_LAYER_GZIP {
                        // An attached artifact (signature payload, SBOM, attestation) is stored as is, so
                        // its diff_id is its own digest, as cosign writes it.
                        self.read_blob(layer)?;
                        anyhow::ensure!(
                            &layer.digest == diff_id,
                            "artifact {} ({}) has diff_id {diff_id}",
                            layer.digest,
                            layer.media_type
                        );
                        continue;
                    }
                    let gzip = self.read_blob(layer)?;
                    let mut tar = Vec::new();
                    flate2::read::GzDecoder::new(&gzip[..])
                        .read_to_end(&mut tar)
                        .with_context(|| format!("layer {} is not gzip", layer.digest))?;
                    anyhow::ensure!(
                        &Digest::of(&tar) == diff_id,
                        "layer {} does not decompress to its diff_id {diff_id}",
                        layer.digest
                    );
                }
                summary.images += 1;
            }
            other => anyhow::bail!("unexpected media type {other} for {}", descriptor.digest),
        }
        Ok(())
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }
}

/// What [`Layout::fsck`] went through.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fsck {
    pub blobs: usize,
    pub bytes: u64,
    pub images: usize,
}

/// A tag as the distribution spec allows it: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn check_tag(tag: &str) -> anyhow::Result<()> {
    let mut bytes = tag.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && tag.len() <= 128;
    anyhow::ensure!(valid, "`{tag}` is not a valid image tag");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_distribution_spec() {
        assert!(check_tag("2026-11-27.1").is_ok());
        assert!(check_tag("_x").is_ok());
        assert!(check_tag("").is_err());
        assert!(check_tag(".x").is_err());
        assert!(check_tag("a/b").is_err());
        assert!(check_tag(&"a".repeat(129)).is_err());
    }

    /// The empty descriptor of image-spec 1.1 (`application/vnd.oci.empty.v1+json`), recomputed.
    #[test]
    fn empty_descriptor_digest() {
        assert_eq!(
            Digest::of(b"{}").as_str(),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
    }
}
