//! # A template for a berth storage driver
//!
//! A complete driver in a few lines: the SDK's [`TreeDriver`] does everything a copying
//! driver does (atomic objects in `objects/`, crash-safe commit and remove, `cleanup`,
//! read-only views, the safe layer applier and differ); the driver only says how a new
//! object's tree is made from its parent's ([`Populate`]). Here that is a full copy that
//! skips nothing; a driver for a filesystem with cheap clones (reflinks, snapshots) does
//! its clone there instead and keeps the rest.
//!
//! For a driver that is not a tree of copies (overlay-like, a block device per snapshot),
//! implement [`berth_plugin_sdk::StorageDriver`] yourself and use the pieces in
//! [`berth_plugin_sdk::storage`] (`apply_layer`, `diff_trees`, `store::Store`, `kit`).
//!
//! Select it in `berth.toml`; the table reaches the constructor as JSON:
//!
//! ```toml
//! [storage]
//! driver = "copies"
//! [storage.copies]
//! ```

use std::path::Path;

use berth_plugin_sdk::{
    storage::{FullCopy, Populate, TreeDriver},
    PluginContext, PluginError, PluginResult,
};

/// How this driver makes a child's tree from its parent's.
pub struct Copies;

impl Populate for Copies {
    fn populate(&self, src: &Path, dst: &Path) -> PluginResult<()> {
        // Replace with your filesystem's clone; it must keep everything a layer carries
        // (owners, modes, nanosecond times, xattrs, hard links, holes): `berth plugin
        // test` checks that.
        FullCopy.populate(src, dst)
    }

    fn describe(&self) -> String {
        "template driver: full copies at {root}".into()
    }
}

/// The constructor berth calls with the plugin's context.
pub fn new(ctx: &PluginContext) -> PluginResult<TreeDriver<Copies>> {
    // The `[storage.copies]` table; a real driver parses it (e.g. with serde_json).
    let config = ctx.config_json().trim();
    if !config.is_empty() && config != "{}" {
        return Err(PluginError::invalid(format!(
            "copies: this driver has no options, got {config}"
        )));
    }
    TreeDriver::new("copies", ctx, Copies)
}

berth_plugin_sdk::export_plugin! {
    kind: storage,
    name: "copies",
    description: "template storage driver: full copies on the SDK's TreeDriver",
    constructor: new,
}
