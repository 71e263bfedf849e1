//! Whiteout strategies: how the OCI whiteout entries (`.wh.NAME`, `.wh..wh..opq`) of a
//! layer tar become file system state. The caller picks one per driver.

use std::ffi::OsStr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{self as rfs, FileType, Mode};
use rustix::io::Errno;

use crate::error::{LayerError, Result};
use crate::fsutil;

/// Prefix of an OCI whiteout file name.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Prefix of AUFS meta entries (`.wh..wh.plnk`…), of which only the opaque marker counts.
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// Name of the opaque-directory marker.
pub const OPAQUE_NAME: &str = ".wh..wh..opq";
/// The overlayfs xattr marking an opaque directory.
pub const OVERLAY_OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// Turns OCI whiteouts into the file system form a driver needs.
pub trait WhiteoutStrategy {
    /// `NAME` in directory `parent` is deleted by this layer (`full` is for messages).
    fn whiteout(&mut self, parent: BorrowedFd<'_>, name: &OsStr, full: &Path) -> Result<()>;
    /// Directory `dir` hides everything below it from lower layers; `keep(child)` tells
    /// whether a child was written by this same layer.
    fn opaque(
        &mut self,
        dir: BorrowedFd<'_>,
        full: &Path,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<()>;
}

/// overlayfs form: a character device 0/0 named NAME; `trusted.overlay.opaque=y` on the dir.
#[derive(Debug, Default)]
pub struct OverlayWhiteouts;

impl WhiteoutStrategy for OverlayWhiteouts {
    fn whiteout(&mut self, parent: BorrowedFd<'_>, name: &OsStr, full: &Path) -> Result<()> {
        fsutil::remove_all_at(parent, name).map_err(|e| LayerError::io("remove", full, e))?;
        rfs::mknodat(
            parent,
            name,
            FileType::CharacterDevice,
            Mode::empty(),
            rfs::makedev(0, 0),
        )
        .map_err(|e| LayerError::io("create whiteout device", full, e))
    }

    fn opaque(
        &mut self,
        dir: BorrowedFd<'_>,
        full: &Path,
        _keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<()> {
        fsutil::set_xattr(dir, OVERLAY_OPAQUE_XATTR, b"y")
            .map_err(|e| LayerError::io("set trusted.overlay.opaque on", full, e))
    }
}

/// Full-copy form (vfs): the layer directory already holds the parent's tree, so a whiteout
/// deletes NAME and an opaque marker empties the directory of what lower layers put there.
#[derive(Debug, Default)]
pub struct DeletingWhiteouts;

impl WhiteoutStrategy for DeletingWhiteouts {
    fn whiteout(&mut self, parent: BorrowedFd<'_>, name: &OsStr, full: &Path) -> Result<()> {
        fsutil::remove_all_at(parent, name).map_err(|e| LayerError::io("remove", full, e))
    }

    fn opaque(
        &mut self,
        dir: BorrowedFd<'_>,
        full: &Path,
        keep: &dyn Fn(&[u8]) -> bool,
    ) -> Result<()> {
        let rd = fsutil::open_dir_read(dir, OsStr::new("."))
            .map_err(|e| LayerError::io("open", full, e))?;
        let names = fsutil::read_names(rd.as_fd())
            .map_err(|e| LayerError::io("read directory", full, e))?;
        for n in names {
            if keep(n.as_bytes()) {
                continue;
            }
            match fsutil::remove_all_at(dir, &n) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(e) => return Err(LayerError::io("remove", full.join(&n), e)),
            }
        }
        Ok(())
    }
}
