//! `pull`: manifest (or index -> platform manifest), config, layers in
//! parallel; every blob is verified before it becomes visible in the store.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_image::{Image, ImageStore, Reference};
use berth_layer_tar::TarCheckWriter;
use sha2::{Digest as _, Sha256};

use crate::client::{read_limited, split_repository, Client, RegistryOptions};
use crate::error::{DistributionError, Result};
use crate::media::{self, Compression, Kind};
use crate::platform::Platform;
use crate::progress::{TransferEvent, TransferProgress};
use crate::sources::Sources;

/// Largest manifest or index accepted.
pub const MAX_MANIFEST_SIZE: u64 = 4 << 20;
/// Largest image configuration accepted.
pub const MAX_CONFIG_SIZE: u64 = 16 << 20;

/// Options of [`pull`].
#[derive(Clone)]
pub struct PullOptions {
    pub registry: RegistryOptions,
    /// Platform to pick from an index; default: the host's.
    pub platform: Option<Platform>,
    pub progress: Option<Arc<dyn TransferProgress>>,
    /// Layers downloaded at once (Docker's default is 3).
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            registry: RegistryOptions::default(),
            platform: None,
            progress: None,
            max_concurrent_downloads: 3,
        }
    }
}

/// What [`pull`] did.
#[derive(Clone, Debug)]
pub struct PullResult {
    /// The image as stored (tagged with `reference` when it names a tag).
    pub image: Image,
    /// The normalised reference that was pulled.
    pub reference: Reference,
    /// Digest the reference resolved to in the registry (an index's digest
    /// for a multi-platform image): Docker's `Digest:` line.
    pub digest: String,
    /// Digest of the platform manifest that was stored.
    pub manifest_digest: String,
    /// The platform chosen from an index (None for a single manifest).
    pub platform: Option<Platform>,
    pub layers_downloaded: usize,
    /// Layers that were already in the store.
    pub layers_present: usize,
    /// Bytes fetched by this pull.
    pub bytes_downloaded: u64,
    /// Bytes of layers taken from an interrupted earlier pull (resumed with a range
    /// request instead of fetched again).
    pub bytes_resumed: u64,
    /// True when the tag already pointed at this manifest and nothing was fetched.
    pub up_to_date: bool,
    /// Token endpoint requests made (0 for anonymous or basic registries).
    pub token_requests: usize,
}

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub(crate) fn emit(progress: &Option<Arc<dyn TransferProgress>>, ev: TransferEvent<'_>) {
    if let Some(p) = progress {
        p.event(&ev);
    }
}

/// A fetched manifest or index.
pub(crate) struct Fetched {
    pub(crate) bytes: Vec<u8>,
    pub(crate) digest: String,
    pub(crate) kind: Kind,
    pub(crate) json: serde_json::Value,
}

/// GET `/v2/<repo>/manifests/<tag or digest>`, size-limited and verified.
pub(crate) async fn fetch_manifest(
    client: &Client,
    repo: &str,
    scopes: &[String],
    tag_or_digest: &str,
    display: &str,
) -> Result<Fetched> {
    let url = format!("{}/v2/{repo}/manifests/{tag_or_digest}", client.base);
    let resp = client
        .send("GET manifest", scopes, &|| {
            Ok(client
                .http
                .get(&url)
                .header(reqwest::header::ACCEPT, media::ACCEPT_MANIFESTS))
        })
        .await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        let _ = Client::error_code(resp).await;
        return Err(DistributionError::ManifestUnknown {
            reference: display.to_string(),
        });
    }
    if !resp.status().is_success() {
        return Err(client
            .status_error(&format!("GET manifest {display}"), resp)
            .await);
    }
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let header_digest = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let what = format!("manifest of {display}");
    let bytes = read_limited(resp, MAX_MANIFEST_SIZE, &what, client).await?;
    let digest = sha256_hex(&bytes);
    let expected = if tag_or_digest.starts_with("sha256:") {
        Some(tag_or_digest.to_string())
    } else {
        header_digest.filter(|d| d.starts_with("sha256:"))
    };
    if let Some(exp) = expected {
        if exp != digest {
            return Err(DistributionError::DigestMismatch {
                what,
                expected: exp,
                actual: digest,
            });
        }
    }
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| DistributionError::malformed(&what, e))?;
    let kind = media::classify(content_type.as_deref(), &json).map_err(|mt| {
        DistributionError::UnsupportedMediaType {
            media_type: mt,
            what: what.clone(),
        }
    })?;
    Ok(Fetched {
        bytes,
        digest,
        kind,
        json,
    })
}

/// Picks the best manifest of an index for `wanted`.
fn select_platform(
    index: &serde_json::Value,
    wanted: &Platform,
    display: &str,
) -> Result<(String, Platform)> {
    let what = format!("image index of {display}");
    let manifests = index
        .get("manifests")
        .and_then(|m| m.as_array())
        .ok_or_else(|| DistributionError::malformed(&what, "no manifests array"))?;
    let mut best: Option<(u32, String, Platform)> = None;
    let mut available = Vec::new();
    for m in manifests {
        let Some(p) = m.get("platform") else { continue };
        let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let platform = Platform::new(
            s("os"),
            s("architecture"),
            Some(s("variant")).filter(|v| !v.is_empty()),
        );
        if platform.os == "unknown" {
            // Attestation manifests (buildkit) carry unknown/unknown.
            continue;
        }
        available.push(platform.to_string());
        let Some(digest) = m.get("digest").and_then(|d| d.as_str()) else {
            continue;
        };
        if let Some(score) = wanted.match_score(&platform) {
            if best.as_ref().is_none_or(|(b, _, _)| score < *b) {
                best = Some((score, digest.to_string(), platform));
            }
        }
    }
    match best {
        Some((_, d, p)) => Ok((d, p)),
        None => Err(DistributionError::NoMatchingPlatform {
            reference: display.to_string(),
            wanted: wanted.to_string(),
            available: if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            },
        }),
    }
}

/// A layer to fetch.
pub(crate) struct LayerJob {
    digest: String,
    size: u64,
    compression: Compression,
    diff_id: String,
    dest: PathBuf,
}

/// Checks what is written to it (the decompressed stream): its digest, and the layer
/// entry rules the unpacker applies, so a layer it would refuse is refused here.
struct HashSink {
    hasher: Sha256,
    check: TarCheckWriter,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.check.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The checks of a layer's uncompressed content, fed the blob as it downloads.
enum DiffHasher {
    /// Uncompressed: the diff_id is the blob digest, only the entries are checked.
    Plain(TarCheckWriter),
    Gzip(flate2::write::MultiGzDecoder<HashSink>),
    Zstd(zstd::stream::write::Decoder<'static, HashSink>),
}

impl DiffHasher {
    fn new(c: Compression) -> io::Result<DiffHasher> {
        let sink = || -> io::Result<HashSink> {
            Ok(HashSink {
                hasher: Sha256::new(),
                check: TarCheckWriter::new()?,
            })
        };
        Ok(match c {
            Compression::None => DiffHasher::Plain(TarCheckWriter::new()?),
            Compression::Gzip => DiffHasher::Gzip(flate2::write::MultiGzDecoder::new(sink()?)),
            Compression::Zstd => DiffHasher::Zstd(zstd::stream::write::Decoder::new(sink()?)?),
        })
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            DiffHasher::Plain(c) => c.write_all(data),
            DiffHasher::Gzip(d) => d.write_all(data),
            DiffHasher::Zstd(d) => d.write_all(data),
        }
    }

    /// The diff_id (None for an uncompressed layer: diff_id = digest) and the verdict
    /// of the entry check.
    fn finish(self) -> io::Result<(Option<String>, berth_layer_tar::Result<u64>)> {
        let sink = match self {
            DiffHasher::Plain(c) => return Ok((None, c.finish())),
            DiffHasher::Gzip(d) => d.finish()?,
            DiffHasher::Zstd(mut d) => {
                d.flush()?;
                d.into_inner()
            }
        };
        let diff = format!("sha256:{}", hex::encode(sink.hasher.finalize()));
        Ok((Some(diff), sink.check.finish()))
    }
}

/// Where a layer is downloaded to: `.berth/partial/<hex>`, locked while in use and kept
/// when the pull is interrupted so the next one resumes it (the store's temp dir is
/// emptied by every writer that finds itself alone). When another pull holds that file,
/// a private temp file instead (no resume).
struct Partial {
    file: std::fs::File,
    path: PathBuf,
    /// Keep the file when dropped without [`Partial::commit`] (the resumable kind).
    keep: bool,
}

impl Partial {
    fn open(partial_dir: &Path, tmp_dir: &Path, digest: &str) -> Result<Partial> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let path = partial_dir.join(hex);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| DistributionError::io("opening", &path, e))?;
        if fs2::FileExt::try_lock_exclusive(&file).is_ok() {
            return Ok(Partial {
                file,
                path,
                keep: true,
            });
        }
        let tmp = tempfile::Builder::new()
            .prefix("pull-")
            .tempfile_in(tmp_dir)
            .map_err(|e| DistributionError::io("creating temporary file in", tmp_dir, e))?;
        let (file, path) = tmp
            .keep()
            .map_err(|e| DistributionError::io("creating temporary file in", tmp_dir, e.error))?;
        Ok(Partial {
            file,
            path,
            keep: false,
        })
    }

    fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| DistributionError::io("reading the size of", &self.path, e))
    }

    /// Starts over: the bytes so far are not a prefix of the blob.
    fn restart(&mut self) -> Result<()> {
        use std::io::Seek;
        self.file
            .set_len(0)
            .and_then(|_| self.file.rewind())
            .map_err(|e| DistributionError::io("truncating", &self.path, e))
    }

    /// Verified: into place as `dest`.
    fn commit(mut self, dest: &Path) -> Result<()> {
        self.file
            .sync_all()
            .map_err(|e| DistributionError::io("syncing", &self.path, e))?;
        std::fs::rename(&self.path, dest)
            .map_err(|e| DistributionError::io("renaming blob into place at", dest, e))?;
        self.keep = true;
        Ok(())
    }

    /// Bad content: gone, so nothing resumes from it.
    fn discard(mut self) {
        self.keep = false;
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Downloads one layer (resuming an interrupted download of it), verifies digest, size
/// and diff_id, and only then renames it into place. Returns the bytes fetched now and
/// the bytes taken from an earlier, interrupted download.
async fn download_layer(
    client: Arc<Client>,
    repo: String,
    scopes: Vec<String>,
    job: LayerJob,
    dirs: (PathBuf, PathBuf),
    progress: Option<Arc<dyn TransferProgress>>,
) -> Result<(u64, u64)> {
    emit(
        &progress,
        TransferEvent::BlobStart {
            digest: &job.digest,
            size: job.size,
        },
    );
    let (partial_dir, tmp_dir) = dirs;
    let mut part = Partial::open(&partial_dir, &tmp_dir, &job.digest)?;
    // Transport and I/O errors (`?`) keep the partial file for the next pull.
    loop {
        match fetch_into(&client, &repo, &scopes, &job, &mut part, &progress).await? {
            Download::Verified { fetched, resumed } => {
                part.commit(&job.dest)?;
                tracing::debug!(digest = %job.digest, fetched, resumed, "layer downloaded and verified");
                emit(
                    &progress,
                    TransferEvent::BlobDone {
                        digest: &job.digest,
                    },
                );
                return Ok((fetched, resumed));
            }
            // A refused entry is in content that matched its digest: fetching it again
            // cannot change that.
            Download::Bad { resumed, error }
                if resumed > 0 && !matches!(error, DistributionError::UnsafeLayer { .. }) =>
            {
                // The bytes kept from before may be what is wrong: once more from scratch
                // (which resumes nothing, so this happens at most once).
                tracing::warn!(digest = %job.digest, %error, "resumed download failed verification; starting over");
                part.restart()?;
            }
            Download::Bad { error, .. } => {
                part.discard();
                return Err(error);
            }
        }
    }
}

enum Download {
    Verified {
        fetched: u64,
        resumed: u64,
    },
    /// The content does not match the manifest or config.
    Bad {
        resumed: u64,
        error: DistributionError,
    },
}

/// Appends the rest of the blob to `part` (asking for a byte range when it already holds
/// a prefix) and checks the whole.
async fn fetch_into(
    client: &Client,
    repo: &str,
    scopes: &[String],
    job: &LayerJob,
    part: &mut Partial,
    progress: &Option<Arc<dyn TransferProgress>>,
) -> Result<Download> {
    use std::io::{Read, Seek, SeekFrom};
    let url = format!("{}/v2/{repo}/blobs/{}", client.base, job.digest);
    let what = format!("layer {}", job.digest);
    let mut have = part.len()?;
    if have >= job.size {
        part.restart()?;
        have = 0;
    }
    let range = |from: u64| {
        let url = url.clone();
        move || {
            let req = client.http.get(&url);
            Ok(if from > 0 {
                req.header(reqwest::header::RANGE, format!("bytes={from}-"))
            } else {
                req
            })
        }
    };
    let mut resp = client.send("GET blob", scopes, &range(have)).await?;
    if have > 0 && resp.status() == reqwest::StatusCode::RANGE_NOT_SATISFIABLE {
        part.restart()?;
        have = 0;
        resp = client.send("GET blob", scopes, &range(0)).await?;
    }
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(DistributionError::BlobUnknown {
            repository: format!("{}/{repo}", client.registry),
            digest: job.digest.clone(),
        });
    }
    if !resp.status().is_success() {
        return Err(client
            .status_error(&format!("GET blob {}", job.digest), resp)
            .await);
    }
    if have > 0 && resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        // The registry sent the whole blob.
        part.restart()?;
        have = 0;
    }
    let path = part.path.clone();
    let mut hasher = Sha256::new();
    let mut diff = DiffHasher::new(job.compression)
        .map_err(|e| DistributionError::io("creating decompressor for", &path, e))?;
    let mut diff_err: Option<io::Error> = None;
    // The prefix from before goes through the hashers first.
    if have > 0 {
        tracing::info!(digest = %job.digest, bytes = have, "resuming an interrupted download");
        part.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| DistributionError::io("reading", &path, e))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut left = have;
        while left > 0 {
            let n = (left as usize).min(buf.len());
            part.file
                .read_exact(&mut buf[..n])
                .map_err(|e| DistributionError::io("reading", &path, e))?;
            hasher.update(&buf[..n]);
            if diff_err.is_none() {
                diff_err = diff.write(&buf[..n]).err();
            }
            left -= n as u64;
        }
        emit(
            progress,
            TransferEvent::BlobProgress {
                digest: &job.digest,
                bytes: have,
            },
        );
    }
    part.file
        .seek(SeekFrom::Start(have))
        .map_err(|e| DistributionError::io("writing", &path, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, &part.file);
    let mut count = have;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| client.transport_error(&format!("downloading {what} from"), &url, e))?
    {
        count += chunk.len() as u64;
        if count > job.size {
            return Ok(Download::Bad {
                resumed: have,
                error: DistributionError::SizeMismatch {
                    what,
                    expected: job.size,
                    actual: count,
                },
            });
        }
        out.write_all(&chunk)
            .map_err(|e| DistributionError::io("writing", &path, e))?;
        hasher.update(&chunk);
        if diff_err.is_none() {
            diff_err = diff.write(&chunk).err();
        }
        emit(
            progress,
            TransferEvent::BlobProgress {
                digest: &job.digest,
                bytes: chunk.len() as u64,
            },
        );
    }
    out.flush()
        .map_err(|e| DistributionError::io("writing", &path, e))?;
    drop(out);
    let bad = |error| {
        Ok(Download::Bad {
            resumed: have,
            error,
        })
    };
    if count != job.size {
        return bad(DistributionError::SizeMismatch {
            what,
            expected: job.size,
            actual: count,
        });
    }
    let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
    if actual != job.digest {
        return bad(DistributionError::DigestMismatch {
            what,
            expected: job.digest.clone(),
            actual,
        });
    }
    let (diff_id, verdict) = match diff_err.map_or_else(|| diff.finish(), Err) {
        Ok((d, verdict)) => (d.unwrap_or_else(|| actual.clone()), verdict),
        Err(e) => {
            return bad(DistributionError::malformed(
                format!("{what} (decompressing)"),
                e,
            ))
        }
    };
    if diff_id != job.diff_id {
        return bad(DistributionError::DigestMismatch {
            what: format!("uncompressed {what} (diff_id in the image config)"),
            expected: job.diff_id.clone(),
            actual: diff_id,
        });
    }
    if let Err(error) = verdict {
        return bad(DistributionError::UnsafeLayer { what, error });
    }
    Ok(Download::Verified {
        fetched: count - have,
        resumed: have,
    })
}

fn str_field<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

/// A descriptor's (digest, size, mediaType) with validation.
fn desc_fields(d: &serde_json::Value, what: &str) -> Result<(String, u64, String)> {
    let digest = str_field(d, "digest")
        .filter(|s| {
            s.starts_with("sha256:")
                && s.len() == 71
                && s[7..].bytes().all(|b| b.is_ascii_hexdigit())
        })
        .ok_or_else(|| DistributionError::malformed(what, "missing or non-sha256 digest"))?;
    let size = d
        .get("size")
        .and_then(|s| s.as_u64())
        .ok_or_else(|| DistributionError::malformed(what, "missing size"))?;
    let mt = str_field(d, "mediaType").unwrap_or("").to_string();
    Ok((digest.to_string(), size, mt))
}

/// Pulls `reference` into `store` (async version of [`pull`]).
pub async fn pull_async(
    store: &ImageStore,
    reference: &str,
    opts: &PullOptions,
) -> Result<PullResult> {
    let reference = Reference::parse(reference).map_err(DistributionError::Reference)?;
    let display = reference.to_string();
    let (registry, repo) = split_repository(reference.repository())?;
    let (shown, reg): (&str, &str) = (&display, &registry);
    tracing::debug!(reference = shown, registry = reg, "pull");
    let client = Arc::new(Client::connect(&registry, &opts.registry).await?);
    let scopes = vec![format!("repository:{repo}:pull")];
    let target = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_string();
    let top = fetch_manifest(&client, &repo, &scopes, &target, &display).await?;
    emit(
        &opts.progress,
        TransferEvent::Resolved {
            reference: &display,
            digest: &top.digest,
        },
    );
    let (manifest, platform) = match top.kind {
        Kind::Manifest => (None, None),
        Kind::Index => {
            let wanted = opts.platform.clone().unwrap_or_else(Platform::host);
            let (d, p) = select_platform(&top.json, &wanted, &display)?;
            let m =
                fetch_manifest(&client, &repo, &scopes, &d, &format!("{display} ({p})")).await?;
            if m.kind != Kind::Manifest {
                return Err(DistributionError::UnsupportedMediaType {
                    media_type: "nested image index".into(),
                    what: format!("manifest {d} of {display}"),
                });
            }
            (Some(m), Some(p))
        }
    };
    let top_digest = top.digest.clone();
    let manifest = manifest.unwrap_or(top);
    let mwhat = format!("manifest {} of {display}", manifest.digest);

    // Config.
    let cdesc = manifest
        .json
        .get("config")
        .ok_or_else(|| DistributionError::malformed(&mwhat, "no config"))?;
    let (cdigest, csize, cmt) = desc_fields(cdesc, &mwhat)?;
    if cmt != media::OCI_CONFIG && cmt != media::DOCKER_CONFIG {
        return Err(DistributionError::UnsupportedMediaType {
            media_type: cmt,
            what: format!("config of {display} (not a container image)"),
        });
    }
    let layers_json = manifest
        .json
        .get("layers")
        .and_then(|l| l.as_array())
        .ok_or_else(|| DistributionError::malformed(&mwhat, "no layers array"))?;
    let mut layers = Vec::new();
    for l in layers_json {
        let (d, s, mt) = desc_fields(l, &mwhat)?;
        let c = media::layer_compression(&mt).ok_or_else(|| {
            DistributionError::UnsupportedMediaType {
                media_type: mt.clone(),
                what: format!("layer {d} of {display}"),
            }
        })?;
        layers.push((d, s, c));
    }
    let cbytes = if csize > MAX_CONFIG_SIZE {
        return Err(DistributionError::TooLarge {
            what: format!("config {cdigest} of {display}"),
            limit: MAX_CONFIG_SIZE,
        });
    } else {
        let path = store.blob_path(&cdigest)?;
        match std::fs::read(&path) {
            Ok(b) if sha256_hex(&b) == cdigest => b,
            _ => fetch_small_blob(&client, &repo, &scopes, &cdigest, csize, &display).await?,
        }
    };
    let cwhat = format!("config {cdigest} of {display}");
    let config: serde_json::Value =
        serde_json::from_slice(&cbytes).map_err(|e| DistributionError::malformed(&cwhat, e))?;
    let diff_ids: Vec<String> = config
        .pointer("/rootfs/diff_ids")
        .and_then(|d| d.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if diff_ids.len() != layers.len() {
        return Err(DistributionError::malformed(
            &cwhat,
            format!("{} diff_ids for {} layers", diff_ids.len(), layers.len()),
        ));
    }

    // Layers.
    let _lease = store.lease()?;
    let dirs = (
        store.partial_dir().to_path_buf(),
        store.root().join(".berth").join("tmp"),
    );
    let mut jobs = Vec::new();
    let mut present = 0;
    for ((digest, size, compression), diff_id) in layers.iter().zip(diff_ids.iter()) {
        let dest = store.blob_path(digest)?;
        if dest.exists() || jobs.iter().any(|j: &LayerJob| &j.digest == digest) {
            present += 1;
            emit(&opts.progress, TransferEvent::BlobExists { digest });
            continue;
        }
        jobs.push(LayerJob {
            digest: digest.clone(),
            size: *size,
            compression: *compression,
            diff_id: diff_id.clone(),
            dest,
        });
    }
    let downloaded = jobs.len();
    let mut bytes = 0u64;
    let mut resumed = 0u64;
    let mut set = tokio::task::JoinSet::new();
    let mut pending = jobs.into_iter();
    let limit = opts.max_concurrent_downloads.max(1);
    loop {
        while set.len() < limit {
            let Some(job) = pending.next() else { break };
            set.spawn(download_layer(
                client.clone(),
                repo.clone(),
                scopes.clone(),
                job,
                dirs.clone(),
                opts.progress.clone(),
            ));
        }
        let Some(res) = set.join_next().await else {
            break;
        };
        match res {
            Ok(Ok((n, r))) => {
                bytes += n;
                resumed += r;
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(DistributionError::Invalid {
                    what: "layer download task".into(),
                    reason: e.to_string(),
                })
            }
        }
    }

    // Config and manifest, byte for byte, then the index entry.
    write_verified(store, &cbytes, &cdigest, &cmt)?;
    let mmt = str_field(&manifest.json, "mediaType")
        .unwrap_or(media::OCI_MANIFEST)
        .to_string();
    write_verified(store, &manifest.bytes, &manifest.digest, &mmt)?;
    let tags: Vec<Reference> = if reference.is_tag() {
        vec![reference.clone()]
    } else {
        Vec::new()
    };
    let was = tags
        .first()
        .and_then(|t| store.resolve(&t.to_string()).ok())
        .map(|i| i.manifest_digest);
    let image = store.add_manifest(&manifest.digest, &tags)?;
    let mut all: Vec<String> = layers.iter().map(|l| l.0.clone()).collect();
    all.push(cdigest);
    if let Err(e) = Sources::new(store.root()).record(&all, reference.repository()) {
        tracing::warn!(error = %e, "cannot record blob sources");
    }
    Ok(PullResult {
        up_to_date: downloaded == 0 && was.as_deref() == Some(manifest.digest.as_str()),
        image,
        digest: top_digest,
        manifest_digest: manifest.digest,
        platform,
        layers_downloaded: downloaded,
        layers_present: present,
        bytes_downloaded: bytes,
        bytes_resumed: resumed,
        token_requests: client.token_requests(),
        reference,
    })
}

fn write_verified(store: &ImageStore, bytes: &[u8], digest: &str, media_type: &str) -> Result<()> {
    let actual = sha256_hex(bytes);
    if actual != digest {
        return Err(DistributionError::DigestMismatch {
            what: format!("blob {digest}"),
            expected: digest.to_string(),
            actual,
        });
    }
    store.write_blob(&mut &bytes[..], media_type)?;
    Ok(())
}

/// GET a small blob (config) into memory, verified.
async fn fetch_small_blob(
    client: &Client,
    repo: &str,
    scopes: &[String],
    digest: &str,
    size: u64,
    display: &str,
) -> Result<Vec<u8>> {
    let url = format!("{}/v2/{repo}/blobs/{digest}", client.base);
    let resp = client
        .send("GET blob", scopes, &|| Ok(client.http.get(&url)))
        .await?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Err(DistributionError::BlobUnknown {
            repository: format!("{}/{repo}", client.registry),
            digest: digest.to_string(),
        });
    }
    if !resp.status().is_success() {
        return Err(client
            .status_error(&format!("GET blob {digest}"), resp)
            .await);
    }
    let what = format!("config {digest} of {display}");
    let bytes = read_limited(resp, MAX_CONFIG_SIZE, &what, client).await?;
    if bytes.len() as u64 != size {
        return Err(DistributionError::SizeMismatch {
            what,
            expected: size,
            actual: bytes.len() as u64,
        });
    }
    let actual = sha256_hex(&bytes);
    if actual != digest {
        return Err(DistributionError::DigestMismatch {
            what,
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_selection_lists_available() {
        let idx = serde_json::json!({"manifests": [
            {"digest": "sha256:aa", "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            {"digest": "sha256:bb", "platform": {"os": "linux", "architecture": "amd64"}},
            {"digest": "sha256:cc", "platform": {"os": "unknown", "architecture": "unknown"}},
        ]});
        let (d, p) = select_platform(&idx, &Platform::new("linux", "amd64", None), "x").unwrap();
        assert_eq!(d, "sha256:bb");
        assert_eq!(p.to_string(), "linux/amd64");
        let err = select_platform(&idx, &Platform::new("linux", "s390x", None), "x")
            .unwrap_err()
            .to_string();
        assert!(err.contains("linux/arm64/v8, linux/amd64"), "{err}");
        assert!(!err.contains("unknown"), "{err}");
    }

    #[test]
    fn diff_hasher_gzip_and_zstd() {
        let tar_of = |entries: &[(&str, &str)]| {
            let mut b = tar::Builder::new(Vec::new());
            for (name, link) in entries {
                let mut h = tar::Header::new_gnu();
                h.set_size(0);
                h.set_mode(0o644);
                if link.is_empty() {
                    b.append_data(&mut h, name, std::io::empty()).unwrap();
                } else {
                    h.set_entry_type(tar::EntryType::Symlink);
                    b.append_link(&mut h, name, link).unwrap();
                }
            }
            b.into_inner().unwrap()
        };
        let data = tar_of(&[("a", "/etc"), ("b", "")]);
        let bad = tar_of(&[("a", "/etc"), ("a/passwd", "")]);
        let want = sha256_hex(&data);
        let gzip = |d: &[u8]| {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(d).unwrap();
            gz.finish().unwrap()
        };
        let mut h = DiffHasher::new(Compression::Gzip).unwrap();
        for c in gzip(&data).chunks(7) {
            h.write(c).unwrap();
        }
        let (diff, verdict) = h.finish().unwrap();
        assert_eq!(diff, Some(want.clone()));
        assert_eq!(verdict.unwrap(), 2);
        let mut h = DiffHasher::new(Compression::Zstd).unwrap();
        h.write(&zstd::encode_all(&data[..], 3).unwrap()).unwrap();
        let (diff, verdict) = h.finish().unwrap();
        assert_eq!(diff, Some(want));
        assert!(verdict.is_ok());
        let mut h = DiffHasher::new(Compression::None).unwrap();
        h.write(&data).unwrap();
        let (diff, verdict) = h.finish().unwrap();
        assert_eq!(diff, None);
        assert!(verdict.is_ok());
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            let blob = match c {
                Compression::None => bad.clone(),
                Compression::Gzip => gzip(&bad),
                Compression::Zstd => zstd::encode_all(&bad[..], 3).unwrap(),
            };
            let mut h = DiffHasher::new(c).unwrap();
            h.write(&blob).unwrap();
            let err = h.finish().unwrap().1.unwrap_err();
            assert!(err.to_string().contains("a/passwd"), "{c:?}: {err}");
        }
    }
}
