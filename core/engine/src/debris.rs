//! What a killed command leaves behind, who owns it, and garbage collection of unpacked
//! layers.
//!
//! **Build snapshots.** Every snapshot a build prepares (key `build-<20 hex>`) has, under
//! `<root>/run/build/`:
//!
//! ```text
//! <key>.lock   flock'ed (exclusive) by the owning build for as long as the snapshot lives;
//!              created before the snapshot, removed after it
//! <key>/       the snapshot's mount point
//! <key>.tar    its diff while it is written
//! ```
//!
//! A command that finds such an entry tries the lock without waiting: if it gets it, the
//! owner is dead and the entry is debris, which it reclaims (unmount, remove the snapshot,
//! the directory, the tar, and last the lock file). A build that is alive keeps its lock,
//! so nothing of it is touched.
//!
//! **The GC lock** (`<root>/run/locks/gc.lock`). Builds and `create` hold it shared while
//! they depend on unpacked layers that no image refers to yet (a build's intermediate
//! layers) or that they are about to stack a snapshot on. Removing unpacked layers
//! ([`Engine::gc_layers`]: `image rm`, `image prune`, `system prune`, `builder prune`)
//! takes it exclusive without waiting and leaves the layers for later when it is busy.

use std::{
    collections::HashSet,
    fs::File,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use berth_abi::{ErrorKind, SnapshotKind};
use fs2::FileExt;

use crate::{Engine, EngineError};

/// Test hook for crash tests: with `BERTH_TEST_PAUSE_AT=<point>` in the environment the
/// process announces `point` on stderr and then waits there until it is killed, so a test
/// can `kill -9` it at a known place. Points: `build-snapshot-mounted`, `rm-removing`,
/// `supervise-exited`.
pub(crate) fn test_pause(point: &str) {
    if std::env::var_os("BERTH_TEST_PAUSE_AT").is_some_and(|v| v == point) {
        eprintln!("berth: paused at {point} (BERTH_TEST_PAUSE_AT)");
        loop {
            std::thread::park();
        }
    }
}

/// The key prefix of build snapshots.
pub const BUILD_PREFIX: &str = "build-";

/// Ownership of one build snapshot's debris: the held lock file. Dropping it removes the
/// lock file (the owner's snapshot, mount point and tar must be gone by then).
pub struct Owner {
    _file: File,
    path: PathBuf,
    remove_file: bool,
}

impl Owner {
    /// Releases the lock but leaves the lock file (the entries it guards are still there).
    fn release_keeping_file(mut self) {
        self.remove_file = false;
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        // Removed while still locked, so a reclaimer that opened it meanwhile finds an
        // unlinked file and leaves it.
        if self.remove_file {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The lock file of `key`'s debris in `dir`.
fn lock_path(dir: &Path, key: &str) -> PathBuf {
    dir.join(format!("{key}.lock"))
}

fn open_lock(path: &Path) -> std::io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// True when `file` still is the file at `path` (not unlinked by a reclaimer).
fn still_linked(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Takes ownership of `key`'s debris entries in `dir` (creating `dir`). Waits for a
/// reclaimer that holds the lock of a fresh key, and starts over if it unlinked the file.
pub fn claim(dir: &Path, key: &str) -> Result<Owner, EngineError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
    let path = lock_path(dir, key);
    loop {
        let file = open_lock(&path)
            .map_err(|e| EngineError::io(format!("opening lock {}", path.display()), e))?;
        file.lock_exclusive()
            .map_err(|e| EngineError::io(format!("locking {}", path.display()), e))?;
        if still_linked(&file, &path) {
            return Ok(Owner {
                _file: file,
                path,
                remove_file: true,
            });
        }
    }
}

/// Tries to take over `key`'s debris in `dir`: `None` while its owner is alive.
fn try_take_over(dir: &Path, key: &str) -> Option<Owner> {
    let path = lock_path(dir, key);
    let file = open_lock(&path).ok()?;
    if file.try_lock_exclusive().is_err() {
        return None;
    }
    if !still_linked(&file, &path) {
        return None;
    }
    Some(Owner {
        _file: file,
        path,
        remove_file: true,
    })
}

/// The build keys that have entries in `dir` (lock files, mount points, tars).
fn keys_in(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut keys: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let key = name
                .strip_suffix(".lock")
                .or_else(|| name.strip_suffix(".tar"))
                .unwrap_or(&name)
                .to_string();
            key.starts_with(BUILD_PREFIX).then_some(key)
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// What `system df` reports about leftovers.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DebrisUsage {
    /// Build snapshots with entries under `run/build`.
    pub total: usize,
    /// Of which a live build owns.
    pub active: usize,
    /// Their snapshots' own data, tars, and the storage driver's temporary directories.
    pub bytes: u64,
    /// Of `bytes`, what belongs to dead owners (reclaimed by the next command).
    pub reclaimable: u64,
}

/// Bytes below `p` without following symlinks or crossing into other mounts.
fn tree_bytes(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .filter(|e| std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.dev() == md.dev()))
                .map(|e| tree_bytes(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

impl Engine {
    /// `<root>/run/build`: build snapshots' mount points, diffs and owner locks.
    pub fn build_run_dir(&self) -> PathBuf {
        self.config.run_dir().join("build")
    }

    /// Claims a new build snapshot key (see the module docs).
    pub(crate) fn claim_build_key(&self, key: &str) -> Result<Owner, EngineError> {
        claim(&self.build_run_dir(), key)
    }

    /// The GC lock, shared: unpacked layers are not removed while it is held.
    pub fn gc_shared(&self) -> Result<crate::LockGuard, EngineError> {
        let (file, path) = self.gc_lock_file()?;
        file.lock_shared()
            .map_err(|e| EngineError::io(format!("locking {}", path.display()), e))?;
        Ok(crate::LockGuard { _file: file })
    }

    /// The GC lock, exclusive, if no build or create holds it.
    fn gc_exclusive(&self) -> Result<Option<crate::LockGuard>, EngineError> {
        let (file, _) = self.gc_lock_file()?;
        Ok(file
            .try_lock_exclusive()
            .ok()
            .map(|()| crate::LockGuard { _file: file }))
    }

    fn gc_lock_file(&self) -> Result<(File, PathBuf), EngineError> {
        let dir = self.config.run_dir().join("locks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join("gc.lock");
        let file = open_lock(&path)
            .map_err(|e| EngineError::io(format!("opening lock {}", path.display()), e))?;
        Ok((file, path))
    }

    /// Reclaims the debris of dead builds under `run/build`; returns the keys reclaimed.
    /// Costs one directory read when there is none. Errors are logged, not returned: what
    /// cannot be removed now is tried again by the next command.
    pub fn reclaim_debris(&self) -> Vec<String> {
        let dir = self.build_run_dir();
        let mut done = Vec::new();
        for key in keys_in(&dir) {
            let Some(owner) = try_take_over(&dir, &key) else {
                continue;
            };
            match self.reclaim_key(&dir, &key) {
                Ok(()) => {
                    tracing::info!(key, "reclaimed the leftovers of a killed build");
                    drop(owner);
                    done.push(key);
                }
                Err(e) => {
                    tracing::warn!(key, "reclaiming the leftovers of a killed build: {e}");
                    // Keep the lock file: the entry is still there to retry.
                    owner.release_keeping_file();
                }
            }
        }
        if !done.is_empty() {
            // The storage driver's half-built objects of the same builds.
            if let Ok(st) = self.plugins.storage() {
                if let Err(e) = st.cleanup() {
                    tracing::warn!("cleaning the storage driver's temporary files: {e}");
                }
            }
        }
        done
    }

    /// Unmounts and removes everything of build snapshot `key` (its owner is dead).
    fn reclaim_key(&self, dir: &Path, key: &str) -> Result<(), EngineError> {
        // First the RUN step that may still run in the snapshot (its group is named after
        // the key): destroying the group kills it, so the unmount below does not find it busy.
        if let Ok(iso) = self.plugins.isolator() {
            iso.destroy(key)
                .map_err(|e| EngineError::plugin(format!("removing the cgroup of {key}"), e))?;
        }
        let mount = dir.join(key);
        let storage = self.plugins.storage()?;
        if mount.exists() {
            storage
                .unmount(key, &mount.display().to_string())
                .map_err(|e| EngineError::plugin(format!("unmounting {}", mount.display()), e))?;
        }
        match storage.remove(key) {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::plugin(format!("removing snapshot {key}"), e)),
        }
        match std::fs::remove_dir(&mount) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(format!("removing {}", mount.display()), e)),
        }
        let tar = dir.join(format!("{key}.tar"));
        match std::fs::remove_file(&tar) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(format!("removing {}", tar.display()), e)),
        }
        Ok(())
    }

    /// Leftovers for `system df` (without reclaiming them).
    pub fn debris_usage(&self) -> DebrisUsage {
        let dir = self.build_run_dir();
        let storage = self.plugins.storage().ok();
        let mut u = DebrisUsage::default();
        for key in keys_in(&dir) {
            let mut bytes = tree_bytes(&dir.join(format!("{key}.tar")));
            if let Some(st) = &storage {
                bytes += st.usage(&key).map(|u| u.bytes).unwrap_or(0);
            }
            u.total += 1;
            u.bytes += bytes;
            // Probing the lock takes it for a moment; a dead owner's entry stays as is.
            match try_take_over(&dir, &key) {
                Some(probe) => {
                    u.reclaimable += bytes;
                    // Not reclaiming here: keep the lock file.
                    probe.release_keeping_file();
                }
                None => u.active += 1,
            }
        }
        let tmp = self
            .config
            .root
            .join("storage")
            .join(self.plugins.active_name(berth_abi::PluginKind::Storage))
            .join("tmp");
        u.bytes += tree_bytes(&tmp);
        u
    }

    /// Removes unpacked layers and snapshots that no image, container or live build
    /// uses (children before parents), and reclaims dead builds' snapshots. Returns the
    /// number removed, or `None` when a build or create holds the GC lock (nothing is
    /// removed then; a later command does it).
    pub fn gc_layers(&self) -> Result<Option<usize>, EngineError> {
        let Some(_gc) = self.gc_exclusive()? else {
            tracing::info!("a build is running: unpacked layers are kept until it ends");
            return Ok(None);
        };
        self.reclaim_debris();
        let storage = self.plugins.storage()?;
        let mut wanted: HashSet<String> = HashSet::new();
        for img in self.images()?.list()? {
            wanted.extend(img.chain_ids());
        }
        let containers: HashSet<String> = self.db()?.list()?.into_iter().map(|c| c.id).collect();
        let dir = self.build_run_dir();
        let mut removed = 0;
        loop {
            let mut progress = false;
            let list = storage
                .list()
                .map_err(|e| EngineError::plugin("listing unpacked layers", e))?;
            for l in list {
                let key = l.key.to_string();
                if wanted.contains(&key) || containers.contains(&key) {
                    continue;
                }
                // A build's snapshot: only when its owner is dead.
                let owner = if key.starts_with(BUILD_PREFIX) && l.kind != SnapshotKind::Committed {
                    match try_take_over(&dir, &key) {
                        Some(o) => Some(o),
                        None => continue,
                    }
                } else {
                    None
                };
                let r = if owner.is_some() {
                    self.reclaim_key(&dir, &key)
                } else {
                    storage
                        .remove(&key)
                        .map_err(|e| EngineError::plugin(format!("removing layer {key}"), e))
                };
                match r {
                    Ok(()) => {
                        removed += 1;
                        progress = true;
                    }
                    // A parent whose children go in a later round.
                    Err(e) => {
                        tracing::debug!(key, "not removed yet: {e}");
                        if let Some(o) = owner {
                            o.release_keeping_file();
                        }
                    }
                }
            }
            if !progress {
                break;
            }
        }
        storage
            .cleanup()
            .map_err(|e| EngineError::plugin("cleaning the storage driver's temporary files", e))?;
        Ok(Some(removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    /// Run only as a child of `a_killed_owners_debris_can_be_taken_over`: claims a key,
    /// says so, and waits to be killed.
    #[test]
    #[ignore]
    fn bt_debris_owner_helper() {
        let Ok(dir) = std::env::var("BT_DEBRIS_DIR") else {
            return;
        };
        let _owner = claim(Path::new(&dir), "build-helper").unwrap();
        std::fs::create_dir_all(Path::new(&dir).join("build-helper")).unwrap();
        println!("claimed");
        loop {
            std::thread::park();
        }
    }

    #[test]
    fn a_killed_owners_debris_can_be_taken_over() {
        let d = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "debris::tests::bt_debris_owner_helper",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("BT_DEBRIS_DIR", d.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        assert!(lines.any(|l| l.unwrap().contains("claimed")));
        assert_eq!(keys_in(d.path()), vec!["build-helper".to_string()]);
        // Alive: nobody may take it over.
        assert!(try_take_over(d.path(), "build-helper").is_none());
        child.kill().unwrap();
        child.wait().unwrap();
        // Dead (SIGKILL): the lock is free, the entries are still there.
        let o = try_take_over(d.path(), "build-helper").expect("owner is dead");
        assert!(d.path().join("build-helper").exists());
        drop(o);
        assert!(!lock_path(d.path(), "build-helper").exists());
    }

    /// A reclaimer that unlinks a lock file under a new owner's feet makes the owner
    /// start over on a fresh file instead of holding a lock nobody else can see.
    #[test]
    fn claim_survives_a_concurrent_reclaim() {
        let d = tempfile::tempdir().unwrap();
        let reclaimer = try_take_over(d.path(), "build-x").unwrap();
        let dir = d.path().to_path_buf();
        let t = std::thread::spawn(move || claim(&dir, "build-x").unwrap());
        // The claimer waits on the reclaimer's lock; the reclaimer finishes (unlinks).
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(reclaimer);
        let owner = t.join().unwrap();
        assert!(still_linked(&owner._file, &lock_path(d.path(), "build-x")));
        assert!(try_take_over(d.path(), "build-x").is_none());
    }

    #[test]
    fn keys_come_from_locks_mounts_and_tars() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("build-a.lock"), b"").unwrap();
        std::fs::create_dir(d.path().join("build-a")).unwrap();
        std::fs::write(d.path().join("build-b.tar"), b"").unwrap();
        std::fs::write(d.path().join("unrelated"), b"").unwrap();
        assert_eq!(keys_in(d.path()), vec!["build-a", "build-b"]);
    }
}
