//! Name resolution on user-defined networks: one `berth-dns` responder per network
//! (crate berth-bridge-dns), listening on the network's gateway address, serving the
//! records file this module keeps in step with the leases.
//!
//! * Records: `<run_dir>/dns/<network>.hosts` (`IP NAME ALIAS…`), written atomically under
//!   the file's own lock; the responder re-reads it on change, so a container that joins
//!   or leaves is visible on the next query.
//! * Process: started on the first attach (its pidfile `<network>.pid` appears once its
//!   sockets are bound), detached from the caller's session so it outlives the command.
//!   It exits by itself when the records file is removed (last detach, network removal),
//!   so a crashed engine cannot leave it behind for long.
//! * The default `bridge` network has no name resolution, as with Docker.

use std::{
    net::{IpAddr, Ipv4Addr},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use berth_abi::{ErrorKind, PluginError, PluginResult};
use berth_bridge_dns::{pidfile, RecordsError, RecordsFile};
use tracing::{debug, warn};

use crate::state::Network;

/// The search domain containers get (`web` and `web.dns.berth` both resolve).
pub const DOMAIN: &str = "dns.berth";

pub struct Dns {
    dir: PathBuf,
    binary: Option<PathBuf>,
    port: u16,
}

fn records_err(e: RecordsError) -> PluginError {
    match e {
        RecordsError::NameInUse { .. } => PluginError::already_exists(format!(
            "{e}; choose another container name or --network-alias"
        )),
        other => PluginError::new(ErrorKind::Io, other.to_string()),
    }
}

/// `berth-dns` next to the running engine (`<prefix>/lib/berth/berth-dns` for
/// `<prefix>/bin/berth`), beside it, or on `PATH`.
fn find_binary(configured: &str) -> Option<PathBuf> {
    if !configured.is_empty() {
        return Some(PathBuf::from(configured));
    }
    let exe_dir = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let candidates = [
        exe_dir.join("../lib/berth/berth-dns"),
        exe_dir.join("berth-dns"),
    ];
    candidates
        .into_iter()
        .chain(
            std::env::var_os("PATH")
                .map(|p| {
                    std::env::split_paths(&p)
                        .map(|d| d.join("berth-dns"))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default(),
        )
        .find(|p| p.is_file())
}

impl Dns {
    /// `None` when name resolution is off (`dns = false`) or no run directory is given.
    pub fn new(run_dir: &str, enabled: bool, binary: &str, port: u16) -> Option<Dns> {
        if !enabled || run_dir.is_empty() {
            return None;
        }
        let binary = find_binary(binary);
        if binary.is_none() {
            warn!("berth-dns not found next to the engine nor on PATH: containers on user-defined networks resolve peers through /etc/hosts only");
        }
        Some(Dns {
            dir: Path::new(run_dir).join("dns"),
            binary,
            port,
        })
    }

    /// Whether `net` gets a responder.
    pub fn serves(&self, net: &Network) -> bool {
        net.name != crate::DEFAULT_NETWORK && self.binary.is_some()
    }

    fn records(&self, net: &Network) -> RecordsFile {
        RecordsFile::new(
            net.name.clone(),
            self.dir.join(format!("{}.hosts", net.name)),
        )
    }

    fn pidfile(&self, net: &Network) -> PathBuf {
        self.dir.join(format!("{}.pid", net.name))
    }

    /// Adds `ip` with `names`; a name another address holds is `AlreadyExists`.
    pub fn register(&self, net: &Network, ip: Ipv4Addr, names: &[String]) -> PluginResult<()> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| PluginError::io(format_args!("create {}", self.dir.display()), e))?;
        self.records(net)
            .add(IpAddr::V4(ip), names)
            .map_err(records_err)
    }

    /// Drops `ip`; removes the file (the responder then exits) when it was the last.
    pub fn unregister(&self, net: &Network, ip: Ipv4Addr) -> PluginResult<()> {
        let records = self.records(net);
        let left = records.remove(IpAddr::V4(ip)).map_err(records_err)?;
        if left == 0 {
            records.delete().map_err(records_err)?;
        }
        Ok(())
    }

    /// Removes the records (the responder exits) and stops a responder that lingers.
    pub fn forget(&self, net: &Network) {
        if let Err(e) = self.records(net).delete() {
            debug!(error = %e, "removing DNS records");
        }
        if let Ok(Some(pid)) = pidfile::running_pid(&self.pidfile(net), "berth-dns") {
            if let Ok(pid) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGTERM,
                );
            }
        }
    }

    /// Starts the network's responder unless it runs; returns once it answers.
    pub fn ensure_running(&self, net: &Network) -> PluginResult<()> {
        let Some(binary) = &self.binary else {
            return Ok(());
        };
        let pidfile = self.pidfile(net);
        let running = |p: &Path| matches!(pidfile::running_pid(p, "berth-dns"), Ok(Some(_)));
        if running(&pidfile) {
            return Ok(());
        }
        let log_path = self.dir.join(format!("{}.log", net.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| PluginError::io(format_args!("open {}", log_path.display()), e))?;
        let log2 = log
            .try_clone()
            .map_err(|e| PluginError::io(format_args!("open {}", log_path.display()), e))?;
        let mut cmd = Command::new(binary);
        cmd.arg("--listen")
            .arg(format!("{}:{}", net.gateway, self.port))
            .arg("--hosts")
            .arg(self.records(net).path())
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--domain")
            .arg(DOMAIN);
        if net.internal {
            cmd.arg("--no-upstream");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            // Its own process group: a terminal's Ctrl-C for the command does not reach it.
            .process_group(0);
        // SAFETY: between fork and exec only the async-signal-safe close_range system
        // call runs. It marks every inherited descriptor above stderr close-on-exec, so
        // the long-lived responder holds no pipe its caller waits on (e.g. a detached
        // container's monitor handshake) and no lock or socket of the engine.
        unsafe {
            cmd.pre_exec(|| {
                if libc::syscall(
                    libc::SYS_close_range,
                    3u32,
                    u32::MAX,
                    libc::CLOSE_RANGE_CLOEXEC,
                ) < 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        debug!(network = %net.name, binary = %binary.display(), "starting DNS responder");
        let mut child = cmd.spawn().map_err(|e| {
            PluginError::io(
                format_args!(
                    "start the DNS responder {} for network {}",
                    binary.display(),
                    net.name
                ),
                e,
            )
        })?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if running(&pidfile) {
                // Reap it when it exits, so a long-lived caller (a container monitor)
                // keeps no zombie; a short-lived one just leaves it to init.
                std::thread::spawn(move || child.wait());
                return Ok(());
            }
            if let Ok(Some(status)) = child.try_wait() {
                let tail = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail = tail.lines().last().unwrap_or("").to_string();
                return Err(PluginError::new(
                    ErrorKind::Io,
                    format!(
                    "the DNS responder of network {} exited ({status}) at start: {tail} (log: {})",
                    net.name,
                    log_path.display()
                ),
                ));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(PluginError::new(
                    ErrorKind::Io,
                    format!(
                        "the DNS responder of network {} did not start within 5 s (log: {})",
                        net.name,
                        log_path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}
