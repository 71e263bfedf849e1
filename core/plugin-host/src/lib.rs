//! # berth-plugin-host
//!
//! Finds plugin libraries in the configured directories, checks them and hands the engine
//! ready trait objects. Loading goes in three steps, each with its own clear error:
//!
//! 1. open the file once, with abi_stable's own loader (so the process has one
//!    `libloading`; not a library → [`LoadError::NotALibrary`]);
//! 2. read the plain `BERTH_PLUGIN_TAG` symbol (missing → [`LoadError::NotAPlugin`],
//!    another ABI major → [`LoadError::AbiMismatch`], one line naming both versions; the
//!    layout differences are in [`LoadError::full_report`]);
//! 3. abi_stable's load-time layout check of the root module, done per file
//!    (`lib_header_from_path` + `init_root_module`) so several plugins of one kind load
//!    side by side.
//!
//! Libraries are never unloaded (abi_stable leaks them on purpose): changing plugins means
//! restarting berth, which is every command since berth has no daemon.
#![allow(non_local_definitions)]

mod load;

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
};

use berth_abi::{
    ffi::{compat, IsolatorImport, NetworkImport, PluginModRef, StorageImport},
    Isolator, NetworkBackend, PluginContext, PluginError, PluginKind, StorageDriver,
};

pub use load::{load_plugin, LoadError};

/// Errors the engine shows to users.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(
        "no {kind} plugin named {name:?} (searched {searched}; available {kind} plugins: {available})"
    )]
    NotFound {
        kind: &'static str,
        name: String,
        searched: String,
        available: String,
    },
    #[error("{kind} plugin {name:?} is present but cannot be loaded: {error}")]
    Unloadable {
        kind: &'static str,
        name: String,
        error: LoadError,
    },
    #[error("{kind} plugin {name:?} ({path}) failed to start: {error}")]
    Constructor {
        kind: &'static str,
        name: String,
        path: PathBuf,
        error: PluginError,
    },
}

/// A plugin library that passed every check.
#[derive(Clone)]
pub struct LoadedPlugin {
    pub path: PathBuf,
    pub kind: PluginKind,
    pub name: String,
    pub version: String,
    pub description: String,
    /// The ABI major the plugin was built for (its tag).
    pub abi_version: u32,
    /// `MAJOR.MINOR` of the ABI the plugin was built for (e.g. `1.0` for a plugin that
    /// predates `Isolator::set_devices`).
    pub abi: String,
    module: Module,
}

/// The root module, through the types of the ABI minor the plugin was built for.
#[derive(Clone, Copy)]
pub(crate) enum Module {
    Current(PluginModRef),
    /// ABI 1.0 (before `Isolator::set_devices`).
    V1_0(compat::PluginModRef),
}

impl fmt::Debug for LoadedPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedPlugin")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("version", &self.version)
            .finish()
    }
}

impl LoadedPlugin {
    fn constructor_error(&self, error: PluginError) -> HostError {
        HostError::Constructor {
            kind: self.kind.as_str(),
            name: self.name.clone(),
            path: self.path.clone(),
            error,
        }
    }

    /// Instantiates a storage driver. Its errors carry the plugin's name.
    pub fn storage(&self, ctx: PluginContext) -> Result<Arc<dyn StorageDriver>, HostError> {
        let ctor = match self.module {
            Module::Current(m) => m.new_storage(),
            Module::V1_0(m) => m.new_storage(),
        };
        let obj = ctor(ctx.into())
            .into_result()
            .map_err(|e| self.constructor_error(e.into()))?;
        Ok(Arc::new(StorageImport(obj, self.name.clone())))
    }

    pub fn network(&self, ctx: PluginContext) -> Result<Arc<dyn NetworkBackend>, HostError> {
        let ctor = match self.module {
            Module::Current(m) => m.new_network(),
            Module::V1_0(m) => m.new_network(),
        };
        let obj = ctor(ctx.into())
            .into_result()
            .map_err(|e| self.constructor_error(e.into()))?;
        Ok(Arc::new(NetworkImport(obj, self.name.clone())))
    }

    pub fn isolator(&self, ctx: PluginContext) -> Result<Arc<dyn Isolator>, HostError> {
        let ctx = ctx.into();
        let err = |e: berth_abi::ffi::wire::PluginError| self.constructor_error(e.into());
        Ok(match self.module {
            Module::Current(m) => Arc::new(IsolatorImport(
                m.new_isolator()(ctx).into_result().map_err(err)?,
                self.name.clone(),
            )),
            Module::V1_0(m) => Arc::new(compat::IsolatorImport(
                m.new_isolator()(ctx).into_result().map_err(err)?,
                self.name.clone(),
            )),
        })
    }
}

/// One file found in a plugin directory, loaded or not.
#[derive(Debug)]
pub struct PluginEntry {
    pub path: PathBuf,
    /// The file's kind and name when its tag could be read, even if loading failed later.
    pub kind: Option<PluginKind>,
    /// `MAJOR.MINOR` of the ABI the file was built for, when its header could be read
    /// (also for a plugin that failed to load).
    pub abi: Option<String>,
    pub result: Result<LoadedPlugin, LoadError>,
}

impl PluginEntry {
    /// Name for listings: the plugin's own name, else the file name.
    pub fn display_name(&self) -> String {
        match &self.result {
            Ok(p) => p.name.clone(),
            Err(_) => self
                .path
                .file_stem()
                .map(|s| s.to_string_lossy().trim_start_matches("lib").to_string())
                .unwrap_or_default(),
        }
    }
}

/// Every plugin found in a set of directories.
#[derive(Debug, Default)]
pub struct Registry {
    dirs: Vec<PathBuf>,
    entries: Vec<PluginEntry>,
}

/// Is this a file we should try to load as a plugin?
fn is_candidate(path: &Path) -> bool {
    path.is_file()
        && path
            .extension()
            .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
}

impl Registry {
    /// Scans `dirs` (missing directories are skipped) and loads every shared library in them.
    /// Never fails: a bad file becomes an entry with its error.
    pub fn discover(dirs: &[PathBuf]) -> Registry {
        let mut entries = Vec::new();
        for dir in dirs {
            let Ok(read) = std::fs::read_dir(dir) else {
                tracing::debug!(dir = %dir.display(), "plugin directory not readable, skipped");
                continue;
            };
            let mut files: Vec<PathBuf> = read
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_candidate(p))
                .collect();
            files.sort();
            for path in files {
                entries.push(load_plugin(&path));
            }
        }
        let reg = Registry {
            dirs: dirs.to_vec(),
            entries,
        };
        for (hidden, winner) in reg.shadowed() {
            tracing::warn!(
                "{} plugin {:?} in {} is shadowed by {} (the first directory wins); remove one of them",
                winner.kind.as_str(),
                winner.name,
                hidden.path.display(),
                winner.path.display()
            );
        }
        reg
    }

    /// Plugins hidden by one of the same kind and name in an earlier directory (or an
    /// earlier file of the same directory): `(hidden entry, the plugin used instead)`.
    pub fn shadowed(&self) -> Vec<(&PluginEntry, &LoadedPlugin)> {
        let mut out = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            let Ok(p) = &e.result else { continue };
            let winner = self.entries[..i]
                .iter()
                .filter_map(|w| w.result.as_ref().ok())
                .find(|w| w.kind == p.kind && w.name == p.name);
            if let Some(w) = winner {
                out.push((e, w));
            }
        }
        out
    }

    pub fn entries(&self) -> &[PluginEntry] {
        &self.entries
    }

    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Loaded plugins of one kind.
    pub fn of_kind(&self, kind: PluginKind) -> impl Iterator<Item = &LoadedPlugin> {
        self.entries
            .iter()
            .filter_map(|e| e.result.as_ref().ok())
            .filter(move |p| p.kind == kind)
    }

    /// The plugin `name` of `kind`; the first directory wins when two define one name.
    pub fn find(&self, kind: PluginKind, name: &str) -> Result<&LoadedPlugin, HostError> {
        if let Some(p) = self.of_kind(kind).find(|p| p.name == name) {
            return Ok(p);
        }
        // A file that looks like it (by tag or file name) but failed to load.
        for e in &self.entries {
            if let Err(err) = &e.result {
                let stem = e.display_name();
                let named = stem == name
                    || stem.ends_with(&format!("_{name}"))
                    || stem.ends_with(&format!("-{name}"));
                if named && e.kind.is_none_or(|k| k == kind) {
                    return Err(HostError::Unloadable {
                        kind: kind.as_str(),
                        name: name.to_string(),
                        error: err.clone(),
                    });
                }
            }
        }
        let available: Vec<&str> = self.of_kind(kind).map(|p| p.name.as_str()).collect();
        Err(HostError::NotFound {
            kind: kind.as_str(),
            name: name.to_string(),
            searched: if self.dirs.is_empty() {
                "no plugin directories".to_string()
            } else {
                self.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
            available: if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            },
        })
    }
}
