//! Helpers for tests of layer handling (here and in driver suites): a tree with every file
//! type and attribute a layer carries, and a manifest of a tree to compare two trees.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode};

use crate::fsutil;

/// A valid `security.capability` value (v2, cap_net_bind_service, effective).
pub const FILE_CAP: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn times(p: &Path, secs: i64, nsec: u32) {
    let dir = fsutil::open_root(p.parent().unwrap()).unwrap();
    crate::apply::set_mtime(dir.as_fd(), p.file_name().unwrap(), (secs, nsec)).unwrap();
}

fn own(p: &Path, uid: u32, gid: u32) {
    rfs::chownat(
        rfs::CWD,
        p,
        Some(rfs::Uid::from_raw(uid)),
        Some(rfs::Gid::from_raw(gid)),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn xattr(p: &Path, k: &str, v: &[u8]) {
    let dir = fsutil::open_root(p.parent().unwrap()).unwrap();
    let leaf = fsutil::open_leaf(dir.as_fd(), p.file_name().unwrap()).unwrap();
    fsutil::set_xattr(leaf.as_fd(), k.as_bytes(), v).unwrap();
}

/// Fills `root` (an existing empty directory) with every kind of entry: nested dirs with
/// odd modes and owners, set-id and capability files, xattrs, symlinks (relative and
/// absolute), a hard link, char/block devices, a fifo, a sparse file, a long path and
/// sub-second times. Requires root.
pub fn build_full_tree(root: &Path) {
    let d = root.join("etc/app");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("config"), b"key=value\n").unwrap();
    own(&d.join("config"), 1000, 1001);
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o750)).unwrap();
    let bin = root.join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("ping"), b"\x7fELF fake binary").unwrap();
    std::fs::set_permissions(bin.join("ping"), std::fs::Permissions::from_mode(0o755)).unwrap();
    xattr(&bin.join("ping"), "security.capability", &FILE_CAP);
    std::fs::write(bin.join("su"), b"setuid").unwrap();
    std::fs::set_permissions(bin.join("su"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::write(root.join("xattr-file"), b"x").unwrap();
    xattr(
        &root.join("xattr-file"),
        "user.berth.test",
        b"hello\0binary",
    );
    xattr(&root.join("xattr-file"), "trusted.berth", b"t");
    symlink("usr/bin", root.join("bin")).unwrap();
    symlink("/etc/app/config", root.join("abs-link")).unwrap();
    own(&root.join("abs-link"), 5, 6);
    std::fs::hard_link(d.join("config"), root.join("hardlink")).unwrap();
    let dev = root.join("dev");
    std::fs::create_dir(&dev).unwrap();
    let dfd = fsutil::open_root(&dev).unwrap();
    rfs::mknodat(
        &dfd,
        "null",
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rfs::makedev(1, 3),
    )
    .unwrap();
    rfs::mknodat(
        &dfd,
        "loop9",
        FileType::BlockDevice,
        Mode::from_raw_mode(0o660),
        rfs::makedev(7, 9),
    )
    .unwrap();
    rfs::mknodat(&dfd, "fifo", FileType::Fifo, Mode::from_raw_mode(0o620), 0).unwrap();
    // Sparse: 8 MiB hole, then data, then another hole.
    let mut f = std::fs::File::create(root.join("sparse")).unwrap();
    f.seek(SeekFrom::Start(8 << 20)).unwrap();
    f.write_all(b"data after the hole").unwrap();
    f.set_len(16 << 20).unwrap();
    drop(f);
    let long = root.join("long").join("d".repeat(90)).join("e".repeat(90));
    std::fs::create_dir_all(&long).unwrap();
    std::fs::write(long.join("f".repeat(120)), b"long").unwrap();
    times(&root.join("xattr-file"), 1_600_000_000, 123_456_789);
    times(&bin.join("su"), 1_500_000_000, 0);
    times(&root.join("abs-link"), 1_400_000_000, 5);
    // Directory times last (creating children changes them).
    times(&d, 1_300_000_000, 0);
    times(&dev, 1_300_000_001, 42);
    own(&dev, 0, 5);
}

/// A description of every entry of a tree (type, mode, owner, size, times, device, link
/// target, xattrs without overlay internals, content digest, hard-link group, holes).
pub fn manifest(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<(u64, u64), PathBuf> = BTreeMap::new();
    fn walk(
        dir: &Path,
        rel: &Path,
        out: &mut BTreeMap<PathBuf, String>,
        inodes: &mut BTreeMap<(u64, u64), PathBuf>,
    ) {
        let dfd = fsutil::open_root(dir).unwrap();
        for n in fsutil::read_names(dfd.as_fd()).unwrap() {
            let p = rel.join(&n);
            let st = fsutil::lstat_at(dfd.as_fd(), &n).unwrap();
            let ft = FileType::from_raw_mode(st.st_mode);
            let leaf = fsutil::open_leaf(dfd.as_fd(), &n).unwrap();
            let xs: Vec<String> = fsutil::get_xattrs(leaf.as_fd())
                .unwrap()
                .into_iter()
                .filter(|(k, _)| !k.starts_with(b"trusted.overlay."))
                .map(|(k, v)| format!("{}={:?}", String::from_utf8_lossy(&k), v))
                .collect();
            let mut desc = format!(
                "{ft:?} mode={:o} uid={} gid={} mtime={}.{:09} xattrs={xs:?}",
                st.st_mode & 0o7777,
                st.st_uid,
                st.st_gid,
                st.st_mtime,
                st.st_mtime_nsec
            );
            match ft {
                FileType::RegularFile => {
                    let mut data = Vec::new();
                    std::fs::File::open(dir.join(&n))
                        .unwrap()
                        .read_to_end(&mut data)
                        .unwrap();
                    use sha2::Digest;
                    desc += &format!(
                        " size={} sha={} sparse={}",
                        st.st_size,
                        hex::encode(sha2::Sha256::digest(&data)),
                        (st.st_blocks as i64) * 512 < st.st_size / 2
                    );
                    if st.st_nlink > 1 {
                        let first = inodes
                            .entry((st.st_dev, st.st_ino))
                            .or_insert_with(|| p.clone());
                        desc += &format!(" linkgroup={}", first.display());
                    }
                }
                FileType::Symlink => {
                    let t = std::fs::read_link(dir.join(&n)).unwrap();
                    desc += &format!(" -> {}", t.display());
                }
                FileType::CharacterDevice | FileType::BlockDevice => {
                    desc += &format!(" dev={}:{}", rfs::major(st.st_rdev), rfs::minor(st.st_rdev));
                }
                _ => {}
            }
            out.insert(p.clone(), desc);
            if ft == FileType::Directory {
                walk(&dir.join(&n), &p, out, inodes);
            }
        }
    }
    walk(root, Path::new(""), &mut out, &mut inodes);
    out
}

/// Reads the entry names of a tar stream (for assertions on diffs).
pub fn tar_names(data: &[u8]) -> Vec<String> {
    let mut a = tar::Archive::new(data);
    a.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

/// Everything below `root` as a list of relative paths (to check nothing was written).
pub fn list_all(root: &Path) -> Vec<PathBuf> {
    manifest(root).into_keys().collect()
}

/// Convenience for `OsStr` from bytes in tests.
pub fn os(b: &[u8]) -> &OsStr {
    OsStr::from_bytes(b)
}
