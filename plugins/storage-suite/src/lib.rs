//! Shared conformance checks for storage plugins: the same checks run against every driver
//! through the plugin ABI (the cdylib loaded by `berth-plugin-host`), never through the
//! driver's Rust API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Once;

use berth_abi::{PluginContext, StorageDriver};

/// The cargo target directory of the running test binary (`target/<profile>`).
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

static BUILD: Once = Once::new();

/// Builds both driver cdylibs once per test process and returns the path of `driver`'s.
pub fn plugin_path(driver: &str) -> PathBuf {
    BUILD.call_once(|| {
        let status = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "berth-plugin-overlayfs",
                "-p",
                "berth-plugin-vfs",
            ])
            .status()
            .expect("run cargo build for storage plugins");
        assert!(status.success(), "building storage plugins failed");
    });
    target_dir().join(format!("libberth_plugin_{driver}.so"))
}

/// A driver loaded through the ABI with its own state dir under a `bt-` temp dir.
pub struct Harness {
    pub driver: Arc<dyn StorageDriver>,
    pub state: PathBuf,
    pub dir: tempfile::TempDir,
    // Keeps the library loaded as long as the driver lives.
    _plugin: berth_plugin_host::LoadedPlugin,
}

impl Harness {
    pub fn new(driver: &str) -> Harness {
        let dir = tempfile::Builder::new()
            .prefix(&format!("bt-st-{driver}-"))
            .tempdir()
            .expect("temp dir");
        let state = dir.path().join("state");
        let plugin = berth_plugin_host::load_plugin(&plugin_path(driver))
            .result
            .unwrap_or_else(|e| panic!("load {driver}: {e}"));
        assert_eq!(plugin.name, driver);
        let ctx = PluginContext {
            state_dir: state.display().to_string().into(),
            run_dir: dir.path().join("run").display().to_string().into(),
            config_json: "{}".into(),
            root_dir: dir.path().display().to_string().into(),
        };
        let driver = plugin.storage(ctx).expect("constructor");
        Harness {
            driver,
            state,
            dir,
            _plugin: plugin,
        }
    }

    /// A fresh mount point below the test's temp dir.
    pub fn mount_point(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join(format!("mnt-{name}"));
        std::fs::create_dir_all(&p).expect("mount point");
        p
    }

    /// Mounts `key` at a new mount point; the guard unmounts on drop (also on panic).
    pub fn mount(&self, key: &str, name: &str) -> MountGuard {
        let target = self.mount_point(name);
        self.driver
            .mount(key, &target.display().to_string())
            .unwrap_or_else(|e| panic!("mount {key}: {e}"));
        MountGuard {
            driver: self.driver.clone(),
            key: key.to_string(),
            target,
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Anything a failed test left mounted below its temp dir.
        if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
            let base = self.dir.path().display().to_string();
            let mut points: Vec<String> = text
                .lines()
                .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
                .filter(|p| p.starts_with(&base))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = rustix::mount::unmount(p.as_str(), rustix::mount::UnmountFlags::DETACH);
            }
        }
    }
}

/// Unmounts through the driver when dropped, and detaches as a last resort.
pub struct MountGuard {
    driver: Arc<dyn StorageDriver>,
    key: String,
    pub target: PathBuf,
}

impl MountGuard {
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self
            .driver
            .unmount(&self.key, &self.target.display().to_string())
            .is_err()
        {
            let _ = rustix::mount::unmount(&self.target, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

/// True when something is mounted exactly at `p`.
pub fn is_mounted(p: &Path) -> bool {
    let s = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| t.lines().any(|l| l.split(' ').nth(4) == Some(s.as_str())))
        .unwrap_or(false)
}

/// A layer tar of regular files (`path`, content), directories (path ending in `/`) and
/// whiteouts (`.wh.` names, empty content).
pub fn layer(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        if path.ends_with('/') {
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(0o755);
            h.set_size(0);
        } else {
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
        }
        b.append_data(&mut h, path, *data).expect("append");
    }
    b.into_inner().expect("finish tar")
}
