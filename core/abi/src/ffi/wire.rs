//! The `#[repr(C)]` twins of the public data types, as they cross the boundary.
//!
//! Each wire type has the **same name and fields** as the type it carries, in the same
//! order: abi_stable compares type names and fields when it checks a plugin, so renaming,
//! reordering or retyping anything here is an incompatible change (a new `ABI_VERSION`).
//! Plugins and the engine never see these types: the glue in [`crate::ffi`] converts.

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

use crate::{DeviceKind, ErrorKind, IoThrottle, Protocol, SnapshotKind};

/// Field conversions: `one` for a plain value, `opt` for an `Option`, `vec` for a `Vec`.
mod one {
    pub fn to<N, W: From<N>>(n: N) -> W {
        W::from(n)
    }
    pub fn from<W, N: From<W>>(w: W) -> N {
        N::from(w)
    }
}

mod opt {
    use abi_stable::std_types::ROption;
    pub fn to<N, W: From<N>>(n: Option<N>) -> ROption<W> {
        n.map(W::from).into()
    }
    pub fn from<W, N: From<W>>(w: ROption<W>) -> Option<N> {
        w.into_option().map(N::from)
    }
}

mod vec {
    use abi_stable::std_types::RVec;
    pub fn to<N, W: From<N>>(n: Vec<N>) -> RVec<W> {
        n.into_iter().map(W::from).collect()
    }
    pub fn from<W, N: From<W>>(w: RVec<W>) -> Vec<N> {
        w.into_iter().map(N::from).collect()
    }
}

/// Declares a wire struct and its conversions from and to `crate::$name`.
macro_rules! wire {
    ($(#[$m:meta])* $name:ident { $($field:ident : $wty:ty = $mode:ident),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(StableAbi, Debug, Clone)]
        pub struct $name {
            $(pub $field: $wty,)*
        }
        impl From<crate::$name> for $name {
            fn from(n: crate::$name) -> Self {
                $name { $($field: $mode::to(n.$field),)* }
            }
        }
        impl From<$name> for crate::$name {
            fn from(w: $name) -> Self {
                crate::$name { $($field: $mode::from(w.$field),)* }
            }
        }
    };
}

wire!(
    /// [`crate::PluginError`].
    PluginError {
        kind: ErrorKind = one,
        message: RString = one,
    }
);

wire!(
    /// [`crate::PluginContext`].
    PluginContext {
        state_dir: RString = one,
        run_dir: RString = one,
        config_json: RString = one,
        root_dir: RString = one,
    }
);

wire!(
    /// [`crate::StorageCapabilities`].
    StorageCapabilities {
        copy_on_write: bool = one,
        native_diff: bool = one,
        max_layers: u32 = one,
        detail: RString = one,
    }
);

wire!(
    /// [`crate::SnapshotInfo`].
    SnapshotInfo {
        key: RString = one,
        parent: ROption<RString> = opt,
        kind: SnapshotKind = one,
        mounted_at: ROption<RString> = opt,
    }
);

wire!(
    /// [`crate::NetworkSpec`].
    NetworkSpec {
        name: RString = one,
        subnet: ROption<RString> = opt,
        gateway: ROption<RString> = opt,
        internal: bool = one,
        options_json: RString = one,
    }
);

wire!(
    /// [`crate::NetworkInfo`].
    NetworkInfo {
        name: RString = one,
        id: RString = one,
        interface: RString = one,
        subnet: RString = one,
        gateway: RString = one,
        internal: bool = one,
        containers: RVec<RString> = vec,
        created: i64 = one,
    }
);

wire!(
    /// [`crate::PortMapping`].
    PortMapping {
        host_ip: RString = one,
        host_port: u16 = one,
        container_port: u16 = one,
        protocol: Protocol = one,
    }
);

wire!(
    /// [`crate::AttachRequest`].
    AttachRequest {
        container_id: RString = one,
        container_name: RString = one,
        netns_path: RString = one,
        network: RString = one,
        ifname: RString = one,
        static_ip: ROption<RString> = opt,
        aliases: RVec<RString> = vec,
        ports: RVec<PortMapping> = vec,
    }
);

wire!(
    /// [`crate::InterfaceInfo`].
    InterfaceInfo {
        name: RString = one,
        mac: RString = one,
        addresses: RVec<RString> = vec,
        host_interface: RString = one,
    }
);

wire!(
    /// [`crate::AttachResult`].
    AttachResult {
        interfaces: RVec<InterfaceInfo> = vec,
        gateway: ROption<RString> = opt,
        dns_servers: RVec<RString> = vec,
        dns_search: RVec<RString> = vec,
        ports: RVec<PortMapping> = vec,
    }
);

wire!(
    /// [`crate::DetachRequest`].
    DetachRequest {
        container_id: RString = one,
        netns_path: RString = one,
        network: RString = one,
        ifname: RString = one,
    }
);

wire!(
    /// [`crate::Limits`].
    Limits {
        memory: ROption<i64> = opt,
        memory_swap: ROption<i64> = opt,
        memory_reservation: ROption<i64> = opt,
        cpu_quota: ROption<i64> = opt,
        cpu_period: ROption<u64> = opt,
        cpu_shares: ROption<u64> = opt,
        cpuset_cpus: ROption<RString> = opt,
        cpuset_mems: ROption<RString> = opt,
        pids: ROption<i64> = opt,
        blkio_weight: ROption<u16> = opt,
        io_throttle: RVec<IoThrottle> = vec,
    }
);

wire!(
    /// [`crate::IsolatorCaps`].
    IsolatorCaps {
        supported: RVec<RString> = vec,
        parent: RString = one,
        notes: RString = one,
    }
);

wire!(
    /// [`crate::DeviceRule`].
    DeviceRule {
        allow: bool = one,
        kind: DeviceKind = one,
        major: ROption<u32> = opt,
        minor: ROption<u32> = opt,
        access: u8 = one,
    }
);

wire!(
    /// [`crate::ResourceStats`].
    ResourceStats {
        memory_current: ROption<u64> = opt,
        memory_peak: ROption<u64> = opt,
        memory_limit: ROption<u64> = opt,
        oom_kills: u64 = one,
        cpu_usage_ns: ROption<u64> = opt,
        pids_current: ROption<u64> = opt,
        pids_limit: ROption<u64> = opt,
        io_read_bytes: ROption<u64> = opt,
        io_write_bytes: ROption<u64> = opt,
        frozen: bool = one,
    }
);
