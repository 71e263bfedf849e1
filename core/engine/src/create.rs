//! `create`: from an image and flags to a container record with a prepared snapshot.
//! On any failure nothing is left: no record, no snapshot, no directory.

use std::{collections::BTreeMap, path::PathBuf};

use berth_image::Image;

use crate::{
    container::{
        new_id, random_name, ContainerConfig, ContainerRecord, LimitsConfig, MountConfig,
        NetworkState, PortConfig, State,
    },
    Engine, EngineError,
};

/// What the user asked for (`run`/`create` flags), before merging with the image.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub image: String,
    pub name: Option<String>,
    /// `--entrypoint` (`Some(vec![])` for `--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub mounts: Vec<MountConfig>,
    pub network: Option<String>,
    pub aliases: Vec<String>,
    pub ports: Vec<PortConfig>,
    pub publish_all: bool,
    pub readonly_rootfs: bool,
    pub privileged: bool,
    /// `--device` (see [`crate::devices::parse_device`]).
    pub devices: Vec<crate::devices::DeviceMapping>,
    /// `--device-cgroup-rule` values, checked by `create`.
    pub device_cgroup_rules: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    /// See [`ContainerConfig::seccomp`](crate::container::ContainerConfig::seccomp).
    pub seccomp: Option<String>,
    pub init: bool,
    /// `--health-cmd`, `--health-interval`, … `--no-healthcheck`.
    pub health: crate::health::HealthOptions,
    /// `--pull always`: check the registry even when the image is local.
    pub pull_always: bool,
    /// `-q`: no pull progress.
    pub quiet_pull: bool,
    pub limits: LimitsConfig,
    pub restart: Option<String>,
    pub auto_remove: bool,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<u32>,
    pub labels: BTreeMap<String, String>,
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// Sets `KEY=VALUE` in an env list, replacing an earlier `KEY`.
pub fn set_env(env: &mut Vec<String>, kv: &str) {
    let key = kv.split('=').next().unwrap_or(kv);
    env.retain(|e| e.split('=').next() != Some(key));
    env.push(kv.to_string());
}

/// Merges the image's config with the flags, as Docker does.
pub fn merge_config(image: &Image, o: &CreateOptions) -> Result<ContainerConfig, EngineError> {
    let ic = image.config.config().clone().unwrap_or_default();
    let entrypoint = match &o.entrypoint {
        Some(e) => e.clone(),
        None => ic.entrypoint().clone().unwrap_or_default(),
    };
    let cmd = if !o.cmd.is_empty() {
        o.cmd.clone()
    } else if o.entrypoint.is_some() {
        Vec::new()
    } else {
        ic.cmd().clone().unwrap_or_default()
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    if args.is_empty() {
        return Err(EngineError::Invalid(format!(
            "no command specified: image {} has no CMD or ENTRYPOINT; give a command after the image name",
            o.image
        )));
    }
    let mut env = ic.env().clone().unwrap_or_default();
    for e in &o.env {
        set_env(&mut env, e);
    }
    let exposed: Vec<String> = ic
        .exposed_ports()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut ports = o.ports.clone();
    if o.publish_all {
        for e in &exposed {
            let (p, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            if let Ok(p) = p.parse::<u16>() {
                if !ports
                    .iter()
                    .any(|x| x.container_port == p && x.protocol == proto)
                {
                    ports.push(PortConfig {
                        host_ip: String::new(),
                        host_port: 0,
                        container_port: p,
                        protocol: proto.to_string(),
                    });
                }
            }
        }
    }
    let mut mounts = o.mounts.clone();
    // Anonymous volumes for the image's VOLUME entries not covered by a mount.
    for v in ic.volumes().clone().unwrap_or_default() {
        if !mounts.iter().any(|m| m.destination == v) {
            mounts.push(MountConfig {
                kind: "volume".into(),
                source: String::new(),
                destination: v,
                read_only: false,
                options: String::new(),
            });
        }
    }
    let mut labels: BTreeMap<String, String> = ic
        .labels()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    labels.extend(o.labels.clone());
    if let Some(u) = &o.user {
        berth_runtime::validate_user(u).map_err(|e| match e {
            berth_runtime::RuntimeError::User { reason, .. } => {
                EngineError::Invalid(format!("invalid -u/--user value {u:?}: {reason}"))
            }
            other => EngineError::Invalid(format!("invalid -u/--user value {u:?}: {other}")),
        })?;
    }
    if let Some(sig) = &o.stop_signal {
        crate::parse::parse_signal_number("--stop-signal", sig)?;
    }
    let network = o.network.clone().unwrap_or_else(|| "bridge".into());
    if !ports.is_empty() && matches!(network.as_str(), "none" | "host") {
        return Err(EngineError::Invalid(format!(
            "-p/--publish cannot be used with --network {network}"
        )));
    }
    Ok(ContainerConfig {
        hostname: o.hostname.clone().unwrap_or_default(),
        args,
        env,
        cwd: o
            .workdir
            .clone()
            .or_else(|| ic.working_dir().clone().filter(|w| !w.is_empty()))
            .unwrap_or_else(|| "/".into()),
        user: o
            .user
            .clone()
            .or_else(|| ic.user().clone())
            .unwrap_or_default(),
        tty: o.tty,
        interactive: o.interactive,
        mounts,
        network,
        aliases: o.aliases.clone(),
        ports,
        readonly_rootfs: o.readonly_rootfs,
        privileged: o.privileged,
        devices: o.devices.clone(),
        device_cgroup_rules: o.device_cgroup_rules.clone(),
        cap_add: o.cap_add.clone(),
        cap_drop: o.cap_drop.clone(),
        no_new_privileges: o.no_new_privileges,
        seccomp: o.seccomp.clone(),
        init: o.init,
        healthcheck: None,
        limits: o.limits.clone(),
        restart: o.restart.clone().unwrap_or_else(|| "no".into()),
        auto_remove: o.auto_remove,
        stop_signal: o
            .stop_signal
            .clone()
            .or_else(|| ic.stop_signal().clone())
            .unwrap_or_else(|| "SIGTERM".into()),
        stop_timeout: o.stop_timeout,
        labels,
        exposed_ports: exposed,
        entrypoint,
        cmd,
        storage_driver: String::new(),
    })
}

/// Docker's warning for an image built for another platform (it runs only through
/// binfmt emulation, if at all); `None` when the image fits this host. `run`/`create`
/// take no `--platform`, so no specific platform was ever requested.
pub fn platform_warning(image: &Image) -> Option<String> {
    let c = &image.config;
    let (os, arch) = (c.os().to_string(), c.architecture().to_string());
    if os.is_empty() || arch.is_empty() {
        return None;
    }
    let wanted = berth_distribution::Platform::new(&os, &arch, c.variant().as_deref());
    if berth_distribution::Platform::host()
        .match_score(&wanted)
        .is_some()
    {
        return None;
    }
    Some(format!(
        "The requested image's platform ({wanted}) does not match the detected host platform ({}) and no specific platform was requested",
        crate::host::platform_text()
    ))
}

impl Engine {
    /// Directory of a container's bundle (config.json, rootfs mount point, log, etc files).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.config.root.join("containers").join(id)
    }

    /// `berth create`: record + snapshot; the container is in state `created`.
    pub fn create(&self, o: &CreateOptions) -> Result<ContainerRecord, EngineError> {
        if let Some(n) = &o.name {
            if !valid_name(n) {
                return Err(EngineError::Invalid(format!(
                    "invalid container name {n:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )));
            }
        }
        if o.auto_remove && o.restart.as_deref().is_some_and(|r| r != "no") {
            return Err(EngineError::Invalid(
                "conflicting options: --restart and --rm".into(),
            ));
        }
        crate::devices::validate(&o.devices, &o.device_cgroup_rules)?;
        let image = self.resolve_or_pull(&o.image, o.pull_always, o.quiet_pull)?;
        let mut config = merge_config(&image, o)?;
        if let Some(w) = platform_warning(&image) {
            eprintln!("WARNING: {w}");
        }
        config.healthcheck =
            crate::health::merge(self.images()?.config_extras(&image)?.healthcheck, &o.health)?;
        if let Some(net) = config.network.strip_prefix("container:") {
            let other = self.db()?.resolve(net)?;
            if !other.state.is_live() {
                return Err(EngineError::Invalid(format!(
                    "cannot join the network of container {net}: it is not running"
                )));
            }
        }
        tracing::debug!(image = %image.short_id(), "image resolved");
        // Unpacked layers must not be collected between unpacking and stacking on them.
        let _gc = self.gc_shared()?;
        let top = self.ensure_layers(&image)?;
        let storage = self.plugins.storage()?;
        config.storage_driver = self.plugins.active_name(berth_abi::PluginKind::Storage);

        let id = new_id();
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let mut rec = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            image: o.image.clone(),
            image_id: image.id.clone(),
            created: now,
            state: State::Created,
            pid: 0,
            monitor_pid: 0,
            exit_code: 0,
            oom_killed: false,
            started_at: String::new(),
            finished_at: String::new(),
            restart_count: 0,
            error: String::new(),
            config,
            network: NetworkState::default(),
        };
        // Reserve the name first: the UNIQUE constraint arbitrates between processes.
        match &o.name {
            Some(n) => {
                rec.name = n.clone();
                self.db()?.insert(&rec)?;
            }
            None => {
                let mut tries = 0;
                loop {
                    rec.name = random_name();
                    if tries > 5 {
                        rec.name = format!("{}_{}", rec.name, &id[..6]);
                    }
                    match self.db()?.insert(&rec) {
                        Ok(()) => break,
                        Err(EngineError::Conflict(_)) if tries < 10 => tries += 1,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        let undo = |engine: &Engine| {
            let _ = storage.remove(&id);
            let _ = std::fs::remove_dir_all(engine.container_dir(&id));
            if let Ok(db) = engine.db() {
                let _ = db.delete(&id);
            }
        };
        let result = (|| -> Result<(), EngineError> {
            let dir = self.container_dir(&id);
            std::fs::create_dir_all(dir.join("rootfs"))
                .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
            storage.prepare(&id, top.as_deref(), false).map_err(|e| {
                EngineError::plugin(
                    format!(
                        "preparing the container's filesystem ({})",
                        config_driver(&rec)
                    ),
                    e,
                )
            })?;
            self.create_volumes(&rec)?;
            Ok(())
        })();
        if let Err(e) = result {
            undo(self);
            return Err(e);
        }
        tracing::debug!(container = %rec.short_id(), "created");
        self.emit_container(&rec, "create", &[]);
        Ok(rec)
    }

    /// Named volumes are created on first use; anonymous ones get a random name.
    fn create_volumes(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        let now = chrono::Utc::now().to_rfc3339();
        let mut config = rec.config.clone();
        let mut changed = false;
        for m in config.mounts.iter_mut().filter(|m| m.kind == "volume") {
            let anonymous = m.source.is_empty();
            if anonymous {
                m.source = new_id();
                changed = true;
            }
            let dir = self.volume_dir(&m.source);
            std::fs::create_dir_all(&dir)
                .map_err(|e| EngineError::io(format!("creating volume {}", dir.display()), e))?;
            if self.db()?.volume_insert(&m.source, &now, anonymous)? {
                self.emit_named(
                    "volume",
                    "create",
                    &m.source,
                    &m.source,
                    &[("driver", "local".into())],
                );
            }
        }
        if changed {
            self.db()?.update_config(&rec.id, &config)?;
        }
        Ok(())
    }

    /// Data directory of a volume.
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.config.root.join("volumes").join(name).join("_data")
    }
}

fn config_driver(rec: &ContainerRecord) -> String {
    format!("storage driver {}", rec.config.storage_driver)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_override_replaces_key() {
        let mut env = vec!["PATH=/bin".to_string(), "A=1".to_string()];
        set_env(&mut env, "A=2");
        set_env(&mut env, "B=3");
        assert_eq!(env, vec!["PATH=/bin", "A=2", "B=3"]);
    }

    #[test]
    fn names() {
        assert!(valid_name("site"));
        assert!(valid_name("my-site_1.x"));
        assert!(!valid_name("-bad"));
        assert!(!valid_name("b@d"));
        assert!(!valid_name(""));
    }
}
