//! Times `pull` of a ~100 MB image (random-content layers) from a loopback
//! `docker-registry` into a fresh store, and `podman pull` of the same image
//! when podman is installed.
//!
//! `cargo run --release -p berth-distribution --features testing --example pull_bench [MiB] [layers]`

use std::io::Write;
use std::time::Instant;

use berth_distribution::testing::TestRegistry;
use berth_distribution::{pull, push, ImageStore, PullOptions, PushOptions, Reference};
use rand::RngCore;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let nlayers: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(4);
    let reg = TestRegistry::start()?;
    let dir = tempfile::Builder::new()
        .prefix("bt-pull-bench-")
        .tempdir()?;
    let src = ImageStore::open(&dir.path().join("src"))?;
    let per_layer = mib * (1 << 20) / nlayers;
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut rng = rand::thread_rng();
    for i in 0..nlayers {
        let mut data = vec![0u8; per_layer];
        rng.fill_bytes(&mut data);
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, format!("data/layer{i}"), &data[..])?;
        let tar = b.into_inner()?;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar)?;
        let gz = gz.finish()?;
        diff_ids.push(berth_image::sha256_digest(&tar));
        layers.push(src.write_blob(&mut &gz[..], "application/vnd.oci.image.layer.v1.tar+gzip")?);
    }
    let mut config = berth_image::ImageConfiguration::default();
    config.rootfs_mut().set_diff_ids(diff_ids);
    src.create_image(config, layers, &[Reference::parse("localhost/bt-bench:1")?])?;
    let remote = format!("{}/bench/big:1", reg.host());
    let t = Instant::now();
    push(
        &src,
        "localhost/bt-bench:1",
        &remote,
        &PushOptions::default(),
    )?;
    println!(
        "push {mib} MiB ({nlayers} gzip layers): {:.2} s",
        t.elapsed().as_secs_f64()
    );

    for run in 0..3 {
        let dst = ImageStore::open(&dir.path().join(format!("dst{run}")))?;
        let t = Instant::now();
        let r = pull(&dst, &remote, &PullOptions::default())?;
        let s = t.elapsed().as_secs_f64();
        println!(
            "berth pull {:.0} MiB into a fresh store: {s:.2} s ({:.0} MiB/s)",
            r.bytes_downloaded as f64 / 1048576.0,
            r.bytes_downloaded as f64 / 1048576.0 / s
        );
    }
    if std::process::Command::new("podman")
        .arg("--version")
        .output()
        .is_ok()
    {
        for run in 0..2 {
            let root = dir.path().join(format!("podman{run}"));
            std::fs::create_dir_all(root.join("tmp"))?;
            let t = Instant::now();
            let st = std::process::Command::new("podman")
                .arg("--root")
                .arg(root.join("root"))
                .arg("--runroot")
                .arg(root.join("runroot"))
                .args([
                    "--storage-driver",
                    "vfs",
                    "pull",
                    "-q",
                    "--tls-verify=false",
                    &remote,
                ])
                .env("TMPDIR", root.join("tmp"))
                .stdout(std::process::Stdio::null())
                .status()?;
            println!(
                "podman pull (vfs, fresh root): {:.2} s ({st})",
                t.elapsed().as_secs_f64()
            );
        }
    }
    Ok(())
}
