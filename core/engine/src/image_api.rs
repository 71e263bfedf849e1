//! Images as the Docker Engine API shows them: `inspect` (`ImageInspect`), the list
//! (`ImageSummary`) with Docker's filters, and prune with what it reclaimed.

use std::collections::{HashMap, HashSet};

use berth_image::Image;

use crate::{filters::Filters, inspect::unix_secs, models as m, Engine, EngineError};

/// What `images` / `GET /images/json` asks for.
#[derive(Debug, Clone, Default)]
pub struct ListImagesOptions {
    /// berth has no intermediate images: the same as the default.
    pub all: bool,
    pub filters: Filters,
}

/// The filters `images` knows.
pub const IMAGE_FILTERS: &[&str] = &["dangling", "reference", "before", "since", "label"];

/// Docker's `reference=` rule: a glob (`*` does not cross `/`) matched against the familiar
/// `NAME:TAG` and, for a pattern without a tag, against `NAME`.
pub fn reference_matches(pattern: &str, familiar_tag: &str) -> bool {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    let Ok(p) = glob::Pattern::new(pattern) else {
        return pattern == familiar_tag;
    };
    if p.matches_with(familiar_tag, opts) {
        return true;
    }
    // `NAME` alone: the part before the tag (a `:` after the last `/`).
    let repo = match familiar_tag.rfind(':') {
        Some(i) if !familiar_tag[i..].contains('/') => &familiar_tag[..i],
        _ => familiar_tag,
    };
    p.matches_with(repo, opts)
}

fn labels_of(img: &Image) -> HashMap<String, String> {
    img.config
        .config()
        .as_ref()
        .and_then(|c| c.labels().clone())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

impl Engine {
    /// `docker image inspect IMAGE`.
    pub fn inspect_image(&self, what: &str) -> Result<m::ImageInspect, EngineError> {
        let store = self.images()?;
        let img = store.resolve(what)?;
        // Docker's config extensions (HEALTHCHECK, ONBUILD, SHELL) live beside the OCI
        // fields of the config object.
        let mut config = serde_json::to_value(img.config.config())
            .map_err(|e| EngineError::Invalid(format!("image {}: {e}", img.id)))?;
        if config.is_null() {
            config = serde_json::json!({});
        }
        let extras = serde_json::to_value(store.config_extras(&img)?)
            .map_err(|e| EngineError::Invalid(format!("image {}: {e}", img.id)))?;
        if let (Some(c), serde_json::Value::Object(extras)) = (config.as_object_mut(), extras) {
            c.extend(extras);
        }
        let config: m::ImageConfig = serde_json::from_value(config).map_err(|e| {
            EngineError::Invalid(format!("image {}: its configuration: {e}", img.id))
        })?;
        let comment = img
            .history()
            .last()
            .and_then(|h| h.comment().clone())
            .unwrap_or_default();
        Ok(m::ImageInspect {
            id: Some(img.id.clone()),
            repo_tags: Some(img.tags.iter().map(|t| t.familiar()).collect()),
            repo_digests: Some(
                img.tags
                    .iter()
                    .map(|t| format!("{}@{}", t.familiar_repository(), img.manifest_digest))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            ),
            parent: Some(String::new()),
            comment: Some(comment),
            created: img.created(),
            docker_version: Some(String::new()),
            author: Some(img.config.author().clone().unwrap_or_default()),
            config: Some(config),
            architecture: Some(img.config.architecture().to_string()),
            variant: img.config.variant().clone(),
            os: Some(img.config.os().to_string()),
            size: Some(img.size as i64),
            virtual_size: Some(img.size as i64),
            graph_driver: Some(m::DriverData {
                name: self.plugins.active_name(berth_abi::PluginKind::Storage),
                data: HashMap::new(),
            }),
            root_fs: Some(m::ImageInspectRootFs {
                typ: "layers".into(),
                layers: Some(img.diff_ids()),
            }),
            metadata: Some(m::ImageInspectMetadata {
                last_tag_time: None,
            }),
            ..Default::default()
        })
    }

    fn image_summary(&self, img: &Image, containers: &HashMap<String, i64>) -> m::ImageSummary {
        m::ImageSummary {
            id: img.id.clone(),
            parent_id: String::new(),
            repo_tags: img.tags.iter().map(|t| t.familiar()).collect(),
            repo_digests: img
                .tags
                .iter()
                .map(|t| format!("{}@{}", t.familiar_repository(), img.manifest_digest))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
            created: img.created().as_deref().map(unix_secs).unwrap_or(0),
            size: img.size as i64,
            shared_size: -1,
            virtual_size: Some(img.size as i64),
            labels: labels_of(img),
            containers: containers.get(&img.id).copied().unwrap_or(0),
            ..Default::default()
        }
    }

    /// `docker images` / `GET /images/json`, newest first.
    pub fn list_images(&self, o: &ListImagesOptions) -> Result<Vec<m::ImageSummary>, EngineError> {
        let f = &o.filters;
        f.validate(IMAGE_FILTERS)?;
        let dangling = f.bool_value("dangling")?;
        let store = self.images()?;
        let created_of = |key: &str| -> Result<Option<i64>, EngineError> {
            match f.get(key).first() {
                None => Ok(None),
                Some(r) => {
                    let img = store.resolve(r).map_err(|e| {
                        EngineError::NotFound(format!("invalid filter '{key}={r}': {e}"))
                    })?;
                    Ok(Some(img.created().as_deref().map(unix_secs).unwrap_or(0)))
                }
            }
        };
        let before = created_of("before")?;
        let since = created_of("since")?;
        let mut containers: HashMap<String, i64> = HashMap::new();
        for c in self.db()?.list()? {
            *containers.entry(c.image_id).or_default() += 1;
        }
        let mut list = store.list()?;
        list.sort_by_key(|x| std::cmp::Reverse(x.created()));
        let mut out = Vec::new();
        for img in &list {
            let created = img.created().as_deref().map(unix_secs).unwrap_or(0);
            let labels = labels_of(img);
            let keep = dangling.is_none_or(|d| d == img.is_dangling())
                && f.any_or_unset("reference", |p| {
                    img.tags.iter().any(|t| reference_matches(p, &t.familiar()))
                })
                && before.is_none_or(|b| created < b)
                && since.is_none_or(|s| created > s)
                && f.labels_match(|k| labels.get(k).map(String::as_str));
            if keep {
                out.push(self.image_summary(img, &containers));
            }
        }
        Ok(out)
    }

    /// IDs of the images some container (in any state) was created from.
    pub fn images_in_use(&self) -> Result<HashSet<String>, EngineError> {
        Ok(self.db()?.list()?.into_iter().map(|c| c.image_id).collect())
    }

    /// `docker image prune [-a]`: dangling images (every image no container uses with
    /// `all`), then the unpacked layers no image needs any more.
    pub fn prune_images(&self, all: bool) -> Result<m::ImagePruneResponse, EngineError> {
        let used = self.images_in_use()?;
        let blobs = self.config.root.join("images").join("blobs");
        let before = crate::df::dir_size(&blobs);
        let lines = self
            .images()?
            .prune(all, &|img: &Image| used.contains(&img.id))?;
        let after = crate::df::dir_size(&blobs);
        self.gc_layers()?;
        let items = delete_items(&lines);
        self.emit_deletions(&items);
        Ok(m::ImagePruneResponse {
            images_deleted: Some(items),
            space_reclaimed: Some(before.saturating_sub(after) as i64),
        })
    }

    /// `docker rmi`: untags or deletes one image, then removes the unpacked layers no
    /// image or container needs any more.
    pub fn remove_image(
        &self,
        what: &str,
        force: bool,
    ) -> Result<Vec<m::ImageDeleteResponseItem>, EngineError> {
        let used = self.images_in_use()?;
        let lines = self
            .images()?
            .remove(what, &|img: &Image| used.contains(&img.id), force)?;
        self.gc_layers()?;
        let items = delete_items(&lines);
        self.emit_deletions(&items);
        Ok(items)
    }

    /// The `untag`/`delete` events of an rmi or a prune.
    fn emit_deletions(&self, items: &[m::ImageDeleteResponseItem]) {
        for it in items {
            if let Some(u) = &it.untagged {
                self.emit_named("image", "untag", u, u, &[]);
            }
            if let Some(d) = &it.deleted {
                self.emit_named("image", "delete", d, d, &[]);
            }
        }
    }
}

/// The store's `Untagged: x` / `Deleted: y` lines as Docker's items.
fn delete_items(lines: &[String]) -> Vec<m::ImageDeleteResponseItem> {
    lines
        .iter()
        .filter_map(|l| {
            if let Some(t) = l.strip_prefix("Untagged: ") {
                Some(m::ImageDeleteResponseItem {
                    untagged: Some(t.to_string()),
                    deleted: None,
                })
            } else {
                l.strip_prefix("Deleted: ")
                    .map(|d| m::ImageDeleteResponseItem {
                        untagged: None,
                        deleted: Some(d.to_string()),
                    })
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_match_as_dockers_globs() {
        assert!(reference_matches("busybox", "busybox:latest"));
        assert!(reference_matches("busybox:latest", "busybox:latest"));
        assert!(!reference_matches("busybox:1", "busybox:latest"));
        assert!(reference_matches("busy*", "busybox:latest"));
        assert!(reference_matches("*:lat*", "busybox:latest"));
        assert!(
            !reference_matches("*", "library/busybox:latest"),
            "* does not cross /"
        );
        assert!(reference_matches("*/*", "library/busybox:latest"));
        assert!(reference_matches(
            "localhost:5000/app",
            "localhost:5000/app:1"
        ));
    }

    #[test]
    fn delete_lines_become_items() {
        let items = delete_items(&["Untagged: a:1".into(), "Deleted: sha256:ab".into()]);
        let v = serde_json::to_value(&items).unwrap();
        assert_eq!(
            v,
            serde_json::json!([{"Untagged": "a:1"}, {"Deleted": "sha256:ab"}])
        );
    }
}
