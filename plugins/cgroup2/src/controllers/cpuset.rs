//! `cpuset`: cpuset.cpus / cpuset.mems (empty = inherit, unlike v1).

use std::path::Path;

use berth_abi::Limits;
use berth_cgroup_common::{fsutil, CgResult};

pub const CPUS: &str = "cpuset.cpus";

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    if let Some(c) = l.cpuset_cpus.as_ref() {
        fsutil::write(&dir.join(CPUS), c)?;
    }
    if let Some(m) = l.cpuset_mems.as_ref() {
        fsutil::write(&dir.join("cpuset.mems"), m)?;
    }
    Ok(())
}
