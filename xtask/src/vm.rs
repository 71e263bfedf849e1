//! The tests that need a kernel this host cannot give: the cgroup2 plugin's limit tests need
//! a pure cgroup v2 hierarchy with every controller, so `plugins/cgroup2/vm-test.sh` runs
//! them in a throw-away VM (user-mode Linux when installed, else qemu TCG).

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Runs the cgroup2 VM tests. A host with neither `linux.uml` nor `qemu-system-x86_64`
/// skips them with the reason, except under CI, where that is a failure.
pub fn cgroup2(root: &Path) -> Result<()> {
    let have = |bin: &str| berth_testkit::find_command(bin).is_some();
    if !have("linux.uml") && !have("qemu-system-x86_64") {
        let why = "the cgroup2 VM tests need user-mode Linux or qemu \
                   (apt-get install user-mode-linux, or qemu-system-x86)";
        if berth_testkit::in_ci() {
            bail!("{why}");
        }
        eprintln!("skipped: {why}");
        return Ok(());
    }
    let script = root.join("plugins/cgroup2/vm-test.sh");
    println!("$ {}", script.display());
    let status = Command::new("bash")
        .arg(&script)
        .current_dir(root)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("the cgroup2 VM tests failed ({status})");
    }
    Ok(())
}
