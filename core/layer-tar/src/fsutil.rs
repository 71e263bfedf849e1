//! Descriptor-relative file system helpers: every path below a root is resolved with
//! `openat2(RESOLVE_BENEATH)`, every leaf is touched by (parent fd, single name) without
//! following symlinks, so nothing outside the root is ever reached.

use std::ffi::{CStr, CString, OsStr};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, ResolveFlags, Stat};
use rustix::io::Errno;

use crate::error::{LayerError, Result};

/// Opens a directory as the root of later `*at` calls.
pub fn open_root(path: &Path) -> Result<OwnedFd> {
    rfs::open(
        path,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| LayerError::io("open directory", path, e))
}

/// Resolves `rel` (relative, already normalised) as a directory beneath `root`. Symlinks
/// inside the root are followed; anything leaving it fails with `EXDEV`/`ELOOP`.
pub fn open_dir_beneath(root: BorrowedFd<'_>, rel: &Path) -> std::result::Result<OwnedFd, Errno> {
    if rel.as_os_str().is_empty() {
        return rfs::openat(
            root,
            c".",
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        );
    }
    rfs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Like [`open_dir_beneath`] but refuses any symlink on the way (for trees we produced).
pub fn open_dir_strict(root: BorrowedFd<'_>, rel: &Path) -> std::result::Result<OwnedFd, Errno> {
    if rel.as_os_str().is_empty() {
        return open_dir_beneath(root, rel);
    }
    rfs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens `rel` with `root` taken as `/` (`openat2(RESOLVE_IN_ROOT)`): symlinks, absolute
/// ones included, and `..` resolve as if `root` were the file system root, so nothing
/// outside it is reached. For trees someone else made (a build context, a stage's files);
/// add `OFlags::NOFOLLOW` to refuse a symlink as the last component. An empty `rel` is
/// the root itself.
pub fn open_in_root(
    root: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
) -> std::result::Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    rfs::openat2(
        root,
        rel,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )
}

/// Opens a directory entry (single name) for reading its entries.
pub fn open_dir_read(parent: BorrowedFd<'_>, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    rfs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// `lstat` of a single name in a directory.
pub fn lstat_at(parent: BorrowedFd<'_>, name: &OsStr) -> std::result::Result<Stat, Errno> {
    rfs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW)
}

/// The sorted names of a directory (without `.` and `..`).
pub fn read_names(dir: BorrowedFd<'_>) -> std::result::Result<Vec<std::ffi::OsString>, Errno> {
    let fd = rfs::openat(
        dir,
        c".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut names = Vec::new();
    for ent in rfs::Dir::new(fd)? {
        let ent = ent?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        names.push(OsStr::from_bytes(n).to_os_string());
    }
    names.sort();
    Ok(names)
}

/// Opens a leaf with `O_PATH|O_NOFOLLOW` (works for every file type, never blocks).
pub fn open_leaf(parent: BorrowedFd<'_>, name: &OsStr) -> std::result::Result<OwnedFd, Errno> {
    rfs::openat(
        parent,
        name,
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

fn proc_path(fd: BorrowedFd<'_>) -> CString {
    // A decimal number never contains a NUL byte.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// One extended attribute: name and value.
pub type Xattr = (Vec<u8>, Vec<u8>);

/// All extended attributes of the inode behind an `O_PATH` fd, sorted by name.
pub fn get_xattrs(fd: BorrowedFd<'_>) -> std::result::Result<Vec<Xattr>, Errno> {
    let p = proc_path(fd);
    let mut buf = vec![0u8; 1024];
    let len = loop {
        match rfs::listxattr(&p, &mut buf[..]) {
            Ok(n) => break n,
            Err(Errno::RANGE) => {
                let need = rfs::listxattr_query(&p)?;
                buf.resize(need.max(buf.len() * 2), 0);
            }
            Err(Errno::NOTSUP) | Err(Errno::PERM) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    };
    let mut out = Vec::new();
    for name in buf[..len].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let cname = CString::new(name).map_err(|_| Errno::INVAL)?;
        let mut val = vec![0u8; 256];
        let n = loop {
            match rfs::getxattr(&p, cname.as_c_str(), &mut val[..]) {
                Ok(n) => break n,
                Err(Errno::RANGE) => {
                    let need = rfs::getxattr_query(&p, cname.as_c_str())?;
                    val.resize(need.max(val.len() * 2), 0);
                }
                Err(Errno::NODATA) => break usize::MAX,
                Err(e) => return Err(e),
            }
        };
        if n == usize::MAX {
            continue;
        }
        val.truncate(n);
        out.push((name.to_vec(), val));
    }
    out.sort();
    Ok(out)
}

/// Sets one extended attribute on the inode behind an `O_PATH` fd.
pub fn set_xattr(fd: BorrowedFd<'_>, name: &[u8], value: &[u8]) -> std::result::Result<(), Errno> {
    let p = proc_path(fd);
    let cname = CString::new(name).map_err(|_| Errno::INVAL)?;
    rfs::setxattr(&p, cname.as_c_str(), value, rfs::XattrFlags::empty())
}

/// Removes `name` in `parent` whatever it is (a directory recursively), never following
/// symlinks. A missing entry is success.
/// `.` and `..` are refused with `EINVAL`: they name the parent itself or what is above it.
pub fn remove_all_at(parent: BorrowedFd<'_>, name: &OsStr) -> std::result::Result<(), Errno> {
    if name == "." || name == ".." || name.is_empty() {
        return Err(Errno::INVAL);
    }
    match rfs::unlinkat(parent, name, AtFlags::empty()) {
        Ok(()) => return Ok(()),
        Err(Errno::NOENT) => return Ok(()),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e),
    }
    let dir = match open_dir_read(parent, name) {
        Ok(d) => d,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e),
    };
    for child in read_names(dir.as_fd())? {
        remove_all_at(dir.as_fd(), &child)?;
    }
    drop(dir);
    match rfs::unlinkat(parent, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes a directory tree given by path (not following symlinks). Missing is success.
pub fn remove_tree(path: &Path) -> Result<()> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(LayerError::io(
            "remove",
            path,
            std::io::Error::from(std::io::ErrorKind::InvalidInput),
        ));
    };
    let pfd = match rfs::open(
        parent,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(f) => f,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(LayerError::io("open", parent, e)),
    };
    remove_all_at(pfd.as_fd(), name).map_err(|e| LayerError::io("remove tree", path, e))
}

/// Copies `len` bytes from `src` into a fresh file, leaving holes where whole 4 KiB blocks
/// are zero (so sparse files stay sparse), and sets the final length.
pub fn write_sparse(src: &mut dyn Read, dst: &mut std::fs::File, len: u64) -> std::io::Result<()> {
    const BLK: usize = 4096;
    let mut buf = vec![0u8; 256 * 1024];
    let mut pos: u64 = 0;
    let mut file_pos: u64 = 0;
    while pos < len {
        let want = usize::try_from((len - pos).min(buf.len() as u64)).unwrap_or(buf.len());
        let mut filled = 0;
        while filled < want {
            let n = src.read(&mut buf[filled..want])?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file data shorter than its header says",
                ));
            }
            filled += n;
        }
        let data = &buf[..filled];
        let mut off = 0;
        while off < data.len() {
            let end = (off + BLK).min(data.len());
            if data[off..end].iter().all(|b| *b == 0) {
                off = end;
                continue;
            }
            // A run of non-zero blocks.
            let mut run_end = end;
            while run_end < data.len() {
                let e = (run_end + BLK).min(data.len());
                if data[run_end..e].iter().all(|b| *b == 0) {
                    break;
                }
                run_end = e;
            }
            let at = pos + off as u64;
            if at != file_pos {
                dst.seek(SeekFrom::Start(at))?;
            }
            dst.write_all(&data[off..run_end])?;
            file_pos = pos + run_end as u64;
            off = run_end;
        }
        pos += filled as u64;
    }
    dst.set_len(len)?;
    Ok(())
}

/// Space used by a tree: allocated bytes and inode count (hard links counted once).
pub fn tree_usage(path: &Path) -> Result<(u64, u64)> {
    let root = open_root(path)?;
    let st = rfs::fstat(&root).map_err(|e| LayerError::io("stat", path, e))?;
    let mut seen = std::collections::HashSet::new();
    let mut bytes = (st.st_blocks as u64) * 512;
    let mut inodes = 1u64;
    fn walk(
        dir: BorrowedFd<'_>,
        path: &Path,
        seen: &mut std::collections::HashSet<(u64, u64)>,
        bytes: &mut u64,
        inodes: &mut u64,
    ) -> Result<()> {
        let names = read_names(dir).map_err(|e| LayerError::io("read directory", path, e))?;
        for n in names {
            let st = lstat_at(dir, &n).map_err(|e| LayerError::io("stat", path.join(&n), e))?;
            if st.st_nlink > 1 && !seen.insert((st.st_dev, st.st_ino)) {
                continue;
            }
            *bytes += (st.st_blocks as u64) * 512;
            *inodes += 1;
            if rfs::FileType::from_raw_mode(st.st_mode) == rfs::FileType::Directory {
                let sub =
                    open_dir_read(dir, &n).map_err(|e| LayerError::io("open", path.join(&n), e))?;
                walk(sub.as_fd(), &path.join(&n), seen, bytes, inodes)?;
            }
        }
        Ok(())
    }
    walk(root.as_fd(), path, &mut seen, &mut bytes, &mut inodes)?;
    Ok((bytes, inodes))
}

/// Joins relative path components given as bytes.
pub fn rel_path(comps: &[Vec<u8>]) -> PathBuf {
    let mut p = PathBuf::new();
    for c in comps {
        p.push(OsStr::from_bytes(c));
    }
    p
}

/// A `CStr` view used for names that came from directory listings.
pub fn os(c: &CStr) -> &OsStr {
    OsStr::from_bytes(c.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remove_all_at_refuses_dot_and_dotdot() {
        let sandbox = tempfile::tempdir().unwrap();
        let dir = sandbox.path().join("d");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
        std::fs::write(sandbox.path().join("sentinel"), b"x").unwrap();
        let fd = open_root(&dir).unwrap();
        for name in ["..", ".", ""] {
            assert_eq!(
                remove_all_at(fd.as_fd(), OsStr::new(name)),
                Err(Errno::INVAL),
                "{name:?}"
            );
        }
        assert!(sandbox.path().join("sentinel").exists());
        assert!(dir.join("f").exists());
        remove_all_at(fd.as_fd(), OsStr::new("f")).unwrap();
        assert!(!dir.join("f").exists());
    }

    #[test]
    fn open_in_root_keeps_links_inside() {
        let sandbox = tempfile::tempdir().unwrap();
        let root = sandbox.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), b"inside").unwrap();
        std::fs::write(sandbox.path().join("f"), b"outside").unwrap();
        std::os::unix::fs::symlink("/sub", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("up")).unwrap();
        std::os::unix::fs::symlink(sandbox.path(), root.join("host")).unwrap();
        let fd = open_root(&root).unwrap();
        let read = |rel: &str| {
            let f = open_in_root(fd.as_fd(), Path::new(rel), OFlags::RDONLY)?;
            let mut s = String::new();
            std::fs::File::from(f).read_to_string(&mut s).unwrap();
            Ok::<_, Errno>(s)
        };
        assert_eq!(read("abs/f").unwrap(), "inside");
        assert_eq!(read("up/sub/f").unwrap(), "inside");
        // The host path is looked up below the root, where it does not exist.
        assert_eq!(read("host/f"), Err(Errno::NOENT));
        let nofollow = open_in_root(
            fd.as_fd(),
            Path::new("abs"),
            OFlags::PATH | OFlags::NOFOLLOW,
        );
        assert!(nofollow.is_ok());
        assert!(open_in_root(fd.as_fd(), Path::new(""), OFlags::PATH | OFlags::DIRECTORY).is_ok());
    }
}
