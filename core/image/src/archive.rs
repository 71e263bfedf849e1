//! `load` of docker-archive / oci-archive files and `save` to a docker-archive
//! that also carries the OCI layout files (like `docker save` since 25.0).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Component, Path, PathBuf};

use flate2::read::MultiGzDecoder;
use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::{Deserialize, Serialize};

use crate::digest::{digest_hex, HashingReader, VerifyingReader};
use crate::error::{ImageError, Result};
use crate::layer::{check_tar, tar_error, Compression};
use crate::layout::MAX_JSON;
use crate::reference::Reference;
use crate::store::{descriptor, host_arch, parse_config, ImageStore, Matched};
use crate::{Image, REF_NAME_ANNOTATION};

const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(Debug, Serialize, Deserialize)]
struct DockerManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// A regular file extracted from an archive into the staging directory.
struct Staged {
    path: PathBuf,
    digest: String,
    size: u64,
}

struct Extracted {
    files: HashMap<String, Staged>,
    links: HashMap<String, String>,
}

impl Extracted {
    fn get(&self, name: &str) -> Option<&Staged> {
        let mut name = normalize(name)?;
        for _ in 0..16 {
            if let Some(s) = self.files.get(&name) {
                return Some(s);
            }
            name = self.links.get(&name)?.clone();
        }
        None
    }

    fn read_json(&self, name: &str, archive: &Path) -> Result<Vec<u8>> {
        let s = self.get(name).ok_or_else(|| ImageError::InvalidArchive {
            path: archive.to_path_buf(),
            reason: format!("{name} is missing"),
        })?;
        if s.size > MAX_JSON {
            return Err(ImageError::InvalidArchive {
                path: archive.to_path_buf(),
                reason: format!("{name} is too large ({} bytes)", s.size),
            });
        }
        std::fs::read(&s.path).map_err(|e| ImageError::io("reading", &s.path, e))
    }
}

/// Normalises an archive member path: no `./`, no `..`, no leading `/`.
fn normalize(name: &str) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?.to_string()),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

fn open_maybe_compressed(path: &Path) -> Result<Box<dyn Read>> {
    let file = File::open(path).map_err(|e| ImageError::io("opening archive", path, e))?;
    let mut buf = BufReader::with_capacity(1 << 20, file);
    let head = buf
        .fill_buf()
        .map_err(|e| ImageError::io("reading archive", path, e))?;
    let compression = Compression::detect(head).map_err(|reason| ImageError::UnknownArchive {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(match compression {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buf)
                .map_err(|e| ImageError::io("reading archive", path, e))?,
        ),
    })
}

/// Hashes a layer file, decompressing it first if it is compressed, and checks in the
/// same pass that it is a tar whose entries are safe to unpack: returns
/// (compression, diff_id, verdict of the check). The verdict comes apart so that
/// callers report a diff_id mismatch (a corrupted layer) before what the check found in
/// the content. `what` names the layer in errors.
fn diff_id_of(path: &Path, what: &str) -> Result<(Compression, String, Result<()>)> {
    let file = File::open(path).map_err(|e| ImageError::io("opening", path, e))?;
    let mut buf = BufReader::with_capacity(1 << 20, file);
    let head = buf
        .fill_buf()
        .map_err(|e| ImageError::io("reading", path, e))?;
    let c = Compression::detect(head).map_err(|reason| ImageError::InvalidTar {
        what: what.to_string(),
        reason,
    })?;
    let reader: Box<dyn Read> = match c {
        Compression::None => Box::new(buf),
        Compression::Gzip => Box::new(MultiGzDecoder::new(buf)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buf)
                .map_err(|e| ImageError::io("reading", path, e))?,
        ),
    };
    let mut hashing = HashingReader::new(reader);
    let verdict = check_tar(&mut hashing, what).map(|_| ());
    // The rest of the stream (after the archive, or after a refused entry) still counts.
    let (d, _, _) = hashing.finish().map_err(|e| tar_error(e, what))?;
    Ok((c, d, verdict))
}

impl ImageStore {
    /// Loads a docker-save archive or an OCI archive (optionally gzip/zstd
    /// compressed). Blobs are stored byte-identical. Returns the loaded images.
    pub fn load(&self, archive: &Path) -> Result<Vec<Image>> {
        let _span = tracing::debug_span!("image_load", archive = %archive.display()).entered();
        let _guard = self.layout.writer_guard()?;
        let staging = self.layout.temp_dir("load-")?;
        let total = std::fs::metadata(archive).map(|m| m.len()).ok();
        if let Some(p) = &self.progress {
            p.begin(&format!("loading {}", archive.display()), total);
        }
        let ex = self.extract(archive, staging.path())?;
        if let Some(p) = &self.progress {
            p.end();
        }
        let loaded = if ex.get("manifest.json").is_some() {
            self.load_docker(archive, &ex)?
        } else if ex.get("index.json").is_some() && ex.get("oci-layout").is_some() {
            self.load_oci(archive, &ex)?
        } else {
            return Err(ImageError::UnknownArchive {
                path: archive.to_path_buf(),
                reason: "it has neither manifest.json nor oci-layout + index.json".into(),
            });
        };
        drop(staging);
        Ok(loaded)
    }

    fn extract(&self, archive: &Path, dir: &Path) -> Result<Extracted> {
        let reader = open_maybe_compressed(archive)?;
        let mut tar = tar::Archive::new(reader);
        let mut ex = Extracted {
            files: HashMap::new(),
            links: HashMap::new(),
        };
        let bad = |seen: usize, e: io::Error| {
            if seen == 0 {
                ImageError::UnknownArchive {
                    path: archive.to_path_buf(),
                    reason: format!("not a readable tar archive: {e}"),
                }
            } else {
                ImageError::InvalidArchive {
                    path: archive.to_path_buf(),
                    reason: format!("corrupt or truncated: {e}"),
                }
            }
        };
        let mut seen = 0usize;
        let entries = tar.entries().map_err(|e| bad(0, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| bad(seen, e))?;
            seen += 1;
            let raw = entry
                .path()
                .map_err(|e| bad(seen, e))?
                .to_string_lossy()
                .to_string();
            let Some(name) = normalize(&raw) else {
                continue;
            };
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                if let Ok(Some(target)) = entry.link_name() {
                    let target = target.to_string_lossy().to_string();
                    let resolved = if kind.is_symlink() && !target.starts_with('/') {
                        let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                        normalize(&parent.join(&target).to_string_lossy())
                    } else {
                        normalize(&target)
                    };
                    if let Some(r) = resolved {
                        ex.links.insert(name, r);
                    }
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let path = dir.join(format!("f{seen}"));
            let out = File::create(&path).map_err(|e| ImageError::io("creating", &path, e))?;
            let mut w = io::BufWriter::with_capacity(1 << 20, out);
            let mut h = HashingReader::new(&mut entry);
            io::copy(&mut h, &mut w).map_err(|e| bad(seen, e))?;
            let (digest, size, _) = h.finish().map_err(|e| bad(seen, e))?;
            w.flush().map_err(|e| ImageError::io("writing", &path, e))?;
            if let Some(p) = &self.progress {
                p.advance(size);
            }
            ex.files.insert(name, Staged { path, digest, size });
        }
        if seen == 0 {
            return Err(ImageError::UnknownArchive {
                path: archive.to_path_buf(),
                reason: "empty archive".into(),
            });
        }
        Ok(ex)
    }

    fn load_docker(&self, archive: &Path, ex: &Extracted) -> Result<Vec<Image>> {
        let bytes = ex.read_json("manifest.json", archive)?;
        let entries: Vec<DockerManifestEntry> = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::json(format!("manifest.json in {}", archive.display()), e))?;
        let missing = |name: &str| ImageError::MissingBlob {
            digest: name.to_string(),
            referenced_by: format!("manifest.json in {}", archive.display()),
        };
        // Verify everything before committing anything.
        let mut plan = Vec::new();
        for entry in entries {
            let cbytes = ex
                .read_json(&entry.config, archive)
                .map_err(|_| missing(&entry.config))?;
            let config = parse_config(
                &cbytes,
                &format!("config {} in {}", entry.config, archive.display()),
            )?;
            let diff_ids = config.rootfs().diff_ids().clone();
            if diff_ids.len() != entry.layers.len() {
                return Err(ImageError::InvalidArchive {
                    path: archive.to_path_buf(),
                    reason: format!(
                        "config {} lists {} diff_ids but manifest.json {} layers",
                        entry.config,
                        diff_ids.len(),
                        entry.layers.len()
                    ),
                });
            }
            let mut tags = Vec::new();
            for t in entry.repo_tags.iter().flatten() {
                tags.push(Reference::parse(t)?);
            }
            let mut layers = Vec::new();
            for (i, lname) in entry.layers.iter().enumerate() {
                let staged = ex.get(lname).ok_or_else(|| missing(lname))?;
                let what = format!("layer {lname} in {}", archive.display());
                let (c, diff, verdict) = diff_id_of(&staged.path, &what)?;
                if diff != diff_ids[i] {
                    return Err(ImageError::DigestMismatch {
                        what,
                        expected: diff_ids[i].clone(),
                        actual: diff,
                    });
                }
                verdict?;
                layers.push((
                    staged,
                    descriptor(c.oci_media_type(), &staged.digest, staged.size)?,
                ));
            }
            plan.push((cbytes, tags, layers));
        }
        let mut images = Vec::new();
        for (cbytes, tags, layers) in plan {
            for (staged, d) in &layers {
                self.commit_staged(staged, d.digest().as_ref())?;
            }
            let layers: Vec<Descriptor> = layers.into_iter().map(|(_, d)| d).collect();
            let (cdigest, csize) = self.layout.write_bytes(&cbytes)?;
            let cdesc = descriptor(MediaType::ImageConfig.as_ref(), &cdigest, csize)?;
            let manifest = oci_spec::image::ImageManifestBuilder::default()
                .schema_version(2u32)
                .media_type(MediaType::ImageManifest)
                .config(cdesc)
                .layers(layers)
                .build()
                .map_err(|e| crate::store::build_err("manifest", e))?;
            let mbytes =
                serde_json::to_vec(&manifest).map_err(|e| ImageError::json("manifest", e))?;
            let (mdigest, msize) = self.layout.write_bytes(&mbytes)?;
            let mdesc = descriptor(MediaType::ImageManifest.as_ref(), &mdigest, msize)?;
            self.add_to_index(&mdesc, &manifest, &tags)?;
            images.push(self.image_by_manifest(&mdigest)?);
        }
        Ok(images)
    }

    fn commit_staged(&self, staged: &Staged, digest: &str) -> Result<()> {
        if staged.digest != digest {
            return Err(ImageError::DigestMismatch {
                what: staged.path.display().to_string(),
                expected: digest.to_string(),
                actual: staged.digest.clone(),
            });
        }
        if self.layout.blob_path(digest)?.exists() {
            return Ok(());
        }
        // The same staged file may back several names; copy rather than move
        // if it is already gone (moved for an earlier descriptor).
        self.layout.commit_blob_path(&staged.path, digest)?;
        Ok(())
    }

    fn image_by_manifest(&self, mdigest: &str) -> Result<Image> {
        let entries = self.entries()?;
        let e = entries
            .iter()
            .find(|e| e.desc.digest().to_string() == mdigest)
            .ok_or_else(|| ImageError::NotFound(mdigest.to_string()))?;
        self.load_image(e)
    }

    /// Verified blob from the archive's `blobs/<alg>/<hex>`.
    fn oci_blob<'a>(
        &self,
        ex: &'a Extracted,
        d: &Descriptor,
        archive: &Path,
        by: &str,
    ) -> Result<&'a Staged> {
        let digest = d.digest().to_string();
        let hex = digest_hex(&digest)?;
        let staged =
            ex.get(&format!("blobs/sha256/{hex}"))
                .ok_or_else(|| ImageError::MissingBlob {
                    digest: digest.clone(),
                    referenced_by: format!("{by} in {}", archive.display()),
                })?;
        if staged.digest != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("blob blobs/sha256/{hex} in {}", archive.display()),
                expected: digest,
                actual: staged.digest.clone(),
            });
        }
        if staged.size != d.size() {
            return Err(ImageError::SizeMismatch {
                what: format!("blob {digest} in {}", archive.display()),
                expected: d.size(),
                actual: staged.size,
            });
        }
        Ok(staged)
    }

    fn load_oci(&self, archive: &Path, ex: &Extracted) -> Result<Vec<Image>> {
        let bytes = ex.read_json("index.json", archive)?;
        let index: ImageIndex = serde_json::from_slice(&bytes)
            .map_err(|e| ImageError::json(format!("index.json in {}", archive.display()), e))?;
        let mut manifests: Vec<(Descriptor, Vec<Reference>)> = Vec::new();
        for d in index.manifests() {
            let tags = oci_tags(d);
            match d.media_type() {
                MediaType::ImageManifest => manifests.push((d.clone(), tags)),
                MediaType::Other(s)
                    if s == "application/vnd.docker.distribution.manifest.v2+json" =>
                {
                    manifests.push((d.clone(), tags))
                }
                MediaType::ImageIndex => {
                    let staged = self.oci_blob(ex, d, archive, "index.json")?;
                    let nbytes = std::fs::read(&staged.path)
                        .map_err(|e| ImageError::io("reading", &staged.path, e))?;
                    let nested: ImageIndex = serde_json::from_slice(&nbytes)
                        .map_err(|e| ImageError::json(format!("index {}", d.digest()), e))?;
                    let arch = host_arch();
                    let pick = nested
                        .manifests()
                        .iter()
                        .find(|m| {
                            m.platform()
                                .as_ref()
                                .is_some_and(|p| *p.architecture() == arch)
                        })
                        .or_else(|| nested.manifests().first())
                        .ok_or_else(|| ImageError::InvalidArchive {
                            path: archive.to_path_buf(),
                            reason: format!("index {} lists no manifests", d.digest()),
                        })?;
                    manifests.push((pick.clone(), tags));
                }
                other => {
                    return Err(ImageError::UnknownMediaType {
                        media_type: other.to_string(),
                        what: format!("index.json entry {} in {}", d.digest(), archive.display()),
                    })
                }
            }
        }
        // Verify everything before committing anything.
        let mut plan = Vec::new();
        for (mdesc, tags) in manifests {
            let mstaged = self.oci_blob(ex, &mdesc, archive, "index.json")?;
            let mbytes = std::fs::read(&mstaged.path)
                .map_err(|e| ImageError::io("reading", &mstaged.path, e))?;
            let manifest: ImageManifest = serde_json::from_slice(&mbytes)
                .map_err(|e| ImageError::json(format!("manifest {}", mdesc.digest()), e))?;
            let by = format!("manifest {}", mdesc.digest());
            let cstaged = self.oci_blob(ex, manifest.config(), archive, &by)?;
            let cbytes = std::fs::read(&cstaged.path)
                .map_err(|e| ImageError::io("reading", &cstaged.path, e))?;
            let config = parse_config(&cbytes, &format!("config {}", manifest.config().digest()))?;
            let diff_ids = config.rootfs().diff_ids();
            if diff_ids.len() != manifest.layers().len() {
                return Err(ImageError::InvalidArchive {
                    path: archive.to_path_buf(),
                    reason: format!(
                        "{by}: {} layers but {} diff_ids",
                        manifest.layers().len(),
                        diff_ids.len()
                    ),
                });
            }
            let mut blobs = vec![
                (mstaged, mdesc.digest().to_string()),
                (cstaged, manifest.config().digest().to_string()),
            ];
            for (i, l) in manifest.layers().iter().enumerate() {
                let mt = l.media_type().to_string();
                let Some(c) = Compression::from_media_type(&mt) else {
                    return Err(ImageError::UnknownMediaType {
                        media_type: mt,
                        what: format!("layer {} of {by}", l.digest()),
                    });
                };
                let staged = self.oci_blob(ex, l, archive, &by)?;
                let what = format!("layer {} of {by} in {}", l.digest(), archive.display());
                let (found, diff, verdict) = diff_id_of(&staged.path, &what)?;
                if found != c {
                    return Err(ImageError::InvalidArchive {
                        path: archive.to_path_buf(),
                        reason: format!(
                            "layer {} has media type {mt} but its content is {found:?}",
                            l.digest()
                        ),
                    });
                }
                if diff != diff_ids[i] {
                    return Err(ImageError::DigestMismatch {
                        what: format!("diff_id of layer {} in {}", l.digest(), archive.display()),
                        expected: diff_ids[i].clone(),
                        actual: diff,
                    });
                }
                verdict?;
                blobs.push((staged, l.digest().to_string()));
            }
            let mut mdesc_clean = descriptor(
                mdesc.media_type().as_ref(),
                mdesc.digest().as_ref(),
                mdesc.size(),
            )?;
            mdesc_clean.set_media_type(mdesc.media_type().clone());
            plan.push((mdesc_clean, manifest, tags, blobs));
        }
        let mut images = Vec::new();
        for (mdesc, manifest, tags, blobs) in plan {
            for (staged, digest) in blobs {
                self.commit_staged(staged, &digest)?;
            }
            self.add_to_index(&mdesc, &manifest, &tags)?;
            images.push(self.image_by_manifest(mdesc.digest().as_ref())?);
        }
        Ok(images)
    }

    /// Writes a docker-archive of `images` (`manifest.json` + `repositories`)
    /// that is also an OCI layout (`oci-layout`, `index.json`, `blobs/`),
    /// loadable by `docker load` and `podman load`.
    pub fn save(&self, images: &[&str], out: &mut dyn Write) -> Result<()> {
        let _span = tracing::debug_span!("image_save", images = ?images).entered();
        let mut chosen: Vec<(Image, Vec<Reference>)> = Vec::new();
        for s in images {
            let (img, matched) = self.resolve_matched(s)?;
            let tags = match matched {
                Matched::Tag(r) => vec![r],
                _ => img.tags.clone(),
            };
            match chosen
                .iter_mut()
                .find(|(i, _)| i.manifest_digest == img.manifest_digest)
            {
                Some((_, t)) => {
                    for tag in tags {
                        if !t.contains(&tag) {
                            t.push(tag);
                        }
                    }
                }
                None => chosen.push((img, tags)),
            }
        }
        let total: u64 = chosen.iter().map(|(i, _)| i.size).sum();
        if let Some(p) = &self.progress {
            p.begin("saving images", Some(total));
        }
        let mut builder = tar::Builder::new(out);
        let mut written: Vec<String> = Vec::new();
        let mut docker_manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut index_descs = Vec::new();
        for (img, tags) in &chosen {
            let mut blobs: Vec<(String, u64)> = vec![
                (img.manifest_digest.clone(), 0),
                (img.id.clone(), img.manifest.config().size()),
            ];
            for l in img.manifest.layers() {
                blobs.push((l.digest().to_string(), l.size()));
            }
            for (digest, size) in blobs {
                if written.contains(&digest) {
                    continue;
                }
                let path = self.blob_path(&digest)?;
                let file =
                    File::open(&path).map_err(|e| ImageError::io("opening blob", &path, e))?;
                let actual = file
                    .metadata()
                    .map_err(|e| ImageError::io("stat", &path, e))?
                    .len();
                let size = if size == 0 { actual } else { size };
                if actual != size {
                    return Err(ImageError::SizeMismatch {
                        what: format!("blob {}", path.display()),
                        expected: size,
                        actual,
                    });
                }
                let reader = VerifyingReader::new(
                    BufReader::with_capacity(1 << 20, file),
                    format!("blob {}", path.display()),
                    digest.clone(),
                    Some(size),
                );
                let reader = ProgressReader {
                    inner: reader,
                    progress: self.progress.as_deref(),
                };
                append(
                    &mut builder,
                    &format!("blobs/sha256/{}", digest_hex(&digest)?),
                    size,
                    reader,
                )?;
                written.push(digest);
            }
            let layer_paths: Vec<String> = img
                .manifest
                .layers()
                .iter()
                .map(|l| format!("blobs/sha256/{}", l.digest().digest()))
                .collect();
            docker_manifest.push(DockerManifestEntry {
                config: format!("blobs/sha256/{}", img.id.trim_start_matches("sha256:")),
                repo_tags: Some(tags.iter().map(|t| t.familiar()).collect()),
                layers: layer_paths,
            });
            let top = img
                .manifest
                .layers()
                .last()
                .map(|l| l.digest().digest().to_string());
            for t in tags {
                if let (Some(tag), Some(top)) = (t.tag(), &top) {
                    repositories
                        .entry(t.familiar_repository().to_string())
                        .or_default()
                        .insert(tag.to_string(), top.clone());
                }
            }
            let base = self
                .entries()?
                .into_iter()
                .find(|e| e.desc.digest().to_string() == img.manifest_digest)
                .map(|e| e.desc)
                .ok_or_else(|| ImageError::NotFound(img.manifest_digest.clone()))?;
            if tags.is_empty() {
                index_descs.push(base.clone());
            }
            for t in tags {
                let mut d = base.clone();
                let mut ann = HashMap::new();
                ann.insert(CONTAINERD_NAME.to_string(), t.to_string());
                if let Some(tag) = t.tag() {
                    ann.insert(REF_NAME_ANNOTATION.to_string(), tag.to_string());
                }
                d.set_annotations(Some(ann));
                index_descs.push(d);
            }
        }
        let mut index = crate::layout::empty_index()?;
        index.set_manifests(index_descs);
        let json =
            |v: &dyn erased::Json, what: &str| v.to_json().map_err(|e| ImageError::json(what, e));
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            ("index.json", json(&index, "index.json")?),
            ("manifest.json", json(&docker_manifest, "manifest.json")?),
            ("repositories", json(&repositories, "repositories")?),
        ];
        for (name, data) in files {
            append(&mut builder, name, data.len() as u64, &data[..])?;
        }
        builder
            .into_inner()
            .and_then(|w| w.flush())
            .map_err(|e| ImageError::io("writing archive", "<output>", e))?;
        if let Some(p) = &self.progress {
            p.end();
        }
        Ok(())
    }
}

mod erased {
    pub(super) trait Json {
        fn to_json(&self) -> serde_json::Result<Vec<u8>>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Result<Vec<u8>> {
            serde_json::to_vec(self)
        }
    }
}

struct ProgressReader<'a, R> {
    inner: R,
    progress: Option<&'a dyn crate::Progress>,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(p) = self.progress {
            p.advance(n as u64);
        }
        Ok(n)
    }
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    name: &str,
    size: u64,
    data: impl Read,
) -> Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header.set_entry_type(tar::EntryType::Regular);
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| ImageError::io("writing archive member", name, e))
}

/// Tags an OCI archive's index entry carries: `io.containerd.image.name`, or
/// `org.opencontainers.image.ref.name` when it is a full reference (a bare tag
/// such as `latest` names no repository and is ignored).
fn oci_tags(d: &Descriptor) -> Vec<Reference> {
    let Some(ann) = d.annotations() else {
        return Vec::new();
    };
    let candidate = ann.get(CONTAINERD_NAME).or_else(|| {
        ann.get(REF_NAME_ANNOTATION)
            .filter(|n| n.contains('/') || n.contains(':'))
    });
    candidate
        .and_then(|n| Reference::parse(n).ok())
        .filter(|r| r.is_tag())
        .into_iter()
        .collect()
}
