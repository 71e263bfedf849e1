//! The listener, the routes and the version prefix.

use std::{
    os::unix::fs::{FileTypeExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::Arc,
};

use axum::{
    extract::Request,
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
    Router,
};
use berth_engine::Engine;
use tower::Layer;

use crate::{containers, error::ApiError, images, netvol, system, MIN_API_VERSION};

/// Where `berth serve` listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listen {
    Unix(PathBuf),
}

/// Errors of starting the server (the running server answers errors to its clients).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("invalid -H/--host {0:?}: use unix:///path/to.sock")]
    BadHost(String),
    #[error(
        "refusing -H {0}: a TCP socket gives root on this host to anyone who can reach it, \
         and berth serve has no mutual TLS yet; use -H unix:///path/to.sock (and ssh or a \
         socket proxy for remote access)"
    )]
    TcpWithoutTls(String),
    #[error("{path}: another server is answering on this socket; stop it or use another -H")]
    InUse { path: PathBuf },
    #[error("{path} exists and is not a socket; remove it or use another -H")]
    NotASocket { path: PathBuf },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let context = context.into();
    move |source| ServeError::Io { context, source }
}

/// `-H` values: `unix:///path` (or a bare absolute path); `tcp://` is refused.
pub fn parse_host(s: &str) -> Result<Listen, ServeError> {
    if let Some(p) = s.strip_prefix("unix://") {
        if p.is_empty() || !p.starts_with('/') {
            return Err(ServeError::BadHost(s.into()));
        }
        return Ok(Listen::Unix(PathBuf::from(p)));
    }
    if s.starts_with("tcp://") || s.starts_with("http://") || s.starts_with("https://") {
        return Err(ServeError::TcpWithoutTls(s.into()));
    }
    if s.starts_with('/') {
        return Ok(Listen::Unix(PathBuf::from(s)));
    }
    Err(ServeError::BadHost(s.into()))
}

/// `berth serve` options.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: Listen,
    /// Group that may use the socket (mode 0660); `None`: `berth` when that group exists.
    pub group: Option<String>,
}

/// What every handler gets: the engine, shared by all requests.
#[derive(Clone)]
pub(crate) struct AppState {
    pub engine: Arc<Engine>,
}

impl AppState {
    /// Runs a (blocking) engine call on the blocking pool. A panic in it is a 500 for
    /// this request, not the end of the server.
    pub async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, ApiError> + Send + 'static,
    {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| ApiError::internal(format!("the engine call failed: {e}")))?
    }
}

/// The API version the client asked for in the path (`/v1.41/...`), if any.
#[derive(Debug, Clone)]
pub(crate) struct RequestedVersion(pub String);

/// `/v1.41/containers/json` → `/containers/json` (+ the version as an extension).
fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        return req;
    };
    let (version, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let is_version = version.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty()
            && !b.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && b.bytes().all(|c| c.is_ascii_digit())
    });
    if !is_version {
        return req;
    }
    let version = version.to_string();
    let new = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    if let Ok(uri) = new.parse() {
        *req.uri_mut() = uri;
        req.extensions_mut().insert(RequestedVersion(version));
    }
    req
}

fn version_tuple(v: &str) -> (u32, u32) {
    let (a, b) = v.split_once('.').unwrap_or((v, "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// Refuses clients older than [`MIN_API_VERSION`], as dockerd does.
async fn check_version(req: Request, next: Next) -> Response {
    if let Some(RequestedVersion(v)) = req.extensions().get::<RequestedVersion>() {
        if version_tuple(v) < version_tuple(MIN_API_VERSION) {
            return ApiError::bad_request(format!(
                "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
            ))
            .into_response();
        }
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    tracing::debug!(%method, %path, status = %resp.status(), "request");
    resp
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "page not found: berth serve does not implement {} {} (see docs/api.md)",
            req.method(),
            req.uri().path()
        ),
    )
}

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/auth", post(system::auth))
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}", delete(containers::remove))
        .route("/images/json", get(images::list))
        .route("/images/prune", post(images::prune))
        .route(
            "/images/{*rest}",
            get(images::get_dispatch)
                .head(images::get_dispatch)
                .post(images::post_dispatch)
                .delete(images::remove),
        )
        .route("/build", post(images::build))
        .route("/networks", get(netvol::network_list))
        .route("/networks/create", post(netvol::network_create))
        .route("/networks/prune", post(netvol::network_prune))
        .route(
            "/networks/{id}",
            get(netvol::network_inspect).delete(netvol::network_remove),
        )
        .route("/networks/{id}/connect", post(netvol::network_connect))
        .route(
            "/networks/{id}/disconnect",
            post(netvol::network_disconnect),
        )
        .route("/volumes", get(netvol::volume_list))
        .route("/volumes/create", post(netvol::volume_create))
        .route("/volumes/prune", post(netvol::volume_prune))
        .route(
            "/volumes/{name}",
            get(netvol::volume_inspect).delete(netvol::volume_remove),
        )
        .fallback(not_found)
        .layer(middleware::from_fn(check_version))
        .with_state(state)
}

/// Binds the socket: refuses a path another server answers on, replaces a stale one,
/// mode 0660, group `berth` (or `opts.group`) when it exists.
fn bind_unix(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener, ServeError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ServeError::InUse { path: path.into() });
            }
            std::fs::remove_file(path).map_err(io_err(format!(
                "removing the stale socket {}",
                path.display()
            )))?;
        }
        Ok(_) => return Err(ServeError::NotASocket { path: path.into() }),
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(path)
        .map_err(io_err(format!("listening on {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(io_err(format!("setting the mode of {}", path.display())))?;
    let wanted = group.unwrap_or("berth");
    match nix::unistd::Group::from_name(wanted) {
        Ok(Some(g)) => nix::unistd::chown(path, None, Some(g.gid)).map_err(|e| ServeError::Io {
            context: format!("giving {} to group {wanted}", path.display()),
            source: e.into(),
        })?,
        _ if group.is_some() => {
            return Err(ServeError::Io {
                context: format!("group {wanted}"),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such group"),
            })
        }
        _ => {}
    }
    Ok(listener)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the server runs until killed.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// Serves the API until SIGTERM/SIGINT. Containers keep running when the server stops:
/// each has its own monitor process, and a restarted server sees the same store.
pub fn serve(engine: Engine, opts: &ServeOptions) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io_err("starting the async runtime"))?;
    runtime.block_on(async {
        let Listen::Unix(path) = &opts.listen;
        let listener = bind_unix(path, opts.group.as_deref())?;
        // What killed commands (or a killed server) left behind.
        if let Err(e) = engine.reconcile() {
            tracing::warn!("repairing records at start-up: {e}");
        }
        let state = AppState {
            engine: Arc::new(engine),
        };
        let app = tower::util::MapRequestLayer::new(strip_version).layer(router(state));
        tracing::info!(socket = %path.display(), "serving the Docker Engine API");
        let served = axum::serve(
            listener,
            axum::ServiceExt::<Request>::into_make_service(app),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        let _ = std::fs::remove_file(path);
        served.map_err(io_err("serving"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        assert_eq!(
            parse_host("unix:///run/x.sock").unwrap(),
            Listen::Unix("/run/x.sock".into())
        );
        assert!(matches!(
            parse_host("tcp://0.0.0.0:2375"),
            Err(ServeError::TcpWithoutTls(_))
        ));
        assert!(matches!(
            parse_host("unix://rel"),
            Err(ServeError::BadHost(_))
        ));
        assert!(matches!(parse_host("fd://"), Err(ServeError::BadHost(_))));
    }

    #[test]
    fn version_prefix_is_stripped() {
        let req = Request::builder()
            .uri("/v1.41/containers/json?all=1")
            .body(axum::body::Body::empty())
            .unwrap();
        let req = strip_version(req);
        assert_eq!(req.uri().path(), "/containers/json");
        assert_eq!(req.uri().query(), Some("all=1"));
        assert_eq!(
            req.extensions().get::<RequestedVersion>().unwrap().0,
            "1.41"
        );
        // Not a version: left alone (a volume could be named v1).
        let req = Request::builder()
            .uri("/volumes/v1")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(strip_version(req).uri().path(), "/volumes/v1");
        assert!(version_tuple("1.9") < version_tuple("1.24"));
        assert!(version_tuple("1.41") > version_tuple("1.24"));
    }
}
