//! `freezer`: freezer.state FROZEN / THAWED.

use std::path::Path;

use berth_cgroup_common::{fsutil, wait_or_timeout, CgResult, FREEZE_TIMEOUT};

pub const STATE: &str = "freezer.state";

pub fn is_frozen(dir: &Path) -> CgResult<bool> {
    Ok(fsutil::read_opt(&dir.join(STATE))?.is_some_and(|s| s.trim() == "FROZEN"))
}

/// Freezes and waits until the kernel reports FROZEN (not FREEZING); on timeout the group
/// is thawed again and `Timeout` returned.
pub fn freeze(id: &str, dir: &Path) -> CgResult<()> {
    let state = dir.join(STATE);
    let r = wait_or_timeout(FREEZE_TIMEOUT, "freezing", id, || {
        // Re-writing FROZEN retries tasks that were busy (e.g. in vfork) on the last pass.
        fsutil::write(&state, "FROZEN")?;
        Ok(fsutil::read(&state)?.trim() == "FROZEN")
    });
    if r.is_err() {
        thaw(dir)?;
    }
    r
}

pub fn thaw(dir: &Path) -> CgResult<()> {
    fsutil::write(&dir.join(STATE), "THAWED")
}
