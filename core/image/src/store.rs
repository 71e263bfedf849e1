//! The image store: resolve, list, import, tag, remove, prune, GC.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oci_spec::image::{
    Arch, Config, Descriptor, DescriptorBuilder, HistoryBuilder, ImageConfiguration, ImageManifest,
    ImageManifestBuilder, MediaType, Os,
};

use crate::changes::apply_changes;
use crate::digest::digest_hex;
use crate::error::{ImageError, Result};
use crate::extras::ConfigExtras;
use crate::layer::{ingest_layer, Compression, LayerReader};
use crate::layout::{Layout, LockGuard};
use crate::reference::{is_hex, Reference};
use crate::{Image, Progress, REF_NAME_ANNOTATION};

/// Handle on an image store directory. Cheap to open; safe to use from
/// several threads and processes at once.
pub struct ImageStore {
    pub(crate) layout: Layout,
    pub(crate) progress: Option<Arc<dyn Progress>>,
}

/// Keeps blob garbage collection away while held: take one around
/// `write_blob` ... `create_image` sequences (build, commit) so that freshly
/// written, not yet referenced blobs are not collected in between.
pub struct WriteLease {
    _guard: LockGuard,
}

/// How `resolve` matched its input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Matched {
    Tag(Reference),
    Digest,
    Id,
}

/// One entry group of index.json: a manifest with its tags.
pub(crate) struct Entry {
    pub(crate) desc: Descriptor,
    pub(crate) tags: Vec<Reference>,
}

impl ImageStore {
    /// Opens the store at `dir`, creating an empty OCI layout if missing.
    pub fn open(dir: &Path) -> Result<ImageStore> {
        let _span = tracing::debug_span!("image_store_open", dir = %dir.display()).entered();
        Ok(ImageStore {
            layout: Layout::open(dir)?,
            progress: None,
        })
    }

    /// Reports progress of imports, loads and saves to `progress`.
    pub fn with_progress(mut self, progress: Arc<dyn Progress>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The directory of the layout.
    pub fn root(&self) -> &Path {
        &self.layout.root
    }

    /// Where interrupted downloads wait to be resumed (`.berth/partial`); writers hold a
    /// [`lease`](Self::lease) while they use it, GC empties it.
    pub fn partial_dir(&self) -> &Path {
        &self.layout.partial
    }

    /// Path of the blob `digest` (`sha256:<hex>`); the blob may not exist.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        self.layout.blob_path(digest)
    }

    /// Holds off blob garbage collection until the lease is dropped.
    pub fn lease(&self) -> Result<WriteLease> {
        Ok(WriteLease {
            _guard: self.layout.writer_guard()?,
        })
    }

    /// Removes temporary files left by killed writers and unreferenced blobs,
    /// if no other writer is active (otherwise it does nothing). Returns the
    /// removed blob digests.
    pub fn cleanup(&self) -> Result<Vec<String>> {
        self.gc()
    }

    // ----- reading -------------------------------------------------------

    pub(crate) fn entries(&self) -> Result<Vec<Entry>> {
        let index = self.layout.read_index()?;
        Ok(group_entries(index.manifests()))
    }

    pub(crate) fn load_image(&self, entry: &Entry) -> Result<Image> {
        let mdigest = entry.desc.digest().to_string();
        let what = format!("manifest {mdigest}");
        let mbytes = self
            .layout
            .read_blob(&mdigest, Some(entry.desc.size()), "index.json")?;
        let manifest: ImageManifest =
            serde_json::from_slice(&mbytes).map_err(|e| ImageError::json(&what, e))?;
        let cdesc = manifest.config();
        let cdigest = cdesc.digest().to_string();
        let cbytes = self.layout.read_blob(&cdigest, Some(cdesc.size()), &what)?;
        let config = parse_config(&cbytes, &format!("image config {cdigest}"))?;
        let size = manifest.layers().iter().map(|l| l.size()).sum();
        Ok(Image {
            id: cdigest,
            manifest_digest: mdigest,
            manifest,
            config,
            tags: entry.tags.clone(),
            size,
        })
    }

    /// Every image with all its tags; dangling images have no tags. Images
    /// whose manifest or config cannot be read are skipped with a warning.
    pub fn list(&self) -> Result<Vec<Image>> {
        let mut out = Vec::new();
        for entry in self.entries()? {
            match self.load_image(&entry) {
                Ok(img) => out.push(img),
                Err(e) => {
                    tracing::warn!(manifest = %entry.desc.digest(), error = %e, "skipping unreadable image")
                }
            }
        }
        Ok(out)
    }

    /// Finds an image by `name[:tag]`, `name@sha256:..`, full id or unique id prefix.
    pub fn resolve(&self, s: &str) -> Result<Image> {
        self.resolve_matched(s).map(|(img, _)| img)
    }

    pub(crate) fn resolve_matched(&self, s: &str) -> Result<(Image, Matched)> {
        let entries = self.entries()?;
        let bare = s.strip_prefix("sha256:").unwrap_or(s);
        let by_id = |hex_prefix: &str, exact: bool| -> Result<Option<Image>> {
            let mut found: Vec<Image> = Vec::new();
            for entry in &entries {
                let mhex = entry.desc.digest().digest().to_string();
                let img = match self.load_image(entry) {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::warn!(manifest = %entry.desc.digest(), error = %e, "skipping unreadable image");
                        continue;
                    }
                };
                let ihex = img.id.trim_start_matches("sha256:");
                let hit = if exact {
                    ihex == hex_prefix || mhex == hex_prefix
                } else {
                    ihex.starts_with(hex_prefix)
                };
                if hit && !found.iter().any(|f| f.id == img.id) {
                    found.push(img);
                }
            }
            match found.len() {
                0 => Ok(None),
                1 => Ok(found.pop()),
                _ => Err(ImageError::Ambiguous {
                    input: s.to_string(),
                    candidates: found.iter().map(|i| i.short_id().to_string()).collect(),
                }),
            }
        };
        if bare.len() == 64 && is_hex(bare) {
            if let Some(img) = by_id(bare, true)? {
                return Ok((img, Matched::Id));
            }
            return Err(ImageError::NotFound(s.to_string()));
        }
        let parsed = Reference::parse(s);
        if let Ok(r) = &parsed {
            if let Some(d) = r.digest() {
                for entry in &entries {
                    if entry.desc.digest().to_string() == d {
                        return Ok((self.load_image(entry)?, Matched::Digest));
                    }
                }
            } else {
                for entry in &entries {
                    if entry.tags.contains(r) {
                        return Ok((self.load_image(entry)?, Matched::Tag(r.clone())));
                    }
                }
            }
        }
        let hex_like = !bare.is_empty() && is_hex(bare) && bare.len() < 64;
        if hex_like {
            if let Some(img) = by_id(bare, false)? {
                return Ok((img, Matched::Id));
            }
        }
        match parsed {
            Err(e) if !hex_like => Err(e),
            _ => Err(ImageError::NotFound(s.to_string())),
        }
    }

    /// Decompressed stream of layer `index` of `image`. The blob digest and
    /// the diff_id are checked at end of stream: a mismatch or truncation is
    /// an I/O error from `read()`.
    pub fn layer_reader(&self, image: &Image, index: usize) -> Result<Box<dyn Read + Send>> {
        let layers = image.manifest.layers();
        let desc = layers.get(index).ok_or_else(|| ImageError::Build {
            what: format!("layer reader for image {}", image.id),
            reason: format!("layer index {index} out of range ({} layers)", layers.len()),
        })?;
        let diff_ids = image.config.rootfs().diff_ids();
        let diff_id = diff_ids.get(index).ok_or_else(|| ImageError::Build {
            what: format!("layer reader for image {}", image.id),
            reason: format!(
                "config has {} diff_ids but manifest has {} layers",
                diff_ids.len(),
                layers.len()
            ),
        })?;
        let mt = desc.media_type().to_string();
        let compression =
            Compression::from_media_type(&mt).ok_or_else(|| ImageError::UnknownMediaType {
                media_type: mt.clone(),
                what: format!("layer {} of image {}", desc.digest(), image.id),
            })?;
        let digest = desc.digest().to_string();
        let path = self.blob_path(&digest)?;
        let file = File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                ImageError::MissingBlob {
                    digest: digest.clone(),
                    referenced_by: format!("manifest {}", image.manifest_digest),
                }
            } else {
                ImageError::io("opening layer blob", &path, e)
            }
        })?;
        let what = format!("layer {digest}");
        let reader = LayerReader::new(file, compression, &digest, desc.size(), diff_id, &what)
            .map_err(|e| ImageError::io("opening layer decoder for", &path, e))?;
        Ok(Box::new(reader))
    }

    // ----- writing -------------------------------------------------------

    /// Streams `data` into a blob (atomic, deduplicated) and describes it.
    pub fn write_blob(&self, data: &mut dyn Read, media_type: &str) -> Result<Descriptor> {
        let _guard = self.layout.writer_guard()?;
        let (digest, size) = self.layout.write_stream(data, "blob data")?;
        descriptor(media_type, &digest, size)
    }

    /// `docker import`: a (gzip/zstd/uncompressed) rootfs tarball becomes a
    /// one-layer image, with `changes` (`CMD`, `ENV`, ...) applied.
    pub fn import(
        &self,
        rootfs_tar: &mut dyn Read,
        reference: Option<&Reference>,
        changes: &[String],
    ) -> Result<Image> {
        let _span =
            tracing::debug_span!("image_import", reference = ?reference.map(|r| r.to_string()))
                .entered();
        if let Some(r) = reference {
            check_taggable(r)?;
        }
        // Validate the changes before reading a single byte.
        let mut runtime_config = Config::default();
        apply_changes(&mut runtime_config, changes)?;
        let _guard = self.layout.writer_guard()?;
        let tmp = self.layout.temp_file()?;
        if let Some(p) = &self.progress {
            p.begin("importing rootfs", None);
        }
        let (ing, tmp) = ingest_layer(rootfs_tar, tmp, "rootfs tarball", self.progress.clone())?;
        if let Some(p) = &self.progress {
            p.end();
        }
        self.layout.commit_blob(tmp, &ing.digest)?;
        tracing::debug!(digest = %ing.digest, diff_id = %ing.diff_id, size = ing.size, "rootfs layer stored");
        let layer = descriptor(ing.compression.oci_media_type(), &ing.digest, ing.size)?;
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let history = HistoryBuilder::default()
            .created(now.clone())
            .created_by("berth import")
            .comment("Imported from tarball")
            .build()
            .map_err(|e| build_err("history", e))?;
        let mut config = ImageConfiguration::default();
        config.set_created(Some(now));
        config.set_architecture(host_arch());
        config.set_os(Os::Linux);
        config.set_config(Some(runtime_config));
        config.rootfs_mut().set_diff_ids(vec![ing.diff_id.clone()]);
        config.set_history(vec![history]);
        let tags: Vec<Reference> = reference.cloned().into_iter().collect();
        self.create_image_locked(config, vec![layer], &tags)
    }

    /// Writes `config` and a manifest over `layers` (already stored blobs),
    /// and points `tags` at it (moving them from other images).
    pub fn create_image(
        &self,
        config: ImageConfiguration,
        layers: Vec<Descriptor>,
        tags: &[Reference],
    ) -> Result<Image> {
        self.create_image_with_extras(config, &ConfigExtras::default(), layers, tags)
    }

    /// [`create_image`](Self::create_image) with Docker's config extensions
    /// (`Healthcheck`, `OnBuild`) written into the config blob.
    pub fn create_image_with_extras(
        &self,
        config: ImageConfiguration,
        extras: &ConfigExtras,
        layers: Vec<Descriptor>,
        tags: &[Reference],
    ) -> Result<Image> {
        let _guard = self.layout.writer_guard()?;
        self.create_image_inner(config, extras, layers, tags)
    }

    /// Docker's config extensions (`Healthcheck`, `OnBuild`) of `image`, read from its
    /// config blob (empty for images that have none).
    pub fn config_extras(&self, image: &Image) -> Result<ConfigExtras> {
        let bytes = self.layout.read_blob(
            &image.id,
            Some(image.manifest.config().size()),
            "image config",
        )?;
        crate::extras::parse(&bytes).map_err(|e| ImageError::json("image config", e))
    }

    pub(crate) fn create_image_locked(
        &self,
        config: ImageConfiguration,
        layers: Vec<Descriptor>,
        tags: &[Reference],
    ) -> Result<Image> {
        self.create_image_inner(config, &ConfigExtras::default(), layers, tags)
    }

    fn create_image_inner(
        &self,
        config: ImageConfiguration,
        extras: &ConfigExtras,
        layers: Vec<Descriptor>,
        tags: &[Reference],
    ) -> Result<Image> {
        for t in tags {
            check_taggable(t)?;
        }
        if config.rootfs().diff_ids().len() != layers.len() {
            return Err(ImageError::Build {
                what: "image".into(),
                reason: format!(
                    "config lists {} diff_ids but {} layers were given",
                    config.rootfs().diff_ids().len(),
                    layers.len()
                ),
            });
        }
        for l in &layers {
            let mt = l.media_type().to_string();
            if Compression::from_media_type(&mt).is_none() {
                return Err(ImageError::UnknownMediaType {
                    media_type: mt,
                    what: format!("layer {}", l.digest()),
                });
            }
        }
        let cbytes = crate::extras::serialize(&config, extras)
            .map_err(|e| ImageError::json("image config", e))?;
        let (cdigest, csize) = self.layout.write_bytes(&cbytes)?;
        let cdesc = descriptor(MediaType::ImageConfig.as_ref(), &cdigest, csize)?;
        let manifest = ImageManifestBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageManifest)
            .config(cdesc)
            .layers(layers)
            .build()
            .map_err(|e| build_err("manifest", e))?;
        let mbytes =
            serde_json::to_vec(&manifest).map_err(|e| ImageError::json("image manifest", e))?;
        let (mdigest, msize) = self.layout.write_bytes(&mbytes)?;
        let mdesc = descriptor(MediaType::ImageManifest.as_ref(), &mdigest, msize)?;
        self.add_to_index(&mdesc, &manifest, tags)?;
        Ok(Image {
            id: cdigest,
            manifest_digest: mdigest,
            size: manifest.layers().iter().map(|l| l.size()).sum(),
            manifest,
            config,
            tags: self.tags_of(&mdesc)?,
        })
    }

    /// Records a manifest that is already stored as a blob byte for byte (for
    /// example one pulled from a registry, whose digest must not change) in
    /// `index.json`, and points `tags` at it. The manifest blob is verified,
    /// and its config and layers must be present.
    pub fn add_manifest(&self, manifest_digest: &str, tags: &[Reference]) -> Result<Image> {
        for t in tags {
            check_taggable(t)?;
        }
        let what = format!("manifest {manifest_digest}");
        let mbytes = self.layout.read_blob(manifest_digest, None, &what)?;
        let manifest: ImageManifest =
            serde_json::from_slice(&mbytes).map_err(|e| ImageError::json(&what, e))?;
        let media_type = manifest
            .media_type()
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_else(|| MediaType::ImageManifest.to_string());
        let mdesc = descriptor(&media_type, manifest_digest, mbytes.len() as u64)?;
        self.add_to_index(&mdesc, &manifest, tags)?;
        let entry = Entry {
            tags: self.tags_of(&mdesc)?,
            desc: mdesc,
        };
        self.load_image(&entry)
    }

    fn tags_of(&self, mdesc: &Descriptor) -> Result<Vec<Reference>> {
        Ok(self
            .entries()?
            .into_iter()
            .find(|e| e.desc.digest() == mdesc.digest())
            .map(|e| e.tags)
            .unwrap_or_default())
    }

    /// Under the index lock: checks every blob is present, then records the
    /// manifest with `tags` in index.json.
    pub(crate) fn add_to_index(
        &self,
        mdesc: &Descriptor,
        manifest: &ImageManifest,
        tags: &[Reference],
    ) -> Result<()> {
        let _lock = self.layout.lock_index()?;
        let referenced_by = format!("manifest {}", mdesc.digest());
        for d in std::iter::once(mdesc)
            .chain(std::iter::once(manifest.config()))
            .chain(manifest.layers().iter())
        {
            let digest = d.digest().to_string();
            if !self.layout.blob_path(&digest)?.exists() {
                return Err(ImageError::MissingBlob {
                    digest,
                    referenced_by: referenced_by.clone(),
                });
            }
        }
        let mut index = self.layout.read_index()?;
        let mut entries = group_entries(index.manifests());
        set_tags(&mut entries, mdesc, tags);
        index.set_manifests(flatten_entries(&entries)?);
        self.layout.write_index(&index)?;
        tracing::debug!(manifest = %mdesc.digest(), tags = ?tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(), "index.json updated");
        Ok(())
    }

    /// Points `target` at the image `source` resolves to.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        check_taggable(target)?;
        let _lock = self.layout.lock_index()?;
        let img = self.resolve(source)?;
        let mut index = self.layout.read_index()?;
        let mut entries = group_entries(index.manifests());
        let Some(entry) = entries
            .iter()
            .find(|e| e.desc.digest().to_string() == img.manifest_digest)
        else {
            return Err(ImageError::NotFound(source.to_string()));
        };
        let mdesc = entry.desc.clone();
        set_tags(&mut entries, &mdesc, std::slice::from_ref(target));
        index.set_manifests(flatten_entries(&entries)?);
        self.layout.write_index(&index)
    }

    /// Removes a tag; the image stays (dangling if it was its last tag).
    pub fn untag(&self, target: &Reference) -> Result<()> {
        let _lock = self.layout.lock_index()?;
        let mut index = self.layout.read_index()?;
        let mut entries = group_entries(index.manifests());
        let Some(entry) = entries.iter_mut().find(|e| e.tags.contains(target)) else {
            return Err(ImageError::NotFound(target.to_string()));
        };
        entry.tags.retain(|t| t != target);
        index.set_manifests(flatten_entries(&entries)?);
        self.layout.write_index(&index)
    }

    /// `docker rmi` semantics; returns `Untagged: ..` / `Deleted: ..` lines.
    pub fn remove(
        &self,
        s: &str,
        in_use: &dyn Fn(&Image) -> bool,
        force: bool,
    ) -> Result<Vec<String>> {
        let _span = tracing::debug_span!("image_remove", image = s, force).entered();
        let mut out = Vec::new();
        {
            let _lock = self.layout.lock_index()?;
            let (img, matched) = self.resolve_matched(s)?;
            let mut index = self.layout.read_index()?;
            let mut entries = group_entries(index.manifests());
            if let Matched::Tag(r) = &matched {
                if img.tags.len() > 1 {
                    if let Some(e) = entries.iter_mut().find(|e| e.tags.contains(r)) {
                        e.tags.retain(|t| t != r);
                    }
                    index.set_manifests(flatten_entries(&entries)?);
                    self.layout.write_index(&index)?;
                    return Ok(vec![format!("Untagged: {}", r.familiar())]);
                }
            } else if img.tags.len() > 1 && !force {
                return Err(ImageError::MultipleTags {
                    image: img.short_id().to_string(),
                    tags: img
                        .tags
                        .iter()
                        .map(|t| t.familiar())
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
            if in_use(&img) && !force {
                return Err(ImageError::InUse {
                    image: match &matched {
                        Matched::Tag(r) => format!("{} ({})", r.familiar(), img.short_id()),
                        _ => img.short_id().to_string(),
                    },
                });
            }
            self.delete_locked(&mut entries, &img, &mut out)?;
            index.set_manifests(flatten_entries(&entries)?);
            self.layout.write_index(&index)?;
        }
        self.gc()?;
        Ok(out)
    }

    fn delete_locked(
        &self,
        entries: &mut Vec<Entry>,
        img: &Image,
        out: &mut Vec<String>,
    ) -> Result<()> {
        for t in &img.tags {
            out.push(format!("Untagged: {}", t.familiar()));
        }
        entries.retain(|e| e.desc.digest().to_string() != img.manifest_digest);
        out.push(format!("Deleted: {}", img.id));
        tracing::debug!(image = %img.id, manifest = %img.manifest_digest, "image deleted from index");
        Ok(())
    }

    /// Removes dangling images (or, with `all`, every image) not in use.
    pub fn prune(&self, all: bool, in_use: &dyn Fn(&Image) -> bool) -> Result<Vec<String>> {
        let mut out = Vec::new();
        {
            let _lock = self.layout.lock_index()?;
            let mut index = self.layout.read_index()?;
            let mut entries = group_entries(index.manifests());
            for img in self.list()? {
                if (all || img.tags.is_empty()) && !in_use(&img) {
                    self.delete_locked(&mut entries, &img, &mut out)?;
                }
            }
            index.set_manifests(flatten_entries(&entries)?);
            self.layout.write_index(&index)?;
        }
        self.gc()?;
        Ok(out)
    }

    /// Deletes blobs no image references and stale temporary files, unless
    /// another writer is active (then GC is deferred to a later call).
    pub(crate) fn gc(&self) -> Result<Vec<String>> {
        let Some(_excl) = self.layout.try_gc_exclusive()? else {
            tracing::debug!("blob GC deferred: another writer is active");
            return Ok(Vec::new());
        };
        self.layout.remove_temp_files();
        self.layout.remove_partial_files();
        let _lock = self.layout.lock_index()?;
        let mut referenced = HashSet::new();
        for entry in self.entries()? {
            let mdigest = entry.desc.digest().to_string();
            referenced.insert(mdigest.clone());
            if entry.desc.media_type() == &MediaType::ImageIndex {
                tracing::warn!(index = %mdigest, "nested index in index.json; skipping GC");
                return Ok(Vec::new());
            }
            let manifest: ImageManifest = match self
                .layout
                .read_blob(&mdigest, None, "index.json")
                .and_then(|b| {
                    serde_json::from_slice(&b).map_err(|e| ImageError::json("manifest", e))
                }) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(manifest = %mdigest, error = %e, "unreadable manifest; skipping GC");
                    return Ok(Vec::new());
                }
            };
            referenced.insert(manifest.config().digest().to_string());
            for l in manifest.layers() {
                referenced.insert(l.digest().to_string());
            }
        }
        let mut removed = Vec::new();
        for digest in self.layout.all_blobs()? {
            if referenced.contains(&digest) {
                continue;
            }
            let path = self.layout.blob_path(&digest)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    tracing::debug!(%digest, "unreferenced blob removed");
                    removed.push(digest);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(ImageError::io("removing blob", &path, e)),
            }
        }
        Ok(removed)
    }
}

pub(crate) fn build_err(what: &str, e: impl std::fmt::Display) -> ImageError {
    ImageError::Build {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

pub(crate) fn descriptor(media_type: &str, digest: &str, size: u64) -> Result<Descriptor> {
    digest_hex(digest)?;
    let d: oci_spec::image::Digest = digest.parse().map_err(|e| ImageError::InvalidDigest {
        input: digest.to_string(),
        reason: format!("{e}"),
    })?;
    DescriptorBuilder::default()
        .media_type(MediaType::from(media_type))
        .digest(d)
        .size(size)
        .build()
        .map_err(|e| build_err("descriptor", e))
}

fn check_taggable(r: &Reference) -> Result<()> {
    if r.digest().is_some() || r.tag().is_none() {
        return Err(ImageError::InvalidReference {
            input: r.to_string(),
            reason: "can only tag with name:tag, not with a digest".into(),
        });
    }
    Ok(())
}

pub(crate) fn host_arch() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        "arm" => Arch::ARM,
        "x86" => Arch::i386,
        "riscv64" => Arch::RISCV64,
        "powerpc64" => Arch::PowerPC64,
        "s390x" => Arch::s390x,
        other => Arch::Other(other.to_string()),
    }
}

/// Parses an image configuration, tolerating Docker's optional fields.
pub(crate) fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfiguration> {
    let mut v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| ImageError::json(what, e))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| ImageError::json(what, "not a JSON object"))?;
    for key in ["history"] {
        if obj.get(key).is_none_or(|h| h.is_null()) {
            obj.insert(key.into(), serde_json::Value::Array(Vec::new()));
        }
    }
    serde_json::from_value(v).map_err(|e| ImageError::json(what, e))
}

/// Groups index.json descriptors by manifest digest, preserving order.
pub(crate) fn group_entries(descs: &[Descriptor]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut pos: HashMap<String, usize> = HashMap::new();
    for d in descs {
        let key = d.digest().to_string();
        let tag = d
            .annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME_ANNOTATION))
            .and_then(|n| Reference::parse(n).ok())
            .filter(|r| r.is_tag());
        let i = *pos.entry(key).or_insert_with(|| {
            let mut desc = d.clone();
            desc.set_annotations(None);
            out.push(Entry {
                desc,
                tags: Vec::new(),
            });
            out.len() - 1
        });
        if let Some(t) = tag {
            if !out[i].tags.contains(&t) {
                out[i].tags.push(t);
            }
        }
    }
    out
}

/// Moves `tags` to the manifest `mdesc` (adding it if new).
fn set_tags(entries: &mut Vec<Entry>, mdesc: &Descriptor, tags: &[Reference]) {
    for e in entries.iter_mut() {
        e.tags.retain(|t| !tags.contains(t));
    }
    let mut base = mdesc.clone();
    base.set_annotations(None);
    match entries
        .iter_mut()
        .find(|e| e.desc.digest() == mdesc.digest())
    {
        Some(e) => e.tags.extend(tags.iter().cloned()),
        None => entries.push(Entry {
            desc: base,
            tags: tags.to_vec(),
        }),
    }
}

/// Back to index.json descriptors: one per tag, or one without a name.
fn flatten_entries(entries: &[Entry]) -> Result<Vec<Descriptor>> {
    let mut out = Vec::new();
    for e in entries {
        if e.tags.is_empty() {
            out.push(e.desc.clone());
        }
        for t in &e.tags {
            let mut d = e.desc.clone();
            let mut ann = HashMap::new();
            ann.insert(REF_NAME_ANNOTATION.to_string(), t.to_string());
            d.set_annotations(Some(ann));
            out.push(d);
        }
    }
    Ok(out)
}
