//! berth-plugin-cgroup2: isolator plugin on the cgroup v2 unified hierarchy.
//!
//! The cgroup2 mount is found in `/proc/self/mountinfo`, berth's own group in the `0::`
//! line of `/proc/self/cgroup`. Per-container groups go below a parent group: `berth`
//! under berth's own group, or what the config `{"parent": "..."}` says (relative to
//! berth's own group, or absolute below the mount).
//!
//! **Ownership.** The group the parent path starts from (berth's own group, or the mount
//! root) is not berth's: it is never written. Controllers are enabled
//! (`cgroup.subtree_control`) only in the parent path's own components; a controller that
//! is not already enabled for them upstream is reported `Unsupported`.
//!
//! | limit | file |
//! |---|---|
//! | memory | memory.max |
//! | memory-swap | memory.swap.max = memory-swap − memory (Docker's flag is memory + swap; −1 = max) |
//! | memory-reservation | memory.low (runc's and Docker's mapping; soft protection, not a cap) |
//! | cpus | cpu.max `quota period` |
//! | cpu-shares | cpu.weight = 1 + ((shares − 2) × 9999) / 262142 (runc) |
//! | cpuset | cpuset.cpus / cpuset.mems |
//! | pids-limit | pids.max |
//! | blkio-weight | io.bfq.weight (as is) or io.weight `default 1 + (w − 10) × 9999 / 990` |
//! | device-io | io.max `maj:min rbps= wbps= riops= wiops=` |
//!
//! Device access lists ([`Isolator::set_devices`]) are a `BPF_PROG_TYPE_CGROUP_DEVICE`
//! program attached to the group (see [`devices`]); it needs no controller, so it works on
//! the cgroup2 mount of hybrid hosts too.
//!
//! Pause is cgroup.freeze (waiting for `frozen 1` in cgroup.events), SIGKILL is
//! cgroup.kill, OOM kills are counted from memory.events.

pub mod controllers;
pub mod devices;

use std::{
    path::{Path, PathBuf},
    sync::OnceLock,
};

use berth_abi::{
    DeviceRule, Isolator, IsolatorCaps, Limits, PluginContext, PluginResult, ResourceStats,
};
pub use berth_cgroup_common as common;
use berth_cgroup_common::{
    check_limits, fsutil, pids, procfs, signal, signal_pids, validate_id, wait_or_timeout, CgError,
    CgResult, Config, EMPTY_TIMEOUT, RMDIR_TIMEOUT,
};
use controllers::{core, cpu, cpuset, io, memory};
use nix::sys::signal::Signal;

/// Controllers this plugin enables for its groups.
pub const WANTED: &[&str] = &["cpu", "cpuset", "io", "memory", "pids"];

/// The cgroup v2 isolator.
#[derive(Debug)]
pub struct Cgroup2 {
    mount_point: PathBuf,
    /// The group the parent path starts from; not ours.
    anchor: PathBuf,
    /// The parent path below `anchor` (ours).
    rel: PathBuf,
    /// Controllers bound to cgroup v1 hierarchies on this host (hybrid layout).
    v1_controllers: Vec<String>,
    /// Whether device programs load here (probed once).
    bpf_devices: OnceLock<Result<(), String>>,
}

impl Cgroup2 {
    /// The plugin constructor.
    pub fn new(ctx: &PluginContext) -> PluginResult<Self> {
        Ok(Self::from_config_json(ctx.config_json())?)
    }

    /// Builds the isolator from the config JSON (`{"parent": "..."}` or empty).
    pub fn from_config_json(json: &str) -> CgResult<Self> {
        let parent = Config::parse(json)?.parent()?;
        let mounts = procfs::mounts()?;
        let v1_controllers = mounts
            .iter()
            .filter(|m| !m.unified)
            .flat_map(|m| m.controllers.iter().cloned())
            .collect();
        let mount = mounts
            .into_iter()
            .find(|m| m.unified)
            .ok_or_else(|| {
                CgError::Host(
                    "no cgroup2 mount in /proc/self/mountinfo (legacy cgroup v1 host? use the cgroup1 isolator)".into(),
                )
            })?;
        let own = procfs::own_cgroups()?
            .into_iter()
            .find(|c| c.hierarchy_id == 0 && c.controllers.is_empty())
            .ok_or_else(|| CgError::Host("no `0::` line in /proc/self/cgroup".into()))?;
        let own_dir = procfs::group_dir(&mount, &own.path).ok_or_else(|| {
            CgError::Host(format!(
                "berth's group {} is outside the cgroup2 mount at {}",
                own.path,
                mount.mount_point.display()
            ))
        })?;
        let (anchor, rel) = parent.resolve(&mount.mount_point, &own_dir);
        Ok(Cgroup2 {
            mount_point: mount.mount_point,
            anchor,
            rel,
            v1_controllers,
            bpf_devices: OnceLock::new(),
        })
    }

    /// The cgroup2 mount point.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// The parent group directory.
    pub fn parent(&self) -> PathBuf {
        self.anchor.join(&self.rel)
    }

    /// The directory of group `id`.
    pub fn group_dir(&self, id: &str) -> PathBuf {
        self.parent().join(id)
    }

    /// Creates the parent path and enables in each of its components what the component
    /// above offers. Failures to enable are left to [`Self::support`] to report.
    fn ensure_parent(&self) -> CgResult<()> {
        fsutil::mkdir_below(&self.anchor, &self.rel)?;
        let mut cur = self.anchor.clone();
        for comp in self.rel.components() {
            cur.push(comp);
            let offered = core::list(&cur, core::CONTROLLERS)?;
            let enabled = core::list(&cur, core::SUBTREE)?;
            for c in WANTED {
                let c = c.to_string();
                if offered.contains(&c) && !enabled.contains(&c) {
                    if let Err(e) = fsutil::write(&cur.join(core::SUBTREE), &format!("+{c}")) {
                        tracing::warn!(error = %e, "cannot enable a controller for berth's groups");
                    }
                }
            }
        }
        Ok(())
    }

    /// Why controller `c` is not usable in the groups, or `Ok`.
    fn controller(&self, c: &str) -> Result<(), String> {
        let parent = self.parent();
        let enabled = core::list(&parent, core::SUBTREE).map_err(|e| e.to_string())?;
        if enabled.iter().any(|e| e == c) {
            return Ok(());
        }
        let offered = core::list(&parent, core::CONTROLLERS).map_err(|e| e.to_string())?;
        if offered.iter().any(|e| e == c) {
            return Err(format!(
                "the {c} controller could not be enabled in {} (see the debug log)",
                parent.join(core::SUBTREE).display()
            ));
        }
        Err(format!(
            "the {c} controller is not enabled in {} (that group is not berth's; enable it there, e.g. with systemd Delegate=yes){}",
            self.anchor.join(core::SUBTREE).display(),
            if self.v1_controllers.iter().any(|v| v == c) {
                "; on this hybrid host the controller is bound to cgroup v1: use the cgroup1 isolator"
            } else {
                ""
            }
        ))
    }

    /// `Ok(())` if limit `name` can be enforced, else the reason.
    fn support(&self, name: &str) -> Result<(), String> {
        let parent = self.parent();
        let file = |ctrl: &str, f: &str, hint: &str| -> Result<(), String> {
            self.controller(ctrl)?;
            if parent.join(f).exists() {
                Ok(())
            } else {
                Err(format!(
                    "the kernel does not offer {}{hint}",
                    parent.join(f).display()
                ))
            }
        };
        match name {
            "memory" | "memory-reservation" => self.controller("memory"),
            "memory-swap" => file("memory", memory::SWAP_MAX, " (no swap accounting)"),
            "cpus" => file("cpu", cpu::MAX, " (kernel without CFS bandwidth control)"),
            "cpu-shares" => file("cpu", cpu::WEIGHT, ""),
            "cpuset" => file("cpuset", cpuset::CPUS, ""),
            "pids-limit" => self.controller("pids"),
            "blkio-weight" => {
                self.controller("io")?;
                io::weight_file(&parent).map(|_| ()).ok_or_else(|| {
                    "neither io.weight nor io.bfq.weight exists (no iocost or bfq)".to_string()
                })
            }
            "device-io" => file("io", io::MAX, ""),
            "freeze" => {
                if parent.join(core::FREEZE).exists() {
                    Ok(())
                } else {
                    Err("cgroup.freeze needs Linux 5.2 or later".into())
                }
            }
            "kill" => Ok(()),
            "devices" => self.bpf_devices.get_or_init(devices::probe).clone(),
            other => Err(format!("unknown limit {other}")),
        }
    }

    fn check(&self, l: &Limits) -> CgResult<()> {
        check_limits(l, |name| self.support(name))
    }

    /// Number of device programs attached to group `id` (tests, diagnostics).
    pub fn device_programs(&self, id: &str) -> CgResult<usize> {
        devices::attached_count(&self.existing(id)?)
    }

    fn existing(&self, id: &str) -> CgResult<PathBuf> {
        validate_id(id)?;
        let dir = self.group_dir(id);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(CgError::NotFound {
                id: id.to_string(),
                path: dir,
            })
        }
    }

    fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
        memory::apply(dir, l)?;
        cpu::apply(dir, l)?;
        cpuset::apply(dir, l)?;
        pids::apply(dir, l)?;
        io::apply(dir, l)
    }

    /// SIGKILL everything and wait (bounded) until the group is empty: cgroup.kill where
    /// the kernel has it (5.14+), else signal every listed pid until none is left.
    fn kill_all(&self, id: &str, dir: &Path) -> CgResult<()> {
        let procs = dir.join(core::PROCS);
        let has_kill = dir.join(core::KILL).exists();
        if has_kill {
            fsutil::write(&dir.join(core::KILL), "1")?;
        }
        wait_or_timeout(EMPTY_TIMEOUT, "killing the processes", id, || {
            let pids = fsutil::read_pids(&procs)?;
            if pids.is_empty() {
                return Ok(true);
            }
            if !has_kill {
                signal_pids(&pids, Signal::SIGKILL)?;
            }
            Ok(false)
        })
    }

    /// `(nr_periods, nr_throttled)` of the group's cpu.stat (tests and diagnostics).
    pub fn cpu_bandwidth(&self, id: &str) -> CgResult<Option<(u64, u64)>> {
        cpu::bandwidth(&self.existing(id)?)
    }
}

impl Isolator for Cgroup2 {
    fn capabilities(&self) -> PluginResult<IsolatorCaps> {
        self.ensure_parent()?;
        let mut notes = Vec::new();
        let supported =
            berth_cgroup_common::partition_capabilities(|n| self.support(n), &mut notes);
        Ok(IsolatorCaps {
            supported,
            parent: self.parent().display().to_string(),
            notes: notes.join("; "),
        })
    }

    fn create(&self, id: &str, limits: &Limits) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.create", id).entered();
        validate_id(id)?;
        self.ensure_parent()?;
        self.check(limits)?;
        let dir = self.group_dir(id);
        if !fsutil::mkdir_group(&dir, &|| self.ensure_parent())? {
            return Err(CgError::AlreadyExists {
                id: id.to_string(),
                path: dir,
            }
            .into());
        }
        if let Err(e) = Self::apply(&dir, limits) {
            if let Err(re) = fsutil::rmdir_retry(&dir, RMDIR_TIMEOUT) {
                tracing::warn!(error = %re, "rollback of a half-created group failed");
            }
            return Err(e.into());
        }
        Ok(())
    }

    fn add_process(&self, id: &str, pid: i32) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.add_process", id, pid).entered();
        let dir = self.existing(id)?;
        if pid <= 0 {
            return Err(CgError::InvalidLimit {
                limit: "pid",
                reason: format!("{pid} is not a process id"),
            }
            .into());
        }
        Ok(fsutil::write(&dir.join(core::PROCS), &pid.to_string())?)
    }

    fn update(&self, id: &str, limits: &Limits) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.update", id).entered();
        let dir = self.existing(id)?;
        self.check(limits)?;
        Ok(Self::apply(&dir, limits)?)
    }

    fn stats(&self, id: &str) -> PluginResult<ResourceStats> {
        let dir = self.existing(id)?;
        let mut s = ResourceStats::default();
        core::stats(&dir, &mut s)?;
        memory::stats(&dir, &mut s)?;
        pids::stats(&dir, &mut s)?;
        io::stats(&dir, &mut s)?;
        Ok(s)
    }

    fn freeze(&self, id: &str) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.freeze", id).entered();
        let dir = self.existing(id)?;
        self.support("freeze")
            .map_err(|r| CgError::unsupported("freeze", r))?;
        Ok(core::freeze(id, &dir)?)
    }

    fn thaw(&self, id: &str) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.thaw", id).entered();
        let dir = self.existing(id)?;
        Ok(core::thaw(&dir)?)
    }

    fn kill(&self, id: &str, sig: i32) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.kill", id, sig).entered();
        let dir = self.existing(id)?;
        let sig = signal(sig)?;
        if sig == Signal::SIGKILL {
            return Ok(self.kill_all(id, &dir)?);
        }
        Ok(signal_pids(
            &fsutil::read_pids(&dir.join(core::PROCS))?,
            sig,
        )?)
    }

    fn pids(&self, id: &str) -> PluginResult<Vec<i32>> {
        let dir = self.existing(id)?;
        Ok(fsutil::read_pids(&dir.join(core::PROCS))?)
    }

    fn destroy(&self, id: &str) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.destroy", id).entered();
        validate_id(id)?;
        let dir = self.group_dir(id);
        if !dir.is_dir() {
            return Ok(());
        }
        if dir.join(core::FREEZE).exists() {
            core::thaw(&dir)?;
        }
        self.kill_all(id, &dir)?;
        fsutil::rmdir_retry(&dir, RMDIR_TIMEOUT)?;
        fsutil::remove_empty_parents(&self.anchor, &self.rel);
        Ok(())
    }

    fn list(&self) -> PluginResult<Vec<String>> {
        Ok(fsutil::child_groups(&self.parent())?)
    }

    fn set_devices(&self, id: &str, rules: &[DeviceRule]) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup2.set_devices", id).entered();
        let dir = self.existing(id)?;
        self.support("devices")
            .map_err(|r| CgError::unsupported("devices", r))?;
        Ok(devices::attach(&dir, rules)?)
    }
}

berth_abi::export_plugin! {
    kind: isolator,
    name: "cgroup2",
    description: "cgroup v2 unified hierarchy (memory, cpu, cpuset, io, pids; freeze, kill; device programs)",
    constructor: Cgroup2::new,
}
