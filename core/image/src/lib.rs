//! berth-image: the OCI image store.
//!
//! Images live under `<root>/images` as a plain [OCI image layout]
//! (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), so other tools
//! (`skopeo inspect oci:<dir>:<ref>`, `umoci`) can read it as is. Tags are
//! `index.json` entries whose `org.opencontainers.image.ref.name` annotation
//! holds the *fully qualified* reference (`docker.io/library/nginx:latest`,
//! `localhost/foo:1`); an image without tags (dangling) keeps one entry
//! without that annotation. See [`Reference`] for the normalisation.
//!
//! Every blob is verified when written and when read back for use; writes
//! go through a temporary file under `.berth/tmp` + fsync + rename; `index.json`
//! read-modify-writes are serialised with `flock`. See `layout.rs` for the
//! locking protocol and crash behaviour.
//!
//! [OCI image layout]: https://github.com/opencontainers/image-spec/blob/main/image-layout.md

mod archive;
mod changes;
mod digest;
mod error;
mod extras;
mod layer;
mod layout;
mod progress;
mod reference;
mod store;

pub use changes::apply_changes;
pub use digest::{chain_ids, sha256_digest};
pub use error::ImageError;
pub use extras::{ConfigExtras, HealthConfig};
pub use oci_spec::image::{Descriptor, History, ImageConfiguration, ImageManifest};
pub use progress::{terminal_progress, PlainProgress, Progress};
pub use reference::Reference;
pub use store::{ImageStore, WriteLease};

/// The annotation holding an image's reference in `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// An image of the store: one manifest with its configuration and tags.
#[derive(Clone, Debug)]
pub struct Image {
    /// `sha256:<config digest hex>` (what `docker images` shows, shortened).
    pub id: String,
    /// Digest of the manifest blob.
    pub manifest_digest: String,
    pub manifest: ImageManifest,
    pub config: ImageConfiguration,
    /// Every tag pointing at this image (empty for a dangling image).
    pub tags: Vec<Reference>,
    /// Sum of the (stored, possibly compressed) layer sizes.
    pub size: u64,
}

impl Image {
    /// Uncompressed layer digests, bottom first.
    pub fn diff_ids(&self) -> Vec<String> {
        self.config.rootfs().diff_ids().clone()
    }

    /// OCI ChainIDs of the layers, bottom first.
    pub fn chain_ids(&self) -> Vec<String> {
        chain_ids(&self.diff_ids())
    }

    /// Creation time (RFC 3339) from the configuration.
    pub fn created(&self) -> Option<String> {
        self.config.created().clone()
    }

    /// Layer history from the configuration.
    pub fn history(&self) -> Vec<History> {
        self.config.history().clone()
    }

    /// The 12 hex characters `docker images` shows.
    pub fn short_id(&self) -> &str {
        let hex = self.id.strip_prefix("sha256:").unwrap_or(&self.id);
        &hex[..hex.len().min(12)]
    }

    /// True when the image has no tags.
    pub fn is_dangling(&self) -> bool {
        self.tags.is_empty()
    }
}
