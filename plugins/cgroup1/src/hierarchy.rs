//! The v1 hierarchies berth uses, found from `/proc/self/mountinfo` and `/proc/self/cgroup`.

use std::path::{Path, PathBuf};

use berth_cgroup_common::{
    fsutil,
    procfs::{self, CgroupMembership, CgroupMount},
    CgResult, ParentSpec,
};

/// v1 controllers this plugin drives.
pub const WANTED: &[&str] = &[
    "memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices",
];

/// One mounted v1 hierarchy (possibly several co-mounted controllers, e.g. `cpu,cpuacct`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// Controllers bound to this hierarchy (only the ones in [`WANTED`]).
    pub controllers: Vec<String>,
    pub mount_point: PathBuf,
    /// The group below which `rel` is created; not ours, never written.
    pub anchor: PathBuf,
    /// The parent path below `anchor` (ours).
    pub rel: PathBuf,
}

impl Hierarchy {
    pub fn has(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }

    /// The parent group directory.
    pub fn parent(&self) -> PathBuf {
        self.anchor.join(&self.rel)
    }

    /// The directory of group `id`.
    pub fn group(&self, id: &str) -> PathBuf {
        self.parent().join(id)
    }
}

/// Picks the hierarchies of [`WANTED`] controllers from the host's mounts and our own
/// membership. Returns the hierarchies and notes about controllers that are missing.
pub fn discover(
    mounts: &[CgroupMount],
    own: &[CgroupMembership],
    parent: &ParentSpec,
) -> (Vec<Hierarchy>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for m in mounts.iter().filter(|m| !m.unified) {
        let wanted: Vec<String> = m
            .controllers
            .iter()
            .filter(|c| WANTED.contains(&c.as_str()))
            .cloned()
            .collect();
        if wanted.is_empty() {
            continue;
        }
        let mut mine = m.controllers.clone();
        mine.sort();
        let membership = own.iter().find(|o| {
            let mut c = o.controllers.clone();
            c.sort();
            c == mine
        });
        let Some(membership) = membership else {
            notes.push(format!(
                "{}: mounted at {} but not listed in /proc/self/cgroup",
                wanted.join(","),
                m.mount_point.display()
            ));
            continue;
        };
        let Some(own_dir) = procfs::group_dir(m, &membership.path) else {
            notes.push(format!(
                "{}: berth's group {} is outside the mount at {}",
                wanted.join(","),
                membership.path,
                m.mount_point.display()
            ));
            continue;
        };
        let (anchor, rel) = parent.resolve(&m.mount_point, &own_dir);
        out.push(Hierarchy {
            controllers: wanted,
            mount_point: m.mount_point.clone(),
            anchor,
            rel,
        });
    }
    for c in WANTED {
        if !out.iter().any(|h| h.has(c)) && !notes.iter().any(|n| n.starts_with(c)) {
            notes.push(format!("{c}: no cgroup v1 hierarchy mounted"));
        }
    }
    (out, notes)
}

/// Creates the parent group in `h` (only below the anchor), seeding cpuset values
/// into new cpuset groups.
pub fn ensure_parent(h: &Hierarchy) -> CgResult<()> {
    let created = fsutil::mkdir_below(&h.anchor, &h.rel)?;
    if h.has("cpuset") {
        // Walk the whole parent path (also dirs left half-done by a crash): an empty
        // cpuset group cannot take tasks or children with tasks.
        let mut cur = h.anchor.clone();
        for comp in h.rel.components() {
            let up = cur.clone();
            cur.push(comp);
            crate::controllers::cpuset::inherit(&up, &cur)?;
        }
    }
    tracing::debug!(created = created.len(), parent = %h.parent().display(), "cgroup1 parent ready");
    Ok(())
}

/// Whether `p` exists as a directory.
pub fn exists(p: &Path) -> bool {
    p.is_dir()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovers_comounted_and_split_hierarchies() {
        let mounts = procfs::parse_mountinfo(
            "32 31 0:29 / /cg/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
             35 31 0:32 / /cg/memory rw - cgroup cgroup rw,memory\n\
             36 31 0:33 / /cg/devices rw - cgroup cgroup rw,devices\n\
             41 31 0:38 / /cg/unified rw - cgroup2 cgroup2 rw\n",
        );
        let own = procfs::parse_proc_cgroup(
            "4:memory:/process_api/abc\n2:cpuacct,cpu:/\n5:devices:/\n0::/\n",
        );
        let (hs, notes) = discover(&mounts, &own, &ParentSpec::Relative("berth".into()));
        assert_eq!(hs.len(), 3, "{hs:?}");
        assert_eq!(hs[0].controllers, vec!["cpu", "cpuacct"]);
        assert_eq!(hs[2].group("c1"), Path::new("/cg/devices/berth/c1"));
        assert_eq!(hs[0].group("c1"), Path::new("/cg/cpu,cpuacct/berth/c1"));
        assert_eq!(
            hs[1].group("c1"),
            Path::new("/cg/memory/process_api/abc/berth/c1")
        );
        assert_eq!(hs[1].anchor, Path::new("/cg/memory/process_api/abc"));
        for missing in ["cpuset", "pids", "blkio", "freezer"] {
            assert!(notes.iter().any(|n| n.starts_with(missing)), "{notes:?}");
        }
        let (hs, _) = discover(&mounts, &own, &ParentSpec::Absolute("bt/x".into()));
        assert_eq!(hs[1].group("c1"), Path::new("/cg/memory/bt/x/c1"));
    }
}
