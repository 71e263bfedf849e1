//! The root module of ABI **1.0** (before `Isolator::set_devices`), for plugins built
//! against it.
//!
//! abi_stable's load-time check refuses a library whose vtables have *fewer* methods than
//! the host's types (a prefix type may only grow on the library's side), so appending a
//! method alone would lock out every older plugin. The host therefore keeps the types of
//! each older minor and loads such a plugin through them; the methods the plugin lacks
//! answer `Unsupported` on the host side. Names and fields here must stay exactly as
//! they were in 1.0.

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, RResult, RStr, RString, RVec},
    StableAbi,
};

use super::{
    imported, vec_imported,
    wire::{IsolatorCaps, Limits, PluginContext, PluginError, ResourceStats},
    FfiNetwork_TO, FfiStorage_TO,
};
use crate::{Isolator, PluginKind, PluginResult};

type FResult<T> = RResult<T, PluginError>;

/// The version strings of ABI 1.0 plugins.
pub const ABI_1_0_VERSION_STRING: &str = "1.0.0";

/// `FfiIsolator` as it was in 1.0.
#[sabi_trait]
pub trait FfiIsolator: Send + Sync {
    fn capabilities(&self) -> FResult<IsolatorCaps>;
    fn create(&self, id: RStr<'_>, limits: &Limits) -> FResult<()>;
    fn add_process(&self, id: RStr<'_>, pid: i32) -> FResult<()>;
    fn update(&self, id: RStr<'_>, limits: &Limits) -> FResult<()>;
    fn stats(&self, id: RStr<'_>) -> FResult<ResourceStats>;
    fn freeze(&self, id: RStr<'_>) -> FResult<()>;
    fn thaw(&self, id: RStr<'_>) -> FResult<()>;
    fn kill(&self, id: RStr<'_>, signal: i32) -> FResult<()>;
    fn pids(&self, id: RStr<'_>) -> FResult<RVec<i32>>;
    fn destroy(&self, id: RStr<'_>) -> FResult<()>;
    #[sabi(last_prefix_field)]
    fn list(&self) -> FResult<RVec<RString>>;
}

/// `PluginMod` as it was in 1.0 (its isolator constructor returns the 1.0 vtable).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(option))]
pub struct PluginMod {
    pub abi_version: u32,
    pub kind: PluginKind,
    pub name: RStr<'static>,
    pub version: RStr<'static>,
    pub description: RStr<'static>,
    pub new_storage: extern "C" fn(PluginContext) -> FResult<FfiStorage_TO<'static, RBox<()>>>,
    pub new_network: extern "C" fn(PluginContext) -> FResult<FfiNetwork_TO<'static, RBox<()>>>,
    #[sabi(last_prefix_field)]
    pub new_isolator: extern "C" fn(PluginContext) -> FResult<FfiIsolator_TO<'static, RBox<()>>>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "berth_plugin";
    const NAME: &'static str = "berth_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_1_0_VERSION_STRING);
}

/// Host side of a 1.0 isolator; `.1` is its name.
pub struct IsolatorImport(pub FfiIsolator_TO<'static, RBox<()>>, pub String);

impl Isolator for IsolatorImport {
    fn capabilities(&self) -> PluginResult<crate::IsolatorCaps> {
        imported(&self.1, self.0.capabilities())
    }
    fn create(&self, id: &str, limits: &crate::Limits) -> PluginResult<()> {
        imported(&self.1, self.0.create(id.into(), &limits.clone().into()))
    }
    fn add_process(&self, id: &str, pid: i32) -> PluginResult<()> {
        imported(&self.1, self.0.add_process(id.into(), pid))
    }
    fn update(&self, id: &str, limits: &crate::Limits) -> PluginResult<()> {
        imported(&self.1, self.0.update(id.into(), &limits.clone().into()))
    }
    fn stats(&self, id: &str) -> PluginResult<crate::ResourceStats> {
        imported(&self.1, self.0.stats(id.into()))
    }
    fn freeze(&self, id: &str) -> PluginResult<()> {
        imported(&self.1, self.0.freeze(id.into()))
    }
    fn thaw(&self, id: &str) -> PluginResult<()> {
        imported(&self.1, self.0.thaw(id.into()))
    }
    fn kill(&self, id: &str, signal: i32) -> PluginResult<()> {
        imported(&self.1, self.0.kill(id.into(), signal))
    }
    fn pids(&self, id: &str) -> PluginResult<Vec<i32>> {
        vec_imported(&self.1, self.0.pids(id.into()))
    }
    fn destroy(&self, id: &str) -> PluginResult<()> {
        imported(&self.1, self.0.destroy(id.into()))
    }
    fn list(&self) -> PluginResult<Vec<String>> {
        vec_imported(&self.1, self.0.list())
    }
    fn set_devices(&self, _id: &str, _rules: &[crate::DeviceRule]) -> PluginResult<()> {
        Err(crate::PluginError::unsupported(format!(
            "{}: this isolator plugin predates device rules (built against berth-abi 1.0); rebuild it against a current berth-plugin-sdk or use cgroup1/cgroup2",
            self.1
        )))
    }
}
