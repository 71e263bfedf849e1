//! `push`: blobs (skipped when present, mounted across repositories when
//! known to exist in another repository of the registry, else uploaded
//! monolithically or in chunks), then the manifest byte for byte.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use berth_image::{ImageStore, Reference};
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::client::{split_repository, Client, RegistryOptions};
use crate::error::{DistributionError, Result};
use crate::media;
use crate::progress::{TransferEvent, TransferProgress};
use crate::pull::{emit, sha256_hex, MAX_MANIFEST_SIZE};
use crate::sources::Sources;

/// Options of [`push`].
#[derive(Clone)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    pub progress: Option<Arc<dyn TransferProgress>>,
    /// Blobs uploaded at once.
    pub max_concurrent_uploads: usize,
    /// Upload blobs in `PATCH` chunks of this size; `None`: one `PUT` per blob.
    pub chunk_size: Option<u64>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            registry: RegistryOptions::default(),
            progress: None,
            max_concurrent_uploads: 3,
            chunk_size: None,
        }
    }
}

/// What [`push`] did.
#[derive(Clone, Debug)]
pub struct PushResult {
    /// The normalised remote reference.
    pub reference: Reference,
    /// Digest of the pushed manifest (`docker push`'s `digest:`).
    pub digest: String,
    /// Size of the manifest in bytes.
    pub size: u64,
    pub blobs_uploaded: usize,
    pub blobs_present: usize,
    pub blobs_mounted: usize,
    pub bytes_uploaded: u64,
    pub token_requests: usize,
}

#[derive(Clone)]
struct BlobJob {
    digest: String,
    size: u64,
    path: PathBuf,
    /// Other repositories (paths) of the same registry holding the blob.
    mount_from: Vec<String>,
}

enum Outcome {
    Present,
    Mounted,
    Uploaded(u64),
}

struct Ctx {
    client: Arc<Client>,
    repo: String,
    scopes: Vec<String>,
    progress: Option<Arc<dyn TransferProgress>>,
    chunk_size: Option<u64>,
}

async fn blob_exists(ctx: &Ctx, digest: &str) -> Result<bool> {
    let url = format!("{}/v2/{}/blobs/{digest}", ctx.client.base, ctx.repo);
    let resp = ctx
        .client
        .send("HEAD blob", &ctx.scopes, &|| Ok(ctx.client.http.head(&url)))
        .await?;
    match resp.status() {
        s if s.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(ctx
            .client
            .status_error(&format!("HEAD blob {digest}"), resp)
            .await),
    }
}

/// POST an upload session (optionally trying a mount first): `Ok(None)` when mounted.
async fn start_upload(ctx: &Ctx, job: &BlobJob, from: Option<&str>) -> Result<Option<url::Url>> {
    let mut url = url::Url::parse(&format!(
        "{}/v2/{}/blobs/uploads/",
        ctx.client.base, ctx.repo
    ))
    .map_err(|e| DistributionError::malformed("upload URL", e))?;
    if let Some(from) = from {
        url.query_pairs_mut()
            .append_pair("mount", &job.digest)
            .append_pair("from", from);
    }
    let resp = ctx
        .client
        .send("POST blob upload", &ctx.scopes, &|| {
            Ok(ctx.client.http.post(url.clone()).header(CONTENT_LENGTH, 0))
        })
        .await?;
    match resp.status() {
        StatusCode::CREATED if from.is_some() => Ok(None),
        StatusCode::ACCEPTED => Ok(Some(ctx.client.location(&resp, "POST blob upload")?)),
        _ => Err(ctx
            .client
            .status_error(&format!("starting the upload of {}", job.digest), resp)
            .await),
    }
}

fn with_digest(mut url: url::Url, digest: &str) -> url::Url {
    url.query_pairs_mut().append_pair("digest", digest);
    url
}

async fn upload(ctx: &Ctx, job: &BlobJob, location: url::Url) -> Result<u64> {
    emit(
        &ctx.progress,
        TransferEvent::BlobStart {
            digest: &job.digest,
            size: job.size,
        },
    );
    let client = &ctx.client;
    let resp = match ctx.chunk_size {
        None => {
            let put = with_digest(location, &job.digest);
            client
                .send("PUT blob", &ctx.scopes, &|| {
                    let f = std::fs::File::open(&job.path)
                        .map_err(|e| DistributionError::io("opening blob", &job.path, e))?;
                    let progress = ctx.progress.clone();
                    let digest = job.digest.clone();
                    let stream = tokio_util::io::ReaderStream::with_capacity(
                        tokio::fs::File::from_std(f),
                        1 << 20,
                    )
                    .map(move |chunk| {
                        if let Ok(c) = &chunk {
                            emit(
                                &progress,
                                TransferEvent::BlobProgress {
                                    digest: &digest,
                                    bytes: c.len() as u64,
                                },
                            );
                        }
                        chunk
                    });
                    Ok(client
                        .http
                        .put(put.clone())
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_LENGTH, job.size)
                        .body(reqwest::Body::wrap_stream(stream)))
                })
                .await?
        }
        Some(chunk) => {
            let chunk = chunk.max(1);
            let mut file = std::fs::File::open(&job.path)
                .map_err(|e| DistributionError::io("opening blob", &job.path, e))?;
            let mut location = location;
            let mut offset = 0u64;
            let mut buf = vec![0u8; chunk.min(job.size.max(1)) as usize];
            while offset < job.size {
                let n = (job.size - offset).min(chunk) as usize;
                file.read_exact(&mut buf[..n])
                    .map_err(|e| DistributionError::io("reading blob", &job.path, e))?;
                let body = buf[..n].to_vec();
                let range = format!("{}-{}", offset, offset + n as u64 - 1);
                let resp = client
                    .send("PATCH blob", &ctx.scopes, &|| {
                        Ok(client
                            .http
                            .patch(location.clone())
                            .header(CONTENT_TYPE, "application/octet-stream")
                            .header(CONTENT_RANGE, range.clone())
                            .header(CONTENT_LENGTH, n)
                            .body(body.clone()))
                    })
                    .await?;
                if resp.status() != StatusCode::ACCEPTED {
                    return Err(client
                        .status_error(&format!("uploading a chunk of {}", job.digest), resp)
                        .await);
                }
                location = client.location(&resp, "PATCH blob")?;
                offset += n as u64;
                emit(
                    &ctx.progress,
                    TransferEvent::BlobProgress {
                        digest: &job.digest,
                        bytes: n as u64,
                    },
                );
            }
            let put = with_digest(location, &job.digest);
            client
                .send("PUT blob", &ctx.scopes, &|| {
                    Ok(client.http.put(put.clone()).header(CONTENT_LENGTH, 0))
                })
                .await?
        }
    };
    if resp.status() != StatusCode::CREATED {
        return Err(client
            .status_error(&format!("finishing the upload of {}", job.digest), resp)
            .await);
    }
    emit(
        &ctx.progress,
        TransferEvent::BlobDone {
            digest: &job.digest,
        },
    );
    Ok(job.size)
}

async fn push_blob(ctx: Arc<Ctx>, job: BlobJob) -> Result<Outcome> {
    if blob_exists(&ctx, &job.digest).await? {
        emit(
            &ctx.progress,
            TransferEvent::BlobExists {
                digest: &job.digest,
            },
        );
        return Ok(Outcome::Present);
    }
    // A failed mount (202) starts an ordinary upload session: use it.
    let mut location = None;
    if let Some(from) = job.mount_from.first() {
        match start_upload(&ctx, &job, Some(from)).await? {
            None => {
                tracing::debug!(digest = %job.digest, %from, "blob mounted");
                emit(
                    &ctx.progress,
                    TransferEvent::BlobMounted {
                        digest: &job.digest,
                        from,
                    },
                );
                return Ok(Outcome::Mounted);
            }
            Some(loc) => location = Some(loc),
        }
    }
    let location = match location {
        Some(l) => l,
        None => start_upload(&ctx, &job, None)
            .await?
            .ok_or_else(|| DistributionError::malformed("upload start", "no upload location"))?,
    };
    Ok(Outcome::Uploaded(upload(&ctx, &job, location).await?))
}

/// Pushes the local image `local` (name, id or digest) to `remote` (async version of [`push`]).
pub async fn push_async(
    store: &ImageStore,
    local: &str,
    remote: &str,
    opts: &PushOptions,
) -> Result<PushResult> {
    let img = store.resolve(local)?;
    let reference = Reference::parse(remote).map_err(DistributionError::Reference)?;
    if let Some(d) = reference.digest() {
        if d != img.manifest_digest {
            return Err(DistributionError::Invalid {
                what: format!("push target {reference}"),
                reason: format!(
                    "its digest differs from the image's manifest {}",
                    img.manifest_digest
                ),
            });
        }
    }
    let (registry, repo) = split_repository(reference.repository())?;
    tracing::debug!(local, remote = %reference, "push");

    let mpath = store.blob_path(&img.manifest_digest)?;
    let mbytes = std::fs::read(&mpath)
        .map_err(|e| DistributionError::io("reading manifest blob", &mpath, e))?;
    if mbytes.len() as u64 > MAX_MANIFEST_SIZE {
        return Err(DistributionError::TooLarge {
            what: format!("manifest {}", img.manifest_digest),
            limit: MAX_MANIFEST_SIZE,
        });
    }
    let actual = sha256_hex(&mbytes);
    if actual != img.manifest_digest {
        return Err(DistributionError::DigestMismatch {
            what: format!("local manifest {}", mpath.display()),
            expected: img.manifest_digest.clone(),
            actual,
        });
    }
    let json: serde_json::Value = serde_json::from_slice(&mbytes).map_err(|e| {
        DistributionError::malformed(format!("manifest {}", img.manifest_digest), e)
    })?;
    let media_type = json
        .get("mediaType")
        .and_then(|m| m.as_str())
        .unwrap_or(media::OCI_MANIFEST)
        .to_string();

    let sources = Sources::new(store.root());
    let mut scopes = vec![format!("repository:{repo}:pull,push")];
    let mut jobs = Vec::new();
    let descs = img
        .manifest
        .layers()
        .iter()
        .chain(std::iter::once(img.manifest.config()));
    for d in descs {
        let digest = d.digest().to_string();
        if jobs.iter().any(|j: &BlobJob| j.digest == digest) {
            continue;
        }
        let path = store.blob_path(&digest)?;
        if !path.exists() {
            return Err(berth_image::ImageError::MissingBlob {
                digest,
                referenced_by: format!("manifest {}", img.manifest_digest),
            }
            .into());
        }
        let mount_from: Vec<String> = sources
            .get(&digest)
            .iter()
            .rev()
            .filter_map(|r| split_repository(r).ok())
            .filter(|(reg, path)| *reg == registry && *path != repo)
            .map(|(_, p)| p)
            .take(1)
            .collect();
        for f in &mount_from {
            let s = format!("repository:{f}:pull");
            if !scopes.contains(&s) {
                scopes.push(s);
            }
        }
        jobs.push(BlobJob {
            digest,
            size: d.size(),
            path,
            mount_from,
        });
    }

    let client = Arc::new(Client::connect(&registry, &opts.registry).await?);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        repo: repo.clone(),
        scopes,
        progress: opts.progress.clone(),
        chunk_size: opts.chunk_size,
    });
    let all: Vec<String> = jobs.iter().map(|j| j.digest.clone()).collect();
    let (mut uploaded, mut present, mut mounted, mut bytes) = (0, 0, 0, 0u64);
    let mut set = tokio::task::JoinSet::new();
    let mut pending = jobs.into_iter();
    let limit = opts.max_concurrent_uploads.max(1);
    loop {
        while set.len() < limit {
            let Some(job) = pending.next() else { break };
            set.spawn(push_blob(ctx.clone(), job));
        }
        let Some(res) = set.join_next().await else {
            break;
        };
        match res {
            Ok(Ok(Outcome::Present)) => present += 1,
            Ok(Ok(Outcome::Mounted)) => mounted += 1,
            Ok(Ok(Outcome::Uploaded(n))) => {
                uploaded += 1;
                bytes += n;
            }
            Ok(Err(e)) => return Err(e),
            Err(e) => {
                return Err(DistributionError::Invalid {
                    what: "blob upload task".into(),
                    reason: e.to_string(),
                })
            }
        }
    }

    let target = reference
        .tag()
        .or(reference.digest())
        .unwrap_or("latest")
        .to_string();
    let url = format!("{}/v2/{repo}/manifests/{target}", client.base);
    let resp = client
        .send("PUT manifest", &ctx.scopes, &|| {
            Ok(client
                .http
                .put(&url)
                .header(CONTENT_TYPE, media_type.clone())
                .body(mbytes.clone()))
        })
        .await?;
    if resp.status() != StatusCode::CREATED {
        return Err(client
            .status_error(&format!("PUT manifest {reference}"), resp)
            .await);
    }
    if let Some(d) = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
    {
        if d != img.manifest_digest {
            return Err(DistributionError::DigestMismatch {
                what: format!("manifest pushed to {reference} (registry's answer)"),
                expected: img.manifest_digest.clone(),
                actual: d.to_string(),
            });
        }
    }
    tracing::debug!(remote = %reference, digest = %img.manifest_digest, "manifest pushed");
    if let Err(e) = sources.record(&all, reference.repository()) {
        tracing::warn!(error = %e, "cannot record blob sources");
    }
    Ok(PushResult {
        reference,
        digest: img.manifest_digest,
        size: mbytes.len() as u64,
        blobs_uploaded: uploaded,
        blobs_present: present,
        blobs_mounted: mounted,
        bytes_uploaded: bytes,
        token_requests: client.token_requests(),
    })
}
