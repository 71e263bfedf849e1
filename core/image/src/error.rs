//! Errors of the image store.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in the image store. Each variant names the
/// object (path, digest, reference) and the operation so that a person can act.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// An I/O operation on a file of the store or of an archive failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Reading an input stream (tarball, archive) failed.
    #[error("reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: io::Error,
    },
    /// The reference (name, tag or digest) is malformed.
    #[error("invalid reference format {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },
    /// A digest string is malformed or uses an unsupported algorithm.
    #[error("invalid digest {input:?}: {reason}")]
    InvalidDigest { input: String, reason: String },
    /// Content does not hash to the digest it claims.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Content does not have the size it claims.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// A manifest or archive names a blob that is not there.
    #[error("missing blob {digest} referenced by {referenced_by}")]
    MissingBlob {
        digest: String,
        referenced_by: String,
    },
    /// A media type berth does not know how to handle.
    #[error("unsupported media type {media_type:?} for {what}")]
    UnknownMediaType { media_type: String, what: String },
    /// A JSON document of the store or an archive cannot be parsed.
    #[error("invalid {what}: {reason}")]
    InvalidJson { what: String, reason: String },
    /// A layer holds an entry that could not be unpacked safely (a path or link leaving
    /// the root, a write through a symlink, a malformed whiteout): the image is refused
    /// when it enters the store rather than failing at its first run.
    #[error("refusing {what}: {error}")]
    UnsafeLayer {
        what: String,
        error: berth_layer_tar::LayerError,
    },
    /// The input is not a valid (possibly compressed) tar stream.
    #[error("invalid tar stream {what}: {reason}")]
    InvalidTar { what: String, reason: String },
    /// A file given to `load` is neither a docker-archive nor an oci-archive.
    #[error("{}: not a docker-archive or oci-archive ({reason})", path.display())]
    UnknownArchive { path: PathBuf, reason: String },
    /// An archive is structurally broken.
    #[error("invalid archive {}: {reason}", path.display())]
    InvalidArchive { path: PathBuf, reason: String },
    /// No image matches what was asked for.
    #[error("no such image: {0}")]
    NotFound(String),
    /// A short id matches more than one image.
    #[error(
        "short image id {input:?} is ambiguous: it matches {candidates:?}; give more characters"
    )]
    Ambiguous {
        input: String,
        candidates: Vec<String>,
    },
    /// The image is used by a container and `force` was not given.
    #[error(
        "image {image} is in use by a container; stop and remove the container first or use force"
    )]
    InUse { image: String },
    /// The image has several tags and was addressed by id without `force`.
    #[error(
        "image {image} is referenced in multiple repositories ({tags}); untag them or use force"
    )]
    MultipleTags { image: String, tags: String },
    /// A `docker import -c` style change instruction is invalid.
    #[error("invalid change {change:?}: {reason}")]
    InvalidChange { change: String, reason: String },
    /// An image configuration or manifest could not be assembled.
    #[error("building {what}: {reason}")]
    Build { what: String, reason: String },
}

impl ImageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn json(what: impl Into<String>, err: impl std::fmt::Display) -> Self {
        ImageError::InvalidJson {
            what: what.into(),
            reason: err.to_string(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = ImageError> = std::result::Result<T, E>;
