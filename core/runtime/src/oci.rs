//! The OCI runtime config (`config.json`) equivalent of a [`ContainerSpec`], for `inspect`
//! and for runc-compatible tooling.

use std::{collections::HashSet, path::PathBuf};

use oci_spec::runtime::{
    Capability as OciCap, Linux, LinuxCapabilities, LinuxDevice, LinuxDeviceCgroup,
    LinuxDeviceType, LinuxNamespace, LinuxNamespaceType, LinuxResources, Mount, Process, Root,
    Spec, User,
};
use serde::Deserialize;

use crate::{
    caps,
    plan::{build_env, tmpfs_options, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS},
    spec::MountSpec,
    user, ContainerSpec, DeviceType, NetworkMode,
};

fn oci_caps(mask: u64) -> HashSet<OciCap> {
    caps::mask_names(mask)
        .iter()
        .filter_map(|n| {
            OciCap::deserialize(
                serde::de::value::StrDeserializer::<serde::de::value::Error>::new(n),
            )
            .ok()
        })
        .collect()
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    let mut m = Mount::default();
    m.set_destination(PathBuf::from(dest));
    m.set_typ(Some(typ.to_string()));
    m.set_source(Some(PathBuf::from(source)));
    m.set_options(Some(options.iter().map(|s| s.to_string()).collect()));
    m
}

fn tmpfs_flag_names(flags: libc::c_ulong) -> Vec<&'static str> {
    let mut v = Vec::new();
    for (f, n) in [
        (libc::MS_RDONLY, "ro"),
        (libc::MS_NOSUID, "nosuid"),
        (libc::MS_NODEV, "nodev"),
        (libc::MS_NOEXEC, "noexec"),
        (libc::MS_NOATIME, "noatime"),
        (libc::MS_STRICTATIME, "strictatime"),
    ] {
        if flags & f != 0 {
            v.push(n);
        }
    }
    v
}

/// Builds the OCI runtime spec describing what [`crate::create`] does for `spec`.
///
/// Never fails: when the rootfs cannot be read (user lookup) or a capability name is
/// invalid, the affected fields fall back to root / Docker's default set (`create` itself
/// reports those errors).
pub fn to_oci_config(spec: &ContainerSpec) -> Spec {
    let who = user::resolve(&spec.rootfs, &spec.process.user).ok();
    let mut u = User::default();
    let home = match &who {
        Some(w) => {
            u.set_uid(w.uid);
            u.set_gid(w.gid);
            u.set_additional_gids(Some(w.groups.clone()));
            w.home.clone()
        }
        None => "/".to_string(),
    };
    if !spec.process.user.is_empty() {
        u.set_username(Some(spec.process.user.clone()));
    }
    let mask = caps::capability_mask(spec.privileged, &spec.cap_add, &spec.cap_drop)
        .or_else(|_| caps::capability_mask(false, &[], &[]))
        .unwrap_or(0);
    let set = oci_caps(mask);
    let mut c = LinuxCapabilities::default();
    c.set_bounding(Some(set.clone()));
    c.set_effective(Some(set.clone()));
    c.set_permitted(Some(set));
    c.set_inheritable(Some(HashSet::new()));
    c.set_ambient(Some(HashSet::new()));

    let mut p = Process::default();
    p.set_terminal(Some(spec.process.tty));
    p.set_user(u);
    p.set_args(Some(spec.process.args.clone()));
    p.set_env(Some(build_env(&spec.process, Some(&spec.hostname), &home)));
    p.set_cwd(PathBuf::from(if spec.process.cwd.is_empty() {
        "/"
    } else {
        &spec.process.cwd
    }));
    p.set_capabilities(Some(c));
    p.set_no_new_privileges(Some(spec.no_new_privileges));
    p.set_rlimits(None);

    let mut root = Root::default();
    root.set_path(spec.rootfs.clone());
    root.set_readonly(Some(spec.readonly_rootfs));

    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
    ];
    let sys_ro = if spec.privileged { "rw" } else { "ro" };
    mounts.push(match spec.network {
        NetworkMode::Host => mount("/sys", "bind", "/sys", &["bind", sys_ro]),
        _ => mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_ro],
        ),
    });
    for m in &spec.mounts {
        mounts.push(match m {
            MountSpec::Bind {
                source,
                destination,
                read_only,
            } => mount(
                destination,
                "bind",
                &source.to_string_lossy(),
                &["rbind", if *read_only { "ro" } else { "rw" }],
            ),
            MountSpec::Tmpfs {
                destination,
                options,
            } => {
                let (flags, data) = tmpfs_options(options).unwrap_or((0, options.clone()));
                let mut o: Vec<&str> = tmpfs_flag_names(flags);
                o.extend(data.split(',').filter(|s| !s.is_empty()));
                mount(destination, "tmpfs", "tmpfs", &o)
            }
            MountSpec::Other {
                source,
                destination,
                fstype,
                options,
            } => {
                let o: Vec<&str> = options.iter().map(String::as_str).collect();
                mount(destination, fstype, source, &o)
            }
        });
    }
    for (host, dest) in &spec.etc_files {
        mounts.push(mount(
            dest,
            "bind",
            &host.to_string_lossy(),
            &["bind", "rw"],
        ));
    }

    let mut ns = Vec::new();
    let mut push_ns = |t: LinuxNamespaceType, path: Option<PathBuf>| {
        let mut n = LinuxNamespace::default();
        n.set_typ(t);
        n.set_path(path);
        ns.push(n);
    };
    push_ns(LinuxNamespaceType::Pid, None);
    push_ns(LinuxNamespaceType::Mount, None);
    push_ns(LinuxNamespaceType::Uts, None);
    push_ns(LinuxNamespaceType::Ipc, None);
    push_ns(LinuxNamespaceType::Cgroup, None);
    match &spec.network {
        NetworkMode::New => push_ns(LinuxNamespaceType::Network, None),
        NetworkMode::Join(p) => push_ns(LinuxNamespaceType::Network, Some(p.clone())),
        NetworkMode::Host => {}
    }
    let list = |v: &Option<Vec<String>>, d: &[&str]| -> Vec<String> {
        if spec.privileged {
            return Vec::new();
        }
        v.clone()
            .unwrap_or_else(|| d.iter().map(|s| s.to_string()).collect())
    };
    let mut linux = Linux::default();
    linux.set_namespaces(Some(ns));
    linux.set_masked_paths(Some(list(&spec.masked_paths, DEFAULT_MASKED_PATHS)));
    linux.set_readonly_paths(Some(list(&spec.readonly_paths, DEFAULT_READONLY_PATHS)));
    linux.set_rootfs_propagation(Some("rslave".into()));
    linux.set_resources(device_resources(spec));
    linux.set_devices(if spec.devices.is_empty() {
        None
    } else {
        Some(spec.devices.iter().map(oci_device).collect())
    });
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);

    let mut s = Spec::default();
    s.set_hostname(Some(spec.hostname.clone()));
    s.set_root(Some(root));
    s.set_process(Some(p));
    s.set_mounts(Some(mounts));
    s.set_linux(Some(linux));
    s
}

fn oci_device(d: &crate::DeviceNode) -> LinuxDevice {
    let mut o = LinuxDevice::default();
    o.set_path(PathBuf::from(&d.path));
    o.set_typ(match d.kind {
        DeviceType::Char => LinuxDeviceType::C,
        DeviceType::Block => LinuxDeviceType::B,
        DeviceType::Fifo => LinuxDeviceType::P,
    });
    o.set_major(i64::from(d.major));
    o.set_minor(i64::from(d.minor));
    o.set_file_mode(Some(d.mode));
    o.set_uid(Some(d.uid));
    o.set_gid(Some(d.gid));
    o
}

/// `linux.resources.devices`: the engine's device access list, `None` when it has none.
fn device_resources(spec: &ContainerSpec) -> Option<LinuxResources> {
    if spec.device_rules.is_empty() {
        return None;
    }
    let rules = spec
        .device_rules
        .iter()
        .map(|r| {
            let mut c = LinuxDeviceCgroup::default();
            c.set_allow(r.allow);
            c.set_typ(match r.kind {
                'c' => Some(LinuxDeviceType::C),
                'b' => Some(LinuxDeviceType::B),
                _ => Some(LinuxDeviceType::A),
            });
            c.set_major(r.major.map(i64::from));
            c.set_minor(r.minor.map(i64::from));
            c.set_access(Some(r.access.clone()));
            c
        })
        .collect();
    let mut res = LinuxResources::default();
    res.set_devices(Some(rules));
    Some(res)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProcessSpec;

    #[test]
    fn oci_config_reflects_the_spec() {
        let d = tempfile::tempdir().unwrap();
        let spec = ContainerSpec {
            id: "c1".into(),
            rootfs: d.path().into(),
            hostname: "h1".into(),
            process: ProcessSpec {
                args: vec!["sh".into()],
                cwd: "/w".into(),
                tty: true,
                ..Default::default()
            },
            mounts: vec![MountSpec::Tmpfs {
                destination: "/t".into(),
                options: "size=1m".into(),
            }],
            etc_files: vec![],
            network: NetworkMode::Join("/run/netns/x".into()),
            readonly_rootfs: true,
            privileged: false,
            cap_add: vec![],
            cap_drop: vec!["ALL".into()],
            no_new_privileges: true,
            init: false,
            masked_paths: None,
            readonly_paths: None,
            seccomp: None,
            devices: vec![crate::DeviceNode {
                path: "/dev/kmsg".into(),
                kind: DeviceType::Char,
                major: 1,
                minor: 11,
                mode: 0o644,
                uid: 0,
                gid: 0,
            }],
            device_rules: vec![
                crate::DeviceCgroupRule {
                    allow: false,
                    kind: 'a',
                    major: None,
                    minor: None,
                    access: "rwm".into(),
                },
                crate::DeviceCgroupRule {
                    allow: true,
                    kind: 'c',
                    major: Some(1),
                    minor: Some(11),
                    access: "rw".into(),
                },
            ],
        };
        let s = to_oci_config(&spec);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["hostname"], "h1");
        assert_eq!(v["root"]["readonly"], true);
        assert_eq!(v["process"]["cwd"], "/w");
        assert_eq!(
            v["process"]["capabilities"]["bounding"],
            serde_json::json!([])
        );
        assert!(v["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&"TERM=xterm".into()));
        let ns = v["linux"]["namespaces"].as_array().unwrap();
        assert!(ns
            .iter()
            .any(|n| n["type"] == "network" && n["path"] == "/run/netns/x"));
        assert_eq!(
            v["linux"]["maskedPaths"].as_array().unwrap().len(),
            DEFAULT_MASKED_PATHS.len()
        );
        assert!(v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["destination"] == "/t"
                && m["options"].as_array().unwrap().contains(&"size=1m".into())));
        assert_eq!(
            v["linux"]["resources"]["devices"],
            serde_json::json!([
                {"allow": false, "type": "a", "access": "rwm"},
                {"allow": true, "type": "c", "major": 1, "minor": 11, "access": "rw"}
            ])
        );
        assert_eq!(v["linux"]["devices"][0]["path"], "/dev/kmsg");
        assert_eq!(v["linux"]["devices"][0]["type"], "c");
        assert_eq!(v["linux"]["devices"][0]["minor"], 11);
        let default = to_oci_config(&ContainerSpec {
            cap_drop: vec![],
            ..spec
        });
        let v = serde_json::to_value(&default).unwrap();
        let b = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(b.len(), 14);
        assert!(b.contains(&"CAP_NET_BIND_SERVICE".into()));
    }
}
