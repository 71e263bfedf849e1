//! The engine's view of its plugins: finds the active one of each kind (from the config),
//! constructs it once with its own context, and turns failures into user errors.

use std::{path::PathBuf, sync::Arc, sync::OnceLock};

use berth_abi::{Isolator, NetworkBackend, PluginContext, PluginKind, StorageDriver};
use berth_plugin_host::{LoadedPlugin, Registry};

use crate::{config::Config, host, EngineError};

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
            .get_or_init(|| Registry::discover(&self.config.plugin_dirs))
    }

    /// Name of the active plugin of `kind` (resolving `isolator = "auto"`).
    pub fn active_name(&self, kind: PluginKind) -> String {
        match kind {
            PluginKind::Storage => self.config.storage.driver.clone(),
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
            state_dir: state_dir.display().to_string().into(),
            run_dir: run_dir.display().to_string().into(),
            config_json: section.plugin_config(name).into(),
            root_dir: self.config.root.display().to_string().into(),
        })
    }

    pub fn storage(&self) -> Result<Arc<dyn StorageDriver>, EngineError> {
        if let Some(s) = self.storage.get() {
            return Ok(s.clone());
        }
        let p = self.active(PluginKind::Storage)?;
        let s = p.storage(self.context(PluginKind::Storage, &p.name)?)?;
        Ok(self.storage.get_or_init(|| s).clone())
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
