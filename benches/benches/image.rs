//! Import throughput of a ~100 MB generated rootfs tar, next to `tar -x` of the same file.

use std::io::Write;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn rootfs(path: &std::path::Path) -> u64 {
    let file = std::fs::File::create(path).expect("create bench tar");
    let mut b = tar::Builder::new(std::io::BufWriter::new(file));
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let mut data = vec![0u8; 1 << 20];
    for i in 0..100 {
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, format!("usr/lib/f{i}"), &data[..])
            .expect("append");
    }
    let mut w = b.into_inner().expect("finish tar");
    w.flush().expect("flush");
    std::fs::metadata(path).expect("stat").len()
}

fn bench_import(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let tar_path = dir.path().join("rootfs.tar");
    let size = rootfs(&tar_path);
    let mut g = c.benchmark_group("image");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(size));
    g.bench_function("import_100MB_tar", |b| {
        b.iter(|| {
            let store_dir = tempfile::tempdir_in(dir.path()).expect("store dir");
            let store = berth_image::ImageStore::open(store_dir.path()).expect("open");
            let mut f = std::fs::File::open(&tar_path).expect("open tar");
            store.import(&mut f, None, &[]).expect("import");
        })
    });
    g.bench_function("tar_x_100MB_tar", |b| {
        b.iter(|| {
            let out = tempfile::tempdir_in(dir.path()).expect("out dir");
            let st = Command::new("tar")
                .arg("-xf")
                .arg(&tar_path)
                .arg("-C")
                .arg(out.path())
                .status()
                .expect("run tar");
            assert!(st.success());
        })
    });
    g.finish();
}

criterion_group!(benches, bench_import);
criterion_main!(benches);
