//! Interop with podman through a real registry (skipped with a printed
//! reason if podman is missing). podman uses its own store under a tempdir.

mod common;

use std::path::Path;
use std::process::Command;

use berth_distribution::testing::TestAuth;
use berth_distribution::{pull, push, ImageStore, PullOptions, PushOptions};
use common::*;

fn podman(root: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("timeout")
        .arg("120")
        .arg("podman")
        .arg("--root")
        .arg(root.join("root"))
        .arg("--runroot")
        .arg(root.join("runroot"))
        .arg("--tmpdir")
        .arg(root.join("tmp"))
        .arg("--storage-driver")
        .arg("vfs")
        .args(args)
        .env("TMPDIR", root.join("tmp"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn inspect(root: &Path, image: &str) -> serde_json::Value {
    let out = podman(root, &["image", "inspect", image]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v[0].clone()
}

#[test]
fn podman_pushes_berth_pulls() {
    if !have("podman") {
        return;
    }
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let tar = dir.path().join("rootfs.tar");
    std::fs::write(&tar, busybox_rootfs(b"from podman")).unwrap();
    podman(
        dir.path(),
        &["import", tar.to_str().unwrap(), "localhost/bt-pod:1"],
    );
    let remote = format!("{}/bt/frompodman:1", reg.host());
    podman(
        dir.path(),
        &[
            "push",
            "--tls-verify=false",
            "localhost/bt-pod:1",
            &format!("docker://{remote}"),
        ],
    );
    let pod = inspect(dir.path(), "localhost/bt-pod:1");

    let store = ImageStore::open(&dir.path().join("berth")).unwrap();
    let pulled = pull(&store, &remote, &PullOptions::default()).unwrap();
    let layers: Vec<String> = pod["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(pulled.image.diff_ids(), layers);
    assert_eq!(
        pulled.image.id.trim_start_matches("sha256:"),
        pod["Id"].as_str().unwrap()
    );
    let img = store.resolve(&remote).unwrap();
    std::io::copy(
        &mut store.layer_reader(&img, 0).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
}

#[test]
fn berth_pushes_podman_pulls() {
    if !have("podman") {
        return;
    }
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
    let (store, img) = busybox_store(
        &dir.path().join("berth"),
        "localhost/bt-fromberth:1",
        b"from berth",
    );
    let remote = format!("{}/bt/fromberth:1", reg.host());
    let pushed = push(
        &store,
        "localhost/bt-fromberth:1",
        &remote,
        &PushOptions::default(),
    )
    .unwrap();
    podman(dir.path(), &["pull", "--tls-verify=false", &remote]);
    let pod = inspect(dir.path(), &remote);
    assert_eq!(
        pod["Id"].as_str().unwrap(),
        img.id.trim_start_matches("sha256:")
    );
    assert_eq!(pod["Digest"].as_str().unwrap(), pushed.digest);
    let layers: Vec<String> = pod["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers, img.diff_ids());
}
