//! Deterministic layers: the same entries give the same `diff_id` and digest on any machine, from any checkout.
//!
//! Headers are written by hand (`tar::Header::new_ustar`), never read from the file system, so nothing of the
//! build machine (owner, umask, mtime, atime) reaches an archive, and no PAX record is ever written (jib#4141
//! leaked real times through them). Entries are sorted by path with their parent directories explicit; owners
//! are numeric (`uid`/`gid`, empty `uname`/`gname`); every entry of a layer has one mtime.
//!
//! Gzip is `flate2` with its `rust_backend` (miniz_oxide) at level [`GZIP_LEVEL`], header mtime 0, no file
//! name. The compressed digest depends on that implementation and the `diff_id` does not: a flate2 or
//! miniz_oxide update that changes the output is expected digest churn, which `base_layer_is_pinned` makes a
//! visible test change rather than a silent redeploy of every service.

use std::{collections::BTreeMap, io::Write as _};

use anyhow::Context;
use flate2::{Compression, GzBuilder};

use super::digest::Digest;

/// The gzip level of every layer. Changing it changes every layer digest.
pub const GZIP_LEVEL: u32 = 6;

/// The user and group every service runs as (distroless' `nonroot`); numeric in the image config so Kubernetes
/// can check `runAsNonRoot` without reading `/etc/passwd`.
pub const NONROOT_ID: u64 = 65532;

/// When the base layer's contents last changed (2026-01-01T00:00:00Z), its entries' mtime, clamped to
/// `SOURCE_DATE_EPOCH` (reproducible-builds.org's clamping rule). Not the commit time itself: the base layer
/// stays byte-identical across releases, so registries keep one copy and pushes skip it. Bump it when the
/// contents below change.
const BASE_LAYER_EPOCH: u64 = 1_767_225_600;

const PASSWD: &str = "root:x:0:0:root:/root:/sbin/nologin\n\
                      nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n";
const GROUP: &str = "root:x:0:\nnonroot:x:65532:\n";
// Static glibc (≥ 2.34) has only the `files` and `dns` NSS modules built in; say so explicitly rather than
// rely on glibc's default order, which asks DNS before /etc/hosts.
const NSSWITCH: &str = "passwd: files\ngroup: files\nhosts: files dns\n";

/// One layer, compressed, with both of its digests.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The sha256 of the uncompressed tar, listed in the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
    /// The sha256 of [`Layer::gzip`], the blob's name and descriptor digest.
    pub digest: Digest,
    pub gzip: Vec<u8>,
    /// The config's `history[].created_by` for this layer.
    pub created_by: String,
}

/// One file or directory of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, `/`-separated, without `.` or `..` components or a trailing slash.
    path: String,
    mode: u32,
    /// Both uid and gid.
    owner: u64,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Directory,
    File(Vec<u8>),
}

impl Entry {
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry { path: path.to_owned(), mode, owner: 0, kind: Kind::Directory }
    }

    pub fn file(path: &str, mode: u32, contents: impl Into<Vec<u8>>) -> Entry {
        Entry { path: path.to_owned(), mode, owner: 0, kind: Kind::File(contents.into()) }
    }

    pub fn owned_by(self, id: u64) -> Entry {
        Entry { owner: id, ..self }
    }
}

/// The base layer every service image shares, byte for byte: the accounts, a home for `nonroot`, `/tmp`.
///
/// No CA bundle and no tzdata: the services speak TLS through reqwest's `rustls-tls`, whose roots are
/// `webpki-roots` compiled in (`APNS_CA_FILE` adds one from a mounted file), and they convert times with jiff's
/// bundled tz database (`tzdb-bundle-always`) or a fixed +09:00 offset.
pub fn base(source_date_epoch: u64) -> anyhow::Result<Layer> {
    let entries = vec![
        Entry::file("etc/group", 0o644, GROUP),
        Entry::file("etc/nsswitch.conf", 0o644, NSSWITCH),
        Entry::file("etc/passwd", 0o644, PASSWD),
        Entry::dir("home/nonroot", 0o700).owned_by(NONROOT_ID),
        Entry::dir("root", 0o700),
        Entry::dir("tmp", 0o1777),
    ];
    build(
        entries,
        BASE_LAYER_EPOCH.min(source_date_epoch),
        "xtask release: base (root and nonroot 65532, /etc/nsswitch.conf, /home/nonroot, /tmp)",
    )
}

/// The service's own layer: the binary alone, at `/app/<binary>`, mode 0755.
pub fn app(binary_name: &str, binary: Vec<u8>, source_date_epoch: u64) -> anyhow::Result<Layer> {
    build(
        vec![Entry::file(&format!("app/{binary_name}"), 0o755, binary)],
        source_date_epoch,
        &format!("xtask release: /app/{binary_name}"),
    )
}

/// Writes `entries` (plus any missing parent directory, root-owned 0755) as a sorted tar, gzips it and digests
/// both.
pub fn build(entries: Vec<Entry>, mtime: u64, created_by: &str) -> anyhow::Result<Layer> {
    let mut tree: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in entries {
        check_path(&entry.path)?;
        if let Some(previous) = tree.get(&entry.path)
            && previous != &entry
        {
            anyhow::bail!("layer entry `{}` is given twice, differently", entry.path);
        }
        tree.insert(entry.path.clone(), entry);
    }
    // Explicit parents: an extractor creates missing ones with its own idea of mode and owner.
    let parents: Vec<String> = tree
        .keys()
        .flat_map(|path| path.match_indices('/').map(|(at, _)| path[..at].to_owned()))
        .collect();
    for parent in parents {
        tree.entry(parent.clone()).or_insert_with(|| Entry::dir(&parent, 0o755));
    }

    // A `BTreeMap` iterates in byte order of the path, so parents come before their children.
    let mut tar = tar::Builder::new(Vec::new());
    for entry in tree.values() {
        let (name, contents, entry_type) = match &entry.kind {
            Kind::Directory => (format!("{}/", entry.path), &[][..], tar::EntryType::Directory),
            Kind::File(contents) => (entry.path.clone(), &contents[..], tar::EntryType::Regular),
        };
        let mut header = tar::Header::new_ustar();
        let ustar = header.as_ustar_mut().context("a ustar header")?;
        // Long names would need ustar's prefix field or a GNU extension; no path of ours comes close.
        anyhow::ensure!(name.len() <= ustar.name.len(), "layer path `{name}` is over 100 bytes");
        ustar.name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(entry_type);
        header.set_mode(entry.mode);
        header.set_uid(entry.owner);
        header.set_gid(entry.owner);
        header.set_mtime(mtime);
        header.set_size(contents.len() as u64);
        header.set_device_major(0)?;
        header.set_device_minor(0)?;
        header.set_cksum();
        tar.append(&header, contents)?;
    }
    let tar = tar.into_inner().context("failed to finish a layer tar")?;

    // Hash the tar on a second core while the first compresses it: assembly time is mostly these two.
    let (diff_id, gzip) = std::thread::scope(|scope| {
        let diff_id = scope.spawn(|| Digest::of(&tar));
        let mut encoder = GzBuilder::new()
            .mtime(0)
            .write(Vec::with_capacity(tar.len() / 2), Compression::new(GZIP_LEVEL));
        encoder.write_all(&tar)?;
        let gzip = encoder.finish()?;
        anyhow::Ok((diff_id.join().expect("hashing does not panic"), gzip))
    })?;
    Ok(Layer { diff_id, digest: Digest::of(&gzip), gzip, created_by: created_by.to_owned() })
}

fn check_path(path: &str) -> anyhow::Result<()> {
    let valid = !path.is_empty()
        && path.split('/').all(|part| !part.is_empty() && part != "." && part != "..");
    anyhow::ensure!(valid, "layer path `{path}` must be relative and normalized");
    Ok(())
}

/// An entry of a layer as an extractor sees it ([`entries`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Extracted {
    pub path: String,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub contents: Vec<u8>,
}

/// Reads a gzipped layer back as an extractor would, refusing anything but plain ustar files and directories
/// with empty user and group names: what tests and checks of a built image assert on.
pub fn entries(gzip: &[u8]) -> anyhow::Result<Vec<Extracted>> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(gzip));
    let mut seen = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let header = entry.header().clone();
        let path = String::from_utf8(header.path_bytes().into_owned())?;
        anyhow::ensure!(header.as_ustar().is_some(), "`{path}`: not a ustar header");
        let entry_type = header.entry_type();
        anyhow::ensure!(
            entry_type.is_file() || entry_type.is_dir(),
            "`{path}`: entry type {entry_type:?}"
        );
        anyhow::ensure!(
            header.username_bytes() == Some(&b""[..]) && header.groupname_bytes() == Some(&b""[..]),
            "`{path}`: named owner"
        );
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents)?;
        seen.push(Extracted {
            path,
            mode: header.mode()?,
            uid: header.uid()?,
            gid: header.gid()?,
            mtime: header.mtime()?,
            contents,
        });
    }
    Ok(seen)
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    fn read(gzip: &[u8]) -> Vec<Extracted> {
        entries(gzip).unwrap()
    }

    #[test]
    fn base_layer_has_the_accounts_and_modes() {
        let layer = base(2_000_000_000).unwrap();
        let seen = read(&layer.gzip);
        let summary: Vec<(&str, u32, u64)> =
            seen.iter().map(|entry| (entry.path.as_str(), entry.mode, entry.uid)).collect();
        assert_eq!(
            summary,
            [
                ("etc/", 0o755, 0),
                ("etc/group", 0o644, 0),
                ("etc/nsswitch.conf", 0o644, 0),
                ("etc/passwd", 0o644, 0),
                ("home/", 0o755, 0),
                ("home/nonroot/", 0o700, 65532),
                ("root/", 0o700, 0),
                ("tmp/", 0o1777, 0),
            ]
        );
        assert!(seen.iter().all(|entry| entry.uid == entry.gid));
        // Clamped: the base epoch is older than this SOURCE_DATE_EPOCH.
        assert!(seen.iter().all(|entry| entry.mtime == BASE_LAYER_EPOCH));
        let passwd = &seen.iter().find(|entry| entry.path == "etc/passwd").unwrap().contents;
        assert!(String::from_utf8_lossy(passwd).contains("nonroot:x:65532:65532:"));
    }

    /// Pins the compressor: if this fails after a flate2/miniz_oxide update (or a change to the base
    /// contents), every image digest changes; update the constant knowingly.
    #[test]
    fn base_layer_is_pinned() {
        let layer = base(2_000_000_000).unwrap();
        assert_eq!(
            (layer.diff_id.as_str(), layer.digest.as_str()),
            (
                "sha256:d4b3a711b58f5257315f7070a5d11fa497ae595564edb94ae32f80e71cd45d20",
                "sha256:d4498ec71ed2e5939804416965686ff320d263b3804aec6111cf65f90fca0c03"
            ),
        );
        // Before BASE_LAYER_EPOCH the mtime is clamped to the commit time, so the tar differs.
        assert_ne!(base(1_000_000_000).unwrap().diff_id, layer.diff_id);
    }

    #[test]
    fn app_layer_has_explicit_parents_one_mtime_and_no_pax() {
        let layer = app("hangang-api", b"\x7fELF...".to_vec(), 1_795_785_629).unwrap();
        let seen = read(&layer.gzip);
        let summary: Vec<(&str, u32, u64, u64)> = seen
            .iter()
            .map(|entry| (entry.path.as_str(), entry.mode, entry.uid, entry.mtime))
            .collect();
        assert_eq!(
            summary,
            [("app/", 0o755, 0, 1_795_785_629), ("app/hangang-api", 0o755, 0, 1_795_785_629)]
        );
        // No PAX ('x'/'g') or GNU long-name ('L') records anywhere: every header's typeflag is '0' or '5'.
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(&layer.gzip[..]).read_to_end(&mut tar).unwrap();
        assert_eq!(Digest::of(&tar), layer.diff_id);
        assert_eq!((tar[156], tar[512 + 156]), (b'5', b'0'));
    }

    #[test]
    fn gzip_header_has_no_time_or_name() {
        let layer = app("x", Vec::new(), 1).unwrap();
        // ID1 ID2 CM FLG MTIME(4) XFL OS: no FNAME/FCOMMENT/FEXTRA flags, mtime 0, OS "unknown".
        assert_eq!(&layer.gzip[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&layer.gzip[4..8], &[0, 0, 0, 0]);
        assert_eq!(layer.gzip[9], 255);
    }

    #[test]
    fn entries_are_sorted_and_checked() {
        let entries = vec![
            Entry::file("b/z", 0o644, "z"),
            Entry::file("a-b", 0o644, "ab"),
            Entry::file("a/c", 0o600, "c"),
        ];
        let layer = build(entries, 7, "test").unwrap();
        let paths: Vec<String> = read(&layer.gzip).into_iter().map(|entry| entry.path).collect();
        assert_eq!(paths, ["a/", "a-b", "a/c", "b/", "b/z"]);

        let twice = vec![Entry::file("a", 0o644, "1"), Entry::file("a", 0o644, "2")];
        assert!(build(twice, 0, "test").is_err());
        assert!(build(vec![Entry::file("/etc/x", 0o644, "")], 0, "test").is_err());
        assert!(build(vec![Entry::file("a/../b", 0o644, "")], 0, "test").is_err());
    }
}
