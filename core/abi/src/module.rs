//! What a plugin library exports: a [`PluginTag`] (plain C symbol, read first) and the
//! abi_stable root module [`PluginModRef`](crate::ffi::PluginModRef) (layout-checked).

use abi_stable::StableAbi;

/// The version of this contract. Bumped on every incompatible change; appending a method
/// with a default body to a trait (compatible growth) keeps it and bumps [`ABI_MINOR`].
pub const ABI_VERSION: u32 = 1;

/// Compatible additions since `ABI_VERSION.0`. A host loads plugins of its
/// [`ABI_VERSION`] with any minor: for methods an older plugin lacks it runs the default
/// body (e.g. `Unsupported`), and a newer plugin's extra methods are never called.
///
/// * 1.0 — the first contract.
/// * 1.1 — `Isolator::set_devices` (device access lists).
pub const ABI_MINOR: u32 = 1;

/// First bytes of [`PluginTag`], so the host can tell a berth plugin from another library.
pub const PLUGIN_TAG_MAGIC: [u8; 8] = *b"BERTHPLG";

/// Name of the exported [`PluginTag`] static.
pub const PLUGIN_TAG_SYMBOL: &[u8] = b"BERTH_PLUGIN_TAG\0";

/// The kinds of plugin.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginKind {
    Storage = 1,
    Network = 2,
    Isolator = 3,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PluginKind::Storage => "storage",
            PluginKind::Network => "network",
            PluginKind::Isolator => "isolator",
        }
    }
    pub fn from_u32(v: u32) -> Option<Self> {
        match v {
            1 => Some(PluginKind::Storage),
            2 => Some(PluginKind::Network),
            3 => Some(PluginKind::Isolator),
            _ => None,
        }
    }
}

/// Plain `#[repr(C)]` header every plugin exports as `BERTH_PLUGIN_TAG`. It is read with a
/// bare symbol lookup before abi_stable's layout check, so an old or foreign plugin is
/// reported in one line. Its layout never changes.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct PluginTag {
    pub magic: [u8; 8],
    pub abi_version: u32,
    /// A [`PluginKind`] as `u32`.
    pub kind: u32,
}

/// Everything the host hands a plugin's constructor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluginContext {
    /// A persistent directory that belongs to this plugin alone (created by the host),
    /// e.g. `/var/lib/berth/storage/overlayfs`.
    pub state_dir: String,
    /// A directory for runtime state that does not survive a reboot (locks, pid files).
    pub run_dir: String,
    /// The plugin's own config table (`[storage.overlayfs]` in berth.toml) as JSON.
    pub config_json: String,
    /// berth's root directory (for plugins that need to place objects near the store).
    pub root_dir: String,
}

impl PluginContext {
    pub fn state_dir(&self) -> &str {
        self.state_dir.as_str()
    }
    pub fn run_dir(&self) -> &str {
        self.run_dir.as_str()
    }
    pub fn config_json(&self) -> &str {
        self.config_json.as_str()
    }
}
