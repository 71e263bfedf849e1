//! # berth-plugin-sdk — write a berth plugin out of tree
//!
//! The one dependency a third-party plugin needs:
//!
//! * everything of [`berth_abi`] (the traits [`StorageDriver`], [`NetworkBackend`],
//!   [`Isolator`], their plain Rust data types, [`PluginError`] and [`export_plugin!`]),
//!   re-exported at the crate root;
//! * [`storage`]: what a storage driver needs beyond the trait — the safe layer tar
//!   applier and differ berth's own drivers use (`openat2(RESOLVE_BENEATH)`, whiteouts,
//!   hard links, holes, xattrs incl. `security.capability`, nanosecond times), the
//!   crash-safe object store, and [`storage::TreeDriver`], a complete copying driver a
//!   plugin specialises with one method.
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//! [dependencies]
//! berth-plugin-sdk = { version = "0.1", path = "/path/to/berth/core/plugin-sdk" }
//! ```
//!
//! The templates under `examples/` (storage, network, isolator) build out of tree as
//! copied; `berth plugin test PATH.so` runs the conformance suite of a plugin's kind.

pub use berth_abi::*;
// Spelled out so the macro is found even by tools that don't follow glob re-exports.
pub use berth_abi::export_plugin;

pub mod storage;
