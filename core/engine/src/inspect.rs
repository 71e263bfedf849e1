//! Containers as the Docker Engine API shows them: `inspect` (`ContainerInspectResponse`)
//! and the list (`ContainerSummary`) with Docker's filters. The CLI prints these and the
//! API server sends them; both come from here.

use std::collections::HashMap;

use crate::{
    container::{ContainerRecord, PortConfig, State},
    filters::{id_matches, Filters},
    health::Health,
    models as m, Engine, EngineError,
};

/// What `ps` / `GET /containers/json` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListContainersOptions {
    /// Stopped containers too (default: running ones only).
    pub all: bool,
    /// The `n` most recently created containers, whatever their state (`ps -n`, `-l`).
    pub limit: Option<usize>,
    /// Compute `SizeRw` (the container's own changes), which asks the storage driver.
    pub size: bool,
    pub filters: Filters,
}

/// The filters `ps` knows (Docker's, `is-task` always false here).
pub const CONTAINER_FILTERS: &[&str] = &[
    "id", "name", "label", "status", "exited", "ancestor", "before", "since", "network", "volume",
    "publish", "expose", "health", "is-task",
];

const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

/// Docker's zero time, for a container that never started or never finished.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn some_str(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn hash_map<'a>(it: impl IntoIterator<Item = (&'a String, &'a String)>) -> HashMap<String, String> {
    it.into_iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// `80/tcp`.
pub fn port_key(p: &PortConfig) -> String {
    format!("{}/{}", p.container_port, p.protocol)
}

/// `HostConfig.PortBindings`: what `-p` asked for (host port `""` when chosen at start).
pub fn port_bindings(ports: &[PortConfig]) -> m::PortMap {
    let mut map: m::PortMap = HashMap::new();
    for p in ports {
        let b = m::PortBinding {
            host_ip: Some(p.host_ip.clone()),
            host_port: Some(if p.host_port == 0 {
                String::new()
            } else {
                p.host_port.to_string()
            }),
        };
        map.entry(port_key(p))
            .or_insert(Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(b);
    }
    map
}

/// `RestartPolicy` from `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn restart_policy(s: &str) -> m::RestartPolicy {
    let (name, count) = s.split_once(':').unwrap_or((s, "0"));
    let name = match name {
        "always" => m::RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => m::RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => m::RestartPolicyNameEnum::ON_FAILURE,
        _ => m::RestartPolicyNameEnum::NO,
    };
    m::RestartPolicy {
        name: Some(name),
        maximum_retry_count: Some(count.parse().unwrap_or(0)),
    }
}

fn state_enum(s: State) -> m::ContainerStateStatusEnum {
    use m::ContainerStateStatusEnum as E;
    match s {
        State::Created => E::CREATED,
        State::Running => E::RUNNING,
        State::Paused => E::PAUSED,
        State::Restarting => E::RESTARTING,
        State::Exited => E::EXITED,
        State::Dead => E::DEAD,
        State::Removing => E::REMOVING,
    }
}

fn summary_state(s: State) -> m::ContainerSummaryStateEnum {
    use m::ContainerSummaryStateEnum as E;
    match s {
        State::Created => E::CREATED,
        State::Running => E::RUNNING,
        State::Paused => E::PAUSED,
        State::Restarting => E::RESTARTING,
        State::Exited => E::EXITED,
        State::Dead => E::DEAD,
        State::Removing => E::REMOVING,
    }
}

fn to_model<T: serde::de::DeserializeOwned>(v: &impl serde::Serialize) -> Option<T> {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Unix seconds of an RFC 3339 time (0 when it is not one).
pub(crate) fn unix_secs(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

impl Engine {
    /// The record of a container by ID, ID prefix or name (`NotFound` naming it otherwise).
    pub fn container(&self, what: &str) -> Result<ContainerRecord, EngineError> {
        self.db()?.resolve(what)
    }

    /// `ps`'s STATUS: Docker's wording, with the health while the container runs.
    pub fn status_text(&self, c: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> String {
        let s = c.status_line(now);
        match Health::load(&self.container_dir(&c.id)) {
            Some(h) if c.state == State::Running => format!("{s} {}", h.status.ps_suffix()),
            _ => s,
        }
    }

    /// The health recorded for a running container (`none` when it has no check).
    fn health_status(&self, c: &ContainerRecord) -> &'static str {
        match Health::load(&self.container_dir(&c.id)).filter(|_| c.state == State::Running) {
            Some(h) => match h.status {
                crate::health::HealthStatus::Starting => "starting",
                crate::health::HealthStatus::Healthy => "healthy",
                crate::health::HealthStatus::Unhealthy => "unhealthy",
            },
            None => "none",
        }
    }

    /// `docker inspect CONTAINER`.
    pub fn inspect_container(
        &self,
        what: &str,
    ) -> Result<m::ContainerInspectResponse, EngineError> {
        let c = self.container(what)?;
        Ok(self.container_inspect(&c))
    }

    /// The inspect document of a record.
    pub fn container_inspect(&self, c: &ContainerRecord) -> m::ContainerInspectResponse {
        let dir = self.container_dir(&c.id);
        let cfg = &c.config;
        let health = Health::load(&dir).and_then(|h| to_model::<m::Health>(&h));
        let time = |t: &str| some_str(t).or_else(|| Some(ZERO_TIME.into()));
        let state = m::ContainerState {
            status: Some(state_enum(c.state)),
            running: Some(c.state.is_live()),
            paused: Some(c.state == State::Paused),
            restarting: Some(c.state == State::Restarting),
            oom_killed: Some(c.oom_killed),
            dead: Some(c.state == State::Dead),
            pid: Some(if c.state.is_live() { c.pid as i64 } else { 0 }),
            exit_code: Some(c.exit_code as i64),
            error: Some(c.error.clone()),
            started_at: time(&c.started_at),
            finished_at: time(&c.finished_at),
            health,
        };
        let mut binds = Vec::new();
        let mut tmpfs = HashMap::new();
        let mut mounts = Vec::new();
        for mnt in &cfg.mounts {
            match mnt.kind.as_str() {
                "tmpfs" => {
                    tmpfs.insert(mnt.destination.clone(), mnt.options.clone());
                }
                kind => {
                    binds.push(format!(
                        "{}:{}{}",
                        mnt.source,
                        mnt.destination,
                        if mnt.read_only { ":ro" } else { "" }
                    ));
                    let volume = kind == "volume";
                    mounts.push(m::MountPoint {
                        typ: kind.parse().ok(),
                        name: volume.then(|| mnt.source.clone()),
                        source: Some(if volume {
                            self.volume_dir(&mnt.source).display().to_string()
                        } else {
                            mnt.source.clone()
                        }),
                        destination: Some(mnt.destination.clone()),
                        driver: volume.then(|| "local".into()),
                        mode: Some(if mnt.read_only {
                            "ro".into()
                        } else {
                            String::new()
                        }),
                        rw: Some(!mnt.read_only),
                        propagation: Some(if volume {
                            String::new()
                        } else {
                            "rprivate".into()
                        }),
                    });
                }
            }
        }
        for t in tmpfs.keys() {
            mounts.push(m::MountPoint {
                typ: Some(m::MountPointTypeEnum::TMPFS),
                source: Some(String::new()),
                destination: Some(t.clone()),
                mode: Some(String::new()),
                rw: Some(true),
                propagation: Some(String::new()),
                ..Default::default()
            });
        }
        let limits = &cfg.limits;
        let host_config = m::HostConfig {
            binds: Some(binds),
            network_mode: Some(cfg.network.clone()),
            port_bindings: Some(port_bindings(&cfg.ports)),
            restart_policy: Some(restart_policy(&cfg.restart)),
            auto_remove: Some(cfg.auto_remove),
            privileged: Some(cfg.privileged),
            publish_all_ports: Some(false),
            readonly_rootfs: Some(cfg.readonly_rootfs),
            cap_add: Some(cfg.cap_add.clone()),
            cap_drop: Some(cfg.cap_drop.clone()),
            security_opt: Some({
                let mut v = Vec::new();
                if cfg.no_new_privileges {
                    v.push("no-new-privileges".to_string());
                }
                match cfg.seccomp.as_deref() {
                    Some("unconfined") => v.push("seccomp=unconfined".into()),
                    Some(_) => v.push("seccomp=<profile>".into()),
                    None => {}
                }
                v
            }),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            init: Some(cfg.init),
            devices: Some(
                cfg.devices
                    .iter()
                    .map(|d| m::DeviceMapping {
                        path_on_host: Some(d.host_path.clone()),
                        path_in_container: Some(d.container_path.clone()),
                        cgroup_permissions: Some(d.permissions.clone()),
                    })
                    .collect(),
            ),
            device_cgroup_rules: Some(cfg.device_cgroup_rules.clone()),
            memory: Some(limits.memory.unwrap_or(0)),
            memory_swap: Some(limits.memory_swap.unwrap_or(0)),
            memory_reservation: Some(limits.memory_reservation.unwrap_or(0)),
            nano_cpus: Some(limits.cpu_quota.map(|q| q * 10_000).unwrap_or(0)),
            cpu_shares: Some(limits.cpu_shares.unwrap_or(0) as i64),
            cpu_period: Some(0),
            cpu_quota: Some(0),
            cpuset_cpus: Some(limits.cpuset_cpus.clone().unwrap_or_default()),
            cpuset_mems: Some(limits.cpuset_mems.clone().unwrap_or_default()),
            pids_limit: limits.pids,
            blkio_weight: Some(limits.blkio_weight.unwrap_or(0)),
            log_config: Some(m::HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::new()),
            }),
            ..Default::default()
        };
        let config = m::ContainerConfig {
            hostname: Some(cfg.hostname.clone()),
            domainname: Some(String::new()),
            user: Some(cfg.user.clone()),
            attach_stdin: Some(cfg.interactive),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            exposed_ports: (!cfg.exposed_ports.is_empty()).then(|| cfg.exposed_ports.clone()),
            tty: Some(cfg.tty),
            open_stdin: Some(cfg.interactive),
            stdin_once: Some(false),
            env: Some(cfg.env.clone()),
            cmd: (!cfg.cmd.is_empty()).then(|| cfg.cmd.clone()),
            healthcheck: cfg.healthcheck.as_ref().and_then(to_model),
            image: Some(c.image.clone()),
            volumes: None,
            working_dir: Some(cfg.cwd.clone()),
            entrypoint: (!cfg.entrypoint.is_empty()).then(|| cfg.entrypoint.clone()),
            on_build: None,
            labels: Some(hash_map(&cfg.labels)),
            stop_signal: some_str(&cfg.stop_signal),
            stop_timeout: cfg.stop_timeout.map(i64::from),
            ..Default::default()
        };
        m::ContainerInspectResponse {
            id: Some(c.id.clone()),
            created: Some(c.created.clone()),
            path: Some(cfg.args.first().cloned().unwrap_or_default()),
            args: Some(cfg.args.iter().skip(1).cloned().collect()),
            state: Some(state),
            image: Some(c.image_id.clone()),
            resolv_conf_path: Some(dir.join("resolv.conf").display().to_string()),
            hostname_path: Some(dir.join("hostname").display().to_string()),
            hosts_path: Some(dir.join("hosts").display().to_string()),
            log_path: Some(dir.join("container.log").display().to_string()),
            name: Some(format!("/{}", c.name)),
            restart_count: Some(c.restart_count),
            driver: Some(cfg.storage_driver.clone()),
            platform: Some("linux".into()),
            mount_label: Some(String::new()),
            process_label: Some(String::new()),
            app_armor_profile: Some(String::new()),
            exec_ids: None,
            host_config: Some(host_config),
            graph_driver: Some(m::DriverData {
                name: cfg.storage_driver.clone(),
                data: HashMap::new(),
            }),
            mounts: Some(mounts),
            config: Some(config),
            network_settings: Some(self.network_settings(c)),
            ..Default::default()
        }
    }

    /// `NetworkSettings`: the networks the container is attached to and its ports
    /// (exposed ports without a binding map to `null`, as in Docker).
    fn network_settings(&self, c: &ContainerRecord) -> m::NetworkSettings {
        let live = c.state.is_live();
        let mut ports: m::PortMap = HashMap::new();
        if live {
            for e in &c.config.exposed_ports {
                let key = if e.contains('/') {
                    e.clone()
                } else {
                    format!("{e}/tcp")
                };
                ports.insert(key, None);
            }
            for n in &c.network.networks {
                for p in &n.ports {
                    let b = m::PortBinding {
                        host_ip: Some(if p.host_ip.is_empty() {
                            "0.0.0.0".into()
                        } else {
                            p.host_ip.clone()
                        }),
                        host_port: Some(p.host_port.to_string()),
                    };
                    ports
                        .entry(port_key(p))
                        .or_insert(None)
                        .get_or_insert_with(Vec::new)
                        .push(b);
                }
            }
        }
        let mut networks = HashMap::new();
        let attached: Vec<_> = if live {
            c.network.networks.iter().collect()
        } else {
            Vec::new()
        };
        for n in &attached {
            networks.insert(
                n.network.clone(),
                m::EndpointSettings {
                    aliases: Some(c.config.aliases.clone()),
                    network_id: Some(self.network_id_of(&n.network)),
                    endpoint_id: Some(String::new()),
                    gateway: Some(n.gateway.clone()),
                    ip_address: Some(n.ip.clone()),
                    ip_prefix_len: Some(n.prefix_len as i64),
                    ipv6_gateway: Some(String::new()),
                    global_ipv6_address: Some(String::new()),
                    global_ipv6_prefix_len: Some(0),
                    mac_address: Some(n.mac.clone()),
                    dns_names: Some({
                        let mut d = vec![c.name.clone(), c.short_id().to_string()];
                        d.extend(c.config.aliases.iter().cloned());
                        d
                    }),
                    ..Default::default()
                },
            );
        }
        // A container that is not running is still "on" its network mode's network, with
        // empty addresses (as Docker shows a stopped container).
        if networks.is_empty()
            && !matches!(c.config.network.as_str(), "none" | "host")
            && !c.config.network.starts_with("container:")
        {
            networks.insert(
                c.config.network.clone(),
                m::EndpointSettings {
                    aliases: Some(c.config.aliases.clone()),
                    network_id: Some(self.network_id_of(&c.config.network)),
                    endpoint_id: Some(String::new()),
                    gateway: Some(String::new()),
                    ip_address: Some(String::new()),
                    ip_prefix_len: Some(0),
                    mac_address: Some(String::new()),
                    ..Default::default()
                },
            );
        }
        let first = attached.first();
        m::NetworkSettings {
            bridge: Some(String::new()),
            sandbox_id: Some(String::new()),
            sandbox_key: Some(if live && c.pid > 0 {
                format!("/proc/{}/ns/net", c.pid)
            } else {
                String::new()
            }),
            ports: Some(ports),
            endpoint_id: Some(String::new()),
            gateway: Some(first.map(|n| n.gateway.clone()).unwrap_or_default()),
            ip_address: Some(first.map(|n| n.ip.clone()).unwrap_or_default()),
            ip_prefix_len: Some(first.map(|n| n.prefix_len as i64).unwrap_or(0)),
            mac_address: Some(first.map(|n| n.mac.clone()).unwrap_or_default()),
            global_ipv6_address: Some(String::new()),
            global_ipv6_prefix_len: Some(0),
            ipv6_gateway: Some(String::new()),
            networks: Some(networks),
            ..Default::default()
        }
    }

    /// The summary `ps` and `GET /containers/json` show.
    pub fn container_summary(
        &self,
        c: &ContainerRecord,
        now: chrono::DateTime<chrono::Utc>,
        size: bool,
    ) -> m::ContainerSummary {
        let ports = c
            .network
            .networks
            .iter()
            .flat_map(|n| n.ports.iter())
            .map(|p| m::Port {
                ip: Some(if p.host_ip.is_empty() {
                    "0.0.0.0".into()
                } else {
                    p.host_ip.clone()
                }),
                private_port: p.container_port,
                public_port: Some(p.host_port),
                typ: Some(if p.protocol == "udp" {
                    m::PortTypeEnum::UDP
                } else {
                    m::PortTypeEnum::TCP
                }),
            })
            .collect();
        let inspect = self.network_settings(c);
        let size_rw = if size {
            self.plugins
                .storage()
                .ok()
                .and_then(|s| s.usage(&c.id).ok())
                .map(|u| u.bytes as i64)
        } else {
            None
        };
        m::ContainerSummary {
            id: Some(c.id.clone()),
            names: Some(vec![format!("/{}", c.name)]),
            image: Some(c.image.clone()),
            image_id: Some(c.image_id.clone()),
            command: Some(c.config.args.join(" ")),
            created: Some(unix_secs(&c.created)),
            ports: Some(ports),
            size_rw,
            labels: Some(hash_map(&c.config.labels)),
            state: Some(summary_state(c.state)),
            status: Some(self.status_text(c, now)),
            host_config: Some(m::ContainerSummaryHostConfig {
                network_mode: Some(c.config.network.clone()),
                ..Default::default()
            }),
            network_settings: Some(m::ContainerSummaryNetworkSettings {
                networks: inspect.networks,
            }),
            mounts: self.container_inspect_mounts(c),
            ..Default::default()
        }
    }

    fn container_inspect_mounts(&self, c: &ContainerRecord) -> Option<Vec<m::MountPoint>> {
        Some(
            c.config
                .mounts
                .iter()
                .map(|mnt| {
                    let volume = mnt.kind == "volume";
                    m::MountPoint {
                        typ: mnt.kind.parse().ok(),
                        name: volume.then(|| mnt.source.clone()),
                        source: Some(if volume {
                            self.volume_dir(&mnt.source).display().to_string()
                        } else {
                            mnt.source.clone()
                        }),
                        destination: Some(mnt.destination.clone()),
                        driver: volume.then(|| "local".into()),
                        mode: Some(if mnt.read_only {
                            "ro".into()
                        } else {
                            String::new()
                        }),
                        rw: Some(!mnt.read_only),
                        propagation: Some(String::new()),
                    }
                })
                .collect(),
        )
    }

    /// `docker ps` / `GET /containers/json`, newest first.
    pub fn list_containers(
        &self,
        o: &ListContainersOptions,
    ) -> Result<Vec<m::ContainerSummary>, EngineError> {
        let now = chrono::Utc::now();
        Ok(self
            .list_container_records(o)?
            .iter()
            .map(|c| self.container_summary(c, now, o.size))
            .collect())
    }

    /// The records [`Engine::list_containers`] would show, newest first.
    pub fn list_container_records(
        &self,
        o: &ListContainersOptions,
    ) -> Result<Vec<ContainerRecord>, EngineError> {
        let f = &o.filters;
        f.validate(CONTAINER_FILTERS)?;
        for s in f.get("status") {
            if !STATUSES.contains(&s.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "invalid filter 'status={s}': use one of {}",
                    STATUSES.join(", ")
                )));
            }
        }
        for h in f.get("health") {
            if !["starting", "healthy", "unhealthy", "none"].contains(&h.as_str()) {
                return Err(EngineError::Invalid(format!(
                    "invalid filter 'health={h}': use starting, healthy, unhealthy or none"
                )));
            }
        }
        let mut exited = Vec::new();
        for e in f.get("exited") {
            exited.push(e.parse::<i32>().map_err(|_| {
                EngineError::Invalid(format!("invalid filter 'exited={e}': not an exit code"))
            })?);
        }
        let all = self.db()?.list()?;
        // before/since name a container; the list is ordered by creation time.
        let created_of = |key: &str| -> Result<Option<String>, EngineError> {
            match f.get(key).first() {
                None => Ok(None),
                Some(w) => {
                    let c = all
                        .iter()
                        .find(|c| c.id == *w || c.name == w.trim_start_matches('/'))
                        .or_else(|| all.iter().find(|c| id_matches(&c.id, w)));
                    match c {
                        Some(c) => Ok(Some(c.created.clone())),
                        None => Err(EngineError::NotFound(format!(
                            "invalid filter '{key}={w}': no such container"
                        ))),
                    }
                }
            }
        };
        let before = created_of("before")?;
        let since = created_of("since")?;
        let ancestors = self.ancestor_ids(f.get("ancestor"));
        let networks = f.get("network");
        // A `status` filter lists stopped containers without `all` (Docker's rule).
        let want_all = o.all || o.limit.is_some() || f.contains("status");
        let mut out = Vec::new();
        for c in all {
            if !want_all && !c.state.is_live() {
                continue;
            }
            if f.bool_value("is-task")? == Some(true) {
                continue;
            }
            if let Some(b) = &before {
                if unix_nanos(&c.created) >= unix_nanos(b) {
                    continue;
                }
            }
            if let Some(s) = &since {
                if unix_nanos(&c.created) <= unix_nanos(s) {
                    continue;
                }
            }
            let cfg = &c.config;
            let keep = f.any_or_unset("id", |v| id_matches(&c.id, v))
                && f.any_or_unset("name", |v| c.name.contains(v.trim_start_matches('/')))
                && f.labels_match(|k| cfg.labels.get(k).map(String::as_str))
                && f.any_or_unset("status", |v| v == c.state.as_str())
                && (exited.is_empty()
                    || (c.state == State::Exited && exited.contains(&c.exit_code)))
                && f.any_or_unset("ancestor", |v| {
                    c.image == v || id_matches(&c.image_id, v) || ancestors.contains(&c.image_id)
                })
                && (networks.is_empty()
                    || networks.iter().any(|n| {
                        cfg.network == *n
                            || c.network.networks.iter().any(|a| a.network == *n)
                            || id_matches(&self.network_id_of(&cfg.network), n)
                    }))
                && f.any_or_unset("volume", |v| {
                    cfg.mounts
                        .iter()
                        .any(|mnt| mnt.source == v || mnt.destination == v)
                })
                && f.any_or_unset("publish", |v| {
                    port_filter(
                        v,
                        cfg.ports
                            .iter()
                            .map(|p| (p.container_port, p.protocol.as_str())),
                    )
                })
                && f.any_or_unset("expose", |v| {
                    port_filter(
                        v,
                        cfg.exposed_ports
                            .iter()
                            .filter_map(|e| {
                                let (p, proto) = e.split_once('/').unwrap_or((e, "tcp"));
                                Some((p.parse().ok()?, proto))
                            })
                            .chain(
                                cfg.ports
                                    .iter()
                                    .map(|p| (p.container_port, p.protocol.as_str())),
                            ),
                    )
                })
                && f.any_or_unset("health", |v| v == self.health_status(&c));
            if keep {
                out.push(c);
            }
        }
        if let Some(n) = o.limit {
            out.truncate(n);
        }
        Ok(out)
    }

    /// IDs of the images `ancestor=` values name (unknown names match by name only).
    fn ancestor_ids(&self, names: &[String]) -> Vec<String> {
        if names.is_empty() {
            return Vec::new();
        }
        let Ok(store) = self.images() else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|n| store.resolve(n).ok().map(|i| i.id))
            .collect()
    }
}

/// The kinds of object `inspect` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectKind {
    Container,
    Image,
    Network,
    Volume,
}

impl std::str::FromStr for ObjectKind {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<ObjectKind, EngineError> {
        Ok(match s {
            "container" => ObjectKind::Container,
            "image" => ObjectKind::Image,
            "network" => ObjectKind::Network,
            "volume" => ObjectKind::Volume,
            other => {
                return Err(EngineError::Invalid(format!(
                    "unknown type {other:?}: use container, image, network or volume"
                )))
            }
        })
    }
}

/// What `inspect` found: serialised as the object itself (Docker's shapes).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Inspected {
    Container(Box<m::ContainerInspectResponse>),
    Image(Box<m::ImageInspect>),
    Network(Box<m::Network>),
    Volume(Box<m::Volume>),
}

/// True for "there is no such object" (of the kind asked), as opposed to a failure.
fn is_not_found(e: &EngineError) -> bool {
    match e {
        EngineError::NotFound(_) => true,
        EngineError::Image(b) => matches!(
            **b,
            berth_image::ImageError::NotFound(_) | berth_image::ImageError::InvalidReference { .. }
        ),
        _ => false,
    }
}

impl Engine {
    /// `docker inspect [--type KIND] NAME`: the first of container, image, network and
    /// volume that has this name (or ID), as Docker looks them up.
    pub fn inspect_object(
        &self,
        what: &str,
        kind: Option<ObjectKind>,
    ) -> Result<Inspected, EngineError> {
        let kinds = match kind {
            Some(k) => vec![k],
            None => vec![
                ObjectKind::Container,
                ObjectKind::Image,
                ObjectKind::Network,
                ObjectKind::Volume,
            ],
        };
        let mut failure = None;
        for k in &kinds {
            let r = match k {
                ObjectKind::Container => self
                    .inspect_container(what)
                    .map(|x| Inspected::Container(Box::new(x))),
                ObjectKind::Image => self
                    .inspect_image(what)
                    .map(|x| Inspected::Image(Box::new(x))),
                ObjectKind::Network => self
                    .inspect_network(what)
                    .map(|x| Inspected::Network(Box::new(x))),
                ObjectKind::Volume => self
                    .inspect_volume(what)
                    .map(|x| Inspected::Volume(Box::new(x))),
            };
            match r {
                Ok(x) => return Ok(x),
                Err(e) if kind.is_some() => return Err(e),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
        }
        Err(failure.unwrap_or_else(|| EngineError::NotFound(format!("no such object: {what}"))))
    }
}

/// Nanoseconds of an RFC 3339 time, to order containers created in the same second.
fn unix_nanos(t: &str) -> i128 {
    chrono::DateTime::parse_from_rfc3339(t)
        .ok()
        .and_then(|t| t.timestamp_nanos_opt())
        .map(i128::from)
        .unwrap_or(0)
}

/// `publish=`/`expose=` values: `PORT`, `PORT/PROTO`, `FIRST-LAST[/PROTO]`.
pub(crate) fn port_filter<'a>(want: &str, ports: impl Iterator<Item = (u16, &'a str)>) -> bool {
    let (range, proto) = want.split_once('/').unwrap_or((want, "tcp"));
    let (lo, hi) = match range.split_once('-') {
        Some((a, b)) => (a.parse::<u16>(), b.parse::<u16>()),
        None => (range.parse::<u16>(), range.parse::<u16>()),
    };
    let (Ok(lo), Ok(hi)) = (lo, hi) else {
        return false;
    };
    let mut ports = ports;
    ports.any(|(p, pr)| p >= lo && p <= hi && pr == proto)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(host: u16, ctr: u16, proto: &str) -> PortConfig {
        PortConfig {
            host_ip: String::new(),
            host_port: host,
            container_port: ctr,
            protocol: proto.into(),
        }
    }

    #[test]
    fn port_bindings_are_dockers_map() {
        let map = port_bindings(&[
            port(8080, 80, "tcp"),
            port(0, 53, "udp"),
            port(8081, 80, "tcp"),
        ]);
        let v = serde_json::to_value(&map).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8081"}],
                "53/udp": [{"HostIp": "", "HostPort": ""}],
            })
        );
    }

    #[test]
    fn restart_policies() {
        let p = serde_json::to_value(restart_policy("on-failure:3")).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let p = serde_json::to_value(restart_policy("")).unwrap();
        assert_eq!(p, serde_json::json!({"Name": "no", "MaximumRetryCount": 0}));
    }

    #[test]
    fn publish_and_expose_filters() {
        let ports = [(80u16, "tcp"), (53, "udp")];
        assert!(port_filter("80", ports.iter().copied()));
        assert!(port_filter("80/tcp", ports.iter().copied()));
        assert!(!port_filter("80/udp", ports.iter().copied()));
        assert!(port_filter("50-60/udp", ports.iter().copied()));
        assert!(!port_filter("x", ports.iter().copied()));
    }
}
