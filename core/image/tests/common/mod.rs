#![allow(dead_code)]
//! Shared helpers of the integration tests.

use std::io::Write;
use std::path::Path;

/// A small rootfs tar: Debian's static busybox plus applet symlinks.
pub fn busybox_rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let dir = |name: &str| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_path(name).unwrap();
        h.set_cksum();
        h
    };
    for d in ["bin/", "etc/", "tmp/"] {
        let h = dir(d);
        b.append(&h, &[][..]).unwrap();
    }
    let data = std::fs::read("/bin/busybox")
        .unwrap_or_else(|_| b"#!/bin/sh\necho fake busybox\n".to_vec());
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o755);
    h.set_size(data.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "bin/busybox", &data[..]).unwrap();
    for applet in ["sh", "ls", "echo", "cat"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .unwrap();
    }
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(12);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/hostname", &b"berth-test\n\n"[..])
        .unwrap();
    b.into_inner().unwrap()
}

/// A rootfs tar with `n` files of `size` pseudo-random bytes (different per `seed`).
pub fn generated_rootfs(n: usize, size: usize, seed: u64) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    for i in 0..n {
        let mut data = vec![0u8; size];
        for chunk in data.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bytes = x.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(size as u64);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, format!("data/f{i}"), &data[..])
            .unwrap();
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).unwrap()
}

/// True when `bin` is installed; skips outside CI, fails under it (berth-testkit).
pub fn have(bin: &str) -> bool {
    berth_testkit::require_command(bin, &format!("apt-get install {bin}"))
}

/// Files currently in the store's temp dir.
pub fn temp_files(store: &Path) -> Vec<String> {
    std::fs::read_dir(store.join(".berth/tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}
