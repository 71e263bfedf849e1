//! # A template for a berth network backend
//!
//! A small but real backend: **isolated** networks. A container attached to one gets no
//! interface and no route (only its own loopback), like `--network none`, but the network
//! has a name, lists its containers and refuses removal while they are attached. Replace
//! `attach`/`detach` with your plumbing (create the interface in `req.netns_path`, allocate
//! an address under a lock shared by every `berth` process) and keep the contract:
//!
//! * `attach` again for an attached container returns the same result;
//! * `detach` succeeds when the container, its namespace or the network is already gone;
//! * on error nothing of the attachment is left.
//!
//! State: one directory per network under the plugin's state directory, one empty file per
//! attached container (created atomically, so concurrent `berth` processes are safe).

use std::{fs, path::PathBuf, time::UNIX_EPOCH};

use berth_plugin_sdk::{
    AttachRequest, AttachResult, DetachRequest, NetworkBackend, NetworkInfo, NetworkSpec,
    PluginContext, PluginError, PluginResult,
};

pub struct Isolated {
    dir: PathBuf,
}

/// Names become directory names: keep them plain.
fn check_name(what: &str, name: &str) -> PluginResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(PluginError::invalid(format!(
            "invalid {what} {name:?}: use letters, digits, '-', '_' and '.'"
        )))
    }
}

impl Isolated {
    /// The constructor berth calls with the plugin's context.
    pub fn new(ctx: &PluginContext) -> PluginResult<Self> {
        let dir = PathBuf::from(ctx.state_dir()).join("networks");
        fs::create_dir_all(&dir).map_err(|e| PluginError::io(dir.display(), e))?;
        Ok(Isolated { dir })
    }

    fn net_dir(&self, name: &str) -> PluginResult<PathBuf> {
        check_name("network name", name)?;
        let d = self.dir.join(name);
        if d.is_dir() {
            Ok(d)
        } else {
            Err(PluginError::not_found(format!("no network {name:?}")))
        }
    }

    fn info(&self, name: &str) -> PluginResult<NetworkInfo> {
        let d = self.net_dir(name)?;
        let created = fs::metadata(&d)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        let mut containers: Vec<String> = fs::read_dir(&d)
            .map_err(|e| PluginError::io(d.display(), e))?
            .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
            .collect();
        containers.sort();
        Ok(NetworkInfo {
            name: name.to_string(),
            id: name.to_string(),
            internal: true,
            containers,
            created,
            ..Default::default()
        })
    }
}

impl NetworkBackend for Isolated {
    fn create_network(&self, spec: &NetworkSpec) -> PluginResult<NetworkInfo> {
        check_name("network name", &spec.name)?;
        if spec.subnet.is_some() || spec.gateway.is_some() {
            return Err(PluginError::invalid(
                "isolated networks have no addresses: drop --subnet/--gateway",
            ));
        }
        let d = self.dir.join(&spec.name);
        match fs::create_dir(&d) {
            Ok(()) => self.info(&spec.name),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(
                PluginError::already_exists(format!("network {:?} exists", spec.name)),
            ),
            Err(e) => Err(PluginError::io(d.display(), e)),
        }
    }

    fn remove_network(&self, name: &str) -> PluginResult<()> {
        let info = self.info(name)?;
        if !info.containers.is_empty() {
            return Err(PluginError::busy(format!(
                "network {name:?} has containers attached: {}",
                info.containers.join(", ")
            )));
        }
        let d = self.dir.join(name);
        fs::remove_dir(&d).map_err(|e| PluginError::io(d.display(), e))
    }

    fn list_networks(&self) -> PluginResult<Vec<NetworkInfo>> {
        let mut names: Vec<String> = fs::read_dir(&self.dir)
            .map_err(|e| PluginError::io(self.dir.display(), e))?
            .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
            .collect();
        names.sort();
        names.iter().map(|n| self.info(n)).collect()
    }

    fn inspect_network(&self, name: &str) -> PluginResult<NetworkInfo> {
        self.info(name)
    }

    fn attach(&self, req: &AttachRequest) -> PluginResult<AttachResult> {
        check_name("container id", &req.container_id)?;
        if !req.ports.is_empty() {
            return Err(PluginError::unsupported(
                "isolated networks cannot publish ports",
            ));
        }
        let f = self.net_dir(&req.network)?.join(&req.container_id);
        // Already attached: the same (empty) result.
        fs::write(&f, "").map_err(|e| PluginError::io(f.display(), e))?;
        Ok(AttachResult::default())
    }

    fn detach(&self, req: &DetachRequest) -> PluginResult<()> {
        check_name("container id", &req.container_id)?;
        let f = self.dir.join(&req.network).join(&req.container_id);
        match fs::remove_file(&f) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PluginError::io(f.display(), e)),
        }
    }

    fn check(&self, req: &DetachRequest) -> PluginResult<()> {
        let f = self.net_dir(&req.network)?.join(&req.container_id);
        if f.exists() {
            Ok(())
        } else {
            Err(PluginError::not_found(format!(
                "container {} is not attached to {}",
                req.container_id, req.network
            )))
        }
    }
}

berth_plugin_sdk::export_plugin! {
    kind: network,
    name: "isolated",
    description: "template network backend: named networks without connectivity",
    constructor: Isolated::new,
}
