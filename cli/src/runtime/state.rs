//! The state of one container: `<root>/<id>/` holds `state.json` (what `create` recorded),
//! `config.json` (the bundle's config as it was at create, for `exec`'s defaults),
//! `exec.fifo` (while the process waits for `start`) and `lock` (flock'ed by every
//! command that changes the container).

use std::{
    collections::HashMap,
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// What `create` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// Field 22 of `/proc/<pid>/stat` at create: a recycled pid has another start time.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// The isolator group (named after `linux.cgroupsPath`, or the id).
    pub group: String,
    /// The isolator's parent for this group, when `cgroupsPath` named one.
    #[serde(default)]
    pub cgroup_parent: Option<String>,
    #[serde(default)]
    pub paused: bool,
}

/// OCI status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// A container's directory under `--root`.
pub struct Dir {
    pub path: PathBuf,
    pub id: String,
}

/// runc's id rule: letters, digits, `_`, `+`, `-`, `.`; not `.` or `..`.
pub fn check_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id != "."
        && id != ".."
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if !ok {
        bail!("invalid container id {id:?}: use letters, digits, '_', '+', '-' and '.'");
    }
    Ok(())
}

/// Process state letter and start time from `/proc/<pid>/stat`.
pub fn proc_stat(pid: i32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may contain anything: parse after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is index 19 after the state (field 3).
    let start = fields.get(19)?.parse().ok()?;
    Some((state, start))
}

impl Dir {
    pub fn new(root: &Path, id: &str) -> Result<Dir> {
        check_id(id)?;
        Ok(Dir {
            path: root.join(id),
            id: id.to_string(),
        })
    }

    pub fn exists(&self) -> bool {
        self.path.join("state.json").is_file()
    }

    pub fn fifo(&self) -> PathBuf {
        self.path.join("exec.fifo")
    }

    pub fn config(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// Makes the directory; an existing one means the id is taken.
    pub fn make(&self) -> Result<()> {
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating the state directory {}", parent.display()))?;
        }
        match std::fs::create_dir(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!("container with id {:?} already exists", self.id)
            }
            Err(e) => Err(e).with_context(|| format!("creating {}", self.path.display())),
        }
    }

    /// Takes the container's lock (blocking): held until the returned file is dropped.
    pub fn lock(&self) -> Result<File> {
        let p = self.path.join("lock");
        let f = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .with_context(|| {
                if self.path.is_dir() {
                    format!("opening {}", p.display())
                } else {
                    format!("container {:?} does not exist", self.id)
                }
            })?;
        fs2::FileExt::lock_exclusive(&f).with_context(|| format!("locking {}", p.display()))?;
        Ok(f)
    }

    pub fn load(&self) -> Result<Record> {
        let p = self.path.join("state.json");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("container {:?} does not exist", self.id)
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", p.display())),
        };
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }

    /// Writes `state.json` through a temporary file and a rename.
    pub fn save(&self, r: &Record) -> Result<()> {
        write_atomic(
            &self.path.join("state.json"),
            serde_json::to_vec_pretty(r)?.as_slice(),
        )
    }

    /// The container's status now.
    pub fn status(&self, r: &Record) -> Status {
        match proc_stat(r.pid) {
            Some((state, start)) if start == r.start_time && state != 'Z' && state != 'X' => {
                if self.fifo().exists() {
                    Status::Created
                } else if r.paused {
                    Status::Paused
                } else {
                    Status::Running
                }
            }
            _ => Status::Stopped,
        }
    }
}

/// The OCI state JSON of a container (runc's field order and names).
pub fn state_json(r: &Record, status: Status) -> serde_json::Value {
    let mut v = serde_json::json!({
        "ociVersion": "1.0.2",
        "id": r.id,
        "pid": if status == Status::Stopped { 0 } else { r.pid },
        "status": status.as_str(),
        "bundle": r.bundle,
        "rootfs": r.rootfs,
        "created": r.created,
        "owner": "",
    });
    if !r.annotations.is_empty() {
        v["annotations"] = serde_json::json!(r.annotations);
    }
    v
}

/// Writes `path` through `path.tmp` + rename, so readers see all of it or nothing.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(data)
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_runc() {
        for ok in ["a", "ctr-1", "x_y.z+w"] {
            check_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "ä"] {
            assert!(check_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn own_stat_parses() {
        let (state, start) = proc_stat(std::process::id() as i32).unwrap();
        assert!(state == 'R' || state == 'S', "{state}");
        assert!(start > 0);
    }
}
