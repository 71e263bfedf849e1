//! `cargo xtask <task>`: project automation that needs more than one cargo command.
//!
//! * `build [--release]` — builds the CLI and every first-party plugin and stages a
//!   ready-to-run tree in `target/stage/{debug,release}`: `bin/berth`, `bin/berth-runtime`,
//!   `lib/berth/plugins/*.so`, `etc/berth/berth.toml`. The staged binary finds its plugins
//!   next to itself, so it works without extra flags.
//! * `test` — builds and stages (debug), then runs every test of the workspace with
//!   `BERTH_STAGE` pointing at the staged tree, then (unless a filter was passed after
//!   `--`) the tests that need a pure cgroup v2 kernel, in a VM (`vm.rs`).
//! * `bench` — whole-command timings side by side with peers (see `bench.rs`).

mod bench;
mod fuzz;
mod images;
mod stage;
mod vm;

use std::process::Command;

use anyhow::{bail, Context, Result};

fn usage() -> &'static str {
    "usage: cargo xtask <build [--release] | test [-- <cargo test args>] | bench [--save] [-n RUNS] | images [--root DIR] [NAME...] | fuzz [--time SECS (default 60)] [TARGET...]>"
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(task) = args.first() else {
        bail!("{}", usage());
    };
    let rest = &args[1..];
    match task.as_str() {
        "build" => {
            let release = rest.iter().any(|a| a == "--release");
            let dir = stage::build_and_stage(release)?;
            println!("staged: {}", dir.display());
            println!("try:    {}/bin/berth info", dir.display());
            Ok(())
        }
        "test" => {
            let dir = stage::build_and_stage_with(stage::Build::AllTargets)?;
            let passthrough: Vec<&String> =
                rest.iter().skip_while(|a| *a != "--").skip(1).collect();
            let mut cmd = Command::new(stage::cargo());
            cmd.current_dir(stage::workspace_root()?)
                .args(["test", "--workspace"])
                .args(&passthrough)
                .env("BERTH_STAGE", &dir);
            println!("$ BERTH_STAGE={} cargo test --workspace", dir.display());
            let status = cmd.status().context("running cargo test")?;
            if !status.success() {
                bail!("tests failed");
            }
            if passthrough.is_empty() {
                vm::cgroup2(&stage::workspace_root()?)?;
            }
            Ok(())
        }
        "bench" => {
            let save = rest.iter().any(|a| a == "--save");
            let n = rest
                .iter()
                .position(|a| a == "-n")
                .and_then(|i| rest.get(i + 1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(11);
            let dir = stage::build_and_stage(true)?;
            bench::run(&dir.join("bin/berth"), &stage::workspace_root()?, save, n).map(|_| ())
        }
        "fuzz" => fuzz::run(fuzz::FuzzArgs::parse(rest)?),
        "images" => {
            let dir = stage::build_and_stage(true)?;
            let mut root = None;
            let mut only = Vec::new();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                if a == "--root" {
                    root = it.next().map(std::path::PathBuf::from);
                } else {
                    only.push(a.clone());
                }
            }
            let cache = stage::target_dir(&stage::workspace_root()?).join("base-images");
            images::ensure(&dir.join("bin/berth"), root.as_deref(), &cache, &only)
        }
        other => bail!("unknown task {other:?}\n{}", usage()),
    }
}
