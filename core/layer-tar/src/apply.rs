//! Applying an uncompressed OCI layer tar to a directory, safely.

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, Timestamps};
use rustix::io::Errno;
use tar::EntryType;

use crate::error::{LayerError, Result};
use crate::fsutil;
use crate::validate::{EntryValidator, Planned};
use crate::whiteout::WhiteoutStrategy;

/// What one application did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ApplyStats {
    /// Entries written (files, dirs, links, nodes).
    pub entries: u64,
    /// Whiteouts and opaque markers handled.
    pub whiteouts: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
}

/// Metadata of one tar entry, PAX records included.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, u32),
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

pub use crate::validate::normalize_entry_path;

fn parse_pax_time(v: &[u8]) -> Option<(i64, u32)> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = match s.split_once('.') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    };
    let secs: i64 = secs.parse().ok()?;
    let mut digits: String = frac.chars().take(9).collect();
    while digits.len() < 9 {
        digits.push('0');
    }
    let nsec: u32 = digits.parse().ok()?;
    Some((secs, nsec))
}

pub(crate) fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>, shown: &str) -> Result<EntryMeta> {
    let h = entry.header();
    let bad = |what: &str, e: std::io::Error| LayerError::malformed(shown, format!("{what}: {e}"));
    let mode = h.mode().map_err(|e| bad("mode", e))?;
    // Empty numeric fields (some writers leave them blank) read as 0, like Go's archive/tar.
    let mut uid = u32::try_from(h.uid().unwrap_or(0))
        .map_err(|_| LayerError::malformed(shown, "uid out of range"))?;
    let mut gid = u32::try_from(h.gid().unwrap_or(0))
        .map_err(|_| LayerError::malformed(shown, "gid out of range"))?;
    let secs = h.mtime().unwrap_or(0);
    let mut mtime = (i64::try_from(secs).unwrap_or(i64::MAX), 0u32);
    let mut xattrs = Vec::new();
    if let Some(exts) = entry.pax_extensions().map_err(|e| bad("pax header", e))? {
        for ext in exts {
            let ext = ext.map_err(|e| bad("pax record", e))?;
            let key = ext.key_bytes();
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                xattrs.push((name.to_vec(), ext.value_bytes().to_vec()));
            } else if key == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    mtime = t;
                }
            } else if key == b"uid" || key == b"gid" {
                let v: u32 = std::str::from_utf8(ext.value_bytes())
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| LayerError::malformed(shown, "bad pax uid/gid"))?;
                if key == b"uid" {
                    uid = v;
                } else {
                    gid = v;
                }
            }
        }
    }
    xattrs.sort();
    Ok(EntryMeta {
        mode,
        uid,
        gid,
        mtime,
        xattrs,
    })
}

/// A directory (path components) and the mtime it must end with.
type DirTime = (Vec<Vec<u8>>, (i64, u32));

/// Applies layer tars below one root directory.
pub struct Applier<'a> {
    root: OwnedFd,
    root_path: PathBuf,
    whiteouts: &'a mut dyn WhiteoutStrategy,
    /// The safety rules, and what this layer has written so far.
    validator: EntryValidator,
    /// Directories written, with their mtimes, set once all content is in place.
    dirs: Vec<DirTime>,
    stats: ApplyStats,
}

/// Applies the uncompressed layer tar `input` into `root` with the given whiteout
/// strategy. On error the directory may hold part of the layer: callers build layers in
/// a temporary directory and discard it on error.
pub fn apply_layer(
    root: &Path,
    input: &mut dyn Read,
    whiteouts: &mut dyn WhiteoutStrategy,
) -> Result<ApplyStats> {
    let _span = tracing::debug_span!("apply_layer", root = %root.display()).entered();
    let mut a = Applier {
        root: fsutil::open_root(root)?,
        root_path: root.to_path_buf(),
        whiteouts,
        validator: EntryValidator::new(),
        dirs: Vec::new(),
        stats: ApplyStats::default(),
    };
    let mut archive = tar::Archive::new(input);
    let entries = archive
        .entries()
        .map_err(|e| LayerError::malformed("", e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| LayerError::malformed("", e.to_string()))?;
        a.entry(&mut entry)?;
    }
    a.finish()?;
    tracing::debug!(
        entries = a.stats.entries,
        bytes = a.stats.bytes,
        "layer applied"
    );
    Ok(a.stats)
}

impl Applier<'_> {
    fn path_of(&self, comps: &[Vec<u8>]) -> PathBuf {
        self.root_path.join(fsutil::rel_path(comps))
    }

    /// Opens (creating missing directories with mode 0755) the parent directory of an entry.
    fn parent_dir(&self, parent: &[Vec<u8>], shown: &str) -> Result<OwnedFd> {
        let rel = fsutil::rel_path(parent);
        match fsutil::open_dir_beneath(self.root.as_fd(), &rel) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) => {}
            Err(e) => return Err(self.resolve_error(shown, &rel, e)),
        }
        let mut cur = fsutil::open_dir_beneath(self.root.as_fd(), Path::new(""))
            .map_err(|e| LayerError::io("open", &self.root_path, e))?;
        let mut sofar = PathBuf::new();
        for c in parent {
            sofar.push(OsStr::from_bytes(c));
            let name = OsStr::from_bytes(c);
            match rfs::mkdirat(&cur, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => {
                    return Err(LayerError::io(
                        "create directory",
                        self.root_path.join(&sofar),
                        e,
                    ))
                }
            }
            cur = fsutil::open_dir_beneath(self.root.as_fd(), &sofar)
                .map_err(|e| self.resolve_error(shown, &sofar, e))?;
        }
        Ok(cur)
    }

    fn resolve_error(&self, shown: &str, rel: &Path, e: Errno) -> LayerError {
        match e {
            Errno::XDEV | Errno::LOOP => LayerError::unsafe_entry(
                shown,
                format!(
                    "{} resolves outside the layer through a symlink",
                    rel.display()
                ),
            ),
            Errno::NOTDIR => {
                LayerError::malformed(shown, format!("{} is not a directory", rel.display()))
            }
            e => LayerError::io("resolve", self.root_path.join(rel), e),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<()> {
        // Every safety rule lives in the validator; what reaches the file system below is
        // only what it accepted (and openat2(RESOLVE_BENEATH) still guards each step).
        let planned = self.validator.check_entry(entry)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let kind = entry.header().entry_type();
        let (path, link_target) = match planned {
            Planned::Skip => return Ok(()),
            Planned::Root => {
                // The root itself ("./"): only directory metadata applies.
                if kind == EntryType::Directory {
                    let meta = entry_meta(entry, &shown)?;
                    let root = fsutil::open_dir_beneath(self.root.as_fd(), Path::new(""))
                        .map_err(|e| LayerError::io("open", &self.root_path, e))?;
                    self.set_meta(
                        root.as_fd(),
                        OsStr::new("."),
                        &meta,
                        FileType::Directory,
                        &shown,
                    )?;
                    self.dirs.push((Vec::new(), meta.mtime));
                }
                return Ok(());
            }
            Planned::AufsMeta { dir } => {
                // Other AUFS meta files (.wh..wh.plnk…) carry nothing.
                self.parent_dir(&dir, &shown)?;
                self.stats.whiteouts += 1;
                return Ok(());
            }
            Planned::Opaque { dir } => {
                let pfd = self.parent_dir(&dir, &shown)?;
                self.stats.whiteouts += 1;
                let mut prefix = fsutil::rel_path(&dir).into_os_string().into_vec();
                if !prefix.is_empty() {
                    prefix.push(b'/');
                }
                let validator = &self.validator;
                let keep = |child: &[u8]| validator.written(&[prefix.as_slice(), child].concat());
                return self
                    .whiteouts
                    .opaque(pfd.as_fd(), &self.path_of(&dir), &keep);
            }
            Planned::Whiteout {
                dir,
                name,
                shadowed,
            } => {
                let pfd = self.parent_dir(&dir, &shown)?;
                self.stats.whiteouts += 1;
                if shadowed {
                    return Ok(()); // an entry of this same layer wins over its whiteout
                }
                let mut target = dir;
                target.push(name);
                let Some(name) = target.last() else {
                    return Ok(());
                };
                return self.whiteouts.whiteout(
                    pfd.as_fd(),
                    OsStr::from_bytes(name),
                    &self.path_of(&target),
                );
            }
            Planned::Write { path } => (path, None),
            Planned::Hardlink { path, target } => (path, Some(target)),
        };
        let Some((name, parent)) = path.split_last() else {
            return Ok(());
        };

        let meta = entry_meta(entry, &shown)?;
        let pfd = self.parent_dir(parent, &shown)?;
        let pfd = pfd.as_fd();
        let oname = OsStr::from_bytes(name);
        let full = self.path_of(&path);
        let io = |op: &'static str, e: Errno| LayerError::io(op, &full, e);

        // Replace what is there unless both are directories.
        let existing = fsutil::lstat_at(pfd, oname).ok();
        let is_dir_entry = kind == EntryType::Directory;
        let mut keep_dir = false;
        if let Some(st) = &existing {
            let was_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
            keep_dir = was_dir && is_dir_entry;
            if !keep_dir {
                fsutil::remove_all_at(pfd, oname).map_err(|e| io("remove existing", e))?;
            }
        }

        if let Some(target) = link_target {
            let Some((tname, tparent)) = target.split_last() else {
                return Err(LayerError::unsafe_entry(&shown, "hardlink to the root"));
            };
            let tfd = fsutil::open_dir_beneath(self.root.as_fd(), &fsutil::rel_path(tparent))
                .map_err(|e| match e {
                    Errno::NOENT | Errno::NOTDIR => {
                        LayerError::malformed(&shown, "hardlink target is not in this layer")
                    }
                    e => self.resolve_error(&shown, &fsutil::rel_path(tparent), e),
                })?;
            let tst = fsutil::lstat_at(tfd.as_fd(), OsStr::from_bytes(tname)).map_err(|_| {
                LayerError::malformed(&shown, "hardlink target is not in this layer")
            })?;
            if FileType::from_raw_mode(tst.st_mode) == FileType::Directory {
                return Err(LayerError::malformed(&shown, "hardlink to a directory"));
            }
            rfs::linkat(&tfd, OsStr::from_bytes(tname), pfd, oname, AtFlags::empty())
                .map_err(|e| io("hardlink", e))?;
            // A hard link shares the target's inode and metadata.
            self.stats.entries += 1;
            return Ok(());
        }

        let ftype = match kind {
            EntryType::Directory => {
                if !keep_dir {
                    rfs::mkdirat(pfd, oname, Mode::from_raw_mode(0o700))
                        .map_err(|e| io("mkdir", e))?;
                }
                FileType::Directory
            }
            EntryType::Symlink => {
                // The validator checked the target (present, no NUL, not climbing out).
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| LayerError::malformed(&shown, "symlink without target"))?
                    .into_owned();
                rfs::symlinkat(OsStr::from_bytes(&target), pfd, oname)
                    .map_err(|e| io("symlink", e))?;
                FileType::Symlink
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                let ft = match kind {
                    EntryType::Char => FileType::CharacterDevice,
                    EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                rfs::mknodat(
                    pfd,
                    oname,
                    ft,
                    Mode::from_raw_mode(0o600),
                    rfs::makedev(major, minor),
                )
                .map_err(|e| io("mknod", e))?;
                ft
            }
            // Regular, Continuous and GNUSparse (the validator plans nothing else).
            _ => {
                let fd = rfs::openat(
                    pfd,
                    oname,
                    OFlags::WRONLY
                        | OFlags::CREATE
                        | OFlags::EXCL
                        | OFlags::NOFOLLOW
                        | OFlags::CLOEXEC,
                    Mode::from_raw_mode(0o600),
                )
                .map_err(|e| io("create file", e))?;
                let mut file = std::fs::File::from(fd);
                let size = entry.size();
                fsutil::write_sparse(entry, &mut file, size)
                    .map_err(|e| LayerError::io("write file", &full, e))?;
                self.stats.bytes += size;
                FileType::RegularFile
            }
        };
        self.set_meta(pfd, oname, &meta, ftype, &shown)?;
        if ftype == FileType::Directory {
            self.dirs.push((path.clone(), meta.mtime));
        }
        self.stats.entries += 1;
        Ok(())
    }

    /// Owner, then mode (chown clears set-id bits), then xattrs (chown clears
    /// security.capability), then times (directories: deferred to the end).
    fn set_meta(
        &self,
        pfd: BorrowedFd<'_>,
        name: &OsStr,
        meta: &EntryMeta,
        ftype: FileType,
        shown: &str,
    ) -> Result<()> {
        let full = self.root_path.join(shown.trim_start_matches('/'));
        let io = |op: &'static str, e: Errno| LayerError::io(op, &full, e);
        rfs::chownat(
            pfd,
            name,
            Some(rfs::Uid::from_raw(meta.uid)),
            Some(rfs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(|e| io("chown", e))?;
        if ftype != FileType::Symlink {
            rfs::chmodat(
                pfd,
                name,
                Mode::from_raw_mode(meta.mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(|e| io("chmod", e))?;
        }
        if !meta.xattrs.is_empty() {
            let leaf = fsutil::open_leaf(pfd, name).map_err(|e| io("open", e))?;
            for (k, v) in &meta.xattrs {
                fsutil::set_xattr(leaf.as_fd(), k, v).map_err(|e| {
                    LayerError::io(
                        "set xattr",
                        format!("{} ({})", full.display(), String::from_utf8_lossy(k)),
                        e,
                    )
                })?;
            }
        }
        if ftype != FileType::Directory {
            set_mtime(pfd, name, meta.mtime).map_err(|e| io("set times", e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        // Deepest first, so setting a child's time never disturbs a parent's.
        let mut dirs = std::mem::take(&mut self.dirs);
        dirs.sort_by_key(|(c, _)| std::cmp::Reverse(c.len()));
        for (comps, mtime) in dirs {
            let path = self.path_of(&comps);
            if comps.is_empty() {
                let fd = fsutil::open_dir_beneath(self.root.as_fd(), Path::new(""))
                    .map_err(|e| LayerError::io("open", &path, e))?;
                set_mtime(fd.as_fd(), OsStr::new("."), mtime)
                    .map_err(|e| LayerError::io("set times", &path, e))?;
                continue;
            }
            let Some((name, parent)) = comps.split_last() else {
                continue;
            };
            // The directory may have been removed by a later whiteout.
            let Ok(pfd) = fsutil::open_dir_beneath(self.root.as_fd(), &fsutil::rel_path(parent))
            else {
                continue;
            };
            match set_mtime(pfd.as_fd(), OsStr::from_bytes(name), mtime) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(LayerError::io("set times", &path, e)),
            }
        }
        Ok(())
    }
}

/// Sets atime and mtime of `name` in `dir` without following a final symlink.
pub fn set_mtime(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    (secs, nsec): (i64, u32),
) -> std::result::Result<(), Errno> {
    let t = rfs::Timespec {
        tv_sec: secs,
        tv_nsec: nsec.into(),
    };
    rfs::utimensat(
        dir,
        name,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzzing regression: `.wh...` (a whiteout of `..`) at the top of a layer emptied the
    /// directory that holds the layer directory; `.wh..` emptied the layer root.
    #[test]
    fn whiteouts_of_dot_and_dotdot_are_refused() {
        for name in [".wh...", ".wh..", "a/.wh...", "a/.wh.."] {
            for overlay in [false, true] {
                let sandbox = tempfile::tempdir().unwrap();
                let root = sandbox.path().join("layer");
                std::fs::create_dir(&root).unwrap();
                std::fs::create_dir(root.join("a")).unwrap();
                std::fs::write(sandbox.path().join("sentinel"), b"keep").unwrap();
                std::fs::write(root.join("a").join("f"), b"keep").unwrap();
                let mut b = tar::Builder::new(Vec::new());
                let mut h = tar::Header::new_ustar();
                h.set_size(0);
                h.set_mode(0o644);
                h.set_entry_type(EntryType::Regular);
                b.append_data(&mut h, name, std::io::empty()).unwrap();
                let bytes = b.into_inner().unwrap();
                let err = if overlay {
                    apply_layer(&root, &mut bytes.as_slice(), &mut crate::OverlayWhiteouts)
                } else {
                    apply_layer(&root, &mut bytes.as_slice(), &mut crate::DeletingWhiteouts)
                }
                .unwrap_err();
                assert!(err.is_invalid_input(), "{name}: {err}");
                assert_eq!(
                    std::fs::read(sandbox.path().join("sentinel")).unwrap(),
                    b"keep",
                    "{name}"
                );
                assert_eq!(std::fs::read(root.join("a/f")).unwrap(), b"keep", "{name}");
            }
        }
    }

    #[test]
    fn pax_times_parse() {
        assert_eq!(parse_pax_time(b"12.5"), Some((12, 500_000_000)));
        assert_eq!(parse_pax_time(b"7"), Some((7, 0)));
        assert_eq!(parse_pax_time(b"x"), None);
    }
}
