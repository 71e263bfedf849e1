//! berth-layer-tar: safe OCI layer tar apply and diff, shared by storage plugins.
//!
//! * [`apply_layer`] unpacks an uncompressed OCI layer tar into a directory. Every path is
//!   resolved beneath the target with `openat2(RESOLVE_BENEATH)` and every leaf is created
//!   by (parent fd, name) without following symlinks: `..`, links pointing outside and
//!   paths through escaping symlinks are refused ([`LayerError::Unsafe`]). Modes, owners,
//!   times (directories last), xattrs, links, device nodes, fifos and holes are kept.
//!   Whiteouts go through a [`WhiteoutStrategy`]: [`OverlayWhiteouts`] or
//!   [`DeletingWhiteouts`]. The entry rules themselves live in [`validate`]
//!   ([`EntryValidator`]), which image import, load and pull also run over the layer
//!   streams they read ([`validate_tar`], [`TarCheckWriter`]), so a layer the unpacker
//!   would refuse never enters the image store.
//! * [`diff_overlay_upper`] and [`diff_trees`] write a layer tar back, sorted by path, with
//!   an optional mtime clamp.
//! * [`copy_tree`] makes full copies (for drivers without copy-on-write), and [`state`]
//!   has the bits drivers share for their state directories.

pub mod apply;
pub mod copy;
pub mod diff;
pub mod driver;
pub mod error;
pub mod fsutil;
pub mod state;
pub mod store;
pub mod validate;
pub mod whiteout;

/// Test helpers (a tree with every file type, tree manifests), for this crate's and the
/// driver suite's tests only.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub mod testing;

pub use apply::{apply_layer, ApplyStats};
pub use copy::copy_tree;
pub use diff::{diff_overlay_upper, diff_trees, DiffOptions, DiffStats};
pub use error::{LayerError, Result};
pub use fsutil::{remove_tree, tree_usage};
pub use validate::{normalize_entry_path, validate_tar, EntryValidator, Planned, TarCheckWriter};
pub use whiteout::{DeletingWhiteouts, OverlayWhiteouts, WhiteoutStrategy};
