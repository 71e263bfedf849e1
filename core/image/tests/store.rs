//! Store behaviour: import, resolve, tags, rmi, prune, verification, bad input.

mod common;

use std::io::Read;

use berth_image::{chain_ids, ImageError, ImageStore, Reference};
use common::*;

fn r(s: &str) -> Reference {
    Reference::parse(s).unwrap()
}

fn never(_: &berth_image::Image) -> bool {
    false
}

#[test]
fn import_uncompressed_keeps_layer_as_is() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("images")).unwrap();
    let tar = busybox_rootfs();
    let img = store
        .import(
            &mut &tar[..],
            Some(&r("localhost/bb:1")),
            &["CMD [\"sh\"]".into(), "ENV A=1".into()],
        )
        .unwrap();
    let layer = &img.manifest.layers()[0];
    assert_eq!(
        layer.media_type().to_string(),
        "application/vnd.oci.image.layer.v1.tar"
    );
    assert_eq!(layer.digest().to_string(), berth_image::sha256_digest(&tar));
    assert_eq!(img.diff_ids(), vec![layer.digest().to_string()]);
    assert_eq!(img.chain_ids(), chain_ids(&img.diff_ids()));
    assert_eq!(img.size, tar.len() as u64);
    assert_eq!(img.tags, vec![r("localhost/bb:1")]);
    let cfg = img.config.config().clone().unwrap();
    assert_eq!(cfg.cmd().clone().unwrap(), vec!["sh"]);
    assert_eq!(cfg.env().clone().unwrap(), vec!["A=1"]);
    assert!(img.created().is_some());
    assert_eq!(img.history().len(), 1);
    // Blob file is byte-identical to the input.
    assert_eq!(
        std::fs::read(store.blob_path(layer.digest().as_ref()).unwrap()).unwrap(),
        tar
    );
    // Layer reader returns the tar.
    let mut out = Vec::new();
    store
        .layer_reader(&img, 0)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, tar);
    // index.json carries the full reference.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("images/index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "localhost/bb:1"
    );
    assert!(dir.path().join("images/oci-layout").exists());
}

#[test]
fn import_compressed_keeps_blob_and_computes_diff_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let tar = busybox_rootfs();
    let diff = berth_image::sha256_digest(&tar);
    for (data, mt) in [
        (gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
        (zstd(&tar), "application/vnd.oci.image.layer.v1.tar+zstd"),
    ] {
        let img = store.import(&mut &data[..], None, &[]).unwrap();
        let layer = &img.manifest.layers()[0];
        assert_eq!(layer.media_type().to_string(), mt);
        assert_eq!(
            layer.digest().to_string(),
            berth_image::sha256_digest(&data)
        );
        assert_eq!(img.diff_ids(), vec![diff.clone()]);
        let mut out = Vec::new();
        store
            .layer_reader(&img, 0)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, tar);
        assert!(img.tags.is_empty());
    }
}

#[test]
fn layer_reader_detects_corruption_and_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let tar = busybox_rootfs();
    for data in [tar.clone(), gzip(&tar), zstd(&tar)] {
        let img = store.import(&mut &data[..], None, &[]).unwrap();
        let path = store
            .blob_path(img.manifest.layers()[0].digest().as_ref())
            .unwrap();
        // Flip a byte in the middle.
        let mut bad = data.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x55;
        std::fs::write(&path, &bad).unwrap();
        let err = store
            .layer_reader(&img, 0)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        eprintln!("corrupt: {err}");
        // Truncate.
        std::fs::write(&path, &data[..data.len() - 100]).unwrap();
        let err = store
            .layer_reader(&img, 0)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        eprintln!("truncated: {err}");
        std::fs::write(&path, &data).unwrap();
        store
            .layer_reader(&img, 0)
            .unwrap()
            .read_to_end(&mut Vec::new())
            .unwrap();
    }
}

#[test]
fn corrupt_config_is_detected_on_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let img = store
        .import(&mut &busybox_rootfs()[..], Some(&r("x:1")), &[])
        .unwrap();
    let path = store.blob_path(&img.id).unwrap();
    let mut cfg = std::fs::read(&path).unwrap();
    cfg[0] = b' ';
    std::fs::write(&path, &cfg).unwrap();
    let err = store.resolve("x:1").unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
}

#[test]
fn bad_imports_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let tar = busybox_rootfs();
    let gz = gzip(&tar);
    let zs = zstd(&tar);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not tar", b"hello, this is not a tarball".to_vec()),
        ("truncated tar", tar[..tar.len() / 2 + 17].to_vec()),
        ("truncated gzip", gz[..gz.len() / 2].to_vec()),
        ("corrupt gzip", {
            let mut g = gz.clone();
            let n = g.len();
            g[n / 2] ^= 0xff;
            g
        }),
        ("truncated zstd", zs[..zs.len() / 2].to_vec()),
        ("bzip2", b"BZh91AY&SY".to_vec()),
    ];
    for (what, data) in cases {
        let err = store
            .import(&mut &data[..], Some(&r("bad:1")), &[])
            .unwrap_err();
        eprintln!("{what}: {err}");
        assert!(
            matches!(err, ImageError::InvalidTar { .. } | ImageError::Read { .. }),
            "{what}: {err}"
        );
    }
    let err = store
        .import(&mut &tar[..], None, &["RUN ls".into()])
        .unwrap_err();
    assert!(matches!(err, ImageError::InvalidChange { .. }));
    assert!(store.list().unwrap().is_empty());
    assert!(std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
    assert!(
        temp_files(dir.path()).is_empty(),
        "{:?}",
        temp_files(dir.path())
    );
}

#[test]
fn resolve_by_tag_digest_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let img = store
        .import(&mut &busybox_rootfs()[..], Some(&r("busybox")), &[])
        .unwrap();
    for q in [
        "busybox".to_string(),
        "busybox:latest".to_string(),
        "docker.io/library/busybox:latest".to_string(),
        img.id.clone(),
        img.id.trim_start_matches("sha256:").to_string(),
        img.short_id().to_string(),
        img.short_id()[..5].to_string(),
        format!("busybox@{}", img.manifest_digest),
    ] {
        assert_eq!(store.resolve(&q).unwrap().id, img.id, "{q}");
    }
    match store.resolve("nosuch:tag").unwrap_err() {
        ImageError::NotFound(s) => assert_eq!(s, "nosuch:tag"),
        e => panic!("{e}"),
    }
    assert!(matches!(
        store.resolve("Bad Name").unwrap_err(),
        ImageError::InvalidReference { .. }
    ));
    assert!(matches!(
        store.resolve(&"0".repeat(64)).unwrap_err(),
        ImageError::NotFound(_)
    ));
}

#[test]
fn tags_untag_rmi_and_gc() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let a = store
        .import(&mut &busybox_rootfs()[..], Some(&r("a:1")), &[])
        .unwrap();
    store.tag("a:1", &r("a:2")).unwrap();
    store.tag(a.short_id(), &r("localhost/b:x")).unwrap();
    assert!(store
        .tag("a:1", &r(&format!("a@{}", a.manifest_digest)))
        .is_err());
    let img = store.resolve("a:2").unwrap();
    assert_eq!(img.tags.len(), 3);
    assert_eq!(store.list().unwrap().len(), 1);

    // By id with several tags: refused without force.
    assert!(matches!(
        store.remove(a.short_id(), &never, false).unwrap_err(),
        ImageError::MultipleTags { .. }
    ));
    // By tag with other tags left: untag only.
    assert_eq!(
        store.remove("a:2", &never, false).unwrap(),
        vec!["Untagged: a:2"]
    );
    assert_eq!(
        store.remove("localhost/b:x", &never, false).unwrap(),
        vec!["Untagged: localhost/b:x"]
    );
    // In use: refused.
    let busy = |_: &berth_image::Image| true;
    assert!(matches!(
        store.remove("a:1", &busy, false).unwrap_err(),
        ImageError::InUse { .. }
    ));
    // Last tag: untag + delete + GC.
    let out = store.remove("a:1", &never, false).unwrap();
    assert_eq!(
        out,
        vec!["Untagged: a:1".to_string(), format!("Deleted: {}", a.id)]
    );
    assert!(store.list().unwrap().is_empty());
    assert!(std::fs::read_dir(dir.path().join("blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
    assert!(matches!(
        store.remove("a:1", &never, false).unwrap_err(),
        ImageError::NotFound(_)
    ));
}

#[test]
fn moving_a_tag_leaves_dangling_image_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let one = store
        .import(
            &mut &generated_rootfs(2, 1000, 1)[..],
            Some(&r("app:latest")),
            &[],
        )
        .unwrap();
    let two = store
        .import(
            &mut &generated_rootfs(2, 1000, 2)[..],
            Some(&r("app:latest")),
            &[],
        )
        .unwrap();
    let list = store.list().unwrap();
    assert_eq!(list.len(), 2);
    let old = list.iter().find(|i| i.id == one.id).unwrap();
    assert!(old.tags.is_empty());
    assert_eq!(store.resolve("app").unwrap().id, two.id);
    // Prune removes only the dangling one unless it is in use.
    let keep_old = |i: &berth_image::Image| i.id == one.id;
    assert!(store.prune(false, &keep_old).unwrap().is_empty());
    let out = store.prune(false, &never).unwrap();
    assert_eq!(out, vec![format!("Deleted: {}", one.id)]);
    assert_eq!(store.list().unwrap().len(), 1);
    // create_image moving a tag (build/commit path).
    let layer = two.manifest.layers()[0].clone();
    let mut cfg = two.config.clone();
    cfg.set_author(Some("me".into()));
    let three = store
        .create_image(cfg, vec![layer], &[r("app:latest"), r("app:v3")])
        .unwrap();
    assert_eq!(three.tags.len(), 2);
    assert!(store.resolve(&two.id).unwrap().tags.is_empty());
    let out = store.prune(true, &never).unwrap();
    assert_eq!(
        out.iter().filter(|l| l.starts_with("Deleted:")).count(),
        2,
        "{out:?}"
    );
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn write_blob_dedups_and_create_image_checks_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(dir.path()).unwrap();
    let tar = busybox_rootfs();
    let d1 = store
        .write_blob(&mut &tar[..], "application/vnd.oci.image.layer.v1.tar")
        .unwrap();
    let d2 = store
        .write_blob(&mut &tar[..], "application/vnd.oci.image.layer.v1.tar")
        .unwrap();
    assert_eq!(d1, d2);
    assert_eq!(d1.size(), tar.len() as u64);
    let img = store.import(&mut &tar[..], None, &[]).unwrap();
    let mut missing = d1.clone();
    missing.set_digest(berth_image::sha256_digest(b"nope").parse().unwrap());
    let err = store
        .create_image(img.config.clone(), vec![missing], &[])
        .unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    let mut odd = d1.clone();
    odd.set_media_type("application/x-weird".into());
    let err = store
        .create_image(img.config.clone(), vec![odd], &[])
        .unwrap_err();
    assert!(matches!(err, ImageError::UnknownMediaType { .. }), "{err}");
}

#[test]
fn concurrent_threads_keep_store_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    ImageStore::open(&root).unwrap();
    let handles: Vec<_> = (0..6)
        .map(|t| {
            let root = root.clone();
            std::thread::spawn(move || {
                let store = ImageStore::open(&root).unwrap();
                for i in 0..4 {
                    let tar = generated_rootfs(3, 4096, (t * 10 + i) as u64);
                    let name = r(&format!("localhost/t{t}:{i}"));
                    store.import(&mut &tar[..], Some(&name), &[]).unwrap();
                    store
                        .tag(
                            &name.to_string(),
                            &r(&format!("localhost/shared:{}", i % 2)),
                        )
                        .unwrap();
                    if i % 2 == 1 {
                        store.remove(&name.to_string(), &never, false).unwrap();
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let store = ImageStore::open(&root).unwrap();
    store.cleanup().unwrap();
    check_consistent(&store, &root);
    let tags: usize = store.list().unwrap().iter().map(|i| i.tags.len()).sum();
    // 6 threads * 2 kept own tags + the two shared tags.
    assert_eq!(tags, 6 * 2 + 2);
}

/// Every index entry resolves and every layer verifies; no stray blobs after cleanup.
pub fn check_consistent(store: &ImageStore, root: &std::path::Path) {
    let images = store.list().unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join("index.json")).unwrap()).unwrap();
    let mut digests: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap().to_string())
        .collect();
    digests.sort();
    digests.dedup();
    assert_eq!(
        digests.len(),
        images.len(),
        "unreadable images in index.json"
    );
    let mut referenced = std::collections::HashSet::new();
    for img in &images {
        referenced.insert(img.manifest_digest.clone());
        referenced.insert(img.id.clone());
        for (i, l) in img.manifest.layers().iter().enumerate() {
            referenced.insert(l.digest().to_string());
            store
                .layer_reader(img, i)
                .unwrap()
                .read_to_end(&mut Vec::new())
                .unwrap();
        }
    }
    for e in std::fs::read_dir(root.join("blobs/sha256")).unwrap() {
        let name = format!("sha256:{}", e.unwrap().file_name().to_string_lossy());
        assert!(referenced.contains(&name), "stray blob {name}");
    }
}
