//! `cargo xtask images`: the local base images the example needs, made from Debian's
//! packages with mmdebstrap (no registry needed), imported into berth and cached.
//! Named for what they are: Debian bookworm with the named packages.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, Context, Result};

pub struct BaseImage {
    pub name: &'static str,
    pub packages: &'static [&'static str],
    pub changes: &'static [&'static str],
}

pub const IMAGES: &[BaseImage] = &[
    BaseImage {
        name: "debian:bookworm",
        packages: &[],
        changes: &["CMD [\"bash\"]"],
    },
    BaseImage {
        name: "nginx:bookworm",
        packages: &["nginx-light"],
        changes: &[
            "CMD [\"nginx\", \"-g\", \"daemon off;\"]",
            "EXPOSE 80",
            "STOPSIGNAL SIGQUIT",
        ],
    },
    BaseImage {
        name: "node:bookworm",
        packages: &["nodejs", "npm"],
        changes: &["CMD [\"node\"]"],
    },
];

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// Makes (or reuses) every base image. `berth` is the staged binary; `root` its `--root`
/// (None = its default). Tarballs are cached in `cache` so a new root imports in seconds.
pub fn ensure(berth: &Path, root: Option<&Path>, cache: &Path, only: &[String]) -> Result<()> {
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let berth_cmd = || {
        let mut c = Command::new(berth);
        if let Some(r) = root {
            c.arg("--root").arg(r);
        }
        c
    };
    for img in IMAGES {
        if !only.is_empty() && !only.iter().any(|o| o == img.name) {
            continue;
        }
        let t = Instant::now();
        let present = berth_cmd()
            .args(["image", "inspect", img.name])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if present {
            println!("image {:<16} present", img.name);
            continue;
        }
        let tar: PathBuf = cache.join(format!("{}.tar", img.name.replace(':', "_")));
        if !tar.exists() {
            if which("mmdebstrap").is_none() {
                bail!(
                    "mmdebstrap is needed to make {} (apt-get install mmdebstrap)",
                    img.name
                );
            }
            println!(
                "image {:<16} making with mmdebstrap (about 20-60 s)…",
                img.name
            );
            let partial = tar.with_extension("partial.tar");
            let mut cmd = Command::new("mmdebstrap");
            cmd.args(["--quiet", "--variant=minbase", "--format=tar"]);
            if !img.packages.is_empty() {
                cmd.arg(format!("--include={}", img.packages.join(",")));
            }
            cmd.args(["bookworm"]).arg(&partial);
            if let Err(e) = run(&mut cmd) {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
            std::fs::rename(&partial, &tar)?;
        }
        let mut cmd = berth_cmd();
        cmd.arg("import");
        for c in img.changes {
            cmd.args(["--change", c]);
        }
        cmd.arg(&tar).arg(img.name);
        cmd.stdout(std::process::Stdio::null());
        run(&mut cmd)?;
        println!(
            "image {:<16} imported in {:.1}s",
            img.name,
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

pub fn which(prog: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(prog))
            .find(|c| c.is_file())
    })
}
