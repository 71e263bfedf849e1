//! `berth exec`: a new process in a running container's namespaces and cgroup.

use std::os::fd::{AsRawFd, OwnedFd};

use berth_runtime as runtime;

use crate::{
    container::{ContainerConfig, ContainerRecord, State},
    supervise::{relay, ContainerIo, IoMode},
    Engine, EngineError,
};

#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub workdir: Option<String>,
    pub tty: bool,
    pub interactive: bool,
    pub detach: bool,
    pub privileged: bool,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), EngineError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| EngineError::io("creating a pipe", e.into()))
}

impl Engine {
    /// Runs `req` in the container; returns its exit code (0 when detached).
    pub fn exec(&self, rec: &ContainerRecord, req: &ExecRequest) -> Result<i32, EngineError> {
        match rec.state {
            State::Running => {}
            State::Paused => {
                return Err(EngineError::Conflict(format!(
                    "container {} is paused, unpause the container before exec",
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
        let mut env = rec.config.env.clone();
        for e in &req.env {
            crate::create::set_env(&mut env, e);
        }
        let process = runtime::ProcessSpec {
            args: req.args.clone(),
            env,
            cwd: req
                .workdir
                .clone()
                .unwrap_or_else(|| rec.config.cwd.clone()),
            user: req.user.clone().unwrap_or_else(|| rec.config.user.clone()),
            tty: req.tty,
        };
        let (stdio, io) = if req.tty {
            (runtime::Stdio::Pty, None)
        } else if req.detach {
            let null = || {
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open("/dev/null")
                    .map(OwnedFd::from)
                    .map_err(|e| EngineError::io("opening /dev/null", e))
            };
            (
                runtime::Stdio::Fds {
                    stdin: None,
                    stdout: null()?,
                    stderr: null()?,
                },
                Some(ContainerIo::None),
            )
        } else {
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            let stdin = if req.interactive {
                Some(crate::rt::dup_stdin()?)
            } else {
                None
            };
            (
                runtime::Stdio::Fds {
                    stdin,
                    stdout: out_w,
                    stderr: err_w,
                },
                Some(ContainerIo::Pipes {
                    stdout: out_r,
                    stderr: err_r,
                    stdin: None,
                }),
            )
        };
        let opts = exec_options(&rec.config, rec.pid, req.privileged)?;
        let mut started = match runtime::exec(rec.pid, &process, stdio, &opts) {
            Ok(s) => s,
            Err(e) => {
                if let Some(code) = e.exit_code() {
                    eprintln!("berth: {e}");
                    return Ok(code);
                }
                return Err(EngineError::Invalid(format!("exec in {}: {e}", rec.name)));
            }
        };
        self.emit_container(
            rec,
            &format!("exec_start: {}", req.args.join(" ")),
            &[("execID", started.pid().to_string())],
        );
        let io = match io {
            Some(io) => io,
            None => match started.pty_master() {
                Some(m) => {
                    crate::rt::copy_winsize(0, m.as_raw_fd());
                    ContainerIo::Pty { master: m }
                }
                None => ContainerIo::None,
            },
        };
        if req.detach {
            return Ok(0);
        }
        relay(started.pid(), io, None, IoMode::Foreground, None)?;
        started
            .wait()
            .map(|s| s.code())
            .map_err(|e| EngineError::Invalid(format!("waiting for exec: {e}")))
    }
}

/// How a process is exec'd into the container whose init is `pid`: its capabilities,
/// seccomp profile, and its cgroups (the exec'd process joins them before it execs: the
/// runtime writes it into the same cgroup.procs files the container's init is in).
pub(crate) fn exec_options(
    config: &ContainerConfig,
    pid: i32,
    privileged: bool,
) -> Result<runtime::ExecOptions, EngineError> {
    Ok(runtime::ExecOptions {
        privileged: privileged || config.privileged,
        cap_add: config.cap_add.clone(),
        cap_drop: config.cap_drop.clone(),
        no_new_privileges: config.no_new_privileges,
        cgroup_procs: cgroup_procs_of(pid),
        seccomp: crate::rt::seccomp_profile(config)?,
    })
}

/// The `cgroup.procs` files of every hierarchy `pid` is in (below the mounts), so an exec'd
/// process lands in the container's groups (v1 and v2 alike).
pub fn cgroup_procs_of(pid: i32) -> Vec<std::path::PathBuf> {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return Vec::new();
    };
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        if path == "/" {
            continue; // not in a group of ours
        }
        // Find the mount of this hierarchy.
        for m in mounts.lines() {
            let Some((left, right)) = m.split_once(" - ") else {
                continue;
            };
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let (Some(mp), Some(fstype), Some(opts)) = (f.get(4), r.first(), r.get(2)) else {
                continue;
            };
            let matches = if ctrls.is_empty() {
                *fstype == "cgroup2"
            } else {
                *fstype == "cgroup"
                    && ctrls.split(',').all(|c| {
                        opts.split(',').any(|o| {
                            o == c || o == format!("name={}", c.trim_start_matches("name="))
                        })
                    })
            };
            if matches {
                let p = std::path::Path::new(mp)
                    .join(path.trim_start_matches('/'))
                    .join("cgroup.procs");
                if p.exists() {
                    out.push(p);
                }
                break;
            }
        }
    }
    out
}
