//! Producing a layer tar (diff): from an overlayfs upper directory, or by comparing a tree
//! with its parent tree. Entries are sorted by path; times can be clamped.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::{LayerError, Result};
use crate::fsutil;
use crate::whiteout::{OPAQUE_NAME, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX};

/// Options of a diff.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiffOptions {
    /// Clamp every entry's mtime to at most this (SOURCE_DATE_EPOCH).
    pub clamp_mtime: Option<i64>,
}

/// What a diff wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiffStats {
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// Take the entry at this path from the source tree.
    Add,
    /// `.wh.NAME`.
    Whiteout,
    /// `DIR/.wh..wh..opq`.
    Opaque,
}

/// xattrs that describe overlayfs internals, never part of a layer.
fn keep_xattr(name: &[u8]) -> bool {
    !name.starts_with(b"trusted.overlay.")
}

fn ftype(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

fn join(rel: &Path, name: &OsStr) -> PathBuf {
    if rel.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        rel.join(name)
    }
}

/// Writes the diff of an overlayfs upper directory: every entry in it, whiteout devices
/// turned into `.wh.NAME`, opaque directories marked with `.wh..wh..opq`.
pub fn diff_overlay_upper(
    upper: &Path,
    out: &mut dyn Write,
    opts: DiffOptions,
) -> Result<DiffStats> {
    let _span = tracing::debug_span!("diff_overlay_upper", upper = %upper.display()).entered();
    let root = fsutil::open_root(upper)?;
    let mut changes = Vec::new();
    fn walk(
        dir: BorrowedFd<'_>,
        rel: &Path,
        base: &Path,
        changes: &mut Vec<(PathBuf, Change)>,
    ) -> Result<()> {
        let names = fsutil::read_names(dir)
            .map_err(|e| LayerError::io("read directory", base.join(rel), e))?;
        for n in names {
            let p = join(rel, &n);
            let st =
                fsutil::lstat_at(dir, &n).map_err(|e| LayerError::io("stat", base.join(&p), e))?;
            match ftype(&st) {
                FileType::CharacterDevice if st.st_rdev == 0 => {
                    let mut wh = OsString::from(WHITEOUT_PREFIX);
                    wh.push(&n);
                    changes.push((join(rel, &wh), Change::Whiteout));
                }
                FileType::Directory => {
                    changes.push((p.clone(), Change::Add));
                    let leaf = fsutil::open_leaf(dir, &n)
                        .map_err(|e| LayerError::io("open", base.join(&p), e))?;
                    let xs = fsutil::get_xattrs(leaf.as_fd())
                        .map_err(|e| LayerError::io("read xattrs", base.join(&p), e))?;
                    if xs
                        .iter()
                        .any(|(k, v)| k == OVERLAY_OPAQUE_XATTR && v == b"y")
                    {
                        changes.push((p.join(OPAQUE_NAME), Change::Opaque));
                    }
                    let sub = fsutil::open_dir_read(dir, &n)
                        .map_err(|e| LayerError::io("open", base.join(&p), e))?;
                    walk(sub.as_fd(), &p, base, changes)?;
                }
                _ => changes.push((p, Change::Add)),
            }
        }
        Ok(())
    }
    walk(root.as_fd(), Path::new(""), upper, &mut changes)?;
    write_changes(root.as_fd(), upper, changes, out, opts)
}

/// Writes the diff between `lower` (the parent's full tree, or none for an empty parent)
/// and `upper` (the snapshot's full tree), comparing type, mode, owner, size, mtime, device,
/// link target, xattrs, and content when the times cannot tell.
pub fn diff_trees(
    lower: Option<&Path>,
    upper: &Path,
    out: &mut dyn Write,
    opts: DiffOptions,
) -> Result<DiffStats> {
    let _span = tracing::debug_span!("diff_trees", upper = %upper.display()).entered();
    let uroot = fsutil::open_root(upper)?;
    let lroot = lower.map(fsutil::open_root).transpose()?;
    let mut changes = Vec::new();
    let ctx = TreeCtx {
        upper,
        lower: lower.unwrap_or(Path::new("")),
    };
    match &lroot {
        Some(l) => ctx.compare(Some(l.as_fd()), uroot.as_fd(), Path::new(""), &mut changes)?,
        None => ctx.compare(None, uroot.as_fd(), Path::new(""), &mut changes)?,
    }
    write_changes(uroot.as_fd(), upper, changes, out, opts)
}

struct TreeCtx<'a> {
    upper: &'a Path,
    lower: &'a Path,
}

impl TreeCtx<'_> {
    fn compare(
        &self,
        lower: Option<BorrowedFd<'_>>,
        upper: BorrowedFd<'_>,
        rel: &Path,
        changes: &mut Vec<(PathBuf, Change)>,
    ) -> Result<()> {
        let unames = fsutil::read_names(upper)
            .map_err(|e| LayerError::io("read directory", self.upper.join(rel), e))?;
        let lnames = match lower {
            Some(l) => fsutil::read_names(l)
                .map_err(|e| LayerError::io("read directory", self.lower.join(rel), e))?,
            None => Vec::new(),
        };
        // Deleted entries.
        for n in &lnames {
            if unames.binary_search(n).is_err() {
                let mut wh = OsString::from(WHITEOUT_PREFIX);
                wh.push(n);
                changes.push((join(rel, &wh), Change::Whiteout));
            }
        }
        for n in &unames {
            let p = join(rel, n);
            let ust = fsutil::lstat_at(upper, n)
                .map_err(|e| LayerError::io("stat", self.upper.join(&p), e))?;
            let lst = match lower {
                Some(l) if lnames.binary_search(n).is_ok() => Some(
                    fsutil::lstat_at(l, n)
                        .map_err(|e| LayerError::io("stat", self.lower.join(&p), e))?,
                ),
                _ => None,
            };
            let is_dir = ftype(&ust) == FileType::Directory;
            match (&lst, lower) {
                (Some(lst), Some(l)) if ftype(lst) == ftype(&ust) => {
                    if self.differs(l, upper, n, lst, &ust, &p)? {
                        changes.push((p.clone(), Change::Add));
                    }
                    if is_dir {
                        let ls = fsutil::open_dir_read(l, n)
                            .map_err(|e| LayerError::io("open", self.lower.join(&p), e))?;
                        let us = fsutil::open_dir_read(upper, n)
                            .map_err(|e| LayerError::io("open", self.upper.join(&p), e))?;
                        self.compare(Some(ls.as_fd()), us.as_fd(), &p, changes)?;
                    }
                }
                _ => {
                    changes.push((p.clone(), Change::Add));
                    if is_dir {
                        let us = fsutil::open_dir_read(upper, n)
                            .map_err(|e| LayerError::io("open", self.upper.join(&p), e))?;
                        self.compare(None, us.as_fd(), &p, changes)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn differs(
        &self,
        l: BorrowedFd<'_>,
        u: BorrowedFd<'_>,
        n: &OsStr,
        ls: &Stat,
        us: &Stat,
        p: &Path,
    ) -> Result<bool> {
        let ft = ftype(us);
        if ls.st_mode != us.st_mode || ls.st_uid != us.st_uid || ls.st_gid != us.st_gid {
            return Ok(true);
        }
        let same_time = ls.st_mtime == us.st_mtime && ls.st_mtime_nsec == us.st_mtime_nsec;
        // A tar round trip loses sub-second precision: then compare content.
        let coarse_same =
            ls.st_mtime == us.st_mtime && (ls.st_mtime_nsec == 0 || us.st_mtime_nsec == 0);
        if !same_time && !coarse_same {
            return Ok(true);
        }
        if ft != FileType::Directory && ls.st_size != us.st_size {
            return Ok(true);
        }
        if matches!(ft, FileType::CharacterDevice | FileType::BlockDevice)
            && ls.st_rdev != us.st_rdev
        {
            return Ok(true);
        }
        let lerr = |e| LayerError::io("read", self.lower.join(p), e);
        let uerr = |e| LayerError::io("read", self.upper.join(p), e);
        if ft == FileType::Symlink {
            let a = rfs::readlinkat(l, n, Vec::new()).map_err(lerr)?;
            let b = rfs::readlinkat(u, n, Vec::new()).map_err(uerr)?;
            if a != b {
                return Ok(true);
            }
        }
        let lx = fsutil::open_leaf(l, n).map_err(lerr)?;
        let ux = fsutil::open_leaf(u, n).map_err(uerr)?;
        let a: Vec<_> = fsutil::get_xattrs(lx.as_fd())
            .map_err(lerr)?
            .into_iter()
            .filter(|(k, _)| keep_xattr(k))
            .collect();
        let b: Vec<_> = fsutil::get_xattrs(ux.as_fd())
            .map_err(uerr)?
            .into_iter()
            .filter(|(k, _)| keep_xattr(k))
            .collect();
        if a != b {
            return Ok(true);
        }
        if ft == FileType::RegularFile && !same_time {
            return Ok(!same_content(l, u, n)
                .map_err(|e| LayerError::io("compare", self.upper.join(p), e))?);
        }
        Ok(false)
    }
}

fn same_content(
    l: BorrowedFd<'_>,
    u: BorrowedFd<'_>,
    n: &OsStr,
) -> std::result::Result<bool, Errno> {
    use std::io::Read;
    let open = |d| {
        rfs::openat(
            d,
            n,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let mut a = std::fs::File::from(open(l)?);
    let mut b = std::fs::File::from(open(u)?);
    let mut ba = vec![0u8; 64 * 1024];
    let mut bb = vec![0u8; 64 * 1024];
    loop {
        let na = read_full(&mut a, &mut ba).map_err(|_| Errno::IO)?;
        let nb = read_full(&mut b, &mut bb).map_err(|_| Errno::IO)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
    fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let k = f.read(&mut buf[n..])?;
            if k == 0 {
                break;
            }
            n += k;
        }
        Ok(n)
    }
}

fn clamp(t: i64, opts: &DiffOptions) -> i64 {
    match opts.clamp_mtime {
        Some(c) if t > c => c,
        _ => t,
    }
}

fn write_changes(
    root: BorrowedFd<'_>,
    base: &Path,
    mut changes: Vec<(PathBuf, Change)>,
    out: &mut dyn Write,
    opts: DiffOptions,
) -> Result<DiffStats> {
    changes.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    let mut builder = tar::Builder::new(out);
    let mut stats = DiffStats::default();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let werr = |p: &Path, e: std::io::Error| LayerError::io("write tar entry", base.join(p), e);
    for (path, change) in changes {
        let parent = path.parent().unwrap_or(Path::new(""));
        let name = path.file_name().unwrap_or(OsStr::new(""));
        match change {
            Change::Whiteout | Change::Opaque => {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                h.set_mtime(0);
                builder
                    .append_data(&mut h, &path, std::io::empty())
                    .map_err(|e| werr(&path, e))?;
            }
            Change::Add => {
                let pfd = fsutil::open_dir_strict(root, parent)
                    .map_err(|e| LayerError::io("open", base.join(parent), e))?;
                add_entry(
                    &mut builder,
                    pfd.as_fd(),
                    name,
                    &path,
                    base,
                    &opts,
                    &mut links,
                    &mut stats,
                )?;
            }
        }
        stats.entries += 1;
    }
    builder
        .finish()
        .map_err(|e| LayerError::io("finish tar", base, e))?;
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
fn add_entry(
    b: &mut tar::Builder<&mut dyn Write>,
    pfd: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    base: &Path,
    opts: &DiffOptions,
    links: &mut HashMap<(u64, u64), PathBuf>,
    stats: &mut DiffStats,
) -> Result<()> {
    let full = base.join(path);
    let io = |op: &'static str, e: Errno| LayerError::io(op, &full, e);
    let werr = |e: std::io::Error| LayerError::io("write tar entry", &full, e);
    let st = fsutil::lstat_at(pfd, name).map_err(|e| io("stat", e))?;
    let ft = ftype(&st);
    if ft == FileType::Socket {
        return Ok(()); // sockets are not part of images
    }
    let leaf = fsutil::open_leaf(pfd, name).map_err(|e| io("open", e))?;
    let xattrs = fsutil::get_xattrs(leaf.as_fd()).map_err(|e| io("read xattrs", e))?;
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid.into());
    h.set_gid(st.st_gid.into());
    let mtime = clamp(st.st_mtime, opts);
    h.set_mtime(u64::try_from(mtime).unwrap_or(0));
    let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
    for (k, v) in xattrs.into_iter().filter(|(k, _)| keep_xattr(k)) {
        pax.push((format!("SCHILY.xattr.{}", String::from_utf8_lossy(&k)), v));
    }
    if mtime == st.st_mtime && st.st_mtime_nsec != 0 {
        pax.push((
            "mtime".into(),
            format!("{}.{:09}", st.st_mtime, st.st_mtime_nsec).into_bytes(),
        ));
    }
    if !pax.is_empty() {
        b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
            .map_err(werr)?;
    }
    // A further name of an inode already written becomes a hard link.
    if ft != FileType::Directory && st.st_nlink > 1 {
        let key = (st.st_dev, st.st_ino);
        if let Some(first) = links.get(&key) {
            h.set_entry_type(tar::EntryType::Link);
            h.set_size(0);
            return b.append_link(&mut h, path, first).map_err(werr);
        }
        links.insert(key, path.to_path_buf());
    }
    match ft {
        FileType::Directory => {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, path, std::io::empty()).map_err(werr)
        }
        FileType::RegularFile => {
            h.set_entry_type(tar::EntryType::Regular);
            let size = u64::try_from(st.st_size).unwrap_or(0);
            h.set_size(size);
            let fd: OwnedFd = rfs::openat(
                pfd,
                name,
                OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| io("open", e))?;
            let f = std::fs::File::from(fd);
            stats.bytes += size;
            b.append_data(&mut h, path, std::io::Read::take(f, size))
                .map_err(werr)
        }
        FileType::Symlink => {
            let target = rfs::readlinkat(pfd, name, Vec::new()).map_err(|e| io("readlink", e))?;
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, path, OsStr::from_bytes(target.as_bytes()))
                .map_err(werr)
        }
        FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
            h.set_entry_type(match ft {
                FileType::CharacterDevice => tar::EntryType::Char,
                FileType::BlockDevice => tar::EntryType::Block,
                _ => tar::EntryType::Fifo,
            });
            h.set_size(0);
            if ft != FileType::Fifo {
                h.set_device_major(rfs::major(st.st_rdev)).map_err(werr)?;
                h.set_device_minor(rfs::minor(st.st_rdev)).map_err(werr)?;
            }
            b.append_data(&mut h, path, std::io::empty()).map_err(werr)
        }
        _ => Ok(()),
    }
}
