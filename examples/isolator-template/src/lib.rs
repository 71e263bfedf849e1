//! # A template for third-party berth plugins
//!
//! Copy this crate, rename it, implement one of berth-abi's traits and call
//! `berth_plugin_sdk::export_plugin!`. Build with `cargo build --release` and drop the `.so` into a
//! plugin directory (`berth info` lists them); select it in `berth.toml`:
//!
//! ```toml
//! [isolator]
//! driver = "signals"
//! [isolator.signals]
//! stop_signal = 19   # anything in this table reaches the constructor as JSON
//! ```
//!
//! This example is a small but real isolator for hosts without usable cgroups: it keeps
//! the container's main pid in a file, finds the rest of the tree through `/proc`, pauses
//! with SIGSTOP/SIGCONT and kills with signals. It enforces no resource limit, and says so:
//! any limit is refused with `Unsupported`, which berth turns into a clear user error.

use std::{fs, path::PathBuf};

use berth_plugin_sdk::{
    ErrorKind, Isolator, IsolatorCaps, Limits, PluginContext, PluginError, PluginResult,
    ResourceStats,
};

pub struct Signals {
    dir: PathBuf,
}

impl Signals {
    /// The constructor berth calls with the plugin's context.
    pub fn new(ctx: &PluginContext) -> PluginResult<Self> {
        let dir = PathBuf::from(ctx.run_dir()).join("groups");
        fs::create_dir_all(&dir).map_err(|e| PluginError::io(dir.display(), e))?;
        Ok(Signals { dir })
    }

    fn file(&self, id: &str) -> PluginResult<PathBuf> {
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PluginError::invalid(format!("invalid group id {id:?}")));
        }
        Ok(self.dir.join(id))
    }

    fn main_pid(&self, id: &str) -> PluginResult<Option<i32>> {
        let f = self.file(id)?;
        match fs::read_to_string(&f) {
            Ok(s) if s.trim().is_empty() => Ok(None),
            Ok(s) => {
                s.trim().parse().map(Some).map_err(|_| {
                    PluginError::internal(format!("{}: corrupt pid file", f.display()))
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(PluginError::not_found(format!("no group {id}")))
            }
            Err(e) => Err(PluginError::io(f.display(), e)),
        }
    }

    fn signal_all(&self, id: &str, sig: i32) -> PluginResult<()> {
        for pid in self.pids(id)? {
            // SAFETY: kill(2) with a pid and signal number has no memory-safety concerns.
            unsafe { libc_kill(pid, sig) };
        }
        Ok(())
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

/// Parent pid of `pid` from /proc/PID/stat (field 4, after the parenthesised name).
fn ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

fn refuse_limits(limits: &Limits) -> PluginResult<()> {
    if *limits != Limits::default() {
        return Err(PluginError::new(
            ErrorKind::Unsupported,
            "the signals isolator enforces no resource limits (use cgroup1 or cgroup2)",
        ));
    }
    Ok(())
}

impl Isolator for Signals {
    fn capabilities(&self) -> PluginResult<IsolatorCaps> {
        Ok(IsolatorCaps {
            supported: vec!["freeze".into(), "kill".into()],
            parent: self.dir.display().to_string(),
            notes: "signals only: no resource limits".into(),
        })
    }
    fn create(&self, id: &str, limits: &Limits) -> PluginResult<()> {
        refuse_limits(limits)?;
        let f = self.file(id)?;
        if f.exists() {
            return Err(PluginError::already_exists(format!("group {id} exists")));
        }
        fs::write(&f, "").map_err(|e| PluginError::io(f.display(), e))
    }
    fn add_process(&self, id: &str, pid: i32) -> PluginResult<()> {
        let f = self.file(id)?;
        if self.main_pid(id)?.is_none() {
            fs::write(&f, pid.to_string()).map_err(|e| PluginError::io(f.display(), e))?;
        }
        Ok(())
    }
    fn update(&self, _id: &str, limits: &Limits) -> PluginResult<()> {
        refuse_limits(limits)
    }
    fn stats(&self, id: &str) -> PluginResult<ResourceStats> {
        let pids = self.pids(id)?;
        Ok(ResourceStats {
            pids_current: Some(pids.len() as u64),
            ..Default::default()
        })
    }
    fn freeze(&self, id: &str) -> PluginResult<()> {
        self.signal_all(id, 19) // SIGSTOP
    }
    fn thaw(&self, id: &str) -> PluginResult<()> {
        self.signal_all(id, 18) // SIGCONT
    }
    fn kill(&self, id: &str, signal: i32) -> PluginResult<()> {
        self.signal_all(id, signal)
    }
    fn pids(&self, id: &str) -> PluginResult<Vec<i32>> {
        let Some(root) = self.main_pid(id)? else {
            return Ok(Vec::new());
        };
        let mut tree = vec![root];
        let all: Vec<i32> = fs::read_dir("/proc")
            .map_err(|e| PluginError::io("/proc", e))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        if !all.contains(&root) {
            return Ok(Vec::new());
        }
        // Add descendants until nothing changes (process trees are shallow).
        loop {
            let before = tree.len();
            for &p in &all {
                if !tree.contains(&p) && ppid(p).is_some_and(|pp| tree.contains(&pp)) {
                    tree.push(p);
                }
            }
            if tree.len() == before {
                break;
            }
        }
        Ok(tree)
    }
    fn destroy(&self, id: &str) -> PluginResult<()> {
        let f = self.file(id)?;
        if !f.exists() {
            return Ok(());
        }
        self.signal_all(id, 9)?;
        fs::remove_file(&f).map_err(|e| PluginError::io(f.display(), e))
    }
    fn list(&self) -> PluginResult<Vec<String>> {
        Ok(fs::read_dir(&self.dir)
            .map_err(|e| PluginError::io(self.dir.display(), e))?
            .filter_map(|e| e.ok()?.file_name().to_str().map(str::to_string))
            .collect())
    }
}

berth_plugin_sdk::export_plugin! {
    kind: isolator,
    name: "signals",
    description: "template plugin: pause/kill with signals, no resource limits",
    constructor: Signals::new,
}
