//! A pull killed mid-download leaves no partial blob visible, and the next
//! pull resumes it where it stopped (HTTP range request) and leaves nothing behind.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use berth_distribution::testing::TestAuth;
use berth_distribution::{pull, push, ImageStore, PullOptions, PushOptions, Reference};
use common::*;

/// Run only as a child of `killed_pull_leaves_nothing_visible`.
#[test]
#[ignore]
fn bt_kill_helper() {
    let (Ok(root), Ok(remote)) = (
        std::env::var("BT_KILL_STORE"),
        std::env::var("BT_KILL_REMOTE"),
    ) else {
        return;
    };
    let store = ImageStore::open(std::path::Path::new(&root)).unwrap();
    pull(&store, &remote, &PullOptions::default()).unwrap();
}

/// Stores an image of one uncompressed layer holding `file` in `src` as
/// `localhost/bt-NAME:1`, pushes it to `reg` as `bt/NAME:1`; returns the layer, its tar and
/// the remote reference.
fn push_one_file_image(
    reg: &berth_distribution::testing::TestRegistry,
    src: &ImageStore,
    name: &str,
    file: &str,
    data: Vec<u8>,
) -> (berth_image::Descriptor, Vec<u8>, String) {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    b.append_data(&mut h, file, &data[..]).unwrap();
    drop(data);
    let tar = b.into_inner().unwrap();
    let layer = src
        .write_blob(&mut &tar[..], "application/vnd.oci.image.layer.v1.tar")
        .unwrap();
    let mut config = berth_image::ImageConfiguration::default();
    config
        .rootfs_mut()
        .set_diff_ids(vec![layer.digest().to_string()]);
    let local = format!("localhost/bt-{name}:1");
    src.create_image(
        config,
        vec![layer.clone()],
        &[Reference::parse(&local).unwrap()],
    )
    .unwrap();
    let remote = format!("{}/bt/{name}:1", reg.host());
    push(src, &local, &remote, &PushOptions::default()).unwrap();
    (layer, tar, remote)
}

#[test]
fn killed_pull_leaves_nothing_visible() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = ImageStore::open(&dir.path().join("src")).unwrap();
    // 256 MiB uncompressed layer: slow enough to be caught mid-download.
    let size = 256 << 20;
    let mut data = vec![0u8; size];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for c in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c.copy_from_slice(&x.to_le_bytes()[..c.len()]);
    }
    let (layer, _, remote) = push_one_file_image(&reg, &src, "kill", "big", data);
    let root = dir.path().join("dst");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "bt_kill_helper", "--nocapture"])
        .env("BT_KILL_STORE", &root)
        .env("BT_KILL_REMOTE", &remote)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut caught = false;
    while start.elapsed() < Duration::from_secs(60) {
        let partial = std::fs::read_dir(root.join(".berth/partial"))
            .map(|d| {
                d.flatten()
                    .any(|e| e.metadata().map(|m| m.len() > (1 << 20)).unwrap_or(false))
            })
            .unwrap_or(false);
        if partial {
            caught = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(caught, "the pull finished before it could be killed");
    let blob = layer.digest().to_string();
    let store = ImageStore::open(&root).unwrap();
    assert!(
        !store.blob_path(&blob).unwrap().exists(),
        "partial blob visible"
    );
    assert!(store.list().unwrap().is_empty());
    let partial = partial_files(&root);
    assert_eq!(
        partial.len(),
        1,
        "the killed pull's partial download is kept"
    );

    let pulled = pull(&store, &remote, &PullOptions::default()).unwrap();
    assert_eq!(pulled.layers_downloaded, 1);
    assert!(pulled.bytes_resumed > 1 << 20, "{pulled:?}");
    assert_eq!(pulled.bytes_downloaded + pulled.bytes_resumed, layer.size());
    assert!(store.blob_path(&blob).unwrap().exists());
    assert!(temp_files(&root).is_empty(), "{:?}", temp_files(&root));
    assert!(
        partial_files(&root).is_empty(),
        "{:?}",
        partial_files(&root)
    );
}

#[test]
fn a_corrupt_partial_download_is_refetched_whole() {
    let Some(reg) = registry(TestAuth::None) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let src = ImageStore::open(&dir.path().join("src")).unwrap();
    let (layer, tar, remote) = push_one_file_image(&reg, &src, "corrupt", "f", vec![7u8; 3 << 20]);
    // A "partial download" whose bytes are not the blob's: the resumed result fails
    // verification, so the layer is fetched again from the start.
    let root = dir.path().join("dst");
    let store = ImageStore::open(&root).unwrap();
    let hex = layer.digest().to_string().replace("sha256:", "");
    std::fs::write(root.join(".berth/partial").join(hex), vec![0xffu8; 1 << 20]).unwrap();
    let pulled = pull(&store, &remote, &PullOptions::default()).unwrap();
    assert_eq!(pulled.bytes_resumed, 0, "{pulled:?}");
    assert_eq!(pulled.bytes_downloaded, layer.size());
    let blob = std::fs::read(store.blob_path(layer.digest().as_ref()).unwrap()).unwrap();
    assert_eq!(blob, tar);
    assert!(partial_files(&root).is_empty());
}
