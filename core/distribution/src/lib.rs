//! berth-distribution: the OCI distribution client (`berth pull`, `push`,
//! `login`, `logout`).
//!
//! * [`pull`] resolves a tag or digest (OCI and Docker schema 2 manifests,
//!   image indexes / manifest lists with platform selection), downloads
//!   missing layers in parallel into temp files of the store, verifies digest,
//!   size and diff_id, and only then renames them into place; config and
//!   manifest are stored byte for byte (digests do not change) and the
//!   reference is tagged.
//! * [`push`] skips blobs the registry has (`HEAD`), mounts blobs known to
//!   exist in another repository of the registry (`?mount=&from=`, from
//!   `<store>/.berth/blob-sources.json`), uploads the rest (monolithic `PUT`
//!   or chunked `PATCH`), then `PUT`s the manifest.
//! * Auth: anonymous, basic, bearer token (per-scope cache, one token per
//!   operation); credentials in a Docker `config.json` style file.
//! * Insecure registries: those listed in [`RegistryOptions::insecure_registries`]
//!   and, by default, loopback ones (`localhost`, `127.0.0.0/8`, `::1`, as
//!   dockerd does) try HTTPS without certificate verification first and fall
//!   back to plain HTTP; every other registry is HTTPS only.
//!
//! The sync functions create a tokio runtime per call; in async code use the
//! `*_async` variants.

mod auth;
mod client;
mod error;
mod media;
mod platform;
mod progress;
mod pull;
mod push;
mod sources;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::Path;

pub use auth::{load_credentials, remove_credentials, store_credentials, Credentials};
pub use berth_image::{Image, ImageStore, Reference};
pub use client::{normalize_registry, RegistryOptions, DOCKER_HUB};
pub use error::{DistributionError, Result};
pub use media::{DOCKER_CONFIG, DOCKER_LIST, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
pub use platform::Platform;
pub use progress::{
    terminal_transfer_progress, BarTransferProgress, Direction, PlainTransferProgress,
    TransferEvent, TransferProgress,
};
pub use pull::{pull_async, PullOptions, PullResult, MAX_CONFIG_SIZE, MAX_MANIFEST_SIZE};
pub use push::{push_async, PushOptions, PushResult};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("berth-distribution")
        .enable_all()
        .build()
        .map_err(DistributionError::Runtime)
}

/// `docker pull`: fetches `reference` (`busybox`, `host:5000/a/b:1`,
/// `name@sha256:..`) into `store` and tags it.
pub fn pull(store: &ImageStore, reference: &str, opts: &PullOptions) -> Result<PullResult> {
    runtime()?.block_on(pull_async(store, reference, opts))
}

/// `docker push`: uploads the local image `local` (name, id or digest) as
/// `remote` and returns the pushed manifest digest.
pub fn push(
    store: &ImageStore,
    local: &str,
    remote: &str,
    opts: &PushOptions,
) -> Result<PushResult> {
    runtime()?.block_on(push_async(store, local, remote, opts))
}

/// `docker login`: verifies `creds` against `registry` (`GET /v2/`, or a
/// token request for token-auth registries), then stores them in
/// `auth_file` (mode 0600). Returns the normalised registry name.
pub async fn login_async(
    registry: &str,
    creds: &Credentials,
    auth_file: &Path,
    opts: &RegistryOptions,
) -> Result<String> {
    let registry = normalize_registry(registry)?;
    let mut o = opts.clone();
    o.credentials = Some(creds.clone());
    let client = client::Client::connect(&registry, &o).await?;
    client.verify_login().await?;
    store_credentials(auth_file, &registry, creds)?;
    Ok(registry)
}

/// Sync version of [`login_async`].
pub fn login(
    registry: &str,
    creds: &Credentials,
    auth_file: &Path,
    opts: &RegistryOptions,
) -> Result<String> {
    runtime()?.block_on(login_async(registry, creds, auth_file, opts))
}

/// `docker logout`: removes the stored credentials of `registry`; false
/// when there were none.
pub fn logout(registry: &str, auth_file: &Path) -> Result<bool> {
    let registry = normalize_registry(registry)?;
    remove_credentials(auth_file, &registry)
}

/// Low-level access to one registry, for tools that assemble content
/// themselves (manifest lists, artifacts) and for tests.
pub struct Registry {
    rt: tokio::runtime::Runtime,
    client: client::Client,
}

impl Registry {
    /// Connects to `registry` (`host[:port]`), with auth as for pull/push.
    pub fn connect(registry: &str, opts: &RegistryOptions) -> Result<Registry> {
        let rt = runtime()?;
        let client = rt.block_on(client::Client::connect(registry, opts))?;
        Ok(Registry { rt, client })
    }

    /// Uploads `data` as a blob of `repo` (monolithic); returns its digest.
    pub fn upload_blob(&self, repo: &str, data: &[u8]) -> Result<String> {
        let c = &self.client;
        let digest = pull::sha256_hex(data);
        let scopes = vec![format!("repository:{repo}:pull,push")];
        self.rt.block_on(async {
            let url = format!("{}/v2/{repo}/blobs/uploads/", c.base);
            let resp = c
                .send("POST blob upload", &scopes, &|| {
                    Ok(c.http.post(&url).header("content-length", 0))
                })
                .await?;
            if resp.status() != reqwest::StatusCode::ACCEPTED {
                return Err(c.status_error("POST blob upload", resp).await);
            }
            let mut loc = c.location(&resp, "POST blob upload")?;
            loc.query_pairs_mut().append_pair("digest", &digest);
            let resp = c
                .send("PUT blob", &scopes, &|| {
                    Ok(c.http
                        .put(loc.clone())
                        .header("content-type", "application/octet-stream")
                        .body(data.to_vec()))
                })
                .await?;
            if resp.status() != reqwest::StatusCode::CREATED {
                return Err(c.status_error("PUT blob", resp).await);
            }
            Ok(digest.clone())
        })
    }

    /// PUTs a manifest or index under `tag` (or digest) of `repo`; returns its digest.
    pub fn put_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String> {
        let c = &self.client;
        let scopes = vec![format!("repository:{repo}:pull,push")];
        self.rt.block_on(async {
            let url = format!("{}/v2/{repo}/manifests/{tag}", c.base);
            let resp = c
                .send("PUT manifest", &scopes, &|| {
                    Ok(c.http
                        .put(&url)
                        .header("content-type", media_type)
                        .body(bytes.to_vec()))
                })
                .await?;
            if resp.status() != reqwest::StatusCode::CREATED {
                return Err(c
                    .status_error(&format!("PUT manifest {repo}:{tag}"), resp)
                    .await);
            }
            Ok(pull::sha256_hex(bytes))
        })
    }

    /// GETs a manifest or index (verified, size-limited): (bytes, digest).
    pub fn get_manifest(&self, repo: &str, tag_or_digest: &str) -> Result<(Vec<u8>, String)> {
        let scopes = vec![format!("repository:{repo}:pull")];
        let display = format!("{}/{repo}:{tag_or_digest}", self.client.registry);
        let f = self.rt.block_on(pull::fetch_manifest(
            &self.client,
            repo,
            &scopes,
            tag_or_digest,
            &display,
        ))?;
        Ok((f.bytes, f.digest))
    }

    /// Token endpoint requests made by this handle so far.
    pub fn token_requests(&self) -> usize {
        self.client.token_requests()
    }
}
