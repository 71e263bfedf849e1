//! `system df`: disk usage of images, containers, volumes, the build cache, plus what
//! Docker has no row for (unpacked layers, debris of killed builds).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{
    debris::DebrisUsage, inspect::ListContainersOptions, models as m, Engine, EngineError,
};

/// Bytes below `p` (files counted by length, symlinks not followed).
pub fn dir_size(p: &Path) -> u64 {
    let Ok(md) = std::fs::symlink_metadata(p) else {
        return 0;
    };
    if !md.is_dir() {
        return md.len();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

/// Unpacked layers of the storage driver.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayersUsage {
    #[serde(rename = "Count")]
    pub count: usize,
    #[serde(rename = "Size")]
    pub size: u64,
}

/// `GET /system/df` (Docker's shape: `LayersSize`, `Images`, `Containers`, `Volumes`,
/// `BuildCache`) and berth's extra rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskUsage {
    #[serde(flatten)]
    pub docker: m::SystemDataUsageResponse,
    #[serde(rename = "BerthUnpackedLayers")]
    pub layers: LayersUsage,
    #[serde(rename = "BerthDebris")]
    pub debris: DebrisUsage,
}

/// One row of `system df`'s summary table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRow {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(rename = "TotalCount")]
    pub total: usize,
    /// None: the notion does not apply (shown as `-`).
    #[serde(rename = "Active")]
    pub active: Option<usize>,
    #[serde(rename = "Size")]
    pub size: Option<u64>,
    #[serde(rename = "Reclaimable")]
    pub reclaimable: Option<u64>,
}

impl DiskUsage {
    /// The summary rows `system df` prints: Images, Containers, Local Volumes, Build
    /// Cache (Docker's) and berth's Layers (unpacked), Debris.
    pub fn rows(&self) -> Vec<UsageRow> {
        let d = &self.docker;
        let images = d.images.clone().unwrap_or_default();
        let containers = d.containers.clone().unwrap_or_default();
        let volumes = d.volumes.clone().unwrap_or_default();
        let cache = d.build_cache.clone().unwrap_or_default();
        let used = |i: &m::ImageSummary| i.containers > 0;
        let live = |c: &m::ContainerSummary| {
            matches!(
                c.state,
                Some(m::ContainerSummaryStateEnum::RUNNING)
                    | Some(m::ContainerSummaryStateEnum::PAUSED)
                    | Some(m::ContainerSummaryStateEnum::RESTARTING)
            )
        };
        let vol_size = |v: &m::Volume| v.usage_data.as_ref().map_or(0, |u| u.size.max(0) as u64);
        let vol_used = |v: &m::Volume| v.usage_data.as_ref().is_some_and(|u| u.ref_count > 0);
        vec![
            UsageRow {
                kind: "Images".into(),
                total: images.len(),
                active: Some(images.iter().filter(|i| used(i)).count()),
                size: Some(images.iter().map(|i| i.size.max(0) as u64).sum()),
                reclaimable: Some(
                    images
                        .iter()
                        .filter(|i| !used(i))
                        .map(|i| i.size.max(0) as u64)
                        .sum(),
                ),
            },
            UsageRow {
                kind: "Containers".into(),
                total: containers.len(),
                active: Some(containers.iter().filter(|c| live(c)).count()),
                size: Some(
                    containers
                        .iter()
                        .map(|c| c.size_rw.unwrap_or(0).max(0) as u64)
                        .sum(),
                ),
                reclaimable: Some(
                    containers
                        .iter()
                        .filter(|c| !live(c))
                        .map(|c| c.size_rw.unwrap_or(0).max(0) as u64)
                        .sum(),
                ),
            },
            UsageRow {
                kind: "Layers (unpacked)".into(),
                total: self.layers.count,
                active: None,
                size: Some(self.layers.size),
                reclaimable: None,
            },
            UsageRow {
                kind: "Local Volumes".into(),
                total: volumes.len(),
                active: Some(volumes.iter().filter(|v| vol_used(v)).count()),
                size: Some(volumes.iter().map(vol_size).sum()),
                reclaimable: Some(volumes.iter().filter(|v| !vol_used(v)).map(vol_size).sum()),
            },
            UsageRow {
                kind: "Build Cache".into(),
                total: cache.len(),
                active: Some(0),
                size: None,
                reclaimable: None,
            },
            UsageRow {
                kind: "Debris".into(),
                total: self.debris.total,
                active: Some(self.debris.active),
                size: Some(self.debris.bytes),
                reclaimable: Some(self.debris.reclaimable),
            },
        ]
    }
}

impl Engine {
    /// `docker system df` / `GET /system/df`. Reads only: no reconcile beyond the records.
    pub fn system_df(&self) -> Result<DiskUsage, EngineError> {
        let images = self.list_images(&Default::default())?;
        let containers = self.list_containers(&ListContainersOptions {
            all: true,
            size: true,
            ..Default::default()
        })?;
        let records = self.db()?.list()?;
        let volumes = self
            .list_volumes(&Default::default())?
            .into_iter()
            .map(|mut v| {
                let refs = records
                    .iter()
                    .filter(|c| {
                        c.config
                            .mounts
                            .iter()
                            .any(|mt| mt.kind == "volume" && mt.source == v.name)
                    })
                    .count();
                v.usage_data = Some(m::VolumeUsageData {
                    size: dir_size(Path::new(&v.mountpoint)) as i64,
                    ref_count: refs as i64,
                });
                v
            })
            .collect();
        let storage = self.plugins.storage()?;
        let committed: Vec<_> = storage
            .list()
            .map_err(|e| EngineError::plugin("listing unpacked layers", e))?
            .into_iter()
            .filter(|l| l.kind == berth_abi::SnapshotKind::Committed)
            .collect();
        let layers = LayersUsage {
            count: committed.len(),
            size: committed
                .iter()
                .map(|l| storage.usage(&l.key).map(|u| u.bytes).unwrap_or(0))
                .sum(),
        };
        let build_cache = self
            .db()?
            .cache_images()?
            .into_iter()
            .map(|id| m::BuildCache {
                id: Some(id),
                typ: Some(m::BuildCacheTypeEnum::REGULAR),
                in_use: Some(false),
                shared: Some(false),
                ..Default::default()
            })
            .collect();
        Ok(DiskUsage {
            docker: m::SystemDataUsageResponse {
                layers_size: Some(layers.size as i64),
                images: Some(images),
                containers: Some(containers),
                volumes: Some(volumes),
                build_cache: Some(build_cache),
            },
            layers,
            debris: self.debris_usage(),
        })
    }
}
