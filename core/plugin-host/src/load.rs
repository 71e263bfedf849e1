//! Loading one plugin file, with a distinct error for each way it can fail.

use std::path::{Path, PathBuf};

use abi_stable::{
    abi_stability::abi_checking::check_layout_compatibility,
    library::{lib_header_from_path, LibraryError},
    StableAbi,
};
use berth_abi::{
    ffi::PluginModRef, module::PLUGIN_TAG_SYMBOL, PluginKind, PluginTag, ABI_VERSION,
    PLUGIN_TAG_MAGIC,
};

use crate::{LoadedPlugin, PluginEntry};

/// Why a plugin file could not be loaded. Every variant names the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: not a loadable library: {reason}")]
    NotALibrary { path: PathBuf, reason: String },
    #[error("{path}: not a berth plugin (no BERTH_PLUGIN_TAG symbol)")]
    NotAPlugin { path: PathBuf },
    #[error(
        "{path}: built for an incompatible ABI (berth expects ABI version {expected}, the plugin has {found}); rebuild it against berth-abi {expected}{summary}"
    )]
    AbiMismatch {
        path: PathBuf,
        expected: u32,
        found: u32,
        /// abi_stable's mismatch summary, one line per difference (may be empty).
        summary: String,
    },
    #[error("{path}: the plugin's types do not match berth's ABI layout{summary}")]
    Layout {
        path: PathBuf,
        summary: String,
        /// abi_stable's full report, for `--debug`.
        full: String,
    },
    #[error("{path}: unknown plugin kind {kind}")]
    UnknownKind { path: PathBuf, kind: u32 },
}

impl LoadError {
    /// The full diagnostic (abi_stable's layout report where there is one).
    pub fn full_report(&self) -> String {
        match self {
            LoadError::Layout { full, .. } => format!("{self}\n{full}"),
            other => other.to_string(),
        }
    }
}

/// Reads the tag. Returns `Ok(None)` for a library without one.
fn read_tag(path: &Path) -> Result<Option<PluginTag>, LoadError> {
    // SAFETY: opening a library runs its initialisers; loading a plugin means trusting the
    // files in the configured plugin directories (documented in docs/plugins.md).
    let lib = unsafe { libloading::Library::new(path) }.map_err(|e| LoadError::NotALibrary {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    // SAFETY: `BERTH_PLUGIN_TAG` is a `#[repr(C)] static PluginTag` whose layout never
    // changes; we copy it out while the library is open.
    let tag = unsafe {
        match lib.get::<*const PluginTag>(PLUGIN_TAG_SYMBOL) {
            Ok(sym) => Some(std::ptr::read(*sym)),
            Err(_) => None,
        }
    };
    // Keep the library mapped: abi_stable opens the same file next (and leaks it anyway).
    std::mem::forget(lib);
    Ok(tag)
}

/// Short, one-line-per-difference summary of abi_stable's layout comparison.
fn layout_summary(path: &Path) -> (String, String) {
    let header = match lib_header_from_path(path) {
        Ok(h) => h,
        Err(e) => return (first_line(&e.to_string()), e.to_string()),
    };
    let Some(found) = header.layout() else {
        return (
            "the plugin exports no layout information".into(),
            String::new(),
        );
    };
    match check_layout_compatibility(<PluginModRef as StableAbi>::LAYOUT, found) {
        Ok(()) => (String::new(), String::new()),
        Err(errs) => {
            let mut lines = Vec::new();
            for err in errs.errors.iter() {
                let trail: Vec<String> = err
                    .stack_trace
                    .iter()
                    .map(|ef| ef.expected.to_string())
                    .map(|s| first_line(&s))
                    .collect();
                for e in err.errs.iter() {
                    lines.push(format!(
                        "{}: {}",
                        trail.join(" > "),
                        format!("{e:?}")
                            .split_whitespace()
                            .collect::<Vec<_>>()
                            .join(" ")
                    ));
                }
            }
            lines.truncate(8);
            (lines.join("\n  "), errs.to_string())
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

fn library_error_summary(e: &LibraryError) -> String {
    match e {
        LibraryError::IncompatibleVersionNumber {
            expected_version,
            actual_version,
            ..
        } => format!("interface version {actual_version}, expected {expected_version}"),
        other => first_line(&other.to_string()),
    }
}

/// Loads and checks one file.
pub fn load_plugin(path: &Path) -> PluginEntry {
    let entry = |kind, result| PluginEntry {
        path: path.to_path_buf(),
        kind,
        result,
    };
    let tag = match read_tag(path) {
        Ok(Some(t)) if t.magic == PLUGIN_TAG_MAGIC => t,
        Ok(_) => {
            return entry(
                None,
                Err(LoadError::NotAPlugin {
                    path: path.to_path_buf(),
                }),
            )
        }
        Err(e) => return entry(None, Err(e)),
    };
    let kind = PluginKind::from_u32(tag.kind);
    if tag.abi_version != ABI_VERSION {
        let (summary, _) = layout_summary(path);
        return entry(
            kind,
            Err(LoadError::AbiMismatch {
                path: path.to_path_buf(),
                expected: ABI_VERSION,
                found: tag.abi_version,
                summary: if summary.is_empty() {
                    String::new()
                } else {
                    format!("\n  layout differences:\n  {summary}")
                },
            }),
        );
    }
    let Some(kind) = kind else {
        return entry(
            None,
            Err(LoadError::UnknownKind {
                path: path.to_path_buf(),
                kind: tag.kind,
            }),
        );
    };
    let module = lib_header_from_path(path).and_then(|h| h.init_root_module::<PluginModRef>());
    let module = match module {
        Ok(m) => m,
        Err(e) => {
            let (summary, full) = layout_summary(path);
            let summary = if summary.is_empty() {
                library_error_summary(&e)
            } else {
                summary
            };
            return entry(
                Some(kind),
                Err(LoadError::Layout {
                    path: path.to_path_buf(),
                    summary: format!("\n  {summary}"),
                    full: if full.is_empty() { e.to_string() } else { full },
                }),
            );
        }
    };
    tracing::debug!(path = %path.display(), name = %module.name(), "plugin loaded");
    entry(
        Some(kind),
        Ok(LoadedPlugin {
            path: path.to_path_buf(),
            kind: module.kind(),
            name: module.name().to_string(),
            version: module.version().to_string(),
            description: module.description().to_string(),
            abi_version: module.abi_version(),
            module,
        }),
    )
}
