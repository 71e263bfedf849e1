//! berth-plugin-overlayfs: the default storage driver.
//!
//! One directory per object in `<state>/objects/<sha256(key)>/` (see
//! [`berth_layer_tar::store`]): a committed layer keeps its changes in `diff/` (whiteouts in
//! overlay form); an active snapshot has `diff/` (the upper dir) and `work/`; a view has
//! neither. Mounting stacks the parent chain as lower dirs. Deep chains use the new mount
//! API (`fsopen("overlay")` + one `fsconfig("lowerdir+")` per layer, Linux ≥ 6.8), which has
//! no limit but overlayfs' own 500 layers; older kernels get the classic `mount(2)` option
//! string, limited to one page.

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
use berth_layer_tar::{state, DiffOptions, OverlayWhiteouts};
use rustix::mount::{
    self as rmount, FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags,
};

/// overlayfs' own stacking limit (`OVL_MAX_STACK`).
const OVL_MAX_STACK: u32 = 500;
/// The classic `mount(2)` data page.
const PAGE: usize = 4096;

pub struct Overlay {
    store: Store,
    /// An empty directory used as the lower dir of snapshots without a parent.
    empty: PathBuf,
    new_api: bool,
}

impl Overlay {
    pub fn new(ctx: &PluginContext) -> PluginResult<Self> {
        if ctx.state_dir().is_empty() {
            return Err(PluginError::invalid(
                "overlayfs: the host gave no state directory",
            ));
        }
        let store = Store::open(Path::new(ctx.state_dir())).map_err(perr)?;
        let empty = store.root.join("empty");
        std::fs::create_dir_all(&empty)
            .map_err(|e| PluginError::io(format!("create {}", empty.display()), e))?;
        let new_api = probe_new_api(&empty);
        tracing::debug!(state = %store.root.display(), new_api, "overlayfs driver ready");
        Ok(Overlay {
            store,
            empty,
            new_api,
        })
    }

    fn diff_dir(&self, id: &str) -> PathBuf {
        self.store.dir_of_id(id).join("diff")
    }

    fn meta(&self, key: &str) -> PluginResult<Meta> {
        require_meta(&self.store, "overlayfs", key)
    }

    /// The chain (nearest first) for a new object on top of `parent`, within the number
    /// of lower layers this kernel's overlayfs takes.
    fn chain_for(&self, parent: Option<&str>) -> PluginResult<Vec<String>> {
        let chain = chain_on(&self.store, "overlayfs", parent)?;
        if chain.len() as u32 > self.max_layers() {
            return Err(PluginError::unsupported(format!(
                "overlayfs: a chain of {} layers exceeds this host's limit of {}",
                chain.len(),
                self.max_layers()
            )));
        }
        Ok(chain)
    }

    fn max_layers(&self) -> u32 {
        if self.new_api {
            OVL_MAX_STACK
        } else {
            // lowerdir=<objects>/<64 hex>/diff: per layer, plus upper/work dirs.
            let per = self.store.objects.as_os_str().len() + 1 + 64 + 5 + 1;
            let budget = PAGE.saturating_sub(2 * (per + 16) + 64);
            ((budget / per) as u32).min(OVL_MAX_STACK)
        }
    }

    fn exists(&self, key: &str) -> PluginResult<()> {
        ensure_absent(&self.store, "overlayfs", key)
    }

    fn do_mount(&self, key: &str, meta: &Meta, target: &Path) -> PluginResult<()> {
        let id = state::object_id(key);
        let mut lowers: Vec<PathBuf> = meta.chain.iter().map(|c| self.diff_dir(c)).collect();
        let view = meta.kind == Kind::View;
        let _span = tracing::debug_span!("overlay_mount", key, target = %target.display(), layers = lowers.len()).entered();
        if view && lowers.is_empty() {
            return bind_ro(&self.empty, target);
        }
        if lowers.is_empty() || (view && lowers.len() == 1) {
            lowers.push(self.empty.clone());
        }
        let (upper, work) = if view {
            (None, None)
        } else {
            let d = self.store.dir_of_id(&id);
            (Some(d.join("diff")), Some(d.join("work")))
        };
        if self.new_api {
            mount_new_api(&lowers, upper.as_deref(), work.as_deref(), target, view)
        } else {
            mount_legacy(&lowers, upper.as_deref(), work.as_deref(), target, view)
        }
    }
}

fn probe_new_api(empty: &Path) -> bool {
    let Ok(fd) = rmount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC) else {
        return false;
    };
    rmount::fsconfig_set_string(&fd, "lowerdir+", empty).is_ok()
}

fn bind_ro(src: &Path, target: &Path) -> PluginResult<()> {
    let _span =
        tracing::debug_span!("bind_ro", src = %src.display(), target = %target.display()).entered();
    rmount::mount_bind(src, target).map_err(|e| {
        errno_io(
            format!("overlayfs: bind {} at {}", src.display(), target.display()),
            e,
        )
    })?;
    if let Err(e) = rmount::mount_remount(
        target,
        rmount::MountFlags::BIND | rmount::MountFlags::RDONLY,
        "",
    ) {
        let _ = rmount::unmount(target, UnmountFlags::DETACH);
        return Err(errno_io(
            format!("overlayfs: make {} read-only", target.display()),
            e,
        ));
    }
    Ok(())
}

fn mount_new_api(
    lowers: &[PathBuf],
    upper: Option<&Path>,
    work: Option<&Path>,
    target: &Path,
    ro: bool,
) -> PluginResult<()> {
    let ctx = |what: &str| format!("overlayfs: {what} for mount at {}", target.display());
    let fd = rmount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)
        .map_err(|e| errno_io(ctx("fsopen"), e))?;
    rmount::fsconfig_set_string(&fd, "source", "berth").map_err(|e| errno_io(ctx("source"), e))?;
    for l in lowers {
        rmount::fsconfig_set_string(&fd, "lowerdir+", l)
            .map_err(|e| errno_io(ctx(&format!("lower dir {}", l.display())), e))?;
    }
    if let (Some(u), Some(w)) = (upper, work) {
        rmount::fsconfig_set_string(&fd, "upperdir", u)
            .map_err(|e| errno_io(ctx("upperdir"), e))?;
        rmount::fsconfig_set_string(&fd, "workdir", w).map_err(|e| errno_io(ctx("workdir"), e))?;
        // `volatile`: no syncs of the upper dir (a snapshot's writes are disposable until
        // diffed, and a diff is stored in the image store with its own fsync). Unmounting
        // a synced overlay costs ~25 ms on this kind of disk; volatile makes it ~1 ms. An
        // unclean shutdown leaves `work/incompat/volatile`, which the kernel then refuses:
        // the marker is removed before mounting, accepting that such a snapshot's last
        // writes may be lost (as with a crash of any container).
        let _ = std::fs::remove_dir_all(w.join("work/incompat/volatile"));
        if rmount::fsconfig_set_flag(&fd, "volatile").is_err() {
            tracing::debug!("overlayfs: kernel without the volatile option");
        }
    }
    // Plain upper dirs: diff and commit read them as layers.
    for (k, v) in [
        ("redirect_dir", "off"),
        ("index", "off"),
        ("metacopy", "off"),
    ] {
        rmount::fsconfig_set_string(&fd, k, v).map_err(|e| errno_io(ctx(k), e))?;
    }
    rmount::fsconfig_create(&fd).map_err(|e| errno_io(ctx("create superblock"), e))?;
    let attrs = if ro {
        MountAttrFlags::MOUNT_ATTR_RDONLY
    } else {
        MountAttrFlags::empty()
    };
    let mnt = rmount::fsmount(&fd, FsMountFlags::FSMOUNT_CLOEXEC, attrs)
        .map_err(|e| errno_io(ctx("fsmount"), e))?;
    rmount::move_mount(
        &mnt,
        c"",
        rustix::fs::CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(|e| errno_io(ctx("move_mount"), e))
}

fn mount_legacy(
    lowers: &[PathBuf],
    upper: Option<&Path>,
    work: Option<&Path>,
    target: &Path,
    ro: bool,
) -> PluginResult<()> {
    let mut data = String::from("lowerdir=");
    let joined: Vec<String> = lowers.iter().map(|l| l.display().to_string()).collect();
    data += &joined.join(":");
    if let (Some(u), Some(w)) = (upper, work) {
        data += &format!(",upperdir={},workdir={}", u.display(), w.display());
    }
    data += ",redirect_dir=off,index=off,metacopy=off";
    if data.len() >= PAGE {
        return Err(PluginError::unsupported(format!(
            "overlayfs: {} layers do not fit in one page of mount options on this kernel (needs Linux >= 6.8 for deeper images)",
            lowers.len()
        )));
    }
    let flags = if ro {
        rmount::MountFlags::RDONLY
    } else {
        rmount::MountFlags::empty()
    };
    let data = std::ffi::CString::new(data)
        .map_err(|_| PluginError::invalid("overlayfs: NUL byte in a layer path"))?;
    rmount::mount("overlay", target, "overlay", flags, data.as_c_str())
        .map_err(|e| errno_io(format!("overlayfs: mount at {}", target.display()), e))
}

impl StorageDriver for Overlay {
    fn capabilities(&self) -> PluginResult<StorageCapabilities> {
        let api = if self.new_api {
            "fsconfig lowerdir+"
        } else {
            "mount(2) option page"
        };
        Ok(StorageCapabilities {
            copy_on_write: true,
            native_diff: true,
            max_layers: self.max_layers(),
            detail: format!(
                "overlayfs at {}, mount API: {api}",
                self.store.root.display()
            ),
        })
    }

    fn apply_layer(
        &self,
        id: &str,
        parent: Option<&str>,
        diff: &mut dyn Read,
    ) -> PluginResult<Usage> {
        self.exists(id)?;
        let chain = self.chain_for(parent)?;
        let build = self.store.temp().map_err(perr)?;
        let d = build.path().join("diff");
        std::fs::create_dir(&d)
            .map_err(|e| PluginError::io(format!("create {}", d.display()), e))?;
        berth_layer_tar::apply_layer(&d, diff, &mut OverlayWhiteouts)
            .map_err(|e| perr(e).context(format!("overlayfs: applying layer {id:?}")))?;
        let usage = usage_of(&d)?;
        let meta = Meta {
            key: id.into(),
            parent: parent.map(Into::into),
            kind: Kind::Committed,
            chain,
        };
        publish_object(&self.store, "overlayfs", build, &meta)?;
        Ok(usage)
    }

    fn prepare(&self, key: &str, parent: Option<&str>, read_only: bool) -> PluginResult<()> {
        self.exists(key)?;
        let chain = self.chain_for(parent)?;
        let build = self.store.temp().map_err(perr)?;
        if !read_only {
            for sub in ["diff", "work"] {
                let d = build.path().join(sub);
                std::fs::create_dir(&d)
                    .map_err(|e| PluginError::io(format!("create {}", d.display()), e))?;
            }
        }
        let kind = if read_only { Kind::View } else { Kind::Active };
        publish_object(
            &self.store,
            "overlayfs",
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
        if check_mountable(&self.store, "overlayfs", key, &meta, target)? {
            return Ok(());
        }
        self.store.set_mount_record(key, target).map_err(perr)?;
        if let Err(e) = self.do_mount(key, &meta, target) {
            let _ = self.store.clear_mount_record(key);
            return Err(e);
        }
        Ok(())
    }

    fn unmount(&self, key: &str, target: &str) -> PluginResult<()> {
        check_key(key)?;
        let target = Path::new(target);
        unmount_target("overlayfs", target)?;
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
        let id = state::object_id(key);
        if meta.kind == Kind::View {
            return Err(PluginError::invalid(format!(
                "overlayfs: {key:?} is a read-only view and has no changes"
            )));
        }
        let stats = berth_layer_tar::diff_overlay_upper(
            &self.diff_dir(&id),
            out,
            DiffOptions { clamp_mtime },
        )
        .map_err(|e| perr(e).context(format!("overlayfs: diff of {key:?}")))?;
        Ok(Usage {
            bytes: stats.bytes,
            inodes: stats.entries,
        })
    }

    fn commit(&self, key: &str, id: &str) -> PluginResult<Usage> {
        let meta = self.meta(key)?;
        self.exists(id)?;
        // The work dir is overlay's scratch space, not part of the layer.
        let dst = commit_snapshot(&self.store, "overlayfs", key, id, &meta, |src| {
            berth_layer_tar::remove_tree(&src.join("work")).map_err(perr)
        })?;
        usage_of(&dst.join("diff"))
    }

    fn remove(&self, key: &str) -> PluginResult<()> {
        remove_object(&self.store, "overlayfs", key)
    }

    fn usage(&self, key: &str) -> PluginResult<Usage> {
        self.meta(key)?;
        usage_of(&self.diff_dir(&state::object_id(key)))
    }

    fn list(&self) -> PluginResult<Vec<SnapshotInfo>> {
        list_objects(&self.store)
    }

    fn cleanup(&self) -> PluginResult<Vec<String>> {
        let _lock = self.store.lock().map_err(perr)?;
        // Half-built objects and mounts of objects that no longer exist, by record…
        let mut removed = sweep_with_orphan_mounts(&self.store, "overlayfs")?;
        // …and overlay mounts whose layers are gone (a record lost in a crash).
        let objects = format!("{}/", self.store.objects.display());
        for m in state::mounts().map_err(perr)? {
            if m.fs_type != "overlay" || !m.super_options.contains(&objects) {
                continue;
            }
            let gone = m
                .super_options
                .split([',', ':', '='])
                .filter_map(|s| s.strip_prefix(&objects))
                .any(|rest| {
                    let id = rest.split('/').next().unwrap_or("");
                    !self.store.dir_of_id(id).exists()
                });
            if gone {
                unmount_target("overlayfs", &m.mount_point)?;
                removed.push(format!("mount {}", m.mount_point.display()));
            }
        }
        Ok(removed)
    }
}

berth_abi::export_plugin! {
    kind: storage,
    name: "overlayfs",
    description: "copy-on-write snapshots on overlayfs (default)",
    constructor: Overlay::new,
}
