//! `cpuacct`: total CPU time of the group.

use std::path::Path;

use berth_abi::ResourceStats;
use berth_cgroup_common::{fsutil, CgResult};

pub fn stats(dir: &Path, s: &mut ResourceStats) -> CgResult<()> {
    s.cpu_usage_ns = fsutil::read_u64_opt(&dir.join("cpuacct.usage"))?;
    Ok(())
}
