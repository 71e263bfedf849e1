//! Container lifecycle commands that act on records: start (detached), stop, kill,
//! remove, wait, pause/unpause, update, and the repair of records whose supervisor died.

use std::{
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use berth_abi::{DetachRequest, ErrorKind};

use crate::{
    attach::{AttachEnd, AttachOptions, AttachStreams, DetachKeys, Pending},
    container::{ContainerRecord, LimitsConfig, State},
    supervise::stopped_marker,
    Engine, EngineError,
};

pub(crate) fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    // A zombie still "exists" for kill(0); look at its state.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rfind(')')
            .and_then(|i| s[i + 2..].chars().next())
            .is_some_and(|st| st != 'Z' && st != 'X'),
        Err(_) => false,
    }
}

/// Makes `fd` available as `target` across exec (in a child between fork and exec).
/// `dup2` onto itself is a no-op that keeps close-on-exec set, so when the pipe already
/// has the target number its FD_CLOEXEC flag is cleared instead. Only async-signal-safe
/// calls (dup2, fcntl), so it is fit for `pre_exec`.
fn handover_fd(fd: libc::c_int, target: libc::c_int) -> std::io::Result<()> {
    if fd == target {
        // SAFETY: fcntl on a descriptor number we own; no memory is passed.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        // SAFETY: as above.
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        return Ok(());
    }
    // SAFETY: dup2 of a descriptor we own onto `target`; the new descriptor has no
    // close-on-exec flag.
    if unsafe { libc::dup2(fd, target) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The name of the monitor program.
pub const MONITOR: &str = "berth-monitor";

/// Where `berth-monitor` is: `$BERTH_MONITOR` when set, else next to the running program
/// (`<prefix>/lib/berth/berth-monitor` for `<prefix>/bin/berth`, or beside it), the system
/// locations, then `PATH`.
pub fn monitor_binary() -> Result<std::path::PathBuf, EngineError> {
    use std::path::PathBuf;
    if let Some(p) = std::env::var_os("BERTH_MONITOR").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(EngineError::Invalid(format!(
            "BERTH_MONITOR={}: no such file (unset it to use the berth-monitor installed with berth)",
            p.display()
        )));
    }
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(std::path::Path::to_path_buf))
    {
        candidates.push(dir.join("../lib/berth").join(MONITOR));
        candidates.push(dir.join(MONITOR));
    }
    candidates.push(PathBuf::from("/usr/local/lib/berth").join(MONITOR));
    candidates.push(PathBuf::from("/usr/lib/berth").join(MONITOR));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join(MONITOR)));
    }
    candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
        EngineError::Invalid(
            "berth-monitor (the per-container monitor) was not found in <prefix>/lib/berth next \
             to this program, /usr/local/lib/berth, /usr/lib/berth or PATH: install it with \
             berth (`cargo xtask build` stages it), or set BERTH_MONITOR to its path"
                .into(),
        )
    })
}

impl Engine {
    /// Marks records whose supervisor died (crash, reboot) as exited and cleans what they
    /// left: the mount, the cgroup, the network attachment. Safe to run any time.
    ///
    /// Also finishes removals a killed `rm` left in `removing` (and of exited `--rm`
    /// containers), and reclaims the debris of
    /// killed builds (see [`crate::debris`]). Writes nothing when nothing needs repair, so
    /// it works on a full disk.
    pub fn reconcile(&self) -> Result<(), EngineError> {
        self.reconcile_records()?;
        self.reclaim_debris();
        Ok(())
    }

    /// The records part of [`Engine::reconcile`] (`system df` reports debris instead of
    /// reclaiming it).
    pub fn reconcile_records(&self) -> Result<(), EngineError> {
        let list = self.db()?.list()?;
        for c in list {
            // A `--rm` container that exited is removed; when its own removal failed
            // (a full disk, a killed supervisor) the next command does it.
            let unfinished_rm = c.state == State::Exited && c.config.auto_remove;
            if c.state == State::Removing || unfinished_rm {
                tracing::info!(container = %c.name, "finishing an interrupted removal");
                if let Err(e) = self.remove_container(&c.id, false, false) {
                    tracing::warn!(container = %c.name, "finishing an interrupted removal: {e}");
                }
                continue;
            }
            if !c.state.is_live() || alive(c.monitor_pid) || alive(c.pid) {
                continue;
            }
            tracing::info!(container = %c.name, "supervisor gone; marking exited and cleaning up");
            self.cleanup_runtime(&c);
            match self.db()?.set_exited(
                &c.id,
                255,
                false,
                &chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
                "the container's supervisor exited unexpectedly",
            ) {
                Ok(()) => self.emit_container(&c, "die", &[("exitCode", "255".into())]),
                // Another command repaired (or removed) it meanwhile.
                Err(EngineError::Conflict(_)) | Err(EngineError::NotFound(_)) => {}
                // (a full disk): the next command tries again; this one can still read.
                Err(e) => tracing::warn!(container = %c.name, "recording the exit: {e}"),
            }
        }
        Ok(())
    }

    /// Idempotent cleanup of everything a start creates.
    pub(crate) fn cleanup_runtime(&self, c: &ContainerRecord) {
        if let Ok(net) = self.plugins.network() {
            for a in &c.network.networks {
                let _ = net.detach(&DetachRequest {
                    container_id: c.id.clone(),
                    netns_path: String::new(),
                    network: a.network.clone(),
                    ifname: a.ifname.clone(),
                });
            }
        }
        if let Ok(iso) = self.plugins.isolator() {
            let _ = iso.destroy(&c.id);
        }
        if let Ok(st) = self.plugins.storage() {
            let rootfs = self.container_dir(&c.id).join("rootfs");
            let _ = st.unmount(&c.id, &rootfs.display().to_string());
        }
    }

    /// `start`/`run -d`: spawns the monitor (`berth-monitor ID`, see [`monitor_binary`])
    /// in its own session and waits until it reports the process running, or why it
    /// could not start.
    pub fn start_detached(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        if rec.state.is_live() {
            return Ok(());
        }
        self.spawn_monitor(rec, None).map(|_| ())
    }

    /// `start -a`, `run -t`: starts the container under its monitor with the caller
    /// attached from the first byte of output, then streams until the process exits
    /// (the exit is recorded, and a `--rm` container removed, when this returns
    /// [`AttachEnd::Exited`]) or the caller detaches.
    pub fn start_attached(
        &self,
        rec: &ContainerRecord,
        opts: &AttachOptions,
        streams: AttachStreams,
    ) -> Result<AttachEnd, EngineError> {
        let keys = match &opts.detach_keys {
            Some(k) => DetachKeys::parse(k)?,
            None => DetachKeys::default(),
        };
        if rec.state.is_live() {
            return self.attach(&rec.id, opts, streams);
        }
        match self.spawn_monitor(rec, Some(opts))? {
            Some(p) => self.stream_attached(p, opts, &keys, streams),
            None => Ok(AttachEnd::Closed),
        }
    }

    /// Spawns `berth-monitor` for `rec`. With `attach`, the monitor waits for a first
    /// client before it starts the process; the connection is returned.
    fn spawn_monitor(
        &self,
        rec: &ContainerRecord,
        attach: Option<&AttachOptions>,
    ) -> Result<Option<Pending>, EngineError> {
        let exe = monitor_binary()?;
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
            .map_err(|e| EngineError::io("creating a pipe", e.into()))?;
        let config = serde_json::to_string(&self.config)
            .map_err(|e| EngineError::Invalid(format!("serialising config: {e}")))?;
        let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
        let mut cmd = Command::new(&exe);
        cmd.arg(&rec.id)
            .env("BERTH_MONITOR_CONFIG", config)
            .env("BERTH_READY_FD", "3")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if attach.is_some() {
            cmd.env("BERTH_ATTACH_WAIT", "1");
        } else {
            cmd.env_remove("BERTH_ATTACH_WAIT");
        }
        // SAFETY: between fork and exec we only call async-signal-safe functions
        // (setsid, dup2, fcntl).
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                handover_fd(wfd, 3)
            });
        }
        let mut child = cmd.spawn().map_err(|e| {
            EngineError::io(
                format!("starting the container monitor {}", exe.display()),
                e,
            )
        })?;
        drop(w);
        // The monitor lives on (reparented to init once we exit): it is not waited for,
        // except to reap it when it already failed.
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(std::fs::File::from(r)).lines();
        let mut pending = None;
        while let Some(Ok(line)) = lines.next() {
            let msg = line.trim();
            if msg == "listening" {
                if let Some(opts) = attach {
                    pending = Some(crate::attach::connect_pending(
                        &self.container_dir(&rec.id),
                        opts,
                    )?);
                }
                continue;
            }
            if msg == "ok" {
                return Ok(pending);
            }
            let _ = child.try_wait();
            if let Some(err) = msg.strip_prefix("err ") {
                return Err(EngineError::Invalid(err.to_string()));
            }
            break;
        }
        let _ = child.try_wait();
        Err(EngineError::Invalid(
            "the container monitor exited before starting the container (see `berth logs` and RUST_LOG=debug)".into(),
        ))
    }

    /// Sends `signal` to the container's main process (`berth kill`).
    /// Sends signal number `signal` (real-time ones too, hence not a nix `Signal`) to the
    /// container's first process; SIGKILL goes to the whole group where the isolator can.
    pub fn signal(&self, rec: &ContainerRecord, signal: i32) -> Result<(), EngineError> {
        if !rec.state.is_live() || rec.pid <= 0 {
            return Err(EngineError::Conflict(format!(
                "container {} is not running",
                rec.name
            )));
        }
        let _ = std::fs::write(stopped_marker(&self.container_dir(&rec.id)), b"");
        self.emit_container(rec, "kill", &[("signal", signal.to_string())]);
        if signal == libc::SIGKILL {
            if let Ok(iso) = self.plugins.isolator() {
                let _ = iso.thaw(&rec.id);
                if iso.kill(&rec.id, libc::SIGKILL).is_ok() {
                    return Ok(());
                }
            }
        }
        // SAFETY: kill(2) takes a pid and a signal number and touches no memory of ours.
        if unsafe { libc::kill(rec.pid, signal) } < 0 {
            return Err(EngineError::io(
                format!("signalling {}", rec.name),
                std::io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    /// Waits until the record is no longer live (the supervisor recorded the exit).
    pub fn wait_exit(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<ContainerRecord, EngineError> {
        let start = Instant::now();
        let mut sleep = Duration::from_millis(2);
        loop {
            let rec = self
                .db()?
                .get(id)?
                .ok_or_else(|| EngineError::NotFound(format!("no such container: {id}")))?;
            if !rec.state.is_live() {
                return Ok(rec);
            }
            if !alive(rec.monitor_pid) && !alive(rec.pid) {
                self.reconcile()?;
                continue;
            }
            if timeout.is_some_and(|t| start.elapsed() >= t) {
                return Ok(rec);
            }
            std::thread::sleep(sleep);
            sleep = (sleep * 2).min(Duration::from_millis(50));
        }
    }

    /// `berth stop`: the stop signal, then SIGKILL after `timeout` seconds.
    pub fn stop(&self, rec: &ContainerRecord, timeout: Option<u32>) -> Result<(), EngineError> {
        if !rec.state.is_live() {
            return Ok(());
        }
        let _ = std::fs::write(stopped_marker(&self.container_dir(&rec.id)), b"");
        if rec.state == State::Paused {
            if let Ok(iso) = self.plugins.isolator() {
                let _ = iso.thaw(&rec.id);
            }
        }
        // A number, not a nix `Signal`: a stop signal may be real-time (RTMIN+3).
        let sig = crate::parse::parse_signal_number("stop signal", &rec.config.stop_signal)
            .unwrap_or(libc::SIGTERM);
        let t = timeout.or(rec.config.stop_timeout).unwrap_or(10);
        // (pid 0 would signal our own process group: a restarting container has none.)
        if rec.pid > 0 {
            let _ = self.signal(rec, sig);
        }
        let r = self.wait_exit(&rec.id, Some(Duration::from_secs(t as u64)))?;
        if r.state.is_live() {
            let _ = self.signal(&r, libc::SIGKILL);
            let r = self.wait_exit(&rec.id, Some(Duration::from_secs(30)))?;
            if r.state.is_live() {
                return Err(EngineError::Invalid(format!(
                    "container {} did not exit after SIGKILL",
                    rec.name
                )));
            }
        }
        self.emit_container(rec, "stop", &[]);
        Ok(())
    }

    /// `berth rm`: refuses a running container unless `force`; `volumes` also removes its
    /// anonymous volumes.
    pub fn remove_container(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<(), EngineError> {
        let Some(rec) = self.db()?.get(id)? else {
            return Ok(());
        };
        if rec.state.is_live() && std::process::id() as i32 != rec.monitor_pid {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "cannot remove container \"/{}\": container is {}: stop the container before attempting removal or force remove",
                    rec.name,
                    rec.state.as_str()
                )));
            }
            let _ = self.signal(&rec, libc::SIGKILL);
            self.wait_exit(id, Some(Duration::from_secs(30)))?;
        }
        // Recorded first, so a removal that is interrupted is finished by the next
        // command (`reconcile`) instead of leaving a half-removed container.
        match self.db()?.set_state(id, State::Removing) {
            Ok(()) => {}
            // Another command removed it meanwhile.
            Err(EngineError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        }
        crate::debris::test_pause("rm-removing");
        self.cleanup_runtime(&rec);
        if let Ok(st) = self.plugins.storage() {
            match st.remove(id) {
                Ok(()) => {}
                Err(e) if e.kind == ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(EngineError::plugin(
                        format!("removing the filesystem of {}", rec.name),
                        e,
                    ))
                }
            }
        }
        tracing::debug!(container = %rec.short_id(), "snapshot removed");
        // For API clients waiting for the removal (`wait?condition=removed`).
        if !rec.started_at.is_empty() {
            let last = self.db()?.get(id)?.unwrap_or_else(|| rec.clone());
            self.write_exit_note(&last);
        }
        let dir = self.container_dir(id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            // (or another command finishing the same removal got there first)
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(EngineError::io(format!("removing {}", dir.display()), e)),
        }
        self.db()?.delete(id)?;
        self.emit_container(&rec, "destroy", &[]);
        if volumes {
            let anon: Vec<String> = self
                .db()?
                .volumes()?
                .into_iter()
                .filter(|(_, _, anon)| *anon)
                .map(|(n, _, _)| n)
                .collect();
            for m in rec.config.mounts.iter().filter(|m| m.kind == "volume") {
                if anon.contains(&m.source) && !self.volume_in_use(&m.source)? {
                    self.remove_volume_data(&m.source)?;
                }
            }
        }
        Ok(())
    }

    pub fn volume_in_use(&self, name: &str) -> Result<bool, EngineError> {
        Ok(self.db()?.list()?.iter().any(|c| {
            c.config
                .mounts
                .iter()
                .any(|m| m.kind == "volume" && m.source == name)
        }))
    }

    pub fn remove_volume_data(&self, name: &str) -> Result<(), EngineError> {
        let dir = self.config.root.join("volumes").join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| EngineError::io(format!("removing volume {}", dir.display()), e))?;
        }
        if self.db()?.volume_delete(name)? {
            self.emit_named(
                "volume",
                "destroy",
                name,
                name,
                &[("driver", "local".into())],
            );
        }
        Ok(())
    }

    /// `berth rename`.
    pub fn rename(&self, rec: &ContainerRecord, new_name: &str) -> Result<(), EngineError> {
        self.db()?.rename(&rec.id, new_name)?;
        let mut renamed = rec.clone();
        renamed.name = new_name.to_string();
        self.emit_container(&renamed, "rename", &[("oldName", format!("/{}", rec.name))]);
        Ok(())
    }

    pub fn pause(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        match rec.state {
            State::Running => {}
            State::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is already paused",
                    rec.name
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "container {} is not running",
                    rec.name
                )))
            }
        }
        self.plugins
            .isolator()?
            .freeze(&rec.id)
            .map_err(|e| EngineError::plugin(format!("pausing {}", rec.name), e))?;
        self.db()?.set_state(&rec.id, State::Paused)?;
        self.emit_container(rec, "pause", &[]);
        Ok(())
    }

    pub fn unpause(&self, rec: &ContainerRecord) -> Result<(), EngineError> {
        if rec.state != State::Paused {
            return Err(EngineError::Conflict(format!(
                "container {} is not paused",
                rec.name
            )));
        }
        self.plugins
            .isolator()?
            .thaw(&rec.id)
            .map_err(|e| EngineError::plugin(format!("unpausing {}", rec.name), e))?;
        self.db()?
            .set_state_from(&rec.id, State::Paused, State::Running)?;
        self.emit_container(rec, "unpause", &[]);
        Ok(())
    }

    /// `berth update`: new limits, applied live when running.
    pub fn update_limits(
        &self,
        rec: &ContainerRecord,
        limits: &LimitsConfig,
    ) -> Result<(), EngineError> {
        if rec.state.is_live() {
            self.plugins
                .isolator()?
                .update(&rec.id, &limits.to_abi())
                .map_err(|e| EngineError::plugin(format!("updating {}", rec.name), e))?;
        }
        let mut config = rec.config.clone();
        let l = &mut config.limits;
        macro_rules! take {
            ($f:ident) => {
                if limits.$f.is_some() {
                    l.$f = limits.$f.clone();
                }
            };
        }
        take!(memory);
        take!(memory_swap);
        take!(memory_reservation);
        take!(cpu_quota);
        take!(cpu_shares);
        take!(cpuset_cpus);
        take!(cpuset_mems);
        take!(pids);
        take!(blkio_weight);
        self.db()?.update_config(&rec.id, &config)?;
        self.emit_container(rec, "update", &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloexec(fd: libc::c_int) -> bool {
        // SAFETY: F_GETFD on a descriptor the test owns.
        let f = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        assert!(f >= 0);
        f & libc::FD_CLOEXEC != 0
    }

    /// The monitor's ready pipe is handed over as fd 3; when the pipe already is fd 3,
    /// `dup2(3, 3)` would leave it close-on-exec and the monitor could never report.
    #[test]
    fn handover_clears_cloexec_when_fd_is_already_the_target() {
        use std::os::fd::AsRawFd;
        let (_r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let fd = w.as_raw_fd();
        assert!(cloexec(fd));
        handover_fd(fd, fd).unwrap();
        assert!(!cloexec(fd), "FD_CLOEXEC must be cleared when fd == target");
        // The other case: a copy without the flag at the target number.
        let (_r2, w2) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (_r3, spare) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let target = spare.as_raw_fd();
        handover_fd(w2.as_raw_fd(), target).unwrap();
        assert!(!cloexec(target));
        assert!(cloexec(w2.as_raw_fd()));
    }
}

/// One side of `berth cp`.
#[derive(Debug, Clone)]
pub enum CpEnd {
    Host(std::path::PathBuf),
    Container { id: String, path: String },
}

impl Engine {
    /// `berth cp`: between the host and a container (running or not). Paths inside the
    /// container are resolved inside its root, so `..` and symlinks cannot leave it.
    pub fn cp(&self, from: &CpEnd, to: &CpEnd) -> Result<(), EngineError> {
        let ctr = match (from, to) {
            (CpEnd::Container { id, .. }, CpEnd::Host(_)) | (CpEnd::Host(_), CpEnd::Container { id, .. }) => id.clone(),
            _ => {
                return Err(EngineError::Invalid(
                    "copying between containers or between host paths is not supported: one side must be CONTAINER:PATH".into(),
                ))
            }
        };
        let rec = self.db()?.resolve(&ctr)?;
        // The container's root: the live one, or its snapshot mounted for the copy.
        let mut mounted: Option<std::path::PathBuf> = None;
        let root = if rec.state.is_live() && rec.pid > 0 {
            std::path::PathBuf::from(format!("/proc/{}/root", rec.pid))
        } else {
            let m = self.config.run_dir().join("cp").join(&rec.id);
            std::fs::create_dir_all(&m)
                .map_err(|e| EngineError::io(format!("creating {}", m.display()), e))?;
            self.plugins
                .storage()?
                .mount(&rec.id, &m.display().to_string())
                .map_err(|e| {
                    EngineError::plugin(format!("mounting the filesystem of {}", rec.name), e)
                })?;
            mounted = Some(m.clone());
            m
        };
        let r = match (from, to) {
            (CpEnd::Container { path, .. }, CpEnd::Host(dst)) => {
                let src = crate::copy::resolve_in_root(&root, path);
                let dst_abs =
                    std::path::absolute(dst).map_err(|e| EngineError::io("destination", e))?;
                crate::copy::copy_path(
                    &src,
                    std::path::Path::new("/"),
                    &dst_abs.display().to_string(),
                )
            }
            (CpEnd::Host(src), CpEnd::Container { path, .. }) => {
                crate::copy::copy_path(src, &root, path)
            }
            _ => Ok(()),
        };
        if let Some(m) = mounted {
            if let Ok(s) = self.plugins.storage() {
                let _ = s.unmount(&rec.id, &m.display().to_string());
            }
            let _ = std::fs::remove_dir(&m);
        }
        r.map_err(|e| EngineError::Invalid(format!("cp: {e}")))
    }
}
