//! `cargo xtask fuzz [--time SECS] [TARGET...]`: runs the cargo-fuzz targets of `fuzz/`
//! (all of them by default) for SECS seconds each (default 60) on their seed corpora and
//! prints a table: target, executions, seconds, crashes with the artifact paths.
//!
//! Needs the nightly toolchain and cargo-fuzz; nothing else in xtask does, so `cargo xtask
//! test` works without them. The fuzz crate is its own workspace (the root one excludes
//! it). Each target's libFuzzer output goes to `fuzz/artifacts/<target>/fuzz.log`;
//! new crash/timeout/oom inputs land next to it (cargo-fuzz's default place).

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

/// Arguments of `cargo xtask fuzz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuzzArgs {
    /// `--time SECS`: fuzzing time per target (libFuzzer's `-max_total_time`).
    pub time: u64,
    /// Targets to run; empty = every `fuzz/fuzz_targets/*.rs`.
    pub targets: Vec<String>,
}

/// Usage line for `cargo xtask fuzz`.
pub const USAGE: &str = "fuzz [--time SECS (default 60)] [TARGET...]";

impl FuzzArgs {
    /// Parses the arguments after `fuzz`: `[--time SECS | --time=SECS] [TARGET...]`.
    pub fn parse(rest: &[String]) -> Result<FuzzArgs> {
        let mut args = FuzzArgs {
            time: 60,
            targets: Vec::new(),
        };
        let mut it = rest.iter();
        while let Some(a) = it.next() {
            let value = if a == "--time" {
                Some(
                    it.next()
                        .with_context(|| format!("--time needs a value\nusage: {USAGE}"))?
                        .as_str(),
                )
            } else {
                a.strip_prefix("--time=")
            };
            if let Some(v) = value {
                args.time =
                    v.parse().ok().filter(|t| *t > 0).with_context(|| {
                        format!("--time {v:?}: want a positive number of seconds")
                    })?;
            } else if a.starts_with('-') {
                bail!("unknown option {a:?}\nusage: cargo xtask {USAGE}");
            } else {
                args.targets.push(a.clone());
            }
        }
        Ok(args)
    }
}

/// Outcome of one target's run.
struct Outcome {
    target: String,
    runs: Option<u64>,
    secs: f64,
    crashes: Vec<PathBuf>,
    failed: Option<String>,
}

/// `cargo +nightly ...` through the rustup proxy on PATH (`$CARGO` is the stable binary
/// itself, which does not understand `+nightly`), without the toolchain pins the outer
/// cargo may have put in the environment.
fn nightly_cargo() -> Command {
    let mut c = Command::new("cargo");
    c.arg("+nightly");
    for var in ["RUSTC", "RUSTDOC", "RUSTUP_TOOLCHAIN", "RUSTC_WRAPPER"] {
        c.env_remove(var);
    }
    c
}

fn check_tools() -> Result<()> {
    let nightly = nightly_cargo()
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !nightly.is_ok_and(|s| s.success()) {
        bail!(
            "fuzzing needs the nightly toolchain (libFuzzer instrumentation): \
             install it with `rustup toolchain install nightly`"
        );
    }
    let fuzz = nightly_cargo()
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !fuzz.is_ok_and(|s| s.success()) {
        bail!("fuzzing needs cargo-fuzz: install it with `cargo install cargo-fuzz`");
    }
    Ok(())
}

/// The `fuzz/` directory: found from the current directory upwards (also when run from
/// inside `fuzz/`, which is a workspace of its own), else next to the main workspace.
fn fuzz_dir() -> Result<PathBuf> {
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            if dir.join("fuzz_targets").is_dir() && dir.join("Cargo.toml").is_file() {
                return Ok(dir.to_path_buf());
            }
            if dir.join("fuzz").join("fuzz_targets").is_dir() {
                return Ok(dir.join("fuzz"));
            }
        }
    }
    let dir = crate::stage::workspace_root()?.join("fuzz");
    if !dir.join("fuzz_targets").is_dir() {
        bail!("no fuzz/fuzz_targets below {}", dir.display());
    }
    Ok(dir)
}

fn all_targets(fuzz: &Path) -> Result<Vec<String>> {
    let dir = fuzz.join("fuzz_targets");
    let mut out = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let p = e
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if p.extension().is_some_and(|x| x == "rs") {
            if let Some(stem) = p.file_stem() {
                out.push(stem.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    Ok(out)
}

fn artifacts(dir: &Path) -> BTreeSet<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    rd.flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().is_some_and(|n| {
                let n = n.to_string_lossy();
                ["crash-", "timeout-", "oom-", "leak-", "slow-unit-"]
                    .iter()
                    .any(|pre| n.starts_with(pre))
            })
        })
        .collect()
}

/// libFuzzer's final `Done N runs in S second(s)` line.
fn parse_done(log: &str) -> Option<(u64, f64)> {
    log.lines().rev().find_map(|l| {
        let rest = l.trim().strip_prefix("Done ")?;
        let (runs, rest) = rest.split_once(" runs in ")?;
        let secs = rest.split_whitespace().next()?;
        Some((runs.parse().ok()?, secs.parse().ok()?))
    })
}

/// `stat::number_of_executed_units: N` of `-print_final_stats=1` (also printed on crashes).
fn parse_stat_runs(log: &str) -> Option<u64> {
    log.lines().rev().find_map(|l| {
        l.trim()
            .strip_prefix("stat::number_of_executed_units:")?
            .trim()
            .parse()
            .ok()
    })
}

fn run_target(fuzz: &Path, target: &str, secs: u64) -> Result<Outcome> {
    let corpus = fuzz.join("corpus").join(target);
    fs::create_dir_all(&corpus).with_context(|| format!("creating {}", corpus.display()))?;
    let art_dir = fuzz.join("artifacts").join(target);
    fs::create_dir_all(&art_dir).with_context(|| format!("creating {}", art_dir.display()))?;
    let before = artifacts(&art_dir);
    let log_path = art_dir.join("fuzz.log");
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let log_err = log
        .try_clone()
        .with_context(|| format!("opening {}", log_path.display()))?;
    println!(
        "$ cargo +nightly fuzz run {target} corpus/{target} -- -max_total_time={secs}   (log: {})",
        log_path.display()
    );
    let started = Instant::now();
    let status = nightly_cargo()
        .current_dir(fuzz)
        .args(["fuzz", "run", target])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .args(["-timeout=25", "-print_final_stats=1"])
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .status()
        .context("running cargo +nightly fuzz run")?;
    let wall = started.elapsed().as_secs_f64();
    let text = fs::read_to_string(&log_path).unwrap_or_default();
    let done = parse_done(&text);
    let crashes: Vec<PathBuf> = artifacts(&art_dir).difference(&before).cloned().collect();
    let failed = if status.success() {
        None
    } else if crashes.is_empty() {
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        Some(format!(
            "exit {status}; last lines of {}:\n{}",
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        ))
    } else {
        None
    };
    Ok(Outcome {
        target: target.to_string(),
        runs: done.map(|d| d.0).or_else(|| parse_stat_runs(&text)),
        secs: done.map(|d| d.1).unwrap_or(wall),
        crashes,
        failed,
    })
}

/// Runs the requested fuzz targets and prints the summary table; fails if any target
/// crashed or could not run.
pub fn run(args: FuzzArgs) -> Result<()> {
    check_tools()?;
    let fuzz = fuzz_dir()?;
    let known = all_targets(&fuzz)?;
    let targets = if args.targets.is_empty() {
        known.clone()
    } else {
        for t in &args.targets {
            if !known.contains(t) {
                bail!("unknown fuzz target {t:?}; targets: {}", known.join(", "));
            }
        }
        args.targets.clone()
    };
    let mut outcomes = Vec::new();
    for t in &targets {
        outcomes.push(run_target(&fuzz, t, args.time)?);
    }

    println!();
    println!("{:<18} {:>12} {:>8}  result", "target", "runs", "seconds");
    let mut bad = 0;
    for o in &outcomes {
        let runs = o.runs.map_or_else(|| "?".to_string(), |r| r.to_string());
        let result = if let Some(f) = &o.failed {
            bad += 1;
            format!("FAILED: {f}")
        } else if o.crashes.is_empty() {
            "ok, no crashes".to_string()
        } else {
            bad += 1;
            let paths: Vec<String> = o.crashes.iter().map(|p| p.display().to_string()).collect();
            format!("{} crash(es): {}", o.crashes.len(), paths.join(" "))
        };
        println!("{:<18} {:>12} {:>8.0}  {result}", o.target, runs, o.secs);
    }
    if bad > 0 {
        bail!(
            "{bad} fuzz target(s) found crashes or failed; reproduce with \
             `cd fuzz && cargo +nightly fuzz run <target> <artifact>`"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn args() {
        assert_eq!(
            FuzzArgs::parse(&[]).unwrap(),
            FuzzArgs {
                time: 60,
                targets: vec![]
            }
        );
        let a = FuzzArgs::parse(&s(&["--time", "5", "layer_apply", "cli_flags"])).unwrap();
        assert_eq!(a.time, 5);
        assert_eq!(a.targets, s(&["layer_apply", "cli_flags"]));
        assert_eq!(FuzzArgs::parse(&s(&["--time=7"])).unwrap().time, 7);
        assert!(FuzzArgs::parse(&s(&["--time"])).is_err());
        assert!(FuzzArgs::parse(&s(&["--time", "0"])).is_err());
        assert!(FuzzArgs::parse(&s(&["--jobs", "2"])).is_err());
    }

    #[test]
    fn libfuzzer_summary_lines() {
        let log = "#1024\tpulse  cov: 10\nDone 123456 runs in 61 second(s)\nstat::number_of_executed_units: 123456\n";
        assert_eq!(parse_done(log), Some((123456, 61.0)));
        assert_eq!(parse_stat_runs(log), Some(123456));
        assert_eq!(parse_done("==1== ERROR: libFuzzer: deadly signal"), None);
    }
}
