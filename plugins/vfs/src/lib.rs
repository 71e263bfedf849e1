//! berth-plugin-vfs: a storage driver of full copies, needing no overlay support.
//!
//! Every object in `<state>/objects/<sha256(key)>/` (see [`berth_layer_tar::store`]) has a
//! complete `rootfs/`: a layer is a copy of its parent's tree with the layer tar applied
//! (whiteouts applied by deleting), an active snapshot is a copy of its parent, a view
//! shares its parent's tree through a read-only bind mount. `diff` compares a snapshot's
//! tree with its parent's.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_abi::{
    rtypes::RString, PluginContext, PluginError, PluginResult, SnapshotInfo, StorageCapabilities,
    StorageDriver, Usage,
};
use berth_layer_tar::driver::{
    chain_on, check_key, check_mountable, commit_snapshot, ensure_absent, errno_io, list_objects,
    perr, publish_object, remove_object, require_meta, sweep_with_orphan_mounts, unmount_target,
    usage_of,
};
use berth_layer_tar::store::{Kind, Meta, Store};
use berth_layer_tar::{state, DeletingWhiteouts, DiffOptions};
use rustix::mount::{self as rmount, MountFlags, UnmountFlags};

pub struct Vfs {
    store: Store,
}

impl Vfs {
    pub fn new(ctx: &PluginContext) -> PluginResult<Self> {
        if ctx.state_dir().is_empty() {
            return Err(PluginError::invalid(
                "vfs: the host gave no state directory",
            ));
        }
        let store = Store::open(Path::new(ctx.state_dir())).map_err(perr)?;
        Ok(Vfs { store })
    }

    fn rootfs(&self, key: &str) -> PathBuf {
        self.store.dir(key).join("rootfs")
    }

    fn meta(&self, key: &str) -> PluginResult<Meta> {
        require_meta(&self.store, "vfs", key)
    }

    fn check_parent(&self, parent: Option<&str>) -> PluginResult<Vec<String>> {
        chain_on(&self.store, "vfs", parent)
    }

    fn exists(&self, key: &str) -> PluginResult<()> {
        ensure_absent(&self.store, "vfs", key)
    }

    /// A build directory whose `rootfs/` is a copy of `parent`'s tree (or empty).
    fn build_copy(&self, parent: Option<&str>) -> PluginResult<state::TempBuild> {
        let build = self.store.temp().map_err(perr)?;
        let r = build.path().join("rootfs");
        std::fs::create_dir(&r)
            .map_err(|e| PluginError::io(format!("create {}", r.display()), e))?;
        if let Some(p) = parent {
            berth_layer_tar::copy_tree(&self.rootfs(p), &r)
                .map_err(|e| perr(e).context(format!("vfs: copying layer {p:?}")))?;
        }
        Ok(build)
    }
}

impl StorageDriver for Vfs {
    fn capabilities(&self) -> PluginResult<StorageCapabilities> {
        Ok(StorageCapabilities {
            copy_on_write: false,
            native_diff: false,
            max_layers: 0,
            detail: RString::from(format!("full copies at {}", self.store.root.display())),
        })
    }

    fn apply_layer(
        &self,
        id: &str,
        parent: Option<&str>,
        diff: &mut dyn Read,
    ) -> PluginResult<Usage> {
        self.exists(id)?;
        let chain = self.check_parent(parent)?;
        let build = self.build_copy(parent)?;
        let r = build.path().join("rootfs");
        berth_layer_tar::apply_layer(&r, diff, &mut DeletingWhiteouts)
            .map_err(|e| perr(e).context(format!("vfs: applying layer {id:?}")))?;
        let usage = usage_of(&r)?;
        publish_object(
            &self.store,
            "vfs",
            build,
            &Meta {
                key: id.into(),
                parent: parent.map(Into::into),
                kind: Kind::Committed,
                chain,
            },
        )?;
        Ok(usage)
    }

    fn prepare(&self, key: &str, parent: Option<&str>, read_only: bool) -> PluginResult<()> {
        self.exists(key)?;
        let chain = self.check_parent(parent)?;
        // A view shares its parent's tree through a read-only bind: no copy.
        let build = if read_only {
            self.build_copy(None)?
        } else {
            self.build_copy(parent)?
        };
        let kind = if read_only { Kind::View } else { Kind::Active };
        publish_object(
            &self.store,
            "vfs",
            build,
            &Meta {
                key: key.into(),
                parent: parent.map(Into::into),
                kind,
                chain,
            },
        )
    }

    fn mount(&self, key: &str, target: &str) -> PluginResult<()> {
        let meta = self.meta(key)?;
        let target = Path::new(target);
        if check_mountable(&self.store, "vfs", key, &meta, target)? {
            return Ok(());
        }
        let src = match (&meta.kind, &meta.parent) {
            (Kind::View, Some(p)) => self.rootfs(p),
            _ => self.rootfs(key),
        };
        let _span = tracing::debug_span!("vfs_mount", key, src = %src.display(), target = %target.display()).entered();
        self.store.set_mount_record(key, target).map_err(perr)?;
        let res = rmount::mount_bind(&src, target)
            .map_err(|e| {
                errno_io(
                    format!("vfs: bind {} at {}", src.display(), target.display()),
                    e,
                )
            })
            .and_then(|()| {
                if meta.kind != Kind::View {
                    return Ok(());
                }
                rmount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "").map_err(
                    |e| {
                        let _ = rmount::unmount(target, UnmountFlags::DETACH);
                        errno_io(format!("vfs: make {} read-only", target.display()), e)
                    },
                )
            });
        if res.is_err() {
            let _ = self.store.clear_mount_record(key);
        }
        res
    }

    fn unmount(&self, key: &str, target: &str) -> PluginResult<()> {
        check_key(key)?;
        let target = Path::new(target);
        unmount_target("vfs", target)?;
        if self.store.mount_record(key).as_deref() == Some(target) {
            self.store.clear_mount_record(key).map_err(perr)?;
        }
        Ok(())
    }

    fn diff(
        &self,
        key: &str,
        out: &mut dyn Write,
        clamp_mtime: Option<i64>,
    ) -> PluginResult<Usage> {
        let meta = self.meta(key)?;
        if meta.kind == Kind::View {
            return Err(PluginError::invalid(format!(
                "vfs: {key:?} is a read-only view and has no changes"
            )));
        }
        let parent = meta.parent.as_deref().map(|p| self.rootfs(p));
        let stats = berth_layer_tar::diff_trees(
            parent.as_deref(),
            &self.rootfs(key),
            out,
            DiffOptions { clamp_mtime },
        )
        .map_err(|e| perr(e).context(format!("vfs: diff of {key:?}")))?;
        Ok(Usage {
            bytes: stats.bytes,
            inodes: stats.entries,
        })
    }

    fn commit(&self, key: &str, id: &str) -> PluginResult<Usage> {
        let meta = self.meta(key)?;
        self.exists(id)?;
        let dst = commit_snapshot(&self.store, "vfs", key, id, &meta, |_| Ok(()))?;
        usage_of(&dst.join("rootfs"))
    }

    fn remove(&self, key: &str) -> PluginResult<()> {
        remove_object(&self.store, "vfs", key)
    }

    fn usage(&self, key: &str) -> PluginResult<Usage> {
        self.meta(key)?;
        usage_of(&self.rootfs(key))
    }

    fn list(&self) -> PluginResult<Vec<SnapshotInfo>> {
        list_objects(&self.store)
    }

    fn cleanup(&self) -> PluginResult<Vec<String>> {
        let _lock = self.store.lock().map_err(perr)?;
        // Half-built objects and mounts of objects that no longer exist.
        sweep_with_orphan_mounts(&self.store, "vfs")
    }
}

berth_abi::export_plugin! {
    kind: storage,
    name: "vfs",
    description: "full copies, no copy-on-write (works everywhere)",
    constructor: Vfs::new,
}
