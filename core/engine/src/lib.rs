//! # berth-engine
//!
//! Everything behind the `berth` command line: configuration, the active plugins, the
//! image store, containers (records, lifecycle, supervision) and builds. The CLI crate only
//! parses flags and prints.

pub mod config;
pub mod container;
pub mod db;
pub mod host;
pub mod logs;
pub mod parse;
pub mod plugins;

use std::path::PathBuf;

use berth_abi::PluginError;
use berth_plugin_host::HostError;

pub use config::{Config, Overrides};
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
}

impl Engine {
    pub fn new(config: Config) -> Result<Engine, EngineError> {
        std::fs::create_dir_all(&config.root)
            .map_err(|e| EngineError::io(format!("creating root {}", config.root.display()), e))?;
        Ok(Engine {
            plugins: Plugins::new(config.clone()),
            config,
        })
    }

    pub fn root(&self) -> &PathBuf {
        &self.config.root
    }
}
