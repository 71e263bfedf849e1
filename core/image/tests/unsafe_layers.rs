//! Layers the unpacker would refuse ("unsafe layer entry") are refused when they enter
//! the store (import, docker-archive and oci-archive load), naming the entry and the
//! layer, and leave the store as it was. Legitimate links still import and unpack.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use berth_image::{ImageError, ImageStore, Reference};
use common::{busybox_rootfs, gzip, temp_files, zstd};
use sha2::Digest;

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// One raw tar header + data, name and link name written unchecked (the tar crate's
/// setters refuse `..`, which these tests need).
fn raw_entry(b: &mut Vec<u8>, name: &str, kind: tar::EntryType, link: &str, data: &[u8]) {
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(data);
    b.resize(b.len() + (512 - data.len() % 512) % 512, 0);
}

type Entry = (&'static str, tar::EntryType, &'static str);

fn layer(entries: &[Entry]) -> Vec<u8> {
    let mut b = Vec::new();
    for (name, kind, link) in entries {
        let data: &[u8] = if *kind == tar::EntryType::Regular {
            b"pwned\n"
        } else {
            b""
        };
        raw_entry(&mut b, name, *kind, link, data);
    }
    b.resize(b.len() + 1024, 0);
    b
}

/// Each malicious kind: a name, its entries, and the entry the refusal must name.
fn malicious() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    use tar::EntryType::*;
    vec![
        (
            "dotdot",
            layer(&[("etc/", Directory, ""), ("../escape", Regular, "")]),
            "../escape",
        ),
        (
            "symlink then write",
            layer(&[("a", Symlink, "/etc"), ("a/passwd", Regular, "")]),
            "a/passwd",
        ),
        (
            "hardlink out",
            layer(&[("shadow", Link, "../../etc/shadow")]),
            "shadow",
        ),
        (
            "hardlink to what the layer lacks",
            layer(&[("shadow", Link, "/etc/shadow")]),
            "shadow",
        ),
        (
            "hardlink through symlink",
            layer(&[("a", Symlink, "/etc"), ("shadow", Link, "a/shadow")]),
            "shadow",
        ),
        (
            "whiteout of ..",
            layer(&[(".wh...", Regular, "")]),
            ".wh...",
        ),
        (
            "whiteout of .",
            layer(&[("etc/", Directory, ""), ("etc/.wh..", Regular, "")]),
            "etc/.wh..",
        ),
        (
            "whiteout as directory",
            layer(&[(".wh..wh..opq/x", Regular, "")]),
            ".wh..wh..opq/x",
        ),
        (
            "opaque through symlink",
            layer(&[("a", Symlink, "/etc"), ("a/.wh..wh..opq", Regular, "")]),
            "a/.wh..wh..opq",
        ),
    ]
}

fn blobs(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root.join("blobs/sha256"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A store holding one good image, and its state to compare against.
fn store_with_one_image(dir: &Path) -> (ImageStore, BTreeSet<String>) {
    let store = ImageStore::open(dir).unwrap();
    store
        .import(
            &mut &busybox_rootfs()[..],
            Some(&r("localhost/good:1")),
            &[],
        )
        .unwrap();
    let before = blobs(dir);
    (store, before)
}

fn assert_unchanged(store: &ImageStore, dir: &Path, before: &BTreeSet<String>, what: &str) {
    let list = store.list().unwrap();
    assert_eq!(list.len(), 1, "{what}: image ls changed");
    assert_eq!(list[0].tags, vec![r("localhost/good:1")], "{what}");
    assert_eq!(&blobs(dir), before, "{what}: blobs changed");
    assert!(temp_files(dir).is_empty(), "{what}: {:?}", temp_files(dir));
}

fn assert_refused(err: &ImageError, entry: &str, layer_named: &str, what: &str) {
    let msg = err.to_string();
    assert!(
        matches!(err, ImageError::UnsafeLayer { .. }),
        "{what}: {msg}"
    );
    assert!(msg.contains(&format!("{entry:?}")), "{what}: {msg}");
    assert!(msg.contains(layer_named), "{what}: {msg}");
}

#[test]
fn import_refuses_unsafe_layers_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, before) = store_with_one_image(dir.path());
    for (what, tar, entry) in malicious() {
        for (codec, data) in [
            ("tar", tar.clone()),
            ("gzip", gzip(&tar)),
            ("zstd", zstd(&tar)),
        ] {
            let what = format!("{what} ({codec})");
            let err = store
                .import(&mut &data[..], Some(&r("localhost/bad:1")), &[])
                .unwrap_err();
            eprintln!("{what}: {err}");
            assert_refused(&err, entry, "rootfs tarball", &what);
            assert_unchanged(&store, dir.path(), &before, &what);
        }
    }
}

fn add(b: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    b.append_data(&mut h, name, data).unwrap();
}

/// Adds `data` as `blobs/sha256/<hex>`; returns its digest.
fn blob(b: &mut tar::Builder<Vec<u8>>, data: &[u8]) -> String {
    let d = sha(data);
    add(b, &format!("blobs/sha256/{}", &d[7..]), data);
    d
}

/// A docker-archive (`docker save` layout) of images given as (tag, layers).
fn docker_archive(images: &[(&str, Vec<Vec<u8>>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    for (i, (tag, layers)) in images.iter().enumerate() {
        let mut names = Vec::new();
        for (j, l) in layers.iter().enumerate() {
            let name = format!("img{i}/layer{j}.tar");
            add(&mut b, &name, l);
            names.push(name);
        }
        let diff_ids: Vec<String> = layers.iter().map(|l| sha(l)).collect();
        let config = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let cname = format!("img{i}.json");
        add(&mut b, &cname, &serde_json::to_vec(&config).unwrap());
        manifest.push(serde_json::json!({"Config": cname, "RepoTags": [tag], "Layers": names}));
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

/// An oci-archive of one image with `layers` (stored as given, media type by content).
fn oci_archive(tag: &str, layers: &[Vec<u8>], diff_ids: &[String]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut descs = Vec::new();
    for l in layers {
        let mt = if l.starts_with(&[0x1f, 0x8b]) {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else if l.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        let d = blob(&mut b, l);
        descs.push(serde_json::json!({"mediaType": mt, "digest": d, "size": l.len()}));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let cd = blob(&mut b, &config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    let md = blob(&mut b, &manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": md, "size": manifest.len(),
            "annotations": {"io.containerd.image.name": tag},
        }],
    });
    add(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    add(&mut b, "index.json", &serde_json::to_vec(&index).unwrap());
    b.into_inner().unwrap()
}

#[test]
fn load_refuses_unsafe_layers_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, before) = store_with_one_image(dir.path());
    let good = busybox_rootfs();
    for (what, tar, entry) in malicious() {
        // docker-archive: a good image first, then one whose second layer is malicious:
        // neither is loaded.
        let archive = docker_archive(&[
            ("localhost/first:1", vec![good.clone()]),
            ("localhost/bad:1", vec![good.clone(), tar.clone()]),
        ]);
        let path = dir.path().join("docker.tar");
        std::fs::write(&path, archive).unwrap();
        let err = store.load(&path).unwrap_err();
        eprintln!("{what} (docker-archive): {err}");
        assert_refused(&err, entry, "layer img1/layer1.tar in", what);
        assert_unchanged(&store, dir.path(), &before, what);

        // oci-archive, the malicious layer gzip-compressed.
        let gz = gzip(&tar);
        let archive = oci_archive(
            "localhost/bad:2",
            &[good.clone(), gz.clone()],
            &[sha(&good), sha(&tar)],
        );
        let path = dir.path().join("oci.tar");
        std::fs::write(&path, archive).unwrap();
        let err = store.load(&path).unwrap_err();
        eprintln!("{what} (oci-archive): {err}");
        assert_refused(&err, entry, &format!("layer {}", sha(&gz)), what);
        assert_unchanged(&store, dir.path(), &before, what);
    }
}

/// Corruption is reported as such even when the corrupted bytes also break the tar.
#[test]
fn a_diff_id_mismatch_is_reported_before_the_content_check() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_one_image(dir.path());
    let tar = layer(&[
        ("a", tar::EntryType::Symlink, "/etc"),
        ("a/passwd", tar::EntryType::Regular, ""),
    ]);
    let mut archive = docker_archive(&[("localhost/bad:1", vec![tar])]);
    // Point the config at another diff_id: the layer is not what the image says.
    let text = String::from_utf8_lossy(&archive).into_owned();
    let at = text.find("sha256:").unwrap();
    archive[at + 7] = if archive[at + 7] == b'0' { b'1' } else { b'0' };
    let path = dir.path().join("a.tar");
    std::fs::write(&path, archive).unwrap();
    let err = store.load(&path).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

/// Absolute and climbing symlinks, writes through a symlink inside the layer, hard links
/// by absolute path (and to a symlink), whiteouts and opaque markers: all legitimate.
#[test]
fn legitimate_links_import_load_and_unpack() {
    use tar::EntryType::*;
    let tar = {
        let mut b = Vec::new();
        raw_entry(&mut b, "etc/", Directory, "", b"");
        raw_entry(&mut b, "etc/.wh..wh..opq", Regular, "", b"");
        raw_entry(&mut b, "etc/shadow", Regular, "", b"root:*:1::::::\n");
        raw_entry(&mut b, "etc/.wh.gone", Regular, "", b"");
        raw_entry(&mut b, "usr/lib/", Directory, "", b"");
        raw_entry(&mut b, "usr/lib/os-release", Symlink, "../../etc/os", b"");
        raw_entry(&mut b, "lib", Symlink, "usr/lib", b"");
        raw_entry(&mut b, "lib/libc.so", Regular, "", b"ELF");
        raw_entry(&mut b, "shadow-abs", Symlink, "/etc/shadow", b"");
        raw_entry(&mut b, "/shadow-hard", Link, "/etc/shadow", b"");
        raw_entry(&mut b, "libc-hard", Link, "lib/libc.so", b"");
        raw_entry(&mut b, "abs-hard", Link, "shadow-abs", b"");
        b.resize(b.len() + 1024, 0);
        b
    };
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("images")).unwrap();
    let img = store
        .import(&mut &zstd(&tar)[..], Some(&r("localhost/links:1")), &[])
        .unwrap();
    let path = dir.path().join("links.tar");
    std::fs::write(
        &path,
        docker_archive(&[("localhost/links:2", vec![tar.clone()])]),
    )
    .unwrap();
    let loaded = store.load(&path).unwrap();
    assert_eq!(loaded.len(), 1);

    let root = dir.path().join("rootfs");
    std::fs::create_dir(&root).unwrap();
    let mut reader = store.layer_reader(&img, 0).unwrap();
    berth_layer_tar::apply_layer(&root, &mut reader, &mut berth_layer_tar::DeletingWhiteouts)
        .unwrap();
    use std::os::unix::fs::MetadataExt;
    let ino = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap().ino();
    assert_eq!(ino("shadow-hard"), ino("etc/shadow"));
    assert_eq!(ino("libc-hard"), ino("usr/lib/libc.so"));
    assert_eq!(ino("abs-hard"), ino("shadow-abs"));
    assert_eq!(
        std::fs::read_link(root.join("shadow-abs")).unwrap(),
        Path::new("/etc/shadow")
    );
    assert_eq!(std::fs::read(root.join("usr/lib/libc.so")).unwrap(), b"ELF");
}
