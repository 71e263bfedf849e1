//! The OCI runtime spec as the runtime's input: `config.json` of a bundle → a
//! [`ContainerSpec`] plus [`CreateOptions`] (what [`crate::create_with`] runs), and the
//! settings that belong to whoever drives the process (hooks, cgroup, OOM score), which
//! [`OciContainer`] hands back untouched.
//!
//! What the runtime does not do, it refuses with an error naming the field, instead of
//! running something else than the config says: user namespaces, joining namespaces other
//! than the network one, FIFO devices, a seccomp notify listener.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Capability, Hooks, LinuxDeviceType, LinuxNamespaceType, LinuxResources, Mount, PosixRlimitType,
    Process, Spec,
};

use crate::{
    process::sysctl_path, CapSets, ContainerSpec, CreateOptions, DeviceCgroupRule, DeviceNode,
    DeviceType, MountSpec, NetworkMode, ProcessSpec, RuntimeError,
};

/// A bundle's config, converted.
#[derive(Debug, Clone)]
pub struct OciContainer {
    /// What [`crate::create_with`] runs.
    pub spec: ContainerSpec,
    /// Its OCI extras (sysctls, rlimits, umask, additional gids; the caller adds the FIFO).
    pub options: CreateOptions,
    /// `process.oomScoreAdj`, written by the caller into `/proc/<pid>/oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// `linux.cgroupsPath` as written.
    pub cgroups_path: Option<String>,
    /// `linux.resources`, for the isolator (the device list is also in `spec.device_rules`).
    pub resources: Option<LinuxResources>,
    pub hooks: Option<Hooks>,
}

fn invalid(msg: impl Into<String>) -> RuntimeError {
    RuntimeError::InvalidSpec(msg.into())
}

fn cap_name(c: &Capability) -> String {
    // Capability serialises as "CAP_CHOWN"; Display may differ between versions.
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{c:?}"))
}

/// The process part of a config (or an `exec --process` file), converted.
#[derive(Debug, Clone)]
pub struct OciProcess {
    pub process: ProcessSpec,
    /// Capability names, kept as the bounding, permitted and effective set.
    pub caps: Vec<String>,
    pub no_new_privileges: bool,
    /// umask, additional gids, rlimits.
    pub options: CreateOptions,
}

/// Converts the process part (for the container and for `exec --process`).
pub fn process_from_oci(p: &Process) -> Result<OciProcess, RuntimeError> {
    let args = p.args().clone().unwrap_or_default();
    if args.is_empty() {
        return Err(invalid(
            "process.args is empty: the config must name a command",
        ));
    }
    let cwd = p.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(invalid(format!(
            "process.cwd {cwd:?} must be an absolute path"
        )));
    }
    let u = p.user();
    let process = ProcessSpec {
        args,
        env: p.env().clone().unwrap_or_default(),
        cwd,
        user: format!("{}:{}", u.uid(), u.gid()),
        tty: p.terminal().unwrap_or(false),
    };
    // One set stands for bounding, permitted and effective (what the runtime applies).
    let caps = p
        .capabilities()
        .as_ref()
        .and_then(|c| c.bounding().clone().or_else(|| c.effective().clone()))
        .map(|set| {
            let mut v: Vec<String> = set.iter().map(cap_name).collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    let names = |set: &Option<oci_spec::runtime::Capabilities>| -> Vec<String> {
        let mut v: Vec<String> = set.iter().flatten().map(cap_name).collect();
        v.sort();
        v
    };
    let cap_sets = p.capabilities().as_ref().map(|c| CapSets {
        effective: names(c.effective()),
        permitted: names(c.permitted()),
        inheritable: names(c.inheritable()),
        ambient: names(c.ambient()),
    });
    let mut rlimits = Vec::new();
    for r in p.rlimits().iter().flatten() {
        rlimits.push((rlimit_resource(r.typ()), r.soft(), r.hard()));
    }
    let options = CreateOptions {
        umask: u.umask(),
        additional_gids: Some(u.additional_gids().clone().unwrap_or_default()),
        rlimits,
        cap_sets,
        ..Default::default()
    };
    Ok(OciProcess {
        process,
        caps,
        no_new_privileges: p.no_new_privileges().unwrap_or(false),
        options,
    })
}

fn rlimit_resource(t: PosixRlimitType) -> i32 {
    use PosixRlimitType as R;
    (match t {
        R::RlimitCpu => libc::RLIMIT_CPU,
        R::RlimitFsize => libc::RLIMIT_FSIZE,
        R::RlimitData => libc::RLIMIT_DATA,
        R::RlimitStack => libc::RLIMIT_STACK,
        R::RlimitCore => libc::RLIMIT_CORE,
        R::RlimitRss => libc::RLIMIT_RSS,
        R::RlimitNproc => libc::RLIMIT_NPROC,
        R::RlimitNofile => libc::RLIMIT_NOFILE,
        R::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        R::RlimitAs => libc::RLIMIT_AS,
        R::RlimitLocks => libc::RLIMIT_LOCKS,
        R::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        R::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        R::RlimitNice => libc::RLIMIT_NICE,
        R::RlimitRtprio => libc::RLIMIT_RTPRIO,
        R::RlimitRttime => libc::RLIMIT_RTTIME,
    }) as i32
}

/// Mounts the runtime makes itself (`/proc`, `/dev`, `/dev/pts`, `/dev/shm`,
/// `/dev/mqueue`, `/sys`, `/sys/fs/cgroup`) when the config asks for the same kind.
fn is_builtin(dest: &str, typ: &str) -> bool {
    matches!(
        (dest.trim_end_matches('/'), typ),
        ("/proc", "proc")
            | ("/dev", "tmpfs")
            | ("/dev/pts", "devpts")
            | ("/dev/shm", "tmpfs")
            | ("/dev/mqueue", "mqueue")
            | ("/sys", "sysfs")
            | ("/sys/fs/cgroup", "cgroup")
            | ("/sys/fs/cgroup", "cgroup2")
    )
}

fn mount_from_oci(m: &Mount, bundle: &Path) -> Result<Option<MountSpec>, RuntimeError> {
    let dest = m.destination().to_string_lossy().into_owned();
    if !dest.starts_with('/') {
        return Err(invalid(format!(
            "mount destination {dest:?} must be an absolute path"
        )));
    }
    let options = m.options().clone().unwrap_or_default();
    let is_bind =
        m.typ().as_deref() == Some("bind") || options.iter().any(|o| o == "bind" || o == "rbind");
    let typ = m.typ().clone().unwrap_or_default();
    if !is_bind && is_builtin(&dest, &typ) {
        return Ok(None);
    }
    let source = m.source().clone().unwrap_or_default();
    if is_bind {
        let source = if source.is_absolute() {
            source
        } else {
            bundle.join(source)
        };
        return Ok(Some(MountSpec::Bind {
            source,
            destination: dest,
            read_only: options.iter().any(|o| o == "ro"),
        }));
    }
    if typ.is_empty() {
        return Err(invalid(format!(
            "mount on {dest}: no type and not a bind mount"
        )));
    }
    Ok(Some(MountSpec::Other {
        source: source.to_string_lossy().into_owned(),
        destination: dest,
        fstype: typ,
        options,
    }))
}

/// Sysctls that are per namespace (runc's list): IPC ones always, `net.*` only with a
/// network namespace of the container's own, the UTS names.
fn check_sysctl(key: &str, own_netns: bool) -> Result<(), RuntimeError> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    let k = key.replace('/', ".");
    let ok = IPC.contains(&k.as_str())
        || k.starts_with("fs.mqueue.")
        || k == "kernel.hostname"
        || k == "kernel.domainname"
        || (own_netns && k.starts_with("net."));
    if sysctl_path(key).is_none() {
        return Err(invalid(format!("malformed sysctl key {key:?}")));
    }
    if !ok {
        return Err(invalid(format!(
            "sysctl {key:?} is not in a namespace of the container{} (changing it would change the host)",
            if k.starts_with("net.") {
                " (net.* needs a network namespace of its own)"
            } else {
                ""
            }
        )));
    }
    Ok(())
}

/// Converts the config of the bundle in `bundle` (already parsed) for container `id`.
pub fn from_oci(spec: &Spec, bundle: &Path, id: &str) -> Result<OciContainer, RuntimeError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("config.json has no root: the bundle's rootfs is not named"))?;
    let rootfs: PathBuf = if root.path().is_absolute() {
        root.path().clone()
    } else {
        bundle.join(root.path())
    };
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("config.json has no process"))?;
    let OciProcess {
        process: process_spec,
        caps,
        no_new_privileges: nnp,
        mut options,
    } = process_from_oci(process)?;
    let linux = spec
        .linux()
        .clone()
        .ok_or_else(|| invalid("config.json has no linux section"))?;
    let mut network = NetworkMode::Host;
    for ns in linux.namespaces().iter().flatten() {
        let path = ns.path().clone();
        match (ns.typ(), path) {
            (LinuxNamespaceType::Network, None) => network = NetworkMode::New,
            (LinuxNamespaceType::Network, Some(p)) => network = NetworkMode::Join(p),
            (LinuxNamespaceType::User, _) => {
                return Err(invalid(
                    "linux.namespaces: user namespaces are not supported by berth-runtime yet",
                ))
            }
            (t, Some(p)) => {
                return Err(invalid(format!(
                    "linux.namespaces: joining a {t:?} namespace ({}) is not supported (only the network namespace can be joined)",
                    p.display()
                )))
            }
            _ => {}
        }
    }
    if linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty())
    {
        return Err(invalid(
            "linux.uidMappings/gidMappings: user namespaces are not supported by berth-runtime yet",
        ));
    }
    let own_netns = network == NetworkMode::New || matches!(network, NetworkMode::Join(_));
    let mut sysctls: Vec<(String, String)> = linux
        .sysctl()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    sysctls.sort();
    for (k, _) in &sysctls {
        check_sysctl(k, own_netns)?;
    }
    if let Some(d) = spec.domainname().as_ref().filter(|d| !d.is_empty()) {
        sysctls.push(("kernel.domainname".into(), d.clone()));
    }
    options.sysctls = sysctls;
    let mut mounts = Vec::new();
    for m in spec.mounts().iter().flatten() {
        if let Some(m) = mount_from_oci(m, bundle)? {
            mounts.push(m);
        }
    }
    let mut devices = Vec::new();
    for d in linux.devices().iter().flatten() {
        let kind = match d.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => DeviceType::Char,
            LinuxDeviceType::B => DeviceType::Block,
            LinuxDeviceType::P => DeviceType::Fifo,
            other => {
                return Err(invalid(format!(
                    "linux.devices {}: type {other:?} is not supported (only c, u, b and p)",
                    d.path().display()
                )))
            }
        };
        let num = |n: i64, what: &str| {
            u32::try_from(n).map_err(|_| {
                invalid(format!(
                    "linux.devices {}: {what} number {n} is out of range",
                    d.path().display()
                ))
            })
        };
        devices.push(DeviceNode {
            path: d.path().to_string_lossy().into_owned(),
            kind,
            major: num(d.major(), "major")?,
            minor: num(d.minor(), "minor")?,
            mode: d.file_mode().unwrap_or(0o666) & 0o7777,
            uid: d.uid().unwrap_or(0),
            gid: d.gid().unwrap_or(0),
        });
    }
    let mut device_rules = Vec::new();
    if let Some(res) = linux.resources() {
        for r in res.devices().iter().flatten() {
            let kind = match r.typ() {
                Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
                Some(LinuxDeviceType::B) => 'b',
                _ => 'a',
            };
            device_rules.push(DeviceCgroupRule {
                allow: r.allow(),
                kind,
                major: r.major().and_then(|n| u32::try_from(n).ok()),
                minor: r.minor().and_then(|n| u32::try_from(n).ok()),
                access: r.access().clone().unwrap_or_else(|| "rwm".into()),
            });
        }
    }
    let seccomp = match linux.seccomp() {
        None => None,
        Some(s) => {
            if s.listener_path().is_some() {
                return Err(invalid(
                    "linux.seccomp.listenerPath: seccomp notify listeners are not supported",
                ));
            }
            let json =
                serde_json::to_string(s).map_err(|e| invalid(format!("linux.seccomp: {e}")))?;
            Some(
                berth_seccomp::Profile::from_json(&json)
                    .map_err(|e| invalid(format!("linux.seccomp: {e}")))?,
            )
        }
    };
    let container = ContainerSpec {
        id: id.to_string(),
        rootfs,
        hostname: spec.hostname().clone().unwrap_or_default(),
        process: process_spec,
        mounts,
        etc_files: Vec::new(),
        network,
        readonly_rootfs: root.readonly().unwrap_or(false),
        privileged: false,
        cap_add: caps,
        cap_drop: vec!["ALL".into()],
        no_new_privileges: nnp,
        init: false,
        masked_paths: Some(linux.masked_paths().clone().unwrap_or_default()),
        readonly_paths: Some(linux.readonly_paths().clone().unwrap_or_default()),
        seccomp,
        devices,
        device_rules,
    };
    Ok(OciContainer {
        spec: container,
        options,
        oom_score_adj: process.oom_score_adj(),
        cgroups_path: linux
            .cgroups_path()
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned()),
        resources: linux.resources().clone(),
        hooks: spec.hooks().clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#"{
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "h1",
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 5, "gid": 6, "additionalGids": [7], "umask": 63},
                    "env": ["A=b"], "noNewPrivileges": true, "oomScoreAdj": 100,
                    "capabilities": {"bounding": ["CAP_CHOWN", "CAP_KILL"]},
                    "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 100, "soft": 50}]},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind", "ro"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "size=1m"]}
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "mount"}],
                  "sysctl": {"net.ipv4.ip_forward": "1"},
                  "maskedPaths": ["/proc/kcore"], "cgroupsPath": "/a/b",
                  "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}
    }"#;

    #[test]
    fn converts_the_common_fields() {
        let c = from_oci(&spec(BASE), Path::new("/b"), "id1").unwrap();
        assert_eq!(c.spec.rootfs, Path::new("/b/rootfs"));
        assert!(c.spec.readonly_rootfs);
        assert_eq!(c.spec.hostname, "h1");
        assert_eq!(c.spec.process.user, "5:6");
        assert_eq!(c.spec.network, NetworkMode::New);
        assert_eq!(c.spec.cap_add, vec!["CAP_CHOWN", "CAP_KILL"]);
        assert!(c.spec.no_new_privileges);
        assert_eq!(c.options.umask, Some(63));
        assert_eq!(c.options.additional_gids, Some(vec![7]));
        assert_eq!(
            c.options.rlimits,
            vec![(libc::RLIMIT_NOFILE as i32, 50, 100)]
        );
        assert_eq!(
            c.options.sysctls,
            vec![("net.ipv4.ip_forward".into(), "1".into())]
        );
        assert_eq!(c.oom_score_adj, Some(100));
        assert_eq!(c.cgroups_path.as_deref(), Some("/a/b"));
        assert_eq!(c.spec.masked_paths, Some(vec!["/proc/kcore".to_string()]));
        assert_eq!(c.spec.readonly_paths, Some(vec![]));
        assert_eq!(c.spec.devices.len(), 1);
        assert_eq!(c.spec.devices[0].mode, 0o666);
        // /proc is the runtime's own; the bind is relative to the bundle.
        assert_eq!(c.spec.mounts.len(), 2);
        assert_eq!(
            c.spec.mounts[0],
            MountSpec::Bind {
                source: "/b/data".into(),
                destination: "/data".into(),
                read_only: true
            }
        );
        assert!(matches!(&c.spec.mounts[1], MountSpec::Other { fstype, .. } if fstype == "tmpfs"));
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let userns = BASE.replace(r#"{"type": "mount"}"#, r#"{"type": "user"}"#);
        let e = from_oci(&spec(&userns), Path::new("/b"), "x").unwrap_err();
        assert!(e.to_string().contains("user namespaces"), "{e}");
        let join = BASE.replace(
            r#"{"type": "pid"}"#,
            r#"{"type": "pid", "path": "/proc/1/ns/pid"}"#,
        );
        let e = from_oci(&spec(&join), Path::new("/b"), "x").unwrap_err();
        assert!(e.to_string().contains("joining"), "{e}");
        let host_sysctl = BASE.replace("net.ipv4.ip_forward", "vm.swappiness");
        let e = from_oci(&spec(&host_sysctl), Path::new("/b"), "x").unwrap_err();
        assert!(e.to_string().contains("vm.swappiness"), "{e}");
        let hostnet = BASE.replace(r#"{"type": "network"}, "#, "");
        let e = from_oci(&spec(&hostnet), Path::new("/b"), "x").unwrap_err();
        assert!(e.to_string().contains("network namespace"), "{e}");
        let noargs = BASE.replace(r#""args": ["sh"], "#, "");
        assert!(from_oci(&spec(&noargs), Path::new("/b"), "x").is_err());
    }
}
