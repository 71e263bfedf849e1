//! `--user` resolution against the container's own `/etc/passwd` and `/etc/group`,
//! read with `openat2(RESOLVE_IN_ROOT)` so a symlink in the image can never point the
//! runtime at a host file.

use std::{
    fs::File,
    io::Read,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
};

use nix::errno::Errno;

use crate::RuntimeError;

/// Resolved identity of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (primary group first).
    pub groups: Vec<u32>,
    pub home: String,
}

/// Opens `rel` inside `root` the way the kernel resolves paths in a chroot: `..` and
/// absolute symlinks stay inside `root`; magic links (`/proc/x/root`) are refused.
pub(crate) fn open_in_root(root: &OwnedFd, rel: &str, flags: i32) -> Result<OwnedFd, Errno> {
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let c = std::ffi::CString::new(rel).map_err(|_| Errno::EINVAL)?;
    let how = crate::child::OpenHow::in_root(flags);
    // SAFETY: `c` is a NUL-terminated string and `how` a properly sized open_how that
    // outlive the call; openat2 returns a new descriptor that we take ownership of.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const crate::child::OpenHow,
            std::mem::size_of::<crate::child::OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(Errno::last());
    }
    // SAFETY: openat2 succeeded, so `fd` is a fresh descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

pub(crate) fn open_root(rootfs: &Path) -> Result<OwnedFd, RuntimeError> {
    let f = File::options()
        .read(true)
        .custom_flags_dir()
        .open(rootfs)
        .map_err(|e| RuntimeError::io("opening the container root", rootfs, e))?;
    Ok(OwnedFd::from(f))
}

trait DirFlags {
    fn custom_flags_dir(&mut self) -> &mut Self;
}
impl DirFlags for std::fs::OpenOptions {
    fn custom_flags_dir(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
    }
}

/// Reads a small text file inside the root; `Ok(None)` when it does not exist.
fn read_in_root(root: &OwnedFd, rootfs: &Path, rel: &str) -> Result<Option<String>, RuntimeError> {
    match open_in_root(root, rel, libc::O_RDONLY) {
        Ok(fd) => {
            let mut s = String::new();
            File::from(fd)
                .read_to_string(&mut s)
                .map_err(|e| RuntimeError::io("reading", rootfs.join(rel), e))?;
            Ok(Some(s))
        }
        Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(RuntimeError::io("opening", rootfs.join(rel), e.into())),
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 6 {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5],
        })
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|l| {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            return None;
        }
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 3 {
            return None;
        }
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    })
}

/// The largest uid or gid runc (and so Docker) accepts: a non-negative `int32`.
const MAX_ID: u64 = i32::MAX as u64;

/// A numeric uid/gid: `Ok(None)` for a name, an error for a number out of range (which
/// would otherwise be looked up as a name and reported as a missing user).
fn parse_id(s: &str) -> Result<Option<u32>, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u64>() {
        Ok(n) if n <= MAX_ID => Ok(Some(n as u32)),
        _ => Err(format!("uids and gids must be in range 0-{MAX_ID}")),
    }
}

/// Checks the numeric parts of a `--user` value (`uid[:gid]`) without a root filesystem,
/// so `create` can refuse an id out of range before anything is made.
pub fn validate_user(user: &str) -> Result<(), RuntimeError> {
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    for part in [u, g] {
        parse_id(part).map_err(|reason| RuntimeError::User {
            user: user.to_string(),
            reason,
        })?;
    }
    Ok(())
}

/// Resolves a Docker `--user` value against `/etc/passwd` and `/etc/group` inside `rootfs`.
///
/// Returns `(uid, gid, supplementary groups, home)`. Numeric ids need no entry (then the
/// group is 0 and the home `/`, as with runc); names must exist.
pub fn resolve_user(
    rootfs: &Path,
    user: &str,
) -> Result<(u32, u32, Vec<u32>, String), RuntimeError> {
    let r = resolve(rootfs, user)?;
    Ok((r.uid, r.gid, r.groups, r.home))
}

pub(crate) fn resolve(rootfs: &Path, user: &str) -> Result<ResolvedUser, RuntimeError> {
    let root = open_root(rootfs)?;
    resolve_at(&root, rootfs, user)
}

pub(crate) fn resolve_at(
    root: &OwnedFd,
    rootfs: &Path,
    user: &str,
) -> Result<ResolvedUser, RuntimeError> {
    let err = |reason: String| RuntimeError::User {
        user: user.to_string(),
        reason,
    };
    let (upart, gpart) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let upart = if upart.is_empty() { "0" } else { upart };
    let numeric_uid = parse_id(upart).map_err(err)?;
    let numeric_gid = match gpart {
        Some(g) => parse_id(g).map_err(err)?,
        None => None,
    };
    let passwd = read_in_root(root, rootfs, "etc/passwd")?;
    let entry = passwd.as_deref().and_then(|p| {
        passwd_entries(p).find(|e| match numeric_uid {
            Some(uid) => e.uid == uid,
            None => e.name == upart,
        })
    });
    let (uid, mut gid, home, name) = match (&entry, numeric_uid) {
        (Some(e), _) => (e.uid, e.gid, e.home.to_string(), Some(e.name.to_string())),
        (None, Some(uid)) => (uid, 0, "/".to_string(), None),
        (None, None) => {
            return Err(err(if passwd.is_some() {
                "no matching entries in the container's /etc/passwd".into()
            } else {
                "the container has no /etc/passwd".into()
            }))
        }
    };
    let group = read_in_root(root, rootfs, "etc/group")?;
    if let Some(g) = gpart.filter(|g| !g.is_empty()) {
        gid = match numeric_gid {
            Some(n) => n,
            None => group
                .as_deref()
                .and_then(|t| group_entries(t).find(|e| e.name == g).map(|e| e.gid))
                .ok_or_else(|| err(format!("no group {g:?} in the container's /etc/group")))?,
        };
    }
    let mut groups = vec![gid];
    if let (Some(name), Some(text)) = (name.as_deref(), group.as_deref()) {
        for e in group_entries(text) {
            if e.members.contains(&name) && !groups.contains(&e.gid) {
                groups.push(e.gid);
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        groups,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# comment\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nalice:x:1000:1000::/home/alice:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\nwheel:x:10:root,alice\nnogroup:x:65534:\nalice:x:1000:\nstaff:x:50:alice\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn default_is_root_with_its_groups() {
        let d = root();
        let (u, g, gs, h) = resolve_user(d.path(), "").unwrap();
        assert_eq!((u, g, gs, h.as_str()), (0, 0, vec![0, 10], "/root"));
    }

    #[test]
    fn names_and_numbers() {
        let d = root();
        assert_eq!(
            resolve_user(d.path(), "nobody").unwrap(),
            (65534, 65534, vec![65534], "/nonexistent".to_string())
        );
        assert_eq!(
            resolve_user(d.path(), "alice:wheel").unwrap(),
            (1000, 10, vec![10, 50], "/home/alice".to_string())
        );
        assert_eq!(resolve_user(d.path(), "65534:65534").unwrap().0, 65534);
        // Unknown numeric uid: gid 0, home /.
        assert_eq!(
            resolve_user(d.path(), "4242").unwrap(),
            (4242, 0, vec![0], "/".to_string())
        );
        assert_eq!(resolve_user(d.path(), "4242:7").unwrap().1, 7);
    }

    #[test]
    fn ids_out_of_range_say_so() {
        let d = root();
        for user in [
            "99999999999",
            "2147483648",
            "0:99999999999",
            "alice:4294967296",
        ] {
            let e = resolve_user(d.path(), user).unwrap_err().to_string();
            assert!(
                e.contains("uids and gids must be in range 0-2147483647"),
                "{user}: {e}"
            );
            let e = validate_user(user).unwrap_err().to_string();
            assert!(e.contains("range 0-2147483647"), "{user}: {e}");
        }
        // The largest id is still a number, not a name to look up.
        assert_eq!(resolve_user(d.path(), "2147483647").unwrap().0, 2147483647);
        for user in ["", "alice", "1000:50", "2147483647:0", "nobody:nogroup"] {
            validate_user(user).unwrap();
        }
    }

    #[test]
    fn unknown_names_fail() {
        let d = root();
        let e = resolve_user(d.path(), "mallory").unwrap_err();
        assert!(e.to_string().contains("mallory"), "{e}");
        assert!(resolve_user(d.path(), "alice:nope").is_err());
    }

    #[test]
    fn symlink_out_of_root_is_resolved_inside() {
        // /etc/passwd -> /etc/passwd.real (absolute): must read the root's file, not the host's.
        let d = root();
        std::fs::rename(
            d.path().join("etc/passwd"),
            d.path().join("etc/passwd.real"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd.real", d.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(d.path(), "alice").unwrap().0, 1000);
        // A symlink escaping with .. stays in the root too.
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(
            "../../../../../../etc/passwd.real",
            d.path().join("etc/passwd"),
        )
        .unwrap();
        assert_eq!(resolve_user(d.path(), "alice").unwrap().0, 1000);
        // A symlink to a host-only file does not reach the host.
        std::fs::remove_file(d.path().join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root/etc/passwd", d.path().join("etc/passwd"))
            .unwrap();
        assert!(resolve_user(d.path(), "root").is_err());
    }
}
