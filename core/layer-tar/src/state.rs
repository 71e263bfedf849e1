//! Small building blocks shared by storage drivers for their state directories: safe
//! object directory names, a state-wide lock, temporary build directories that survive a
//! crash only as recognisable leftovers, and mount table queries.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{self as rfs, FlockOperation, Mode, OFlags};
use sha2::{Digest, Sha256};

use crate::error::{LayerError, Result};

/// The directory name of an object with host key `key`: hex of sha256(key), so any key
/// (`sha256:…`, container ids, anything) becomes a fixed, safe name.
pub fn object_id(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// An exclusive `flock` on a file; released on drop.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
}

/// Takes the exclusive lock on `path` (creating the file), waiting for other holders.
pub fn lock_exclusive(path: &Path) -> Result<LockGuard> {
    let fd = rfs::open(
        path,
        OFlags::RDWR | OFlags::CREATE | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o600),
    )
    .map_err(|e| LayerError::io("open lock file", path, e))?;
    rfs::flock(&fd, FlockOperation::LockExclusive).map_err(|e| LayerError::io("lock", path, e))?;
    Ok(LockGuard {
        _file: File::from(fd),
    })
}

/// A directory under a driver's `tmp/` in which an object is built before it is renamed
/// into place. It holds an `flock` on itself while alive, so [`sweep_temp_dirs`] can
/// tell a crashed build from one in progress in another process.
#[derive(Debug)]
pub struct TempBuild {
    path: PathBuf,
    _lock: File,
    keep: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempBuild {
    pub fn new(tmp_root: &Path) -> Result<TempBuild> {
        std::fs::create_dir_all(tmp_root)
            .map_err(|e| LayerError::io("create directory", tmp_root, e))?;
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = tmp_root.join(format!("build-{}-{n}-{nanos:x}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| LayerError::io("create directory", &path, e))?;
        let fd = rfs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| LayerError::io("open", &path, e))?;
        rfs::flock(&fd, FlockOperation::NonBlockingLockExclusive)
            .map_err(|e| LayerError::io("lock", &path, e))?;
        Ok(TempBuild {
            path,
            _lock: File::from(fd),
            keep: false,
        })
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The directory was renamed into place: do not delete it on drop.
    pub fn persist(mut self) {
        self.keep = true;
    }
}

impl Drop for TempBuild {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = crate::fsutil::remove_tree(&self.path) {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove temporary build directory");
            }
        }
    }
}

/// Removes every entry of `tmp_root` that no live [`TempBuild`] holds. Returns what it removed.
pub fn sweep_temp_dirs(tmp_root: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let rd = match std::fs::read_dir(tmp_root) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(LayerError::io("read directory", tmp_root, e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| LayerError::io("read directory", tmp_root, e))?;
        let p = ent.path();
        let is_dir = ent.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir {
            let Ok(fd) = rfs::open(
                &p,
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            ) else {
                continue;
            };
            if rfs::flock(fd.as_fd(), FlockOperation::NonBlockingLockExclusive).is_err() {
                continue; // a build in progress
            }
            crate::fsutil::remove_tree(&p)?;
        } else {
            std::fs::remove_file(&p).map_err(|e| LayerError::io("remove", &p, e))?;
        }
        removed.push(p);
    }
    Ok(removed)
}

/// One line of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub mount_point: PathBuf,
    pub root: PathBuf,
    pub fs_type: String,
    pub source: String,
    pub super_options: String,
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.splitn(3, ' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        out.push(MountInfo {
            root: PathBuf::from(unescape(pre[3])),
            mount_point: PathBuf::from(unescape(pre[4])),
            fs_type: post[0].to_string(),
            source: unescape(post[1]),
            super_options: unescape(post[2]),
        });
    }
    out
}

/// The mounts of the calling process's mount namespace.
pub fn mounts() -> Result<Vec<MountInfo>> {
    let p = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(p).map_err(|e| LayerError::io("read", p, e))?;
    Ok(parse_mountinfo(&text))
}

/// True when something is mounted exactly at `target`.
pub fn is_mount_point(target: &Path) -> Result<bool> {
    Ok(mounts()?.iter().any(|m| m.mount_point == target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_ids_are_fixed_hex() {
        let a = object_id("sha256:abc");
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, object_id("../../etc"));
    }

    #[test]
    fn mountinfo_parses_and_unescapes() {
        let t = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - overlay overlay rw,lowerdir=/a:/b\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].mount_point, PathBuf::from("/mnt/with space"));
        assert_eq!(m[0].fs_type, "overlay");
        assert!(m[0].super_options.contains("lowerdir=/a:/b"));
    }

    #[test]
    fn temp_builds_are_swept_only_when_abandoned() {
        let d = tempfile::tempdir().unwrap();
        let live = TempBuild::new(d.path()).unwrap();
        std::fs::create_dir(d.path().join("build-crashed")).unwrap();
        let removed = sweep_temp_dirs(d.path()).unwrap();
        assert_eq!(removed, vec![d.path().join("build-crashed")]);
        assert!(live.path().exists());
        let p = live.path().to_path_buf();
        drop(live);
        assert!(!p.exists());
    }
}
