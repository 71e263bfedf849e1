//! Facts about the host that choose drivers and appear in `berth info`.

use std::path::{Path, PathBuf};

/// How cgroups are mounted here (decided from filesystem magic numbers, as youki does).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupSetup {
    /// Only cgroup v2 at /sys/fs/cgroup.
    Unified,
    /// v1 controllers, plus a v2 mount (usually /sys/fs/cgroup/unified) without controllers.
    Hybrid { unified: PathBuf },
    /// Only v1.
    Legacy,
    /// No cgroup filesystem found.
    None,
}

impl CgroupSetup {
    pub fn as_str(&self) -> &'static str {
        match self {
            CgroupSetup::Unified => "unified (v2)",
            CgroupSetup::Hybrid { .. } => "hybrid (v1 controllers + v2)",
            CgroupSetup::Legacy => "legacy (v1)",
            CgroupSetup::None => "none",
        }
    }

    /// The cgroup2 mount point, if any.
    pub fn v2_mount(&self) -> Option<PathBuf> {
        match self {
            CgroupSetup::Unified => Some(PathBuf::from("/sys/fs/cgroup")),
            CgroupSetup::Hybrid { unified } => Some(unified.clone()),
            _ => None,
        }
    }
}

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const TMPFS_MAGIC: i64 = 0x0102_1994;

fn fs_magic(path: &Path) -> Option<i64> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    let mut st: libc::statfs = unsafe_zeroed_statfs();
    // SAFETY: `c` is a valid NUL-terminated path and `st` a valid out-pointer.
    let r = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    (r == 0).then_some(st.f_type)
}

fn unsafe_zeroed_statfs() -> libc::statfs {
    // SAFETY: `statfs` is a plain C struct of integers; all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

/// Detects the cgroup layout of this host.
pub fn cgroup_setup() -> CgroupSetup {
    let root = Path::new("/sys/fs/cgroup");
    match fs_magic(root) {
        Some(CGROUP2_SUPER_MAGIC) => CgroupSetup::Unified,
        Some(TMPFS_MAGIC) => {
            let unified = root.join("unified");
            if fs_magic(&unified) == Some(CGROUP2_SUPER_MAGIC) {
                CgroupSetup::Hybrid { unified }
            } else {
                CgroupSetup::Legacy
            }
        }
        _ => CgroupSetup::None,
    }
}

/// Controllers available to groups created below berth's own cgroup on the v2 mount.
pub fn v2_controllers(setup: &CgroupSetup) -> Vec<String> {
    let Some(mount) = setup.v2_mount() else {
        return Vec::new();
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
        })
        .unwrap_or_else(|| "/".to_string());
    let dir = mount.join(own.trim_start_matches('/'));
    std::fs::read_to_string(dir.join("cgroup.controllers"))
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// The isolator `auto` picks: cgroup2 when the v2 hierarchy has the resource controllers
/// berth's limits need, otherwise cgroup1.
pub fn auto_isolator(setup: &CgroupSetup) -> &'static str {
    let ctrl = v2_controllers(setup);
    let has = |c: &str| ctrl.iter().any(|x| x == c);
    if has("memory") && has("pids") && has("cpu") {
        "cgroup2"
    } else {
        "cgroup1"
    }
}

/// The x86-64 micro-architecture level of this CPU (`v1`…`v4`, the psABI levels), which
/// Docker shows as the host platform's variant (`linux/amd64/v3`).
#[cfg(target_arch = "x86_64")]
fn amd64_level() -> &'static str {
    use std::arch::is_x86_feature_detected as has;
    let v2 = has!("cmpxchg16b")
        && has!("popcnt")
        && has!("sse3")
        && has!("sse4.1")
        && has!("sse4.2")
        && has!("ssse3");
    let v3 = v2
        && has!("avx")
        && has!("avx2")
        && has!("bmi1")
        && has!("bmi2")
        && has!("f16c")
        && has!("fma")
        && has!("lzcnt")
        && has!("movbe")
        && has!("xsave");
    let v4 = v3
        && has!("avx512f")
        && has!("avx512bw")
        && has!("avx512cd")
        && has!("avx512dq")
        && has!("avx512vl");
    match (v2, v3, v4) {
        (_, _, true) => "v4",
        (_, true, _) => "v3",
        (true, _, _) => "v2",
        _ => "v1",
    }
}

/// This host's platform as Docker prints it: `linux/amd64/v3`, `linux/arm64/v8`.
pub fn platform_text() -> String {
    let host = berth_distribution::Platform::host();
    #[cfg(target_arch = "x86_64")]
    if host.variant.is_none() {
        return format!("{host}/{}", amd64_level());
    }
    host.to_string()
}

/// `uname -r`.
pub fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_platform_names_os_and_arch() {
        let p = platform_text();
        assert!(p.starts_with("linux/"), "{p}");
        #[cfg(target_arch = "x86_64")]
        assert!(p.starts_with("linux/amd64/v"), "{p}");
    }

    #[test]
    fn detects_something_consistent() {
        let s = cgroup_setup();
        // On any Linux test machine there is a cgroup filesystem.
        assert_ne!(s, CgroupSetup::None);
        let pick = auto_isolator(&s);
        assert!(pick == "cgroup1" || pick == "cgroup2");
        if s == CgroupSetup::Legacy {
            assert_eq!(pick, "cgroup1");
        }
    }
}
