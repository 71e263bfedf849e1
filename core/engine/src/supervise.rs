//! Starting and supervising a container: the role conmon plays for podman.
//!
//! The supervisor is either the `berth run` process itself (foreground) or the container's
//! monitor (`berth run -d`, `berth start`, `run -t`, `start -a`: the `berth-monitor ID`
//! program, detached with setsid, which also serves the attach socket, see
//! [`crate::attach`]). It
//! mounts the snapshot, creates the cgroup, starts the process through berth-runtime,
//! attaches the network while the process waits at its sync point, then owns the
//! container's stdio (writing the JSON log), reaps the process, records the exit, cleans up
//! (network, cgroup, mount) and honours `--rm` and `--restart`.

use std::{
    os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    sync::atomic::{AtomicBool, Ordering},
};

use berth_abi::{AttachRequest, DetachRequest, ErrorKind, PortMapping, Protocol};
use nix::{
    poll::{poll, PollFd, PollFlags, PollTimeout},
    sys::signal::{SigSet, Signal},
};

use crate::{
    attach::{AttachServer, StdinSink},
    container::{AttachedNetwork, ContainerRecord, NetworkState, PortConfig},
    health,
    logs::LogWriter,
    rt, Engine, EngineError,
};

/// How the container's stdio is wired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// `run` in the foreground: stream output to our stdout/stderr (and the log); with
    /// `interactive`, our stdin is the container's.
    Foreground,
    /// A detached monitor: output to the log and to the clients of the attach socket.
    Detached,
    /// A detached monitor whose first start waits (a while) for an attach client, so a
    /// `start -a` sees all of a short-lived process's output.
    AwaitAttach,
}

/// What the supervisor reports to whoever started it (the monitor's ready pipe).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// The attach socket listens and waits for its first client (`IoMode::AwaitAttach`).
    Listening,
    /// The process runs.
    Started,
    /// It could not start, and why.
    Failed(String),
}

/// How long an `AwaitAttach` monitor waits for the client that asked for it.
const ATTACH_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The outcome of one start.
#[derive(Debug, Clone)]
pub struct ExitInfo {
    /// Docker's exit code (128+N for signal N, 126/127 for exec failures).
    pub code: i32,
    pub oom_killed: bool,
    /// Why the process could not start, if it did not.
    pub error: Option<String>,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// Marker written by `stop`/`kill` so the restart policy knows the user stopped it.
pub fn stopped_marker(dir: &Path) -> PathBuf {
    dir.join("stopped-by-user")
}

/// What the supervisor does after an exit.
enum Step {
    Done(ExitInfo),
    Restart(ExitInfo),
}

/// Everything set up for one start that must be undone after it.
struct Setup {
    rootfs: PathBuf,
    cgroup: bool,
    networks: Vec<AttachedNetwork>,
}

impl Engine {
    /// Starts `rec` and supervises it until it exits (and, in detached mode, until the
    /// restart policy gives up). `ready` is told once the process runs (or failed to).
    pub fn supervise(
        &self,
        rec: &ContainerRecord,
        mode: IoMode,
        mut ready: Option<&mut dyn FnMut(Ready)>,
    ) -> Result<ExitInfo, EngineError> {
        let dir = self.container_dir(&rec.id);
        let _ = std::fs::remove_file(stopped_marker(&dir));
        let mut delay_ms = 100u64;
        let mut first = true;
        loop {
            let rec = self.db()?.get(&rec.id)?.ok_or_else(|| {
                EngineError::NotFound(format!("container {} disappeared", rec.id))
            })?;
            // A monitor owns the stdio: attach clients reach it through the socket. They
            // are told the exit code once the exit is recorded (and a `--rm` container
            // removed), so a client that returns sees the final state.
            let mut server = match mode {
                IoMode::Foreground => None,
                _ => match AttachServer::bind(&dir) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        tracing::warn!(container = %rec.name, "no attach socket: {e}");
                        None
                    }
                },
            };
            if let (true, IoMode::AwaitAttach, Some(s)) = (first, mode, server.as_mut()) {
                if let Some(f) = ready.as_mut() {
                    f(Ready::Listening);
                }
                s.wait_first(ATTACH_WAIT, &mut StdinSink::None);
            }
            first = false;
            let outcome = self.run_once(&rec, mode, &mut ready, server.as_mut());
            let step = self.after_exit(&rec, mode, outcome, &dir);
            if let Some(s) = server.as_mut() {
                s.finish(match &step {
                    Ok(Step::Done(i)) | Ok(Step::Restart(i)) => i.code,
                    Err(_) => 125,
                });
            }
            drop(server);
            let info = match step? {
                Step::Done(info) => return Ok(info),
                Step::Restart(info) => info,
            };
            std::thread::sleep(std::time::Duration::from_millis(delay_ms));
            delay_ms = (delay_ms * 2).min(10_000);
            if stopped_marker(&dir).exists() {
                // Stopped during the back-off: it stays exited with its last code.
                self.db()?
                    .set_exited(&rec.id, info.code, info.oom_killed, &now(), "")?;
                return Ok(info);
            }
        }
    }

    /// Records an exit (or a failed start), and applies `--rm` and the restart policy.
    fn after_exit(
        &self,
        rec: &ContainerRecord,
        mode: IoMode,
        outcome: Result<ExitInfo, EngineError>,
        dir: &Path,
    ) -> Result<Step, EngineError> {
        let info = match outcome {
            Ok(i) => i,
            Err(e) => {
                // A `--rm` container is removed even when recording the failure
                // itself fails (a full disk): a failed removal stays `removing`, which
                // the next command finishes.
                let recorded = self
                    .db()?
                    .set_exited(&rec.id, 125, false, &now(), &e.to_string());
                if rec.config.auto_remove {
                    if let Err(re) = self.remove_container(&rec.id, true, true) {
                        tracing::warn!(container = %rec.name, "removing after a failed start: {re}");
                    }
                } else if let Err(de) = recorded {
                    tracing::warn!(container = %rec.name, "recording a failed start: {de}");
                }
                return Err(e);
            }
        };
        self.db()?.set_exited(
            &rec.id,
            info.code,
            info.oom_killed,
            &now(),
            info.error.as_deref().unwrap_or(""),
        )?;
        if info.oom_killed {
            self.emit_container(rec, "oom", &[]);
        }
        self.emit_container(rec, "die", &[("exitCode", info.code.to_string())]);
        if let Err(e) = self.refresh_peer_hosts(std::slice::from_ref(&rec.config.network), None) {
            tracing::warn!("updating the hosts files of {}'s peers: {e}", rec.name);
        }
        if info.error.is_some() || mode == IoMode::Foreground {
            if rec.config.auto_remove {
                crate::debris::test_pause("supervise-exited");
                self.remove_container(&rec.id, true, true)?;
            }
            return Ok(Step::Done(info));
        }
        let stopped = stopped_marker(dir).exists();
        let policy = rec.config.restart.as_str();
        let restart = match policy.split_once(':').map(|(p, _)| p).unwrap_or(policy) {
            "always" => !stopped,
            "unless-stopped" => !stopped,
            "on-failure" => {
                let max: i64 = policy
                    .split_once(':')
                    .and_then(|(_, n)| n.parse().ok())
                    .unwrap_or(i64::MAX);
                !stopped && info.code != 0 && rec.restart_count < max
            }
            _ => false,
        };
        if !restart {
            if rec.config.auto_remove {
                self.remove_container(&rec.id, true, true)?;
            }
            return Ok(Step::Done(info));
        }
        self.db()?
            .set_restarting(&rec.id, std::process::id() as i32)?;
        self.db()?.bump_restart(&rec.id)?;
        Ok(Step::Restart(info))
    }

    fn run_once(
        &self,
        rec: &ContainerRecord,
        mode: IoMode,
        ready: &mut Option<&mut dyn FnMut(Ready)>,
        server: Option<&mut AttachServer>,
    ) -> Result<ExitInfo, EngineError> {
        let mut setup = Setup {
            rootfs: self.container_dir(&rec.id).join("rootfs"),
            cgroup: false,
            networks: Vec::new(),
        };
        let r = self.run_process(rec, mode, ready, &mut setup, server);
        if let Err(e) = &r {
            if let Some(f) = ready.as_mut() {
                f(Ready::Failed(e.to_string()));
            }
        }
        // Networks connected while it ran (`network connect`) are detached too.
        if let Ok(Some(now)) = self.db().and_then(|d| d.get(&rec.id)) {
            for n in now.network.networks {
                if !setup.networks.iter().any(|s| s.network == n.network) {
                    setup.networks.push(n);
                }
            }
        }
        let oom = self.teardown(rec, &setup);
        r.map(|mut i| {
            i.oom_killed |= oom;
            i
        })
    }

    fn run_process(
        &self,
        rec: &ContainerRecord,
        mode: IoMode,
        ready: &mut Option<&mut dyn FnMut(Ready)>,
        setup: &mut Setup,
        server: Option<&mut AttachServer>,
    ) -> Result<ExitInfo, EngineError> {
        let dir = self.container_dir(&rec.id);
        let storage = self.plugins.storage()?;
        std::fs::create_dir_all(&setup.rootfs)
            .map_err(|e| EngineError::io(format!("creating {}", setup.rootfs.display()), e))?;
        storage
            .mount(&rec.id, &setup.rootfs.display().to_string())
            .map_err(|e| EngineError::plugin("mounting the container's filesystem", e))?;
        tracing::debug!(container = %rec.short_id(), "rootfs mounted");

        let hostname = if rec.config.hostname.is_empty() {
            rec.short_id().to_string()
        } else {
            rec.config.hostname.clone()
        };
        let etc = self.write_etc_files(rec, &hostname, &[])?;

        // Network mode for the runtime.
        let net = rec.config.network.as_str();
        let netmode = match net {
            "host" => rt::Net::Host,
            n if n.starts_with("container:") => {
                let other = self.db()?.resolve(&n["container:".len()..])?;
                if !other.state.is_live() || other.pid <= 0 {
                    return Err(EngineError::Invalid(format!(
                        "cannot join the network of {}: it is not running",
                        other.name
                    )));
                }
                rt::Net::Join(PathBuf::from(format!("/proc/{}/ns/net", other.pid)))
            }
            _ => rt::Net::New,
        };

        // Cgroup first, so a limit the host can't enforce fails before anything runs.
        let devices = crate::devices::resolve(&rec.config)?;
        let isolator = self.plugins.isolator();
        match &isolator {
            Ok(iso) => {
                iso.create(&rec.id, &rec.config.limits.to_abi())
                    .map_err(|e| EngineError::plugin("creating the container's cgroup", e))?;
                setup.cgroup = true;
                crate::devices::enforce(&**iso, &rec.id, rec.config.privileged, &devices.rules)?;
                tracing::debug!(container = %rec.short_id(), "cgroup created");
            }
            Err(e) if rec.config.limits.is_empty() => {
                crate::devices::require_isolator(rec.config.privileged, e)?;
                tracing::warn!("no isolator: {e}; running without resource control");
            }
            Err(e) => {
                return Err(EngineError::Invalid(format!(
                    "resource limits need an isolator: {e}"
                )))
            }
        }

        let mounts = self.resolve_mounts(rec)?;
        let created = rt::create(
            self,
            rec,
            &setup.rootfs,
            &hostname,
            &etc,
            &mounts,
            &devices,
            netmode,
            mode,
        )?;
        let pid = created.pid();
        let attach = (|| -> Result<(), EngineError> {
            if let Ok(iso) = &isolator {
                if setup.cgroup {
                    iso.add_process(&rec.id, pid)
                        .map_err(|e| EngineError::plugin("placing the process in its cgroup", e))?;
                }
            }
            if !matches!(net, "none" | "host") && !net.starts_with("container:") {
                let a = self.attach_network(rec, pid, net)?;
                setup.networks.push(a);
                self.emit_network(net, "connect", &rec.id);
                // Now the address is known: rewrite /etc/hosts (bind-mounted, same inode).
                self.write_etc_files(rec, &hostname, &setup.networks)?;
            }
            Ok(())
        })();
        if let Err(e) = attach {
            created.abort();
            return Err(e);
        }
        let network_state = NetworkState {
            networks: setup.networks.clone(),
        };
        let (started, io) = match created.start() {
            Ok(s) => s,
            Err(rt::StartError::Exec { code, message }) => {
                if let Some(f) = ready.as_mut() {
                    f(Ready::Failed(message.clone()));
                }
                return Ok(ExitInfo {
                    code,
                    oom_killed: false,
                    error: Some(message),
                });
            }
            Err(rt::StartError::Other(e)) => return Err(e),
        };
        self.db()?.set_running(
            &rec.id,
            started.pid(),
            std::process::id() as i32,
            &now(),
            &network_state,
        )?;
        let joined: Vec<String> = network_state
            .networks
            .iter()
            .map(|n| n.network.clone())
            .collect();
        if let Err(e) = self.refresh_peer_hosts(&joined, Some(&rec.id)) {
            tracing::warn!("updating the hosts files of {}'s peers: {e}", rec.name);
        }
        self.emit_container(rec, "start", &[]);
        if let Some(f) = ready.as_mut() {
            f(Ready::Started);
        }
        let mut log = LogWriter::open(&dir.join("container.log"))?;
        // HEALTHCHECK: a prober thread for as long as this start lasts.
        let _ = std::fs::remove_file(dir.join(health::HEALTH_FILE));
        let check = health::Check::from_config(rec.config.healthcheck.as_ref());
        let prober = match &check {
            Some(c) => Some(health::Prober {
                pid: started.pid(),
                process: berth_runtime::ProcessSpec {
                    args: c.argv.clone(),
                    env: rec.config.env.clone(),
                    cwd: rec.config.cwd.clone(),
                    user: rec.config.user.clone(),
                    tty: false,
                },
                opts: crate::exec::exec_options(&rec.config, started.pid(), false)?,
            }),
            None => None,
        };
        let stop = AtomicBool::new(false);
        let (relayed, status) = std::thread::scope(|s| {
            if let (Some(c), Some(p)) = (&check, &prober) {
                let (dir, stop) = (&dir, &stop);
                // (The journal alone crosses to the prober thread, not the engine.)
                let journal = self.journal();
                let attrs = crate::events::container_attributes(rec, &[]);
                let changed = move |st: health::HealthStatus| {
                    let name = match st {
                        health::HealthStatus::Starting => "starting",
                        health::HealthStatus::Healthy => "healthy",
                        health::HealthStatus::Unhealthy => "unhealthy",
                    };
                    let e = crate::events::Event::new(
                        "container",
                        &format!("health_status: {name}"),
                        &rec.id,
                        attrs.clone(),
                    );
                    if let Err(err) = journal.append(&e) {
                        tracing::warn!("recording a health_status event: {err}");
                    }
                };
                s.spawn(move || health::run_checks(c, p, dir, stop, &changed));
            }
            let relayed = relay(started.pid(), io, Some(&mut log), mode, server);
            let _ = log.flush();
            let status = started.wait();
            stop.store(true, Ordering::Relaxed);
            (relayed, status)
        });
        relayed?;
        let status = status?;
        Ok(ExitInfo {
            code: status,
            oom_killed: false,
            error: None,
        })
    }

    /// Undoes a start: cgroup (reading its OOM count first), mount, network. Never fails:
    /// errors are logged, and each step is idempotent so `rm` can repeat it.
    fn teardown(&self, rec: &ContainerRecord, setup: &Setup) -> bool {
        let mut oom = false;
        if setup.cgroup {
            if let Ok(iso) = self.plugins.isolator() {
                if let Ok(st) = iso.stats(&rec.id) {
                    oom = st.oom_kills > 0;
                }
                if let Err(e) = iso.destroy(&rec.id) {
                    tracing::warn!("removing cgroup of {}: {e}", rec.name);
                }
            }
        }
        tracing::debug!(container = %rec.short_id(), "teardown: cgroup removed");
        if let Ok(storage) = self.plugins.storage() {
            if let Err(e) = storage.unmount(&rec.id, &setup.rootfs.display().to_string()) {
                tracing::warn!("unmounting {}: {e}", setup.rootfs.display());
            }
        }
        tracing::debug!(container = %rec.short_id(), "teardown: unmounted");
        // Last: the kernel tears a dead namespace's veth pair down by itself meanwhile.
        if let Ok(net) = self.plugins.network() {
            for a in &setup.networks {
                let req = DetachRequest {
                    container_id: rec.id.clone(),
                    netns_path: String::new(),
                    network: a.network.clone(),
                    ifname: a.ifname.clone(),
                };
                if let Err(e) = net.detach(&req) {
                    tracing::warn!("detaching {} from {}: {e}", rec.name, a.network);
                }
            }
        }
        tracing::debug!(container = %rec.short_id(), "teardown: network detached");
        oom
    }

    /// A network event (`connect`/`disconnect` name the container; `create` none).
    fn emit_network(&self, network: &str, action: &str, container: &str) {
        let id = self
            .plugins
            .network()
            .ok()
            .and_then(|n| n.inspect_network(network).ok())
            .map(|i| i.id.to_string())
            .unwrap_or_else(|| network.to_string());
        let mut extra = vec![("type", "bridge".to_string())];
        if !container.is_empty() {
            extra.push(("container", container.to_string()));
        }
        self.emit_named("network", action, &id, network, &extra);
    }

    /// `berth network connect`: attaches a running container to one more network.
    pub fn connect(
        &self,
        rec: &ContainerRecord,
        network: &str,
        aliases: &[String],
    ) -> Result<(), EngineError> {
        if !rec.state.is_live() || rec.pid <= 0 {
            return Err(EngineError::Conflict(format!(
                "container {} is not running: berth connects running containers only",
                rec.name
            )));
        }
        if matches!(rec.config.network.as_str(), "none" | "host")
            || rec.config.network.starts_with("container:")
        {
            return Err(EngineError::Invalid(format!(
                "container {} uses --network {}: it has no network namespace of its own to connect",
                rec.name, rec.config.network
            )));
        }
        if rec.network.networks.iter().any(|n| n.network == network) {
            return Err(EngineError::Conflict(format!(
                "container {} is already connected to {network}",
                rec.name
            )));
        }
        let mut with_aliases = rec.clone();
        with_aliases.config.aliases.extend(aliases.iter().cloned());
        let ifname = format!("eth{}", rec.network.networks.len());
        let attached = self.attach_network_as(&with_aliases, rec.pid, network, &ifname)?;
        let mut state = rec.network.clone();
        state.networks.push(attached);
        self.db()?.set_network(&rec.id, &state)?;
        self.emit_network(network, "connect", &rec.id);
        let names: Vec<String> = state.networks.iter().map(|n| n.network.clone()).collect();
        self.refresh_peer_hosts(&names, None)
    }

    /// `berth network disconnect`.
    pub fn disconnect(&self, rec: &ContainerRecord, network: &str) -> Result<(), EngineError> {
        let Some(n) = rec.network.networks.iter().find(|n| n.network == network) else {
            return Err(EngineError::NotFound(format!(
                "container {} is not connected to network {network}",
                rec.name
            )));
        };
        self.plugins
            .network()?
            .detach(&DetachRequest {
                container_id: rec.id.clone(),
                netns_path: format!("/proc/{}/ns/net", rec.pid),
                network: network.into(),
                ifname: n.ifname.clone(),
            })
            .map_err(|e| {
                EngineError::plugin(format!("disconnecting {} from {network}", rec.name), e)
            })?;
        let mut state = rec.network.clone();
        state.networks.retain(|x| x.network != network);
        self.db()?.set_network(&rec.id, &state)?;
        self.emit_network(network, "disconnect", &rec.id);
        let mut names: Vec<String> = state.networks.iter().map(|n| n.network.clone()).collect();
        names.push(network.to_string());
        self.refresh_peer_hosts(&names, None)
    }

    fn attach_network(
        &self,
        rec: &ContainerRecord,
        pid: i32,
        network: &str,
    ) -> Result<AttachedNetwork, EngineError> {
        self.attach_network_as(rec, pid, network, "eth0")
    }

    fn attach_network_as(
        &self,
        rec: &ContainerRecord,
        pid: i32,
        network: &str,
        ifname: &str,
    ) -> Result<AttachedNetwork, EngineError> {
        let backend = self.plugins.network()?;
        if network == "bridge" {
            // The default network is created on first use.
            let _l = self.lock("network-default")?;
            match backend.inspect_network("bridge") {
                Ok(_) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {
                    backend
                        .create_network(&berth_abi::NetworkSpec {
                            name: "bridge".into(),
                            options_json: "{}".into(),
                            ..Default::default()
                        })
                        .map_err(|e| EngineError::plugin("creating the default network", e))?;
                    self.emit_network("bridge", "create", "");
                }
                Err(e) => return Err(EngineError::plugin("inspecting the default network", e)),
            }
        }
        let mut aliases: Vec<String> = vec![rec.name.clone()];
        aliases.extend(rec.config.aliases.iter().cloned());
        let req = AttachRequest {
            container_id: rec.id.clone(),
            container_name: rec.name.clone(),
            netns_path: format!("/proc/{pid}/ns/net"),
            network: network.into(),
            ifname: ifname.into(),
            static_ip: None,
            aliases,
            ports: rec
                .config
                .ports
                .iter()
                .map(|p| PortMapping {
                    host_ip: p.host_ip.clone(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                    protocol: if p.protocol == "udp" {
                        Protocol::Udp
                    } else {
                        Protocol::Tcp
                    },
                })
                .collect(),
        };
        let res = backend
            .attach(&req)
            .map_err(|e| EngineError::plugin(format!("connecting to network {network}"), e))?;
        let iface = res.interfaces.first().cloned().unwrap_or_default();
        let addr = iface
            .addresses
            .first()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let (ip, prefix) = addr.split_once('/').unwrap_or((addr.as_str(), "0"));
        Ok(AttachedNetwork {
            network: network.to_string(),
            ifname: iface.name.to_string(),
            ip: ip.to_string(),
            prefix_len: prefix.parse().unwrap_or(0),
            gateway: res.gateway.clone().unwrap_or_default(),
            mac: iface.mac.to_string(),
            dns_servers: res.dns_servers.iter().map(|s| s.to_string()).collect(),
            dns_search: res.dns_search.iter().map(|s| s.to_string()).collect(),
            ports: res
                .ports
                .iter()
                .map(|p| PortConfig {
                    host_ip: p.host_ip.to_string(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                    protocol: p.protocol.as_str().to_string(),
                })
                .collect(),
        })
    }

    /// Writes `hostname`, `hosts` and `resolv.conf` into the bundle; they are bind-mounted
    /// into the container. Rewrites in place (the bind mount keeps the inode).
    pub(crate) fn write_etc_files(
        &self,
        rec: &ContainerRecord,
        hostname: &str,
        networks: &[AttachedNetwork],
    ) -> Result<Vec<(PathBuf, String)>, EngineError> {
        let dir = self.container_dir(&rec.id);
        let mut hosts = String::from(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        );
        for n in networks {
            if !n.ip.is_empty() {
                hosts.push_str(&format!("{}\t{} {}\n", n.ip, hostname, rec.name));
            }
        }
        if networks.is_empty() && rec.config.network != "host" {
            hosts.push_str(&format!("127.0.1.1\t{hostname}\n"));
        }
        // On user-defined networks containers find each other by name and alias (the
        // default `bridge` network has no name resolution, as with Docker).
        for line in self.peer_host_lines(&rec.id, networks)? {
            hosts.push_str(&line);
        }
        let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let servers: Vec<&str> = networks
            .iter()
            .flat_map(|n| n.dns_servers.iter().map(String::as_str))
            .collect();
        let resolv: String = if servers.is_empty() {
            host_resolv
                .lines()
                .filter(|l| {
                    // A loopback resolver of the host is unreachable from a private netns.
                    !(l.trim_start().starts_with("nameserver")
                        && (l.contains(" 127.") || l.contains(" ::1"))
                        && rec.config.network != "host")
                })
                .map(|l| format!("{l}\n"))
                .collect()
        } else {
            // The networks' responders answer container names and forward the rest to
            // the host's resolvers; the host's search domains and options still apply.
            let mut search: Vec<String> = networks
                .iter()
                .flat_map(|n| n.dns_search.iter().cloned())
                .collect();
            let mut options = String::new();
            for l in host_resolv.lines() {
                let mut words = l.split_whitespace();
                match words.next() {
                    Some("search") | Some("domain") => search.extend(words.map(str::to_string)),
                    Some("options") => options.push_str(&format!("{l}\n")),
                    _ => {}
                }
            }
            search.dedup();
            let mut out = String::new();
            if !search.is_empty() {
                out.push_str(&format!("search {}\n", search.join(" ")));
            }
            for s in &servers {
                out.push_str(&format!("nameserver {s}\n"));
            }
            out + &options
        };
        let files = [
            ("hostname", format!("{hostname}\n"), "/etc/hostname"),
            ("hosts", hosts, "/etc/hosts"),
            ("resolv.conf", resolv, "/etc/resolv.conf"),
        ];
        let mut out = Vec::new();
        for (name, content, target) in files {
            let p = dir.join(name);
            write_in_place(&p, content.as_bytes())?;
            out.push((p, target.to_string()));
        }
        Ok(out)
    }

    /// `/etc/hosts` lines for the other running containers on `networks` (user-defined
    /// ones only): `IP NAME ALIAS…`.
    fn peer_host_lines(
        &self,
        self_id: &str,
        networks: &[AttachedNetwork],
    ) -> Result<Vec<String>, EngineError> {
        let mine: Vec<&str> = networks
            .iter()
            .filter(|n| n.network != "bridge")
            .map(|n| n.network.as_str())
            .collect();
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let mut lines = Vec::new();
        let list = self.db()?.list()?;
        for c in list {
            if c.id == self_id || !c.state.is_live() {
                continue;
            }
            for n in &c.network.networks {
                if mine.contains(&n.network.as_str()) && !n.ip.is_empty() {
                    let mut names = vec![c.name.clone()];
                    names.extend(c.config.aliases.iter().cloned());
                    lines.push(format!("{}\t{}\n", n.ip, names.join(" ")));
                }
            }
        }
        Ok(lines)
    }

    /// Rewrites the hosts files of the running containers on `networks` (after a container
    /// joined or left), so names stay current.
    pub(crate) fn refresh_peer_hosts(
        &self,
        networks: &[String],
        except: Option<&str>,
    ) -> Result<(), EngineError> {
        let user: Vec<&String> = networks.iter().filter(|n| n.as_str() != "bridge").collect();
        if user.is_empty() {
            return Ok(());
        }
        let _l = self.lock("hosts")?;
        // Collect first: the records guard must not be held while writing (it is taken
        // again below).
        let list = self.db()?.list()?;
        for c in list {
            if !c.state.is_live()
                || except == Some(c.id.as_str())
                || !c
                    .network
                    .networks
                    .iter()
                    .any(|n| user.contains(&&n.network))
            {
                continue;
            }
            let hostname = if c.config.hostname.is_empty() {
                c.short_id().to_string()
            } else {
                c.config.hostname.clone()
            };
            self.write_etc_files(&c, &hostname, &c.network.networks)?;
        }
        Ok(())
    }

    /// Volume mounts resolved to host directories.
    fn resolve_mounts(
        &self,
        rec: &ContainerRecord,
    ) -> Result<Vec<crate::container::MountConfig>, EngineError> {
        let mut out = Vec::new();
        for m in &rec.config.mounts {
            let mut m = m.clone();
            if m.kind == "volume" {
                self.emit_named(
                    "volume",
                    "mount",
                    &m.source,
                    &m.source,
                    &[
                        ("container", rec.id.clone()),
                        ("destination", m.destination.clone()),
                        ("driver", "local".into()),
                        ("read/write", (!m.read_only).to_string()),
                    ],
                );
                let d = self.volume_dir(&m.source);
                std::fs::create_dir_all(&d)
                    .map_err(|e| EngineError::io(format!("volume {}", d.display()), e))?;
                m.source = d.display().to_string();
                m.kind = "bind".into();
            }
            out.push(m);
        }
        Ok(out)
    }
}

/// Rewrites a bind-mounted file in place (a rename would not reach the container: the bind
/// mount pins the inode). Unchanged content is left alone; otherwise the new bytes are
/// written over the old ones before the file is cut to length, so a reader in the
/// container never sees an empty file.
fn write_in_place(p: &Path, data: &[u8]) -> Result<(), EngineError> {
    use std::os::unix::fs::FileExt;
    if std::fs::read(p).is_ok_and(|old| old == data) {
        return Ok(());
    }
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(p)
        .map_err(|e| EngineError::io(format!("writing {}", p.display()), e))?;
    f.write_all_at(data, 0)
        .and_then(|()| f.set_len(data.len() as u64))
        .map_err(|e| EngineError::io(format!("writing {}", p.display()), e))
}

/// The host side of a started container's stdio.
pub enum ContainerIo {
    /// `stdin`: the write end of the container's stdin, when a monitor feeds it.
    Pipes {
        stdout: OwnedFd,
        stderr: OwnedFd,
        stdin: Option<OwnedFd>,
    },
    Pty {
        master: OwnedFd,
    },
    None,
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this fd to us; we own it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn read_some(fd: &OwnedFd, buf: &mut [u8]) -> std::io::Result<usize> {
    match nix::unistd::read(fd.as_raw_fd(), buf) {
        Ok(n) => Ok(n),
        Err(nix::errno::Errno::EIO) => Ok(0), // pty closed
        Err(nix::errno::Errno::EAGAIN) => Err(std::io::ErrorKind::WouldBlock.into()),
        Err(e) => Err(std::io::Error::from(e)),
    }
}

fn write_all_fd(fd: i32, mut data: &[u8]) {
    while !data.is_empty() {
        // SAFETY: writing a valid buffer to an fd we hold.
        let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        if n <= 0 {
            return;
        }
        data = &data[n as usize..];
    }
}

/// Copies the container's output to the log (and our terminal in the foreground) until
/// the process exits and its output is drained; forwards our signals to it.
/// Puts our terminal in raw mode while a container with a tty is attached.
pub(crate) struct RawMode {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawMode {
    pub(crate) fn enter() -> RawMode {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(&stdin).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(&stdin, termios::SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

pub(crate) fn relay(
    pid: i32,
    io: ContainerIo,
    mut log: Option<&mut LogWriter>,
    mode: IoMode,
    mut server: Option<&mut AttachServer>,
) -> Result<(), EngineError> {
    let _raw = match (&io, mode) {
        (ContainerIo::Pty { .. }, IoMode::Foreground) => Some(RawMode::enter()),
        _ => None,
    };
    let pidfd = pidfd_open(pid);
    // Forward signals in the foreground; the detached monitor runs in its own session.
    let mut mask = SigSet::empty();
    for s in FORWARDED {
        mask.add(s);
    }
    let sigfd = if mode == IoMode::Foreground {
        mask.thread_block().ok();
        nix::sys::signalfd::SignalFd::with_flags(&mask, nix::sys::signalfd::SfdFlags::SFD_CLOEXEC)
            .ok()
    } else {
        None
    };
    // Where attach clients' input goes: the stdin pipe, or the terminal under a monitor.
    let mut sink = StdinSink::None;
    let (outs, is_pty): (Vec<(OwnedFd, usize)>, bool) = match io {
        ContainerIo::Pipes {
            stdout,
            stderr,
            stdin,
        } => {
            if let Some(w) = stdin {
                sink = StdinSink::Pipe(Some(w));
            }
            (vec![(stdout, 0), (stderr, 1)], false)
        }
        ContainerIo::Pty { master } => {
            if mode != IoMode::Foreground {
                if let Ok(m) = master.try_clone() {
                    sink = StdinSink::Pty(m);
                }
            }
            (vec![(master, 0)], true)
        }
        ContainerIo::None => (Vec::new(), false),
    };
    let mut open: Vec<bool> = vec![true; outs.len()];
    let mut exited = false;
    let mut buf = vec![0u8; 64 * 1024];
    let forward_stdin = is_pty && mode == IoMode::Foreground;
    loop {
        if open.iter().all(|o| !o) && (exited || pidfd.is_none()) {
            break;
        }
        let mut fds: Vec<PollFd> = Vec::new();
        let mut kinds: Vec<(char, usize)> = Vec::new();
        for (i, (fd, _)) in outs.iter().enumerate() {
            if open[i] {
                fds.push(PollFd::new(fd.as_fd(), PollFlags::POLLIN));
                kinds.push(('o', i));
            }
        }
        if let (Some(p), false) = (&pidfd, exited) {
            fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
            kinds.push(('p', 0));
        }
        if let Some(s) = &sigfd {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            kinds.push(('s', 0));
        }
        let stdin = std::io::stdin();
        if forward_stdin {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            kinds.push(('i', 0));
        }
        if let (Some(srv), false) = (server.as_deref(), exited) {
            fds.push(PollFd::new(srv.listener_fd(), PollFlags::POLLIN));
            kinds.push(('l', 0));
            for (i, c) in srv.client_fds().into_iter().enumerate() {
                fds.push(PollFd::new(c, PollFlags::POLLIN));
                kinds.push(('c', i));
            }
        }
        // After the process exited, drain what is buffered without waiting for writers
        // that inherited the pipe (daemonised grandchildren).
        let timeout = if exited {
            PollTimeout::ZERO
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(0) => {
                if exited {
                    break;
                }
                continue;
            }
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(EngineError::io("waiting for container output", e.into())),
        }
        let ready: Vec<(char, usize, PollFlags)> = fds
            .iter()
            .zip(kinds.iter())
            .filter_map(|(f, k)| f.revents().filter(|r| !r.is_empty()).map(|r| (k.0, k.1, r)))
            .collect();
        drop(fds);
        // Attach clients' input first, highest index first: a client that left is removed,
        // which must not shift the indices still to be handled.
        if let Some(srv) = server.as_deref_mut() {
            let mut clients: Vec<usize> =
                ready.iter().filter(|r| r.0 == 'c').map(|r| r.1).collect();
            clients.sort_unstable();
            for i in clients.into_iter().rev() {
                srv.on_readable(i, &mut sink);
            }
        }
        for (kind, i, _flags) in ready {
            match kind {
                'o' => {
                    let (fd, stream) = &outs[i];
                    match read_some(fd, &mut buf) {
                        Ok(0) => open[i] = false,
                        Ok(n) => {
                            if let Some(l) = log.as_deref_mut() {
                                let _ = l.write(*stream, &buf[..n]);
                            }
                            if mode == IoMode::Foreground {
                                write_all_fd(if *stream == 0 { 1 } else { 2 }, &buf[..n]);
                            }
                            if let Some(srv) = server.as_deref_mut() {
                                srv.broadcast(*stream, &buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(_) => open[i] = false,
                    }
                }
                'p' => exited = true,
                'l' => {
                    if let Some(srv) = server.as_deref_mut() {
                        srv.accept();
                    }
                }
                // (handled above)
                'c' => {}
                's' => {
                    if let Some(s) = &sigfd {
                        if let Ok(Some(info)) = s.read_signal() {
                            if let Ok(sig) = Signal::try_from(info.ssi_signo as i32) {
                                if sig == Signal::SIGWINCH && is_pty {
                                    if let Some((m, _)) = outs.first() {
                                        rt::copy_winsize(0, m.as_raw_fd());
                                    }
                                } else {
                                    let _ = nix::sys::signal::kill(
                                        nix::unistd::Pid::from_raw(pid),
                                        sig,
                                    );
                                }
                            }
                        }
                    }
                }
                'i' => {
                    let n = nix::unistd::read(0, &mut buf).unwrap_or(0);
                    if let Some((m, _)) = outs.first() {
                        if n == 0 {
                            // EOF on our stdin: send the terminal's EOF character.
                            write_all_fd(m.as_raw_fd(), &[4]);
                        } else {
                            write_all_fd(m.as_raw_fd(), &buf[..n]);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    if sigfd.is_some() {
        mask.thread_unblock().ok();
    }
    Ok(())
}
