//! `cpu`: cpu.max (`quota period`, `--cpus`) and cpu.weight (from `--cpu-shares` with runc's
//! conversion).

use std::path::Path;

use berth_abi::Limits;
use berth_cgroup_common::{fsutil, shares_to_weight, CgError, CgResult};

pub const MAX: &str = "cpu.max";
pub const WEIGHT: &str = "cpu.weight";
const DEFAULT_PERIOD: u64 = 100_000;

/// Reads `cpu.max` as (quota or `None` for max, period).
fn current(dir: &Path) -> CgResult<(Option<i64>, u64)> {
    let p = dir.join(MAX);
    let s = fsutil::read(&p)?;
    let mut it = s.split_whitespace();
    let bad = || CgError::Parse {
        path: p.clone(),
        content: s.trim().to_string(),
    };
    let q = match it.next().ok_or_else(bad)? {
        "max" => None,
        n => Some(n.parse().map_err(|_| bad())?),
    };
    let period = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
    Ok((q, period))
}

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    let (q, p) = (l.cpu_quota, l.cpu_period);
    if q.is_some() || p.is_some() {
        let (cur_q, cur_p) = current(dir).unwrap_or((None, DEFAULT_PERIOD));
        let quota = match q.or(cur_q) {
            Some(q) if q > 0 => q.to_string(),
            _ => "max".to_string(),
        };
        fsutil::write(&dir.join(MAX), &format!("{quota} {}", p.unwrap_or(cur_p)))?;
    }
    if let Some(s) = l.cpu_shares {
        fsutil::write(&dir.join(WEIGHT), &shares_to_weight(s).to_string())?;
    }
    Ok(())
}

/// `(nr_periods, nr_throttled)` of `cpu.stat` (present with the cpu controller).
pub fn bandwidth(dir: &Path) -> CgResult<Option<(u64, u64)>> {
    Ok(fsutil::read_opt(&dir.join("cpu.stat"))?.and_then(|s| {
        Some((
            fsutil::flat_key(&s, "nr_periods")?,
            fsutil::flat_key(&s, "nr_throttled")?,
        ))
    }))
}
