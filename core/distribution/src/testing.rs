//! Test support (feature `testing`): a real registry (Debian's
//! `docker-registry`, distribution 2.8) on a free loopback port, with a
//! generated config in a temp dir, filesystem storage, and optionally
//! htpasswd basic auth or token auth served by an in-process JWT issuer.
//!
//! ```no_run
//! # fn main() -> std::io::Result<()> {
//! use berth_distribution::testing::TestRegistry;
//! let reg = TestRegistry::start()?;             // anonymous
//! let image = format!("{}/demo/busybox:1", reg.host());
//! # Ok(()) }
//! ```
//!
//! The registry process is killed and its directory removed on drop.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// Where the registry binary is looked for (overridable with `BERTH_TEST_REGISTRY_BIN`).
pub const DEFAULT_REGISTRY_BIN: &str = "/usr/bin/docker-registry";

const SERVICE: &str = "berth-test-registry";
const ISSUER: &str = "berth-test-issuer";

fn registry_bin() -> PathBuf {
    std::env::var_os("BERTH_TEST_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_REGISTRY_BIN))
}

fn other(msg: String) -> io::Error {
    io::Error::other(msg)
}

/// Authentication of a [`TestRegistry`].
#[derive(Clone, Debug)]
pub enum TestAuth {
    None,
    /// htpasswd (bcrypt) basic auth with one user.
    Basic {
        user: String,
        password: String,
    },
    /// Bearer tokens from an in-process issuer that knows one user.
    Token {
        user: String,
        password: String,
    },
}

/// A running `docker-registry` on `127.0.0.1:<port>`.
pub struct TestRegistry {
    child: Option<Child>,
    dir: tempfile::TempDir,
    port: u16,
    issuer: Option<TokenIssuer>,
}

impl TestRegistry {
    /// True when the registry binary is installed.
    pub fn available() -> bool {
        registry_bin().exists()
    }

    /// An anonymous registry.
    pub fn start() -> io::Result<TestRegistry> {
        Self::start_with(TestAuth::None)
    }

    /// A registry with htpasswd basic auth.
    pub fn with_basic_auth(user: &str, password: &str) -> io::Result<TestRegistry> {
        Self::start_with(TestAuth::Basic {
            user: user.into(),
            password: password.into(),
        })
    }

    /// A registry with token auth (an in-process issuer on another loopback port).
    pub fn with_token_auth(user: &str, password: &str) -> io::Result<TestRegistry> {
        Self::start_with(TestAuth::Token {
            user: user.into(),
            password: password.into(),
        })
    }

    pub fn start_with(auth: TestAuth) -> io::Result<TestRegistry> {
        let bin = registry_bin();
        if !bin.exists() {
            return Err(other(format!(
                "{} not found: install Debian's docker-registry package (or set BERTH_TEST_REGISTRY_BIN)",
                bin.display()
            )));
        }
        let dir = tempfile::Builder::new().prefix("bt-registry-").tempdir()?;
        let mut auth_yaml = String::new();
        let mut issuer = None;
        match &auth {
            TestAuth::None => {}
            TestAuth::Basic { user, password } => {
                let hash = bcrypt::hash_with_result(password, 4)
                    .map_err(|e| other(format!("bcrypt: {e}")))?
                    .format_for_version(bcrypt::Version::TwoY);
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n"))?;
                auth_yaml = format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    path.display()
                );
            }
            TestAuth::Token { user, password } => {
                let iss = TokenIssuer::start(user, password)?;
                let bundle = dir.path().join("root.pem");
                std::fs::write(&bundle, &iss.cert_pem)?;
                auth_yaml = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    iss.port,
                    bundle.display()
                );
                issuer = Some(iss);
            }
        }
        let mut last_err = None;
        // A free port can be taken between probing and the registry's bind: retry.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let config = dir.path().join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n{auth_yaml}",
                    dir.path().join("data").display()
                ),
            )?;
            let log = std::fs::File::create(dir.path().join("registry.log"))?;
            let child = Command::new(&bin)
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .map_err(|e| other(format!("starting {}: {e}", bin.display())))?;
            let mut child = child;
            match wait_ready(&mut child, port, dir.path(), Duration::from_secs(20)) {
                Ok(()) => {
                    return Ok(TestRegistry {
                        child: Some(child),
                        dir,
                        port,
                        issuer,
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_err = Some(e);
                }
            }
        }
        Err(last_err.unwrap_or_else(|| other("registry did not start".into())))
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `127.0.0.1:<port>`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's storage root directory.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The registry's log (useful in assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The on-disk file of a blob (e.g. to corrupt it in a test).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2.min(hex.len())])
            .join(hex)
            .join("data")
    }

    /// Requests the token issuer has answered (0 without token auth).
    pub fn token_requests(&self) -> usize {
        self.issuer
            .as_ref()
            .map(|i| i.requests.load(Ordering::SeqCst))
            .unwrap_or(0)
    }

    /// Directory of the registry's files (config, log, storage).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        self.kill();
        if let Some(i) = self.issuer.take() {
            i.stop();
        }
    }
}

fn wait_ready(child: &mut Child, port: u16, dir: &Path, timeout: Duration) -> io::Result<()> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(dir.join("registry.log")).unwrap_or_default();
            return Err(other(format!(
                "docker-registry exited with {status}: {log}"
            )));
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.write_all(req.as_bytes()).is_ok()
                && s.read_exact(&mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.")
            {
                return Ok(());
            }
        }
        if start.elapsed() > timeout {
            return Err(other(format!(
                "docker-registry did not answer on 127.0.0.1:{port} within {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An HTTP token endpoint on loopback that issues ES256 JWTs with an `x5c`
/// header (a self-signed certificate that is the registry's root bundle).
struct TokenIssuer {
    rt: Option<tokio::runtime::Runtime>,
    port: u16,
    cert_pem: String,
    requests: Arc<AtomicUsize>,
}

struct IssuerState {
    user: String,
    password: String,
    key: jsonwebtoken::EncodingKey,
    cert_der_b64: String,
    requests: Arc<AtomicUsize>,
    serial: AtomicUsize,
}

impl TokenIssuer {
    fn start(user: &str, password: &str) -> io::Result<TokenIssuer> {
        let ck = rcgen::generate_simple_self_signed(vec![ISSUER.to_string()])
            .map_err(|e| other(format!("generating issuer certificate: {e}")))?;
        let key = jsonwebtoken::EncodingKey::from_ec_pem(ck.key_pair.serialize_pem().as_bytes())
            .map_err(|e| other(format!("loading issuer key: {e}")))?;
        let requests = Arc::new(AtomicUsize::new(0));
        let state = Arc::new(IssuerState {
            user: user.to_string(),
            password: password.to_string(),
            key,
            cert_der_b64: base64::engine::general_purpose::STANDARD.encode(ck.cert.der()),
            requests: requests.clone(),
            serial: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bt-token-issuer")
            .enable_all()
            .build()?;
        let listener = {
            let _g = rt.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let st = state.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let st = st.clone();
                        async move { Ok::<_, std::convert::Infallible>(issue(&st, req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(TokenIssuer {
            rt: Some(rt),
            port,
            cert_pem: ck.cert.pem(),
            requests,
        })
    }

    fn stop(mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

type Resp = hyper::Response<http_body_util::Full<bytes_of::Bytes>>;

mod bytes_of {
    pub use hyper::body::Bytes;
}

fn respond(status: u16, body: String) -> Resp {
    let mut r = hyper::Response::new(http_body_util::Full::new(bytes_of::Bytes::from(body)));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn issue(st: &IssuerState, req: hyper::Request<hyper::body::Incoming>) -> Resp {
    st.requests.fetch_add(1, Ordering::SeqCst);
    let authed = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .is_some_and(|s| s == format!("{}:{}", st.user, st.password));
    if !authed {
        return respond(401, r#"{"details":"invalid credentials"}"#.into());
    }
    let query = req.uri().query().unwrap_or("");
    let mut access = Vec::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if k != "scope" {
            continue;
        }
        for scope in v.split(' ') {
            let Some((kind, rest)) = scope.split_once(':') else {
                continue;
            };
            let Some((name, actions)) = rest.rsplit_once(':') else {
                continue;
            };
            access.push(serde_json::json!({
                "type": kind,
                "name": name,
                "actions": actions.split(',').collect::<Vec<_>>(),
            }));
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": st.user,
        "aud": SERVICE,
        "exp": now + 600,
        "nbf": now.saturating_sub(30),
        "iat": now,
        "jti": format!("bt-{}", st.serial.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![st.cert_der_b64.clone()]);
    match jsonwebtoken::encode(&header, &claims, &st.key) {
        Ok(token) => respond(
            200,
            serde_json::json!({"token": token, "access_token": token, "expires_in": 600})
                .to_string(),
        ),
        Err(e) => respond(500, format!("{{\"details\":\"{e}\"}}")),
    }
}
