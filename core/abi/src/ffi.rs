//! The abi_stable side of the contract. Plugin authors and the engine don't use this
//! module directly: [`export_plugin!`](crate::export_plugin) generates the plugin side and
//! `berth-plugin-host` wraps the host side back into the native traits.
//!
//! Evolution rule: new methods are appended after the `#[sabi(last_prefix_field)]` method
//! of a trait, with a default body (run on the host for plugins that lack the method), and
//! bump [`ABI_MINOR`](crate::ABI_MINOR); anything else is an incompatible change and bumps
//! [`ABI_VERSION`](crate::ABI_VERSION). [`ABI_VERSION_STRING`] and the crate version
//! follow both.

use std::{
    any::Any,
    io::{self, Read, Write},
    panic::{catch_unwind, AssertUnwindSafe},
};

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RSlice, RSliceMut, RStr, RString, RVec},
    StableAbi,
};

use crate::{
    storage::Usage, ErrorKind, Isolator, NetworkBackend, PluginKind, PluginResult, StorageDriver,
};

pub mod compat;
pub mod wire;

use wire::{
    AttachRequest, AttachResult, DetachRequest, DeviceRule, IsolatorCaps, Limits, NetworkInfo,
    NetworkSpec, PluginContext, PluginError, ResourceStats, SnapshotInfo, StorageCapabilities,
};

/// abi_stable's version check string: `ABI_VERSION.ABI_MINOR.0`. The host accepts plugins
/// of the same major and any minor (abi_stable's rule for majors ≥ 1).
pub const ABI_VERSION_STRING: &str = "1.1.0";

type FResult<T> = RResult<T, PluginError>;

// ---------------------------------------------------------------------------------------
// Conversions between the native results and the wire results.

/// A native result as it crosses the boundary.
fn to_wire<N, W: From<N>>(r: PluginResult<N>) -> FResult<W> {
    match r {
        Ok(v) => RResult::ROk(W::from(v)),
        Err(e) => RResult::RErr(e.into()),
    }
}

/// A wire result back in native form.
fn from_wire<W, N: From<W>>(r: FResult<W>) -> PluginResult<N> {
    match r {
        RResult::ROk(v) => Ok(N::from(v)),
        RResult::RErr(e) => Err(e.into()),
    }
}

fn vec_to_wire<N, W: From<N>>(r: PluginResult<Vec<N>>) -> PluginResult<RVec<W>> {
    r.map(|v| v.into_iter().map(W::from).collect())
}

/// A plugin's answer on the host side: its errors start with the plugin's name (once:
/// messages that already do are left alone), so every error says which plugin failed.
pub(crate) fn imported<W, N: From<W>>(plugin: &str, r: FResult<W>) -> PluginResult<N> {
    from_wire(r).map_err(|e: crate::PluginError| {
        if e.message
            .strip_prefix(plugin)
            .is_some_and(|rest| rest.starts_with(':'))
        {
            e
        } else {
            e.context(plugin)
        }
    })
}

pub(crate) fn vec_imported<W, N: From<W>>(
    plugin: &str,
    r: FResult<RVec<W>>,
) -> PluginResult<Vec<N>> {
    imported::<RVec<W>, RVec<W>>(plugin, r).map(|v| v.into_iter().map(N::from).collect())
}

// ---------------------------------------------------------------------------------------
// Byte streams (layer tars) cross the boundary as callback objects.

/// A byte source owned by the caller (e.g. the host's verified, decompressed layer).
#[sabi_trait]
pub trait FfiRead {
    /// Like `io::Read::read`: 0 means end of stream.
    #[sabi(last_prefix_field)]
    fn read(&mut self, buf: RSliceMut<'_, u8>) -> FResult<usize>;
}

/// A byte sink owned by the caller.
#[sabi_trait]
pub trait FfiWrite {
    fn write(&mut self, buf: RSlice<'_, u8>) -> FResult<usize>;
    #[sabi(last_prefix_field)]
    fn flush(&mut self) -> FResult<()>;
}

// The host's side of a stream runs when the plugin calls back: a panic in the host's
// reader or writer must not unwind through the plugin's frames either, so each callback
// is guarded like a plugin method.
struct ReadToFfi<'a>(&'a mut dyn Read);
impl FfiRead for ReadToFfi<'_> {
    fn read(&mut self, mut buf: RSliceMut<'_, u8>) -> FResult<usize> {
        guard_as("the host's layer reader", "read", || {
            self.0.read(buf.as_mut_slice()).map_err(io_to_plugin)
        })
    }
}

struct WriteToFfi<'a>(&'a mut dyn Write);
impl FfiWrite for WriteToFfi<'_> {
    fn write(&mut self, buf: RSlice<'_, u8>) -> FResult<usize> {
        guard_as("the host's layer writer", "write", || {
            self.0.write(buf.as_slice()).map_err(io_to_plugin)
        })
    }
    fn flush(&mut self) -> FResult<()> {
        guard_as("the host's layer writer", "flush", || {
            self.0.flush().map_err(io_to_plugin)
        })
    }
}

/// Plugin-side view of a host byte source.
pub struct FfiReader<'a>(FfiRead_TO<'a, RBox<()>>);
impl Read for FfiReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        from_wire(self.0.read(RSliceMut::from_mut_slice(buf))).map_err(plugin_to_io)
    }
}

/// Plugin-side view of a host byte sink.
pub struct FfiWriter<'a>(FfiWrite_TO<'a, RBox<()>>);
impl Write for FfiWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        from_wire(self.0.write(RSlice::from_slice(buf))).map_err(plugin_to_io)
    }
    fn flush(&mut self) -> io::Result<()> {
        from_wire(self.0.flush()).map_err(plugin_to_io)
    }
}

fn io_to_plugin(e: io::Error) -> crate::PluginError {
    // An error produced by the other side travels back unchanged.
    if let Some(inner) = e
        .get_ref()
        .and_then(|i| i.downcast_ref::<crate::PluginError>())
    {
        return inner.clone();
    }
    crate::PluginError::from(e)
}

fn plugin_to_io(e: crate::PluginError) -> io::Error {
    io::Error::other(e)
}

/// Wraps `&mut dyn Read` for a call across the boundary.
pub fn ffi_reader(r: &mut dyn Read) -> FfiRead_TO<'_, RBox<()>> {
    FfiRead_TO::from_value(ReadToFfi(r), abi_stable::sabi_trait::TD_Opaque)
}

/// Wraps `&mut dyn Write` for a call across the boundary.
pub fn ffi_writer(w: &mut dyn Write) -> FfiWrite_TO<'_, RBox<()>> {
    FfiWrite_TO::from_value(WriteToFfi(w), abi_stable::sabi_trait::TD_Opaque)
}

// ---------------------------------------------------------------------------------------
// Panic containment.

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs a plugin method, turning a panic into [`ErrorKind::Internal`] naming the method.
pub fn guard<N, W: From<N>>(method: &str, f: impl FnOnce() -> PluginResult<N>) -> FResult<W> {
    guard_as("plugin", method, f)
}

/// Runs code called across the boundary (`who` names the side for the message).
fn guard_as<N, W: From<N>>(
    who: &str,
    method: &str,
    f: impl FnOnce() -> PluginResult<N>,
) -> FResult<W> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => to_wire(r),
        Err(p) => RResult::RErr(
            crate::PluginError::new(
                ErrorKind::Internal,
                format!("{who} panicked in {method}: {}", panic_message(&*p)),
            )
            .into(),
        ),
    }
}

fn opt(o: ROption<RStr<'_>>) -> Option<&str> {
    match o {
        ROption::RSome(s) => Some(s.into()),
        ROption::RNone => None,
    }
}

fn ropt(o: Option<&str>) -> ROption<RStr<'_>> {
    o.map(RStr::from).into()
}

// ---------------------------------------------------------------------------------------
// Storage.

/// FFI form of [`StorageDriver`](crate::StorageDriver); see it for the semantics.
#[sabi_trait]
pub trait FfiStorage: Send + Sync {
    fn capabilities(&self) -> FResult<StorageCapabilities>;
    fn apply_layer(
        &self,
        id: RStr<'_>,
        parent: ROption<RStr<'_>>,
        diff: FfiRead_TO<'_, RBox<()>>,
    ) -> FResult<Usage>;
    fn prepare(&self, key: RStr<'_>, parent: ROption<RStr<'_>>, read_only: bool) -> FResult<()>;
    fn mount(&self, key: RStr<'_>, target: RStr<'_>) -> FResult<()>;
    fn unmount(&self, key: RStr<'_>, target: RStr<'_>) -> FResult<()>;
    fn diff(
        &self,
        key: RStr<'_>,
        out: FfiWrite_TO<'_, RBox<()>>,
        clamp_mtime: ROption<i64>,
    ) -> FResult<Usage>;
    fn commit(&self, key: RStr<'_>, id: RStr<'_>) -> FResult<Usage>;
    fn remove(&self, key: RStr<'_>) -> FResult<()>;
    fn usage(&self, key: RStr<'_>) -> FResult<Usage>;
    fn list(&self) -> FResult<RVec<SnapshotInfo>>;
    #[sabi(last_prefix_field)]
    fn cleanup(&self) -> FResult<RVec<RString>>;
}

/// Plugin side: a native driver behind the FFI trait, every call panic-guarded.
pub struct StorageExport<T>(pub T);

impl<T: StorageDriver> FfiStorage for StorageExport<T> {
    fn capabilities(&self) -> FResult<StorageCapabilities> {
        guard("capabilities", || self.0.capabilities())
    }
    fn apply_layer(
        &self,
        id: RStr<'_>,
        parent: ROption<RStr<'_>>,
        diff: FfiRead_TO<'_, RBox<()>>,
    ) -> FResult<Usage> {
        guard("apply_layer", || {
            let mut r = FfiReader(diff);
            self.0.apply_layer(id.into(), opt(parent), &mut r)
        })
    }
    fn prepare(&self, key: RStr<'_>, parent: ROption<RStr<'_>>, read_only: bool) -> FResult<()> {
        guard("prepare", || {
            self.0.prepare(key.into(), opt(parent), read_only)
        })
    }
    fn mount(&self, key: RStr<'_>, target: RStr<'_>) -> FResult<()> {
        guard("mount", || self.0.mount(key.into(), target.into()))
    }
    fn unmount(&self, key: RStr<'_>, target: RStr<'_>) -> FResult<()> {
        guard("unmount", || self.0.unmount(key.into(), target.into()))
    }
    fn diff(
        &self,
        key: RStr<'_>,
        out: FfiWrite_TO<'_, RBox<()>>,
        clamp_mtime: ROption<i64>,
    ) -> FResult<Usage> {
        guard("diff", || {
            let mut w = FfiWriter(out);
            self.0.diff(key.into(), &mut w, clamp_mtime.into_option())
        })
    }
    fn commit(&self, key: RStr<'_>, id: RStr<'_>) -> FResult<Usage> {
        guard("commit", || self.0.commit(key.into(), id.into()))
    }
    fn remove(&self, key: RStr<'_>) -> FResult<()> {
        guard("remove", || self.0.remove(key.into()))
    }
    fn usage(&self, key: RStr<'_>) -> FResult<Usage> {
        guard("usage", || self.0.usage(key.into()))
    }
    fn list(&self) -> FResult<RVec<SnapshotInfo>> {
        guard("list", || vec_to_wire(self.0.list()))
    }
    fn cleanup(&self) -> FResult<RVec<RString>> {
        guard("cleanup", || vec_to_wire(self.0.cleanup()))
    }
}

/// Host side: a loaded storage plugin seen through the native trait; `.1` is the
/// plugin's name, which every error it returns is prefixed with.
pub struct StorageImport(pub FfiStorage_TO<'static, RBox<()>>, pub String);

impl StorageDriver for StorageImport {
    fn capabilities(&self) -> PluginResult<crate::StorageCapabilities> {
        imported(&self.1, self.0.capabilities())
    }
    fn apply_layer(
        &self,
        id: &str,
        parent: Option<&str>,
        diff: &mut dyn Read,
    ) -> PluginResult<Usage> {
        imported(
            &self.1,
            self.0
                .apply_layer(id.into(), ropt(parent), ffi_reader(diff)),
        )
    }
    fn prepare(&self, key: &str, parent: Option<&str>, read_only: bool) -> PluginResult<()> {
        imported(&self.1, self.0.prepare(key.into(), ropt(parent), read_only))
    }
    fn mount(&self, key: &str, target: &str) -> PluginResult<()> {
        imported(&self.1, self.0.mount(key.into(), target.into()))
    }
    fn unmount(&self, key: &str, target: &str) -> PluginResult<()> {
        imported(&self.1, self.0.unmount(key.into(), target.into()))
    }
    fn diff(
        &self,
        key: &str,
        out: &mut dyn Write,
        clamp_mtime: Option<i64>,
    ) -> PluginResult<Usage> {
        imported(
            &self.1,
            self.0.diff(key.into(), ffi_writer(out), clamp_mtime.into()),
        )
    }
    fn commit(&self, key: &str, id: &str) -> PluginResult<Usage> {
        imported(&self.1, self.0.commit(key.into(), id.into()))
    }
    fn remove(&self, key: &str) -> PluginResult<()> {
        imported(&self.1, self.0.remove(key.into()))
    }
    fn usage(&self, key: &str) -> PluginResult<Usage> {
        imported(&self.1, self.0.usage(key.into()))
    }
    fn list(&self) -> PluginResult<Vec<crate::SnapshotInfo>> {
        vec_imported(&self.1, self.0.list())
    }
    fn cleanup(&self) -> PluginResult<Vec<String>> {
        vec_imported(&self.1, self.0.cleanup())
    }
}

// ---------------------------------------------------------------------------------------
// Network.

/// FFI form of [`NetworkBackend`](crate::NetworkBackend).
#[sabi_trait]
pub trait FfiNetwork: Send + Sync {
    fn create_network(&self, spec: &NetworkSpec) -> FResult<NetworkInfo>;
    fn remove_network(&self, name: RStr<'_>) -> FResult<()>;
    fn list_networks(&self) -> FResult<RVec<NetworkInfo>>;
    fn inspect_network(&self, name: RStr<'_>) -> FResult<NetworkInfo>;
    fn attach(&self, req: &AttachRequest) -> FResult<AttachResult>;
    fn detach(&self, req: &DetachRequest) -> FResult<()>;
    #[sabi(last_prefix_field)]
    fn check(&self, req: &DetachRequest) -> FResult<()>;
}

pub struct NetworkExport<T>(pub T);

impl<T: NetworkBackend> FfiNetwork for NetworkExport<T> {
    fn create_network(&self, spec: &NetworkSpec) -> FResult<NetworkInfo> {
        guard("create_network", || {
            self.0.create_network(&spec.clone().into())
        })
    }
    fn remove_network(&self, name: RStr<'_>) -> FResult<()> {
        guard("remove_network", || self.0.remove_network(name.into()))
    }
    fn list_networks(&self) -> FResult<RVec<NetworkInfo>> {
        guard("list_networks", || vec_to_wire(self.0.list_networks()))
    }
    fn inspect_network(&self, name: RStr<'_>) -> FResult<NetworkInfo> {
        guard("inspect_network", || self.0.inspect_network(name.into()))
    }
    fn attach(&self, req: &AttachRequest) -> FResult<AttachResult> {
        guard("attach", || self.0.attach(&req.clone().into()))
    }
    fn detach(&self, req: &DetachRequest) -> FResult<()> {
        guard("detach", || self.0.detach(&req.clone().into()))
    }
    fn check(&self, req: &DetachRequest) -> FResult<()> {
        guard("check", || self.0.check(&req.clone().into()))
    }
}

/// Host side of a network plugin; `.1` is its name (see [`StorageImport`]).
pub struct NetworkImport(pub FfiNetwork_TO<'static, RBox<()>>, pub String);

impl NetworkBackend for NetworkImport {
    fn create_network(&self, spec: &crate::NetworkSpec) -> PluginResult<crate::NetworkInfo> {
        imported(&self.1, self.0.create_network(&spec.clone().into()))
    }
    fn remove_network(&self, name: &str) -> PluginResult<()> {
        imported(&self.1, self.0.remove_network(name.into()))
    }
    fn list_networks(&self) -> PluginResult<Vec<crate::NetworkInfo>> {
        vec_imported(&self.1, self.0.list_networks())
    }
    fn inspect_network(&self, name: &str) -> PluginResult<crate::NetworkInfo> {
        imported(&self.1, self.0.inspect_network(name.into()))
    }
    fn attach(&self, req: &crate::AttachRequest) -> PluginResult<crate::AttachResult> {
        imported(&self.1, self.0.attach(&req.clone().into()))
    }
    fn detach(&self, req: &crate::DetachRequest) -> PluginResult<()> {
        imported(&self.1, self.0.detach(&req.clone().into()))
    }
    fn check(&self, req: &crate::DetachRequest) -> PluginResult<()> {
        imported(&self.1, self.0.check(&req.clone().into()))
    }
}

// ---------------------------------------------------------------------------------------
// Isolator.

/// FFI form of [`Isolator`](crate::Isolator).
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
    // ---- compatible growth (ABI 1.1 and later). abi_stable refuses a library whose
    // vtable is shorter than this one, so plugins of an older minor are loaded through
    // that minor's frozen types in `compat`; each method here still needs a default body
    // answering like a plugin that cannot do it (`Unsupported`).
    /// ABI 1.1: see [`Isolator::set_devices`](crate::Isolator::set_devices).
    fn set_devices(&self, id: RStr<'_>, rules: RSlice<'_, DeviceRule>) -> FResult<()> {
        let _ = (id, rules);
        RResult::RErr(
            crate::PluginError::unsupported(
                "this isolator plugin predates device rules (built against berth-abi 1.0); rebuild it against a current berth-plugin-sdk or use cgroup1/cgroup2",
            )
            .into(),
        )
    }
}

pub struct IsolatorExport<T>(pub T);

impl<T: Isolator> FfiIsolator for IsolatorExport<T> {
    fn capabilities(&self) -> FResult<IsolatorCaps> {
        guard("capabilities", || self.0.capabilities())
    }
    fn create(&self, id: RStr<'_>, limits: &Limits) -> FResult<()> {
        guard("create", || {
            self.0.create(id.into(), &limits.clone().into())
        })
    }
    fn add_process(&self, id: RStr<'_>, pid: i32) -> FResult<()> {
        guard("add_process", || self.0.add_process(id.into(), pid))
    }
    fn update(&self, id: RStr<'_>, limits: &Limits) -> FResult<()> {
        guard("update", || {
            self.0.update(id.into(), &limits.clone().into())
        })
    }
    fn stats(&self, id: RStr<'_>) -> FResult<ResourceStats> {
        guard("stats", || self.0.stats(id.into()))
    }
    fn freeze(&self, id: RStr<'_>) -> FResult<()> {
        guard("freeze", || self.0.freeze(id.into()))
    }
    fn thaw(&self, id: RStr<'_>) -> FResult<()> {
        guard("thaw", || self.0.thaw(id.into()))
    }
    fn kill(&self, id: RStr<'_>, signal: i32) -> FResult<()> {
        guard("kill", || self.0.kill(id.into(), signal))
    }
    fn pids(&self, id: RStr<'_>) -> FResult<RVec<i32>> {
        guard("pids", || vec_to_wire(self.0.pids(id.into())))
    }
    fn destroy(&self, id: RStr<'_>) -> FResult<()> {
        guard("destroy", || self.0.destroy(id.into()))
    }
    fn list(&self) -> FResult<RVec<RString>> {
        guard("list", || vec_to_wire(self.0.list()))
    }
    fn set_devices(&self, id: RStr<'_>, rules: RSlice<'_, DeviceRule>) -> FResult<()> {
        guard("set_devices", || {
            let rules: Vec<crate::DeviceRule> = rules.iter().cloned().map(Into::into).collect();
            self.0.set_devices(id.into(), &rules)
        })
    }
}

/// Host side of an isolator plugin; `.1` is its name (see [`StorageImport`]).
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
    fn set_devices(&self, id: &str, rules: &[crate::DeviceRule]) -> PluginResult<()> {
        let rules: Vec<DeviceRule> = rules.iter().copied().map(Into::into).collect();
        imported(
            &self.1,
            self.0.set_devices(id.into(), RSlice::from_slice(&rules)),
        )
    }
}

// ---------------------------------------------------------------------------------------
// The root module.

fn wrong_kind<T>(wanted: &str) -> FResult<T> {
    RResult::RErr(
        crate::PluginError::unsupported(format!("this plugin is not a {wanted} plugin")).into(),
    )
}
#[doc(hidden)]
pub extern "C" fn no_storage(_: PluginContext) -> FResult<FfiStorage_TO<'static, RBox<()>>> {
    wrong_kind("storage")
}
#[doc(hidden)]
pub extern "C" fn no_network(_: PluginContext) -> FResult<FfiNetwork_TO<'static, RBox<()>>> {
    wrong_kind("network")
}
#[doc(hidden)]
pub extern "C" fn no_isolator(_: PluginContext) -> FResult<FfiIsolator_TO<'static, RBox<()>>> {
    wrong_kind("isolator")
}

/// The root module every plugin library exports (through [`export_plugin!`](crate::export_plugin)).
/// Exactly one constructor is set, the one of `kind`.
///
/// Fields appended after the `#[sabi(last_prefix_field)]` one (compatible growth) are read
/// through accessors that return `Option`: `None` for a plugin built before the field
/// existed, which the host must handle (never a panic, as `missing_field(panic)` would).
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
    /// Set for storage plugins; the others return `Unsupported`.
    pub new_storage: extern "C" fn(PluginContext) -> FResult<FfiStorage_TO<'static, RBox<()>>>,
    pub new_network: extern "C" fn(PluginContext) -> FResult<FfiNetwork_TO<'static, RBox<()>>>,
    #[sabi(last_prefix_field)]
    pub new_isolator: extern "C" fn(PluginContext) -> FResult<FfiIsolator_TO<'static, RBox<()>>>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "berth_plugin";
    const NAME: &'static str = "berth_plugin";
    const VERSION_STRINGS: VersionStrings = VersionStrings::new(ABI_VERSION_STRING);
}

/// Builds a constructor result for the generated `extern "C"` constructors.
pub fn construct<T, O>(
    make: impl FnOnce() -> PluginResult<T>,
    wrap: impl FnOnce(T) -> O,
) -> FResult<O> {
    match guard("constructor", make) {
        RResult::ROk(v) => RResult::ROk(wrap(v)),
        RResult::RErr(e) => RResult::RErr(e),
    }
}

pub fn storage_to_ffi<T: StorageDriver + 'static>(t: T) -> FfiStorage_TO<'static, RBox<()>> {
    FfiStorage_TO::from_value(StorageExport(t), abi_stable::sabi_trait::TD_Opaque)
}
pub fn network_to_ffi<T: NetworkBackend + 'static>(t: T) -> FfiNetwork_TO<'static, RBox<()>> {
    FfiNetwork_TO::from_value(NetworkExport(t), abi_stable::sabi_trait::TD_Opaque)
}
pub fn isolator_to_ffi<T: Isolator + 'static>(t: T) -> FfiIsolator_TO<'static, RBox<()>> {
    FfiIsolator_TO::from_value(IsolatorExport(t), abi_stable::sabi_trait::TD_Opaque)
}

/// Exports a plugin from a `cdylib` crate. See the crate docs.
///
/// ```ignore
/// berth_abi::export_plugin! {
///     kind: storage,            // storage | network | isolator
///     name: "vfs",
///     description: "full-copy storage driver",
///     constructor: Vfs::new,    // fn(&PluginContext) -> PluginResult<Vfs>
/// }
/// ```
#[macro_export]
macro_rules! export_plugin {
    (kind: storage, name: $name:expr, description: $desc:expr, constructor: $ctor:path $(,)?) => {
        $crate::__export_plugin_inner!(
            Storage,
            $name,
            $desc,
            new_storage,
            storage_to_ffi,
            FfiStorage_TO,
            $ctor
        );
    };
    (kind: network, name: $name:expr, description: $desc:expr, constructor: $ctor:path $(,)?) => {
        $crate::__export_plugin_inner!(
            Network,
            $name,
            $desc,
            new_network,
            network_to_ffi,
            FfiNetwork_TO,
            $ctor
        );
    };
    (kind: isolator, name: $name:expr, description: $desc:expr, constructor: $ctor:path $(,)?) => {
        $crate::__export_plugin_inner!(
            Isolator,
            $name,
            $desc,
            new_isolator,
            isolator_to_ffi,
            FfiIsolator_TO,
            $ctor
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_plugin_inner {
    ($kind:ident, $name:expr, $desc:expr, $field:ident, $wrap:ident, $to:ident, $ctor:path) => {
        /// The plain tag the host reads before the layout check.
        #[no_mangle]
        pub static BERTH_PLUGIN_TAG: $crate::PluginTag = $crate::PluginTag {
            magic: $crate::PLUGIN_TAG_MAGIC,
            abi_version: $crate::ABI_VERSION,
            kind: $crate::PluginKind::$kind as u32,
        };

        extern "C" fn __berth_plugin_new(
            ctx: $crate::ffi::wire::PluginContext,
        ) -> $crate::__private::abi_stable::std_types::RResult<
            $crate::ffi::$to<'static, $crate::__private::abi_stable::std_types::RBox<()>>,
            $crate::ffi::wire::PluginError,
        > {
            let ctx: $crate::PluginContext = ctx.into();
            $crate::ffi::construct(|| $ctor(&ctx), $crate::ffi::$wrap)
        }

        pub fn __berth_plugin_root_module() -> $crate::ffi::PluginModRef {
            use $crate::__private::abi_stable::prefix_type::PrefixTypeTrait;
            use $crate::__private::abi_stable::std_types::RStr;
            let mut module = $crate::ffi::PluginMod {
                abi_version: $crate::ABI_VERSION,
                kind: $crate::PluginKind::$kind,
                name: RStr::from_str($name),
                version: RStr::from_str(env!("CARGO_PKG_VERSION")),
                description: RStr::from_str($desc),
                new_storage: $crate::ffi::no_storage,
                new_network: $crate::ffi::no_network,
                new_isolator: $crate::ffi::no_isolator,
            };
            module.$field = __berth_plugin_new;
            module.leak_into_prefix()
        }

        // What abi_stable's `#[export_root_module]` generates, spelled with `$crate` paths so
        // plugin crates need no direct abi_stable dependency.
        #[no_mangle]
        pub static _1as_0lib_1header_0root_bmodule_bloader:
            $crate::__private::abi_stable::library::LibHeader = {
            extern "C" fn __berth_erased_module(
            ) -> $crate::__private::abi_stable::library::RootModuleResult {
                $crate::__private::abi_stable::library::__call_root_module_loader(
                    __berth_plugin_root_module,
                )
            }
            // SAFETY: the constructor returns the module type the header is built for,
            // exactly as abi_stable's own `export_root_module` attribute does it.
            unsafe {
                $crate::__private::abi_stable::library::LibHeader::from_constructor::<
                    $crate::ffi::PluginModRef,
                >(
                    __berth_erased_module,
                    $crate::__private::abi_stable::library::CheckTypeLayout::Yes,
                )
            }
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        AttachRequest as NAttach, DeviceKind, IoThrottle, Limits as NLimits, NetworkBackend,
        PortMapping, Protocol, SnapshotKind,
    };

    #[test]
    fn export_macro_uses_abi_stables_loader_symbol() {
        // `__export_plugin_inner!` spells this name out (a macro_rules can't compute it).
        assert_eq!(
            abi_stable::library::ROOT_MODULE_LOADER_NAME,
            "_1as_0lib_1header_0root_bmodule_bloader"
        );
    }

    #[test]
    fn versions_agree() {
        let parts: Vec<u32> = ABI_VERSION_STRING
            .split('.')
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(parts, [crate::ABI_VERSION, crate::ABI_MINOR, 0]);
        // The crate version is 0.MAJOR.MINOR, so cargo's semver matches the ABI's.
        assert_eq!(
            env!("CARGO_PKG_VERSION"),
            format!("0.{}.{}", crate::ABI_VERSION, crate::ABI_MINOR)
        );
    }

    #[test]
    fn guard_turns_panic_into_internal_error() {
        let r: FResult<()> = guard("mount", || -> PluginResult<()> { panic!("boom") });
        let e: crate::PluginError = r.into_result().unwrap_err().into();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(e.message().contains("mount") && e.message().contains("boom"));
    }

    #[test]
    fn byte_streams_round_trip() {
        let data = b"hello layer".to_vec();
        let mut src: &[u8] = &data;
        let mut r = FfiReader(ffi_reader(&mut src));
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        assert_eq!(got, data);

        let mut sink = Vec::new();
        {
            let mut w = FfiWriter(ffi_writer(&mut sink));
            w.write_all(b"abc").unwrap();
            w.flush().unwrap();
        }
        assert_eq!(sink, b"abc");
    }

    struct PanickingIo;
    impl Read for PanickingIo {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            panic!("host reader bug")
        }
    }
    impl Write for PanickingIo {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            panic!("host writer bug")
        }
        fn flush(&mut self) -> io::Result<()> {
            panic!("host flush bug")
        }
    }

    #[test]
    fn host_callbacks_turn_panics_into_errors() {
        let mut src = PanickingIo;
        let mut r = FfiReader(ffi_reader(&mut src));
        let e = r.read(&mut [0u8; 4]).unwrap_err();
        assert!(e.to_string().contains("host reader bug"), "{e}");
        assert!(e.to_string().contains("panicked in read"), "{e}");

        let mut sink = PanickingIo;
        let mut w = FfiWriter(ffi_writer(&mut sink));
        let e = w.write(b"x").unwrap_err();
        assert!(e.to_string().contains("host writer bug"), "{e}");
        let e = w.flush().unwrap_err();
        assert!(e.to_string().contains("host flush bug"), "{e}");
    }

    /// An error the host's reader returns reaches the plugin with its kind intact, and
    /// comes back to the host unchanged.
    #[test]
    fn stream_errors_keep_their_kind() {
        struct Denied;
        impl Read for Denied {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other(crate::PluginError::busy("layer in use")))
            }
        }
        let mut src = Denied;
        let mut r = FfiReader(ffi_reader(&mut src));
        let e = io_to_plugin(r.read(&mut [0u8; 4]).unwrap_err());
        assert_eq!(e.kind, ErrorKind::Busy);
        assert_eq!(e.message(), "layer in use");
    }

    /// Native values survive the trip through the wire types and the FFI traits.
    #[test]
    fn native_types_cross_unchanged() {
        struct Net;
        impl NetworkBackend for Net {
            fn create_network(
                &self,
                spec: &crate::NetworkSpec,
            ) -> PluginResult<crate::NetworkInfo> {
                Ok(crate::NetworkInfo {
                    name: spec.name.clone(),
                    subnet: spec.subnet.clone().unwrap_or_default(),
                    containers: vec!["a".into(), "b".into()],
                    ..Default::default()
                })
            }
            fn remove_network(&self, _: &str) -> PluginResult<()> {
                Err(crate::PluginError::not_found("no such network"))
            }
            fn list_networks(&self) -> PluginResult<Vec<crate::NetworkInfo>> {
                Ok(vec![])
            }
            fn inspect_network(&self, _: &str) -> PluginResult<crate::NetworkInfo> {
                Ok(Default::default())
            }
            fn attach(&self, req: &NAttach) -> PluginResult<crate::AttachResult> {
                Ok(crate::AttachResult {
                    gateway: req.static_ip.clone(),
                    dns_search: req.aliases.clone(),
                    ports: req.ports.clone(),
                    ..Default::default()
                })
            }
            fn detach(&self, _: &crate::DetachRequest) -> PluginResult<()> {
                Ok(())
            }
            fn check(&self, _: &crate::DetachRequest) -> PluginResult<()> {
                Ok(())
            }
        }
        let net = NetworkImport(network_to_ffi(Net), "testnet".into());
        let info = net
            .create_network(&crate::NetworkSpec {
                name: "n1".into(),
                subnet: Some("10.0.0.0/24".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(info.name, "n1");
        assert_eq!(info.subnet, "10.0.0.0/24");
        assert_eq!(info.containers, ["a", "b"]);
        let port = PortMapping {
            host_ip: String::new(),
            host_port: 8080,
            container_port: 80,
            protocol: Protocol::Udp,
        };
        let res = net
            .attach(&NAttach {
                container_id: "c".into(),
                container_name: "n".into(),
                netns_path: "/x".into(),
                network: "n1".into(),
                ifname: "eth0".into(),
                static_ip: Some("10.0.0.9".into()),
                aliases: vec!["web".into()],
                ports: vec![port.clone()],
            })
            .unwrap();
        assert_eq!(res.gateway.as_deref(), Some("10.0.0.9"));
        assert_eq!(res.dns_search, ["web"]);
        assert_eq!(res.ports, [port]);
        let e = net.remove_network("x").unwrap_err();
        assert_eq!(e.kind, ErrorKind::NotFound);
        assert_eq!(
            e.message(),
            "testnet: no such network",
            "errors name the plugin"
        );

        let limits = NLimits {
            memory: Some(1 << 20),
            cpuset_cpus: Some("0-1".into()),
            io_throttle: vec![IoThrottle {
                major: 8,
                read_bps: 5,
                ..Default::default()
            }],
            ..Default::default()
        };
        let back: NLimits = wire::Limits::from(limits.clone()).into();
        assert_eq!(back, limits);
        let rule = crate::DeviceRule::new(true, DeviceKind::Char, Some(1), None, 3);
        let back: crate::DeviceRule = wire::DeviceRule::from(rule).into();
        assert_eq!(back, rule);
        let snap = crate::SnapshotInfo {
            key: "k".into(),
            parent: None,
            kind: SnapshotKind::View,
            mounted_at: Some("/m".into()),
        };
        let back: crate::SnapshotInfo = wire::SnapshotInfo::from(snap.clone()).into();
        assert_eq!(back, snap);
    }
}
