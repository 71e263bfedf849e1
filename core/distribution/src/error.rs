//! Errors of the distribution client.

use std::path::PathBuf;

use berth_image::ImageError;

/// Everything that can go wrong talking to a registry. Each variant names the
/// registry, repository, reference or digest involved so that a person can act.
#[derive(Debug, thiserror::Error)]
pub enum DistributionError {
    /// The reference given by the user is malformed.
    #[error(transparent)]
    Reference(ImageError),
    /// The local image store failed (or the local image does not exist).
    #[error(transparent)]
    Store(#[from] ImageError),
    /// Nothing listens at the registry's address, or the TLS handshake failed.
    #[error("cannot connect to registry {registry} at {url}: {reason}")]
    Connect {
        registry: String,
        url: String,
        reason: String,
    },
    /// Any other transport error (reset, timeout, malformed HTTP).
    #[error("{op} {url}: {source}")]
    Http {
        op: String,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The manifest (tag or digest) does not exist in the registry.
    #[error("manifest unknown: {reference} not found in registry")]
    ManifestUnknown { reference: String },
    /// The repository does not exist (or is not visible with these credentials).
    #[error("repository unknown: {repository} not found in registry")]
    RepositoryUnknown { repository: String },
    /// A blob named by a manifest is missing from the registry.
    #[error("blob unknown: {digest} of {repository} not found in registry")]
    BlobUnknown { repository: String, digest: String },
    /// The registry wants credentials and none are stored.
    #[error("authentication required for {registry}: run `berth login {registry}`")]
    AuthRequired { registry: String },
    /// Credentials were sent and rejected.
    #[error("authentication failed for {registry}: check `berth login` ({reason})")]
    AuthFailed { registry: String, reason: String },
    /// Authenticated but not allowed to do this.
    #[error("access denied to {repository} on {registry}: {reason}")]
    Denied {
        registry: String,
        repository: String,
        reason: String,
    },
    /// The registry answered with an unexpected status.
    #[error("registry {registry}: {op} returned HTTP {status}: {body}")]
    Status {
        registry: String,
        op: String,
        status: u16,
        body: String,
    },
    /// Downloaded content does not hash to its digest; nothing was stored.
    #[error("digest mismatch for {what}: expected {expected}, got {actual} (nothing stored)")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    /// Downloaded content does not have its announced size; nothing was stored.
    #[error("size mismatch for {what}: expected {expected} bytes, got {actual} (nothing stored)")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// A layer holds an entry that could not be unpacked safely (a path or link leaving
    /// the root, a write through a symlink, a malformed whiteout); nothing was stored.
    #[error("refusing {what} (nothing stored): {error}")]
    UnsafeLayer {
        what: String,
        error: berth_layer_tar::LayerError,
    },
    /// A manifest, index or config larger than berth accepts.
    #[error("{what} is larger than the {limit} bytes limit")]
    TooLarge { what: String, limit: u64 },
    /// A manifest, index, config or token response that cannot be parsed.
    #[error("malformed {what}: {reason}")]
    Malformed { what: String, reason: String },
    /// A manifest or layer media type berth cannot handle.
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType { media_type: String, what: String },
    /// An image index has no manifest for the wanted platform.
    #[error("no image for platform {wanted} in {reference}; available platforms: {available}")]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    /// A local file (credentials file, temporary blob) failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The async runtime could not be created.
    #[error("creating the async runtime: {0}")]
    Runtime(std::io::Error),
    /// A parameter is invalid (registry name, option value).
    #[error("invalid {what}: {reason}")]
    Invalid { what: String, reason: String },
}

impl DistributionError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DistributionError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    pub(crate) fn malformed(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        DistributionError::Malformed {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}

/// Result alias of the crate.
pub type Result<T, E = DistributionError> = std::result::Result<T, E>;
