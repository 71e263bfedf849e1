//! Builds the first-party storage drivers for their conformance tests: the suite itself is
//! `berth-conformance` (what `berth plugin test` runs), applied to each driver's cdylib
//! through the ABI, never through the driver's Rust API.

use std::path::{Path, PathBuf};
use std::sync::Once;

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
