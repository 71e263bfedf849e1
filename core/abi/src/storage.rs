//! Storage drivers: turn image layers into container root filesystems.
//!
//! The model is containerd's snapshotter. Two kinds of object live in a driver, both named
//! by opaque keys chosen by the host:
//!
//! * **committed layers** — read-only; created by [`StorageDriver::apply_layer`] (unpack an
//!   OCI layer tar on top of a parent layer) or [`StorageDriver::commit`];
//! * **active snapshots** — writable (or read-only views) over a chain of committed
//!   layers; created by [`StorageDriver::prepare`], mounted with [`StorageDriver::mount`].
//!
//! Parents form a chain: a layer knows its parent, so `prepare(key, Some(top))` sees the
//! whole image. The host never reads a driver's directories directly.
//!
//! **Thread-safety:** drivers are `Send + Sync`; the host may call any method from several
//! threads and several `berth` processes may use one driver's state directory at once, so
//! drivers create objects atomically (build in a temporary name, then rename).

use std::io::{Read, Write};

use abi_stable::StableAbi;

use crate::PluginResult;

/// What a driver can do; `berth info` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageCapabilities {
    /// Snapshots are copy-on-write (no full copy per container).
    pub copy_on_write: bool,
    /// [`StorageDriver::diff`] only walks the snapshot's own changes (not the whole tree).
    pub native_diff: bool,
    /// Largest layer chain the driver can mount (0 = no limit known).
    pub max_layers: u32,
    /// Free-form detail for `berth info` (e.g. the backing filesystem).
    pub detail: String,
}

/// Space used by one layer or snapshot (its own content, not its parents').
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// A read-only layer.
    Committed = 0,
    /// A writable snapshot.
    Active = 1,
    /// A read-only view over a layer chain.
    View = 2,
}

/// One object of a driver, as [`StorageDriver::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub key: String,
    pub parent: Option<String>,
    pub kind: SnapshotKind,
    /// Set when the snapshot is currently mounted somewhere (the mount point).
    pub mounted_at: Option<String>,
}

/// The native trait a storage plugin implements (see the module docs for the model).
///
/// All methods return [`PluginError`](crate::PluginError) with `NotFound` for unknown keys
/// unless stated otherwise.
pub trait StorageDriver: Send + Sync {
    /// Static facts about the driver on this host.
    fn capabilities(&self) -> PluginResult<StorageCapabilities>;

    /// Creates committed layer `id` = `parent` + the changes in `diff`, an uncompressed OCI
    /// layer tar (whiteouts as `.wh.NAME`, opaque dirs as `.wh..wh..opq`).
    ///
    /// * Preconditions: `parent`, if given, is committed; `id` does not exist
    ///   (`AlreadyExists` otherwise).
    /// * Entries that would escape the layer (absolute paths, `..`, links pointing outside)
    ///   are rejected with `InvalidArgument`, and nothing of the layer is left behind.
    /// * Atomic: on any error the layer does not exist afterwards.
    fn apply_layer(
        &self,
        id: &str,
        parent: Option<&str>,
        diff: &mut dyn Read,
    ) -> PluginResult<Usage>;

    /// Creates snapshot `key` over the chain ending at committed layer `parent` (or empty).
    /// `read_only` makes a view (for `COPY --from` and `cp` out of images).
    /// `AlreadyExists` if `key` exists.
    fn prepare(&self, key: &str, parent: Option<&str>, read_only: bool) -> PluginResult<()>;

    /// Mounts snapshot `key` at the existing directory `target` (in the caller's mount
    /// namespace). Mounting an already mounted snapshot at the same target is a no-op.
    fn mount(&self, key: &str, target: &str) -> PluginResult<()>;

    /// Unmounts `target`, which was mounted by [`mount`](Self::mount) for `key`.
    /// Idempotent: an unmounted target is success.
    fn unmount(&self, key: &str, target: &str) -> PluginResult<()>;

    /// Writes the changes of active snapshot `key` relative to its parent chain as an
    /// uncompressed OCI layer tar to `out`. Entries are sorted by path. Entry times are
    /// clamped to `clamp_mtime` when it is given (reproducible builds).
    fn diff(&self, key: &str, out: &mut dyn Write, clamp_mtime: Option<i64>)
        -> PluginResult<Usage>;

    /// Turns active snapshot `key` (unmounted) into committed layer `id`; `key` is gone
    /// afterwards. Used by builds so a RUN step's result is not unpacked a second time.
    fn commit(&self, key: &str, id: &str) -> PluginResult<Usage>;

    /// Removes a layer or snapshot (unmounting it first if needed). Idempotent: an unknown
    /// key is success. `Busy` if a committed layer still has children.
    fn remove(&self, key: &str) -> PluginResult<()>;

    /// Space used by `key` itself.
    fn usage(&self, key: &str) -> PluginResult<Usage>;

    /// Every layer and snapshot the driver holds (for garbage collection and `system df`).
    fn list(&self) -> PluginResult<Vec<SnapshotInfo>>;

    /// Repairs what an interrupted run left (half-created objects, stale mounts of keys the
    /// host no longer knows). Returns the keys it removed. Idempotent.
    fn cleanup(&self) -> PluginResult<Vec<String>>;
}
