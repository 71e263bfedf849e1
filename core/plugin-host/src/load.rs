//! Loading one plugin file, with a distinct error for each way it can fail.

use std::path::{Path, PathBuf};

use abi_stable::{
    abi_stability::abi_checking::check_layout_compatibility,
    library::{lib_header_from_raw_library, LibHeader, LibraryError, RawLibrary},
    sabi_types::VersionNumber,
    type_layout::TLFieldOrFunction,
    StableAbi,
};
use berth_abi::{
    ffi::PluginModRef, module::PLUGIN_TAG_SYMBOL, PluginKind, PluginTag, ABI_VERSION,
    PLUGIN_TAG_MAGIC,
};

use crate::{LoadedPlugin, Module, PluginEntry};

/// Why a plugin file could not be loaded. Every variant names the file.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: not a loadable library: {reason}")]
    NotALibrary { path: PathBuf, reason: String },
    #[error("{path}: not a berth plugin (no BERTH_PLUGIN_TAG symbol)")]
    NotAPlugin { path: PathBuf },
    #[error(
        "{path}: built for ABI version {found}, but this berth speaks ABI version {expected}; rebuild the plugin against berth-plugin-sdk 0.{expected}"
    )]
    AbiMismatch {
        path: PathBuf,
        expected: u32,
        found: u32,
        /// abi_stable's mismatch summary, one line per difference (may be empty); shown
        /// by [`LoadError::full_report`].
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
            LoadError::AbiMismatch { summary, .. } if !summary.is_empty() => {
                format!("{self}\n  layout differences:\n  {summary}")
            }
            other => other.to_string(),
        }
    }
}

/// Opens the library (abi_stable's loader, so one libloading) and reads the tag.
/// Returns the library with `Ok(None)` for a library without a tag.
fn open_and_read_tag(path: &Path) -> Result<(RawLibrary, Option<PluginTag>), LoadError> {
    let lib = RawLibrary::load_at(path).map_err(|e| LoadError::NotALibrary {
        path: path.to_path_buf(),
        reason: match &e {
            LibraryError::OpenError { err, .. } => err.to_string(),
            other => other.to_string(),
        },
    })?;
    // SAFETY: `BERTH_PLUGIN_TAG` is a `#[repr(C)] static PluginTag` whose layout never
    // changes; we copy it out while the library is open. (Opening a library runs its
    // initialisers: loading a plugin means trusting the files in the configured plugin
    // directories, as docs/plugins.md says.)
    let tag = unsafe {
        match lib.get::<*const PluginTag>(PLUGIN_TAG_SYMBOL) {
            Ok(sym) => Some(std::ptr::read(*sym)),
            Err(_) => None,
        }
    };
    Ok((lib, tag))
}

/// The root module header of an open library; the library stays mapped for good
/// (abi_stable never unloads, and the header's references point into it).
fn header_of(lib: RawLibrary) -> Result<&'static LibHeader, LibraryError> {
    // SAFETY: the library is leaked right after, so the `'static` header never dangles.
    let header = unsafe { lib_header_from_raw_library(&lib) };
    std::mem::forget(lib);
    header
}

/// Short, one-line-per-difference summary of abi_stable's layout comparison.
fn layout_summary(header: Result<&'static LibHeader, LibraryError>) -> (String, String) {
    let header = match header {
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
                // Where the difference is: the chain of fields from the root module, and
                // the type the last one has (e.g. `Usage`), which is what a plugin author
                // must look at.
                let mut ty = errs.interface.name();
                let trail: Vec<String> = err
                    .stack_trace
                    .iter()
                    .map(|ef| match &ef.expected {
                        TLFieldOrFunction::Field(f) => {
                            ty = f.layout().name();
                            f.name().to_string()
                        }
                        TLFieldOrFunction::Function(func) => format!("{}()", func.name),
                    })
                    .collect();
                for e in err.errs.iter() {
                    let what = format!("{e:?}")
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    lines.push(if trail.is_empty() {
                        format!("type `{ty}`: {what}")
                    } else {
                        format!("type `{ty}` (at {}): {what}", trail.join(" > "))
                    });
                }
            }
            lines.dedup();
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

/// `MAJOR.MINOR` of the ABI a library was built for, from its version strings.
fn abi_of(header: &LibHeader) -> Option<String> {
    VersionNumber::new(header.version_strings())
        .ok()
        .map(|v| format!("{}.{}", v.major, v.minor))
}

/// Loads and checks one file.
pub fn load_plugin(path: &Path) -> PluginEntry {
    let entry = |kind, result| PluginEntry {
        path: path.to_path_buf(),
        kind,
        abi: None,
        result,
    };
    let (lib, tag) = match open_and_read_tag(path) {
        Ok((lib, Some(t))) if t.magic == PLUGIN_TAG_MAGIC => (lib, t),
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
    let header = header_of(lib);
    let abi = header.as_ref().ok().and_then(|h| abi_of(h));
    let entry = |kind, result| PluginEntry {
        path: path.to_path_buf(),
        kind,
        abi: abi.clone(),
        result,
    };
    if tag.abi_version != ABI_VERSION {
        let (summary, _) = layout_summary(header);
        return entry(
            kind,
            Err(LoadError::AbiMismatch {
                path: path.to_path_buf(),
                expected: ABI_VERSION,
                found: tag.abi_version,
                summary,
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
    let header = match header {
        Ok(h) => h,
        Err(e) => {
            return entry(
                Some(kind),
                Err(LoadError::Layout {
                    path: path.to_path_buf(),
                    summary: format!("\n  {}", library_error_summary(&e)),
                    full: e.to_string(),
                }),
            )
        }
    };
    // A 1.0 plugin is loaded through the 1.0 types (abi_stable refuses vtables shorter
    // than the host's); every other minor through the current ones.
    let module = if abi.as_deref() == Some("1.0") {
        header
            .init_root_module::<berth_abi::ffi::compat::PluginModRef>()
            .map(Module::V1_0)
    } else {
        header
            .init_root_module::<PluginModRef>()
            .map(Module::Current)
    };
    let module = match module {
        Ok(m) => m,
        Err(e) => {
            let (summary, full) = layout_summary(Ok(header));
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
    let (mkind, name, version, description, abi_version) = match module {
        Module::Current(m) => (
            m.kind(),
            m.name(),
            m.version(),
            m.description(),
            m.abi_version(),
        ),
        Module::V1_0(m) => (
            m.kind(),
            m.name(),
            m.version(),
            m.description(),
            m.abi_version(),
        ),
    };
    tracing::debug!(path = %path.display(), name = %name, "plugin loaded");
    entry(
        Some(kind),
        Ok(LoadedPlugin {
            path: path.to_path_buf(),
            kind: mkind,
            name: name.to_string(),
            version: version.to_string(),
            description: description.to_string(),
            abi_version,
            abi: abi.clone().unwrap_or_else(|| abi_version.to_string()),
            module,
        }),
    )
}
