//! `blkio`: weight (CFQ's `blkio.weight` or BFQ's `blkio.bfq.weight`), throttling per
//! device, bytes read and written.

use std::path::{Path, PathBuf};

use berth_abi::{Limits, ResourceStats};
use berth_cgroup_common::{fsutil, CgResult};

pub const WEIGHT_FILES: &[&str] = &["blkio.weight", "blkio.bfq.weight"];
pub const THROTTLE_READ_BPS: &str = "blkio.throttle.read_bps_device";

/// The weight file this kernel offers in (non-root) group `dir`.
pub fn weight_file(dir: &Path) -> Option<PathBuf> {
    WEIGHT_FILES
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
}

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    if let Some(w) = l.blkio_weight {
        if let Some(f) = weight_file(dir) {
            fsutil::write(&f, &w.to_string())?;
        }
    }
    for t in l.io_throttle.iter() {
        let dev = format!("{}:{}", t.major, t.minor);
        for (file, v) in [
            (THROTTLE_READ_BPS, t.read_bps),
            ("blkio.throttle.write_bps_device", t.write_bps),
            ("blkio.throttle.read_iops_device", t.read_iops),
            ("blkio.throttle.write_iops_device", t.write_iops),
        ] {
            // 0 removes the rule (= no limit), matching the ABI's "0 = no limit".
            fsutil::write(&dir.join(file), &format!("{dev} {v}"))?;
        }
    }
    Ok(())
}

/// Sums `Read`/`Write` of an `io_service_bytes` file (`maj:min Op bytes` lines).
pub fn parse_service_bytes(content: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for l in content.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 {
            let v: u64 = f[2].parse().unwrap_or(0);
            match f[1] {
                "Read" => r = r.saturating_add(v),
                "Write" => w = w.saturating_add(v),
                _ => {}
            }
        }
    }
    (r, w)
}

pub fn stats(dir: &Path, s: &mut ResourceStats) -> CgResult<()> {
    for f in [
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_service_bytes",
    ] {
        if let Some(c) = fsutil::read_opt(&dir.join(f))? {
            let (r, w) = parse_service_bytes(&c);
            s.io_read_bytes = Some(r);
            s.io_write_bytes = Some(w);
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_bytes() {
        let c = "8:0 Read 4096\n8:0 Write 512\n8:0 Sync 0\n8:16 Read 100\nTotal 4708\n";
        assert_eq!(parse_service_bytes(c), (4196, 512));
        assert_eq!(parse_service_bytes("Total 0\n"), (0, 0));
    }
}
