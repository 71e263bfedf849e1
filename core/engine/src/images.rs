//! The engine side of images: opening the store, and unpacking an image's layers into the
//! active storage driver (keyed by OCI chain IDs, so images share layers).

use std::sync::Arc;

use berth_abi::{ErrorKind, StorageDriver};
use berth_image::{Image, ImageStore};

use crate::{Engine, EngineError};

impl Engine {
    /// The image store at `<root>/images` (an OCI image layout).
    pub fn images(&self) -> Result<&ImageStore, EngineError> {
        if let Some(s) = self.image_store.get() {
            return Ok(s);
        }
        let mut store = ImageStore::open(&self.config.root.join("images"))?;
        if let Some(p) = self.progress.get() {
            store = store.with_progress(p.clone());
        }
        Ok(self.image_store.get_or_init(|| store))
    }

    /// Makes sure every layer of `image` exists in the storage driver; returns the chain ID
    /// of the top layer (None for an image without layers). Unpacking is serialised across
    /// processes with a lock, and a layer another process finished meanwhile is reused.
    pub fn ensure_layers(&self, image: &Image) -> Result<Option<String>, EngineError> {
        let storage = self.plugins.storage()?;
        let chain = image.chain_ids();
        let missing = |s: &Arc<dyn StorageDriver>, id: &str| -> Result<bool, EngineError> {
            match s.usage(id) {
                Ok(_) => Ok(false),
                Err(e) if e.kind == ErrorKind::NotFound => Ok(true),
                Err(e) => Err(EngineError::plugin(format!("checking layer {id}"), e)),
            }
        };
        // Fast path: everything is there (the common case for `run`).
        if let Some(top) = chain.last() {
            if !missing(&storage, top)? {
                return Ok(Some(top.clone()));
            }
        } else {
            return Ok(None);
        }
        let _lock = self.lock("layers")?;
        let mut parent: Option<&str> = None;
        for (i, id) in chain.iter().enumerate() {
            if missing(&storage, id)? {
                let _span = tracing::debug_span!("apply_layer", layer = %id).entered();
                let mut reader = self.images()?.layer_reader(image, i)?;
                match storage.apply_layer(id, parent, &mut reader) {
                    Ok(_) => {}
                    Err(e) if e.kind == ErrorKind::AlreadyExists => {}
                    Err(e) => {
                        return Err(EngineError::plugin(
                            format!(
                                "unpacking layer {} of image {} ({})",
                                i + 1,
                                image.short_id(),
                                image.diff_ids().get(i).cloned().unwrap_or_default()
                            ),
                            e,
                        ))
                    }
                }
            }
            parent = Some(id);
        }
        Ok(chain.last().cloned())
    }
}
