//! `cpuset`: cpus and mems. A new v1 cpuset group starts empty and takes no task until
//! both are set, so new groups inherit their parent's values.

use std::path::Path;

use berth_abi::Limits;
use berth_cgroup_common::{fsutil, CgResult};

pub const CPUS: &str = "cpuset.cpus";
pub const MEMS: &str = "cpuset.mems";

/// Copies `parent`'s cpus/mems into `dir` where `dir`'s are empty.
pub fn inherit(parent: &Path, dir: &Path) -> CgResult<()> {
    for f in [CPUS, MEMS] {
        if fsutil::read(&dir.join(f))?.trim().is_empty() {
            let v = fsutil::read(&parent.join(f))?;
            fsutil::write(&dir.join(f), v.trim())?;
        }
    }
    Ok(())
}

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    if let Some(c) = l.cpuset_cpus.as_ref() {
        fsutil::write(&dir.join(CPUS), c)?;
    }
    if let Some(m) = l.cpuset_mems.as_ref() {
        fsutil::write(&dir.join(MEMS), m)?;
    }
    Ok(())
}
