//! Host detection: cgroup mounts from `/proc/self/mountinfo`, our own groups from
//! `/proc/self/cgroup`.

use std::path::{Path, PathBuf};

use crate::{error::CgResult, fsutil};

/// One cgroup (v1) or cgroup2 mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMount {
    /// Where it is mounted.
    pub mount_point: PathBuf,
    /// The group of the hierarchy shown at `mount_point` (`/` unless namespaced/bind-mounted).
    pub root: String,
    /// `true` for cgroup2.
    pub unified: bool,
    /// v1 controllers (and `name=...`) from the super options; empty for cgroup2.
    pub controllers: Vec<String>,
}

/// One line of `/proc/<pid>/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupMembership {
    pub hierarchy_id: u32,
    /// Controllers of the hierarchy (`cpu,cpuacct` split); empty for the unified one.
    pub controllers: Vec<String>,
    /// The group path inside that hierarchy, starting with `/`.
    pub path: String,
}

const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "net_cls",
    "blkio",
    "perf_event",
    "net_prio",
    "hugetlb",
    "pids",
    "rdma",
    "misc",
];

/// Undoes the octal escapes (`\040` …) of mountinfo fields.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 4 <= b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text into its cgroup mounts (first mount of each hierarchy wins).
pub fn parse_mountinfo(text: &str) -> Vec<CgroupMount> {
    let mut out: Vec<CgroupMount> = Vec::new();
    for line in text.lines() {
        let Some((pre, post)) = line.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        if pre.len() < 5 || post.len() < 3 {
            continue;
        }
        let fstype = post[0];
        let unified = match fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let controllers: Vec<String> = if unified {
            Vec::new()
        } else {
            post[2]
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect()
        };
        let m = CgroupMount {
            mount_point: PathBuf::from(unescape(pre[4])),
            root: unescape(pre[3]),
            unified,
            controllers,
        };
        let dup = out
            .iter()
            .any(|o| o.unified == m.unified && o.controllers == m.controllers);
        if !dup {
            out.push(m);
        }
    }
    out
}

/// Parses `/proc/<pid>/cgroup`.
pub fn parse_proc_cgroup(text: &str) -> Vec<CgroupMembership> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let id = it.next()?.parse().ok()?;
            let ctrls = it.next()?;
            let path = it.next()?.to_string();
            let controllers = ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_string)
                .collect();
            Some(CgroupMembership {
                hierarchy_id: id,
                controllers,
                path,
            })
        })
        .collect()
}

/// Cgroup mounts of this process's mount namespace.
pub fn mounts() -> CgResult<Vec<CgroupMount>> {
    Ok(parse_mountinfo(&fsutil::read(Path::new(
        "/proc/self/mountinfo",
    ))?))
}

/// Groups this process belongs to.
pub fn own_cgroups() -> CgResult<Vec<CgroupMembership>> {
    Ok(parse_proc_cgroup(&fsutil::read(Path::new(
        "/proc/self/cgroup",
    ))?))
}

/// The directory of group `group_path` (as in /proc/self/cgroup) below mount `m`.
/// `None` if the group is outside what the mount shows.
pub fn group_dir(m: &CgroupMount, group_path: &str) -> Option<PathBuf> {
    let root = m.root.trim_end_matches('/');
    let rel = group_path.strip_prefix(root)?;
    if !(rel.is_empty() || rel.starts_with('/')) {
        return None;
    }
    let rel = rel.trim_start_matches('/');
    Some(if rel.is_empty() {
        m.mount_point.clone()
    } else {
        m.mount_point.join(rel)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 23 0:32 / /mnt/mem\\040x rw,relatime - cgroup cgroup rw,memory
";

    #[test]
    fn mountinfo_finds_hierarchies() {
        let ms = parse_mountinfo(HYBRID);
        assert_eq!(ms.len(), 4, "{ms:?}");
        assert_eq!(ms[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(ms[0].mount_point, Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(ms[2].controllers, vec!["name=systemd"]);
        assert!(ms[3].unified);
        assert_eq!(ms[3].mount_point, Path::new("/sys/fs/cgroup/unified"));
    }

    #[test]
    fn unescapes_spaces() {
        assert_eq!(unescape("/mnt/mem\\040x"), "/mnt/mem x");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/trail\\04"), "/trail\\04");
    }

    #[test]
    fn proc_cgroup_lines() {
        let c = parse_proc_cgroup("4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/user.slice\n");
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].controllers, vec!["memory"]);
        assert_eq!(c[0].path, "/process_api/abc");
        assert_eq!(c[1].controllers, vec!["cpu", "cpuacct"]);
        assert!(c[2].controllers.is_empty());
        assert_eq!(c[2].path, "/user.slice");
    }

    #[test]
    fn group_dirs_respect_mount_root() {
        let m = CgroupMount {
            mount_point: "/sys/fs/cgroup/memory".into(),
            root: "/".into(),
            unified: false,
            controllers: vec!["memory".into()],
        };
        assert_eq!(
            group_dir(&m, "/a/b").unwrap(),
            Path::new("/sys/fs/cgroup/memory/a/b")
        );
        assert_eq!(
            group_dir(&m, "/").unwrap(),
            Path::new("/sys/fs/cgroup/memory")
        );
        let ns = CgroupMount {
            root: "/ctr".into(),
            ..m
        };
        assert_eq!(
            group_dir(&ns, "/ctr/x").unwrap(),
            Path::new("/sys/fs/cgroup/memory/x")
        );
        assert_eq!(group_dir(&ns, "/ctrx"), None);
        assert_eq!(group_dir(&ns, "/other"), None);
    }
}
