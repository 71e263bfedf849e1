//! The seam between the engine and berth-runtime: builds the runtime's spec from a
//! container record and wires stdio.

use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::{Path, PathBuf},
};

use berth_runtime as runtime;

use crate::{
    container::{ContainerRecord, MountConfig},
    supervise::{ContainerIo, IoMode},
    Engine, EngineError,
};

pub enum Net {
    New,
    Host,
    Join(PathBuf),
}

pub enum StartError {
    /// The process could not exec: Docker's 126/127 with its message.
    Exec {
        code: i32,
        message: String,
    },
    Other(EngineError),
}

fn rt_err(context: &str, e: runtime::RuntimeError) -> EngineError {
    EngineError::Invalid(format!("{context}: {e}"))
}

/// A container process waiting at its sync point.
pub struct Created {
    inner: runtime::Created,
    io: ContainerIo,
}

pub struct Started {
    inner: runtime::Started,
}

impl Created {
    pub fn pid(&self) -> i32 {
        self.inner.pid()
    }
    pub fn abort(self) {
        self.inner.abort();
    }
    pub fn start(self) -> Result<(Started, ContainerIo), StartError> {
        match self.inner.start() {
            Ok(s) => Ok((Started { inner: s }, self.io)),
            Err(e) => Err(match e.exit_code() {
                Some(code) => StartError::Exec {
                    code,
                    message: e.to_string(),
                },
                None => StartError::Other(rt_err("starting the container process", e)),
            }),
        }
    }
}

impl Started {
    pub fn pid(&self) -> i32 {
        self.inner.pid()
    }
    /// Reaps the process; Docker's exit code.
    pub fn wait(&self) -> Result<i32, EngineError> {
        self.inner
            .wait()
            .map(|s| s.code())
            .map_err(|e| rt_err("waiting for the container", e))
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd), EngineError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| EngineError::io("creating a pipe", e.into()))
}

fn dev_null() -> Result<OwnedFd, EngineError> {
    std::fs::File::open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| EngineError::io("opening /dev/null", e))
}

/// Builds the runtime spec and creates the process (stopped at its sync point).
#[allow(clippy::too_many_arguments)]
pub fn create(
    _engine: &Engine,
    rec: &ContainerRecord,
    rootfs: &Path,
    hostname: &str,
    etc: &[(PathBuf, String)],
    mounts: &[MountConfig],
    devices: &crate::devices::ResolvedDevices,
    net: Net,
    mode: IoMode,
) -> Result<Created, EngineError> {
    let c = &rec.config;
    let spec = runtime::ContainerSpec {
        id: rec.id.clone(),
        rootfs: rootfs.to_path_buf(),
        hostname: hostname.to_string(),
        process: runtime::ProcessSpec {
            args: c.args.clone(),
            env: c.env.clone(),
            cwd: c.cwd.clone(),
            user: c.user.clone(),
            tty: c.tty,
        },
        mounts: mounts.iter().map(to_mount).collect(),
        etc_files: etc.to_vec(),
        network: match net {
            Net::New => runtime::NetworkMode::New,
            Net::Host => runtime::NetworkMode::Host,
            Net::Join(p) => runtime::NetworkMode::Join(p),
        },
        readonly_rootfs: c.readonly_rootfs,
        privileged: c.privileged,
        cap_add: c.cap_add.clone(),
        cap_drop: c.cap_drop.clone(),
        no_new_privileges: c.no_new_privileges,
        init: c.init,
        masked_paths: None,
        readonly_paths: None,
        seccomp: seccomp_profile(c)?,
        devices: devices.nodes.clone(),
        device_rules: crate::devices::oci_rules(&devices.rules),
    };
    // The OCI runtime config is what `inspect` and future runc-compatible tooling read.
    let bundle = rootfs.parent().unwrap_or(rootfs);
    if let Ok(json) = serde_json::to_vec_pretty(&runtime::to_oci_config(&spec)) {
        let _ = std::fs::write(bundle.join("config.json"), json);
    }
    let (stdio, io) = if c.tty {
        (runtime::Stdio::Pty, None)
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        // With `-i` in the foreground the container reads our stdin; under a monitor
        // it reads a pipe the monitor feeds from attach clients (and keeps open, as
        // Docker does, so a detached `-i` container waits for input).
        let (stdin, feed) = match (c.interactive, mode) {
            (true, IoMode::Foreground) => (dup_stdin()?, None),
            (true, _) => {
                let (r, w) = pipe()?;
                (r, Some(w))
            }
            (false, _) => (dev_null()?, None),
        };
        (
            runtime::Stdio::Fds {
                stdin: Some(stdin),
                stdout: out_w,
                stderr: err_w,
            },
            Some(ContainerIo::Pipes {
                stdout: out_r,
                stderr: err_r,
                stdin: feed,
            }),
        )
    };
    let mut inner =
        runtime::create(&spec, stdio).map_err(|e| rt_err("creating the container process", e))?;
    let io = match io {
        Some(io) => io,
        None => match inner.pty_master() {
            Some(m) => {
                if mode == IoMode::Foreground {
                    copy_winsize(0, m.as_raw_fd());
                }
                ContainerIo::Pty { master: m }
            }
            None => ContainerIo::None,
        },
    };
    Ok(Created { inner, io })
}

/// A duplicate of our stdin for `-i`.
pub(crate) fn dup_stdin() -> Result<OwnedFd, EngineError> {
    std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| EngineError::io("duplicating stdin", e))
}

fn to_mount(m: &MountConfig) -> runtime::MountSpec {
    match m.kind.as_str() {
        "tmpfs" => runtime::MountSpec::Tmpfs {
            destination: m.destination.clone(),
            options: m.options.clone(),
        },
        _ => runtime::MountSpec::Bind {
            source: PathBuf::from(&m.source),
            destination: m.destination.clone(),
            read_only: m.read_only,
        },
    }
}

/// Copies the window size of terminal `from` to `to` (a pty master).
pub fn copy_winsize(from: i32, to: i32) {
    let mut ws: libc::winsize = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ/TIOCSWINSZ read/write a winsize struct we own.
    unsafe {
        if libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) == 0 {
            libc::ioctl(to, libc::TIOCSWINSZ, &ws);
        }
    }
}

/// The seccomp profile a container's processes get: Docker's rules — the default
/// profile, none for `--privileged` or `seccomp=unconfined`, else the stored profile.
pub(crate) fn seccomp_profile(
    c: &crate::container::ContainerConfig,
) -> Result<Option<berth_seccomp::Profile>, EngineError> {
    match c.seccomp.as_deref() {
        _ if c.privileged => Ok(None),
        Some("unconfined") => Ok(None),
        None => Ok(Some(berth_seccomp::Profile::default_profile())),
        Some(json) => berth_seccomp::Profile::from_json(json)
            .map(Some)
            .map_err(|e| EngineError::Invalid(format!("the container's seccomp profile: {e}"))),
    }
}
