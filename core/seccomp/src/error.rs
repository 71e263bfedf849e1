//! Errors of profile parsing and compilation.

use std::path::PathBuf;

/// Everything that can go wrong reading or compiling a profile. `origin` is the profile
/// file (or `<inline profile>` / `built-in default profile`).
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("reading seccomp profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp profile {origin}: {source}")]
    Parse {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("seccomp profile {origin}, {entry} ({names}): {reason}")]
    Invalid {
        origin: String,
        entry: String,
        names: String,
        reason: String,
    },
    #[error("compiling seccomp profile, {entry} ({names}): {op}: {reason}")]
    Compile {
        entry: String,
        names: String,
        op: &'static str,
        reason: String,
    },
    #[error("the compiled seccomp filter has {0} instructions, more than the kernel's 4096")]
    TooLong(usize),
}
