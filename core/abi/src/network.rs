//! Network backends: connect a container's network namespace to a network.
//!
//! The anchor is CNI: [`NetworkBackend::attach`] is ADD (returns the interfaces, addresses,
//! gateway and DNS the container got), [`NetworkBackend::detach`] is DEL (must succeed when
//! things are already gone) and [`NetworkBackend::check`] is CHECK. Every operation is
//! idempotent so the host can simply retry after a crash.
//!
//! **Thread-safety:** backends are `Send + Sync`, and several `berth` processes attach at
//! once: address allocation must be locked across processes.

use abi_stable::StableAbi;

use crate::PluginResult;

/// `berth network create`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSpec {
    pub name: String,
    /// CIDR, e.g. `10.89.3.0/24`; none = the backend picks a free one.
    pub subnet: Option<String>,
    /// none = first address of the subnet.
    pub gateway: Option<String>,
    /// No route to the outside (no masquerade).
    pub internal: bool,
    /// Backend-specific options as a JSON object (`{}` when none).
    pub options_json: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkInfo {
    pub name: String,
    pub id: String,
    /// Name of the host interface (e.g. the bridge), if any.
    pub interface: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    /// Containers currently attached (their ids).
    pub containers: Vec<String>,
    /// Unix seconds.
    pub created: i64,
}

#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp = 0,
    Udp = 1,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }
}

/// A published port: `host_ip:host_port` → `container_port` in the container.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PortMapping {
    /// Empty = all host addresses.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachRequest {
    pub container_id: String,
    /// For name resolution on user-defined networks.
    pub container_name: String,
    /// Path of the container's network namespace (e.g. `/proc/PID/ns/net` or a bind mount).
    pub netns_path: String,
    pub network: String,
    /// Interface name inside the container (`eth0`, `eth1`…).
    pub ifname: String,
    pub static_ip: Option<String>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortMapping>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InterfaceInfo {
    pub name: String,
    pub mac: String,
    /// Addresses in CIDR notation.
    pub addresses: Vec<String>,
    /// Host-side peer (e.g. the veth), if any.
    pub host_interface: String,
}

/// What `attach` did (CNI's result).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachResult {
    pub interfaces: Vec<InterfaceInfo>,
    pub gateway: Option<String>,
    /// Name servers for the container's resolv.conf (empty = the host's).
    pub dns_servers: Vec<String>,
    pub dns_search: Vec<String>,
    /// Published ports as actually bound (random host ports resolved).
    pub ports: Vec<PortMapping>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachRequest {
    pub container_id: String,
    /// May name a namespace that is already gone.
    pub netns_path: String,
    pub network: String,
    pub ifname: String,
}

/// The native trait a network plugin implements.
pub trait NetworkBackend: Send + Sync {
    /// Creates a network. `AlreadyExists` for a taken name, `InvalidArgument` for a subnet
    /// that overlaps another network or is malformed.
    fn create_network(&self, spec: &NetworkSpec) -> PluginResult<NetworkInfo>;

    /// Removes a network and everything the backend created for it (bridge, rules).
    /// `Busy` while containers are attached; unknown name = `NotFound`.
    fn remove_network(&self, name: &str) -> PluginResult<()>;

    fn list_networks(&self) -> PluginResult<Vec<NetworkInfo>>;

    fn inspect_network(&self, name: &str) -> PluginResult<NetworkInfo>;

    /// CNI ADD: connects the namespace, allocates an address, installs port forwards.
    /// On error nothing of this attachment is left (no veth, lease or rule). Calling it
    /// again for an attached container returns the existing result.
    fn attach(&self, req: &AttachRequest) -> PluginResult<AttachResult>;

    /// CNI DEL: undoes `attach`. Succeeds when the namespace, link or lease is already gone.
    fn detach(&self, req: &DetachRequest) -> PluginResult<()>;

    /// CNI CHECK: verifies the attachment still exists as `attach` made it.
    fn check(&self, req: &DetachRequest) -> PluginResult<()>;
}
