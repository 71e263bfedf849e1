//! The storage suite: the containerd-snapshotter contract of [`StorageDriver`] as berth
//! relies on it. Needs root (mounts, owners, device nodes).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_abi::{ErrorKind, SnapshotKind, StorageDriver};
use berth_layer_tar::testing::{build_full_tree, manifest, tar_names};

use crate::{temp_dir, Case, Suite};

/// The cases, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "snapshots are isolated, layers unchanged",
            run: isolation,
        },
        Case {
            name: "deletions become whiteouts",
            run: whiteouts_in_diff,
        },
        Case {
            name: "diff then apply reproduces every file type",
            run: round_trip,
        },
        Case {
            name: "200 stacked layers mount",
            run: deep_chain,
        },
        Case {
            name: "remove leaves nothing behind",
            run: remove_leaves_nothing,
        },
        Case {
            name: "malicious layers are refused",
            run: malicious_refused,
        },
        Case {
            name: "cleanup sweeps half-created objects",
            run: cleanup_sweeps_half_created,
        },
    ]
}

/// A fresh instance of the driver with its own state dir under a `bt-conf-` temp dir.
pub struct Harness {
    pub driver: Arc<dyn StorageDriver>,
    pub state: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub fn new(suite: &Suite) -> Harness {
        let dir = temp_dir(&format!("st-{}", suite.plugin.name));
        let ctx = suite.context(dir.path());
        let state = PathBuf::from(&ctx.state_dir);
        let driver = suite
            .plugin
            .storage(ctx)
            .unwrap_or_else(|e| panic!("the constructor failed: {e}"));
        Harness { driver, state, dir }
    }

    /// A fresh mount point below the test's temp dir.
    pub fn mount_point(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(format!("mnt-{name}"));
        std::fs::create_dir_all(&p).expect("mount point");
        p
    }

    /// Mounts `key` at a new mount point; the guard unmounts on drop (also on panic).
    pub fn mount(&self, key: &str, name: &str) -> MountGuard {
        let target = self.mount_point(name);
        self.driver
            .mount(key, &target.display().to_string())
            .unwrap_or_else(|e| panic!("mount {key}: {e}"));
        MountGuard {
            driver: self.driver.clone(),
            key: key.to_string(),
            target,
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Anything a failed test left mounted below its temp dir.
        if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
            let base = self.dir.path().display().to_string();
            let mut points: Vec<String> = text
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
                .filter(|p| p.starts_with(&base))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = rustix::mount::unmount(p.as_str(), rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

/// Unmounts through the driver when dropped, and detaches as a last resort.
pub struct MountGuard {
    driver: Arc<dyn StorageDriver>,
    key: String,
    pub target: PathBuf,
}

impl MountGuard {
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self
            .driver
            .unmount(&self.key, &self.target.display().to_string())
            .is_err()
        {
            let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// True when something is mounted exactly at `p`.
pub fn is_mounted(p: &Path) -> bool {
    let s = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().any(|l| l.split(' ').nth(4) == Some(s.as_str())))
        .unwrap_or(false)
}

/// A layer tar of regular files (`path`, content), directories (path ending in `/`) and
/// whiteouts (`.wh.` names, empty content).
pub fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
        }
        b.append_data(&mut h, path, *data).expect("append");
    }
    b.into_inner().expect("finish tar")
}

fn base(h: &Harness) {
    let tar = layer(&[
        ("etc/", b""),
        ("etc/os-release", b"NAME=berth\n"),
        ("etc/gone", b"delete me"),
        ("dir/", b""),
        ("dir/sub/", b""),
        ("dir/sub/x", b"x"),
        ("opq/", b""),
        ("opq/old", b"old"),
    ]);
    h.driver
        .apply_layer("sha256:base", None, &mut tar.as_slice())
        .expect("apply base");
}

fn isolation(s: &Suite) {
    let h = Harness::new(s);
    base(&h);
    let before = {
        h.driver
            .prepare("view-before", Some("sha256:base"), true)
            .unwrap();
        let v = h.mount("view-before", "vb");
        manifest(v.path())
    };
    h.driver.prepare("c1", Some("sha256:base"), false).unwrap();
    h.driver.prepare("c2", Some("sha256:base"), false).unwrap();
    {
        let m1 = h.mount("c1", "c1");
        let m2 = h.mount("c2", "c2");
        std::fs::write(m1.path().join("etc/os-release"), b"changed by c1").unwrap();
        std::fs::write(m1.path().join("new-in-c1"), b"1").unwrap();
        std::fs::remove_file(m1.path().join("etc/gone")).unwrap();
        std::fs::write(m2.path().join("new-in-c2"), b"2").unwrap();
        assert_eq!(
            std::fs::read(m2.path().join("etc/os-release")).unwrap(),
            b"NAME=berth\n"
        );
        assert!(!m2.path().join("new-in-c1").exists());
        assert!(m2.path().join("etc/gone").exists());
        assert!(!m1.path().join("new-in-c2").exists());
        // Mounting again at the same place is a no-op.
        h.driver
            .mount("c1", &m1.path().display().to_string())
            .unwrap();
    }
    h.driver
        .prepare("view-after", Some("sha256:base"), true)
        .unwrap();
    {
        let v = h.mount("view-after", "va");
        assert_eq!(manifest(v.path()), before, "the image's layer is unchanged");
        assert!(
            std::fs::write(v.path().join("x"), b"").is_err(),
            "views are read-only"
        );
    }
    let list = h.driver.list().unwrap();
    let kinds: Vec<_> = list.iter().map(|i| (i.key.to_string(), i.kind)).collect();
    assert!(kinds.contains(&("sha256:base".into(), SnapshotKind::Committed)));
    assert!(kinds.contains(&("c1".into(), SnapshotKind::Active)));
    assert!(kinds.contains(&("view-after".into(), SnapshotKind::View)));
}

fn whiteouts_in_diff(s: &Suite) {
    let h = Harness::new(s);
    base(&h);
    h.driver.prepare("c", Some("sha256:base"), false).unwrap();
    {
        let m = h.mount("c", "c");
        std::fs::remove_file(m.path().join("etc/gone")).unwrap();
        std::fs::remove_dir_all(m.path().join("dir")).unwrap();
        std::fs::remove_dir_all(m.path().join("opq")).unwrap();
        std::fs::create_dir(m.path().join("opq")).unwrap();
        std::fs::write(m.path().join("opq/new"), b"n").unwrap();
    }
    let mut tar = Vec::new();
    h.driver.diff("c", &mut tar, Some(1_000)).unwrap();
    let names = tar_names(&tar);
    assert!(names.contains(&"etc/.wh.gone".to_string()), "{names:?}");
    assert!(names.contains(&".wh.dir".to_string()), "{names:?}");
    assert!(
        names.contains(&"opq/.wh..wh..opq".to_string())
            || names.contains(&"opq/.wh.old".to_string()),
        "recreated dir hides the lower content: {names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    let mut a = tar::Archive::new(tar.as_slice());
    for e in a.entries().unwrap() {
        assert!(e.unwrap().header().mtime().unwrap() <= 1_000, "clamped");
    }
    // The diff as a layer gives the snapshot's view.
    h.driver
        .apply_layer("sha256:next", Some("sha256:base"), &mut tar.as_slice())
        .unwrap();
    h.driver.prepare("v", Some("sha256:next"), true).unwrap();
    let v = h.mount("v", "v");
    assert!(!v.path().join("etc/gone").exists());
    assert!(!v.path().join("dir").exists());
    assert!(!v.path().join("opq/old").exists());
    assert_eq!(std::fs::read(v.path().join("opq/new")).unwrap(), b"n");
    assert!(v.path().join("etc/os-release").exists());
}

fn round_trip(s: &Suite) {
    let h = Harness::new(s);
    base(&h);
    h.driver.prepare("c", Some("sha256:base"), false).unwrap();
    let want = {
        let m = h.mount("c", "c");
        build_full_tree(m.path());
        manifest(m.path())
    };
    let mut tar = Vec::new();
    h.driver.diff("c", &mut tar, None).unwrap();
    h.driver
        .apply_layer("sha256:rt", Some("sha256:base"), &mut tar.as_slice())
        .unwrap();
    h.driver.prepare("v", Some("sha256:rt"), true).unwrap();
    let v = h.mount("v", "v");
    assert_eq!(manifest(v.path()), want);
    // commit: the snapshot becomes a layer with the same content.
    h.driver.commit("c", "sha256:committed").unwrap();
    assert_eq!(h.driver.usage("c").unwrap_err().kind, ErrorKind::NotFound);
    h.driver
        .prepare("v2", Some("sha256:committed"), true)
        .unwrap();
    let v2 = h.mount("v2", "v2");
    assert_eq!(manifest(v2.path()), want);
}

fn deep_chain(s: &Suite) {
    let h = Harness::new(s);
    let mut parent: Option<String> = None;
    for i in 0..200 {
        let name = format!("layer-{i}");
        let tar = layer(&[(name.as_str(), name.as_bytes())]);
        let id = format!("sha256:{i:064x}");
        h.driver
            .apply_layer(&id, parent.as_deref(), &mut tar.as_slice())
            .unwrap_or_else(|e| panic!("layer {i}: {e}"));
        parent = Some(id);
    }
    h.driver.prepare("deep", parent.as_deref(), false).unwrap();
    let m = h.mount("deep", "deep");
    assert_eq!(
        std::fs::read(m.path().join("layer-199")).unwrap(),
        b"layer-199"
    );
    assert_eq!(std::fs::read(m.path().join("layer-0")).unwrap(), b"layer-0");
}

fn remove_leaves_nothing(s: &Suite) {
    let h = Harness::new(s);
    base(&h);
    h.driver.prepare("c", Some("sha256:base"), false).unwrap();
    h.driver.prepare("v", Some("sha256:base"), true).unwrap();
    let target = h.mount_point("c");
    h.driver.mount("c", &target.display().to_string()).unwrap();
    let vt = h.mount_point("v");
    h.driver.mount("v", &vt.display().to_string()).unwrap();
    let busy = h.driver.remove("sha256:base").unwrap_err();
    assert_eq!(busy.kind, ErrorKind::Busy, "{busy}");
    // remove unmounts first.
    h.driver.remove("c").unwrap();
    h.driver.remove("v").unwrap();
    assert!(!is_mounted(&target) && !is_mounted(&vt));
    h.driver.remove("c").unwrap(); // idempotent
    h.driver.remove("sha256:base").unwrap();
    assert!(h.driver.list().unwrap().is_empty());
    for sub in ["objects", "mounts", "tmp"] {
        let p = h.state.join(sub);
        if p.exists() {
            let left: Vec<_> = std::fs::read_dir(&p).unwrap().collect();
            assert!(left.is_empty(), "{} not empty: {left:?}", p.display());
        }
    }
    assert_eq!(h.driver.cleanup().unwrap(), Vec::<String>::new());
}

fn malicious_refused(s: &Suite) {
    let h = Harness::new(s);
    base(&h);
    let before = h.driver.list().unwrap();
    let outside = h.dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let mut evil = tar::Builder::new(Vec::new());
    let mut hd = tar::Header::new_gnu();
    hd.set_entry_type(tar::EntryType::Symlink);
    hd.set_size(0);
    hd.set_mode(0o777);
    evil.append_link(&mut hd, "link", &outside).unwrap();
    let mut hd = tar::Header::new_gnu();
    hd.set_size(5);
    hd.set_mode(0o644);
    evil.append_data(&mut hd, "link/pwned", &b"pwned"[..])
        .unwrap();
    let evil = evil.into_inner().unwrap();
    let mut dotdot = Vec::new();
    {
        let mut hd = tar::Header::new_old();
        let name = b"../../../escape";
        hd.as_old_mut().name[..name.len()].copy_from_slice(name);
        hd.set_mode(0o644);
        hd.set_size(0);
        hd.set_cksum();
        dotdot.extend_from_slice(hd.as_bytes());
        dotdot.resize(dotdot.len() + 1024, 0);
    }
    for (what, tar) in [("symlink escape", evil), ("dotdot", dotdot)] {
        let err = h
            .driver
            .apply_layer("sha256:evil", Some("sha256:base"), &mut tar.as_slice())
            .expect_err(what);
        assert_eq!(err.kind, ErrorKind::InvalidArgument, "{what}: {err}");
        assert!(
            std::fs::read_dir(&outside).unwrap().next().is_none(),
            "{what}: wrote outside"
        );
        assert_eq!(h.driver.list().unwrap(), before, "{what}: nothing left");
        assert_eq!(
            std::fs::read_dir(h.state.join("tmp")).unwrap().count(),
            0,
            "{what}: no temp left"
        );
    }
    assert!(!Path::new("/escape").exists());
}

fn cleanup_sweeps_half_created(s: &Suite) {
    let h = Harness::new(s);
    base(&h);
    std::fs::create_dir_all(h.state.join("tmp/build-crashed/diff")).unwrap();
    let removed = h.driver.cleanup().unwrap();
    assert_eq!(removed, vec!["build-crashed".to_string()]);
    assert_eq!(h.driver.list().unwrap().len(), 1);
    assert_eq!(
        h.driver.cleanup().unwrap(),
        Vec::<String>::new(),
        "idempotent"
    );
    assert_eq!(
        h.driver
            .apply_layer("sha256:base", None, &mut layer(&[]).as_slice())
            .unwrap_err()
            .kind,
        ErrorKind::AlreadyExists
    );
    let caps = h.driver.capabilities().unwrap();
    assert!(
        caps.max_layers == 0 || caps.max_layers >= 128,
        "a driver must mount at least 128 layers: {caps:?}"
    );
}
