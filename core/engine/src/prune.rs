//! `container prune` and `system prune`: what was deleted and the space reclaimed, typed.
//! (`image prune`, `network prune` and `volume prune` live with their objects.)

use serde::{Deserialize, Serialize};

use crate::{filters::Filters, models as m, Engine, EngineError};

/// What `system prune` did, part by part.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SystemPruneReport {
    #[serde(rename = "Containers")]
    pub containers: m::ContainerPruneResponse,
    #[serde(rename = "Images")]
    pub images: m::ImagePruneResponse,
    /// Unpacked layers removed; `None` when a running build kept them.
    #[serde(rename = "Layers")]
    pub layers: Option<usize>,
    #[serde(rename = "BuildCacheEntries")]
    pub build_cache: usize,
    #[serde(rename = "Networks")]
    pub networks: m::NetworkPruneResponse,
    /// Only with `volumes`.
    #[serde(rename = "Volumes")]
    pub volumes: Option<m::VolumePruneResponse>,
}

/// What `system prune` removes besides stopped containers, dangling images, unused
/// networks and the build cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemPruneOptions {
    /// Every image no container uses, not only dangling ones.
    pub all: bool,
    /// Unused volumes too (anonymous ones; every unused one with `all`).
    pub volumes: bool,
}

impl Engine {
    /// `docker container prune`: every container that is not running (`label`, `until`
    /// filters as Docker's). Their volumes stay (as Docker's).
    pub fn prune_containers(&self, f: &Filters) -> Result<m::ContainerPruneResponse, EngineError> {
        self.prune_containers_with(f, false)
    }

    fn prune_containers_with(
        &self,
        f: &Filters,
        remove_volumes: bool,
    ) -> Result<m::ContainerPruneResponse, EngineError> {
        f.validate(&["label", "until"])?;
        let until = match f.get("until").first() {
            Some(u) => Some(
                crate::parse::parse_log_time("until", u, chrono::Utc::now()).map_err(|e| {
                    EngineError::Invalid(format!("invalid filter 'until={u}': {e}"))
                })?,
            ),
            None => None,
        };
        let storage = self.plugins.storage().ok();
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for c in self.db()?.list()? {
            if c.state.is_live() || !f.labels_match(|k| c.config.labels.get(k).map(String::as_str))
            {
                continue;
            }
            if let Some(u) = &until {
                let created = chrono::DateTime::parse_from_rfc3339(&c.created)
                    .map(|t| t.with_timezone(&chrono::Utc));
                if created.is_ok_and(|t| t >= *u) {
                    continue;
                }
            }
            let size = storage
                .as_ref()
                .and_then(|s| s.usage(&c.id).ok())
                .map_or(0, |u| u.bytes);
            self.remove_container(&c.id, false, remove_volumes)?;
            reclaimed += size;
            deleted.push(c.id);
        }
        Ok(m::ContainerPruneResponse {
            containers_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }

    /// `docker system prune`: stopped containers, dangling (or, with `all`, unused)
    /// images and the unpacked layers they leave, the build cache, unused networks (never
    /// the predefined ones), and with `volumes` unused volumes.
    pub fn system_prune(&self, o: SystemPruneOptions) -> Result<SystemPruneReport, EngineError> {
        let containers = self.prune_containers_with(&Filters::new(), true)?;
        let used = self.images_in_use()?;
        let blobs = self.config.root.join("images").join("blobs");
        let before = crate::df::dir_size(&blobs);
        let lines = self
            .images()?
            .prune(o.all, &|i: &berth_image::Image| used.contains(&i.id))?;
        let after = crate::df::dir_size(&blobs);
        let images = m::ImagePruneResponse {
            images_deleted: Some(
                lines
                    .iter()
                    .filter_map(|l| {
                        l.strip_prefix("Deleted: ")
                            .map(|d| m::ImageDeleteResponseItem {
                                deleted: Some(d.into()),
                                untagged: None,
                            })
                    })
                    .collect(),
            ),
            space_reclaimed: Some(before.saturating_sub(after) as i64),
        };
        let layers = self.gc_layers()?;
        let build_cache = self.db()?.cache_clear()?;
        let networks = match self.plugins.network() {
            Ok(_) => self.prune_networks(&Filters::new())?,
            Err(_) => m::NetworkPruneResponse {
                networks_deleted: Some(Vec::new()),
            },
        };
        let volumes = if o.volumes {
            Some(self.prune_volumes(o.all, &Filters::new())?)
        } else {
            None
        };
        Ok(SystemPruneReport {
            containers,
            images,
            layers,
            build_cache,
            networks,
            volumes,
        })
    }
}
