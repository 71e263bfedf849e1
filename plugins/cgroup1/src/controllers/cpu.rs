//! `cpu`: cfs_period_us / cfs_quota_us (`--cpus`) and shares.

use std::path::Path;

use berth_abi::Limits;
use berth_cgroup_common::{fsutil, CgResult};

pub const QUOTA: &str = "cpu.cfs_quota_us";
pub const PERIOD: &str = "cpu.cfs_period_us";
pub const SHARES: &str = "cpu.shares";

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    if let Some(p) = l.cpu_period {
        fsutil::write(&dir.join(PERIOD), &p.to_string())?;
    }
    if let Some(q) = l.cpu_quota {
        fsutil::write(&dir.join(QUOTA), &q.to_string())?;
    }
    if let Some(s) = l.cpu_shares {
        fsutil::write(&dir.join(SHARES), &s.to_string())?;
    }
    Ok(())
}

/// `(nr_periods, nr_throttled)` of `cpu.stat`: quota periods seen, and how many of them
/// stopped the group.
pub fn bandwidth(dir: &Path) -> CgResult<Option<(u64, u64)>> {
    Ok(fsutil::read_opt(&dir.join("cpu.stat"))?.and_then(|s| {
        Some((
            fsutil::flat_key(&s, "nr_periods")?,
            fsutil::flat_key(&s, "nr_throttled")?,
        ))
    }))
}
