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
    health::Health,
    log_tail::{LogTail, TailStart},
    logs::{read_log, LogEntry, LogOptions},
    wait::WaitCondition,
    Engine,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};

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

fn unix_time(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// Go's zero time, which Docker prints for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn or_zero_time(s: &str) -> &str {
    if s.is_empty() {
        ZERO_TIME
    } else {
        s
    }
}

fn port_map(c: &ContainerRecord) -> Value {
    // Published ports as started (host port chosen), else as asked for.
    let mut m = Map::new();
    for e in &c.config.exposed_ports {
        let key = if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        };
        m.insert(key, Value::Null);
    }
    let live: Vec<_> = c
        .network
        .networks
        .iter()
        .flat_map(|n| n.ports.iter())
        .collect();
    let ports: Vec<_> = if live.is_empty() {
        c.config.ports.iter().collect()
    } else {
        live
    };
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let b = json!({"HostIp": if p.host_ip.is_empty() {"0.0.0.0"} else {&p.host_ip}, "HostPort": p.host_port.to_string()});
        match m.get_mut(&key) {
            Some(Value::Array(a)) => a.push(b),
            _ => {
                m.insert(key, json!([b]));
            }
        }
    }
    Value::Object(m)
}

fn port_bindings(c: &ContainerRecord) -> Value {
    let mut m = Map::new();
    for p in &c.config.ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let port = if p.host_port == 0 {
            String::new()
        } else {
            p.host_port.to_string()
        };
        let b = json!({"HostIp": p.host_ip, "HostPort": port});
        match m.get_mut(&key) {
            Some(Value::Array(a)) => a.push(b),
            _ => {
                m.insert(key, json!([b]));
            }
        }
    }
    Value::Object(m)
}

fn restart_policy(r: &str) -> Value {
    let (name, n) = r.split_once(':').unwrap_or((r, "0"));
    json!({"Name": name, "MaximumRetryCount": n.parse::<u32>().unwrap_or(0)})
}

fn networks_json(c: &ContainerRecord) -> Value {
    let mut m = Map::new();
    for n in &c.network.networks {
        m.insert(
            n.network.clone(),
            json!({
                "IPAMConfig": null, "Links": null, "Aliases": c.config.aliases,
                "NetworkID": n.network, "EndpointID": format!("{}-{}", c.short_id(), n.ifname),
                "Gateway": n.gateway, "IPAddress": n.ip, "IPPrefixLen": n.prefix_len,
                "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                "MacAddress": n.mac, "DriverOpts": null, "DNSNames": [c.name.clone(), c.short_id().to_string()],
            }),
        );
    }
    if m.is_empty() && !c.config.network.starts_with("container:") {
        // Not started yet: the network it will join.
        m.insert(
            c.config.network.clone(),
            json!({"Aliases": c.config.aliases, "NetworkID": c.config.network, "EndpointID": "",
                   "Gateway": "", "IPAddress": "", "IPPrefixLen": 0, "MacAddress": ""}),
        );
    }
    Value::Object(m)
}

fn mounts_json(c: &ContainerRecord, root: &std::path::Path) -> Vec<Value> {
    c.config
        .mounts
        .iter()
        .map(|m| {
            let (name, source) = if m.kind == "volume" {
                (
                    Some(m.source.clone()),
                    root.join("volumes")
                        .join(&m.source)
                        .join("_data")
                        .display()
                        .to_string(),
                )
            } else {
                (None, m.source.clone())
            };
            let mut v = json!({
                "Type": m.kind, "Source": source, "Destination": m.destination,
                "Mode": if m.read_only {"ro"} else {""}, "RW": !m.read_only, "Propagation": "",
            });
            if let Some(n) = name {
                v["Name"] = json!(n);
                v["Driver"] = json!("local");
            }
            v
        })
        .collect()
}

fn health_of(engine: &Engine, c: &ContainerRecord) -> Option<Health> {
    Health::load(&engine.container_dir(&c.id)).filter(|_| c.state.is_live())
}

/// `GET /containers/{id}/json`, in Docker's shape.
// TODO(engapi): replace with the engine's typed inspect once the `engapi` branch lands.
pub(crate) fn inspect_json(engine: &Engine, c: &ContainerRecord) -> Value {
    let health = health_of(engine, c);
    let state_status = c.state.as_str();
    let binds: Vec<String> = c
        .config
        .mounts
        .iter()
        .filter(|m| m.kind != "tmpfs")
        .map(|m| {
            format!(
                "{}:{}{}",
                m.source,
                m.destination,
                if m.read_only { ":ro" } else { "" }
            )
        })
        .collect();
    let tmpfs: Map<String, Value> = c
        .config
        .mounts
        .iter()
        .filter(|m| m.kind == "tmpfs")
        .map(|m| (m.destination.clone(), json!(m.options)))
        .collect();
    let exposed: Map<String, Value> = c
        .config
        .exposed_ports
        .iter()
        .map(|e| {
            let k = if e.contains('/') {
                e.clone()
            } else {
                format!("{e}/tcp")
            };
            (k, json!({}))
        })
        .collect();
    let first_ip = c.network.networks.first();
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": c.config.args.first(),
        "Args": c.config.args.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": state_status,
            "Running": c.state.is_live(),
            "Paused": c.state == CState::Paused,
            "Restarting": c.state == CState::Restarting,
            "OOMKilled": c.oom_killed,
            "Dead": c.state == CState::Dead,
            "Pid": if c.state.is_live() { c.pid } else { 0 },
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": or_zero_time(&c.started_at),
            "FinishedAt": or_zero_time(&c.finished_at),
            "Health": health,
        },
        "Image": c.image_id,
        "ResolvConfPath": engine.container_dir(&c.id).join("resolv.conf"),
        "HostnamePath": engine.container_dir(&c.id).join("hostname"),
        "HostsPath": engine.container_dir(&c.id).join("hosts"),
        "LogPath": engine.container_dir(&c.id).join("container.log"),
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": c.config.storage_driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config_json(c, binds, tmpfs),
        "GraphDriver": {"Name": c.config.storage_driver, "Data": null},
        "Mounts": mounts_json(c, engine.root()),
        "Config": config_json(c, exposed),
        "NetworkSettings": {
            "Bridge": "", "SandboxID": "", "SandboxKey": if c.state.is_live() && c.pid > 0 { format!("/proc/{}/ns/net", c.pid) } else { String::new() },
            "HairpinMode": false, "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0,
            "Ports": port_map(c),
            "SecondaryIPAddresses": null, "SecondaryIPv6Addresses": null,
            "EndpointID": "",
            "Gateway": first_ip.map(|n| n.gateway.clone()).unwrap_or_default(),
            "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": first_ip.map(|n| n.ip.clone()).unwrap_or_default(),
            "IPPrefixLen": first_ip.map(|n| n.prefix_len).unwrap_or(0),
            "IPv6Gateway": "",
            "MacAddress": first_ip.map(|n| n.mac.clone()).unwrap_or_default(),
            "Networks": networks_json(c),
        },
    })
}

fn host_config_json(c: &ContainerRecord, binds: Vec<String>, tmpfs: Map<String, Value>) -> Value {
    json!({
        "Binds": binds,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},
        "NetworkMode": c.config.network,
        "PortBindings": port_bindings(c),
        "RestartPolicy": restart_policy(&c.config.restart),
        "AutoRemove": c.config.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": null,
        "CapAdd": c.config.cap_add,
        "CapDrop": c.config.cap_drop,
        "CgroupnsMode": "private",
        "Dns": [], "DnsOptions": [], "DnsSearch": [], "ExtraHosts": null,
        "GroupAdd": null, "IpcMode": "private", "Cgroup": "", "Links": null,
        "OomScoreAdj": 0, "PidMode": "", "Privileged": c.config.privileged,
        "PublishAllPorts": false,
        "ReadonlyRootfs": c.config.readonly_rootfs,
        "SecurityOpt": if c.config.no_new_privileges { json!(["no-new-privileges"]) } else { Value::Null },
        "Tmpfs": tmpfs,
        "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Runtime": "berth",
        "Isolation": "",
        "Init": c.config.init,
        "Memory": c.config.limits.memory.unwrap_or(0),
        "MemorySwap": c.config.limits.memory_swap.unwrap_or(0),
        "MemoryReservation": c.config.limits.memory_reservation.unwrap_or(0),
        "NanoCpus": c.config.limits.cpu_quota.map(|q| q * 10_000).unwrap_or(0),
        "CpuShares": c.config.limits.cpu_shares.unwrap_or(0),
        "CpuPeriod": 0, "CpuQuota": 0,
        "CpusetCpus": c.config.limits.cpuset_cpus.clone().unwrap_or_default(),
        "CpusetMems": c.config.limits.cpuset_mems.clone().unwrap_or_default(),
        "PidsLimit": c.config.limits.pids,
        "BlkioWeight": c.config.limits.blkio_weight.unwrap_or(0),
        "Devices": c.config.devices.iter().map(|d| json!({
            "PathOnHost": d.host_path, "PathInContainer": d.container_path,
            "CgroupPermissions": d.permissions,
        })).collect::<Vec<_>>(),
        "DeviceCgroupRules": c.config.device_cgroup_rules,
        "MaskedPaths": null, "ReadonlyPaths": null,
    })
}

fn config_json(c: &ContainerRecord, exposed: Map<String, Value>) -> Value {
    json!({
        "Hostname": if c.config.hostname.is_empty() { c.short_id().to_string() } else { c.config.hostname.clone() },
        "Domainname": "",
        "User": c.config.user,
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "ExposedPorts": if exposed.is_empty() { Value::Null } else { Value::Object(exposed) },
        "Tty": c.config.tty,
        "OpenStdin": c.config.interactive,
        "StdinOnce": false,
        "Env": c.config.env,
        "Cmd": c.config.cmd,
        "Healthcheck": c.config.healthcheck,
        "Image": c.image,
        "Volumes": null,
        "WorkingDir": c.config.cwd,
        "Entrypoint": if c.config.entrypoint.is_empty() { Value::Null } else { json!(c.config.entrypoint) },
        "OnBuild": null,
        "Labels": c.config.labels,
        "StopSignal": c.config.stop_signal,
        "StopTimeout": c.config.stop_timeout,
    })
}

/// Docker's `Status` column text, with the health while running.
fn status_text(engine: &Engine, c: &ContainerRecord) -> String {
    let s = c.status_line(chrono::Utc::now());
    match health_of(engine, c) {
        Some(h) if c.state == CState::Running => format!("{s} {}", h.status.ps_suffix()),
        _ => s,
    }
}

fn summary_json(engine: &Engine, c: &ContainerRecord) -> Value {
    let mut ports = Vec::new();
    for n in &c.network.networks {
        for p in &n.ports {
            ports.push(json!({"IP": if p.host_ip.is_empty() {"0.0.0.0"} else {&p.host_ip},
                              "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": p.protocol}));
        }
    }
    if c.network.networks.is_empty() {
        for e in &c.config.exposed_ports {
            let (p, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            if let Ok(p) = p.parse::<u16>() {
                ports.push(json!({"PrivatePort": p, "Type": proto}));
            }
        }
    }
    json!({
        "Id": c.id,
        "Names": [format!("/{}", c.name)],
        "Image": c.image,
        "ImageID": c.image_id,
        "Command": c.config.args.join(" "),
        "Created": unix_time(&c.created),
        "Ports": ports,
        "Labels": c.config.labels,
        "State": c.state.as_str(),
        "Status": status_text(engine, c),
        "HostConfig": {"NetworkMode": c.config.network},
        "NetworkSettings": {"Networks": networks_json(c)},
        "Mounts": mounts_json(c, engine.root()),
    })
}

/// Docker's `filters` parameter: `{"key": ["v1", "v2"]}` or the old
/// `{"key": {"v1": true}}`.
pub(crate) fn parse_filters(s: Option<&str>) -> ApiResult<Vec<(String, Vec<String>)>> {
    let Some(s) = s.filter(|s| !s.is_empty()) else {
        return Ok(Vec::new());
    };
    let v: Value = serde_json::from_str(s)
        .map_err(|e| ApiError::bad_request(format!("invalid filters {s:?}: {e}")))?;
    let Value::Object(m) = v else {
        return Err(ApiError::bad_request(format!(
            "invalid filters {s:?}: expected a JSON object"
        )));
    };
    let mut out = Vec::new();
    for (k, v) in m {
        let values = match v {
            Value::Array(a) => a
                .into_iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>(),
            Value::Object(o) => Some(
                o.into_iter()
                    .filter(|(_, b)| b == &Value::Bool(true))
                    .map(|(k, _)| k)
                    .collect(),
            ),
            _ => None,
        }
        .ok_or_else(|| {
            ApiError::bad_request(format!("invalid filter {k:?}: values must be strings"))
        })?;
        out.push((k, values));
    }
    Ok(out)
}

/// One container filter (values of a key are alternatives; keys all must hold).
// TODO(engapi): the engine's typed filters replace this when `engapi` lands.
fn filter_matches(engine: &Engine, c: &ContainerRecord, key: &str, v: &str) -> ApiResult<bool> {
    Ok(match key {
        "name" => c.name.contains(v.trim_start_matches('/')),
        "id" => c.id.starts_with(v),
        "status" => c.state.as_str() == v,
        "ancestor" => c.image == v || c.image_id.contains(v) || format!("{v}:latest") == c.image,
        "label" => {
            let (lk, lv) = match v.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (v, None),
            };
            c.config.labels.get(lk).is_some_and(|x| lv.is_none_or(|lv| x == lv))
        }
        "exited" => c.state == CState::Exited && c.exit_code.to_string() == v,
        "health" => {
            let h = health_of(engine, c).map(|h| serde_json::to_value(h.status).unwrap_or_default());
            match h {
                Some(Value::String(s)) => s == v,
                _ => v == "none",
            }
        }
        "network" => c.config.network == v || c.network.networks.iter().any(|n| n.network == v),
        "volume" => c.config.mounts.iter().any(|m| m.source == v || m.destination == v),
        "is-task" => v == "false",
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid filter {other:?}: berth supports name, id, status, ancestor, label, exited, health, network, volume"
            )))
        }
    })
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
    st.blocking(move |engine| {
        let filters = parse_filters(q.filters.as_deref())?;
        engine.reconcile_records()?;
        let all = qbool(&q.all);
        let _ = &q.size;
        let mut out = Vec::new();
        // Newest first, as Docker lists them.
        let mut list = engine.db()?.list()?;
        list.sort_by(|a, b| b.created.cmp(&a.created));
        for c in list {
            let explicit_status = filters.iter().any(|(k, _)| k == "status");
            if !all && !explicit_status && !c.state.is_live() {
                continue;
            }
            let mut ok = true;
            for (k, vals) in &filters {
                let mut any = vals.is_empty();
                for v in vals {
                    any |= filter_matches(engine, &c, k, v)?;
                }
                ok &= any;
            }
            if !ok {
                continue;
            }
            out.push(summary_json(engine, &c));
            if q.limit.is_some_and(|l| l > 0 && out.len() as i64 >= l) {
                break;
            }
        }
        Ok(Json(Value::Array(out)))
    })
    .await
}

pub async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    st.blocking(move |engine| {
        engine.reconcile_records()?;
        let c = resolve(engine, &id)?;
        Ok(Json(inspect_json(engine, &c)))
    })
    .await
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
    fn filters_both_shapes() {
        let f = parse_filters(Some(r#"{"label":["a=b"],"status":{"running":true}}"#)).unwrap();
        assert_eq!(f[0], ("label".to_string(), vec!["a=b".to_string()]));
        assert_eq!(f[1], ("status".to_string(), vec!["running".to_string()]));
        assert!(parse_filters(Some("[1]")).is_err());
        assert!(parse_filters(Some("{")).is_err());
        assert!(parse_filters(None).unwrap().is_empty());
    }

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
