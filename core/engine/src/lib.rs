//! # berth-engine
//!
//! Everything behind the `berth` command line: configuration, the active plugins, the
//! image store, containers (records, lifecycle, supervision) and builds. The CLI crate only
//! parses flags and prints.
//!
//! Every frontend (the CLI, the Docker API server) calls the same `impl Engine` methods
//! with typed inputs and outputs; what they return is in the Docker Engine API's shapes,
//! the [`models`] (bollard-stubs' types, re-exported so every frontend uses the same
//! version): inspect and list of containers, images, networks and volumes with Docker's
//! [`filters`], [`stats`] and `top`, the prunes ([`prune`]), `system df` ([`df`]) and the
//! Go templates of `--format` ([`template`]).

pub mod attach;
pub mod build;
pub mod config;
pub mod container;
pub mod copy;
pub mod create;
pub mod db;
pub mod debris;
pub mod devices;
pub mod df;
pub mod events;
pub mod exec;
pub mod filters;
pub mod health;
pub mod host;
pub mod image_api;
pub mod images;
pub mod inspect;
pub mod lifecycle;
pub mod log_tail;
pub mod logs;
pub mod networks;
pub mod parse;
pub mod plugins;
pub mod prune;
pub mod registry;
pub(crate) mod rt;
pub mod stats;
pub mod supervise;
pub mod template;
pub mod volumes;
pub mod wait;

/// The Docker Engine API's types (bollard-stubs), as every frontend should use them.
pub use bollard_stubs::models;

use std::path::PathBuf;

use berth_abi::PluginError;
use berth_plugin_host::HostError;

pub use config::{Config, Overrides};
pub use filters::Filters;
pub use plugins::Plugins;

/// Errors of the engine, each phrased for the user who has to act on it.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(Box<config::ConfigError>),
    #[error(transparent)]
    Plugin(Box<HostError>),
    #[error("{context}: {source}")]
    PluginCall {
        context: String,
        #[source]
        source: PluginError,
    },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Image(Box<berth_image::ImageError>),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
}

impl From<config::ConfigError> for EngineError {
    fn from(e: config::ConfigError) -> Self {
        EngineError::Config(Box::new(e))
    }
}

impl From<berth_image::ImageError> for EngineError {
    fn from(e: berth_image::ImageError) -> Self {
        EngineError::Image(Box::new(e))
    }
}

impl From<HostError> for EngineError {
    fn from(e: HostError) -> Self {
        EngineError::Plugin(Box::new(e))
    }
}

impl EngineError {
    /// An error returned by a plugin call, with what berth was doing.
    pub fn plugin(context: impl Into<String>, source: PluginError) -> Self {
        EngineError::PluginCall {
            context: context.into(),
            source,
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        EngineError::Io {
            context: context.into(),
            source,
        }
    }
}

/// The engine for one invocation of `berth`.
pub struct Engine {
    pub config: Config,
    pub plugins: Plugins,
    image_store: std::sync::OnceLock<berth_image::ImageStore>,
    db: std::sync::OnceLock<db::Db>,
    /// Progress display for long image operations (set by the CLI on a terminal).
    pub progress: std::sync::OnceLock<std::sync::Arc<dyn berth_image::Progress>>,
}

/// An exclusive lock file under `<root>/run/locks`, released on drop.
pub struct LockGuard {
    _file: std::fs::File,
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(&config.root)
            .map_err(|e| EngineError::io(format!("creating root {}", config.root.display()), e))?;
        // Compiled seccomp programs are kept across processes: compiling the default
        // profile costs ~30 ms, far more than a whole `run --rm`.
        berth_seccomp::set_cache_dir(config.root.join("cache").join("seccomp"));
        Ok(Engine {
            plugins: Plugins::new(config.clone()),
            config,
            image_store: std::sync::OnceLock::new(),
            db: std::sync::OnceLock::new(),
            progress: std::sync::OnceLock::new(),
        })
    }

    /// The records database (opened on first use).
    pub fn db(&self) -> Result<&db::Db, EngineError> {
        if let Some(d) = self.db.get() {
            return Ok(d);
        }
        let db = db::Db::open(&self.config.root)?;
        Ok(self.db.get_or_init(|| db))
    }

    /// Takes the named cross-process lock (blocking).
    pub fn lock(&self, name: &str) -> Result<LockGuard, EngineError> {
        use fs2::FileExt;
        let dir = self.config.run_dir().join("locks");
        std::fs::create_dir_all(&dir)
            .map_err(|e| EngineError::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(format!("{name}.lock"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| EngineError::io(format!("opening lock {}", path.display()), e))?;
        file.lock_exclusive()
            .map_err(|e| EngineError::io(format!("locking {}", path.display()), e))?;
        Ok(LockGuard { _file: file })
    }

    pub fn root(&self) -> &PathBuf {
        &self.config.root
    }
}
