//! The engine's view of its plugins: finds the active one of each kind (from the config),
//! constructs it once with its own context, and turns failures into user errors.
//!
//! The root records which storage driver owns its snapshots ([`STORAGE_DRIVER_FILE`],
//! written when the driver is first used): a driver that was not chosen explicitly yields
//! to the recorded one, and an explicit other driver is refused, naming both — running
//! `rm` or `system prune` with another driver would leak the first driver's snapshots.

use std::{path::PathBuf, sync::Arc, sync::OnceLock};

use berth_abi::{Isolator, NetworkBackend, PluginContext, PluginKind, StorageDriver};
use berth_plugin_host::{LoadedPlugin, Registry};

use crate::{config::Config, host, EngineError};

/// The file under the root naming the storage driver that owns the root's snapshots.
pub const STORAGE_DRIVER_FILE: &str = "storage-driver";

pub struct Plugins {
    config: Config,
    registry: OnceLock<Registry>,
    storage: OnceLock<Arc<dyn StorageDriver>>,
    network: OnceLock<Arc<dyn NetworkBackend>>,
    isolator: OnceLock<Arc<dyn Isolator>>,
}

impl Plugins {
    pub fn new(config: Config) -> Self {
        Plugins {
            config,
            registry: OnceLock::new(),
            storage: OnceLock::new(),
            network: OnceLock::new(),
            isolator: OnceLock::new(),
        }
    }

    /// Every plugin file in the configured directories (loaded on first use).
    pub fn registry(&self) -> &Registry {
        self.registry
            .get_or_init(|| Registry::discover(&self.config.plugin_search_dirs()))
    }

    /// Name of the active plugin of `kind` (resolving `isolator = "auto"`).
    pub fn active_name(&self, kind: PluginKind) -> String {
        match kind {
            PluginKind::Storage => match self.recorded_storage_driver() {
                Ok(Some(recorded)) if !self.config.storage_driver_explicit => recorded,
                _ => self.config.storage.driver.clone(),
            },
            PluginKind::Network => self.config.network.driver.clone(),
            PluginKind::Isolator => {
                let d = &self.config.isolator.driver;
                if d == "auto" {
                    host::auto_isolator(&host::cgroup_setup()).to_string()
                } else {
                    d.clone()
                }
            }
        }
    }

    /// The active plugin of `kind`, loaded but not constructed.
    pub fn active(&self, kind: PluginKind) -> Result<&LoadedPlugin, EngineError> {
        let name = self.active_name(kind);
        Ok(self.registry().find(kind, &name)?)
    }

    fn context(&self, kind: PluginKind, name: &str) -> Result<PluginContext, EngineError> {
        let section = match kind {
            PluginKind::Storage => &self.config.storage,
            PluginKind::Network => &self.config.network,
            PluginKind::Isolator => &self.config.isolator,
        };
        let state_dir: PathBuf = self.config.root.join(kind.as_str()).join(name);
        let run_dir: PathBuf = self.config.run_dir().join(kind.as_str()).join(name);
        for d in [&state_dir, &run_dir] {
            std::fs::create_dir_all(d).map_err(|e| EngineError::Io {
                context: format!("creating plugin directory {}", d.display()),
                source: e,
            })?;
        }
        Ok(PluginContext {
            state_dir: state_dir.display().to_string(),
            run_dir: run_dir.display().to_string(),
            config_json: section.plugin_config(name),
            root_dir: self.config.root.display().to_string(),
        })
    }

    /// The storage driver recorded in the root, if any.
    pub fn recorded_storage_driver(&self) -> Result<Option<String>, EngineError> {
        let p = self.config.root.join(STORAGE_DRIVER_FILE);
        match std::fs::read_to_string(&p) {
            Ok(s) => Ok(Some(s.trim().to_string()).filter(|n| !n.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(EngineError::io(format!("reading {}", p.display()), e)),
        }
    }

    /// Records `name` as the root's storage driver (atomically: temp file, rename).
    fn record_storage_driver(&self, name: &str) -> Result<(), EngineError> {
        let root = &self.config.root;
        let p = root.join(STORAGE_DRIVER_FILE);
        let tmp = root.join(format!(".{STORAGE_DRIVER_FILE}.{}", std::process::id()));
        std::fs::create_dir_all(root)
            .and_then(|()| std::fs::write(&tmp, format!("{name}\n")))
            .and_then(|()| std::fs::rename(&tmp, &p))
            .map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                EngineError::io(
                    format!("recording the storage driver in {}", p.display()),
                    e,
                )
            })
    }

    pub fn storage(&self) -> Result<Arc<dyn StorageDriver>, EngineError> {
        if let Some(s) = self.storage.get() {
            return Ok(s.clone());
        }
        let name = self.active_name(PluginKind::Storage);
        let recorded = self.recorded_storage_driver()?;
        if let Some(r) = recorded.as_deref().filter(|r| *r != name) {
            return Err(EngineError::Invalid(format!(
                "the root {root} holds the snapshots of storage driver {r:?} (recorded in {file}), \
                 but storage driver {name:?} was selected; use --storage-driver {r} with this \
                 root, or another --root for {name}",
                root = self.config.root.display(),
                file = self.config.root.join(STORAGE_DRIVER_FILE).display(),
            )));
        }
        let p = self.registry().find(PluginKind::Storage, &name)?;
        let s = p.storage(self.context(PluginKind::Storage, &p.name)?)?;
        if recorded.is_none() {
            self.record_storage_driver(&p.name)?;
        }
        Ok(self.storage.get_or_init(|| s).clone())
    }

    /// What the active storage driver can do (for `berth info`). Unlike [`Self::storage`]
    /// this records nothing in the root.
    pub fn storage_capabilities(&self) -> Result<berth_abi::StorageCapabilities, EngineError> {
        let driver = match self.storage.get() {
            Some(s) => s.clone(),
            None => {
                let p = self.active(PluginKind::Storage)?;
                p.storage(self.context(PluginKind::Storage, &p.name)?)?
            }
        };
        driver
            .capabilities()
            .map_err(|e| EngineError::plugin("asking the storage driver for its capabilities", e))
    }

    pub fn network(&self) -> Result<Arc<dyn NetworkBackend>, EngineError> {
        if let Some(s) = self.network.get() {
            return Ok(s.clone());
        }
        let p = self.active(PluginKind::Network)?;
        let s = p.network(self.context(PluginKind::Network, &p.name)?)?;
        Ok(self.network.get_or_init(|| s).clone())
    }

    pub fn isolator(&self) -> Result<Arc<dyn Isolator>, EngineError> {
        if let Some(s) = self.isolator.get() {
            return Ok(s.clone());
        }
        let p = self.active(PluginKind::Isolator)?;
        let s = p.isolator(self.context(PluginKind::Isolator, &p.name)?)?;
        Ok(self.isolator.get_or_init(|| s).clone())
    }
}
