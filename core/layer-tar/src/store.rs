//! The object store both first-party storage drivers keep in their state directory:
//!
//! ```text
//! <state>/objects/<sha256(key)>/meta.json   key, parent, kind, lower chain
//! <state>/objects/<sha256(key)>/…           driver-specific content
//! <state>/mounts/<sha256(key)>              where the object is mounted (written before mounting)
//! <state>/tmp/                              objects being built or deleted
//! <state>/lock                              flock serialising renames across processes
//! ```
//!
//! Objects are built under `tmp/` and renamed into place with `RENAME_NOREPLACE`, and
//! deleted by renaming them back into `tmp/` first, so a crash leaves only `tmp/` entries
//! (swept by [`Store::sweep`]) and never a half object under `objects/`.

use std::path::{Path, PathBuf};

use rustix::fs::{self as rfs, RenameFlags};
use rustix::io::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{LayerError, Result};
use crate::state::{self, LockGuard, TempBuild};

/// The kind of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Committed,
    Active,
    View,
}

/// What `meta.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub key: String,
    pub parent: Option<String>,
    pub kind: Kind,
    /// Object ids of the committed layers below, nearest first.
    pub chain: Vec<String>,
}

/// A driver's object store.
#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
    pub objects: PathBuf,
    pub tmp: PathBuf,
    pub mounts: PathBuf,
}

const META: &str = "meta.json";

impl Store {
    /// Opens (creating) the store below `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let s = Store {
            root: root.to_path_buf(),
            objects: root.join("objects"),
            tmp: root.join("tmp"),
            mounts: root.join("mounts"),
        };
        for d in [&s.root, &s.objects, &s.tmp, &s.mounts] {
            std::fs::create_dir_all(d).map_err(|e| LayerError::io("create directory", d, e))?;
        }
        Ok(s)
    }

    pub fn dir(&self, key: &str) -> PathBuf {
        self.objects.join(state::object_id(key))
    }

    pub fn dir_of_id(&self, id: &str) -> PathBuf {
        self.objects.join(id)
    }

    /// The object's metadata, `None` when it does not exist.
    pub fn meta(&self, key: &str) -> Result<Option<Meta>> {
        read_meta(&self.dir(key).join(META))
    }

    pub fn lock(&self) -> Result<LockGuard> {
        state::lock_exclusive(&self.root.join("lock"))
    }

    /// A fresh build directory under `tmp/`.
    pub fn temp(&self) -> Result<TempBuild> {
        TempBuild::new(&self.tmp)
    }

    pub fn write_meta(dir: &Path, meta: &Meta) -> Result<()> {
        let p = dir.join(META);
        let tmp = dir.join("meta.json.tmp");
        let data = serde_json::to_vec(meta)
            .map_err(|e| LayerError::io("encode", &p, std::io::Error::other(e)))?;
        std::fs::write(&tmp, data).map_err(|e| LayerError::io("write", &tmp, e))?;
        std::fs::rename(&tmp, &p).map_err(|e| LayerError::io("rename", &p, e))
    }

    /// Renames a finished build into place as object `key`. `Ok(false)` if it already exists.
    pub fn publish(&self, build: TempBuild, key: &str) -> Result<bool> {
        let dst = self.dir(key);
        match rfs::renameat_with(
            rfs::CWD,
            build.path(),
            rfs::CWD,
            &dst,
            RenameFlags::NOREPLACE,
        ) {
            Ok(()) => {
                build.persist();
                Ok(true)
            }
            Err(Errno::EXIST) | Err(Errno::NOTEMPTY) => Ok(false),
            Err(e) => Err(LayerError::io("rename into place", &dst, e)),
        }
    }

    /// Every object's metadata (entries without readable metadata are skipped).
    pub fn all(&self) -> Result<Vec<(String, Meta)>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.objects)
            .map_err(|e| LayerError::io("read directory", &self.objects, e))?;
        for ent in rd {
            let ent = ent.map_err(|e| LayerError::io("read directory", &self.objects, e))?;
            let id = ent.file_name().to_string_lossy().into_owned();
            if let Some(m) = read_meta(&ent.path().join(META))? {
                out.push((id, m));
            }
        }
        Ok(out)
    }

    /// True when some object names `key` as its parent.
    pub fn has_children(&self, key: &str) -> Result<bool> {
        Ok(self
            .all()?
            .iter()
            .any(|(_, m)| m.parent.as_deref() == Some(key)))
    }

    fn record(&self, key: &str) -> PathBuf {
        self.mounts.join(state::object_id(key))
    }

    /// Where `key` was last mounted (the record is written before mounting).
    pub fn mount_record(&self, key: &str) -> Option<PathBuf> {
        std::fs::read_to_string(self.record(key))
            .ok()
            .map(PathBuf::from)
    }

    pub fn set_mount_record(&self, key: &str, target: &Path) -> Result<()> {
        let p = self.record(key);
        std::fs::write(&p, target.as_os_str().as_encoded_bytes())
            .map_err(|e| LayerError::io("write", &p, e))
    }

    pub fn clear_mount_record(&self, key: &str) -> Result<()> {
        let p = self.record(key);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(LayerError::io("remove", &p, e)),
        }
    }

    /// The mount point of `key` if the record says so and something is mounted there.
    pub fn mounted_at(&self, key: &str) -> Result<Option<PathBuf>> {
        match self.mount_record(key) {
            Some(t) if state::is_mount_point(&t)? => Ok(Some(t)),
            _ => Ok(None),
        }
    }

    /// Deletes object `key`: renamed into `tmp/` (it disappears atomically), then removed.
    pub fn discard(&self, key: &str) -> Result<()> {
        let src = self.dir(key);
        let trash = self.tmp.join(format!(
            "trash-{}-{}",
            state::object_id(key),
            std::process::id()
        ));
        match rfs::renameat(rfs::CWD, &src, rfs::CWD, &trash) {
            Ok(()) => crate::fsutil::remove_tree(&trash),
            Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(LayerError::io("move to trash", &src, e)),
        }
    }

    /// Sweeps `tmp/` and repairs objects whose directory name does not match their key (an
    /// interrupted commit). Returns the keys (or temp names) removed.
    pub fn sweep(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        let mut names = std::collections::HashMap::new();
        if let Ok(rd) = std::fs::read_dir(&self.tmp) {
            for ent in rd.flatten() {
                if let Ok(Some(m)) = read_meta(&ent.path().join(META)) {
                    names.insert(ent.path(), m.key);
                }
            }
        }
        for p in state::sweep_temp_dirs(&self.tmp)? {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            removed.push(names.remove(&p).unwrap_or(name));
        }
        for (id, m) in self.all()? {
            let want = state::object_id(&m.key);
            if want != id {
                let from = self.dir_of_id(&id);
                match rfs::renameat_with(
                    rfs::CWD,
                    &from,
                    rfs::CWD,
                    self.dir(&m.key),
                    RenameFlags::NOREPLACE,
                ) {
                    Ok(()) => tracing::info!(key = %m.key, "finished an interrupted commit"),
                    Err(_) => {
                        crate::fsutil::remove_tree(&from)?;
                        removed.push(m.key);
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Mount records whose object no longer exists: `(key-id, target)`.
    pub fn orphan_records(&self) -> Result<Vec<(PathBuf, PathBuf)>> {
        let mut out = Vec::new();
        let rd = std::fs::read_dir(&self.mounts)
            .map_err(|e| LayerError::io("read directory", &self.mounts, e))?;
        for ent in rd.flatten() {
            let id = ent.file_name();
            if self.objects.join(&id).exists() {
                continue;
            }
            let target = std::fs::read_to_string(ent.path()).unwrap_or_default();
            out.push((ent.path(), PathBuf::from(target)));
        }
        Ok(out)
    }
}

fn read_meta(p: &Path) -> Result<Option<Meta>> {
    match std::fs::read(p) {
        Ok(data) => serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| LayerError::io("decode", p, std::io::Error::other(e))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LayerError::io("read", p, e)),
    }
}
