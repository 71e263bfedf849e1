//! `memory`: memory.max, memory.swap.max (Docker's memory-swap minus memory), memory.low
//! (`--memory-reservation`, as runc maps it); current, peak and OOM kills.

use std::path::Path;

use berth_abi::{Limits, ResourceStats};
use berth_cgroup_common::{fsutil, swap_only, CgError, CgResult};

pub const MAX: &str = "memory.max";
pub const SWAP_MAX: &str = "memory.swap.max";
pub const LOW: &str = "memory.low";

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    if let Some(m) = l.memory {
        fsutil::write(&dir.join(MAX), &m.to_string())?;
    }
    if let Some(s) = l.memory_swap {
        let memory = match l.memory {
            Some(m) => m,
            None if s == -1 => 0,
            None => {
                let cur = fsutil::read_u64_or_max(&dir.join(MAX))?;
                let cur = cur.ok_or_else(|| CgError::InvalidLimit {
                    limit: "memory-swap",
                    reason: "needs a memory limit (it is memory + swap)".into(),
                })?;
                i64::try_from(cur).unwrap_or(i64::MAX)
            }
        };
        fsutil::write(&dir.join(SWAP_MAX), &swap_only(memory, s)?)?;
    }
    if let Some(r) = l.memory_reservation {
        fsutil::write(&dir.join(LOW), &r.to_string())?;
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut ResourceStats) -> CgResult<()> {
    s.memory_current = fsutil::read_u64_opt(&dir.join("memory.current"))?;
    s.memory_peak = fsutil::read_u64_opt(&dir.join("memory.peak"))?;
    s.memory_limit = fsutil::read_u64_opt(&dir.join(MAX))?;
    if let Some(ev) = fsutil::read_opt(&dir.join("memory.events"))? {
        s.oom_kills = fsutil::flat_key(&ev, "oom_kill").unwrap_or(0);
    }
    Ok(())
}
