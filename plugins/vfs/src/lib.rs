//! berth-plugin-vfs: a storage driver of full copies, needing no overlay support.
//!
//! It is the SDK's copying driver as it comes, [`TreeDriver`] with [`FullCopy`]: every
//! object in `<state>/objects/<sha256(key)>/` has a complete `rootfs/`; a layer is a copy
//! of its parent's tree with the layer tar applied (whiteouts applied by deleting), an
//! active snapshot is a copy of its parent, a view shares its parent's tree through a
//! read-only bind mount. `diff` compares a snapshot's tree with its parent's. Being built
//! on `berth-plugin-sdk` alone, it is also the proof that a third-party driver needs
//! nothing else.

use berth_plugin_sdk::{
    storage::{FullCopy, TreeDriver},
    PluginContext, PluginResult,
};

/// The vfs driver.
pub type Vfs = TreeDriver<FullCopy>;

/// The constructor berth calls.
pub fn new(ctx: &PluginContext) -> PluginResult<Vfs> {
    TreeDriver::new("vfs", ctx, FullCopy)
}

berth_plugin_sdk::export_plugin! {
    kind: storage,
    name: "vfs",
    description: "full copies, no copy-on-write (works everywhere)",
    constructor: new,
}
