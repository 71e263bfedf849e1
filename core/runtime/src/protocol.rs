//! What the runtime's processes tell each other: the status-pipe records a container or exec
//! child sends to the engine, the names of the setup stages they report, and the PATH
//! lookup of the command to exec.
//!
//! Shared, by path, between the runtime (`crate::protocol`) and `berth-init` (the static
//! PID 1 of `--init` containers, `init/main.rs`), so both speak the same records and find
//! the same executable. Plain `std` only: `berth-init` is compiled without dependencies.

/// PATH when the container's environment has none (runc's and Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Status record tags (child → parent).
pub const MSG_READY: u32 = 1;
pub const MSG_ERROR: u32 = 2;
pub const MSG_EXEC: u32 = 3;
/// Sent by the exec intermediate: `index` is the host pid of the exec'd process.
pub const MSG_PID: u32 = 4;

/// Where a failure happened (index into [`STAGES`]).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Stage {
    Stdio = 0,
    JoinNetns,
    Propagation,
    BindRootfs,
    OpenRootfs,
    Op,
    Pivot,
    ReadonlyRoot,
    Hostname,
    Cwd,
    UnshareCgroup,
    Bounding,
    Identity,
    Capset,
    NoNewPrivs,
    /// Sent by `berth-init` (the runtime itself never forks under init).
    #[allow(dead_code)]
    InitFork,
    Loopback,
    Setns,
    CgroupJoin,
    Seccomp,
    Dumpable,
    ExecFork,
    InitExec,
    /// OCI `linux.sysctl` (and `domainname`), written before the rootfs is set up.
    Sysctl,
    /// OCI `process.rlimits` (lowering only on a host without CAP_SYS_RESOURCE).
    Rlimit,
}

pub const STAGES: &[&str] = &[
    "setting up stdio",
    "joining the network namespace",
    "making the mount tree rslave",
    "binding the rootfs onto itself",
    "opening the rootfs",
    "rootfs setup",
    "pivot_root into the rootfs",
    "remounting / read-only",
    "setting the hostname",
    "changing to the working directory",
    "unsharing the cgroup namespace",
    "dropping bounding capabilities",
    "setting user, group and supplementary groups",
    "setting capabilities",
    "setting no_new_privs",
    "forking the process under init",
    "bringing up lo",
    "joining the container's namespaces",
    "joining the cgroup",
    "loading the seccomp filter",
    "making the process non-dumpable",
    "forking the exec'd process into the container's pid namespace",
    "starting berth-init (--init)",
    "writing a sysctl",
    "setting a resource limit",
];

/// One record on the status pipe.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Msg {
    pub tag: u32,
    pub stage: u32,
    pub index: u32,
    pub errno: i32,
}

impl Msg {
    pub const SIZE: usize = std::mem::size_of::<Msg>();
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.tag.to_ne_bytes());
        b[4..8].copy_from_slice(&self.stage.to_ne_bytes());
        b[8..12].copy_from_slice(&self.index.to_ne_bytes());
        b[12..16].copy_from_slice(&self.errno.to_ne_bytes());
        b
    }
    pub fn from_bytes(b: &[u8; 16]) -> Msg {
        let w = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Msg {
            tag: u32::from_ne_bytes(w(0)),
            stage: u32::from_ne_bytes(w(4)),
            index: u32::from_ne_bytes(w(8)),
            errno: i32::from_ne_bytes(w(12)),
        }
    }
}

/// `execvp`-style candidates for `arg0` with the container's PATH.
pub fn exec_candidates(arg0: &str, env: &[String]) -> Vec<String> {
    if arg0.contains('/') {
        return vec![arg0.to_string()];
    }
    let path = env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    path.split(':')
        .map(|d| {
            if d.is_empty() {
                format!("./{arg0}")
            } else {
                format!("{}/{arg0}", d.trim_end_matches('/'))
            }
        })
        .collect()
}

// Linux errno values (the same on every architecture); `berth-init` has no libc crate.
const ENOENT: i32 = 2;
const EACCES: i32 = 13;
const ENOTDIR: i32 = 20;

/// `execvp`'s verdict over the PATH candidates: ENOENT and ENOTDIR move on to the next
/// candidate, EACCES too but is remembered (reported when nothing else turns up), any other
/// error ends the search.
#[derive(Debug, Clone, Copy)]
pub struct ExecSearch {
    err: i32,
    saw_eacces: bool,
}

impl Default for ExecSearch {
    fn default() -> Self {
        ExecSearch {
            err: ENOENT,
            saw_eacces: false,
        }
    }
}

impl ExecSearch {
    /// Records one failed `execve`; `false` when the search should stop.
    pub fn failed(&mut self, errno: i32) -> bool {
        match errno {
            ENOENT | ENOTDIR => true,
            EACCES => {
                self.saw_eacces = true;
                true
            }
            e => {
                self.err = e;
                false
            }
        }
    }

    /// The record for the engine and the exit code: 127 when nothing was found, 126 when
    /// something was found but could not be run.
    pub fn report(&self) -> (Msg, i32) {
        let err = if self.saw_eacces && self.err == ENOENT {
            EACCES
        } else {
            self.err
        };
        let msg = Msg {
            tag: MSG_EXEC,
            stage: 0,
            index: 0,
            errno: err,
        };
        (msg, if err == ENOENT { 127 } else { 126 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_roundtrip() {
        let m = Msg {
            tag: MSG_EXEC,
            stage: 3,
            index: 9,
            errno: -2,
        };
        let r = Msg::from_bytes(&m.to_bytes());
        assert_eq!((r.tag, r.stage, r.index, r.errno), (3, 3, 9, -2));
        assert_eq!(STAGES.len(), Stage::Rlimit as usize + 1);
    }

    #[test]
    fn exec_search_reports_like_execvp() {
        assert_eq!(
            (ENOENT, EACCES, ENOTDIR),
            (libc::ENOENT, libc::EACCES, libc::ENOTDIR)
        );
        let verdict = |errs: &[i32]| {
            let mut s = ExecSearch::default();
            for e in errs {
                if !s.failed(*e) {
                    break;
                }
            }
            let (m, code) = s.report();
            (m.errno, code)
        };
        assert_eq!(verdict(&[ENOENT, ENOTDIR]), (ENOENT, 127));
        assert_eq!(verdict(&[EACCES, ENOENT]), (EACCES, 126));
        assert_eq!(
            verdict(&[ENOENT, libc::ENOEXEC, EACCES]),
            (libc::ENOEXEC, 126)
        );
    }

    #[test]
    fn path_lookup_candidates() {
        let env = vec!["PATH=/a:/b/:".to_string()];
        assert_eq!(exec_candidates("ls", &env), vec!["/a/ls", "/b/ls", "./ls"]);
        assert_eq!(exec_candidates("./x", &env), vec!["./x"]);
        assert_eq!(exec_candidates("ls", &[]).len(), 6);
    }
}
