//! # berth-abi — the plugin contract of berth
//!
//! berth is a small core that loads three kinds of plugin at run time:
//!
//! | kind | trait | first-party plugins |
//! |---|---|---|
//! | storage driver | [`StorageDriver`] | `overlayfs`, `vfs` |
//! | network backend | [`NetworkBackend`] | `bridge` |
//! | isolator | [`Isolator`] | `cgroup1`, `cgroup2` |
//!
//! A plugin is a `cdylib` that depends on this crate **alone**, implements one of the
//! traits with ordinary Rust types and exports itself with [`export_plugin!`]:
//!
//! ```ignore
//! berth_abi::export_plugin! {
//!     kind: storage,
//!     name: "mystore",
//!     description: "stores layers on the moon",
//!     constructor: MyStore::new,   // fn(&PluginContext) -> Result<MyStore, PluginError>
//! }
//! ```
//!
//! ## How the contract is kept
//! * The wire format is `abi_stable` 0.11: the `#[repr(C)]` twins of the data types in
//!   [`ffi::wire`] derive `StableAbi` and the host checks the whole layout when it loads a
//!   library. The mechanism stays inside this crate ([`ffi`]): plugin code and the engine
//!   only see the native traits and the plain Rust data types below (`String`, `Vec`,
//!   `Option`), converted at the boundary by the generated glue.
//! * [`ABI_VERSION`] (the major) changes on every incompatible change; [`ABI_MINOR`]
//!   counts compatible growth (a new method appended to a trait, with a default body the
//!   host runs for older plugins). The crate's own version is `0.ABI_VERSION.ABI_MINOR`,
//!   so Cargo's semver rules and the ABI agree. See `docs/plugins.md`.
//! * Every plugin also exports a plain C symbol, [`PluginTag`], that the host reads before
//!   the layout check, so a plugin of another ABI version is reported in one line.
//! * A panic inside a plugin method never crosses the boundary: the generated adapter
//!   catches it and returns [`ErrorKind::Internal`] naming the method.
//! * Errors cross as a typed [`PluginError`] (kind + message).
#![allow(non_local_definitions)] // abi_stable 0.11's derive macros trip this lint.

pub mod error;
pub mod ffi;
pub mod isolator;
pub mod module;
pub mod network;
pub mod storage;

pub use error::{ErrorKind, PluginError, PluginResult};
pub use isolator::{
    DeviceKind, DeviceRule, IoThrottle, Isolator, IsolatorCaps, Limits, ResourceStats,
};
pub use module::{PluginContext, PluginKind, PluginTag, ABI_MINOR, ABI_VERSION, PLUGIN_TAG_MAGIC};
pub use network::{
    AttachRequest, AttachResult, DetachRequest, InterfaceInfo, NetworkBackend, NetworkInfo,
    NetworkSpec, PortMapping, Protocol,
};
pub use storage::{SnapshotInfo, SnapshotKind, StorageCapabilities, StorageDriver, Usage};

/// Re-exports used by [`export_plugin!`]; not part of the public contract.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable;
}
