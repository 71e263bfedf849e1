//! Credentials (a Docker `config.json` style file) and `WWW-Authenticate`
//! challenge parsing.
//!
//! The file holds `{"auths": {"<registry>": {"auth": base64("user:pass")}}}`;
//! other keys of the file (Docker's `credsStore`, podman's extra fields) are
//! kept untouched on rewrite. It is written atomically with mode 0600.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use base64::Engine as _;

use crate::error::{DistributionError, Result};

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `base64(user:pass)`, the value of `auth` in the file and of `Authorization: Basic`.
    pub fn basic_value(&self) -> String {
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.username, self.password))
    }
}

/// The key a registry has in the auth file. Docker Hub is stored as `docker.io`
/// (podman's habit); Docker's `https://index.docker.io/v1/` is read too.
fn key_matches(key: &str, registry: &str) -> bool {
    let mut k = key.trim();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = k.strip_prefix(scheme) {
            k = rest;
        }
    }
    let k = k.split('/').next().unwrap_or(k);
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    k == registry || (hub(k) && hub(registry))
}

fn read_doc(path: &Path) -> Result<serde_json::Map<String, serde_json::Value>> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(serde_json::Map::new()),
        Err(e) => return Err(DistributionError::io("reading credentials file", path, e)),
    };
    if data.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(serde_json::Map::new());
    }
    let v: serde_json::Value = serde_json::from_slice(&data).map_err(|e| {
        DistributionError::malformed(format!("credentials file {}", path.display()), e)
    })?;
    match v {
        serde_json::Value::Object(m) => Ok(m),
        _ => Err(DistributionError::malformed(
            format!("credentials file {}", path.display()),
            "not a JSON object",
        )),
    }
}

/// The stored credentials for `registry` (`host[:port]`, `docker.io` for Docker Hub).
pub fn load_credentials(auth_file: &Path, registry: &str) -> Result<Option<Credentials>> {
    let doc = read_doc(auth_file)?;
    let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
        return Ok(None);
    };
    let what = || format!("credentials of {registry} in {}", auth_file.display());
    for (key, entry) in auths {
        if !key_matches(key, registry) {
            continue;
        }
        if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| DistributionError::malformed(what(), e))?;
            let s = String::from_utf8(raw).map_err(|e| DistributionError::malformed(what(), e))?;
            let (u, p) = s
                .split_once(':')
                .ok_or_else(|| DistributionError::malformed(what(), "auth is not user:password"))?;
            return Ok(Some(Credentials::new(u, p)));
        }
        if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            return Ok(Some(Credentials::new(u, p)));
        }
    }
    Ok(None)
}

fn write_doc(path: &Path, doc: &serde_json::Map<String, serde_json::Value>) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| DistributionError::io("creating directory", &dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".auth-")
        .tempfile_in(&dir)
        .map_err(|e| DistributionError::io("creating temporary file in", &dir, e))?;
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o600))
        .map_err(|e| DistributionError::io("setting mode of", tmp.path(), e))?;
    let bytes = serde_json::to_vec_pretty(doc)
        .map_err(|e| DistributionError::malformed("credentials document", e))?;
    tmp.write_all(&bytes)
        .and_then(|()| tmp.write_all(b"\n"))
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| DistributionError::io("writing", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| DistributionError::io("renaming into place", path, e.error))?;
    tracing::debug!(path = %path.display(), "credentials file written");
    Ok(())
}

/// Stores `creds` for `registry` (replacing any entry that matches it).
pub fn store_credentials(auth_file: &Path, registry: &str, creds: &Credentials) -> Result<()> {
    let mut doc = read_doc(auth_file)?;
    let auths = doc
        .entry("auths")
        .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()));
    let Some(auths) = auths.as_object_mut() else {
        return Err(DistributionError::malformed(
            format!("credentials file {}", auth_file.display()),
            "\"auths\" is not an object",
        ));
    };
    auths.retain(|k, _| !key_matches(k, registry));
    auths.insert(
        registry.to_string(),
        serde_json::json!({ "auth": creds.basic_value() }),
    );
    write_doc(auth_file, &doc)
}

/// Removes the credentials of `registry`; returns false when there were none.
pub fn remove_credentials(auth_file: &Path, registry: &str) -> Result<bool> {
    let mut doc = read_doc(auth_file)?;
    let Some(auths) = doc.get_mut("auths").and_then(|a| a.as_object_mut()) else {
        return Ok(false);
    };
    let before = auths.len();
    auths.retain(|k, _| !key_matches(k, registry));
    if auths.len() == before {
        return Ok(false);
    }
    write_doc(auth_file, &doc)?;
    Ok(true)
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses `Bearer realm="...",service="...",scope="..."` or `Basic realm="..."`.
pub(crate) fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    Some(Challenge::Bearer {
        realm: get("realm")?,
        service: get("service"),
        scope: get("scope"),
    })
}

/// `k="v", k2=v2` with quoted values that may contain commas and escapes.
fn parse_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while matches!(chars.peek(), Some(c) if *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' {
                break;
            }
            key.push(c);
            chars.next();
        }
        if chars.next().is_none() {
            break;
        }
        let mut val = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(n) = chars.next() {
                            val.push(n);
                        }
                    }
                    '"' => break,
                    c => val.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                val.push(c);
                chars.next();
            }
        }
        out.push((key.trim().to_string(), val.trim().to_string()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="x""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge(r#"Bearer service="x""#), None);
    }

    #[test]
    fn credentials_round_trip_with_mode_0600_and_foreign_keys_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/auth.json");
        assert_eq!(load_credentials(&path, "r.example").unwrap(), None);
        store_credentials(&path, "r.example:5000", &Credentials::new("u", "p:w")).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"]["r.example:5000"]["auth"], "dTpwOnc=");
        assert_eq!(
            load_credentials(&path, "r.example:5000").unwrap(),
            Some(Credentials::new("u", "p:w"))
        );
        assert_eq!(load_credentials(&path, "r.example").unwrap(), None);
        // Docker's Hub key is understood; other keys survive a rewrite.
        fs::write(
            &path,
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"YTpi"}},"credsStore":"x"}"#,
        )
        .unwrap();
        assert_eq!(
            load_credentials(&path, "docker.io").unwrap(),
            Some(Credentials::new("a", "b"))
        );
        assert!(remove_credentials(&path, "docker.io").unwrap());
        assert!(!remove_credentials(&path, "docker.io").unwrap());
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["credsStore"], "x");
    }
}
