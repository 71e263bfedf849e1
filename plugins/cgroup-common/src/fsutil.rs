//! Reading and writing cgroup interface files, creating and removing group directories.

use std::{
    fs, io,
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use crate::error::{CgError, CgResult};

/// Reads a whole interface file.
pub fn read(path: &Path) -> CgResult<String> {
    fs::read_to_string(path).map_err(|e| CgError::io("read", path, e))
}

/// Reads an interface file, `None` if it does not exist.
pub fn read_opt(path: &Path) -> CgResult<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CgError::io("read", path, e)),
    }
}

/// Reads a file holding one number (`max` is `None`).
pub fn read_u64_or_max(path: &Path) -> CgResult<Option<u64>> {
    let s = read(path)?;
    parse_u64_or_max(path, &s)
}

/// Like [`read_u64_or_max`] but `Ok(None)` when the file is missing too.
pub fn read_u64_opt(path: &Path) -> CgResult<Option<u64>> {
    match read_opt(path)? {
        Some(s) => parse_u64_or_max(path, &s),
        None => Ok(None),
    }
}

fn parse_u64_or_max(path: &Path, s: &str) -> CgResult<Option<u64>> {
    let t = s.trim();
    if t == "max" {
        return Ok(None);
    }
    t.parse::<u64>().map(Some).map_err(|_| CgError::Parse {
        path: path.to_path_buf(),
        content: t.to_string(),
    })
}

/// Writes `value` to an interface file (no create, no truncate semantics beyond the kernel's).
pub fn write(path: &Path, value: &str) -> CgResult<()> {
    tracing::debug!(path = %path.display(), value, "cgroup write");
    fs::write(path, value).map_err(|source| CgError::Write {
        value: value.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// Value of `key` in a flat-keyed file (`key value` per line), e.g. `memory.events`.
pub fn flat_key(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|l| {
        let mut it = l.split_whitespace();
        if it.next()? == key {
            it.next()?.parse().ok()
        } else {
            None
        }
    })
}

/// Creates one group directory. `Ok(false)` if it already existed.
pub fn mkdir(path: &Path) -> CgResult<bool> {
    tracing::debug!(path = %path.display(), "cgroup mkdir");
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(CgError::io("create cgroup", path, e)),
    }
}

/// Creates group `path`; if its parent vanished meanwhile (another berth removed the
/// empty parent after its last container), recreates it with `ensure_parent` and retries.
pub fn mkdir_group(path: &Path, ensure_parent: &dyn Fn() -> CgResult<()>) -> CgResult<bool> {
    for _ in 0..5 {
        match fs::create_dir(path) {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => ensure_parent()?,
            Err(e) => return Err(CgError::io("create cgroup", path, e)),
        }
    }
    mkdir(path)
}

/// Removes berth's parent groups (`anchor/rel`, innermost first) once they are empty, so
/// no group of ours outlives the last container. Never touches `anchor`. Best effort: a
/// parent that still has groups (or a race with a creator, see [`mkdir_group`]) stays.
pub fn remove_empty_parents(anchor: &Path, rel: &Path) {
    let mut p = anchor.join(rel);
    while p != anchor && p.starts_with(anchor) {
        if fs::remove_dir(&p).is_err() {
            break;
        }
        tracing::debug!(path = %p.display(), "removed empty parent group");
        if !p.pop() {
            break;
        }
    }
}

/// Creates `base/rel` component by component, returning the directories it created
/// (outermost first). `base` itself must exist and is never written.
pub fn mkdir_below(base: &Path, rel: &Path) -> CgResult<Vec<PathBuf>> {
    if !base.is_dir() {
        return Err(CgError::io(
            "find cgroup",
            base,
            io::Error::from(io::ErrorKind::NotFound),
        ));
    }
    let mut created = Vec::new();
    let mut cur = base.to_path_buf();
    for comp in rel.components() {
        cur.push(comp);
        if mkdir(&cur)? {
            created.push(cur.clone());
        }
    }
    Ok(created)
}

/// Removes a group directory, retrying on `EBUSY` (tasks still exiting) for up to `wait`.
/// A missing directory is success.
pub fn rmdir_retry(path: &Path, wait: Duration) -> CgResult<()> {
    let deadline = Instant::now() + wait;
    let mut pause = Duration::from_millis(1);
    loop {
        tracing::debug!(path = %path.display(), "cgroup rmdir");
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => return Err(CgError::io("remove cgroup", path, e)),
        }
    }
}

/// Names of the child groups of `dir` (empty if `dir` does not exist).
pub fn child_groups(dir: &Path) -> CgResult<Vec<String>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(CgError::io("list", dir, e)),
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|e| CgError::io("list", dir, e))?;
        let is_dir = ent
            .file_type()
            .map_err(|e| CgError::io("stat", ent.path(), e))?
            .is_dir();
        if is_dir {
            if let Some(n) = ent.file_name().to_str() {
                out.push(n.to_string());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Pids listed in a `cgroup.procs` file (missing file = none).
pub fn read_pids(procs: &Path) -> CgResult<Vec<i32>> {
    let Some(s) = read_opt(procs)? else {
        return Ok(Vec::new());
    };
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim().parse::<i32>().map_err(|_| CgError::Parse {
                path: procs.to_path_buf(),
                content: l.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_keys() {
        let c = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n";
        assert_eq!(flat_key(c, "oom_kill"), Some(2));
        assert_eq!(flat_key(c, "oom"), Some(1));
        assert_eq!(flat_key(c, "nope"), None);
    }

    #[test]
    fn u64_or_max() {
        let p = Path::new("/x");
        assert_eq!(parse_u64_or_max(p, "max\n").unwrap(), None);
        assert_eq!(parse_u64_or_max(p, "42\n").unwrap(), Some(42));
        assert!(parse_u64_or_max(p, "x").is_err());
    }

    #[test]
    fn mkdir_below_reports_created_dirs_and_rmdir_is_idempotent() {
        let t = std::env::temp_dir().join(format!("bt-cgc-fs-{}", std::process::id()));
        fs::create_dir_all(&t).unwrap();
        let created = mkdir_below(&t, Path::new("a/b")).unwrap();
        assert_eq!(created, vec![t.join("a"), t.join("a/b")]);
        assert!(mkdir_below(&t, Path::new("a/b")).unwrap().is_empty());
        assert_eq!(child_groups(&t.join("a")).unwrap(), vec!["b".to_string()]);
        rmdir_retry(&t.join("a/b"), Duration::ZERO).unwrap();
        rmdir_retry(&t.join("a/b"), Duration::ZERO).unwrap();
        fs::remove_dir_all(&t).unwrap();
    }
}
