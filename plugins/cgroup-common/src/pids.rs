//! The `pids` controller: `pids.max` and `pids.current`, the same files in v1 and v2.

use std::path::Path;

use crate::{fsutil, pids_value, CgResult};
use berth_abi::{Limits, ResourceStats};

pub const MAX: &str = "pids.max";

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    if let Some(p) = l.pids {
        fsutil::write(&dir.join(MAX), &pids_value(p))?;
    }
    Ok(())
}

pub fn stats(dir: &Path, s: &mut ResourceStats) -> CgResult<()> {
    s.pids_current = fsutil::read_u64_opt(&dir.join("pids.current"))?;
    s.pids_limit = fsutil::read_u64_opt(&dir.join(MAX))?;
    Ok(())
}
