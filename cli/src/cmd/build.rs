//! `berth build` and `berth builder prune`.

use std::{
    collections::BTreeMap,
    io::{IsTerminal, Read},
    path::PathBuf,
};

use anyhow::{bail, Context};

use berth_engine::build::{BuildOptions, PlainOutput, QuietOutput};
use clap::{Args, Subcommand};

use crate::GlobalOpts;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth build -t static-site examples/static-site\n  berth build -f other.Dockerfile --target builder -t app:dev .\n  berth build --no-cache --build-arg VERSION=2 -t app .\n\nRUN steps use the host's network (like `docker build --network host`)."
)]
pub struct BuildArgs {
    /// Name and optionally a tag (name:tag); repeatable
    #[arg(short, long = "tag")]
    pub tags: Vec<String>,
    /// Name of the Dockerfile (default: PATH/Dockerfile; - reads it from stdin)
    #[arg(short, long)]
    pub file: Option<PathBuf>,
    /// Set build-time variables (KEY=VALUE, or KEY to take it from the environment)
    #[arg(long = "build-arg")]
    pub build_args: Vec<String>,
    /// Set the target build stage to build
    #[arg(long)]
    pub target: Option<String>,
    /// Set metadata for the image (KEY=VALUE)
    #[arg(long = "label")]
    pub labels: Vec<String>,
    /// Do not use cache when building the image
    #[arg(long)]
    pub no_cache: bool,
    /// Always check the registry for newer versions of the base images
    #[arg(long)]
    pub pull: bool,
    /// Progress output: auto (a live view on a terminal, else plain), plain, tty
    #[arg(long, default_value = "auto", value_parser = ["auto", "plain", "tty"])]
    pub progress: String,
    /// Suppress the build output and print the image ID on success
    #[arg(short, long)]
    pub quiet: bool,
    /// Write the image ID to the file
    #[arg(long)]
    pub iidfile: Option<PathBuf>,
    /// Set the target platform (only the host's is supported)
    #[arg(long)]
    pub platform: Option<String>,
    /// Networking mode for RUN (only host is supported)
    #[arg(long)]
    pub network: Option<String>,
    /// Build context directory
    pub path: PathBuf,
}

fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!("linux/{arch}")
}

pub fn build(g: &GlobalOpts, a: BuildArgs) -> anyhow::Result<u8> {
    if let Some(p) = &a.platform {
        if *p != host_platform() {
            bail!(
                "--platform {p}: berth builds only for the host platform ({})",
                host_platform()
            );
        }
    }
    if let Some(n) = &a.network {
        if n != "host" && n != "default" {
            bail!("--network {n}: builds use the host network (default/host)");
        }
    }
    let mut build_args = BTreeMap::new();
    for b in &a.build_args {
        match b.split_once('=') {
            Some((k, v)) => {
                build_args.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(b) {
                    build_args.insert(b.clone(), v);
                }
            }
        }
    }
    let mut labels = BTreeMap::new();
    for l in &a.labels {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let (dockerfile, dockerfile_text) = match &a.file {
        Some(p) if p.as_os_str() == "-" => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the Dockerfile from stdin")?;
            (None, Some(s))
        }
        other => (other.clone(), None),
    };
    let engine = g.engine()?;
    let opts = BuildOptions {
        context: a.path.clone(),
        dockerfile,
        dockerfile_text,
        tags: a.tags.clone(),
        build_args,
        target: a.target.clone(),
        labels,
        no_cache: a.no_cache,
        pull: a.pull,
        quiet: a.quiet,
    };
    let tty = a.progress == "tty" || (a.progress == "auto" && std::io::stderr().is_terminal());
    let id = if a.quiet {
        engine.build(&opts, &mut QuietOutput)?
    } else if tty {
        let mut out = super::build_tty::TtyOutput::new();
        let r = engine.build(&opts, &mut out);
        if r.is_err() {
            out.fail();
        }
        r?
    } else {
        engine.build(&opts, &mut PlainOutput)?
    };
    if let Some(f) = &a.iidfile {
        std::fs::write(f, &id).with_context(|| format!("writing {}", f.display()))?;
    }
    if a.quiet {
        println!("{id}");
    }
    Ok(0)
}

#[derive(Subcommand, Debug)]
pub enum BuilderCmd {
    /// Remove the build cache
    Prune {
        /// Do not prompt (berth never prompts)
        #[arg(short, long)]
        force: bool,
        /// Remove all cache (same as default)
        #[arg(short, long)]
        all: bool,
    },
}

pub fn builder(g: &GlobalOpts, c: BuilderCmd) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    match c {
        BuilderCmd::Prune { .. } => {
            let n = engine.db()?.cache_clear()?;
            println!("Deleted build cache entries: {n}");
            // Killed builds' snapshots, mounts and temporary files, and layers no image uses.
            match engine.gc_layers()? {
                Some(n) => println!("Deleted layers: {n}"),
                None => println!("Deleted layers: 0 (a build is running: unpacked layers are kept until it ends)"),
            }
        }
    }
    Ok(0)
}
