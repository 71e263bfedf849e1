//! One registry + repository session: endpoint and scheme choice, the auth
//! handshake (anonymous, basic, bearer token with a per-scope cache) and
//! error mapping of registry answers.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use crate::auth::{self, parse_challenge, Challenge, Credentials};
use crate::error::{DistributionError, Result};

/// Docker Hub's name in references and its API endpoint.
pub const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ENDPOINT: &str = "registry-1.docker.io";

/// How to reach registries. Shared by pull, push and login.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Docker `config.json` style credentials file (`<config dir>/auth.json`,
    /// `$REGISTRY_AUTH_FILE`); `None`: anonymous unless `credentials` is set.
    pub auth_file: Option<PathBuf>,
    /// Credentials to use instead of the file's (e.g. `--creds user:pass`).
    pub credentials: Option<Credentials>,
    /// Registries (`host[:port]`) that may be spoken to over plain HTTP or
    /// HTTPS with an unverified certificate (`--tls-verify=false`).
    pub insecure_registries: Vec<String>,
    /// Treat loopback registries (`localhost`, `127.0.0.0/8`, `::1`) as
    /// insecure too, like dockerd's default `127.0.0.0/8`. Default: true.
    pub loopback_insecure: bool,
    /// TCP connect timeout. Default 30 s.
    pub connect_timeout: Duration,
    /// No response bytes for this long aborts a request. Default 5 min.
    pub read_timeout: Duration,
    pub user_agent: String,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            auth_file: None,
            credentials: None,
            insecure_registries: Vec::new(),
            loopback_insecure: true,
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(300),
            user_agent: format!("berth/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl RegistryOptions {
    /// True when `registry` may use plain HTTP / unverified TLS.
    pub fn is_insecure(&self, registry: &str) -> bool {
        if self.insecure_registries.iter().any(|r| r == registry) {
            return true;
        }
        self.loopback_insecure && is_loopback(registry)
    }
}

/// `localhost[:p]`, `127.x.y.z[:p]`, `[::1][:p]`.
pub(crate) fn is_loopback(registry: &str) -> bool {
    if let Ok(ip) = registry.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(registry)
    };
    host == "localhost"
        || host
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Splits a fully qualified repository (`docker.io/library/nginx`) into
/// registry (`docker.io`) and path (`library/nginx`).
pub(crate) fn split_repository(repository: &str) -> Result<(String, String)> {
    repository
        .split_once('/')
        .map(|(r, p)| (r.to_string(), p.to_string()))
        .ok_or_else(|| DistributionError::Invalid {
            what: format!("repository {repository:?}"),
            reason: "no registry part".into(),
        })
}

/// Normalises what a user types after `berth login`: `https://host/v2/` ->
/// `host`, Docker Hub aliases -> `docker.io`.
pub fn normalize_registry(input: &str) -> Result<String> {
    let mut s = input.trim();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest;
        }
    }
    let s = s.split('/').next().unwrap_or(s);
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '@') {
        return Err(DistributionError::Invalid {
            what: format!("registry {input:?}"),
            reason: "want host[:port]".into(),
        });
    }
    Ok(match s {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        other => other.to_string(),
    })
}

#[derive(Default)]
struct AuthState {
    challenge: Option<Challenge>,
    /// Bearer tokens by their scope set (sorted, space separated).
    tokens: HashMap<String, String>,
    token_requests: usize,
}

/// A session with one registry.
pub(crate) struct Client {
    /// The registry as references name it (`docker.io`, `127.0.0.1:5000`).
    pub(crate) registry: String,
    /// `https://registry-1.docker.io`, `http://127.0.0.1:5000`.
    pub(crate) base: String,
    pub(crate) http: reqwest::Client,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// Held while a token is fetched, so that parallel blob transfers wait
    /// for one token instead of each asking for their own.
    token_fetch: tokio::sync::Mutex<()>,
}

/// The innermost cause (`Connection refused (os error 111)`, a TLS alert).
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

impl Client {
    /// Connects to `registry`: picks the scheme (HTTPS; plain HTTP only for
    /// insecure registries when HTTPS fails) with a `GET /v2/` ping that also
    /// learns the auth challenge.
    pub(crate) async fn connect(registry: &str, opts: &RegistryOptions) -> Result<Client> {
        tracing::debug!(registry, "connecting to registry");
        let creds = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => match &opts.auth_file {
                Some(f) => auth::load_credentials(f, registry)?,
                None => None,
            },
        };
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_ENDPOINT
        } else {
            registry
        };
        let insecure = opts.is_insecure(registry);
        let http = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .connect_timeout(opts.connect_timeout)
            .read_timeout(opts.read_timeout)
            .danger_accept_invalid_certs(insecure)
            .build()
            .map_err(|e| DistributionError::Http {
                op: "creating the HTTP client for".into(),
                url: registry.to_string(),
                source: e,
            })?;
        let mut client = Client {
            registry: registry.to_string(),
            base: format!("https://{host}"),
            http,
            creds,
            auth: Mutex::new(AuthState::default()),
            token_fetch: tokio::sync::Mutex::new(()),
        };
        match client.ping().await {
            Ok(()) => Ok(client),
            Err(DistributionError::Connect { reason, .. }) if insecure => {
                tracing::debug!(registry, %reason, "HTTPS failed, trying plain HTTP (insecure registry)");
                client.base = format!("http://{host}");
                client.ping().await?;
                Ok(client)
            }
            Err(e) => Err(e),
        }
    }

    /// `GET /v2/`: 200 or 401 (the challenge is remembered).
    async fn ping(&self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.transport_error("pinging", &url, e))?;
        tracing::debug!(%url, status = %resp.status(), "registry ping");
        match resp.status() {
            s if s.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => {
                self.learn_challenge(resp.headers());
                Ok(())
            }
            _ => Err(self.status_error("GET /v2/", resp).await),
        }
    }

    fn learn_challenge(&self, headers: &HeaderMap) -> Option<Challenge> {
        let c = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(parse_challenge)
            // Prefer bearer when both are offered.
            .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))?;
        if let Ok(mut st) = self.auth.lock() {
            st.challenge = Some(c.clone());
        }
        Some(c)
    }

    pub(crate) fn transport_error(
        &self,
        op: &str,
        url: &str,
        e: reqwest::Error,
    ) -> DistributionError {
        if e.is_connect() {
            DistributionError::Connect {
                registry: self.registry.clone(),
                url: url.to_string(),
                reason: root_cause(&e),
            }
        } else {
            DistributionError::Http {
                op: op.to_string(),
                url: url.to_string(),
                source: e,
            }
        }
    }

    /// Number of token endpoint requests made so far (for tests and logs).
    pub(crate) fn token_requests(&self) -> usize {
        self.auth.lock().map(|s| s.token_requests).unwrap_or(0)
    }

    /// Verifies the credentials: for basic auth a `GET /v2/` with them, for
    /// bearer auth a token request with them.
    pub(crate) async fn verify_login(&self) -> Result<()> {
        let challenge = self.auth.lock().ok().and_then(|s| s.challenge.clone());
        match challenge {
            None => Ok(()),
            Some(Challenge::Bearer { .. }) => {
                self.token(&[]).await?;
                Ok(())
            }
            Some(Challenge::Basic) => {
                let url = format!("{}/v2/", self.base);
                let resp = self
                    .send("GET /v2/", &[], &|| Ok(self.http.get(&url)))
                    .await?;
                if resp.status().is_success() {
                    Ok(())
                } else {
                    Err(self.status_error("GET /v2/", resp).await)
                }
            }
        }
    }

    /// A bearer token for `scopes`, from the cache or the token endpoint.
    async fn token(&self, scopes: &[String]) -> Result<String> {
        let mut scopes: Vec<String> = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        let key = scopes.join(" ");
        let _fetching = self.token_fetch.lock().await;
        let (realm, service) = {
            let st = self.auth.lock().map_err(|_| DistributionError::Invalid {
                what: "auth state".into(),
                reason: "poisoned lock".into(),
            })?;
            if let Some(t) = st.tokens.get(&key) {
                return Ok(t.clone());
            }
            match &st.challenge {
                Some(Challenge::Bearer { realm, service, .. }) => (realm.clone(), service.clone()),
                _ => {
                    return Err(DistributionError::Invalid {
                        what: format!("auth of {}", self.registry),
                        reason: "no bearer challenge".into(),
                    })
                }
            }
        };
        let mut url = url::Url::parse(&realm)
            .map_err(|e| DistributionError::malformed(format!("token realm {realm:?}"), e))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = &service {
                q.append_pair("service", s);
            }
            for s in &scopes {
                q.append_pair("scope", s);
            }
            if let Some(c) = &self.creds {
                q.append_pair("account", &c.username);
            }
        }
        let mut req = self.http.get(url.clone());
        if let Some(c) = &self.creds {
            req = req.basic_auth(&c.username, Some(&c.password));
        }
        tracing::debug!(registry = %self.registry, scopes = %key, "requesting bearer token");
        if let Ok(mut st) = self.auth.lock() {
            st.token_requests += 1;
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error("requesting a token from", url.as_str(), e))?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = resp.text().await.unwrap_or_default();
            return Err(match &self.creds {
                Some(_) => DistributionError::AuthFailed {
                    registry: self.registry.clone(),
                    reason: format!(
                        "token endpoint returned HTTP {}: {}",
                        status.as_u16(),
                        summary(&body)
                    ),
                },
                None => DistributionError::AuthRequired {
                    registry: self.registry.clone(),
                },
            });
        }
        if !status.is_success() {
            return Err(self.status_error("token request", resp).await);
        }
        let body = read_limited(resp, 1 << 20, "token response", self).await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            token: Option<String>,
            access_token: Option<String>,
        }
        let tr: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| DistributionError::malformed("token response", e))?;
        let token = tr
            .token
            .or(tr.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| DistributionError::malformed("token response", "no token"))?;
        tracing::debug!(registry = %self.registry, "bearer token obtained");
        if let Ok(mut st) = self.auth.lock() {
            st.tokens.insert(key, token.clone());
        }
        Ok(token)
    }

    fn forget_token(&self, scopes: &[String]) {
        let mut scopes: Vec<String> = scopes.to_vec();
        scopes.sort();
        scopes.dedup();
        if let Ok(mut st) = self.auth.lock() {
            st.tokens.remove(&scopes.join(" "));
        }
    }

    async fn authorize(
        &self,
        req: RequestBuilder,
        scopes: &[String],
    ) -> Result<(RequestBuilder, bool)> {
        let challenge = self.auth.lock().ok().and_then(|s| s.challenge.clone());
        Ok(match challenge {
            None => (req, false),
            Some(Challenge::Basic) => match &self.creds {
                Some(c) => (req.basic_auth(&c.username, Some(&c.password)), true),
                None => (req, false),
            },
            Some(Challenge::Bearer { .. }) => {
                let t = self.token(scopes).await?;
                (req.header(AUTHORIZATION, format!("Bearer {t}")), true)
            }
        })
    }

    /// Sends the request `make` builds, authenticating for `scopes`; on 401
    /// learns the challenge, refreshes the token once and retries.
    pub(crate) async fn send(
        &self,
        op: &str,
        scopes: &[String],
        make: &(dyn Fn() -> Result<RequestBuilder> + Sync),
    ) -> Result<Response> {
        let mut scopes = scopes.to_vec();
        for attempt in 0..2 {
            let (req, authed) = self.authorize(make()?, &scopes).await?;
            let req = req.build().map_err(|e| DistributionError::Http {
                op: op.to_string(),
                url: self.base.clone(),
                source: e,
            })?;
            let url = req.url().to_string();
            let method = req.method().clone();
            let resp = self
                .http
                .execute(req)
                .await
                .map_err(|e| self.transport_error(op, &url, e))?;
            tracing::debug!(%method, %url, status = %resp.status(), "registry request");
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenge = self.learn_challenge(resp.headers());
            if attempt == 1 || challenge.is_none() {
                return Err(self.auth_error(authed, resp).await);
            }
            match challenge {
                Some(Challenge::Basic) if self.creds.is_none() => {
                    return Err(DistributionError::AuthRequired {
                        registry: self.registry.clone(),
                    })
                }
                Some(Challenge::Basic) if authed => {
                    return Err(self.auth_error(authed, resp).await)
                }
                Some(Challenge::Bearer { scope, .. }) => {
                    self.forget_token(&scopes);
                    if let Some(s) = scope {
                        scopes.extend(s.split(' ').filter(|x| !x.is_empty()).map(String::from));
                    }
                }
                _ => {}
            }
        }
        Err(DistributionError::AuthRequired {
            registry: self.registry.clone(),
        })
    }

    async fn auth_error(&self, authed: bool, resp: Response) -> DistributionError {
        let body = resp.text().await.unwrap_or_default();
        match (&self.creds, authed) {
            (Some(_), true) => DistributionError::AuthFailed {
                registry: self.registry.clone(),
                reason: format!("registry returned HTTP 401: {}", summary(&body)),
            },
            _ => DistributionError::AuthRequired {
                registry: self.registry.clone(),
            },
        }
    }

    /// Maps an unexpected answer to an error, using the distribution error
    /// codes of the body when present.
    pub(crate) async fn status_error(&self, op: &str, resp: Response) -> DistributionError {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        #[derive(serde::Deserialize)]
        struct Errs {
            errors: Vec<ErrItem>,
        }
        #[derive(serde::Deserialize)]
        struct ErrItem {
            code: String,
            #[serde(default)]
            message: String,
        }
        if let Ok(errs) = serde_json::from_str::<Errs>(&body) {
            if let Some(first) = errs.errors.first() {
                if first.code == "DENIED" || (status == 403 && first.code == "UNAUTHORIZED") {
                    return DistributionError::Denied {
                        registry: self.registry.clone(),
                        repository: op.to_string(),
                        reason: first.message.clone(),
                    };
                }
                return DistributionError::Status {
                    registry: self.registry.clone(),
                    op: op.to_string(),
                    status,
                    body: format!("{}: {}", first.code, first.message),
                };
            }
        }
        DistributionError::Status {
            registry: self.registry.clone(),
            op: op.to_string(),
            status,
            body: short(&body),
        }
    }

    /// Error code of a distribution error body (`MANIFEST_UNKNOWN`, `NAME_UNKNOWN`).
    pub(crate) async fn error_code(resp: Response) -> (u16, String) {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let code = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["errors"][0]["code"].as_str().map(String::from))
            .unwrap_or_default();
        (status, code)
    }

    /// Absolute URL of a `Location` header (which may be relative).
    pub(crate) fn location(&self, resp: &Response, op: &str) -> Result<url::Url> {
        let loc = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                DistributionError::malformed(format!("{op} response"), "no Location header")
            })?;
        let base = url::Url::parse(&self.base)
            .map_err(|e| DistributionError::malformed(format!("registry URL {}", self.base), e))?;
        base.join(loc)
            .map_err(|e| DistributionError::malformed(format!("Location {loc:?} of {op}"), e))
    }
}

/// `CODE: message` of a distribution error body, else the body shortened.
pub(crate) fn summary(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("errors")?.get(0)?;
            Some(format!(
                "{}: {}",
                e.get("code")?.as_str()?,
                e.get("message").and_then(|m| m.as_str()).unwrap_or("")
            ))
        })
        .unwrap_or_else(|| short(body))
}

pub(crate) fn short(body: &str) -> String {
    let t = body.trim();
    if t.len() > 300 {
        let mut end = 300;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &t[..end])
    } else {
        t.to_string()
    }
}

/// Reads a whole response body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut resp: Response,
    limit: u64,
    what: &str,
    client: &Client,
) -> Result<Vec<u8>> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(DistributionError::TooLarge {
            what: what.to_string(),
            limit,
        });
    }
    let url = resp.url().to_string();
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| client.transport_error(&format!("reading {what} from"), &url, e))?
    {
        if out.len() as u64 + chunk.len() as u64 > limit {
            return Err(DistributionError::TooLarge {
                what: what.to_string(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "::1",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in [
            "docker.io",
            "10.0.0.1:5000",
            "example.com:443",
            "[fe80::1]:5000",
        ] {
            assert!(!is_loopback(r), "{r}");
        }
        let o = RegistryOptions {
            insecure_registries: vec!["reg.lan:5000".into()],
            ..Default::default()
        };
        assert!(o.is_insecure("reg.lan:5000"));
        assert!(!o.is_insecure("reg.lan"));
        assert!(o.is_insecure("localhost:1"));
    }

    #[test]
    fn registry_normalisation() {
        assert_eq!(
            normalize_registry("https://index.docker.io/v1/").unwrap(),
            "docker.io"
        );
        assert_eq!(
            normalize_registry("127.0.0.1:5000").unwrap(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            normalize_registry("http://r.example/v2/").unwrap(),
            "r.example"
        );
        assert!(normalize_registry("").is_err());
        assert_eq!(
            split_repository("docker.io/library/nginx").unwrap(),
            ("docker.io".to_string(), "library/nginx".to_string())
        );
    }
}
