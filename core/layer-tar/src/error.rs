//! Errors of layer application and diffing, each carrying the entry or path concerned.

use std::path::PathBuf;

/// What went wrong while applying or producing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// The layer tar contains an entry that would write outside the target (absolute
    /// escape, `..`, a link pointing outside, a path through a symlink leaving the root).
    #[error("unsafe layer entry {entry:?}: {reason}")]
    Unsafe { entry: String, reason: String },
    /// The tar stream or one of its entries is malformed.
    #[error("malformed layer tar (entry {entry:?}): {reason}")]
    Malformed { entry: String, reason: String },
    /// A system call failed on a path.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LayerError {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
        e: impl Into<std::io::Error>,
    ) -> Self {
        LayerError::Io {
            op,
            path: path.into(),
            source: e.into(),
        }
    }
    pub(crate) fn unsafe_entry(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        LayerError::Unsafe {
            entry: entry.into(),
            reason: reason.into(),
        }
    }
    pub(crate) fn malformed(entry: impl Into<String>, reason: impl Into<String>) -> Self {
        LayerError::Malformed {
            entry: entry.into(),
            reason: reason.into(),
        }
    }
    /// True for errors caused by the input (the caller should report `InvalidArgument`).
    pub fn is_invalid_input(&self) -> bool {
        matches!(
            self,
            LayerError::Unsafe { .. } | LayerError::Malformed { .. }
        )
    }
}

pub type Result<T> = std::result::Result<T, LayerError>;
