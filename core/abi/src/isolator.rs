//! Isolators: resource control of a container's processes (cgroups).
//!
//! The host creates one group per container before the container's first process execs:
//! it forks the process, calls [`Isolator::add_process`] while the child waits, then lets it
//! exec. `exec` places its process the same way.
//!
//! **Thread-safety:** isolators are `Send + Sync`; groups are named by the host's container
//! id, so two processes never race on one group.

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

use crate::PluginResult;

/// `--device-read-bps` and friends for one block device (`major:minor`); 0 = no limit.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct IoThrottle {
    pub major: u32,
    pub minor: u32,
    pub read_bps: u64,
    pub write_bps: u64,
    pub read_iops: u64,
    pub write_iops: u64,
}

/// Resource limits of a group. `None` = leave as is / unlimited.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `--memory`, bytes.
    pub memory: ROption<i64>,
    /// `--memory-swap`: memory + swap, bytes; -1 = unlimited swap.
    pub memory_swap: ROption<i64>,
    /// `--memory-reservation`, bytes (soft limit).
    pub memory_reservation: ROption<i64>,
    /// `--cpus` as a quota in microseconds per `cpu_period`.
    pub cpu_quota: ROption<i64>,
    /// Microseconds; default 100000.
    pub cpu_period: ROption<u64>,
    /// `--cpu-shares` (2..262144, Docker's scale).
    pub cpu_shares: ROption<u64>,
    /// `--cpuset-cpus`, e.g. `0-1`.
    pub cpuset_cpus: ROption<RString>,
    /// `--cpuset-mems`.
    pub cpuset_mems: ROption<RString>,
    /// `--pids-limit`; -1 = unlimited.
    pub pids: ROption<i64>,
    /// `--blkio-weight` (10..1000).
    pub blkio_weight: ROption<u16>,
    pub io_throttle: RVec<IoThrottle>,
}

/// What this isolator can enforce on this host.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct IsolatorCaps {
    /// Names of enforceable limits, matching the CLI flags without dashes:
    /// `memory`, `memory-swap`, `memory-reservation`, `cpus`, `cpu-shares`, `cpuset`,
    /// `pids-limit`, `blkio-weight`, `device-io`; plus `freeze` and `kill`.
    pub supported: RVec<RString>,
    /// Where groups are created (for `berth info`).
    pub parent: RString,
    /// Human-readable notes, e.g. why a controller is unavailable.
    pub notes: RString,
}

/// Usage counters of a group. Absent counters are `None`.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceStats {
    pub memory_current: ROption<u64>,
    pub memory_peak: ROption<u64>,
    /// None = unlimited.
    pub memory_limit: ROption<u64>,
    /// Number of OOM kills in the group so far.
    pub oom_kills: u64,
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: ROption<u64>,
    pub pids_current: ROption<u64>,
    pub pids_limit: ROption<u64>,
    pub io_read_bytes: ROption<u64>,
    pub io_write_bytes: ROption<u64>,
    pub frozen: bool,
}

/// The native trait an isolator plugin implements.
pub trait Isolator: Send + Sync {
    /// Which limits this host can enforce through this plugin.
    fn capabilities(&self) -> PluginResult<IsolatorCaps>;

    /// Creates the group `id` with `limits`. A limit the host can't enforce is
    /// `Unsupported`, naming the limit and the reason; nothing is left behind on error.
    /// `AlreadyExists` if the group exists.
    fn create(&self, id: &str, limits: &Limits) -> PluginResult<()>;

    /// Moves process `pid` (and its future children) into group `id`.
    fn add_process(&self, id: &str, pid: i32) -> PluginResult<()>;

    /// Changes limits of a live group (only the `Some` fields).
    fn update(&self, id: &str, limits: &Limits) -> PluginResult<()>;

    fn stats(&self, id: &str) -> PluginResult<ResourceStats>;

    /// Freezes every process of the group; returns when they are frozen.
    fn freeze(&self, id: &str) -> PluginResult<()>;

    fn thaw(&self, id: &str) -> PluginResult<()>;

    /// Sends `signal` to every process of the group (SIGKILL kills the whole tree at once
    /// where the kernel offers it).
    fn kill(&self, id: &str, signal: i32) -> PluginResult<()>;

    /// Pids of the group's processes, as seen from the host.
    fn pids(&self, id: &str) -> PluginResult<Vec<i32>>;

    /// Removes the group, killing what is left in it. Idempotent.
    fn destroy(&self, id: &str) -> PluginResult<()>;

    /// Ids of every group this plugin holds (to find leftovers of crashed runs).
    fn list(&self) -> PluginResult<Vec<String>>;
}
