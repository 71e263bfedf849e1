//! The isolator suite: what berth relies on from an [`Isolator`]. Needs root.
//!
//! Groups are named `bt-conf-<pid>-<n>` and destroyed also when a case fails; the test
//! processes (`sleep`) are killed and reaped. Where a plugin puts its groups is its
//! configuration's business: give it a parent of its own (`--config`, e.g.
//! `{"parent": "bt-conf"}` for cgroup1/cgroup2).

use std::{
    process::{Child, Command},
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
};

use berth_abi::{DeviceRule, ErrorKind, Isolator, IsolatorCaps, Limits};

use crate::{temp_dir, Case, Suite};

/// The cases, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "groups are created once and destroyed idempotently",
            run: lifecycle,
        },
        Case {
            name: "processes are placed, listed, frozen and killed",
            run: processes,
        },
        Case {
            name: "limits outside capabilities are refused",
            run: unsupported_limits_refused,
        },
        Case {
            name: "device rules are enforced or refused",
            run: devices,
        },
    ]
}

fn unique() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "bt-conf-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh isolator instance; destroys the groups it made on drop.
struct Env {
    iso: Arc<dyn Isolator>,
    caps: IsolatorCaps,
    groups: std::cell::RefCell<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new(suite: &Suite) -> Env {
        let dir = temp_dir("iso");
        let iso = suite
            .plugin
            .isolator(suite.context(dir.path()))
            .unwrap_or_else(|e| panic!("the constructor failed: {e}"));
        let caps = iso.capabilities().expect("capabilities");
        Env {
            iso,
            caps,
            groups: Default::default(),
            _dir: dir,
        }
    }

    /// A new group id, destroyed on drop.
    fn id(&self) -> String {
        let id = unique();
        self.groups.borrow_mut().push(id.clone());
        id
    }

    fn supports(&self, what: &str) -> bool {
        self.caps.supported.iter().any(|s| s == what)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for id in self.groups.borrow().iter() {
            let _ = self.iso.destroy(id);
        }
    }
}

/// `sleep 300`, killed and reaped on drop.
struct Sleeper(Child);

impl Sleeper {
    fn new() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("300")
                .spawn()
                .unwrap_or_else(|e| panic!("starting `sleep`: {e}")),
        )
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn lifecycle(s: &Suite) {
    let env = Env::new(s);
    let id = env.id();
    env.iso.create(&id, &Limits::default()).expect("create");
    let again = env
        .iso
        .create(&id, &Limits::default())
        .expect_err("a second create");
    assert_eq!(again.kind, ErrorKind::AlreadyExists, "{again}");
    assert!(
        env.iso.list().expect("list").contains(&id),
        "list names the new group"
    );
    assert!(
        env.iso.pids(&id).expect("pids").is_empty(),
        "a new group has no processes"
    );
    env.iso.destroy(&id).expect("destroy");
    env.iso.destroy(&id).expect("destroy is idempotent");
    assert!(
        !env.iso.list().expect("list").contains(&id),
        "a destroyed group is not listed"
    );
}

fn processes(s: &Suite) {
    let env = Env::new(s);
    let id = env.id();
    env.iso.create(&id, &Limits::default()).expect("create");
    let mut child = Sleeper::new();
    env.iso.add_process(&id, child.pid()).expect("add_process");
    assert!(
        env.iso.pids(&id).expect("pids").contains(&child.pid()),
        "pids lists the placed process"
    );
    if env.supports("freeze") {
        env.iso.freeze(&id).expect("freeze");
        env.iso.thaw(&id).expect("thaw");
    }
    if env.supports("kill") {
        env.iso.kill(&id, 9).expect("kill");
        let status = child.0.wait().expect("reaping the killed process");
        assert!(!status.success(), "the process was killed");
    }
    env.iso.destroy(&id).expect("destroy with a process");
    env.iso.destroy(&id).expect("destroy is idempotent");
}

/// One limit per capability name, as the CLI flag of the same name sets it.
fn limit_cases() -> Vec<(&'static str, Limits)> {
    let mib = 1 << 20;
    vec![
        (
            "memory",
            Limits {
                memory: Some(256 * mib),
                ..Default::default()
            },
        ),
        (
            "memory-swap",
            Limits {
                memory: Some(256 * mib),
                memory_swap: Some(512 * mib),
                ..Default::default()
            },
        ),
        (
            "memory-reservation",
            Limits {
                memory_reservation: Some(128 * mib),
                ..Default::default()
            },
        ),
        (
            "cpus",
            Limits {
                cpu_quota: Some(50_000),
                cpu_period: Some(100_000),
                ..Default::default()
            },
        ),
        (
            "cpu-shares",
            Limits {
                cpu_shares: Some(512),
                ..Default::default()
            },
        ),
        (
            "cpuset",
            Limits {
                cpuset_cpus: Some("0".into()),
                ..Default::default()
            },
        ),
        (
            "pids-limit",
            Limits {
                pids: Some(64),
                ..Default::default()
            },
        ),
        (
            "blkio-weight",
            Limits {
                blkio_weight: Some(500),
                ..Default::default()
            },
        ),
    ]
}

fn unsupported_limits_refused(s: &Suite) {
    let env = Env::new(s);
    for (name, limits) in limit_cases() {
        // memory-swap is only enforceable together with memory.
        let supported = env.supports(name) && (name != "memory-swap" || env.supports("memory"));
        if supported {
            continue;
        }
        let id = env.id();
        let Err(err) = env.iso.create(&id, &limits) else {
            panic!("`{name}` is not in capabilities(), yet create accepted it");
        };
        assert_eq!(
            err.kind,
            ErrorKind::Unsupported,
            "`{name}` refused with the wrong kind: {err}"
        );
        assert!(
            !env.iso.list().expect("list").contains(&id),
            "a refused create leaves no group ({name})"
        );
    }
}

fn devices(s: &Suite) {
    let env = Env::new(s);
    let id = env.id();
    env.iso.create(&id, &Limits::default()).expect("create");
    let rules = [DeviceRule::everything(false)];
    let r = env.iso.set_devices(&id, &rules);
    if env.supports("devices") {
        r.expect("set_devices with `devices` in capabilities");
    } else {
        let err = r.expect_err("set_devices without `devices` in capabilities");
        assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    }
    env.iso.destroy(&id).expect("destroy");
}
