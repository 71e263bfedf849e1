//! The error value that crosses the plugin boundary.

use std::fmt;

use abi_stable::StableAbi;

/// What went wrong, coarse enough for the host to pick a user-facing reaction
/// (e.g. `NotFound` on remove is success for idempotent operations).
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The named object (layer, snapshot, network, group…) does not exist.
    NotFound = 0,
    /// An object with that name already exists.
    AlreadyExists = 1,
    /// The request itself is malformed (bad subnet, bad id, unsafe path…).
    InvalidArgument = 2,
    /// The plugin or this host cannot do what was asked (e.g. a limit the host can't enforce).
    Unsupported = 3,
    /// The object is in use (a network with attached containers, a layer with children…).
    Busy = 4,
    /// An I/O or system-call error.
    Io = 5,
    /// Missing privilege.
    PermissionDenied = 6,
    /// A bug inside the plugin, including a caught panic.
    Internal = 7,
    /// A resource ran out (exhausted subnet, no free port…).
    Exhausted = 8,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Busy => "busy",
            ErrorKind::Io => "i/o error",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Internal => "internal error",
            ErrorKind::Exhausted => "exhausted",
        }
    }
}

/// A typed error returned by every plugin method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError {
    pub kind: ErrorKind,
    /// A sentence a user can act on: what failed, on which object, and why.
    pub message: String,
}

pub type PluginResult<T> = Result<T, PluginError>;

impl PluginError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        PluginError {
            kind,
            message: message.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn already_exists(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidArgument, m)
    }
    pub fn unsupported(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, m)
    }
    pub fn busy(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Busy, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    /// An I/O error with the context (operation and path) that makes it actionable.
    pub fn io(context: impl fmt::Display, err: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Io, format!("{context}: {err}"))
    }
    pub fn message(&self) -> &str {
        self.message.as_str()
    }
    /// Prefixes the message with more context, keeping the kind.
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for PluginError {}

impl From<std::io::Error> for PluginError {
    fn from(e: std::io::Error) -> Self {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                ErrorKind::InvalidArgument
            }
            _ => ErrorKind::Io,
        };
        PluginError::new(kind, e.to_string())
    }
}
