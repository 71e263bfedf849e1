//! The storage conformance suite, run against every first-party driver through the ABI.
//! Needs root (mounts, owners, device nodes).

use std::path::Path;

use berth_abi::{ErrorKind, SnapshotKind};
use berth_layer_tar::testing::{build_full_tree, manifest, tar_names};
use berth_storage_suite::{is_mounted, layer, Harness};

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

fn isolation(d: &str) {
    let h = Harness::new(d);
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

fn whiteouts_in_diff(d: &str) {
    let h = Harness::new(d);
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
    eprintln!("{d} diff: {names:?}");
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

fn round_trip(d: &str) {
    let h = Harness::new(d);
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

fn deep_chain(d: &str) {
    let h = Harness::new(d);
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

fn remove_leaves_nothing(d: &str) {
    let h = Harness::new(d);
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

fn malicious_refused(d: &str) {
    let h = Harness::new(d);
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

fn cleanup_sweeps_half_created(d: &str) {
    let h = Harness::new(d);
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
    if d == "overlayfs" {
        assert!(
            caps.copy_on_write && caps.native_diff && caps.max_layers >= 200,
            "{caps:?}"
        );
    }
}

macro_rules! suite {
    ($modname:ident, $driver:literal) => {
        mod $modname {
            #[test]
            fn snapshots_are_isolated_and_layers_unchanged() {
                super::isolation($driver)
            }
            #[test]
            fn deletions_become_whiteouts() {
                super::whiteouts_in_diff($driver)
            }
            #[test]
            fn diff_then_apply_reproduces_the_tree() {
                super::round_trip($driver)
            }
            #[test]
            fn two_hundred_layers_mount() {
                super::deep_chain($driver)
            }
            #[test]
            fn remove_leaves_nothing() {
                super::remove_leaves_nothing($driver)
            }
            #[test]
            fn malicious_layers_are_refused() {
                super::malicious_refused($driver)
            }
            #[test]
            fn cleanup_sweeps_half_created_objects() {
                super::cleanup_sweeps_half_created($driver)
            }
        }
    };
}

suite!(overlayfs, "overlayfs");
suite!(vfs, "vfs");
