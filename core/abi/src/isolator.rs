//! Isolators: resource control of a container's processes (cgroups).
//!
//! The host creates one group per container before the container's first process execs,
//! sets its device access list ([`Isolator::set_devices`]), forks the process, calls
//! [`Isolator::add_process`] while the child waits, then lets it exec. `exec` places its process the same way.
//!
//! **Thread-safety:** isolators are `Send + Sync`; groups are named by the host's container
//! id, so two processes never race on one group.

use abi_stable::StableAbi;

use crate::{PluginError, PluginResult};

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// `--memory`, bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`: memory + swap, bytes; -1 = unlimited swap.
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`, bytes (soft limit).
    pub memory_reservation: Option<i64>,
    /// `--cpus` as a quota in microseconds per `cpu_period`.
    pub cpu_quota: Option<i64>,
    /// Microseconds; default 100000.
    pub cpu_period: Option<u64>,
    /// `--cpu-shares` (2..262144, Docker's scale).
    pub cpu_shares: Option<u64>,
    /// `--cpuset-cpus`, e.g. `0-1`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit`; -1 = unlimited.
    pub pids: Option<i64>,
    /// `--blkio-weight` (10..1000).
    pub blkio_weight: Option<u16>,
    pub io_throttle: Vec<IoThrottle>,
}

/// What this isolator can enforce on this host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IsolatorCaps {
    /// Names of enforceable limits, matching the CLI flags without dashes:
    /// `memory`, `memory-swap`, `memory-reservation`, `cpus`, `cpu-shares`, `cpuset`,
    /// `pids-limit`, `blkio-weight`, `device-io`; plus `freeze`, `kill` and `devices`
    /// (device access lists, [`Isolator::set_devices`]).
    pub supported: Vec<String>,
    /// Where groups are created (for `berth info`).
    pub parent: String,
    /// Human-readable notes, e.g. why a controller is unavailable.
    pub notes: String,
}

/// Which devices a [`DeviceRule`] matches.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// `a`: character and block devices.
    All = 0,
    /// `c`: character devices.
    Char = 1,
    /// `b`: block devices.
    Block = 2,
}

impl DeviceKind {
    /// The letter of the kernel's device-controller syntax.
    pub fn letter(self) -> char {
        match self {
            DeviceKind::All => 'a',
            DeviceKind::Char => 'c',
            DeviceKind::Block => 'b',
        }
    }
}

/// One entry of a group's device access list, in the kernel's (and runc's, and
/// `--device-cgroup-rule`'s) terms: `c 1:3 rwm` allows reading, writing and `mknod` of
/// `/dev/null`.
///
/// A list is evaluated like runc's device filter: the **last** rule that matches a device
/// and covers every requested access decides; when none matches, access is denied.
/// The host always sends a complete list that starts with a wildcard rule for every
/// device (`a *:* rwm`), deny (the default: Docker's list of allowed devices follows) or
/// allow (`--privileged`), followed by rules of the opposite verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceRule {
    /// `true` = allow (`devices.allow`), `false` = deny (`devices.deny`).
    pub allow: bool,
    pub kind: DeviceKind,
    /// `None` = any major (`*`).
    pub major: Option<u32>,
    /// `None` = any minor (`*`).
    pub minor: Option<u32>,
    /// A set of [`DeviceRule::READ`], [`DeviceRule::WRITE`], [`DeviceRule::MKNOD`].
    pub access: u8,
}

impl DeviceRule {
    /// `r`: open for reading.
    pub const READ: u8 = 1;
    /// `w`: open for writing.
    pub const WRITE: u8 = 2;
    /// `m`: create the node with `mknod`.
    pub const MKNOD: u8 = 4;
    /// `rwm`.
    pub const ALL_ACCESS: u8 = 7;

    /// A rule; `None` for a major or minor number means any (`*`).
    pub fn new(
        allow: bool,
        kind: DeviceKind,
        major: Option<u32>,
        minor: Option<u32>,
        access: u8,
    ) -> DeviceRule {
        DeviceRule {
            allow,
            kind,
            major,
            minor,
            access,
        }
    }

    /// A rule for every device (`a *:* rwm`).
    pub fn everything(allow: bool) -> DeviceRule {
        DeviceRule {
            allow,
            kind: DeviceKind::All,
            major: None,
            minor: None,
            access: Self::ALL_ACCESS,
        }
    }

    /// `true` for `a *:* rwm` (allow or deny).
    pub fn is_everything(&self) -> bool {
        self.kind == DeviceKind::All
            && self.major.is_none()
            && self.minor.is_none()
            && self.access == Self::ALL_ACCESS
    }

    /// The access letters, e.g. `rwm`.
    pub fn access_letters(&self) -> String {
        let mut s = String::with_capacity(3);
        for (bit, c) in [(Self::READ, 'r'), (Self::WRITE, 'w'), (Self::MKNOD, 'm')] {
            if self.access & bit != 0 {
                s.push(c);
            }
        }
        s
    }

    /// Checks the shape of a rule list as described on [`DeviceRule`]: not empty, the
    /// first rule is `a *:* rwm`, the others have the opposite verdict and a non-empty
    /// access set. Returns the default verdict (`true` = allow by default).
    pub fn check_list(rules: &[DeviceRule]) -> PluginResult<bool> {
        let first = rules.first().ok_or_else(|| {
            PluginError::invalid("empty device rule list (it must start with `a *:* rwm`)")
        })?;
        if !first.is_everything() {
            return Err(PluginError::invalid(format!(
                "device rule list starts with `{first}`; it must start with a rule for every device (`a *:* rwm`)"
            )));
        }
        for r in &rules[1..] {
            if r.allow == first.allow {
                return Err(PluginError::invalid(format!(
                    "device rule `{}` {} what the first rule already {}s",
                    r,
                    if r.allow { "allows" } else { "denies" },
                    if r.allow { "allow" } else { "deny" }
                )));
            }
            if r.access == 0 || r.access & !Self::ALL_ACCESS != 0 {
                return Err(PluginError::invalid(format!(
                    "device rule for {}: access bits {:#x} are not a non-empty subset of rwm",
                    r.kind.letter(),
                    r.access
                )));
            }
        }
        Ok(first.allow)
    }
}

/// The kernel's `devices.allow` syntax without the verdict: `c 1:3 rwm`, `a *:* rwm`.
impl std::fmt::Display for DeviceRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let num = |n: Option<u32>| match n {
            Some(n) => n.to_string(),
            None => "*".to_string(),
        };
        write!(
            f,
            "{} {}:{} {}",
            self.kind.letter(),
            num(self.major),
            num(self.minor),
            self.access_letters()
        )
    }
}

/// Usage counters of a group. Absent counters are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceStats {
    pub memory_current: Option<u64>,
    pub memory_peak: Option<u64>,
    /// None = unlimited.
    pub memory_limit: Option<u64>,
    /// Number of OOM kills in the group so far.
    pub oom_kills: u64,
    /// Total CPU time, nanoseconds.
    pub cpu_usage_ns: Option<u64>,
    pub pids_current: Option<u64>,
    pub pids_limit: Option<u64>,
    pub io_read_bytes: Option<u64>,
    pub io_write_bytes: Option<u64>,
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

    /// Sets which devices the processes of group `id` may open and `mknod` (see
    /// [`DeviceRule`] for how `rules` is read), replacing what was set before. The host
    /// calls it after [`Isolator::create`] and before the container's process runs: if it
    /// fails the container does not start.
    ///
    /// Added in the same ABI version as a compatible extension: plugins built before it
    /// (and isolators that can't restrict devices) answer `Unsupported`, and the host then
    /// refuses to run a container that is not `--privileged`.
    fn set_devices(&self, id: &str, rules: &[DeviceRule]) -> PluginResult<()> {
        let _ = (id, rules);
        Err(PluginError::unsupported(
            "this isolator cannot restrict device access",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_in_kernel_syntax() {
        assert_eq!(DeviceRule::everything(false).to_string(), "a *:* rwm");
        let r = DeviceRule::new(
            true,
            DeviceKind::Char,
            Some(136),
            None,
            DeviceRule::READ | DeviceRule::WRITE,
        );
        assert_eq!(r.to_string(), "c 136:* rw");
        assert_eq!(
            DeviceRule::new(true, DeviceKind::Block, Some(8), Some(0), DeviceRule::MKNOD)
                .to_string(),
            "b 8:0 m"
        );
    }

    #[test]
    fn list_shape_is_checked() {
        let null = DeviceRule::new(
            true,
            DeviceKind::Char,
            Some(1),
            Some(3),
            DeviceRule::ALL_ACCESS,
        );
        assert_eq!(
            DeviceRule::check_list(&[DeviceRule::everything(false), null]),
            Ok(false)
        );
        assert_eq!(
            DeviceRule::check_list(&[DeviceRule::everything(true)]),
            Ok(true)
        );
        assert!(DeviceRule::check_list(&[]).is_err());
        assert!(DeviceRule::check_list(&[null]).is_err());
        assert!(DeviceRule::check_list(&[DeviceRule::everything(true), null]).is_err());
        let none = DeviceRule { access: 0, ..null };
        assert!(DeviceRule::check_list(&[DeviceRule::everything(false), none]).is_err());
    }
}
