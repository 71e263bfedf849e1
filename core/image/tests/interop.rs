//! Interop with podman and skopeo (skipped with a printed reason if missing).

mod common;

use std::path::Path;
use std::process::Command;

use berth_image::{ImageError, ImageStore, Reference};
use common::*;

type Rewrite<'a> = &'a dyn Fn(&str, Vec<u8>) -> Option<Vec<u8>>;

fn podman(root: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("podman")
        .arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("runroot"))
        .arg("--storage-driver")
        .arg("vfs")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A cgroup parent for `podman run` below this process's own cgroup in every v1 hierarchy
/// (podman's default, `/libpod_parent`, would be created at each hierarchy's root), removed
/// on drop with every directory it had to create. `None` when the hierarchies put this
/// process on unrelated paths, so no single path is below all of them.
struct PodmanCgroupParent {
    path: String,
    created: Vec<std::path::PathBuf>,
}

impl PodmanCgroupParent {
    fn new() -> Option<Self> {
        let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let own: Vec<&str> = text
            .lines()
            .filter_map(|l| l.splitn(3, ':').nth(2))
            .collect();
        let deepest = own.iter().copied().max_by_key(|p| p.len())?;
        let nested = |p: &str| p == "/" || deepest == p || deepest.starts_with(&format!("{p}/"));
        if !own.iter().all(|p| nested(p)) {
            return None;
        }
        let path = format!(
            "{}/bt-podman-{}",
            deepest.trim_end_matches('/'),
            std::process::id()
        );
        // Every directory of the path, in every hierarchy, that does not exist yet: podman
        // (runc) creates them, we remove them.
        let mut created = Vec::new();
        for mount in std::fs::read_dir("/sys/fs/cgroup").ok()?.flatten() {
            let mut dir = mount.path();
            for part in path.trim_start_matches('/').split('/') {
                dir.push(part);
                if !dir.exists() {
                    created.push(dir.clone());
                }
            }
        }
        Some(Self { path, created })
    }
}

impl Drop for PodmanCgroupParent {
    fn drop(&mut self) {
        // Deepest first; podman's own children (conmon, libpod-ID) inside ours too.
        for dir in self.created.iter().rev() {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for e in entries.flatten() {
                    if e.path().is_dir() {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn berth_save_loads_in_podman() {
    if !have("podman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = ImageStore::open(&dir.path().join("images")).unwrap();
    let img = store
        .import(
            &mut &busybox_rootfs()[..],
            Some(&Reference::parse("localhost/bt-save:1").unwrap()),
            &["CMD [\"sh\"]".into()],
        )
        .unwrap();
    let archive = dir.path().join("out.tar");
    let mut f = std::fs::File::create(&archive).unwrap();
    store.save(&["localhost/bt-save:1"], &mut f).unwrap();
    drop(f);
    podman(dir.path(), &["load", "-i", archive.to_str().unwrap()]);
    let out = podman(dir.path(), &["image", "inspect", "localhost/bt-save:1"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let layers: Vec<String> = v[0]["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers, img.diff_ids());
    assert_eq!(
        v[0]["Id"].as_str().unwrap(),
        img.id.trim_start_matches("sha256:")
    );
    // …and runs there. This host has no CAP_SYS_RESOURCE to raise rlimits and hybrid
    // cgroups: podman needs runc and no default ulimits (its own config, not the system's).
    let conf = dir.path().join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
    )
    .unwrap();
    let cgroup = PodmanCgroupParent::new();
    if !berth_testkit::require(
        cgroup.is_some(),
        "one cgroup path below this process's own in every hierarchy (for podman's cgroup parent)",
        "run the tests from a cgroup whose hierarchies nest",
    ) {
        return;
    }
    let Some(cgroup) = cgroup else { return };
    let out = Command::new("podman")
        .arg("--root")
        .arg(dir.path().join("root"))
        .arg("--runroot")
        .arg(dir.path().join("runroot"))
        .args([
            "--storage-driver",
            "vfs",
            "run",
            "--rm",
            "--network",
            "none",
            "--cgroup-parent",
            &cgroup.path,
        ])
        .args(["localhost/bt-save:1", "sh", "-c", "echo ran-in-podman"])
        .env("CONTAINERS_CONF", &conf)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman run of a berth-saved image: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ran-in-podman");
    // Our own archive loads back too (as a docker-archive).
    let other = ImageStore::open(&dir.path().join("other")).unwrap();
    let loaded = other.load(&archive).unwrap();
    assert_eq!(loaded[0].diff_ids(), img.diff_ids());
    assert_eq!(loaded[0].tags, img.tags);
}

#[test]
fn podman_archives_load_in_berth() {
    if !have("podman") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, busybox_rootfs()).unwrap();
    podman(
        dir.path(),
        &["import", rootfs.to_str().unwrap(), "localhost/bt-pod:1"],
    );
    let store = ImageStore::open(&dir.path().join("images")).unwrap();
    for format in ["oci-archive", "docker-archive"] {
        let archive = dir.path().join(format!("{format}.tar"));
        podman(
            dir.path(),
            &[
                "save",
                "--format",
                format,
                "-o",
                archive.to_str().unwrap(),
                "localhost/bt-pod:1",
            ],
        );
        let out = podman(dir.path(), &["image", "inspect", "localhost/bt-pod:1"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let diffs: Vec<String> = v[0]["RootFS"]["Layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect();
        let images = store.load(&archive).unwrap();
        assert_eq!(images.len(), 1, "{format}");
        let img = &images[0];
        assert_eq!(img.diff_ids(), diffs, "{format}");
        // Layer blobs are byte-identical to the archive's.
        let mut ar = tar::Archive::new(std::fs::File::open(&archive).unwrap());
        let mut names = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            names.push(berth_image::sha256_digest(&data));
        }
        for l in img.manifest.layers() {
            assert!(
                names.contains(&l.digest().to_string()),
                "{format}: {}",
                l.digest()
            );
        }
        eprintln!("{format}: tags {:?}", img.tags);
        if format == "docker-archive" {
            assert_eq!(
                img.tags,
                vec![Reference::parse("localhost/bt-pod:1").unwrap()]
            );
        }
        // gzip-compressed archives load too.
        let gz = dir.path().join(format!("{format}.tar.gz"));
        std::fs::write(&gz, gzip(&std::fs::read(&archive).unwrap())).unwrap();
        assert_eq!(store.load(&gz).unwrap()[0].id, img.id);
    }
}

#[test]
fn skopeo_reads_the_store() {
    if !have("skopeo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    let store = ImageStore::open(&root).unwrap();
    let img = store
        .import(
            &mut &busybox_rootfs()[..],
            Some(&Reference::parse("busybox:1.36").unwrap()),
            &[],
        )
        .unwrap();
    let out = Command::new("skopeo")
        .arg("inspect")
        .arg(format!(
            "oci:{}:docker.io/library/busybox:1.36",
            root.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"].as_str().unwrap(), img.manifest_digest);
    assert_eq!(
        v["Layers"][0].as_str().unwrap(),
        img.manifest.layers()[0].digest().to_string()
    );
}

#[test]
fn bad_archives_are_rejected_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("images");
    let store = ImageStore::open(&root).unwrap();
    let img = store
        .import(
            &mut &busybox_rootfs()[..],
            Some(&Reference::parse("localhost/x:1").unwrap()),
            &[],
        )
        .unwrap();
    let mut good = Vec::new();
    store.save(&["localhost/x:1"], &mut good).unwrap();
    let other = ImageStore::open(&dir.path().join("other")).unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    // Neither format.
    let plain = write("plain.tar", &busybox_rootfs());
    assert!(matches!(
        other.load(&plain).unwrap_err(),
        ImageError::UnknownArchive { .. }
    ));
    let junk = write("junk", b"definitely not an archive at all");
    assert!(matches!(
        other.load(&junk).unwrap_err(),
        ImageError::UnknownArchive { .. }
    ));
    // Truncated.
    let trunc = write("trunc.tar", &good[..good.len() / 3]);
    assert!(other.load(&trunc).is_err());
    // Corrupted layer (digest mismatch) and missing blob: rewrite the archive.
    let layer_hex = img.manifest.layers()[0].digest().digest().to_string();
    let rewrite = |f: Rewrite| {
        let mut b = tar::Builder::new(Vec::new());
        let mut ar = tar::Archive::new(&good[..]);
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            if let Some(d) = f(&name, data) {
                let mut h = tar::Header::new_ustar();
                h.set_size(d.len() as u64);
                h.set_mode(0o644);
                b.append_data(&mut h, &name, &d[..]).unwrap();
            }
        }
        b.into_inner().unwrap()
    };
    let corrupt = write(
        "corrupt.tar",
        &rewrite(&|n, mut d| {
            if n.ends_with(&layer_hex) {
                d[1000] ^= 1;
            }
            Some(d)
        }),
    );
    let err = other.load(&corrupt).unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    let missing = write(
        "missing.tar",
        &rewrite(&|n, d| (!n.ends_with(&layer_hex)).then_some(d)),
    );
    let err = other.load(&missing).unwrap_err();
    assert!(matches!(err, ImageError::MissingBlob { .. }), "{err}");
    // Nothing half-written.
    assert!(other.list().unwrap().is_empty());
    assert!(std::fs::read_dir(dir.path().join("other/blobs/sha256"))
        .unwrap()
        .next()
        .is_none());
    assert!(temp_files(&dir.path().join("other")).is_empty());
}
