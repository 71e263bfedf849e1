//! Errors of the runtime.

use std::path::PathBuf;

use nix::errno::Errno;

/// Everything that can go wrong creating, starting or waiting for a container process.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The spec cannot be run as written (empty args, bad path, bad option...).
    #[error("invalid container spec: {0}")]
    InvalidSpec(String),
    /// A capability name that the kernel/`caps` crate does not know.
    #[error(
        "unknown capability {0:?} (use Docker names such as NET_ADMIN or CAP_NET_ADMIN, or ALL)"
    )]
    UnknownCapability(String),
    /// The user or group could not be resolved in the container's `/etc/passwd` / `/etc/group`.
    #[error("unable to find user {user:?}: {reason}")]
    User { user: String, reason: String },
    /// A file operation of the parent failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A system call of the parent failed.
    #[error("{op}: {errno}")]
    Sys { op: &'static str, errno: Errno },
    /// The seccomp profile could not be compiled for this process.
    #[error("seccomp profile of {what}: {source}")]
    Seccomp {
        what: String,
        #[source]
        source: berth_seccomp::SeccompError,
    },
    /// The container process failed while setting itself up (reported over the sync pipe).
    #[error("container setup failed: {stage} {object}: {errno}")]
    Setup {
        stage: &'static str,
        object: String,
        errno: Errno,
    },
    /// The command does not exist in the container (Docker exit code 127).
    #[error("exec {command:?}: executable file not found in $PATH or no such file or directory")]
    NotFound { command: String },
    /// The command exists but cannot be executed (Docker exit code 126).
    #[error("exec {command:?}: permission denied or not an executable ({errno})")]
    NotExecutable { command: String, errno: Errno },
    /// The container process vanished before reporting (killed, or a broken pipe).
    #[error("container process {pid} died during {phase}")]
    ChildDied { pid: i32, phase: &'static str },
}

impl RuntimeError {
    /// Docker's exit code for a failed exec: 127 (not found) or 126 (not executable);
    /// `None` for every other error.
    pub fn exit_code(&self) -> Option<i32> {
        match self {
            RuntimeError::NotFound { .. } => Some(127),
            RuntimeError::NotExecutable { .. } => Some(126),
            _ => None,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn sys(op: &'static str, errno: Errno) -> Self {
        RuntimeError::Sys { op, errno }
    }
}
