//! OCI hooks: each runs with its `path`, `args` (args[0] is argv[0]), `env` only, the
//! container's state JSON on stdin, and its `timeout` (seconds) if given.

use std::{
    io::Write,
    os::unix::process::CommandExt,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Hook;

/// Runs `hooks` in order; the first failure stops and is returned (naming `phase`).
pub fn run(phase: &str, hooks: &[Hook], state: &serde_json::Value) -> Result<()> {
    let input = state.to_string();
    for (i, h) in hooks.iter().enumerate() {
        let what = format!("{phase} hook #{i} ({})", h.path().display());
        let args = h.args().clone().unwrap_or_default();
        let mut cmd = Command::new(h.path());
        if let Some(a0) = args.first() {
            cmd.arg0(a0);
        }
        cmd.args(args.iter().skip(1))
            .env_clear()
            .envs(h.env().iter().flatten().filter_map(|e| e.split_once('=')))
            .stdin(Stdio::piped())
            .stdout(Stdio::null());
        let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its stdin closes it early: not an error.
            let _ = stdin.write_all(input.as_bytes());
        }
        let deadline = h
            .timeout()
            .filter(|t| *t > 0)
            .map(|t| Instant::now() + Duration::from_secs(t as u64));
        let status = loop {
            if let Some(st) = child
                .try_wait()
                .with_context(|| format!("waiting for {what}"))?
            {
                break st;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let _ = child.kill();
                let _ = child.wait();
                bail!("{what} timed out after {}s", h.timeout().unwrap_or(0));
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        if !status.success() {
            bail!("{what} failed: {status}");
        }
    }
    Ok(())
}
