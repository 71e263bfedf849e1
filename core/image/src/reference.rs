//! Image references with Docker's normalisation.
//!
//! Normalisation: a reference is always kept in
//! its *fully qualified* form, the way `index.json` stores it in the
//! `org.opencontainers.image.ref.name` annotation:
//!
//! * `nginx` -> `docker.io/library/nginx:latest`
//! * `foo/bar:1` -> `docker.io/foo/bar:1`
//! * `localhost/foo:1`, `registry.example:5000/x/y:2` are kept as they are
//!   (a first component with a `.` or `:`, or `localhost`, is a registry).
//!
//! A missing tag defaults to `latest` unless a digest is given. Parsing and
//! the grammar are those of the distribution spec's reference grammar, implemented by hand
//! (the regex-based parser of `oci_spec::distribution` cost ~30 ms per `berth` command).

use std::fmt;
use std::str::FromStr;

use crate::error::ImageError;

const DOCKER_HUB: &str = "docker.io";
const DOCKER_LIBRARY: &str = "docker.io/library/";

/// A parsed, normalised image reference: `repository[:tag][@digest]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Parses `s` with Docker's rules (see the module docs).
    pub fn parse(s: &str) -> Result<Reference, ImageError> {
        let invalid = |reason: &str| ImageError::InvalidReference {
            input: s.to_string(),
            reason: reason.to_string(),
        };
        if s.is_empty() {
            return Err(invalid("the reference is empty"));
        }
        if s.trim() != s || s.chars().any(char::is_whitespace) {
            return Err(invalid("a reference may not contain white space"));
        }
        // Name part: everything before '@' and before a ':' that follows the last '/'.
        let name_part = s.split('@').next().unwrap_or(s);
        let last_slash = name_part.rfind('/').map(|i| i + 1).unwrap_or(0);
        let repo_end = name_part[last_slash..]
            .find(':')
            .map(|i| i + last_slash)
            .unwrap_or(name_part.len());
        let path_start = name_part[..repo_end]
            .find('/')
            .filter(|&i| {
                let first = &name_part[..i];
                first.contains('.') || first.contains(':') || first == "localhost"
            })
            .map(|i| i + 1)
            .unwrap_or(0);
        if name_part[path_start..repo_end]
            .chars()
            .any(|c| c.is_ascii_uppercase())
        {
            return Err(invalid("repository name must be lowercase"));
        }
        let parsed = berth_reference::parse(s).map_err(invalid)?;
        let repository = format!("{}/{}", parsed.registry, parsed.path);
        if repository.len() > 255 {
            return Err(invalid(
                "repository name must not be more than 255 characters",
            ));
        }
        if let Some(d) = parsed.digest.as_deref() {
            if !d.starts_with("sha256:") || !is_hex(&d[7..]) {
                return Err(invalid("only lower-case sha256 digests are supported"));
            }
        }
        let tag = match (&parsed.tag, &parsed.digest) {
            (None, None) => Some("latest".to_string()),
            (t, _) => t.clone(),
        };
        Ok(Reference {
            repository,
            tag,
            digest: parsed.digest,
        })
    }

    /// Fully qualified repository, e.g. `docker.io/library/nginx`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any (`latest` when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:...`), if any.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// Returns a copy with the given tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ImageError> {
        Reference::parse(&format!("{}:{}", self.repository, tag))
    }

    /// The short form Docker shows: `nginx:latest`, `foo/bar:1`, `localhost/foo:1`.
    pub fn familiar(&self) -> String {
        let repo = self.familiar_repository();
        let mut s = repo.to_string();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// The repository in short form (`nginx`, `foo/bar`, `localhost/foo`).
    pub fn familiar_repository(&self) -> &str {
        if let Some(rest) = self.repository.strip_prefix(DOCKER_LIBRARY) {
            if !rest.contains('/') {
                return rest;
            }
        }
        if let Some(rest) = self.repository.strip_prefix(DOCKER_HUB) {
            if let Some(rest) = rest.strip_prefix('/') {
                // Keep `docker.io/` when the short form would read as another registry:
                // `docker.io/my.org/app` shortened to `my.org/app` names registry `my.org`
                // (found by fuzzing; `save` writes familiar names into RepoTags).
                let first = rest.split('/').next().unwrap_or(rest);
                let looks_like_domain =
                    first.contains('.') || first.contains(':') || first == "localhost";
                if !(looks_like_domain && rest.contains('/')) {
                    return rest;
                }
            }
        }
        &self.repository
    }

    /// True when this reference names a tag (and no digest).
    pub fn is_tag(&self) -> bool {
        self.tag.is_some() && self.digest.is_none()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

pub(crate) fn is_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_short_names() {
        let r = Reference::parse("nginx").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.familiar(), "nginx:latest");
        let r = Reference::parse("foo/bar:1").unwrap();
        assert_eq!(r.to_string(), "docker.io/foo/bar:1");
        assert_eq!(r.familiar(), "foo/bar:1");
        let r = Reference::parse("localhost/foo:1").unwrap();
        assert_eq!(r.to_string(), "localhost/foo:1");
        assert_eq!(r.familiar(), "localhost/foo:1");
        let r = Reference::parse("reg.example:5000/a/b").unwrap();
        assert_eq!(r.repository(), "reg.example:5000/a/b");
        assert_eq!(r.tag(), Some("latest"));
        let r = Reference::parse("docker.io/library/busybox:1.36").unwrap();
        assert_eq!(r.familiar(), "busybox:1.36");
    }

    #[test]
    fn familiar_form_never_changes_the_registry() {
        // Fuzzing regression: the path's first component looks like a domain.
        for s in [
            "docker.io/my.org/app:1",
            "docker.io/localhost/app:1",
            "docker.io/losdocaldocker.io/library/ngin",
        ] {
            let r = Reference::parse(s).unwrap();
            assert!(
                r.familiar().starts_with("docker.io/"),
                "{s}: {}",
                r.familiar()
            );
            assert_eq!(Reference::parse(&r.familiar()).unwrap(), r, "{s}");
        }
        let r = Reference::parse("docker.io/my.org:1").unwrap();
        assert_eq!(r.familiar(), "my.org:1");
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(d.as_str()));
        assert!(!r.is_tag());
        assert!(Reference::parse("busybox@sha256:abc").is_err());
        assert!(Reference::parse(&format!("busybox@md5:{}", "a".repeat(32))).is_err());
    }

    #[test]
    fn rejects_invalid() {
        for bad in [
            "", "Nginx", "foo/Bar", "a b", "foo:", ":tag", "foo::x", "foo/", "-x", "foo:-bad",
        ] {
            let err = Reference::parse(bad).unwrap_err();
            assert!(
                matches!(err, ImageError::InvalidReference { .. }),
                "{bad}: {err}"
            );
        }
        let err = Reference::parse("Nginx").unwrap_err().to_string();
        assert!(err.contains("lowercase"), "{err}");
        // Upper-case is allowed in tags and registry host names.
        assert!(Reference::parse("foo:V1").is_ok());
        assert!(Reference::parse(&format!("foo:{}", "a".repeat(129))).is_err());
    }
}
