#![allow(dead_code)]
//! Shared helpers of the integration tests.

use std::io::Write;
use std::path::Path;

use berth_distribution::testing::{TestAuth, TestRegistry};
use berth_distribution::{Image, ImageStore, Reference};

/// A registry for one test, or None (with a printed reason) when the
/// registry binary is missing outside CI. In CI a missing binary fails.
pub fn registry(auth: TestAuth) -> Option<TestRegistry> {
    if !berth_testkit::require(
        TestRegistry::available(),
        "the docker-registry binary",
        "apt-get install docker-registry",
    ) {
        return None;
    }
    Some(TestRegistry::start_with(auth).expect("start test registry"))
}

/// A small rootfs tar: Debian's static busybox plus applet symlinks, and
/// `extra` bytes in /etc/extra (to make images differ).
pub fn busybox_rootfs(extra: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for d in ["bin/", "etc/", "tmp/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        h.set_path(d).unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
    }
    let data = std::fs::read("/bin/busybox").expect("busybox-static at /bin/busybox");
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
    h.set_size(extra.len() as u64);
    h.set_mtime(1_700_000_000);
    b.append_data(&mut h, "etc/extra", extra).unwrap();
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Imports a gzip'd busybox image tagged `tag` into a store at `dir`.
pub fn busybox_store(dir: &Path, tag: &str, extra: &[u8]) -> (ImageStore, Image) {
    let store = ImageStore::open(dir).unwrap();
    let img = store
        .import(
            &mut &gzip(&busybox_rootfs(extra))[..],
            Some(&Reference::parse(tag).unwrap()),
            &["CMD [\"sh\"]".into()],
        )
        .unwrap();
    (store, img)
}

pub fn layer_digests(img: &Image) -> Vec<String> {
    img.manifest
        .layers()
        .iter()
        .map(|l| l.digest().to_string())
        .collect()
}

/// Files currently in the store's temp dir.
pub fn temp_files(store: &Path) -> Vec<String> {
    std::fs::read_dir(store.join(".berth/tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

pub fn partial_files(store: &Path) -> Vec<String> {
    std::fs::read_dir(store.join(".berth/partial"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// True when `bin` is installed; skips outside CI, fails under it (berth-testkit).
pub fn have(bin: &str) -> bool {
    berth_testkit::require_command(bin, &format!("apt-get install {bin}"))
}
