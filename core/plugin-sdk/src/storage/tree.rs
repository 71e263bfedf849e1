//! A complete copying storage driver, generic over how a tree is copied ([`Populate`]).
//! The first-party `vfs` driver is `TreeDriver<FullCopy>`; a third-party driver for a
//! filesystem with cheap clones only implements [`Populate`].

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use berth_abi::{
    PluginContext, PluginError, PluginResult, SnapshotInfo, StorageCapabilities, StorageDriver,
    Usage,
};
use berth_layer_tar::driver::{
    chain_on, check_key, check_mountable, commit_snapshot, ensure_absent, errno_io, list_objects,
    perr, publish_object, remove_object, require_meta, sweep_with_orphan_mounts, unmount_target,
    usage_of,
};
use berth_layer_tar::store::{Kind, Meta, Store};
use berth_layer_tar::{state, DeletingWhiteouts, DiffOptions};
use rustix::mount::{self as rmount, MountFlags, UnmountFlags};

/// How a new object's tree is made from its parent's: the one thing a copying driver
/// decides. [`FullCopy`] copies everything; a driver for a filesystem with cheap clones
/// (reflinks, snapshots) does it its own way.
pub trait Populate: Send + Sync + 'static {
    /// Fills the existing empty directory `dst` with the tree `src`, keeping everything a
    /// layer carries (types, modes, owners, nanosecond times, xattrs, hard links, holes).
    fn populate(&self, src: &Path, dst: &Path) -> PluginResult<()>;

    /// One line for `berth info` (`{root}` is replaced by the driver's state directory).
    fn describe(&self) -> String {
        "full copies at {root}".into()
    }
}

/// [`Populate`] by full copies ([`copy_tree`](berth_layer_tar::copy_tree)): works on
/// every filesystem.
#[derive(Debug, Clone, Copy, Default)]
pub struct FullCopy;

impl Populate for FullCopy {
    fn populate(&self, src: &Path, dst: &Path) -> PluginResult<()> {
        berth_layer_tar::copy_tree(src, dst).map_err(perr)
    }
}

/// A complete storage driver in which every object has its own tree (`objects/<id>/rootfs`
/// in the state directory): a layer is its parent's tree ([`Populate`]) with the layer
/// applied (whiteouts by deleting), an active snapshot is its parent's tree, a view shares
/// its parent's tree through a read-only bind mount, and `diff` compares a snapshot's tree
/// with its parent's. Creation is atomic (build in `tmp/`, rename into `objects/`),
/// `cleanup` sweeps what a crash left, and the layout is the one the conformance suite
/// checks (`tmp/`, `objects/`, `mounts/`).
pub struct TreeDriver<P> {
    name: &'static str,
    store: Store,
    populate: P,
}

impl<P: Populate> TreeDriver<P> {
    /// The driver `name` (its messages start with it) in the context's state directory.
    pub fn new(name: &'static str, ctx: &PluginContext, populate: P) -> PluginResult<Self> {
        if ctx.state_dir().is_empty() {
            return Err(PluginError::invalid(format!(
                "{name}: the host gave no state directory"
            )));
        }
        let store = Store::open(Path::new(ctx.state_dir())).map_err(perr)?;
        Ok(TreeDriver {
            name,
            store,
            populate,
        })
    }

    /// The object store (for drivers that build on this one).
    pub fn store(&self) -> &Store {
        &self.store
    }

    fn rootfs(&self, key: &str) -> PathBuf {
        self.store.dir(key).join("rootfs")
    }

    fn meta(&self, key: &str) -> PluginResult<Meta> {
        require_meta(&self.store, self.name, key)
    }

    fn check_parent(&self, parent: Option<&str>) -> PluginResult<Vec<String>> {
        chain_on(&self.store, self.name, parent)
    }

    fn exists(&self, key: &str) -> PluginResult<()> {
        ensure_absent(&self.store, self.name, key)
    }

    /// A build directory whose `rootfs/` is a copy of `parent`'s tree (or empty).
    fn build_copy(&self, parent: Option<&str>) -> PluginResult<state::TempBuild> {
        let build = self.store.temp().map_err(perr)?;
        let r = build.path().join("rootfs");
        std::fs::create_dir(&r)
            .map_err(|e| PluginError::io(format!("create {}", r.display()), e))?;
        if let Some(p) = parent {
            self.populate
                .populate(&self.rootfs(p), &r)
                .map_err(|e| e.context(format!("{}: copying layer {p:?}", self.name)))?;
        }
        Ok(build)
    }
}

impl<P: Populate> StorageDriver for TreeDriver<P> {
    fn capabilities(&self) -> PluginResult<StorageCapabilities> {
        Ok(StorageCapabilities {
            copy_on_write: false,
            native_diff: false,
            max_layers: 0,
            detail: self
                .populate
                .describe()
                .replace("{root}", &self.store.root.display().to_string()),
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
            .map_err(|e| perr(e).context(format!("{}: applying layer {id:?}", self.name)))?;
        let usage = usage_of(&r)?;
        publish_object(
            &self.store,
            self.name,
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
            self.name,
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
        if check_mountable(&self.store, self.name, key, &meta, target)? {
            return Ok(());
        }
        let src = match (&meta.kind, &meta.parent) {
            (Kind::View, Some(p)) => self.rootfs(p),
            _ => self.rootfs(key),
        };
        let _span = tracing::debug_span!("mount", driver = self.name, key, src = %src.display(), target = %target.display()).entered();
        self.store.set_mount_record(key, target).map_err(perr)?;
        let res = rmount::mount_bind(&src, target)
            .map_err(|e| {
                errno_io(
                    format!(
                        "{}: bind {} at {}",
                        self.name,
                        src.display(),
                        target.display()
                    ),
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
                        errno_io(
                            format!("{}: make {} read-only", self.name, target.display()),
                            e,
                        )
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
        unmount_target(self.name, target)?;
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
                "{}: {key:?} is a read-only view and has no changes",
                self.name
            )));
        }
        let parent = meta.parent.as_deref().map(|p| self.rootfs(p));
        let stats = berth_layer_tar::diff_trees(
            parent.as_deref(),
            &self.rootfs(key),
            out,
            DiffOptions { clamp_mtime },
        )
        .map_err(|e| perr(e).context(format!("{}: diff of {key:?}", self.name)))?;
        Ok(Usage {
            bytes: stats.bytes,
            inodes: stats.entries,
        })
    }

    fn commit(&self, key: &str, id: &str) -> PluginResult<Usage> {
        let meta = self.meta(key)?;
        self.exists(id)?;
        let dst = commit_snapshot(&self.store, self.name, key, id, &meta, |_| Ok(()))?;
        usage_of(&dst.join("rootfs"))
    }

    fn remove(&self, key: &str) -> PluginResult<()> {
        remove_object(&self.store, self.name, key)
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
        sweep_with_orphan_mounts(&self.store, self.name)
    }
}
