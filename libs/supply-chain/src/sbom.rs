//! Software bills of materials for one image, from one model: the dependency list embedded in the binary
//! (cargo-auditable's format, so the SBOM lists exactly what the binary says it contains), the crates'
//! checksums from `Cargo.lock`, and the synthesized base layer's contents. Written as CycloneDX 1.5 and
//! SPDX 2.3 JSON, byte-identical for identical inputs (no random serial numbers, times from the commit).

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

/// cargo-auditable's dependency list (format 1), as embedded in the binary's `.dep-v0` section.
#[derive(Clone, Debug, Deserialize)]
pub struct DependencyList {
    pub format: u32,
    pub packages: Vec<AuditedPackage>,
}

/// One package of the list; `dependencies` are indices into the list.
#[derive(Clone, Debug, Deserialize)]
pub struct AuditedPackage {
    pub name: String,
    pub version: String,
    /// `crates.io`, `local`, `git`, `registry` or `other`.
    pub source: String,
    /// `build` for packages only used to build (proc macros and their dependencies); runtime otherwise.
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub dependencies: Vec<usize>,
    #[serde(default)]
    pub root: bool,
}

/// Something in the image that is not a crate: the base layer's files and where they came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseComponent {
    pub name: String,
    pub version: String,
    /// A package URL when the content comes from a package (`pkg:deb/debian/tzdata@2025b-0+deb12u1`).
    pub purl: Option<String>,
    pub description: String,
}

/// The image the SBOM describes.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    /// Repository name, e.g. `hangang-api`.
    pub name: &'a str,
    /// The image index digest (`sha256:…`).
    pub digest: &'a str,
    /// RFC 3339, the commit time (`SOURCE_DATE_EPOCH`).
    pub created: &'a str,
}

/// Everything an SBOM is made from.
#[derive(Clone, Debug)]
pub struct Sbom<'a> {
    pub subject: Subject<'a>,
    pub dependencies: &'a DependencyList,
    /// SHA-256 of each crates.io package, keyed by `(name, version)`, from `Cargo.lock`.
    pub checksums: &'a BTreeMap<(String, String), String>,
    pub base: &'a [BaseComponent],
}

fn cargo_purl(package: &AuditedPackage) -> String {
    format!("pkg:cargo/{}@{}", package.name, package.version)
}

/// `pkg:oci/<name>@sha256%3A<hex>`, the purl of an OCI image (the digest's colon percent-encoded).
fn oci_purl(subject: &Subject<'_>) -> String {
    format!("pkg:oci/{}@{}", subject.name, subject.digest.replace(':', "%3A"))
}

/// A UUID (version 8, "custom") derived from the image digest, so the serial number is stable per image.
fn serial_number(digest: &str) -> String {
    let hex: String = digest.trim_start_matches("sha256:").chars().take(32).collect();
    let mut hex: Vec<char> = hex.chars().collect();
    hex[12] = '8';
    hex[16] = match hex[16].to_digit(16).unwrap_or(0) & 0x3 {
        0 => '8',
        1 => '9',
        2 => 'a',
        _ => 'b',
    };
    let hex: String = hex.into_iter().collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

impl Sbom<'_> {
    /// How many components the SBOM lists (crates and base layer contents).
    pub fn component_count(&self) -> usize {
        self.dependencies.packages.len() + self.base.len()
    }

    fn checksum(&self, package: &AuditedPackage) -> Option<&str> {
        self.checksums.get(&(package.name.clone(), package.version.clone())).map(String::as_str)
    }

    /// CycloneDX 1.5 JSON.
    pub fn cyclonedx(&self) -> Value {
        let packages = &self.dependencies.packages;
        let mut components: Vec<Value> = packages
            .iter()
            .map(|package| {
                let mut component = json!({
                    "type": if package.root { "application" } else { "library" },
                    "bom-ref": cargo_purl(package),
                    "name": package.name,
                    "version": package.version,
                    "purl": cargo_purl(package),
                    // Build-time packages (proc macros) are not in the image; CycloneDX calls that "excluded".
                    "scope": if package.kind.as_deref() == Some("build") { "excluded" } else { "required" },
                    "properties": [{"name": "cargo:source", "value": package.source}],
                });
                if let Some(sha) = self.checksum(package) {
                    component["hashes"] = json!([{"alg": "SHA-256", "content": sha}]);
                }
                component
            })
            .collect();
        components.extend(self.base.iter().map(|base| {
            let mut component = json!({
                "type": "data",
                "bom-ref": format!("base:{}", base.name),
                "name": base.name,
                "version": base.version,
                "description": base.description,
            });
            if let Some(purl) = &base.purl {
                component["purl"] = json!(purl);
            }
            component
        }));
        let image_ref = oci_purl(&self.subject);
        let mut dependencies: Vec<Value> = packages
            .iter()
            .map(|package| {
                let depends_on: Vec<String> = package
                    .dependencies
                    .iter()
                    .filter_map(|&index| packages.get(index))
                    .map(cargo_purl)
                    .collect();
                json!({"ref": cargo_purl(package), "dependsOn": depends_on})
            })
            .collect();
        let mut image_contents: Vec<String> =
            packages.iter().filter(|package| package.root).map(cargo_purl).collect();
        image_contents.extend(self.base.iter().map(|base| format!("base:{}", base.name)));
        dependencies.push(json!({"ref": image_ref, "dependsOn": image_contents}));
        json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "serialNumber": serial_number(self.subject.digest),
            "version": 1,
            "metadata": {
                "timestamp": self.subject.created,
                "tools": {"components": [{"type": "application", "name": "cargo-xtask", "group": "hangangjari"}]},
                "component": {
                    "type": "container",
                    "bom-ref": image_ref,
                    "name": self.subject.name,
                    "version": self.subject.digest,
                    "purl": image_ref,
                },
            },
            "components": components,
            "dependencies": dependencies,
        })
    }

    /// SPDX 2.3 JSON.
    pub fn spdx(&self) -> Value {
        let packages = &self.dependencies.packages;
        let id = |index: usize| format!("SPDXRef-Package-{index}");
        let mut spdx_packages = vec![json!({
            "SPDXID": "SPDXRef-Image",
            "name": self.subject.name,
            "versionInfo": self.subject.digest,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "primaryPackagePurpose": "CONTAINER",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                              "referenceLocator": oci_purl(&self.subject)}],
        })];
        for (index, package) in packages.iter().enumerate() {
            let download = if package.source == "crates.io" {
                format!(
                    "https://crates.io/api/v1/crates/{}/{}/download",
                    package.name, package.version
                )
            } else {
                "NOASSERTION".to_owned()
            };
            let mut entry = json!({
                "SPDXID": id(index),
                "name": package.name,
                "versionInfo": package.version,
                "downloadLocation": download,
                "filesAnalyzed": false,
                "primaryPackagePurpose": if package.root { "APPLICATION" } else { "LIBRARY" },
                "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                  "referenceLocator": cargo_purl(package)}],
            });
            if let Some(sha) = self.checksum(package) {
                entry["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sha}]);
            }
            spdx_packages.push(entry);
        }
        for (index, base) in self.base.iter().enumerate() {
            let mut entry = json!({
                "SPDXID": format!("SPDXRef-Base-{index}"),
                "name": base.name,
                "versionInfo": base.version,
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": false,
                "primaryPackagePurpose": "FILE",
                "comment": base.description,
            });
            if let Some(purl) = &base.purl {
                entry["externalRefs"] = json!([{"referenceCategory": "PACKAGE-MANAGER",
                    "referenceType": "purl", "referenceLocator": purl}]);
            }
            spdx_packages.push(entry);
        }
        let mut relationships = vec![json!({"spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES", "relatedSpdxElement": "SPDXRef-Image"})];
        for (index, package) in packages.iter().enumerate() {
            if package.root {
                relationships.push(json!({"spdxElementId": "SPDXRef-Image",
                    "relationshipType": "CONTAINS", "relatedSpdxElement": id(index)}));
            }
            for &dependency in &package.dependencies {
                relationships.push(json!({"spdxElementId": id(index),
                    "relationshipType": "DEPENDS_ON", "relatedSpdxElement": id(dependency)}));
            }
        }
        for index in 0..self.base.len() {
            relationships.push(json!({"spdxElementId": "SPDXRef-Image",
                "relationshipType": "CONTAINS", "relatedSpdxElement": format!("SPDXRef-Base-{index}")}));
        }
        json!({
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": format!("{}@{}", self.subject.name, self.subject.digest),
            "documentNamespace": format!("https://hangangjari.app/spdx/{}/{}", self.subject.name,
                self.subject.digest.trim_start_matches("sha256:")),
            "creationInfo": {"created": self.subject.created, "creators": ["Tool: hangangjari-cargo-xtask"]},
            "packages": spdx_packages,
            "relationships": relationships,
        })
    }
}

/// SHA-256 checksums of the registry packages in `Cargo.lock`.
pub fn lockfile_checksums(lockfile: &rustsec::Lockfile) -> BTreeMap<(String, String), String> {
    lockfile
        .packages
        .iter()
        .filter_map(|package| {
            let checksum = package.checksum.as_ref()?;
            Some((
                (package.name.as_str().to_owned(), package.version.to_string()),
                checksum.to_string(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> DependencyList {
        serde_json::from_value(json!({"format": 1, "packages": [
            {"name": "api", "version": "0.0.0", "source": "local", "dependencies": [1, 2], "root": true},
            {"name": "tokio", "version": "1.48.0", "source": "crates.io", "dependencies": [2]},
            {"name": "tokio-macros", "version": "2.6.0", "source": "crates.io", "kind": "build"},
        ]}))
        .unwrap()
    }

    fn sbom<'a>(
        list: &'a DependencyList,
        checksums: &'a BTreeMap<(String, String), String>,
        base: &'a [BaseComponent],
    ) -> Sbom<'a> {
        Sbom {
            subject: Subject {
                name: "hangang-api",
                digest: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                created: "2026-11-27T12:00:00Z",
            },
            dependencies: list,
            checksums,
            base,
        }
    }

    #[test]
    fn cyclonedx_lists_crates_base_contents_and_the_graph() {
        let list = list();
        let checksums = BTreeMap::from([(("tokio".into(), "1.48.0".into()), "ab".repeat(32))]);
        let base = [BaseComponent {
            name: "tzdata".into(),
            version: "2025b".into(),
            purl: Some("pkg:deb/debian/tzdata@2025b".into()),
            description: "/usr/share/zoneinfo".into(),
        }];
        let sbom = sbom(&list, &checksums, &base);
        let bom = sbom.cyclonedx();
        assert_eq!(bom["specVersion"], "1.5");
        assert_eq!(bom["serialNumber"], "urn:uuid:01234567-89ab-8def-8123-456789abcdef");
        assert_eq!(
            bom["metadata"]["component"]["purl"],
            "pkg:oci/hangang-api@sha256%3A0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
        );
        let components = bom["components"].as_array().unwrap();
        assert_eq!(components.len(), sbom.component_count());
        assert_eq!(components[1]["hashes"][0]["content"], "ab".repeat(32));
        assert_eq!(components[2]["scope"], "excluded");
        assert_eq!(components[3]["purl"], "pkg:deb/debian/tzdata@2025b");
        assert_eq!(
            bom["dependencies"][0]["dependsOn"],
            json!(["pkg:cargo/tokio@1.48.0", "pkg:cargo/tokio-macros@2.6.0"])
        );
        let image = bom["dependencies"].as_array().unwrap().last().unwrap();
        assert_eq!(image["dependsOn"], json!(["pkg:cargo/api@0.0.0", "base:tzdata"]));
    }

    #[test]
    fn spdx_describes_the_image_and_is_stable() {
        let list = list();
        let checksums = BTreeMap::new();
        let sbom = sbom(&list, &checksums, &[]);
        let document = sbom.spdx();
        assert_eq!(document["spdxVersion"], "SPDX-2.3");
        assert_eq!(document["relationships"][0]["relationshipType"], "DESCRIBES");
        assert_eq!(document["packages"].as_array().unwrap().len(), 4);
        assert_eq!(
            serde_json::to_vec(&document).unwrap(),
            serde_json::to_vec(&sbom.spdx()).unwrap()
        );
    }
}
