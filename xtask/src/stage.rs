//! Building and staging the ready-to-run tree.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

/// First-party plugins staged by default (package name → library file stem).
pub const PLUGINS: &[&str] = &[
    "berth-plugin-overlayfs",
    "berth-plugin-vfs",
    "berth-plugin-bridge",
    "berth-plugin-cgroup1",
    "berth-plugin-cgroup2",
];

pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The workspace this command runs in: the nearest ancestor of the current directory whose
/// Cargo.toml has a `[workspace]` (so a shared target dir or a moved checkout can't point
/// us at another copy), else the one xtask was built from.
pub fn workspace_root() -> Result<PathBuf> {
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let manifest = dir.join("Cargo.toml");
            if std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]")) {
                return Ok(dir.to_path_buf());
            }
        }
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    dir.parent()
        .map(Path::to_path_buf)
        .context("xtask has no parent directory")
}

pub fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

const DEFAULT_CONFIG: &str = r#"# berth configuration (staged default). Precedence: built-in defaults < this file
# < BERTH_* environment < command-line flags. See docs/architecture.md.
root = "/var/lib/berth"

[storage]
driver = "overlayfs"       # or "vfs"

[network]
backend = "bridge"

[isolator]
driver = "auto"            # cgroup2 when the v2 hierarchy has the controllers, else cgroup1
"#;

/// What to compile before staging.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Only the CLI, the DNS helper and the plugins (release or debug).
    Stage { release: bool },
    /// Every target of the workspace (debug), tests included: one feature resolution shared
    /// with the `cargo test --workspace` that follows, so no crate is compiled twice (a
    /// `-p` subset resolves features differently and doubled the build's time and disk).
    AllTargets,
}

/// Builds the CLI and the plugins, and stages them. Returns the stage directory.
pub fn build_and_stage(release: bool) -> Result<PathBuf> {
    build_and_stage_with(Build::Stage { release })
}

pub fn build_and_stage_with(build: Build) -> Result<PathBuf> {
    let root = workspace_root()?;
    let release = build == Build::Stage { release: true };
    let mut args: Vec<String> = vec!["build".into()];
    match build {
        Build::AllTargets => args.extend(["--workspace".into(), "--all-targets".into()]),
        Build::Stage { .. } => {
            for p in ["berth-cli", "berth-bridge-dns", "berth-monitor"]
                .iter()
                .chain(PLUGINS)
            {
                args.extend(["-p".into(), p.to_string()]);
            }
        }
    }
    if release {
        args.push("--release".into());
    }
    println!("$ cargo {}", args.join(" "));
    let status = Command::new(cargo())
        .current_dir(&root)
        .args(&args)
        .status()
        .context("running cargo build")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let profile = if release { "release" } else { "debug" };
    let out = target_dir(&root).join(profile);
    let stage = target_dir(&root).join("stage").join(profile);
    let bin = stage.join("bin");
    let plugins = stage.join("lib/berth/plugins");
    let etc = stage.join("etc/berth");
    // Start from an empty plugin dir so removed plugins don't linger.
    if plugins.exists() {
        std::fs::remove_dir_all(&plugins)
            .with_context(|| format!("cleaning {}", plugins.display()))?;
    }
    for d in [&bin, &plugins, &etc] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    copy(&out.join("berth"), &bin.join("berth"))?;
    // The per-container monitor every detached container runs under.
    copy(
        &out.join("berth-monitor"),
        &stage.join("lib/berth/berth-monitor"),
    )?;
    // The OCI runtime with runc's command line (same package as `berth`).
    copy(&out.join("berth-runtime"), &bin.join("berth-runtime"))?;
    // Helper programs of plugins (libexec style): the bridge's DNS responder.
    copy(&out.join("berth-dns"), &stage.join("lib/berth/berth-dns"))?;
    for p in PLUGINS {
        let file = format!("lib{}.so", p.replace('-', "_"));
        copy(&out.join(&file), &plugins.join(&file))?;
    }
    std::fs::write(etc.join("berth.toml"), DEFAULT_CONFIG)
        .with_context(|| format!("writing {}", etc.display()))?;
    Ok(stage)
}

/// Copies via a temporary name so a running `berth` keeps its old (mapped) file.
fn copy(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("tmp-stage");
    std::fs::copy(from, &tmp)
        .with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    std::fs::rename(&tmp, to)
        .with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))?;
    Ok(())
}
