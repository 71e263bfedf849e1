//! Full tree copies preserving everything a layer carries (for drivers without
//! copy-on-write): types, modes, owners, times, xattrs, hard links, holes.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::apply::set_mtime;
use crate::error::{LayerError, Result};
use crate::fsutil;

/// Copies the contents of directory `src` into the existing empty directory `dst`, and
/// the metadata of `src` onto `dst`.
pub fn copy_tree(src: &Path, dst: &Path) -> Result<()> {
    let _span =
        tracing::debug_span!("copy_tree", src = %src.display(), dst = %dst.display()).entered();
    let s = fsutil::open_root(src)?;
    let d = fsutil::open_root(dst)?;
    let mut c = Copier {
        src,
        dst,
        links: HashMap::new(),
    };
    c.dir(s.as_fd(), d.as_fd(), Path::new(""))?;
    let st = rfs::fstat(&s).map_err(|e| LayerError::io("stat", src, e))?;
    c.meta(s.as_fd(), d.as_fd(), OsStr::new("."), &st, Path::new(""))
}

struct Copier<'a> {
    src: &'a Path,
    dst: &'a Path,
    links: HashMap<(u64, u64), PathBuf>,
}

impl Copier<'_> {
    fn dir(&mut self, s: BorrowedFd<'_>, d: BorrowedFd<'_>, rel: &Path) -> Result<()> {
        let names = fsutil::read_names(s)
            .map_err(|e| LayerError::io("read directory", self.src.join(rel), e))?;
        for n in names {
            let p = rel.join(&n);
            let serr = |op: &'static str| {
                let path = self.src.join(&p);
                move |e: Errno| LayerError::io(op, path, e)
            };
            let derr = |op: &'static str| {
                let path = self.dst.join(&p);
                move |e: Errno| LayerError::io(op, path, e)
            };
            let st = fsutil::lstat_at(s, &n).map_err(serr("stat"))?;
            let ft = FileType::from_raw_mode(st.st_mode);
            if ft != FileType::Directory && st.st_nlink > 1 {
                let key = (st.st_dev, st.st_ino);
                if let Some(first) = self.links.get(&key) {
                    let dfd = fsutil::open_root(self.dst)?;
                    rfs::linkat(&dfd, first.as_path(), d, &n, AtFlags::empty())
                        .map_err(derr("hardlink"))?;
                    continue;
                }
                self.links.insert(key, p.clone());
            }
            match ft {
                FileType::Directory => {
                    rfs::mkdirat(d, &n, Mode::from_raw_mode(0o700)).map_err(derr("mkdir"))?;
                    let ss = fsutil::open_dir_read(s, &n).map_err(serr("open"))?;
                    let ds = fsutil::open_dir_read(d, &n).map_err(derr("open"))?;
                    self.dir(ss.as_fd(), ds.as_fd(), &p)?;
                }
                FileType::RegularFile => {
                    let sf = rfs::openat(
                        s,
                        &n,
                        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(serr("open"))?;
                    let df = rfs::openat(
                        d,
                        &n,
                        OFlags::WRONLY
                            | OFlags::CREATE
                            | OFlags::EXCL
                            | OFlags::NOFOLLOW
                            | OFlags::CLOEXEC,
                        Mode::from_raw_mode(0o600),
                    )
                    .map_err(derr("create"))?;
                    let mut sf = std::fs::File::from(sf);
                    let mut df = std::fs::File::from(df);
                    fsutil::write_sparse(&mut sf, &mut df, u64::try_from(st.st_size).unwrap_or(0))
                        .map_err(|e| LayerError::io("copy", self.dst.join(&p), e))?;
                }
                FileType::Symlink => {
                    let t = rfs::readlinkat(s, &n, Vec::new()).map_err(serr("readlink"))?;
                    rfs::symlinkat(t.as_c_str(), d, &n).map_err(derr("symlink"))?;
                }
                FileType::CharacterDevice | FileType::BlockDevice | FileType::Fifo => {
                    rfs::mknodat(d, &n, ft, Mode::from_raw_mode(0o600), st.st_rdev)
                        .map_err(derr("mknod"))?;
                }
                _ => continue, // sockets are not copied
            }
            self.meta(s, d, &n, &st, &p)?;
        }
        Ok(())
    }

    fn meta(
        &self,
        s: BorrowedFd<'_>,
        d: BorrowedFd<'_>,
        n: &OsStr,
        st: &rfs::Stat,
        p: &Path,
    ) -> Result<()> {
        let dpath = self.dst.join(p);
        let io = |op: &'static str, e: Errno| LayerError::io(op, &dpath, e);
        let ft = FileType::from_raw_mode(st.st_mode);
        rfs::chownat(
            d,
            n,
            Some(rfs::Uid::from_raw(st.st_uid)),
            Some(rfs::Gid::from_raw(st.st_gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io("chown", e))?;
        if ft != FileType::Symlink {
            rfs::chmodat(
                d,
                n,
                Mode::from_raw_mode(st.st_mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|e| io("chmod", e))?;
        }
        let sl =
            fsutil::open_leaf(s, n).map_err(|e| LayerError::io("open", self.src.join(p), e))?;
        let xs = fsutil::get_xattrs(sl.as_fd())
            .map_err(|e| LayerError::io("read xattrs", self.src.join(p), e))?;
        if !xs.is_empty() {
            let dl = fsutil::open_leaf(d, n).map_err(|e| io("open", e))?;
            for (k, v) in xs {
                fsutil::set_xattr(dl.as_fd(), &k, &v).map_err(|e| io("set xattr", e))?;
            }
        }
        let nsec = u32::try_from(st.st_mtime_nsec).unwrap_or(0);
        set_mtime(d, n, (st.st_mtime, nsec)).map_err(|e| io("set times", e))
    }
}
