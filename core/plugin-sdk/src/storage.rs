//! The storage driver kit: safe layer apply/diff, tree copies, the crash-safe object
//! store, and [`TreeDriver`], a complete driver over them.
//!
//! What the host and the conformance suite (`berth plugin test`) expect of a driver, in
//! addition to the trait's documentation:
//!
//! * **Layers keep everything a tar carries**: file types, modes, owners, nanosecond
//!   mtimes, xattrs (including `security.capability`), hard links, device nodes, sparse
//!   holes. [`apply_layer`] and [`diff_trees`] do that; a driver should not write its own.
//! * **Unsafe entries are refused** (`..`, absolute paths, links out of the layer) with
//!   `InvalidArgument`, and nothing of the layer is left.
//! * **State layout**: objects are created under `tmp/` in the state directory and renamed
//!   into `objects/`; mount records live in `mounts/`. After `remove` of everything these
//!   are empty, and `cleanup()` returns the keys (build names) of what it removed.
//! * 128+ stacked layers mount.

/// Helpers berth's drivers share: error conversion ([`kit::perr`]), key checks, usage,
/// unmounting, crash-safe commit and remove.
pub use berth_layer_tar::driver as kit;
pub use berth_layer_tar::{
    apply_layer, copy_tree, diff_overlay_upper, diff_trees, remove_tree, tree_usage, ApplyStats,
    DeletingWhiteouts, DiffOptions, DiffStats, LayerError, OverlayWhiteouts, WhiteoutStrategy,
};
pub use berth_layer_tar::{state, store};

mod tree;
pub use tree::{FullCopy, Populate, TreeDriver};
