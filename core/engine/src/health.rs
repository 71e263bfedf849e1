//! HEALTHCHECK, as Docker runs it: the container's supervisor (the `run` process, or the
//! monitor of a detached container) probes the container every interval by exec'ing the
//! check in it, and keeps the result in `<container dir>/health.json` — Docker's
//! `State.Health` (`Status`, `FailingStreak`, the last five probes' `Log`). `ps` shows it
//! as `Up 5 seconds (healthy)`, `inspect` in full.
//!
//! Rules (Docker's): the first probe runs one interval after the start (`--start-interval`
//! during a `--start-period`); exit 0 is healthy and resets the streak, anything else (a
//! timeout too) is a failure; `retries` consecutive failures make the container
//! unhealthy, but failures inside the start period do not count until a probe succeeded.

use std::{
    os::fd::{AsFd, AsRawFd, OwnedFd},
    path::Path,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use berth_image::HealthConfig;
use berth_runtime as runtime;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{Deserialize, Serialize};

use crate::EngineError;

const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u32 = 3;
/// Docker keeps 4 KiB of a probe's output and the last five probes.
const MAX_OUTPUT: usize = 4096;
const MAX_LOG: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    /// The suffix of `ps`'s STATUS column.
    pub fn ps_suffix(self) -> &'static str {
        match self {
            HealthStatus::Starting => "(health: starting)",
            HealthStatus::Healthy => "(healthy)",
            HealthStatus::Unhealthy => "(unhealthy)",
        }
    }
}

/// Docker's `State.Health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    #[serde(rename = "Status")]
    pub status: HealthStatus,
    #[serde(rename = "FailingStreak")]
    pub failing_streak: u32,
    #[serde(rename = "Log")]
    pub log: Vec<Probe>,
}

/// One probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    #[serde(rename = "Start")]
    pub start: String,
    #[serde(rename = "End")]
    pub end: String,
    #[serde(rename = "ExitCode")]
    pub exit_code: i32,
    #[serde(rename = "Output")]
    pub output: String,
}

impl Health {
    fn starting() -> Health {
        Health {
            status: HealthStatus::Starting,
            failing_streak: 0,
            log: Vec::new(),
        }
    }

    /// Applies one probe's result.
    fn record(&mut self, probe: Probe, in_start_period: bool, retries: u32) {
        if probe.exit_code == 0 {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(in_start_period && self.status == HealthStatus::Starting) {
            self.failing_streak += 1;
            if self.failing_streak >= retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.log.push(probe);
        if self.log.len() > MAX_LOG {
            self.log.remove(0);
        }
    }

    /// The health recorded for a container (`None`: no check, or none ran yet here).
    pub fn load(container_dir: &Path) -> Option<Health> {
        let text = std::fs::read_to_string(container_dir.join(HEALTH_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Replaces the file atomically, so readers never see half of it.
    fn save(&self, container_dir: &Path) {
        let tmp = container_dir.join(format!("{HEALTH_FILE}.tmp"));
        let ok = serde_json::to_vec(self)
            .ok()
            .is_some_and(|b| std::fs::write(&tmp, b).is_ok());
        if !ok || std::fs::rename(&tmp, container_dir.join(HEALTH_FILE)).is_err() {
            tracing::warn!("recording the health of {}", container_dir.display());
        }
    }
}

pub(crate) const HEALTH_FILE: &str = "health.json";

/// `--health-*` flags of `run`/`create`; unset fields keep the image's values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthOptions {
    /// `--health-cmd` (run with `/bin/sh -c`).
    pub cmd: Option<String>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub retries: Option<u32>,
    /// `--no-healthcheck`.
    pub disable: bool,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// The container's check: the image's HEALTHCHECK with the flags applied on top.
pub fn merge(
    image: Option<HealthConfig>,
    o: &HealthOptions,
) -> Result<Option<HealthConfig>, EngineError> {
    if o.disable {
        if o.cmd.is_some() {
            return Err(EngineError::Invalid(
                "--no-healthcheck conflicts with --health-cmd".into(),
            ));
        }
        return Ok(Some(HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    let mut hc = image.unwrap_or_default();
    if let Some(cmd) = &o.cmd {
        hc.test = vec!["CMD-SHELL".into(), cmd.clone()];
    }
    if let Some(d) = o.interval {
        hc.interval = Some(nanos(d));
    }
    if let Some(d) = o.timeout {
        hc.timeout = Some(nanos(d));
    }
    if let Some(d) = o.start_period {
        hc.start_period = Some(nanos(d));
    }
    if let Some(d) = o.start_interval {
        hc.start_interval = Some(nanos(d));
    }
    if let Some(r) = o.retries {
        hc.retries = Some(r);
    }
    if hc.test.is_empty() {
        let flags = o.interval.is_some()
            || o.timeout.is_some()
            || o.start_period.is_some()
            || o.start_interval.is_some()
            || o.retries.is_some();
        return if flags {
            Err(EngineError::Invalid(
                "--health-interval/--health-timeout/--health-retries/--health-start-period \
                 need a check: give --health-cmd (the image has no HEALTHCHECK)"
                    .into(),
            ))
        } else {
            Ok(None)
        };
    }
    Ok(Some(hc))
}

/// A check ready to run, with Docker's defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub argv: Vec<String>,
    interval: Duration,
    timeout: Duration,
    start_period: Duration,
    start_interval: Duration,
    retries: u32,
}

impl Check {
    /// `None` without a check or with `NONE`.
    pub(crate) fn from_config(hc: Option<&HealthConfig>) -> Option<Check> {
        let hc = hc?;
        let argv = match hc.test.first().map(String::as_str) {
            Some("CMD") => hc.test[1..].to_vec(),
            Some("CMD-SHELL") => {
                let mut v = vec!["/bin/sh".to_string(), "-c".to_string()];
                v.push(hc.test[1..].join(" "));
                v
            }
            _ => return None,
        };
        if argv.is_empty() {
            return None;
        }
        let dur = |ns: Option<i64>, default: Duration| match ns {
            Some(n) if n > 0 => Duration::from_nanos(n as u64),
            _ => default,
        };
        Some(Check {
            argv,
            interval: dur(hc.interval, DEFAULT_INTERVAL),
            timeout: dur(hc.timeout, DEFAULT_TIMEOUT),
            start_period: dur(hc.start_period, Duration::ZERO),
            start_interval: dur(hc.start_interval, DEFAULT_START_INTERVAL),
            retries: match hc.retries {
                Some(r) if r > 0 => r,
                _ => DEFAULT_RETRIES,
            },
        })
    }
}

/// Runs the check in the container (everything prepared by the engine beforehand, so
/// the prober thread needs nothing of it).
pub(crate) struct Prober {
    pub pid: i32,
    pub process: runtime::ProcessSpec,
    pub opts: runtime::ExecOptions,
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl Prober {
    fn probe(&self, timeout: Duration) -> Probe {
        let start = now();
        let (exit_code, output) = self.run(timeout);
        Probe {
            start,
            end: now(),
            exit_code,
            output,
        }
    }

    /// True while the container's cgroup is frozen (`pause`): v1's `freezer.state`, v2's
    /// `cgroup.freeze`, next to the `cgroup.procs` files the probe would join.
    fn paused(&self) -> bool {
        self.opts.cgroup_procs.iter().any(|procs| {
            let Some(dir) = procs.parent() else {
                return false;
            };
            let read = |f: &str| std::fs::read_to_string(dir.join(f)).unwrap_or_default();
            read("freezer.state").trim() == "FROZEN" || read("cgroup.freeze").trim() == "1"
        })
    }

    fn run(&self, timeout: Duration) -> (i32, String) {
        let (r, w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
            Ok(p) => p,
            Err(e) => return (-1, format!("creating a pipe for the health check: {e}")),
        };
        let w2 = match w.try_clone() {
            Ok(w2) => w2,
            Err(e) => return (-1, format!("creating a pipe for the health check: {e}")),
        };
        let stdio = runtime::Stdio::Fds {
            stdin: None,
            stdout: w,
            stderr: w2,
        };
        let started = match runtime::exec(self.pid, &self.process, stdio, &self.opts) {
            Ok(s) => s,
            Err(e) => return (e.exit_code().unwrap_or(-1), e.to_string()),
        };
        let (output, timed_out) = read_until(&r, Instant::now() + timeout);
        if timed_out {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(started.pid()),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let code = started.wait().map(|s| s.code()).unwrap_or(-1);
        if timed_out {
            return (
                -1,
                format!("Health check exceeded timeout ({})", humantime(timeout)),
            );
        }
        (code, String::from_utf8_lossy(&output).into_owned())
    }
}

fn humantime(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Reads `fd` until EOF or `deadline` (then `true`); keeps the first 4 KiB.
fn read_until(fd: &OwnedFd, deadline: Instant) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (out, true);
        }
        let ms = PollTimeout::try_from(left.as_millis().max(1)).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return (out, false),
        }
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return (out, false),
            Ok(n) => {
                let room = MAX_OUTPUT.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return (out, false),
        }
    }
}

/// Sleeps `d` unless `stop` is set first; `false` when stopped.
fn sleep_unless(stop: &AtomicBool, d: Duration) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// The prober loop of one container start, until `stop`. Writes `health.json` in `dir`.
/// `changed` is told each new status (`health_status` events).
pub(crate) fn run_checks(
    check: &Check,
    prober: &Prober,
    dir: &Path,
    stop: &AtomicBool,
    changed: &dyn Fn(HealthStatus),
) {
    let started = Instant::now();
    let mut health = Health::starting();
    health.save(dir);
    loop {
        let in_start = started.elapsed() < check.start_period;
        let wait = if in_start && health.status == HealthStatus::Starting {
            check.start_interval.min(check.interval)
        } else {
            check.interval
        };
        if !sleep_unless(stop, wait) {
            return;
        }
        if prober.paused() {
            // A probe in a frozen cgroup would freeze too (Docker skips them as well).
            continue;
        }
        let probe_started = started.elapsed();
        let probe = prober.probe(check.timeout);
        if stop.load(Ordering::Relaxed) {
            // The container ended during the probe: its result says nothing.
            return;
        }
        let before = health.status;
        health.record(probe, probe_started < check.start_period, check.retries);
        health.save(dir);
        if health.status != before {
            changed(health.status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(code: i32) -> Probe {
        Probe {
            start: String::new(),
            end: String::new(),
            exit_code: code,
            output: String::new(),
        }
    }

    #[test]
    fn streaks_follow_dockers_rules() {
        let mut h = Health::starting();
        // Failures in the start period do not count while still starting.
        h.record(probe(1), true, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(probe(1), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        h.record(probe(0), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        // Once healthy, failures count even inside the start period.
        h.record(probe(1), true, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 1));
        h.record(probe(-1), false, 2);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        for _ in 0..10 {
            h.record(probe(0), false, 2);
        }
        assert_eq!(h.log.len(), MAX_LOG);
        assert_eq!(h.status, HealthStatus::Healthy);
    }

    #[test]
    fn flags_override_the_image_and_defaults_fill_in() {
        let image = HealthConfig {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(2_000_000_000),
            retries: Some(5),
            ..Default::default()
        };
        let o = HealthOptions {
            cmd: Some("curl -f localhost".into()),
            timeout: Some(Duration::from_millis(500)),
            ..Default::default()
        };
        let hc = merge(Some(image.clone()), &o).unwrap().unwrap();
        let c = Check::from_config(Some(&hc)).unwrap();
        assert_eq!(c.argv, ["/bin/sh", "-c", "curl -f localhost"]);
        assert_eq!(c.interval, Duration::from_secs(2));
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.retries, 5);
        assert_eq!(c.start_period, Duration::ZERO);
        // The image's own check, Docker's defaults.
        let c = Check::from_config(
            merge(Some(image), &HealthOptions::default())
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        assert_eq!(c.argv, ["true"]);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        // --no-healthcheck, NONE, and nothing at all: no check.
        let off = HealthOptions {
            disable: true,
            ..Default::default()
        };
        assert!(Check::from_config(merge(None, &off).unwrap().as_ref()).is_none());
        assert!(merge(None, &HealthOptions::default()).unwrap().is_none());
        // Timing flags without any check are a mistake worth saying.
        let o = HealthOptions {
            interval: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert!(merge(None, &o).is_err());
    }
}
