//! berth-runtime: the low-level runtime ("libcontainer") of berth.
//!
//! It starts a process isolated by kernel namespaces in a prepared root filesystem, with a
//! runc-like create/start split:
//!
//! 1. [`create`] computes everything in the parent (user, capabilities, mount list, C
//!    strings), then `clone`s a child with new pid, mount, uts, ipc (and net unless
//!    `Host`/`Join`) namespaces. The child makes `/` rslave, binds the rootfs onto itself,
//!    mounts `/proc`, a minimal `/dev`, `/sys`, the engine's mounts and `/etc` files, masks
//!    and write-protects runc's paths, `pivot_root`s, sets the hostname, reports *ready*
//!    on the status pipe and blocks on the *go* pipe.
//! 2. The engine puts the pid in its cgroup and attaches the network (`/proc/<pid>/ns/net`).
//! 3. [`Created::start`] writes *go*: the child unshares its cgroup namespace (rooted at
//!    the container's group), sets groups/gid/uid and capabilities, `no_new_privs`, and
//!    execs. The status pipe is CLOEXEC: EOF means the exec succeeded, a record carries
//!    the errno of a failed `execve` (→ 127 / 126).
//!
//! Threads: the caller may be multi-threaded; the child between `clone` and `execve` only
//! issues raw system calls on pre-built data (no allocation, no locks), see `child.rs`.
//! Resource limits are inherited unchanged (never raised).

mod caps;
mod child;
mod error;
mod init;
mod oci;
pub mod oci_in;
mod plan;
mod process;
mod protocol;
mod spec;
mod user;

pub use caps::{capability_mask, mask_names, parse_capability, DEFAULT_CAPS};
pub use error::RuntimeError;
pub use oci::to_oci_config;
pub use plan::{
    check_proc_mount, is_procfs, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, PROC_MOUNT_TARGETS,
};
pub use process::{
    create, create_with, exec, exec_with, start_fifo, CapSets, CreateOptions, Created, ExitStatus,
    Started,
};
pub use spec::{
    ContainerSpec, DeviceCgroupRule, DeviceNode, DeviceType, ExecOptions, MountSpec, NetworkMode,
    ProcessSpec, Stdio,
};
pub use user::{resolve_user, validate_user};
