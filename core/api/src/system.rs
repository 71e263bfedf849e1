//! `/_ping`, `/version`, `/info`, `/auth`.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use berth_engine::{container::State as CState, host};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{error::ApiResult, server::AppState, API_VERSION, MIN_API_VERSION};

/// The headers clients negotiate with: `API-Version` (the docker CLI uses it as is),
/// `Builder-Version: 1` (the legacy builder: berth has no BuildKit session API), `OSType`.
fn ping_headers(h: &mut HeaderMap) {
    h.insert("API-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("OSType", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub async fn ping() -> Response {
    let mut r = (StatusCode::OK, "OK").into_response();
    ping_headers(r.headers_mut());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

pub(crate) fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        "riscv64" => "riscv64",
        other => other,
    }
}

pub async fn version() -> Json<Value> {
    let v = env!("CARGO_PKG_VERSION");
    Json(json!({
        "Platform": {"Name": "berth"},
        "Components": [{
            "Name": "Engine",
            "Version": v,
            "Details": {
                "ApiVersion": API_VERSION,
                "MinAPIVersion": MIN_API_VERSION,
                "Os": "linux",
                "Arch": arch(),
                "KernelVersion": host::kernel_version(),
            },
        }],
        "Version": v,
        "ApiVersion": API_VERSION,
        "MinAPIVersion": MIN_API_VERSION,
        "GitCommit": "",
        "GoVersion": "",
        "Os": "linux",
        "Arch": arch(),
        "KernelVersion": host::kernel_version(),
        "BuildTime": "",
    }))
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// `/info` in Docker's shape: clients detect a Docker-compatible engine by it.
pub async fn info(State(st): State<AppState>) -> ApiResult<Json<Value>> {
    st.blocking(|engine| {
        engine.reconcile_records()?;
        let list = engine.db()?.list()?;
        let count = |s: CState| list.iter().filter(|c| c.state == s).count();
        let running = count(CState::Running) + count(CState::Restarting);
        let paused = count(CState::Paused);
        let images = engine.images()?.list()?.len();
        let setup = host::cgroup_setup();
        let cgroup_version = if setup == host::CgroupSetup::Unified {
            "2"
        } else {
            "1"
        };
        let hostname = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default();
        let storage = engine.plugins.active_name(berth_abi::PluginKind::Storage);
        let network = engine.plugins.active_name(berth_abi::PluginKind::Network);
        Ok(Json(json!({
            "ID": format!("berth:{}", engine.root().display()),
            "Containers": list.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": list.len() - running - paused,
            "Images": images,
            "Driver": storage,
            "DriverStatus": [["Root Dir", engine.root().join("storage").display().to_string()]],
            "Plugins": {
                "Volume": ["local"],
                "Network": [network, "host", "none"],
                "Authorization": null,
                "Log": ["json-file"],
            },
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "CPUShares": true,
            "CPUSet": true,
            "PidsLimit": true,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": 0,
            "OomKillDisable": false,
            "NGoroutines": 0,
            "SystemTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroup_version,
            "NEventsListener": 0,
            "KernelVersion": host::kernel_version(),
            "OperatingSystem": os_name(),
            "OSVersion": "",
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {
                "InsecureRegistryCIDRs": ["127.0.0.0/8"],
                "IndexConfigs": {},
                "Mirrors": [],
            },
            "NCPU": berth_engine::parse::host_cpus(),
            "MemTotal": mem_total(),
            "DockerRootDir": engine.root().display().to_string(),
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth": {"path": "berth"}},
            "DefaultRuntime": "berth",
            "Swarm": {"LocalNodeState": "inactive", "ControlAvailable": false, "NodeID": "", "NodeAddr": ""},
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "berth-init",
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=cgroupns"],
            "Warnings": [],
        })))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct AuthBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
}

/// `POST /auth`: the credentials are checked against the registry (and kept in berth's
/// credentials file, as `berth login` does).
pub async fn auth(
    State(st): State<AppState>,
    Json(body): Json<AuthBody>,
) -> ApiResult<Json<Value>> {
    st.blocking(move |engine| {
        let registry = if body.serveraddress.is_empty() {
            "docker.io".to_string()
        } else {
            body.serveraddress
        };
        engine
            .login(&registry, &body.username, &body.password, &[])
            .map_err(|e| {
                crate::ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    format!("login to {registry}: {e}"),
                )
            })?;
        Ok(Json(
            json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        ))
    })
    .await
}
