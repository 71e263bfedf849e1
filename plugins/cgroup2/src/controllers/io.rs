//! `io`: weight (`io.bfq.weight` takes Docker's 10..1000 as is; `io.weight` gets runc's
//! 1..10000 conversion), io.max per device, bytes from io.stat.

use std::path::{Path, PathBuf};

use berth_abi::{IoThrottle, Limits, ResourceStats};
use berth_cgroup_common::{blkio_to_io_weight, fsutil, CgResult};

pub const MAX: &str = "io.max";

/// The weight file of group `dir`, BFQ's first (as runc does).
pub fn weight_file(dir: &Path) -> Option<PathBuf> {
    ["io.bfq.weight", "io.weight"]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.exists())
}

/// One `io.max` line; 0 = `max` (no limit).
pub fn max_line(t: &IoThrottle) -> String {
    let v = |n: u64| {
        if n == 0 {
            "max".to_string()
        } else {
            n.to_string()
        }
    };
    format!(
        "{}:{} rbps={} wbps={} riops={} wiops={}",
        t.major,
        t.minor,
        v(t.read_bps),
        v(t.write_bps),
        v(t.read_iops),
        v(t.write_iops)
    )
}

pub fn apply(dir: &Path, l: &Limits) -> CgResult<()> {
    if let Some(w) = l.blkio_weight {
        if let Some(f) = weight_file(dir) {
            let v = if f.ends_with("io.bfq.weight") {
                w.to_string()
            } else {
                format!("default {}", blkio_to_io_weight(w))
            };
            fsutil::write(&f, &v)?;
        }
    }
    for t in l.io_throttle.iter() {
        fsutil::write(&dir.join(MAX), &max_line(t))?;
    }
    Ok(())
}

/// Sums rbytes / wbytes over the devices of an io.stat file.
pub fn parse_stat(content: &str) -> (u64, u64) {
    let (mut r, mut w) = (0u64, 0u64);
    for kv in content.split_whitespace() {
        if let Some((k, v)) = kv.split_once('=') {
            let v: u64 = v.parse().unwrap_or(0);
            match k {
                "rbytes" => r = r.saturating_add(v),
                "wbytes" => w = w.saturating_add(v),
                _ => {}
            }
        }
    }
    (r, w)
}

pub fn stats(dir: &Path, s: &mut ResourceStats) -> CgResult<()> {
    if let Some(c) = fsutil::read_opt(&dir.join("io.stat"))? {
        let (r, w) = parse_stat(&c);
        s.io_read_bytes = Some(r);
        s.io_write_bytes = Some(w);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_lines() {
        let t = IoThrottle {
            major: 8,
            minor: 0,
            read_bps: 1048576,
            write_bps: 0,
            read_iops: 0,
            write_iops: 100,
        };
        assert_eq!(
            max_line(&t),
            "8:0 rbps=1048576 wbps=max riops=max wiops=100"
        );
        let stat =
            "8:0 rbytes=4096 wbytes=512 rios=1 wios=1 dbytes=0 dios=0\n8:16 rbytes=4 wbytes=0\n";
        assert_eq!(parse_stat(stat), (4100, 512));
    }
}
