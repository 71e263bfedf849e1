//! Which host devices a container may use: Docker's default device list, `--device`,
//! `--device-cgroup-rule` and `--privileged`.
//!
//! Every container that is not `--privileged` gets a device access list that denies every
//! device except the ones a process needs (runc's `AllowedDevices`, which Docker relies on:
//! `mknod` of any node, `/dev/null`, `zero`, `full`, `random`, `urandom`, `tty`, the
//! pseudo-terminals and `/dev/net/tun`), plus the `--device` nodes and the
//! `--device-cgroup-rule` rules. The isolator enforces the list (cgroup1: the `devices`
//! controller; cgroup2: a BPF device program), before the container's first process runs.
//! `CAP_MKNOD` stays in the default capabilities, as with Docker: creating a node is
//! harmless when opening it is refused, and the list covers nodes shipped in image layers
//! too. `berth build` RUN steps get the default list as well, in a group of their own
//! (`RunGroup`).
//!
//! **Policy when the list can't be enforced.** berth refuses to start a container that is
//! not `--privileged` when there is no isolator, or the isolator cannot set device lists
//! (a plugin built before `set_devices`, or a host without the devices hierarchy or BPF):
//! running it would give root in the container every host device (the kernel log, raw
//! disks, terminals). `--privileged` containers get every device anyway, so they still run
//! without an isolator (with a warning, as before). The same holds for build RUN steps,
//! which are never privileged.

use std::{
    os::unix::fs::{FileTypeExt, MetadataExt},
    path::PathBuf,
};

use berth_abi::{DeviceKind, DeviceRule, ErrorKind, Isolator};
use berth_runtime as runtime;
use serde::{Deserialize, Serialize};

use crate::{container::ContainerConfig, EngineError};

/// `--device HOST[:CONTAINER[:PERMS]]` after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceMapping {
    /// Host device node, or a directory of them.
    pub host_path: String,
    /// Path in the container (the host path when not given).
    pub container_path: String,
    /// Subset of `rwm` (default `rwm`).
    pub permissions: String,
}

/// What a start needs: the nodes to create and the list for the isolator.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvedDevices {
    pub nodes: Vec<runtime::DeviceNode>,
    pub rules: Vec<DeviceRule>,
}

fn access_bits(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 3 {
        return None;
    }
    let mut a = 0;
    for c in s.chars() {
        let bit = match c {
            'r' => DeviceRule::READ,
            'w' => DeviceRule::WRITE,
            'm' => DeviceRule::MKNOD,
            _ => return None,
        };
        if a & bit != 0 {
            return None;
        }
        a |= bit;
    }
    Some(a)
}

/// Parses a `--device-cgroup-rule` value, Docker's syntax: `TYPE MAJOR:MINOR ACCESS` with
/// TYPE `a`, `c` or `b`, numbers or `*`, ACCESS a subset of `rwm` (`c 1:3 rwm`, `b 8:* r`).
pub fn parse_cgroup_rule(s: &str) -> Result<DeviceRule, EngineError> {
    let bad = |why: &str| {
        EngineError::Invalid(format!(
            "invalid --device-cgroup-rule {s:?}: {why} (expected TYPE MAJOR:MINOR ACCESS, e.g. 'c 1:3 rwm', with TYPE a, c or b, numbers or *, ACCESS a subset of rwm)"
        ))
    };
    let parts: Vec<&str> = s.split(' ').collect();
    let [kind, numbers, access] = parts[..] else {
        return Err(bad("it must be three fields separated by single spaces"));
    };
    let kind = match kind {
        "a" => DeviceKind::All,
        "c" => DeviceKind::Char,
        "b" => DeviceKind::Block,
        _ => return Err(bad("the type must be a, c or b")),
    };
    let (major, minor) = numbers
        .split_once(':')
        .ok_or_else(|| bad("the numbers must be MAJOR:MINOR"))?;
    let num = |n: &str, what: &str| -> Result<Option<u32>, EngineError> {
        if n == "*" {
            return Ok(None);
        }
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("the {what} number must be digits or *")));
        }
        n.parse::<u32>()
            .ok()
            .filter(|v| *v <= i32::MAX as u32)
            .map(Some)
            .ok_or_else(|| bad(&format!("the {what} number is too large")))
    };
    Ok(DeviceRule {
        allow: true,
        kind,
        major: num(major, "major")?,
        minor: num(minor, "minor")?,
        access: access_bits(access)
            .ok_or_else(|| bad("the access must be a subset of rwm, each letter once"))?,
    })
}

/// Parses a `--device` value like Docker: `HOST`, `HOST:CONTAINER`, `HOST:PERMS` or
/// `HOST:CONTAINER:PERMS`. The host path is checked when the container is created and
/// resolved (type, numbers) at every start.
pub fn parse_device(s: &str) -> Result<DeviceMapping, EngineError> {
    let bad = |why: String| {
        EngineError::Invalid(format!(
            "invalid --device {s:?}: {why} (expected HOST[:CONTAINER[:PERMS]], e.g. /dev/kmsg:/dev/kmsg:r)"
        ))
    };
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, perms) = match parts[..] {
        [h] => (h, h, "rwm"),
        [h, p] if access_bits(p).is_some() => (h, h, p),
        [h, c] => (h, c, "rwm"),
        [h, c, p] => (h, c, p),
        _ => return Err(bad("too many `:`".into())),
    };
    if !host.starts_with('/') {
        return Err(bad(format!("host path {host:?} must be absolute")));
    }
    if !container.starts_with('/') || container.split('/').any(|c| c == "..") {
        return Err(bad(format!(
            "container path {container:?} must be absolute, without `..`"
        )));
    }
    if access_bits(perms).is_none() {
        return Err(bad(format!(
            "permissions {perms:?} must be a subset of rwm"
        )));
    }
    Ok(DeviceMapping {
        host_path: host.to_string(),
        container_path: container.to_string(),
        permissions: perms.to_string(),
    })
}

/// runc's `AllowedDevices` (which Docker's containers get), after a deny-all rule.
pub fn default_rules() -> Vec<DeviceRule> {
    let rwm = DeviceRule::ALL_ACCESS;
    let rule = |kind, major: Option<u32>, minor: Option<u32>, access| DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access,
    };
    let c = |major, minor| rule(DeviceKind::Char, Some(major), Some(minor), rwm);
    vec![
        DeviceRule::everything(false),
        // mknod of any node (opening it is what the list decides)
        rule(DeviceKind::Char, None, None, DeviceRule::MKNOD),
        rule(DeviceKind::Block, None, None, DeviceRule::MKNOD),
        c(1, 3), // null
        c(1, 8), // random
        c(1, 7), // full
        c(5, 0), // tty
        c(1, 5), // zero
        c(1, 9), // urandom
        // /dev/pts/* (also /dev/console, a bind mount of the container's pty)
        rule(DeviceKind::Char, Some(136), None, rwm),
        c(5, 2), // ptmx
        // /dev/net/tun: dropped in runc 1.2.0-rc1, restored for compatibility (creating
        // an interface still needs CAP_NET_ADMIN)
        c(10, 200),
    ]
}

/// Checks `--device` and `--device-cgroup-rule` values of a new container: rules parse,
/// host paths exist and are device nodes (or directories).
pub fn validate(devices: &[DeviceMapping], rules: &[String]) -> Result<(), EngineError> {
    for r in rules {
        parse_cgroup_rule(r)?;
    }
    for d in devices {
        host_nodes(d)?;
    }
    Ok(())
}

fn node_of(meta: &std::fs::Metadata, container: String) -> Option<runtime::DeviceNode> {
    let ft = meta.file_type();
    let kind = if ft.is_char_device() {
        runtime::DeviceType::Char
    } else if ft.is_block_device() {
        runtime::DeviceType::Block
    } else {
        return None;
    };
    let rdev = meta.rdev();
    Some(runtime::DeviceNode {
        path: container,
        kind,
        major: libc::major(rdev),
        minor: libc::minor(rdev),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
    })
}

/// The nodes of one `--device`: the node itself, or every node below a directory
/// (symlinks in it are not followed), at the same place below the container path.
fn host_nodes(d: &DeviceMapping) -> Result<Vec<runtime::DeviceNode>, EngineError> {
    let host = PathBuf::from(&d.host_path);
    let meta = std::fs::metadata(&host)
        .map_err(|e| EngineError::Invalid(format!("--device {}: {e}", d.host_path)))?;
    if let Some(n) = node_of(&meta, d.container_path.clone()) {
        return Ok(vec![n]);
    }
    if !meta.is_dir() {
        return Err(EngineError::Invalid(format!(
            "--device {}: not a device node (nor a directory of them)",
            d.host_path
        )));
    }
    let mut out = Vec::new();
    let mut todo = vec![(host, d.container_path.trim_end_matches('/').to_string())];
    while let Some((dir, cdir)) = todo.pop() {
        let rd = std::fs::read_dir(&dir).map_err(|e| {
            EngineError::Invalid(format!("--device {}: {}: {e}", d.host_path, dir.display()))
        })?;
        for e in rd.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            let cpath = format!("{cdir}/{}", e.file_name().to_string_lossy());
            if m.is_dir() {
                todo.push((e.path(), cpath));
            } else if let Some(n) = node_of(&m, cpath) {
                out.push(n);
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// The device nodes below `dev` (the host's `/dev`) at the same paths in the container,
/// as runc's `HostDevices`: not in `pts`, `shm`, `fd`, `mqueue` and the runtime's own
/// `console`; symlinks and unreadable entries are skipped.
fn host_dev_nodes(dev: &std::path::Path) -> Vec<runtime::DeviceNode> {
    let mut out = Vec::new();
    let mut todo = vec![(dev.to_path_buf(), "/dev".to_string())];
    while let Some((dir, cdir)) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            let cpath = format!("{cdir}/{name}");
            if m.is_dir() {
                if !matches!(
                    name.as_str(),
                    "pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev"
                ) {
                    todo.push((e.path(), cpath));
                }
            } else if name != "console" {
                out.extend(node_of(&m, cpath));
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Resolves a container's devices for a start: the nodes to create and the access list
/// (everything, and every host device node, for `--privileged`).
pub fn resolve(c: &ContainerConfig) -> Result<ResolvedDevices, EngineError> {
    if c.privileged {
        // Like Docker: every device of the host's /dev, then the --device nodes.
        let mut nodes = host_dev_nodes(std::path::Path::new("/dev"));
        for d in &c.devices {
            nodes.extend(host_nodes(d)?);
        }
        return Ok(ResolvedDevices {
            nodes,
            rules: vec![DeviceRule::everything(true)],
        });
    }
    let mut rules = vec![DeviceRule::everything(false)];
    let mut nodes = Vec::new();
    for d in &c.devices {
        let access = access_bits(&d.permissions).unwrap_or(DeviceRule::ALL_ACCESS);
        for n in host_nodes(d)? {
            rules.push(DeviceRule {
                allow: true,
                kind: match n.kind {
                    runtime::DeviceType::Char => DeviceKind::Char,
                    runtime::DeviceType::Block => DeviceKind::Block,
                    // host_nodes only finds character and block devices
                    runtime::DeviceType::Fifo => continue,
                },
                major: Some(n.major),
                minor: Some(n.minor),
                access,
            });
            nodes.push(n);
        }
    }
    for r in &c.device_cgroup_rules {
        rules.push(parse_cgroup_rule(r)?);
    }
    rules.extend(default_rules().into_iter().skip(1));
    Ok(ResolvedDevices { nodes, rules })
}

/// The list in the runtime's (OCI) terms, for the exported config.
pub fn oci_rules(rules: &[DeviceRule]) -> Vec<runtime::DeviceCgroupRule> {
    rules
        .iter()
        .map(|r| runtime::DeviceCgroupRule {
            allow: r.allow,
            kind: r.kind.letter(),
            major: r.major,
            minor: r.minor,
            access: r.access_letters(),
        })
        .collect()
}

/// Has the isolator enforce the list on group `id`. An isolator that can't is an error
/// unless the container is `--privileged` (see the module docs).
pub fn enforce(
    iso: &dyn Isolator,
    id: &str,
    privileged: bool,
    rules: &[DeviceRule],
) -> Result<(), EngineError> {
    match iso.set_devices(id, rules) {
        Ok(()) => Ok(()),
        Err(e) if privileged => {
            // Every device is allowed anyway; a group that stays restricted by its
            // parent is not a hole.
            tracing::debug!("device list of a privileged container not set: {e}");
            Ok(())
        }
        Err(e) if e.kind == ErrorKind::Unsupported => Err(EngineError::Invalid(format!(
            "the isolator cannot restrict the container's access to host devices ({e}); \
             berth does not run containers with every host device open: use an isolator that \
             can (cgroup1 with the devices hierarchy mounted, or cgroup2 with BPF device \
             programs), or --privileged to give the container every device on purpose"
        ))),
        Err(e) => Err(EngineError::plugin(
            "restricting the container's access to host devices",
            e,
        )),
    }
}

/// The error for a container that would run without any isolator (none configured or it
/// failed to load, `why`): only `--privileged` containers may.
pub fn require_isolator(privileged: bool, why: &EngineError) -> Result<(), EngineError> {
    if privileged {
        return Ok(());
    }
    Err(no_isolator(why))
}

fn no_isolator(why: &EngineError) -> EngineError {
    EngineError::Invalid(format!(
        "no isolator to restrict the container's access to host devices ({why}); \
         berth does not run containers with every host device open: configure one \
         ([isolator] driver = \"auto\", \"cgroup1\" or \"cgroup2\" in berth.toml, and the \
         plugin in a plugin directory), or use --privileged to give the container every \
         device on purpose"
    ))
}

/// The group of a short-lived container that is not a record (a `berth build` RUN step):
/// created with the default device list, destroyed on drop.
pub(crate) struct RunGroup {
    iso: std::sync::Arc<dyn Isolator>,
    id: String,
}

impl RunGroup {
    pub(crate) fn new(plugins: &crate::Plugins, id: &str) -> Result<RunGroup, EngineError> {
        let iso = plugins.isolator().map_err(|e| no_isolator(&e))?;
        iso.create(id, &Default::default())
            .map_err(|e| EngineError::plugin("creating the cgroup of the RUN step", e))?;
        let g = RunGroup {
            iso,
            id: id.to_string(),
        };
        enforce(&*g.iso, id, false, &default_rules())?;
        Ok(g)
    }

    /// Moves the step's process (waiting at its sync point) into the group.
    pub(crate) fn add(&self, pid: i32) -> Result<(), EngineError> {
        self.iso
            .add_process(&self.id, pid)
            .map_err(|e| EngineError::plugin("placing the RUN step in its cgroup", e))
    }
}

impl Drop for RunGroup {
    fn drop(&mut self) {
        if let Err(e) = self.iso.destroy(&self.id) {
            tracing::warn!("removing the cgroup of RUN step {}: {e}", self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_rules_parse_like_docker() {
        assert_eq!(
            parse_cgroup_rule("c 1:3 rwm").unwrap().to_string(),
            "c 1:3 rwm"
        );
        assert_eq!(parse_cgroup_rule("b 8:* r").unwrap().to_string(), "b 8:* r");
        assert_eq!(
            parse_cgroup_rule("a *:* mw").unwrap().to_string(),
            "a *:* wm"
        );
        for bad in [
            "",
            "c 1:3",
            "x 1:3 rwm",
            "c 1 rwm",
            "c 1:3 rwx",
            "c 1:3 rr",
            "c  1:3 rwm",
            "c -1:3 rwm",
            "c 1:99999999999 rwm",
            "c 1:3 rwm extra",
        ] {
            let e = parse_cgroup_rule(bad).unwrap_err().to_string();
            assert!(e.contains("--device-cgroup-rule"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn device_flags_parse_like_docker() {
        let d = parse_device("/dev/kmsg").unwrap();
        assert_eq!(
            (
                d.host_path.as_str(),
                d.container_path.as_str(),
                d.permissions.as_str()
            ),
            ("/dev/kmsg", "/dev/kmsg", "rwm")
        );
        let d = parse_device("/dev/kmsg:r").unwrap();
        assert_eq!(
            (d.container_path.as_str(), d.permissions.as_str()),
            ("/dev/kmsg", "r")
        );
        let d = parse_device("/dev/kmsg:/dev/k").unwrap();
        assert_eq!(
            (d.container_path.as_str(), d.permissions.as_str()),
            ("/dev/k", "rwm")
        );
        let d = parse_device("/dev/kmsg:/dev/k:rw").unwrap();
        assert_eq!(
            (d.container_path.as_str(), d.permissions.as_str()),
            ("/dev/k", "rw")
        );
        for bad in [
            "kmsg",
            "/dev/kmsg:k",
            "/dev/kmsg:/dev/k:rx",
            "/a:/b:r:x",
            "/a:/dev/../b",
        ] {
            let e = parse_device(bad).unwrap_err().to_string();
            assert!(e.contains("--device"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn default_list_is_runcs_after_deny_all() {
        let text: Vec<String> = default_rules()
            .iter()
            .map(|r| format!("{} {r}", if r.allow { "allow" } else { "deny" }))
            .collect();
        assert_eq!(
            text,
            [
                "deny a *:* rwm",
                "allow c *:* m",
                "allow b *:* m",
                "allow c 1:3 rwm",
                "allow c 1:8 rwm",
                "allow c 1:7 rwm",
                "allow c 5:0 rwm",
                "allow c 1:5 rwm",
                "allow c 1:9 rwm",
                "allow c 136:* rwm",
                "allow c 5:2 rwm",
                "allow c 10:200 rwm",
            ]
        );
        assert_eq!(DeviceRule::check_list(&default_rules()), Ok(false));
    }

    #[test]
    fn resolved_lists_follow_the_flags() {
        let mut c = ContainerConfig {
            devices: vec![parse_device("/dev/null:/dev/bt-null:r").unwrap()],
            device_cgroup_rules: vec!["c 1:11 w".into()],
            ..Default::default()
        };
        let r = resolve(&c).unwrap();
        assert_eq!(r.nodes.len(), 1);
        assert_eq!(r.nodes[0].path, "/dev/bt-null");
        assert_eq!((r.nodes[0].major, r.nodes[0].minor), (1, 3));
        assert_eq!(r.rules[0], DeviceRule::everything(false));
        assert_eq!(r.rules[1].to_string(), "c 1:3 r");
        assert_eq!(r.rules[2].to_string(), "c 1:11 w");
        assert_eq!(r.rules.len(), 3 + default_rules().len() - 1);
        assert_eq!(DeviceRule::check_list(&r.rules), Ok(false));
        assert_eq!(oci_rules(&r.rules)[1].access, "r");

        c.privileged = true;
        let r = resolve(&c).unwrap();
        assert_eq!(r.rules, vec![DeviceRule::everything(true)]);
        assert!(
            r.nodes.iter().any(|n| n.path == "/dev/bt-null"),
            "--device nodes are created for --privileged too"
        );
        assert!(r
            .nodes
            .iter()
            .any(|n| n.path == "/dev/null" && n.minor == 3));
        assert!(!r
            .nodes
            .iter()
            .any(|n| n.path.starts_with("/dev/pts/") || n.path == "/dev/console"));

        let e = validate(&[parse_device("/etc/hostname").unwrap()], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--device /etc/hostname") && e.contains("not a device"),
            "{e}"
        );
        assert!(validate(&[parse_device("/nonexistent-bt").unwrap()], &[]).is_err());
        assert!(validate(&[], &["c 1:3 rwx".into()]).is_err());
    }
}
