//! The container description the engine hands to the runtime.

use std::{os::fd::OwnedFd, path::PathBuf};

use serde::{Deserialize, Serialize};

/// Everything needed to create one container process (see [`crate::create`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSpec {
    /// Container id (used in messages and in the OCI config).
    pub id: String,
    /// Root filesystem, already mounted in the host mount namespace; becomes `/`.
    pub rootfs: PathBuf,
    /// Hostname set in the new UTS namespace.
    pub hostname: String,
    /// The process to run.
    pub process: ProcessSpec,
    /// Extra mounts, applied in order after `/proc`, `/dev` and `/sys`.
    pub mounts: Vec<MountSpec>,
    /// Host files bind-mounted at container paths (`/etc/hostname`, `/etc/hosts`, `/etc/resolv.conf`).
    pub etc_files: Vec<(PathBuf, String)>,
    /// Network namespace of the container.
    pub network: NetworkMode,
    /// Remount `/` read-only after the mounts are in place.
    pub readonly_rootfs: bool,
    /// All capabilities, no masked or read-only paths, writable `/sys`.
    pub privileged: bool,
    /// Capabilities added to [`crate::DEFAULT_CAPS`] (Docker names, `CAP_` optional, `ALL`).
    pub cap_add: Vec<String>,
    /// Capabilities removed from the set (Docker names, `CAP_` optional, `ALL`).
    pub cap_drop: Vec<String>,
    /// `prctl(PR_SET_NO_NEW_PRIVS)` before exec.
    pub no_new_privileges: bool,
    /// Run the built-in init (reaper and signal forwarder) as PID 1.
    pub init: bool,
    /// Paths hidden from the container; `None` means runc's defaults.
    pub masked_paths: Option<Vec<String>>,
    /// Paths made read-only; `None` means runc's defaults.
    pub readonly_paths: Option<Vec<String>>,
    /// Seccomp profile, compiled for the process's capabilities and installed as the last
    /// step before exec (see [`crate::create`]); `None` = unconfined. The engine passes
    /// [`berth_seccomp::Profile::default_profile`] unless `seccomp=unconfined`.
    #[serde(default)]
    pub seccomp: Option<berth_seccomp::Profile>,
    /// Device nodes created in the container (`--device`), after the mounts.
    #[serde(default)]
    pub devices: Vec<DeviceNode>,
    /// The device access list the engine's isolator enforces on the container's cgroup.
    /// The runtime does not enforce it (it has no cgroup of its own): it only reports it
    /// as `linux.resources.devices` in the OCI config.
    #[serde(default)]
    pub device_rules: Vec<DeviceCgroupRule>,
}

/// Character or block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceType {
    Char,
    Block,
    /// A named pipe (OCI type `p`; major and minor are 0).
    Fifo,
}

/// A device node to create in the container (OCI `linux.devices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceNode {
    /// Absolute path in the container, e.g. `/dev/kmsg`; missing parents are created.
    pub path: String,
    pub kind: DeviceType,
    pub major: u32,
    pub minor: u32,
    /// Permission bits of the node (e.g. `0o666`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// One rule of a device access list (OCI `linux.resources.devices`): `kind` is `a`, `c`
/// or `b`; `None` numbers are `*`; `access` is a subset of `rwm`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceCgroupRule {
    pub allow: bool,
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: String,
}

/// The process of a container or of an `exec`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// argv; `args[0]` is looked up in the container's `PATH` unless it contains a `/`.
    pub args: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Working directory inside the container (created if missing); empty means `/`.
    pub cwd: String,
    /// `""`, `name`, `uid`, `name:group`, `uid:gid` (resolved in the container's `/etc`).
    pub user: String,
    /// The process has a terminal (sets `TERM=xterm` when missing).
    pub tty: bool,
}

/// One mount of the engine's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountSpec {
    /// Bind mount of a host path (file or directory), recursive.
    Bind {
        source: PathBuf,
        destination: String,
        read_only: bool,
    },
    /// A tmpfs; `options` as in `docker run --tmpfs /x:size=64m,mode=1777,noexec`.
    Tmpfs {
        destination: String,
        options: String,
    },
    /// Any other file system (OCI `mounts` entries): `options` are mount(8) style flags
    /// (`ro`, `nosuid`, `noexec`, `nodev`, `relatime`…); the rest is passed as data.
    /// Propagation options (`rprivate`, `shared`…) are not applied: every mount of the
    /// container is a slave of the host's.
    Other {
        source: String,
        destination: String,
        fstype: String,
        options: Vec<String>,
    },
}

/// Network namespace choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkMode {
    /// A new, empty network namespace with only `lo` (brought up).
    New,
    /// The host's network namespace.
    Host,
    /// An existing network namespace, by path (`/run/netns/x`, `/proc/<pid>/ns/net`).
    Join(PathBuf),
}

/// Standard streams of the process.
#[derive(Debug)]
pub enum Stdio {
    /// The caller's own 0, 1 and 2.
    Inherit,
    /// Given descriptors (stdin `None` means `/dev/null`).
    Fds {
        stdin: Option<OwnedFd>,
        stdout: OwnedFd,
        stderr: OwnedFd,
    },
    /// The runtime allocates a pseudo-terminal; the master is returned by
    /// [`crate::Created::pty_master`] / [`crate::Started::pty_master`].
    Pty,
}

/// Options of [`crate::exec`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecOptions {
    /// All capabilities.
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    /// `cgroup.procs` files (host paths) the exec'd process joins before exec, e.g.
    /// one per cgroup v1 hierarchy.
    pub cgroup_procs: Vec<PathBuf>,
    /// Seccomp profile of the exec'd process (like the container's); `None` = unconfined.
    #[serde(default)]
    pub seccomp: Option<berth_seccomp::Profile>,
}
