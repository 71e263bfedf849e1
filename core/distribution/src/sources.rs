//! Where blobs of the store are known to exist remotely, so that a push can
//! mount them across repositories instead of uploading them again.
//!
//! `<store>/.berth/blob-sources.json` maps a blob digest to repositories
//! (`registry/path`) it was pulled from or pushed to, newest last, at most
//! [`MAX_SOURCES`] each. The file is advisory: a lost or stale entry only
//! costs an upload (a failed mount falls back to one).

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use fs2::FileExt;

use crate::error::{DistributionError, Result};

const MAX_SOURCES: usize = 8;

pub(crate) struct Sources {
    path: PathBuf,
    lock: PathBuf,
}

type Map = BTreeMap<String, Vec<String>>;

impl Sources {
    pub(crate) fn new(store_root: &Path) -> Sources {
        let dir = store_root.join(".berth");
        Sources {
            path: dir.join("blob-sources.json"),
            lock: dir.join("blob-sources.lock"),
        }
    }

    fn read(&self) -> Map {
        match fs::read(&self.path) {
            Ok(d) => serde_json::from_slice(&d).unwrap_or_else(|e| {
                tracing::warn!(path = %self.path.display(), error = %e, "ignoring unreadable blob sources file");
                Map::new()
            }),
            Err(_) => Map::new(),
        }
    }

    /// Repositories `digest` is known to exist in.
    pub(crate) fn get(&self, digest: &str) -> Vec<String> {
        self.read().get(digest).cloned().unwrap_or_default()
    }

    /// Records that each of `digests` exists in `repository`.
    pub(crate) fn record(&self, digests: &[String], repository: &str) -> Result<()> {
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| DistributionError::io("opening lock file", &self.lock, e))?;
        lock.lock_exclusive()
            .map_err(|e| DistributionError::io("locking", &self.lock, e))?;
        let mut map = self.read();
        for d in digests {
            let list = map.entry(d.clone()).or_default();
            list.retain(|r| r != repository);
            list.push(repository.to_string());
            if list.len() > MAX_SOURCES {
                let excess = list.len() - MAX_SOURCES;
                list.drain(..excess);
            }
        }
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".blob-sources-")
            .tempfile_in(dir)
            .map_err(|e| DistributionError::io("creating temporary file in", dir, e))?;
        let bytes = serde_json::to_vec(&map)
            .map_err(|e| DistributionError::malformed("blob sources", e))?;
        tmp.write_all(&bytes)
            .map_err(|e| DistributionError::io("writing", tmp.path(), e))?;
        tmp.persist(&self.path)
            .map_err(|e| DistributionError::io("renaming into place", &self.path, e.error))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_caps() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join(".berth")).unwrap();
        let s = Sources::new(dir.path());
        assert!(s.get("sha256:a").is_empty());
        for i in 0..10 {
            s.record(&["sha256:a".into()], &format!("r/{i}")).unwrap();
        }
        s.record(&["sha256:a".into()], "r/3").unwrap();
        let got = s.get("sha256:a");
        assert_eq!(got.len(), MAX_SOURCES);
        assert_eq!(got.last().unwrap(), "r/3");
        assert!(!got.contains(&"r/0".to_string()));
    }
}
