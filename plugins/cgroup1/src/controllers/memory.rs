//! `memory`: limit_in_bytes, memsw.limit_in_bytes (memory + swap), soft_limit_in_bytes;
//! usage, max usage and the OOM-kill count.

use std::path::Path;

use berth_abi::{Limits, ResourceStats};
use berth_cgroup_common::{fsutil, v1_unlimited, CgError, CgResult};

pub const LIMIT: &str = "memory.limit_in_bytes";
pub const MEMSW: &str = "memory.memsw.limit_in_bytes";
pub const SOFT: &str = "memory.soft_limit_in_bytes";

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    let limit = dir.join(LIMIT);
    let memsw = dir.join(MEMSW);
    match (l.memory, l.memory_swap) {
        (Some(m), Some(s)) => {
            // memsw must stay >= limit after every single write: order the two writes.
            let cur_limit = fsutil::read_u64_or_max(&limit)?.unwrap_or(u64::MAX);
            let raise_memsw_first = s == -1 || u64::try_from(s).is_ok_and(|s| s >= cur_limit);
            if raise_memsw_first {
                fsutil::write(&memsw, &s.to_string())?;
                fsutil::write(&limit, &m.to_string())?;
            } else {
                fsutil::write(&limit, &m.to_string())?;
                fsutil::write(&memsw, &s.to_string())?;
            }
        }
        (Some(m), None) => fsutil::write(&limit, &m.to_string()).map_err(|e| match e {
            CgError::Write { source, .. } if source.raw_os_error() == Some(libc::EINVAL) => {
                CgError::InvalidLimit {
                    limit: "memory",
                    reason: format!(
                        "{m} is above the group's memory+swap limit ({}); raise memory-swap too",
                        dir.join(MEMSW).display()
                    ),
                }
            }
            e => e,
        })?,
        (None, Some(s)) => fsutil::write(&memsw, &s.to_string())?,
        (None, None) => {}
    }
    if let Some(r) = l.memory_reservation {
        fsutil::write(&dir.join(SOFT), &r.to_string())?;
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut ResourceStats) -> CgResult<()> {
    s.memory_current = fsutil::read_u64_opt(&dir.join("memory.usage_in_bytes"))?;
    s.memory_peak = fsutil::read_u64_opt(&dir.join("memory.max_usage_in_bytes"))?;
    s.memory_limit = fsutil::read_u64_opt(&dir.join(LIMIT))?.filter(|v| !v1_unlimited(*v));
    if let Some(oc) = fsutil::read_opt(&dir.join("memory.oom_control"))? {
        s.oom_kills = fsutil::flat_key(&oc, "oom_kill").unwrap_or(0);
    }
    Ok(())
}
