//! Media types of manifests, indexes, configs and layers.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_SCHEMA1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// What `Accept` says when fetching a manifest.
pub(crate) const ACCEPT_MANIFESTS: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Compression of a layer media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

pub(crate) fn layer_compression(mt: &str) -> Option<Compression> {
    match mt {
        "application/vnd.oci.image.layer.v1.tar"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar"
        | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
        "application/vnd.oci.image.layer.v1.tar+gzip"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
        | "application/vnd.docker.image.rootfs.diff.tar.gzip"
        | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => Some(Compression::Gzip),
        "application/vnd.oci.image.layer.v1.tar+zstd"
        | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
        | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Kind of a fetched manifest document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Manifest,
    Index,
}

/// Classifies a manifest by its `Content-Type` (or, when the registry sends
/// none useful, by its `mediaType` field and shape).
pub(crate) fn classify(
    content_type: Option<&str>,
    body: &serde_json::Value,
) -> Result<Kind, String> {
    let field = body.get("mediaType").and_then(|m| m.as_str());
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or(c).trim())
        .filter(|c| !c.is_empty() && *c != "application/json" && *c != "application/octet-stream");
    let mt = ct.or(field);
    match mt {
        Some(OCI_MANIFEST) | Some(DOCKER_MANIFEST) => Ok(Kind::Manifest),
        Some(OCI_INDEX) | Some(DOCKER_LIST) => Ok(Kind::Index),
        Some(DOCKER_SCHEMA1) | Some(DOCKER_SCHEMA1_SIGNED) => Err(format!(
            "{} (Docker schema 1 images are deprecated; push the image again with a current tool)",
            mt.unwrap_or_default()
        )),
        Some(other) => Err(other.to_string()),
        None => {
            if body.get("schemaVersion").and_then(|v| v.as_u64()) == Some(1) {
                Err(DOCKER_SCHEMA1.to_string())
            } else if body.get("manifests").is_some() {
                Ok(Kind::Index)
            } else if body.get("layers").is_some() {
                Ok(Kind::Manifest)
            } else {
                Err("(none)".to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_manifests() {
        let v = serde_json::json!({"schemaVersion": 2, "layers": []});
        assert_eq!(classify(Some(OCI_MANIFEST), &v), Ok(Kind::Manifest));
        assert_eq!(classify(Some("application/json"), &v), Ok(Kind::Manifest));
        let v = serde_json::json!({"schemaVersion": 2, "mediaType": DOCKER_LIST, "manifests": []});
        assert_eq!(classify(None, &v), Ok(Kind::Index));
        let v = serde_json::json!({"schemaVersion": 1});
        assert!(classify(None, &v).is_err());
        assert!(classify(Some(DOCKER_SCHEMA1_SIGNED), &v)
            .unwrap_err()
            .contains("schema 1"));
        assert_eq!(
            layer_compression("application/vnd.oci.image.layer.v1.tar+zstd"),
            Some(Compression::Zstd)
        );
        assert_eq!(layer_compression("application/x-foo"), None);
    }
}
