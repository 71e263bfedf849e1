//! `devices`: the v1 device controller's access list (devices.deny / devices.allow).

use std::path::Path;

use berth_abi::DeviceRule;
use berth_cgroup_common::{fsutil, CgError, CgResult};

pub const ALLOW: &str = "devices.allow";
pub const DENY: &str = "devices.deny";
pub const LIST: &str = "devices.list";

/// Replaces the access list of the group at `dir` with `rules` (a checked list, see
/// [`DeviceRule::check_list`]): writing `a` to the default verdict's file resets the
/// group to that behaviour with no exceptions, then each exception is written to the
/// other file. Only valid on a group without child groups (ours never have any).
pub fn apply(dir: &Path, rules: &[DeviceRule]) -> CgResult<()> {
    let default_allow = DeviceRule::check_list(rules).map_err(|e| CgError::InvalidLimit {
        limit: "devices",
        reason: e.message().to_string(),
    })?;
    let (reset, exceptions) = if default_allow {
        (ALLOW, DENY)
    } else {
        (DENY, ALLOW)
    };
    fsutil::write(&dir.join(reset), "a")?;
    for r in &rules[1..] {
        fsutil::write(&dir.join(exceptions), &r.to_string())?;
    }
    Ok(())
}
