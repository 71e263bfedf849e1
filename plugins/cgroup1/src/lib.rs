//! berth-plugin-cgroup1: isolator plugin on cgroup v1 hierarchies (legacy and hybrid hosts).
//!
//! One group per container id in every v1 hierarchy berth uses (memory, cpu, cpuacct,
//! cpuset, pids, blkio, freezer, devices; co-mounted ones such as `cpu,cpuacct` count once), below a
//! parent group that is `berth` under the group berth itself runs in (per hierarchy, from
//! `/proc/self/cgroup`), or what the config `{"parent": "..."}` says (relative to berth's
//! own group, or absolute below each mount). Only the parent path and the per-container
//! groups are created or written; the group berth runs in is never touched.
//!
//! | limit | file |
//! |---|---|
//! | memory | memory.limit_in_bytes |
//! | memory-swap | memory.memsw.limit_in_bytes (memory + swap, like Docker's flag) |
//! | memory-reservation | memory.soft_limit_in_bytes |
//! | cpus | cpu.cfs_period_us, cpu.cfs_quota_us |
//! | cpu-shares | cpu.shares |
//! | cpuset | cpuset.cpus / cpuset.mems (new groups inherit the parent's) |
//! | pids-limit | pids.max |
//! | blkio-weight | blkio.weight (CFQ) or blkio.bfq.weight (BFQ) |
//! | device-io | blkio.throttle.{read,write}_{bps,iops}_device |
//! | devices ([`Isolator::set_devices`]) | devices.deny `a`, then one devices.allow line per rule |

pub mod controllers;
pub mod hierarchy;

use std::{collections::BTreeSet, path::PathBuf};

use berth_abi::{
    DeviceRule, Isolator, IsolatorCaps, Limits, PluginContext, PluginResult, ResourceStats,
};
pub use berth_cgroup_common as common;
use berth_cgroup_common::{
    check_limits, fsutil, pids, procfs, signal, signal_pids, validate_id, wait_or_timeout, CgError,
    CgResult, Config, EMPTY_TIMEOUT, RMDIR_TIMEOUT,
};
use controllers::{blkio, cpu, cpuacct, cpuset, devices, freezer, memory};
use hierarchy::Hierarchy;
use nix::sys::signal::Signal;

/// The cgroup v1 isolator.
#[derive(Debug)]
pub struct Cgroup1 {
    hierarchies: Vec<Hierarchy>,
    /// Why controllers are missing (for `capabilities().notes`).
    notes: Vec<String>,
}

impl Cgroup1 {
    /// The plugin constructor: reads the config and finds the hierarchies.
    pub fn new(ctx: &PluginContext) -> PluginResult<Self> {
        Ok(Self::from_config_json(ctx.config_json())?)
    }

    /// Builds the isolator from the config JSON (`{"parent": "..."}` or empty).
    pub fn from_config_json(json: &str) -> CgResult<Self> {
        let cfg = Config::parse(json)?;
        let parent = cfg.parent()?;
        let (hierarchies, notes) =
            hierarchy::discover(&procfs::mounts()?, &procfs::own_cgroups()?, &parent);
        if hierarchies.is_empty() {
            return Err(CgError::Host(format!(
                "no cgroup v1 hierarchy of {} is mounted (is this a pure cgroup v2 host? use the cgroup2 isolator)",
                hierarchy::WANTED.join(", ")
            )));
        }
        Ok(Cgroup1 { hierarchies, notes })
    }

    /// Drops the hierarchy of `controller` as if the host did not mount it (tests of the
    /// `Unsupported` paths, or to keep berth away from a hierarchy).
    pub fn without_controller(mut self, controller: &str) -> Self {
        self.hierarchies.retain(|h| !h.has(controller));
        self.notes.push(format!("{controller}: disabled"));
        self
    }

    /// The hierarchies in use.
    pub fn hierarchies(&self) -> &[Hierarchy] {
        &self.hierarchies
    }

    fn hier(&self, controller: &str) -> Option<&Hierarchy> {
        self.hierarchies.iter().find(|h| h.has(controller))
    }

    /// Group directory of `id` in the hierarchy of `controller`.
    pub fn group_dir(&self, id: &str, controller: &str) -> Option<PathBuf> {
        self.hier(controller).map(|h| h.group(id))
    }

    fn ensure_parents(&self) -> CgResult<()> {
        self.hierarchies
            .iter()
            .try_for_each(hierarchy::ensure_parent)
    }

    /// `Ok(())` if limit `name` can be enforced, else the reason. Looks at the parent
    /// group (non-root: some files exist only there).
    fn support(&self, name: &str) -> Result<(), String> {
        let need = |ctrl: &str, file: Option<&str>| -> Result<(), String> {
            let h = self.hier(ctrl).ok_or_else(|| {
                format!("the {ctrl} controller has no cgroup v1 hierarchy on this host")
            })?;
            if let Some(f) = file {
                let p = h.parent().join(f);
                if !p.exists() {
                    return Err(format!("the kernel does not offer {}", p.display()));
                }
            }
            Ok(())
        };
        match name {
            "memory" => need("memory", Some(memory::LIMIT)),
            "memory-swap" => need("memory", Some(memory::MEMSW))
                .map_err(|e| format!("{e} (swap accounting is off; boot with swapaccount=1)")),
            "memory-reservation" => need("memory", Some(memory::SOFT)),
            "cpus" => need("cpu", Some(cpu::QUOTA))
                .map_err(|e| format!("{e} (kernel without CFS bandwidth control)")),
            "cpu-shares" => need("cpu", Some(cpu::SHARES)),
            "cpuset" => need("cpuset", Some(cpuset::CPUS)),
            "pids-limit" => need("pids", Some(pids::MAX)),
            "blkio-weight" => {
                need("blkio", None)?;
                let parent = self.hier("blkio").map(|h| h.parent()).unwrap_or_default();
                blkio::weight_file(&parent).map(|_| ()).ok_or_else(|| {
                    "neither blkio.weight nor blkio.bfq.weight exists (the block devices' I/O scheduler has no proportional weights; select bfq)".to_string()
                })
            }
            "device-io" => need("blkio", Some(blkio::THROTTLE_READ_BPS)),
            "freeze" => need("freezer", Some(freezer::STATE)),
            "devices" => need("devices", Some(devices::ALLOW)),
            "kill" => Ok(()),
            other => Err(format!("unknown limit {other}")),
        }
    }

    fn check(&self, l: &Limits) -> CgResult<()> {
        check_limits(l, |name| self.support(name))
    }

    /// Errors with `NotFound` unless `id` exists in the first hierarchy.
    fn existing(&self, id: &str) -> CgResult<()> {
        validate_id(id)?;
        let h = &self.hierarchies[0];
        let dir = h.group(id);
        if hierarchy::exists(&dir) {
            Ok(())
        } else {
            Err(CgError::NotFound {
                id: id.to_string(),
                path: dir,
            })
        }
    }

    fn apply(&self, id: &str, l: &Limits) -> CgResult<()> {
        for h in &self.hierarchies {
            let dir = h.group(id);
            if h.has("memory") {
                memory::apply(&dir, l)?;
            }
            if h.has("cpu") {
                cpu::apply(&dir, l)?;
            }
            if h.has("cpuset") {
                cpuset::apply(&dir, l)?;
            }
            if h.has("pids") {
                pids::apply(&dir, l)?;
            }
            if h.has("blkio") {
                blkio::apply(&dir, l)?;
            }
        }
        Ok(())
    }

    fn create_inner(&self, id: &str, l: &Limits, created: &mut Vec<PathBuf>) -> CgResult<()> {
        for h in &self.hierarchies {
            let dir = h.group(id);
            if !fsutil::mkdir_group(&dir, &|| hierarchy::ensure_parent(h))? {
                return Err(CgError::AlreadyExists {
                    id: id.to_string(),
                    path: dir,
                });
            }
            created.push(dir.clone());
            if h.has("cpuset") {
                cpuset::inherit(&h.parent(), &dir)?;
            }
        }
        self.apply(id, l)
    }

    fn all_pids(&self, id: &str) -> CgResult<Vec<i32>> {
        let mut set = BTreeSet::new();
        for h in &self.hierarchies {
            set.extend(fsutil::read_pids(&h.group(id).join("cgroup.procs"))?);
        }
        Ok(set.into_iter().collect())
    }

    /// SIGKILL until the group is empty. With a freezer, each round freezes the group
    /// first so nothing forks between listing and killing.
    fn kill_all(&self, id: &str) -> CgResult<()> {
        let fz = self.group_dir(id, "freezer").filter(|d| d.is_dir());
        wait_or_timeout(EMPTY_TIMEOUT, "killing the processes", id, || {
            let pids = self.all_pids(id)?;
            if pids.is_empty() {
                return Ok(true);
            }
            if let Some(d) = &fz {
                // Best effort: a freeze that does not settle still lets us signal.
                let _ = fsutil::write(&d.join(freezer::STATE), "FROZEN");
            }
            let pids = self.all_pids(id)?;
            let r = signal_pids(&pids, Signal::SIGKILL);
            if let Some(d) = &fz {
                freezer::thaw(d)?;
            }
            r?;
            Ok(false)
        })
    }

    /// `(nr_periods, nr_throttled)` of the group's cpu.stat (tests and diagnostics).
    pub fn cpu_bandwidth(&self, id: &str) -> CgResult<Option<(u64, u64)>> {
        match self.group_dir(id, "cpu") {
            Some(d) => cpu::bandwidth(&d),
            None => Ok(None),
        }
    }
}

impl Isolator for Cgroup1 {
    fn capabilities(&self) -> PluginResult<IsolatorCaps> {
        self.ensure_parents()?;
        let mut notes = self.notes.clone();
        let supported =
            berth_cgroup_common::partition_capabilities(|n| self.support(n), &mut notes);
        let parent = self
            .hierarchies
            .iter()
            .map(|h| h.parent().display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(IsolatorCaps {
            supported,
            parent,
            notes: notes.join("; "),
        })
    }

    fn create(&self, id: &str, limits: &Limits) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.create", id).entered();
        validate_id(id)?;
        self.ensure_parents()?;
        self.check(limits)?;
        if limits.memory_swap.is_some() && limits.memory.is_none() && limits.memory_swap != Some(-1)
        {
            return Err(CgError::InvalidLimit {
                limit: "memory-swap",
                reason: "needs memory too (it is memory + swap)".into(),
            }
            .into());
        }
        let mut created = Vec::new();
        if let Err(e) = self.create_inner(id, limits, &mut created) {
            for d in created.iter().rev() {
                if let Err(re) = fsutil::rmdir_retry(d, RMDIR_TIMEOUT) {
                    tracing::warn!(error = %re, "rollback of a half-created group failed");
                }
            }
            return Err(e.into());
        }
        Ok(())
    }

    fn add_process(&self, id: &str, pid: i32) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.add_process", id, pid).entered();
        self.existing(id)?;
        if pid <= 0 {
            return Err(CgError::InvalidLimit {
                limit: "pid",
                reason: format!("{pid} is not a process id"),
            }
            .into());
        }
        for h in &self.hierarchies {
            fsutil::write(&h.group(id).join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn update(&self, id: &str, limits: &Limits) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.update", id).entered();
        self.existing(id)?;
        self.check(limits)?;
        Ok(self.apply(id, limits)?)
    }

    fn stats(&self, id: &str) -> PluginResult<ResourceStats> {
        self.existing(id)?;
        let mut s = ResourceStats::default();
        for h in &self.hierarchies {
            let dir = h.group(id);
            if h.has("memory") {
                memory::stats(&dir, &mut s)?;
            }
            if h.has("cpuacct") {
                cpuacct::stats(&dir, &mut s)?;
            }
            if h.has("pids") {
                pids::stats(&dir, &mut s)?;
            }
            if h.has("blkio") {
                blkio::stats(&dir, &mut s)?;
            }
            if h.has("freezer") {
                s.frozen = freezer::is_frozen(&dir)?;
            }
        }
        Ok(s)
    }

    fn freeze(&self, id: &str) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.freeze", id).entered();
        self.existing(id)?;
        let dir = self
            .group_dir(id, "freezer")
            .ok_or_else(|| CgError::unsupported("freeze", "no freezer hierarchy on this host"))?;
        Ok(freezer::freeze(id, &dir)?)
    }

    fn thaw(&self, id: &str) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.thaw", id).entered();
        self.existing(id)?;
        let dir = self
            .group_dir(id, "freezer")
            .ok_or_else(|| CgError::unsupported("freeze", "no freezer hierarchy on this host"))?;
        Ok(freezer::thaw(&dir)?)
    }

    fn kill(&self, id: &str, sig: i32) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.kill", id, sig).entered();
        self.existing(id)?;
        let sig = signal(sig)?;
        if sig == Signal::SIGKILL {
            return Ok(self.kill_all(id)?);
        }
        Ok(signal_pids(&self.all_pids(id)?, sig)?)
    }

    fn pids(&self, id: &str) -> PluginResult<Vec<i32>> {
        self.existing(id)?;
        Ok(self.all_pids(id)?)
    }

    fn destroy(&self, id: &str) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.destroy", id).entered();
        validate_id(id)?;
        let any = self.hierarchies.iter().any(|h| h.group(id).is_dir());
        if !any {
            return Ok(());
        }
        // A frozen group would keep SIGKILLed tasks alive: thaw first.
        if let Some(d) = self.group_dir(id, "freezer").filter(|d| d.is_dir()) {
            freezer::thaw(&d)?;
        }
        self.kill_all(id)?;
        for h in &self.hierarchies {
            fsutil::rmdir_retry(&h.group(id), RMDIR_TIMEOUT)?;
        }
        for h in &self.hierarchies {
            fsutil::remove_empty_parents(&h.anchor, &h.rel);
        }
        Ok(())
    }

    fn list(&self) -> PluginResult<Vec<String>> {
        let mut set = BTreeSet::new();
        for h in &self.hierarchies {
            set.extend(fsutil::child_groups(&h.parent())?);
        }
        Ok(set.into_iter().collect())
    }

    fn set_devices(&self, id: &str, rules: &[DeviceRule]) -> PluginResult<()> {
        let _s = tracing::debug_span!("cgroup1.set_devices", id).entered();
        self.existing(id)?;
        self.support("devices")
            .map_err(|r| CgError::unsupported("devices", r))?;
        let dir = self
            .group_dir(id, "devices")
            .ok_or_else(|| CgError::unsupported("devices", "no devices hierarchy on this host"))?;
        Ok(devices::apply(&dir, rules)?)
    }
}

berth_abi::export_plugin! {
    kind: isolator,
    name: "cgroup1",
    description: "cgroup v1 hierarchies (memory, cpu, cpuacct, cpuset, pids, blkio, freezer, devices)",
    constructor: Cgroup1::new,
}
