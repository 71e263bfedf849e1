//! # berth-reference — the image reference grammar
//!
//! `[domain/]path[:tag][@sha256:digest]` as the distribution spec defines it, by hand: the
//! regex-based parser of `oci_spec::distribution` compiles a large regular expression at
//! first use, which cost ~30 ms of every `berth` command that named an image.

const DOCKER_HUB: &str = "docker.io";

/// The parts of a reference, before normalisation of the tag.
pub struct Parsed {
    /// `docker.io` when the reference names no registry.
    pub registry: String,
    /// The repository path below the registry (`library/` added for Docker Hub names).
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

/// `path-component := [a-z0-9]+ (separator [a-z0-9]+)*`, separator `.`, `_`, `__`, `-+`.
fn valid_path_component(p: &str) -> bool {
    let b = p.as_bytes();
    if b.is_empty() || !is_alnum_lower(b[0] as char) || !is_alnum_lower(b[b.len() - 1] as char) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if is_alnum_lower(c) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum_lower(b[i] as char) {
            i += 1;
        }
        let sep = &p[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-');
        if !ok {
            return false;
        }
    }
    true
}

/// `domain := host [":" port]`, host = DNS labels separated by `.` (or `localhost`).
fn valid_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    if let Some(p) = port {
        if p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    !host.is_empty()
        && host.split('.').all(|l| {
            let b = l.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
}

/// Parses `s` with the distribution spec's reference grammar; the error says what is wrong.
pub fn parse(s: &str) -> Result<Parsed, &'static str> {
    const FORMAT: &str = "want name[:tag] or name@sha256:<digest>; names use [a-z0-9._-/], tags [A-Za-z0-9_.-] (max 128)";
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            let (alg, hex) = d
                .split_once(':')
                .ok_or("invalid digest format (want sha256:<64 hex>)")?;
            if alg != "sha256" {
                return Err("unsupported digest algorithm");
            }
            if hex.len() != 64 {
                return Err("invalid digest length");
            }
            if !hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
            {
                return Err("invalid digest format (want sha256:<64 hex>)");
            }
            (r, Some(d.to_string()))
        }
        None => (s, None),
    };
    // A tag is after the last ':' that follows the last '/'.
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].find(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err("invalid tag format");
        }
    }
    if name.is_empty() {
        return Err("repository name must have at least one component");
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let registry = if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            if !valid_domain(first) {
                return Err(FORMAT);
            }
            parts.remove(0);
            if first == "index.docker.io" {
                DOCKER_HUB.to_string()
            } else {
                first.to_string()
            }
        } else {
            DOCKER_HUB.to_string()
        }
    } else {
        DOCKER_HUB.to_string()
    };
    for p in &parts {
        if p.chars().any(|c| c.is_ascii_uppercase()) {
            return Err("repository name must be lowercase");
        }
        if !valid_path_component(p) {
            return Err(FORMAT);
        }
    }
    let mut path = parts.join("/");
    if registry == DOCKER_HUB && parts.len() == 1 {
        path = format!("library/{path}");
    }
    if registry.len() + 1 + path.len() > 255 {
        return Err("repository name must not be more than 255 characters");
    }
    Ok(Parsed {
        registry,
        path,
        tag: tag.map(str::to_string),
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn grammar() {
        let p = parse("nginx").unwrap();
        assert_eq!(
            (p.registry.as_str(), p.path.as_str(), p.tag),
            ("docker.io", "library/nginx", None)
        );
        let p = parse("localhost:5000/a/b-c__d.e:v1.2").unwrap();
        assert_eq!(
            (p.registry.as_str(), p.path.as_str(), p.tag.as_deref()),
            ("localhost:5000", "a/b-c__d.e", Some("v1.2"))
        );
        let d = format!("busybox@sha256:{}", "a".repeat(64));
        assert!(parse(&d).unwrap().digest.is_some());
        for bad in [
            "",
            "Nginx",
            "a//b",
            "a:",
            "-a",
            "a_",
            "a:tag@sha256:xyz",
            "a@md5:00",
            "a:.tag",
            "a/b:c:d",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
