//! The error type of both cgroup plugins, converted to a [`PluginError`] at the boundary.

use std::{io, path::PathBuf};

use berth_abi::{ErrorKind, PluginError};

/// Everything that can go wrong while managing a group.
#[derive(Debug, thiserror::Error)]
pub enum CgError {
    #[error("failed to {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to write {value:?} to {path}: {source}")]
    Write {
        value: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot parse {path}: unexpected content {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error("limit `{limit}` cannot be enforced on this host: {reason}")]
    Unsupported { limit: String, reason: String },
    #[error("invalid group id {id:?}: {reason}")]
    InvalidId { id: String, reason: &'static str },
    #[error("invalid isolator config: {0}")]
    InvalidConfig(String),
    #[error("invalid limit `{limit}`: {reason}")]
    InvalidLimit { limit: &'static str, reason: String },
    #[error("invalid signal {0}")]
    InvalidSignal(i32),
    #[error("group {id:?} does not exist (no {path})")]
    NotFound { id: String, path: PathBuf },
    #[error("group {id:?} already exists ({path}); destroy it first or pick another id")]
    AlreadyExists { id: String, path: PathBuf },
    #[error("{what} of group {id:?} did not finish within {secs} s")]
    Timeout {
        what: &'static str,
        id: String,
        secs: u64,
    },
    #[error("cgroup setup of this host not usable: {0}")]
    Host(String),
}

pub type CgResult<T> = Result<T, CgError>;

impl CgError {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CgError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub fn unsupported(limit: impl Into<String>, reason: impl Into<String>) -> Self {
        CgError::Unsupported {
            limit: limit.into(),
            reason: reason.into(),
        }
    }

    /// The coarse kind the host reacts to.
    pub fn kind(&self) -> ErrorKind {
        fn io_kind(e: &io::Error) -> ErrorKind {
            match e.raw_os_error() {
                Some(libc::EBUSY) => ErrorKind::Busy,
                Some(libc::EACCES) | Some(libc::EPERM) => ErrorKind::PermissionDenied,
                Some(libc::ENOENT) => ErrorKind::NotFound,
                Some(libc::EINVAL) | Some(libc::ERANGE) => ErrorKind::InvalidArgument,
                Some(libc::EOPNOTSUPP) => ErrorKind::Unsupported,
                Some(libc::ENOSPC) | Some(libc::EAGAIN) => ErrorKind::Exhausted,
                _ => ErrorKind::Io,
            }
        }
        match self {
            CgError::Io { source, .. } | CgError::Write { source, .. } => io_kind(source),
            CgError::Parse { .. } => ErrorKind::Io,
            CgError::Unsupported { .. } | CgError::Host(_) => ErrorKind::Unsupported,
            CgError::InvalidId { .. }
            | CgError::InvalidConfig(_)
            | CgError::InvalidLimit { .. }
            | CgError::InvalidSignal(_) => ErrorKind::InvalidArgument,
            CgError::NotFound { .. } => ErrorKind::NotFound,
            CgError::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            CgError::Timeout { .. } => ErrorKind::Busy,
        }
    }
}

impl From<CgError> for PluginError {
    fn from(e: CgError) -> Self {
        PluginError::new(e.kind(), e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_errno() {
        let busy = CgError::io("remove", "/x", io::Error::from_raw_os_error(libc::EBUSY));
        assert_eq!(busy.kind(), ErrorKind::Busy);
        let perm = CgError::io("create", "/x", io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(perm.kind(), ErrorKind::PermissionDenied);
        let unsup = CgError::unsupported("memory", "no memory controller");
        let pe: PluginError = unsup.into();
        assert_eq!(pe.kind, ErrorKind::Unsupported);
        assert!(pe.message().contains("`memory`"), "{}", pe.message());
        assert!(pe.message().contains("no memory controller"));
    }
}
