//! berth-cgroup-common: what the `cgroup1` and `cgroup2` isolator plugins share — host
//! detection (mountinfo, /proc/self/cgroup), group ids and the `parent` config, interface
//! file helpers, Docker → kernel unit conversions, and process signalling.
//!
//! It is linked statically into each plugin; plugins still export nothing but the
//! berth-abi contract.

pub mod error;
pub mod fsutil;
pub mod pids;
pub mod procfs;

use std::{
    path::{Path, PathBuf},
    thread,
    time::{Duration, Instant},
};

use berth_abi::Limits;
use nix::{
    errno::Errno,
    sys::signal::{kill, Signal},
    unistd::Pid,
};
use serde::Deserialize;

pub use error::{CgError, CgResult};

/// Name of the default parent group, created below the group berth itself runs in.
pub const DEFAULT_PARENT: &str = "berth";

/// How long `freeze` waits for the kernel to report the group frozen.
pub const FREEZE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `destroy` / `kill(SIGKILL)` wait for the group to empty.
pub const EMPTY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `rmdir` is retried on `EBUSY`.
pub const RMDIR_TIMEOUT: Duration = Duration::from_secs(5);

/// The plugin config table (`[isolator.cgroupN]` in berth.toml), as JSON.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Parent of the per-container groups: relative to berth's own cgroup (default
    /// `berth`) or absolute (`/…`) below the cgroup mount.
    pub parent: Option<String>,
}

impl Config {
    /// Parses the config JSON; an empty string or `null` is the default.
    pub fn parse(json: &str) -> CgResult<Config> {
        let t = json.trim();
        if t.is_empty() || t == "null" {
            return Ok(Config::default());
        }
        serde_json::from_str(t).map_err(|e| {
            CgError::InvalidConfig(format!(
                "{e} (expected e.g. {{\"parent\": \"berth\"}}), got {t}"
            ))
        })
    }

    /// The validated parent.
    pub fn parent(&self) -> CgResult<ParentSpec> {
        ParentSpec::parse(self.parent.as_deref().unwrap_or(DEFAULT_PARENT))
    }
}

/// Where the per-container groups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParentSpec {
    /// Below the group berth runs in (per hierarchy on v1).
    Relative(PathBuf),
    /// Below the root of the cgroup mount.
    Absolute(PathBuf),
}

impl ParentSpec {
    pub fn parse(s: &str) -> CgResult<ParentSpec> {
        let bad = |why: &str| CgError::InvalidConfig(format!("parent {s:?}: {why}"));
        let absolute = s.starts_with('/');
        let mut rel = PathBuf::new();
        for n in s.split('/').filter(|n| !n.is_empty()) {
            if n == "." || n == ".." {
                return Err(bad("must not contain `.` or `..`"));
            }
            validate_name(n).map_err(&bad)?;
            rel.push(n);
        }
        if rel.as_os_str().is_empty() {
            return Err(bad(
                "must name a group (berth never puts containers directly in the root or in its own group)",
            ));
        }
        Ok(if absolute {
            ParentSpec::Absolute(rel)
        } else {
            ParentSpec::Relative(rel)
        })
    }

    /// The parent's directory given the mount and berth's own group directory, plus the
    /// anchor directory that is not ours (never written).
    pub fn resolve(&self, mount_point: &Path, own_dir: &Path) -> (PathBuf, PathBuf) {
        match self {
            ParentSpec::Relative(r) => (own_dir.to_path_buf(), r.clone()),
            ParentSpec::Absolute(r) => (mount_point.to_path_buf(), r.clone()),
        }
    }
}

fn validate_name(n: &str) -> Result<(), &'static str> {
    if n.is_empty() || n.len() > 128 {
        return Err("must be 1 to 128 characters");
    }
    if n.starts_with('.') {
        return Err("must not start with `.`");
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("only ASCII letters, digits, `-`, `_` and `.` are allowed");
    }
    // Names of cgroup interface files look like `<controller>.<file>`: refuse what
    // would shadow them.
    if n.starts_with("cgroup.") {
        return Err("must not start with `cgroup.`");
    }
    Ok(())
}

/// Checks a container (group) id: one path component, no interface-file look-alike.
pub fn validate_id(id: &str) -> CgResult<()> {
    validate_name(id).map_err(|reason| CgError::InvalidId {
        id: id.to_string(),
        reason,
    })
}

/// Names (as in [`berth_abi::IsolatorCaps::supported`]) of the limits `l` asks for.
pub fn requested(l: &Limits) -> Vec<&'static str> {
    let mut v = Vec::new();
    if l.memory.is_some() {
        v.push("memory");
    }
    if l.memory_swap.is_some() {
        v.push("memory-swap");
    }
    if l.memory_reservation.is_some() {
        v.push("memory-reservation");
    }
    if l.cpu_quota.is_some() || l.cpu_period.is_some() {
        v.push("cpus");
    }
    if l.cpu_shares.is_some() {
        v.push("cpu-shares");
    }
    if l.cpuset_cpus.is_some() || l.cpuset_mems.is_some() {
        v.push("cpuset");
    }
    if l.pids.is_some() {
        v.push("pids-limit");
    }
    if l.blkio_weight.is_some() {
        v.push("blkio-weight");
    }
    if !l.io_throttle.is_empty() {
        v.push("device-io");
    }
    v
}

/// Checks value ranges that do not depend on the host.
/// Validates `l` and asks `support` about every limit it sets: a limit this host's
/// controllers can't enforce is an `Unsupported` error naming it and the reason.
pub fn check_limits(
    l: &Limits,
    support: impl Fn(&'static str) -> Result<(), String>,
) -> CgResult<()> {
    validate_limits(l)?;
    for name in requested(l) {
        support(name).map_err(|reason| CgError::unsupported(name, reason))?;
    }
    Ok(())
}

pub fn validate_limits(l: &Limits) -> CgResult<()> {
    let inv = |limit, reason: String| Err(CgError::InvalidLimit { limit, reason });
    if let Some(m) = l.memory {
        if m <= 0 {
            return inv("memory", format!("{m} bytes; must be positive"));
        }
    }
    if let Some(s) = l.memory_swap {
        if s != -1 && s <= 0 {
            return inv("memory-swap", format!("{s}; must be positive or -1"));
        }
        if let Some(m) = l.memory {
            if s != -1 && s < m {
                return inv(
                    "memory-swap",
                    format!("{s} is below memory {m}; it is memory + swap and must be >= memory"),
                );
            }
        }
    }
    if let Some(r) = l.memory_reservation {
        if r < 0 {
            return inv("memory-reservation", format!("{r}; must be >= 0"));
        }
    }
    if let Some(q) = l.cpu_quota {
        if q != -1 && q < 1000 {
            return inv("cpus", format!("quota {q} µs; must be >= 1000 or -1"));
        }
    }
    if let Some(p) = l.cpu_period {
        if !(1000..=1_000_000).contains(&p) {
            return inv("cpus", format!("period {p} µs; must be 1000..=1000000"));
        }
    }
    if let Some(s) = l.cpu_shares {
        if !(2..=262_144).contains(&s) {
            return inv("cpu-shares", format!("{s}; must be 2..=262144"));
        }
    }
    if let Some(w) = l.blkio_weight {
        if !(10..=1000).contains(&w) {
            return inv("blkio-weight", format!("{w}; must be 10..=1000"));
        }
    }
    for (what, v) in [
        ("cpuset-cpus", l.cpuset_cpus.as_ref()),
        ("cpuset-mems", l.cpuset_mems.as_ref()),
    ] {
        if let Some(v) = v {
            if v.is_empty()
                || !v
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b',' || b == b'-')
            {
                return inv(
                    "cpuset",
                    format!("{what} {v:?}; expected a list like 0-2,4"),
                );
            }
        }
    }
    Ok(())
}

/// `--cpu-shares` → cgroup v2 `cpu.weight`, runc's conversion: 2..262144 → 1..10000.
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.saturating_sub(2) * 9999) / 262_142
}

/// `--blkio-weight` (10..1000) → cgroup v2 `io.weight` (1..10000), runc's conversion.
pub fn blkio_to_io_weight(w: u16) -> u64 {
    if w == 0 {
        return 0;
    }
    1 + (u64::from(w).saturating_sub(10)) * 9999 / 990
}

/// Docker's `--memory-swap` (memory + swap) → v2 `memory.swap.max` (swap alone).
pub fn swap_only(memory: i64, memory_swap: i64) -> CgResult<String> {
    if memory_swap == -1 {
        return Ok("max".into());
    }
    if memory_swap < memory {
        return Err(CgError::InvalidLimit {
            limit: "memory-swap",
            reason: format!("{memory_swap} is below memory {memory}"),
        });
    }
    Ok((memory_swap - memory).to_string())
}

/// A `pids.max` value: `max` for -1 / 0 (Docker: unlimited).
pub fn pids_value(p: i64) -> String {
    if p <= 0 {
        "max".into()
    } else {
        p.to_string()
    }
}

/// The signal number as a `Signal`.
pub fn signal(sig: i32) -> CgResult<Signal> {
    Signal::try_from(sig).map_err(|_| CgError::InvalidSignal(sig))
}

/// Sends `sig` to each pid; processes that already exited are skipped.
pub fn signal_pids(pids: &[i32], sig: Signal) -> CgResult<()> {
    for &p in pids {
        tracing::debug!(pid = p, signal = %sig, "kill");
        match kill(Pid::from_raw(p), sig) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(e) => {
                return Err(CgError::io(
                    "signal process",
                    format!("/proc/{p}"),
                    std::io::Error::from(e),
                ))
            }
        }
    }
    Ok(())
}

/// Polls `cond` with a growing pause until it holds (`Ok(true)`) or `timeout` passes
/// (`Ok(false)`).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> CgResult<bool>) -> CgResult<bool> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_micros(200);
    loop {
        if cond()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// [`wait_until`] that turns running out of time into [`CgError::Timeout`] for `what` on
/// group `id`.
pub fn wait_or_timeout(
    timeout: Duration,
    what: &'static str,
    id: &str,
    cond: impl FnMut() -> CgResult<bool>,
) -> CgResult<()> {
    if wait_until(timeout, cond)? {
        Ok(())
    } else {
        Err(CgError::Timeout {
            what,
            id: id.to_string(),
            secs: timeout.as_secs(),
        })
    }
}

/// `true` for the `UNLIMITED` value of a v1 memory counter (PAGE_COUNTER_MAX × page size).
pub fn v1_unlimited(v: u64) -> bool {
    v >= (1u64 << 62)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_abi::IoThrottle;

    #[test]
    fn runc_conversions() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(500), 4950);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn swap_is_memory_plus_swap() {
        assert_eq!(swap_only(100, 300).unwrap(), "200");
        assert_eq!(swap_only(100, 100).unwrap(), "0");
        assert_eq!(swap_only(100, -1).unwrap(), "max");
        assert!(swap_only(100, 50).is_err());
    }

    #[test]
    fn ids() {
        validate_id("abc-123_x.y").unwrap();
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "cgroup.procs",
            ".hidden",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn config_and_parent() {
        assert_eq!(
            Config::parse("").unwrap().parent().unwrap(),
            ParentSpec::Relative("berth".into())
        );
        let c = Config::parse(r#"{"parent": "/machine/bt"}"#).unwrap();
        assert_eq!(
            c.parent().unwrap(),
            ParentSpec::Absolute("machine/bt".into())
        );
        assert!(Config::parse(r#"{"parnet": "x"}"#).is_err());
        for bad in ["/", "", "../x", "a/./b", "a/cgroup.procs"] {
            assert!(ParentSpec::parse(bad).is_err(), "{bad:?} accepted");
        }
        let (anchor, rel) =
            ParentSpec::Relative("berth".into()).resolve(Path::new("/cg"), Path::new("/cg/own"));
        assert_eq!(
            (anchor.as_path(), rel.as_path()),
            (Path::new("/cg/own"), Path::new("berth"))
        );
    }

    #[test]
    fn requested_names_and_validation() {
        let mut l = Limits::default();
        assert!(requested(&l).is_empty());
        l.memory = Some(1 << 20);
        l.cpu_period = Some(100_000);
        l.io_throttle.push(IoThrottle::default());
        assert_eq!(requested(&l), vec!["memory", "cpus", "device-io"]);
        validate_limits(&l).unwrap();
        l.memory_swap = Some(1);
        assert!(validate_limits(&l).is_err());
        l.memory_swap = Some(-1);
        validate_limits(&l).unwrap();
        l.cpu_shares = Some(1);
        assert!(validate_limits(&l).is_err());
        l.cpu_shares = Some(1024);
        l.cpuset_cpus = Some("0-1;".into());
        assert!(validate_limits(&l).is_err());
    }

    #[test]
    fn pids_values() {
        assert_eq!(pids_value(-1), "max");
        assert_eq!(pids_value(0), "max");
        assert_eq!(pids_value(5), "5");
    }
}

#[cfg(feature = "testing")]
pub mod testing;

/// Every limit and feature an isolator reports in `capabilities()`, with the names the CLI
/// flags use (`--pids-limit` → `pids-limit`).
pub const CAPABILITY_NAMES: &[&str] = &[
    "memory",
    "memory-swap",
    "memory-reservation",
    "cpus",
    "cpu-shares",
    "cpuset",
    "pids-limit",
    "blkio-weight",
    "device-io",
    "devices",
    "freeze",
    "kill",
];

/// Splits [`CAPABILITY_NAMES`] by `support` into the enforceable ones and notes saying why
/// the others are not (appended to `notes`).
pub fn partition_capabilities(
    support: impl Fn(&str) -> Result<(), String>,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut supported = Vec::new();
    for name in CAPABILITY_NAMES {
        match support(name) {
            Ok(()) => supported.push(name.to_string()),
            Err(why) => notes.push(format!("{name}: {why}")),
        }
    }
    supported
}
