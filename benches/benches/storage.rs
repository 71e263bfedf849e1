//! Storage drivers: per-container prepare+mount+unmount+remove latency, and diff throughput.
//! Needs root (mounts). Mount points live under a `bt-bench-storage-` temp dir.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use berth_abi::{PluginContext, StorageDriver};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn base_layer(files: usize, size: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data = vec![0x5au8; size];
    for i in 0..files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(size as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, format!("usr/share/f{i}"), &data[..])
            .expect("append");
    }
    b.into_inner().expect("tar")
}

/// Loads a driver the way berth does: its cdylib through the plugin host (built here with
/// the bench's profile, as both plugins export the same symbols and cannot share a binary).
fn driver(name: &str, state: &std::path::Path) -> Arc<dyn StorageDriver> {
    let exe = std::env::current_exe().expect("bench path");
    let target = exe.parent().and_then(|p| p.parent()).expect("target dir");
    let profile = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("release");
    let mut cmd = std::process::Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "-p", &format!("berth-plugin-{name}")]);
    if profile != "debug" {
        cmd.args([
            "--profile",
            if profile == "release" {
                "bench"
            } else {
                profile
            },
        ]);
    }
    assert!(
        cmd.status().expect("cargo build").success(),
        "building {name} failed"
    );
    let lib = target.join(format!("libberth_plugin_{name}.so"));
    let plugin = berth_plugin_host::load_plugin(&lib)
        .result
        .expect("load plugin");
    let ctx = PluginContext {
        state_dir: state.display().to_string(),
        ..Default::default()
    };
    plugin.storage(ctx).expect("constructor")
}

static N: AtomicU64 = AtomicU64::new(0);

fn bench_storage(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("bt-bench-storage-")
        .tempdir()
        .expect("tempdir");
    // The same drivers with their state on tmpfs: on this VM's ext4 (mounted with
    // `discard`) every rmdir costs ~3 ms, which dominates the disk-backed numbers.
    let shm = tempfile::Builder::new()
        .prefix("bt-bench-storage-")
        .tempdir_in("/dev/shm")
        .expect("tmpfs dir");
    let mut g = c.benchmark_group("storage");
    for (name, base) in [
        ("overlayfs", dir.path()),
        ("vfs", dir.path()),
        ("overlayfs", shm.path()),
        ("vfs", shm.path()),
    ] {
        let on = if base == shm.path() { "tmpfs" } else { "disk" };
        let d = driver(name, &base.join(name));
        // A small image: 100 files of 4 KiB.
        d.apply_layer("sha256:base", None, &mut base_layer(100, 4096).as_slice())
            .expect("base");
        let target = base.join(format!("mnt-{name}"));
        std::fs::create_dir_all(&target).expect("mnt");
        let t = target.display().to_string();
        g.bench_function(format!("container_cycle/{name}/{on}"), |b| {
            b.iter(|| {
                let key = format!("c{}", N.fetch_add(1, Ordering::Relaxed));
                d.prepare(&key, Some("sha256:base"), false)
                    .expect("prepare");
                d.mount(&key, &t).expect("mount");
                d.unmount(&key, &t).expect("unmount");
                d.remove(&key).expect("remove");
            })
        });
        // Diff throughput: a snapshot holding 64 MiB of new files.
        d.prepare("big", Some("sha256:base"), false)
            .expect("prepare big");
        d.mount("big", &t).expect("mount big");
        let chunk = vec![0xa5u8; 1 << 20];
        for i in 0..64 {
            std::fs::write(target.join(format!("new-{i}")), &chunk).expect("write");
        }
        d.unmount("big", &t).expect("unmount big");
        g.throughput(Throughput::Bytes(64 << 20));
        g.sample_size(10);
        g.bench_function(format!("diff_64MiB/{name}/{on}"), |b| {
            b.iter(|| {
                d.diff("big", &mut std::io::sink(), None).expect("diff");
            })
        });
        g.sample_size(100);
        g.throughput(Throughput::Elements(1));
        d.remove("big").expect("remove big");
        d.remove("sha256:base").expect("remove base");
    }
    g.finish();
}

criterion_group!(benches, bench_storage);
criterion_main!(benches);
