//! # berth-conformance — what every plugin of a kind must do
//!
//! One suite per plugin kind, run against a plugin **file** through the ABI (the library is
//! loaded by `berth-plugin-host`, exactly as berth loads it), never through a driver's Rust
//! API. `berth plugin test PATH.so` runs the suite of the file's kind and prints a table;
//! the first-party plugins and the templates are tested with it.
//!
//! * [`storage`]: snapshots isolated, layers unchanged, whiteouts in diffs, diff/apply
//!   round trip of every file type (owners, nanosecond times, xattrs, holes, links),
//!   200 stacked layers, crash-safe commit and remove (nothing left in `objects/`,
//!   `mounts/`, `tmp/`), malicious layers refused, `cleanup` sweeping half-created
//!   objects.
//! * [`network`]: networks created, listed, refused twice and removed; attach into a
//!   fresh network namespace, attach again returns the same, check, detach idempotent,
//!   removal refused while attached.
//! * [`isolator`]: groups created once, processes placed and listed, freeze/thaw and kill
//!   where supported, destroy idempotent, every limit outside `capabilities().supported`
//!   refused as `Unsupported` (never silently ignored), `set_devices` likewise.
//!
//! Every object a case creates is named `bt-conf-…` (network namespaces, networks, groups)
//! or lives in a temporary directory, and is removed also when the case fails. Cases need
//! root (mounts, namespaces, cgroups).

use std::{
    panic::{catch_unwind, AssertUnwindSafe},
    path::Path,
};

use berth_abi::{PluginContext, PluginKind};
use berth_plugin_host::{load_plugin, LoadedPlugin};

pub mod isolator;
pub mod network;
pub mod storage;

/// The result of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub case: &'static str,
    /// `Err` holds why the case failed (the failed check's message).
    pub result: Result<(), String>,
}

/// The results of a plugin's suite.
#[derive(Debug, Clone)]
pub struct Report {
    pub path: std::path::PathBuf,
    pub kind: PluginKind,
    pub name: String,
    pub version: String,
    pub abi: String,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    pub fn passed(&self) -> usize {
        self.outcomes.iter().filter(|o| o.result.is_ok()).count()
    }
    pub fn all_passed(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }
    /// A pass/fail table, one case per line, failures with their reason.
    pub fn table(&self) -> String {
        let width = self
            .outcomes
            .iter()
            .map(|o| o.case.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut s = format!(
            "{} plugin {:?} {} (ABI {}) — {}\n{:width$}  RESULT\n",
            self.kind.as_str(),
            self.name,
            self.version,
            self.abi,
            self.path.display(),
            "CASE",
        );
        for o in &self.outcomes {
            match &o.result {
                Ok(()) => s.push_str(&format!("{:width$}  pass\n", o.case)),
                Err(why) => {
                    let why = why.lines().collect::<Vec<_>>().join(" / ");
                    s.push_str(&format!("{:width$}  FAIL  {why}\n", o.case));
                }
            }
        }
        s.push_str(&format!(
            "{} of {} cases passed\n",
            self.passed(),
            self.outcomes.len()
        ));
        s
    }
}

/// A case: a name and a function that panics (an `assert!`) when the plugin misbehaves.
pub struct Case {
    pub name: &'static str,
    pub run: fn(&Suite),
}

/// What a case gets: the loaded plugin and the configuration for its context.
pub struct Suite {
    pub plugin: LoadedPlugin,
    /// The plugin's own configuration (`ctx.config_json`), `{}` by default.
    pub config_json: String,
}

impl Suite {
    /// A context whose directories live in `dir`.
    pub fn context(&self, dir: &Path) -> PluginContext {
        PluginContext {
            state_dir: dir.join("state").display().to_string(),
            run_dir: dir.join("run").display().to_string(),
            config_json: self.config_json.clone(),
            root_dir: dir.display().to_string(),
        }
    }
}

/// A temporary directory for one case, named `bt-conf-…`.
pub fn temp_dir(case: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("bt-conf-{case}-"))
        .tempdir()
        .unwrap_or_else(|e| panic!("creating a temporary directory: {e}"))
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "the case panicked".to_string()
    }
}

/// Runs `cases` one after the other; a panicking case is a failure with its message.
pub fn run_cases(suite: &Suite, cases: &[Case], only: Option<&str>) -> Vec<Outcome> {
    cases
        .iter()
        .filter(|c| only.is_none_or(|o| c.name.contains(o)))
        .map(|c| Outcome {
            case: c.name,
            result: catch_unwind(AssertUnwindSafe(|| (c.run)(suite))).map_err(|p| panic_text(&*p)),
        })
        .collect()
}

/// Loads the plugin at `path` and runs the suite of its kind (cases whose name contains
/// `only`, when given). Fails, with the loader's one-line reason, when the file does not
/// load.
pub fn run(path: &Path, config_json: &str, only: Option<&str>) -> Result<Report, String> {
    let entry = load_plugin(path);
    let plugin = entry.result.map_err(|e| e.to_string())?;
    let suite = Suite {
        plugin,
        config_json: if config_json.trim().is_empty() {
            "{}".into()
        } else {
            config_json.to_string()
        },
    };
    let cases = match suite.plugin.kind {
        PluginKind::Storage => storage::cases(),
        PluginKind::Network => network::cases(),
        PluginKind::Isolator => isolator::cases(),
    };
    let outcomes = run_cases(&suite, &cases, only);
    let p = &suite.plugin;
    Ok(Report {
        path: path.to_path_buf(),
        kind: p.kind,
        name: p.name.clone(),
        version: p.version.clone(),
        abi: p.abi.clone(),
        outcomes,
    })
}
