//! Named volumes as the Docker Engine API shows them, and their rules: create (a name
//! Docker accepts; creating an existing one returns it), remove (not while a container
//! uses it), prune (anonymous ones, every unused one with `all`).
//!
//! A volume is `<root>/volumes/<name>/_data` plus its row in the database; its labels are
//! kept beside the data in `<root>/volumes/<name>/meta.json`.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::{
    container::new_id, filters::Filters, models as m, parse::validate_volume_name, Engine,
    EngineError,
};

/// The filters `volume ls` knows (Docker's).
pub const VOLUME_FILTERS: &[&str] = &["name", "label", "driver", "dangling"];

/// What `volume create` / `POST /volumes/create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeCreateOptions {
    /// None: a new anonymous volume with a random name.
    pub name: Option<String>,
    /// `local` (or empty); the only driver berth has.
    pub driver: String,
    /// Driver options: the local driver here takes none.
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct VolMeta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

impl Engine {
    fn volmeta_path(&self, name: &str) -> std::path::PathBuf {
        self.config
            .root
            .join("volumes")
            .join(name)
            .join("meta.json")
    }

    fn volume_model(&self, name: &str, created: &str) -> m::Volume {
        let meta: VolMeta = std::fs::read(self.volmeta_path(name))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        m::Volume {
            name: name.to_string(),
            driver: "local".into(),
            mountpoint: self.volume_dir(name).display().to_string(),
            created_at: Some(created.to_string()),
            status: None,
            labels: meta.labels.into_iter().collect(),
            scope: Some(m::VolumeScopeEnum::LOCAL),
            options: HashMap::new(),
            ..Default::default()
        }
    }

    /// `docker volume create`: a new volume, or the existing one of that name.
    pub fn create_volume(&self, o: &VolumeCreateOptions) -> Result<m::Volume, EngineError> {
        if !o.driver.is_empty() && o.driver != "local" {
            return Err(EngineError::Invalid(format!(
                "volume driver {:?} is not supported: berth has the local driver only",
                o.driver
            )));
        }
        if let Some(k) = o.driver_opts.keys().next() {
            return Err(EngineError::Invalid(format!(
                "volume driver option {k:?} is not supported by berth's local driver"
            )));
        }
        let anonymous = o.name.is_none();
        let name = o.name.clone().unwrap_or_else(new_id);
        validate_volume_name(&name).map_err(EngineError::Invalid)?;
        if let Some(v) = self.db()?.volumes()?.into_iter().find(|v| v.0 == name) {
            return Ok(self.volume_model(&v.0, &v.1));
        }
        let dir = self.volume_dir(&name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        if !o.labels.is_empty() {
            let path = self.volmeta_path(&name);
            let meta = VolMeta {
                labels: o.labels.clone(),
            };
            let tmp = path.with_extension("tmp");
            let r = serde_json::to_vec(&meta)
                .map_err(std::io::Error::other)
                .and_then(|b| std::fs::write(&tmp, b))
                .and_then(|()| std::fs::rename(&tmp, &path));
            if let Err(e) = r {
                let _ = std::fs::remove_dir_all(self.config.root.join("volumes").join(&name));
                return Err(EngineError::io(format!("writing {}", path.display()), e));
            }
        }
        let created = chrono::Utc::now().to_rfc3339();
        if self.db()?.volume_insert(&name, &created, anonymous)? {
            self.emit_named(
                "volume",
                "create",
                &name,
                &name,
                &[("driver", "local".into())],
            );
        }
        self.inspect_volume(&name)
    }

    /// `docker volume inspect NAME`.
    pub fn inspect_volume(&self, name: &str) -> Result<m::Volume, EngineError> {
        match self.db()?.volumes()?.into_iter().find(|v| v.0 == name) {
            Some((n, created, _)) => Ok(self.volume_model(&n, &created)),
            None => Err(EngineError::NotFound(format!("no such volume: {name}"))),
        }
    }

    /// `docker volume ls` / `GET /volumes`, by name.
    pub fn list_volumes(&self, f: &Filters) -> Result<Vec<m::Volume>, EngineError> {
        f.validate(VOLUME_FILTERS)?;
        let dangling = f.bool_value("dangling")?;
        let records = self.db()?.list()?;
        let in_use = |n: &str| {
            records.iter().any(|c| {
                c.config
                    .mounts
                    .iter()
                    .any(|m| m.kind == "volume" && m.source == n)
            })
        };
        let mut out = Vec::new();
        for (name, created, _) in self.db()?.volumes()? {
            let v = self.volume_model(&name, &created);
            let keep = f.any_or_unset("name", |x| name.contains(x))
                && f.any_or_unset("driver", |x| x == "local")
                && f.labels_match(|k| v.labels.get(k).map(String::as_str))
                && dangling.is_none_or(|d| d != in_use(&name));
            if keep {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// `docker volume rm [-f]`: `force` makes a missing volume no error (as Docker's).
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<(), EngineError> {
        if !self.db()?.volumes()?.iter().any(|v| v.0 == name) {
            if force {
                return Ok(());
            }
            return Err(EngineError::NotFound(format!("no such volume: {name}")));
        }
        if self.volume_in_use(name)? {
            return Err(EngineError::Conflict(format!(
                "volume {name} is in use by a container: remove the container first"
            )));
        }
        self.remove_volume_data(name)
    }

    /// `docker volume prune [-a]`: unused anonymous volumes, every unused one with `all`.
    pub fn prune_volumes(
        &self,
        all: bool,
        f: &Filters,
    ) -> Result<m::VolumePruneResponse, EngineError> {
        f.validate(&["label", "all"])?;
        let all = all || f.bool_value("all")?.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for (name, created, anonymous) in self.db()?.volumes()? {
            if !(anonymous || all) || self.volume_in_use(&name)? {
                continue;
            }
            let v = self.volume_model(&name, &created);
            if !f.labels_match(|k| v.labels.get(k).map(String::as_str)) {
                continue;
            }
            let size = crate::df::dir_size(&self.config.root.join("volumes").join(&name));
            self.remove_volume_data(&name)?;
            reclaimed += size;
            deleted.push(name);
        }
        Ok(m::VolumePruneResponse {
            volumes_deleted: Some(deleted),
            space_reclaimed: Some(reclaimed as i64),
        })
    }
}
