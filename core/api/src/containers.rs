//! `/containers/...`: create, list, inspect, start, stop, restart, kill, wait, delete,
//! logs, attach, rename, pause, unpause.

use std::time::Duration;

use axum::{
    body::{Body, Bytes},
    extract::{Path, Query, Request, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use berth_engine::{
    container::{ContainerRecord, State as CState},
    inspect::ListContainersOptions,
    log_tail::{LogTail, TailStart},
    logs::{read_log, LogEntry, LogOptions},
    wait::WaitCondition,
    Engine, Filters,
};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{
    create_map::create_options,
    error::{ApiError, ApiResult},
    server::AppState,
    stream::{self, mux_frame, Sink},
};

/// Docker's query booleans: `1`, `true`, `True` (absent or anything else is false).
pub(crate) fn qbool(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("1" | "true" | "True" | "TRUE"))
}

fn resolve(engine: &Engine, id: &str) -> ApiResult<ContainerRecord> {
    engine.db()?.resolve(id).map_err(|e| match e {
        berth_engine::EngineError::NotFound(_) => {
            ApiError::not_found(format!("No such container: {id}"))
        }
        other => other.into(),
    })
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
pub struct ListQuery {
    all: Option<String>,
    limit: Option<i64>,
    filters: Option<String>,
    size: Option<String>,
}

pub async fn list(
    State(st): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let filters = Filters::from_json(q.filters.as_deref().unwrap_or(""))?;
    let o = ListContainersOptions {
        all: qbool(&q.all),
        limit: q.limit.filter(|l| *l > 0).map(|l| l as usize),
        size: qbool(&q.size),
        filters,
    };
    st.blocking(move |engine| {
        engine.reconcile_records()?;
        to_json(&engine.list_containers(&o)?)
    })
    .await
}

pub async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    st.blocking(move |engine| {
        engine.reconcile_records()?;
        let c = resolve(engine, &id)?;
        to_json(&engine.container_inspect(&c))
    })
    .await
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> ApiResult<Json<Value>> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::internal(format!("encoding the answer: {e}")))
}

#[derive(Deserialize)]
pub struct CreateQuery {
    name: Option<String>,
    platform: Option<String>,
}

pub async fn create(
    State(st): State<AppState>,
    Query(q): Query<CreateQuery>,
    body: Bytes,
) -> ApiResult<Response> {
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON in the request body: {e}")))?;
    if let Some(p) = q.platform.as_deref().filter(|p| !p.is_empty()) {
        let host = format!("linux/{}", crate::system::arch());
        if !host.starts_with(p) && p != "linux" {
            return Err(ApiError::bad_request(format!(
                "platform {p:?}: berth runs containers for this host's platform only ({host})"
            )));
        }
    }
    let opts = create_options(v, q.name)?;
    st.blocking(move |engine| {
        // A missing image is the client's to pull (the docker CLI does, on this 404).
        match engine.images()?.resolve(&opts.image) {
            Ok(_) => {}
            Err(berth_image::ImageError::NotFound(_)) => {
                return Err(ApiError::not_found(format!(
                    "No such image: {}",
                    opts.image
                )))
            }
            Err(e) => return Err(e.into()),
        }
        let rec = engine.create(&opts)?;
        Ok((
            StatusCode::CREATED,
            Json(json!({"Id": rec.id, "Warnings": []})),
        )
            .into_response())
    })
    .await
}

pub async fn start(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        if rec.state.is_live() {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
        engine.start_detached(&rec)?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
pub struct StopQuery {
    t: Option<i64>,
    signal: Option<String>,
}

fn stop_timeout(q: &StopQuery) -> ApiResult<Option<u32>> {
    if q.signal.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_request(
            "signal: a stop signal per request is not supported by berth (set StopSignal at create)",
        ));
    }
    Ok(match q.t {
        None => None,
        Some(t) if t < 0 => Some(u32::MAX / 2),
        Some(t) => Some(t as u32),
    })
}

pub async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<Response> {
    let t = stop_timeout(&q)?;
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        if !rec.state.is_live() {
            return Ok(StatusCode::NOT_MODIFIED.into_response());
        }
        engine.stop(&rec, t)?;
        Ok(no_content())
    })
    .await
}

pub async fn restart(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<StopQuery>,
) -> ApiResult<Response> {
    let t = stop_timeout(&q)?;
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        engine.stop(&rec, t)?;
        let rec = resolve(engine, &id)?;
        engine.start_detached(&rec)?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
pub struct KillQuery {
    signal: Option<String>,
}

pub async fn kill(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<KillQuery>,
) -> ApiResult<Response> {
    let sig = match q.signal.as_deref().filter(|s| !s.is_empty()) {
        None => libc::SIGKILL,
        Some(s) => berth_engine::parse::parse_signal_number("signal", s)?,
    };
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        engine.signal(&rec, sig)?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
pub struct WaitQuery {
    condition: Option<String>,
}

/// `POST /containers/{id}/wait`: the headers go out at once (the docker CLI starts the
/// container only after they arrive), the result when the condition holds.
pub async fn wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<WaitQuery>,
) -> ApiResult<Response> {
    let condition = WaitCondition::parse(q.condition.as_deref().unwrap_or(""))?;
    let rec = {
        let id = id.clone();
        st.blocking(move |engine| resolve(engine, &id)).await?
    };
    let (sink, body) = stream::channel();
    let engine = st.engine.clone();
    tokio::task::spawn_blocking(move || {
        let sink2 = sink.clone();
        let r = engine.wait_condition(&rec.id, condition, &move || !sink2.closed());
        let v = match r {
            Ok(Some(o)) => json!({
                "StatusCode": o.exit_code,
                "Error": if o.error.is_empty() { Value::Null } else { json!({"Message": o.error}) },
            }),
            Ok(None) => return,
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        sink.json(&v);
    });
    Ok(json_stream_response(body))
}

fn json_stream_response(body: Body) -> Response {
    let mut r = Response::new(body);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[derive(Deserialize)]
pub struct RemoveQuery {
    force: Option<String>,
    v: Option<String>,
    link: Option<String>,
}

pub async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> ApiResult<Response> {
    if qbool(&q.link) {
        return Err(ApiError::bad_request(
            "link: berth has no legacy links to remove",
        ));
    }
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        engine.remove_container(&rec.id, qbool(&q.force), qbool(&q.v))?;
        Ok(no_content())
    })
    .await
}

#[derive(Deserialize)]
pub struct RenameQuery {
    name: Option<String>,
}

pub async fn rename(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<RenameQuery>,
) -> ApiResult<Response> {
    let name = q
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("name: the new name is required"))?;
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        engine.db()?.rename(&rec.id, name.trim_start_matches('/'))?;
        Ok(no_content())
    })
    .await
}

pub async fn pause(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        engine.pause(&rec)?;
        Ok(no_content())
    })
    .await
}

pub async fn unpause(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    st.blocking(move |engine| {
        let rec = resolve(engine, &id)?;
        engine.unpause(&rec)?;
        Ok(no_content())
    })
    .await
}

/// Which streams, and how they are framed.
#[derive(Clone, Copy)]
struct Framing {
    stdout: bool,
    stderr: bool,
    tty: bool,
    timestamps: bool,
}

impl Framing {
    /// The bytes of one entry, or `None` when its stream was not asked for.
    fn frame(&self, e: &LogEntry) -> Option<Bytes> {
        let is_err = e.stream == "stderr";
        if (is_err && !self.stderr) || (!is_err && !self.stdout) {
            return None;
        }
        let text = if self.timestamps {
            format!("{} {}", e.time, e.log)
        } else {
            e.log.clone()
        };
        Some(if self.tty {
            Bytes::from(text)
        } else {
            mux_frame(if is_err { 2 } else { 1 }, text.as_bytes())
        })
    }

    fn content_type(&self) -> HeaderValue {
        HeaderValue::from_static(if self.tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        })
    }
}

/// Streams what the container writes until it has exited (or is gone), waiting for
/// it to start first when it has not yet. Stops when the client goes away.
fn follow(engine: &Engine, id: &str, mut tail: LogTail, framing: Framing, sink: &Sink) {
    let first = engine.db().ok().and_then(|d| d.get(id).ok().flatten());
    let first_finish = first
        .as_ref()
        .map(|r| r.finished_at.clone())
        .unwrap_or_default();
    let mut sleep = Duration::from_millis(5);
    loop {
        let rec = engine.db().ok().and_then(|d| d.get(id).ok().flatten());
        let entries = tail.poll().unwrap_or_default();
        for e in &entries {
            if let Some(b) = framing.frame(e) {
                if !sink.send(b) {
                    return;
                }
            }
        }
        let done = match &rec {
            None => true,
            Some(r) if r.state.is_live() || r.state == CState::Removing => false,
            // Not started yet: wait for the start (the client attaches first).
            Some(r) if r.state == CState::Created => false,
            // Exited: done once this run's exit is recorded.
            Some(r) => {
                r.finished_at != first_finish || first.as_ref().is_some_and(|f| f.state.is_live())
            }
        };
        if done {
            // Whatever was written between the last read and the exit.
            for e in tail.poll().unwrap_or_default() {
                if let Some(b) = framing.frame(&e) {
                    sink.send(b);
                }
            }
            return;
        }
        if sink.closed() {
            return;
        }
        std::thread::sleep(sleep);
        sleep = (sleep * 2).min(Duration::from_millis(100));
    }
}

#[derive(Deserialize)]
pub struct LogsQuery {
    follow: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    since: Option<String>,
    until: Option<String>,
    timestamps: Option<String>,
    tail: Option<String>,
}

/// Docker's `since`/`until`: Unix seconds with an optional fraction.
fn unix_param(name: &str, v: &Option<String>) -> ApiResult<Option<chrono::DateTime<chrono::Utc>>> {
    let Some(s) = v.as_deref().filter(|s| !s.is_empty() && *s != "0") else {
        return Ok(None);
    };
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{name}: invalid Unix time {s:?}")))?;
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}")[..9]
            .parse()
            .map_err(|_| ApiError::bad_request(format!("{name}: invalid Unix time {s:?}")))?
    };
    chrono::DateTime::from_timestamp(secs, nanos)
        .map(Some)
        .ok_or_else(|| ApiError::bad_request(format!("{name}: Unix time {s:?} out of range")))
}

pub async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let (stdout, stderr) = (qbool(&q.stdout), qbool(&q.stderr));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream (stdout, stderr)",
        ));
    }
    let tail = match q.tail.as_deref() {
        None | Some("") | Some("all") => None,
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => return Err(ApiError::bad_request(format!("tail: invalid value {t:?}"))),
        },
    };
    let opts = LogOptions {
        tail,
        since: unix_param("since", &q.since)?,
        until: unix_param("until", &q.until)?,
        timestamps: qbool(&q.timestamps),
    };
    let follow_on = qbool(&q.follow) && opts.until.is_none();
    let rec = st.blocking(move |engine| resolve(engine, &id)).await?;
    let framing = Framing {
        stdout,
        stderr,
        tty: rec.config.tty,
        timestamps: opts.timestamps,
    };
    let (sink, body) = stream::channel();
    let engine = st.engine.clone();
    tokio::task::spawn_blocking(move || {
        let path = engine.container_dir(&rec.id).join("container.log");
        // Opened before reading the history, so nothing falls between the two.
        let tail = LogTail::new(path.clone(), TailStart::End);
        let Ok((entries, _)) = read_log(&path, &opts) else {
            return;
        };
        for e in &entries {
            if let Some(b) = framing.frame(e) {
                if !sink.send(b) {
                    return;
                }
            }
        }
        if follow_on && rec.state.is_live() {
            follow(&engine, &rec.id, tail, framing, &sink);
        }
    });
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, framing.content_type());
    Ok(r)
}

#[derive(Deserialize)]
pub struct AttachQuery {
    stream: Option<String>,
    logs: Option<String>,
    stdin: Option<String>,
    stdout: Option<String>,
    stderr: Option<String>,
    #[serde(rename = "detachKeys")]
    detach_keys: Option<String>,
}

/// `POST /containers/{id}/attach`: the container's output from now on (and its log
/// with `logs=1`) until it exits. With `Upgrade: tcp` the connection is hijacked
/// (`101 UPGRADED`), otherwise the stream is the body of a 200.
///
/// TODO(monitor): stdin and detach keys need `Engine::attach` (the `monitor` branch);
/// until then a request for stdin on an interactive container is refused.
pub async fn attach(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<AttachQuery>,
    mut req: Request,
) -> ApiResult<Response> {
    let rec = st.blocking(move |engine| resolve(engine, &id)).await?;
    if qbool(&q.stdin) && rec.config.interactive {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "attaching stdin is not supported by this berth serve yet (run without -i, or use `berth run -i`)",
        ));
    }
    let _ = &q.detach_keys;
    // Docker's default: every stream when none is named.
    let (mut stdout, mut stderr) = (qbool(&q.stdout), qbool(&q.stderr));
    if !stdout && !stderr && q.stdout.is_none() && q.stderr.is_none() {
        (stdout, stderr) = (true, true);
    }
    let framing = Framing {
        stdout,
        stderr,
        tty: rec.config.tty,
        timestamps: false,
    };
    let (stream_on, logs_on) = (qbool(&q.stream), qbool(&q.logs));
    let upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    let engine = st.engine.clone();
    let produce = move |sink: Sink| {
        let path = engine.container_dir(&rec.id).join("container.log");
        let start = if logs_on {
            TailStart::Beginning
        } else {
            TailStart::End
        };
        let tail = LogTail::creating(path, start);
        if stream_on {
            follow(&engine, &rec.id, tail, framing, &sink);
        } else if logs_on {
            let mut tail = tail;
            for e in tail.poll().unwrap_or_default() {
                if let Some(b) = framing.frame(&e) {
                    if !sink.send(b) {
                        return;
                    }
                }
            }
        }
    };
    if !upgrade {
        let (sink, body) = stream::channel();
        tokio::task::spawn_blocking(move || produce(sink));
        let mut r = Response::new(body);
        r.headers_mut()
            .insert(header::CONTENT_TYPE, framing.content_type());
        return Ok(r);
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!("attach: the upgrade failed: {e}");
                return;
            }
        };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        let (sink, mut rx) = stream::raw_channel();
        tokio::task::spawn_blocking(move || produce(sink));
        use tokio::io::AsyncWriteExt;
        while let Some(chunk) = rx.recv().await {
            if io.write_all(&chunk).await.is_err() {
                break;
            }
            let _ = io.flush().await;
        }
        let _ = io.shutdown().await;
    });
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, framing.content_type());
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times() {
        let t = unix_param("since", &Some("1700000000.5".into()))
            .unwrap()
            .unwrap();
        assert_eq!(t.timestamp(), 1_700_000_000);
        assert_eq!(t.timestamp_subsec_nanos(), 500_000_000);
        assert!(unix_param("since", &Some("0".into())).unwrap().is_none());
        assert!(unix_param("since", &Some("x".into())).is_err());
    }
}
