//! What the cgroup v2 core offers without any controller: cgroup.procs, cgroup.freeze,
//! cgroup.kill, cgroup.events, cgroup.subtree_control and cpu.stat's usage_usec.

use std::path::Path;

use berth_abi::ResourceStats;
use berth_cgroup_common::{fsutil, wait_or_timeout, CgResult, FREEZE_TIMEOUT};

pub const FREEZE: &str = "cgroup.freeze";
pub const KILL: &str = "cgroup.kill";
pub const EVENTS: &str = "cgroup.events";
pub const PROCS: &str = "cgroup.procs";
pub const CONTROLLERS: &str = "cgroup.controllers";
pub const SUBTREE: &str = "cgroup.subtree_control";

/// Controller names listed in a space-separated file (`cgroup.controllers`, …).
pub fn list(dir: &Path, file: &str) -> CgResult<Vec<String>> {
    Ok(fsutil::read_opt(&dir.join(file))?
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect())
}

pub fn is_frozen(dir: &Path) -> CgResult<bool> {
    Ok(
        fsutil::read_opt(&dir.join(EVENTS))?.and_then(|e| fsutil::flat_key(&e, "frozen"))
            == Some(1),
    )
}

/// Freezes and waits for `frozen 1` in cgroup.events; thaws again on timeout.
pub fn freeze(id: &str, dir: &Path) -> CgResult<()> {
    fsutil::write(&dir.join(FREEZE), "1")?;
    let r = wait_or_timeout(FREEZE_TIMEOUT, "freezing", id, || is_frozen(dir));
    if r.is_err() {
        thaw(dir)?;
    }
    r
}

pub fn thaw(dir: &Path) -> CgResult<()> {
    fsutil::write(&dir.join(FREEZE), "0")
}

pub fn stats(dir: &Path, s: &mut ResourceStats) -> CgResult<()> {
    if let Some(c) = fsutil::read_opt(&dir.join("cpu.stat"))? {
        s.cpu_usage_ns = fsutil::flat_key(&c, "usage_usec").map(|u| u.saturating_mul(1000));
    }
    s.frozen = is_frozen(dir)?;
    Ok(())
}
