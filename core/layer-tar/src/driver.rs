//! What the first-party storage drivers share beyond the object [`Store`]: error
//! conversion to the ABI, key checks, usage, unmounting, and the commit/remove steps whose
//! ordering makes them crash-safe. A driver only adds what is specific to it (how a
//! snapshot is mounted and diffed).

use std::path::{Path, PathBuf};

use berth_abi::{PluginError, PluginResult, SnapshotInfo, SnapshotKind, Usage};
use rustix::{
    io::Errno,
    mount::{self as rmount, UnmountFlags},
};

use crate::{
    state,
    store::{Kind, Meta, Store},
    LayerError,
};

/// A [`LayerError`] as the ABI's error: unsafe/malformed input is `InvalidArgument`, I/O
/// keeps the kind of its cause.
pub fn perr(e: LayerError) -> PluginError {
    if e.is_invalid_input() {
        return PluginError::invalid(e.to_string());
    }
    match &e {
        LayerError::Io { source, .. } => {
            let kind = PluginError::from(std::io::Error::from(source.kind())).kind;
            PluginError::new(kind, e.to_string())
        }
        _ => PluginError::internal(e.to_string()),
    }
}

/// Keys are opaque to drivers, but must be storable.
pub fn check_key(key: &str) -> PluginResult<()> {
    if key.is_empty() || key.len() > 4096 || key.contains('\0') {
        return Err(PluginError::invalid(format!(
            "invalid storage key {key:?}: must be 1-4096 bytes without NUL"
        )));
    }
    Ok(())
}

pub fn errno_io(ctx: impl std::fmt::Display, e: Errno) -> PluginError {
    PluginError::from(std::io::Error::from(e)).context(ctx)
}

/// Bytes and inodes below `dir` (0 when it does not exist).
pub fn usage_of(dir: &Path) -> PluginResult<Usage> {
    if !dir.exists() {
        return Ok(Usage::default());
    }
    let (bytes, inodes) = crate::tree_usage(dir).map_err(perr)?;
    Ok(Usage { bytes, inodes })
}

/// Unmounts `target`; not mounted is success, a busy mount is detached lazily.
pub fn unmount_target(driver: &str, target: &Path) -> PluginResult<()> {
    let _span = tracing::debug_span!("unmount", driver, target = %target.display()).entered();
    match rmount::unmount(target, UnmountFlags::NOFOLLOW) {
        Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::BUSY) => {
            tracing::warn!(target = %target.display(), "mount busy, detaching lazily");
            rmount::unmount(target, UnmountFlags::NOFOLLOW | UnmountFlags::DETACH)
                .map_err(|e| errno_io(format!("{driver}: unmount {}", target.display()), e))
        }
        Err(e) => Err(errno_io(
            format!("{driver}: unmount {}", target.display()),
            e,
        )),
    }
}

/// Turns active snapshot `key` (described by `meta`) into committed layer `id` without
/// copying. `prepare` gets the snapshot's directory first (e.g. to drop overlay's work
/// dir). Crash-safe: the new metadata is written before the rename, so an interrupted
/// commit is recognised (name ≠ key) and finished or swept by `Store::sweep`. Returns the
/// committed layer's directory.
pub fn commit_snapshot(
    store: &Store,
    driver: &str,
    key: &str,
    id: &str,
    meta: &Meta,
    prepare: impl FnOnce(&Path) -> PluginResult<()>,
) -> PluginResult<PathBuf> {
    if meta.kind != Kind::Active {
        return Err(PluginError::invalid(format!(
            "{driver}: only an active snapshot can be committed, {key:?} is not"
        )));
    }
    if let Some(at) = store.mounted_at(key).map_err(perr)? {
        return Err(PluginError::busy(format!(
            "{driver}: {key:?} is mounted at {}; unmount it first",
            at.display()
        )));
    }
    let _lock = store.lock().map_err(perr)?;
    let src = store.dir(key);
    let dst = store.dir(id);
    prepare(&src)?;
    let new = Meta {
        key: id.into(),
        parent: meta.parent.clone(),
        kind: Kind::Committed,
        chain: meta.chain.clone(),
    };
    Store::write_meta(&src, &new).map_err(perr)?;
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        &src,
        rustix::fs::CWD,
        &dst,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(|e| errno_io(format!("{driver}: commit {key:?} as {id:?}"), e))?;
    store.clear_mount_record(key).map_err(perr)?;
    Ok(dst)
}

/// Removes a layer or snapshot: idempotent, `Busy` for a layer with children, unmounts
/// a recorded mount first.
pub fn remove_object(store: &Store, driver: &str, key: &str) -> PluginResult<()> {
    check_key(key)?;
    let _span = tracing::debug_span!("remove", driver, key).entered();
    let _lock = store.lock().map_err(perr)?;
    let Some(meta) = store.meta(key).map_err(perr)? else {
        return Ok(());
    };
    if meta.kind == Kind::Committed && store.has_children(key).map_err(perr)? {
        return Err(PluginError::busy(format!(
            "{driver}: layer {key:?} still has children; remove the snapshots and layers on top of it first"
        )));
    }
    if let Some(t) = store.mount_record(key) {
        unmount_target(driver, &t)?;
        store.clear_mount_record(key).map_err(perr)?;
    }
    store.discard(key).map_err(perr)
}

/// Every object of the store as the ABI lists it, with its live mount point (a recorded
/// mount that is no longer in the mount table is not reported).
pub fn list_objects(store: &Store) -> PluginResult<Vec<SnapshotInfo>> {
    let mounts = state::mounts().map_err(perr)?;
    let mut out = Vec::new();
    for (_, m) in store.all().map_err(perr)? {
        let mounted = store
            .mount_record(&m.key)
            .filter(|t| mounts.iter().any(|x| &x.mount_point == t));
        out.push(SnapshotInfo {
            key: m.key.as_str().into(),
            parent: m.parent.clone(),
            kind: match m.kind {
                Kind::Committed => SnapshotKind::Committed,
                Kind::Active => SnapshotKind::Active,
                Kind::View => SnapshotKind::View,
            },
            mounted_at: mounted.map(|t| t.display().to_string()),
        });
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

/// The shared part of `cleanup()`: sweeps half-built objects and unmounts recorded mounts
/// of objects that no longer exist. Call with the store lock held; returns what it removed.
pub fn sweep_with_orphan_mounts(store: &Store, driver: &str) -> PluginResult<Vec<String>> {
    let mut removed = store.sweep().map_err(perr)?;
    for (record, target) in store.orphan_records().map_err(perr)? {
        if state::is_mount_point(&target).map_err(perr)? {
            unmount_target(driver, &target)?;
            removed.push(format!("mount {}", target.display()));
        }
        let _ = std::fs::remove_file(&record);
    }
    Ok(removed)
}

/// What `mount` must check before mounting `key` (with metadata `meta`) at `target`:
/// committed layers are not mountable, and a snapshot mounts at one place at a time.
/// `Ok(true)` means it is already mounted there (mounting again is a no-op).
pub fn check_mountable(
    store: &Store,
    driver: &str,
    key: &str,
    meta: &Meta,
    target: &Path,
) -> PluginResult<bool> {
    if meta.kind == Kind::Committed {
        return Err(PluginError::invalid(format!(
            "{driver}: {key:?} is a committed layer; prepare a snapshot or view of it to mount it"
        )));
    }
    match store.mounted_at(key).map_err(perr)? {
        Some(at) if at == target => Ok(true),
        Some(at) => Err(PluginError::busy(format!(
            "{driver}: {key:?} is already mounted at {}; unmount it first",
            at.display()
        ))),
        None => Ok(false),
    }
}

/// The metadata of `key`, or `NotFound` naming the driver.
pub fn require_meta(store: &Store, driver: &str, key: &str) -> PluginResult<Meta> {
    check_key(key)?;
    store
        .meta(key)
        .map_err(perr)?
        .ok_or_else(|| PluginError::not_found(format!("{driver}: no layer or snapshot {key:?}")))
}

/// The layer chain (nearest first) of a new object on top of `parent`, which must be a
/// committed layer: `[parent, parent's chain…]`, empty without a parent.
pub fn chain_on(store: &Store, driver: &str, parent: Option<&str>) -> PluginResult<Vec<String>> {
    let Some(p) = parent else {
        return Ok(Vec::new());
    };
    let m = require_meta(store, driver, p).map_err(|e| e.context("parent"))?;
    if m.kind != Kind::Committed {
        return Err(PluginError::invalid(format!(
            "{driver}: parent {p:?} is not a committed layer (commit it first)"
        )));
    }
    let mut chain = vec![crate::state::object_id(p)];
    chain.extend(m.chain);
    Ok(chain)
}

/// `AlreadyExists` if `key` is taken.
pub fn ensure_absent(store: &Store, driver: &str, key: &str) -> PluginResult<()> {
    check_key(key)?;
    if store.dir(key).exists() {
        return Err(PluginError::already_exists(format!(
            "{driver}: {key:?} already exists"
        )));
    }
    Ok(())
}

/// Writes `meta` into a finished temporary build and publishes it under `meta.key`
/// (atomically, under the store lock); `AlreadyExists` if another process won the race.
pub fn publish_object(
    store: &Store,
    driver: &str,
    build: state::TempBuild,
    meta: &Meta,
) -> PluginResult<()> {
    Store::write_meta(build.path(), meta).map_err(perr)?;
    let _lock = store.lock().map_err(perr)?;
    if !store.publish(build, &meta.key).map_err(perr)? {
        return Err(PluginError::already_exists(format!(
            "{driver}: {:?} already exists",
            meta.key
        )));
    }
    Ok(())
}
