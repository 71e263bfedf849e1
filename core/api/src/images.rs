//! `/images/...` and `POST /build`.

use std::{collections::BTreeMap, io::Write, path::PathBuf};

use axum::{
    body::Body,
    extract::{Path, Query, RawQuery, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use berth_engine::{build::BuildOptions, Engine};
use berth_image::{Image, Reference};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt;

use berth_engine::{image_api::ListImagesOptions, Filters};

use crate::{
    containers::{qbool, to_json},
    error::{ApiError, ApiResult},
    server::AppState,
    stream::{self, Sink},
};

/// The largest request body berth spools (a build context, an archive to load).
const MAX_UPLOAD: u64 = 64 << 30;

/// Query pairs in order, repeated keys kept (`t=a&t=b`, `changes=…`).
fn pairs(q: &Option<String>) -> ApiResult<Vec<(String, String)>> {
    serde_urlencoded::from_str(q.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
}

fn one<'a>(p: &'a [(String, String)], k: &str) -> Option<&'a str> {
    p.iter()
        .rev()
        .find(|(a, _)| a == k)
        .map(|(_, v)| v.as_str())
}

fn all<'a>(p: &'a [(String, String)], k: &str) -> Vec<&'a str> {
    p.iter()
        .filter(|(a, v)| a == k && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect()
}

fn truthy(v: Option<&str>) -> bool {
    matches!(v, Some("1" | "true" | "True" | "TRUE"))
}

fn unix_time(s: Option<String>) -> i64 {
    s.and_then(|c| chrono::DateTime::parse_from_rfc3339(&c).ok())
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

fn no_such_image(name: &str) -> impl FnOnce(berth_image::ImageError) -> ApiError + '_ {
    move |e| match e {
        berth_image::ImageError::NotFound(_) => {
            ApiError::not_found(format!("No such image: {name}"))
        }
        other => other.into(),
    }
}

/// An engine error with Docker's wording for a missing image.
fn engine_image_err(name: &str) -> impl FnOnce(berth_engine::EngineError) -> ApiError + '_ {
    move |e| {
        let missing = match &e {
            berth_engine::EngineError::NotFound(_) => true,
            berth_engine::EngineError::Image(i) => {
                matches!(**i, berth_image::ImageError::NotFound(_))
            }
            _ => false,
        };
        if missing {
            ApiError::not_found(format!("No such image: {name}"))
        } else {
            e.into()
        }
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    all: Option<String>,
    filters: Option<String>,
    digests: Option<String>,
}

pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let o = ListImagesOptions {
        all: qbool(&q.all),
        filters: Filters::from_json(q.filters.as_deref().unwrap_or(""))?,
    };
    let _ = &q.digests;
    st.blocking(move |engine| to_json(&engine.list_images(&o)?))
        .await
}

fn history_json(img: &Image) -> Value {
    let mut hist = img.history();
    hist.reverse();
    let mut sizes: Vec<u64> = img.manifest.layers().iter().map(|l| l.size()).collect();
    sizes.reverse();
    let mut sizes = sizes.into_iter();
    let tags: Vec<String> = img.tags.iter().map(|t| t.familiar()).collect();
    Value::Array(
        hist.iter()
            .enumerate()
            .map(|(i, h)| {
                let size = if h.empty_layer().unwrap_or(false) {
                    0
                } else {
                    sizes.next().unwrap_or(0)
                };
                json!({
                    "Id": if i == 0 { img.id.clone() } else { "<missing>".into() },
                    "Created": unix_time(h.created().clone()),
                    "CreatedBy": h.created_by().clone().unwrap_or_default(),
                    "Tags": if i == 0 { json!(tags) } else { Value::Null },
                    "Size": size,
                    "Comment": h.comment().clone().unwrap_or_default(),
                })
            })
            .collect(),
    )
}

/// `GET /images/{name}/json|history|get` (names contain slashes, hence one route).
pub async fn get_dispatch(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    if rest == "get" {
        let p = pairs(&q)?;
        let names: Vec<String> = all(&p, "names").into_iter().map(str::to_string).collect();
        return save(st, names).await;
    }
    let Some((name, action)) = rest.rsplit_once('/') else {
        return Err(ApiError::not_found(format!(
            "page not found: /images/{rest}"
        )));
    };
    let name = name.to_string();
    match action {
        "json" => {
            st.blocking(move |engine| {
                let img = engine
                    .inspect_image(&name)
                    .map_err(engine_image_err(&name))?;
                Ok(to_json(&img)?.into_response())
            })
            .await
        }
        "history" => {
            st.blocking(move |engine| {
                let img = engine
                    .images()?
                    .resolve(&name)
                    .map_err(no_such_image(&name))?;
                Ok(Json(history_json(&img)).into_response())
            })
            .await
        }
        "get" => save(st, vec![name]).await,
        other => Err(ApiError::not_found(format!(
            "page not found: GET /images/{{name}}/{other}"
        ))),
    }
}

/// A `Write` into a streamed body (an archive being saved).
struct SinkWriter(Sink);

impl Write for SinkWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.send(bytes::Bytes::copy_from_slice(buf)) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            ))
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn save(st: AppState, names: Vec<String>) -> ApiResult<Response> {
    if names.is_empty() {
        return Err(ApiError::bad_request("names: name at least one image"));
    }
    // Every name must resolve before the 200 goes out.
    let checked = names.clone();
    st.blocking(move |engine| {
        for n in &checked {
            engine.images()?.resolve(n).map_err(no_such_image(n))?;
        }
        Ok(())
    })
    .await?;
    let (sink, body) = stream::channel();
    let engine = st.engine.clone();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut w = std::io::BufWriter::with_capacity(256 << 10, SinkWriter(sink));
        if let Ok(store) = engine.images() {
            if let Err(e) = store.save(&refs, &mut w) {
                // The 200 is out: the client sees a truncated archive.
                tracing::warn!("saving {refs:?}: {e}");
            }
        }
        let _ = w.flush();
    });
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(r)
}

/// `POST /images/{name}/tag|push`.
pub async fn post_dispatch(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let p = pairs(&q)?;
    match rest.as_str() {
        "create" => return create(st, p, body).await,
        "load" => return load(st, p, body).await,
        _ => {}
    }
    let Some((name, action)) = rest.rsplit_once('/') else {
        return Err(ApiError::not_found(format!(
            "page not found: POST /images/{rest}"
        )));
    };
    let name = name.to_string();
    match action {
        "tag" => {
            let repo = one(&p, "repo")
                .filter(|r| !r.is_empty())
                .ok_or_else(|| ApiError::bad_request("repo: the repository to tag is required"))?;
            let target = match one(&p, "tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{repo}:{t}"),
                None => repo.to_string(),
            };
            let target = Reference::parse(&target)?;
            st.blocking(move |engine| {
                engine
                    .images()?
                    .tag(&name, &target)
                    .map_err(no_such_image(&name))?;
                Ok(StatusCode::CREATED.into_response())
            })
            .await
        }
        "push" => {
            let remote = match one(&p, "tag").filter(|t| !t.is_empty()) {
                Some(t) => format!("{name}:{t}"),
                None => name.clone(),
            };
            progress_stream(st, move |engine, sink| {
                sink.json(&json!({"status": format!("The push refers to repository [{name}]")}));
                let r = engine.push(&remote, &remote, &berth_engine::registry::TransferRequest { quiet: true, ..Default::default() })?;
                sink.json(&json!({"status": format!("{}: digest: {} size: {}", r.reference.tag().unwrap_or("latest"), r.digest, r.size)}));
                sink.json(&json!({"aux": {"Tag": r.reference.tag().unwrap_or("latest"), "Digest": r.digest, "Size": r.size}}));
                Ok(())
            })
            .await
        }
        other => Err(ApiError::not_found(format!(
            "page not found: POST /images/{{name}}/{other}"
        ))),
    }
}

/// A 200 with a JSON progress stream; an error after it started is Docker's
/// `{"errorDetail": …, "error": …}` line.
async fn progress_stream<F>(st: AppState, f: F) -> ApiResult<Response>
where
    F: FnOnce(&Engine, &Sink) -> Result<(), ApiError> + Send + 'static,
{
    let (sink, body) = stream::channel();
    let engine = st.engine.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = f(&engine, &sink) {
            sink.json(&json!({"errorDetail": {"message": e.message}, "error": e.message}));
        }
    });
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// Writes the request body to a temporary file (removed when dropped): a client that
/// disconnects midway leaves nothing behind.
async fn spool(engine: &Engine, body: Body) -> ApiResult<tempfile::NamedTempFile> {
    let dir = engine.config.run_dir().join("api");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ApiError::internal(format!("creating {}: {e}", dir.display())))?;
    let tmp = tempfile::NamedTempFile::new_in(&dir)
        .map_err(|e| ApiError::internal(format!("creating a file in {}: {e}", dir.display())))?;
    let f = tmp
        .reopen()
        .map_err(|e| ApiError::internal(format!("opening {}: {e}", tmp.path().display())))?;
    let mut f = tokio::fs::File::from_std(f);
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        total += chunk.len() as u64;
        if total > MAX_UPLOAD {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {MAX_UPLOAD} bytes"),
            ));
        }
        f.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(format!("writing {}: {e}", tmp.path().display())))?;
    }
    f.flush()
        .await
        .map_err(|e| ApiError::internal(format!("writing {}: {e}", tmp.path().display())))?;
    Ok(tmp)
}

/// `POST /images/create`: `fromImage` pulls, `fromSrc=-` imports the body.
async fn create(st: AppState, p: Vec<(String, String)>, body: Body) -> ApiResult<Response> {
    let tag = one(&p, "tag").unwrap_or("").to_string();
    if let Some(src) = one(&p, "fromSrc").filter(|s| !s.is_empty()) {
        if src != "-" {
            return Err(ApiError::bad_request(
                "fromSrc: berth imports only the request body (fromSrc=-), not URLs",
            ));
        }
        let repo = one(&p, "repo").unwrap_or("").to_string();
        let reference = match (repo.is_empty(), tag.is_empty()) {
            (true, _) => None,
            (false, true) => Some(Reference::parse(&repo)?),
            (false, false) => Some(Reference::parse(&format!("{repo}:{tag}"))?),
        };
        let changes: Vec<String> = all(&p, "changes").into_iter().map(str::to_string).collect();
        let tmp = spool(&st.engine, body).await?;
        return progress_stream(st, move |engine, sink| {
            let mut f = tmp
                .reopen()
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let img = engine
                .images()?
                .import(&mut f, reference.as_ref(), &changes)?;
            sink.json(&json!({"status": img.id}));
            Ok(())
        })
        .await;
    }
    let image = one(&p, "fromImage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("fromImage or fromSrc is required"))?
        .to_string();
    let reference = if tag.is_empty() || image.contains('@') {
        image.clone()
    } else if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else {
        format!("{image}:{tag}")
    };
    let platform = one(&p, "platform")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    progress_stream(st, move |engine, sink| {
        let shown = Reference::parse(&reference)?;
        sink.json(&json!({"status": format!("Pulling from {}", shown.familiar_repository()), "id": shown.tag().unwrap_or("latest")}));
        let r = engine.pull(
            &reference,
            &berth_engine::registry::TransferRequest {
                quiet: true,
                platform,
                ..Default::default()
            },
        )?;
        for l in r.image.manifest.layers() {
            let d = l.digest().to_string();
            let hex = d.strip_prefix("sha256:").unwrap_or(&d);
            let id = &hex[..12.min(hex.len())];
            sink.json(&json!({"status": "Pull complete", "progressDetail": {}, "id": id}));
        }
        sink.json(&json!({"status": format!("Digest: {}", r.digest)}));
        sink.json(&json!({"status": format!("Status: Downloaded newer image for {}", r.reference.familiar())}));
        Ok(())
    })
    .await
}

/// `POST /images/load`: a docker-archive or OCI archive in the body.
async fn load(st: AppState, p: Vec<(String, String)>, body: Body) -> ApiResult<Response> {
    let quiet = truthy(one(&p, "quiet"));
    let tmp = spool(&st.engine, body).await?;
    progress_stream(st, move |engine, sink| {
        let loaded = engine.images()?.load(tmp.path())?;
        for img in &loaded {
            if img.tags.is_empty() {
                sink.json(&json!({"stream": format!("Loaded image ID: {}\n", img.id)}));
            }
            for t in &img.tags {
                sink.json(&json!({"stream": format!("Loaded image: {}\n", t.familiar())}));
            }
        }
        let _ = quiet;
        Ok(())
    })
    .await
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    force: Option<String>,
    noprune: Option<String>,
}

pub async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Json<Value>> {
    if qbool(&q.noprune) {
        return Err(ApiError::bad_request(
            "noprune: berth always removes untagged parents (it keeps none)",
        ));
    }
    st.blocking(move |engine| {
        let items = engine
            .remove_image(&name, qbool(&q.force))
            .map_err(engine_image_err(&name))?;
        to_json(&items)
    })
    .await
}

#[derive(Deserialize)]
pub struct PruneQuery {
    filters: Option<String>,
}

pub async fn prune(
    State(st): State<AppState>,
    Query(q): Query<PruneQuery>,
) -> ApiResult<Json<Value>> {
    let filters = Filters::from_json(q.filters.as_deref().unwrap_or(""))?;
    filters.validate(&["dangling"])?;
    let all = filters.bool_value("dangling")? == Some(false);
    st.blocking(move |engine| to_json(&engine.prune_images(all)?))
        .await
}

/// Build progress as the legacy builder's JSON lines.
struct StreamOutput {
    sink: Sink,
    quiet: bool,
}

impl berth_engine::build::BuildOutput for StreamOutput {
    fn line(&mut self, text: &str) {
        if !self.quiet {
            self.sink.json(&json!({"stream": format!("{text}\n")}));
        }
    }
}

fn json_map(name: &str, v: Option<&str>) -> ApiResult<BTreeMap<String, String>> {
    match v.filter(|s| !s.is_empty() && *s != "null") {
        None => Ok(BTreeMap::new()),
        Some(s) => {
            let m: BTreeMap<String, Option<String>> = serde_json::from_str(s).map_err(|e| {
                ApiError::bad_request(format!("{name}: invalid JSON object {s:?}: {e}"))
            })?;
            Ok(m.into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect())
        }
    }
}

/// Unpacks a (possibly gzip-compressed) tar build context. The tar crate refuses
/// entries that would land outside `dir` (`..`, absolute paths, links on the way).
fn unpack_context(tar_path: &std::path::Path, dir: &std::path::Path) -> ApiResult<()> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(tar_path).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut magic = [0u8; 2];
    let n = f
        .read(&mut magic)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    f.rewind().map_err(|e| ApiError::internal(e.to_string()))?;
    if n == 0 {
        return Ok(());
    }
    let reader: Box<dyn Read> = if magic == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut a = tar::Archive::new(reader);
    a.set_preserve_permissions(true);
    a.set_overwrite(true);
    a.unpack(dir).map_err(|e| {
        ApiError::bad_request(format!("the build context is not a valid tar archive: {e}"))
    })
}

/// `POST /build`: a tar context in the body, progress as JSON lines.
pub async fn build(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
    body: Body,
) -> ApiResult<Response> {
    let p = pairs(&q)?;
    if let Some(v) = one(&p, "version").filter(|v| *v != "1" && !v.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "version={v}: berth has the legacy builder only (BuildKit sessions are not supported): set DOCKER_BUILDKIT=0"
        )));
    }
    if one(&p, "remote").is_some_and(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(
            "remote: berth builds from a tar context in the request body only",
        ));
    }
    for k in [
        "memory",
        "memswap",
        "cpushares",
        "cpusetcpus",
        "cpusetmems",
        "cpuperiod",
        "cpuquota",
        "shmsize",
        "squash",
        "extrahosts",
        "isolation",
        "outputs",
    ] {
        if let Some(v) =
            one(&p, k).filter(|v| !matches!(*v, "" | "0" | "false" | "null" | "[]" | "{}"))
        {
            return Err(ApiError::bad_request(format!(
                "{k}={v} is not supported by berth build"
            )));
        }
    }
    if let Some(n) = one(&p, "networkmode").filter(|n| !matches!(*n, "" | "default" | "bridge")) {
        return Err(ApiError::bad_request(format!(
            "networkmode={n}: berth builds RUN steps on the default network only"
        )));
    }
    if let Some(pl) = one(&p, "platform").filter(|s| !s.is_empty()) {
        let host = format!("linux/{}", crate::system::arch());
        if !host.starts_with(pl) {
            return Err(ApiError::bad_request(format!(
                "platform={pl}: berth builds for this host's platform ({host}) only"
            )));
        }
    }
    let mut labels = json_map("labels", one(&p, "labels"))?;
    let build_args = json_map("buildargs", one(&p, "buildargs"))?;
    let tags: Vec<String> = all(&p, "t").into_iter().map(str::to_string).collect();
    for t in &tags {
        Reference::parse(t).map_err(|e| ApiError::bad_request(format!("t: {e}")))?;
    }
    let dockerfile = one(&p, "dockerfile")
        .filter(|s| !s.is_empty())
        .unwrap_or("Dockerfile")
        .to_string();
    let target = one(&p, "target")
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let no_cache = truthy(one(&p, "nocache"));
    let quiet = truthy(one(&p, "q"));
    let pull = truthy(one(&p, "pull"));
    labels.retain(|k, _| !k.is_empty());
    let tar = spool(&st.engine, body).await?;
    progress_stream(st, move |engine, sink| {
        let dir = engine.config.run_dir().join("api");
        let ctx = tempfile::Builder::new()
            .prefix("build-context-")
            .tempdir_in(&dir)
            .map_err(|e| ApiError::internal(format!("creating a context directory in {}: {e}", dir.display())))?;
        unpack_context(tar.path(), ctx.path())?;
        drop(tar);
        // Read inside the context (symlinks resolve in it, never on the host).
        let root = berth_engine::copy::SourceRoot::open(ctx.path(), "build context")
            .map_err(ApiError::bad_request)?;
        let text = root
            .read(dockerfile.trim_start_matches("./"))
            .map_err(ApiError::bad_request)?
            .ok_or_else(|| ApiError::bad_request(format!("Cannot locate specified Dockerfile: {dockerfile}")))?;
        let text = String::from_utf8(text)
            .map_err(|_| ApiError::bad_request(format!("{dockerfile}: the Dockerfile is not UTF-8 text")))?;
        let opts = BuildOptions {
            context: PathBuf::from(ctx.path()),
            dockerfile: None,
            dockerfile_text: Some(text),
            tags: tags.clone(),
            build_args,
            target,
            labels,
            no_cache,
            quiet,
            pull,
        };
        let mut out = StreamOutput { sink: sink.clone(), quiet };
        let id = engine.build(&opts, &mut out)?;
        sink.json(&json!({"aux": {"ID": id}}));
        let short = id.trim_start_matches("sha256:");
        if quiet {
            sink.json(&json!({"stream": format!("{id}\n")}));
        } else {
            sink.json(&json!({"stream": format!("Successfully built {}\n", &short[..12.min(short.len())])}));
            for t in &tags {
                sink.json(&json!({"stream": format!("Successfully tagged {t}\n")}));
            }
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_keep_repeats() {
        let p = pairs(&Some(
            "t=a%3A1&t=b&dockerfile=Dockerfile&buildargs=%7B%22X%22%3A%221%22%7D".into(),
        ))
        .unwrap();
        assert_eq!(all(&p, "t"), ["a:1", "b"]);
        let m = json_map("buildargs", one(&p, "buildargs")).unwrap();
        assert_eq!(m["X"], "1");
        assert!(json_map("labels", Some("[")).is_err());
    }
}
