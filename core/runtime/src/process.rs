//! The parent side: `create` / `start` / `wait` / `exec`.

use std::{
    ffi::CString,
    fs::File,
    os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
    sync::Mutex,
};

use libc::c_int;
use nix::errno::Errno;

use crate::{
    caps,
    child::{self, ChildArgs, ExecArgs},
    init::InitPlan,
    plan::{self, high_fd, Op, ProcPlan, StdioPlan, SysMode},
    protocol::{Msg, Stage, MSG_ERROR, MSG_EXEC, MSG_PID, MSG_READY, STAGES},
    user, ContainerSpec, ExecOptions, NetworkMode, ProcessSpec, RuntimeError, Stdio,
};

/// How a container process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    code: i32,
    signal: Option<i32>,
}

impl ExitStatus {
    fn from_wait(st: libc::c_int) -> ExitStatus {
        if libc::WIFSIGNALED(st) {
            let sig = libc::WTERMSIG(st);
            ExitStatus {
                code: 128 + sig,
                signal: Some(sig),
            }
        } else {
            ExitStatus {
                code: libc::WEXITSTATUS(st),
                signal: None,
            }
        }
    }
    /// Docker's exit code: the exit status, or 128 + signal number.
    pub fn code(&self) -> i32 {
        self.code
    }
    /// The signal that killed the process, if any.
    pub fn signal(&self) -> Option<i32> {
        self.signal
    }
    pub fn success(&self) -> bool {
        self.code == 0
    }
}

/// Serialises "create the child's descriptors → clone → close the child's copies" across
/// threads, so a container cloned by one thread never holds the sync pipe or pty slave of
/// another thread's container (which would delay that one's EOF-on-exec detection).
static CLONE_LOCK: Mutex<()> = Mutex::new(());

fn clone_lock() -> std::sync::MutexGuard<'static, ()> {
    CLONE_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

fn pipe() -> Result<(OwnedFd, OwnedFd), RuntimeError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| RuntimeError::sys("creating a sync pipe", e))
}

fn open_fd(path: &Path, flags: i32) -> Result<OwnedFd, RuntimeError> {
    let c = plan::path_cstring(path)?;
    // SAFETY: open of a NUL-terminated path; the result is owned below.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(RuntimeError::io(
            "opening",
            path,
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn fd_limit() -> libc::c_int {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(soft, _)| soft.min(1 << 20) as libc::c_int)
        .unwrap_or(1024)
}

/// Reads one status record; `None` on EOF (the write ends are all closed: exec succeeded
/// or the child died).
fn read_msg(fd: &OwnedFd) -> Result<Option<Msg>, RuntimeError> {
    let mut buf = [0u8; Msg::SIZE];
    let mut got = 0;
    while got < buf.len() {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(RuntimeError::sys("reading the container's sync pipe", e)),
        }
    }
    if got < buf.len() {
        return Ok(None);
    }
    Ok(Some(Msg::from_bytes(&buf)))
}

fn reap(pid: i32) -> Option<ExitStatus> {
    let mut st: libc::c_int = 0;
    loop {
        // SAFETY: waitpid on our own child with a stack status word.
        let r = unsafe { libc::waitpid(pid, &mut st, 0) };
        if r == pid {
            return Some(ExitStatus::from_wait(st));
        }
        if r < 0 && Errno::last() == Errno::EINTR {
            continue;
        }
        return None;
    }
}

fn kill_and_reap(pid: i32) {
    // SAFETY: SIGKILL to our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    reap(pid);
}

/// Raw clone with fork semantics plus namespace flags.
fn raw_clone(flags: libc::c_int) -> Result<libc::pid_t, RuntimeError> {
    // SAFETY: clone without CLONE_VM or a new stack: the child runs on a copy of our memory
    // and only calls `child::*_main`, which never return.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(RuntimeError::sys(
            "clone of the container process",
            Errno::last(),
        ));
    }
    Ok(pid as libc::pid_t)
}

fn setup_error(msg: Msg, ops: &[Op], what: &str) -> RuntimeError {
    if msg.stage == Stage::Op as u32 && msg.errno == crate::plan::ERR_ON_PROC {
        let op = ops
            .get(msg.index as usize)
            .map(Op::describe)
            .unwrap_or_default();
        return RuntimeError::InvalidSpec(format!(
            "{op}: the destination leads into /proc through a symlink in the image, and a \
             mount there would hide or replace the kernel's files (runc's rule allows only \
             a procfs on /proc and a few files inside it)"
        ));
    }
    let stage = STAGES.get(msg.stage as usize).copied().unwrap_or("setup");
    let object = if msg.stage == Stage::Op as u32 {
        ops.get(msg.index as usize)
            .map(Op::describe)
            .unwrap_or_default()
    } else if msg.stage == Stage::Bounding as u32 {
        caps::mask_names(1u64 << (msg.index & 63)).join(",")
    } else {
        what.to_string()
    };
    RuntimeError::Setup {
        stage,
        object,
        errno: Errno::from_raw(msg.errno),
    }
}

fn exec_error(errno: i32, command: &str) -> RuntimeError {
    let errno = Errno::from_raw(errno);
    match errno {
        Errno::ENOENT | Errno::ENOTDIR => RuntimeError::NotFound {
            command: command.to_string(),
        },
        _ => RuntimeError::NotExecutable {
            command: command.to_string(),
            errno,
        },
    }
}

/// Stdio descriptors for the child, the pty master, and the pty slave's path (/dev/console).
fn prepare_stdio(
    stdio: Stdio,
) -> Result<(StdioPlan, Option<OwnedFd>, Option<PathBuf>), RuntimeError> {
    let mut plan = StdioPlan::default();
    match stdio {
        Stdio::Inherit => Ok((plan, None, None)),
        Stdio::Fds {
            stdin,
            stdout,
            stderr,
        } => {
            let stdin = match stdin {
                Some(fd) => fd,
                None => File::open("/dev/null")
                    .map_err(|e| RuntimeError::io("opening", "/dev/null", e))?
                    .into(),
            };
            for (i, fd) in [stdin, stdout, stderr].into_iter().enumerate() {
                let h = high_fd(&fd)?;
                plan.fds[i] = Some(h.as_raw_fd());
                plan.owned.push(h);
            }
            Ok((plan, None, None))
        }
        Stdio::Pty => {
            let pty = nix::pty::openpty(None, None).map_err(|e| RuntimeError::sys("openpty", e))?;
            nix::fcntl::fcntl(
                pty.master.as_raw_fd(),
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(|e| RuntimeError::sys("fcntl(FD_CLOEXEC) on the pty master", e))?;
            let path = nix::unistd::ttyname(&pty.slave)
                .map_err(|e| RuntimeError::sys("ttyname of the pty slave", e))?;
            let slave = high_fd(&pty.slave)?;
            plan.fds = [Some(slave.as_raw_fd()); 3];
            plan.ctty = true;
            plan.owned.push(slave);
            Ok((plan, Some(pty.master), Some(path)))
        }
    }
}

/// A container process stopped at its sync point: namespaces and rootfs are ready; the
/// engine may now place it in its cgroup and attach its network, then [`Created::start`].
#[derive(Debug)]
pub struct Created {
    pid: i32,
    status_r: Option<OwnedFd>,
    go_w: Option<OwnedFd>,
    pty_master: Option<OwnedFd>,
    command: String,
    done: bool,
}

/// A running process (after a successful exec).
#[derive(Debug)]
pub struct Started {
    pid: i32,
    pty_master: Option<OwnedFd>,
    status: Mutex<Option<ExitStatus>>,
}

/// What an OCI runtime needs beyond a [`ContainerSpec`] (see [`crate::oci_in`]); the
/// default is what [`create`] does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// A FIFO (made by the caller, `mkfifo`) that replaces the go pipe: the process waits
    /// for one byte written into it, by [`Created::start`] or by any other process
    /// ([`start_fifo`]), and keeps waiting after the creating process is gone
    /// ([`Created::detach`]), like runc's `exec.fifo`.
    pub go_fifo: Option<PathBuf>,
    /// Namespaced sysctls (`net.ipv4.ip_forward` style keys, checked by [`crate::oci_in`]).
    pub sysctls: Vec<(String, String)>,
    /// `(RLIMIT_*, soft, hard)` set right before exec; raising a hard limit needs
    /// CAP_SYS_RESOURCE and fails at start otherwise.
    pub rlimits: Vec<(i32, u64, u64)>,
    /// The command's umask (default 022).
    pub umask: Option<u32>,
    /// Supplementary groups exactly as given (OCI `additionalGids`), instead of the
    /// user's groups from the container's `/etc/group`.
    pub additional_gids: Option<Vec<u32>>,
    /// The OCI capability sets other than the bounding one (the bounding set is the
    /// spec's `cap_add`/`cap_drop`); `None` = effective and permitted equal the bounding
    /// set, no inheritable or ambient capabilities.
    pub cap_sets: Option<CapSets>,
    /// Descriptors 3 .. 3+N of the caller stay open in the container (runc's
    /// `--preserve-fds`); every other inherited descriptor is closed on exec.
    pub preserve_fds: u32,
}

/// Capability names of the effective, permitted, inheritable and ambient sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapSets {
    pub effective: Vec<String>,
    pub permitted: Vec<String>,
    pub inheritable: Vec<String>,
    pub ambient: Vec<String>,
}

/// Applies the extras that both `create_with` and `exec_with` take.
fn apply_extras(proc: &mut ProcPlan, extra: &CreateOptions) -> Result<(), RuntimeError> {
    if let Some(m) = extra.umask {
        proc.umask = m as libc::mode_t;
    }
    if let Some(g) = &extra.additional_gids {
        proc.groups = g.clone();
    }
    proc.rlimits = extra.rlimits.clone();
    if let Some(cs) = &extra.cap_sets {
        proc.effective = caps::names_mask(&cs.effective)?;
        proc.permitted = caps::names_mask(&cs.permitted)?;
        proc.inheritable = caps::names_mask(&cs.inheritable)?;
        proc.ambient = caps::names_mask(&cs.ambient)?;
    }
    Ok(())
}

/// The `/proc/sys` path of a sysctl key, if the key is well-formed.
pub(crate) fn sysctl_path(key: &str) -> Option<String> {
    let ok = !key.is_empty()
        && key
            .split(['.', '/'])
            .all(|c| !c.is_empty() && c != ".." && c.bytes().all(|b| b.is_ascii_graphic()));
    ok.then(|| format!("/proc/sys/{}", key.replace('.', "/")))
}

/// Creates the container process (see the crate docs for the sequence).
pub fn create(spec: &ContainerSpec, stdio: Stdio) -> Result<Created, RuntimeError> {
    create_with(spec, stdio, &CreateOptions::default())
}

/// [`create`] with the OCI runtime's extra settings.
///
/// Safe to call from a multi-threaded process: the child only issues system calls on data
/// prepared here (see `child.rs`). Needs root (CAP_SYS_ADMIN and friends) in the initial
/// user namespace.
pub fn create_with(
    spec: &ContainerSpec,
    stdio: Stdio,
    opts: &CreateOptions,
) -> Result<Created, RuntimeError> {
    let span = tracing::debug_span!("create", id = %spec.id);
    let _g = span.enter();
    let rootfs = plan::rootfs_path(&spec.rootfs)?;
    let root = user::open_root(&rootfs)?;
    let who = user::resolve_at(&root, &rootfs, &spec.process.user)?;
    drop(root);
    let caps = caps::capability_mask(spec.privileged, &spec.cap_add, &spec.cap_drop)?;
    let mut proc = ProcPlan::new(
        &spec.process,
        &who,
        Some(spec.hostname.as_str()).filter(|h| !h.is_empty()),
        caps,
        spec.no_new_privileges,
        spec.seccomp.as_ref(),
        &format!("container {}", spec.id),
    )?;
    apply_extras(&mut proc, opts)?;
    let mut sysctls = Vec::with_capacity(opts.sysctls.len());
    for (k, v) in &opts.sysctls {
        let path = sysctl_path(k)
            .ok_or_else(|| RuntimeError::InvalidSpec(format!("malformed sysctl key {k:?}")))?;
        sysctls.push((
            CString::new(path)
                .map_err(|_| RuntimeError::InvalidSpec(format!("sysctl {k:?} has a NUL byte")))?,
            CString::new(v.as_str()).map_err(|_| {
                RuntimeError::InvalidSpec(format!("value of sysctl {k:?} has a NUL byte"))
            })?,
        ));
    }
    if spec.hostname.len() > 64 {
        return Err(RuntimeError::InvalidSpec(format!(
            "hostname {:?} is longer than 64 bytes",
            spec.hostname
        )));
    }
    let hostname = CString::new(spec.hostname.as_str())
        .map_err(|_| RuntimeError::InvalidSpec("hostname contains a NUL byte".into()))?;
    let mut flags =
        libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    let (sys, netns) = match &spec.network {
        NetworkMode::New => {
            flags |= libc::CLONE_NEWNET;
            (SysMode::Sysfs, None)
        }
        NetworkMode::Host => (SysMode::BindHost, None),
        NetworkMode::Join(p) => (SysMode::Sysfs, Some(open_fd(p, libc::O_RDONLY)?)),
    };
    let lock = clone_lock();
    let (stdio_plan, pty_master, console) = prepare_stdio(stdio)?;
    let ops = plan::rootfs_ops(spec, sys, console.as_deref())?;
    let rootfs_c = plan::path_cstring(&rootfs)?;
    let (status_r, status_w) = pipe()?;
    if opts.go_fifo.is_some() {
        child::REPORT_TO_STDERR.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let (go_r, go_w) = match &opts.go_fifo {
        // Read-write: opening does not wait for a writer, and the child's own write end
        // means the creator's exit is no EOF.
        Some(fifo) => {
            let r = open_fd(fifo, libc::O_RDWR)?;
            (r, open_fd(fifo, libc::O_WRONLY | libc::O_NONBLOCK)?)
        }
        None => pipe()?,
    };
    let init = if spec.init {
        Some(InitPlan::new(status_w.as_raw_fd(), proc.tty, &proc.argv)?)
    } else {
        None
    };
    let args = ChildArgs {
        status_w: status_w.as_raw_fd(),
        go_r: go_r.as_raw_fd(),
        go_w: go_w.as_raw_fd(),
        netns: netns.as_ref().map(|f| f.as_raw_fd()),
        lo_up: spec.network == NetworkMode::New,
        rootfs: &rootfs_c,
        ops: &ops,
        readonly_root: spec.readonly_rootfs,
        hostname: &hostname,
        init: init.as_ref(),
        stdio: &stdio_plan,
        proc: &proc,
        fd_limit: fd_limit(),
        sysctls: &sysctls,
        first_cloexec: 3 + opts.preserve_fds as c_int,
    };
    let pid = raw_clone(flags)?;
    if pid == 0 {
        child::container_main(&args);
    }
    tracing::debug!(pid, rootfs = %rootfs.display(), "container process cloned");
    drop((status_w, go_r, stdio_plan, netns, init, lock));
    let command = spec.process.args.first().cloned().unwrap_or_default();
    match read_msg(&status_r) {
        Ok(Some(m)) if m.tag == MSG_READY => {
            tracing::debug!(pid, "container process ready at its sync point");
            Ok(Created {
                pid,
                status_r: Some(status_r),
                go_w: Some(go_w),
                pty_master,
                command,
                done: false,
            })
        }
        Ok(Some(m)) => {
            reap(pid);
            Err(setup_error(m, &ops, &spec.id))
        }
        Ok(None) => {
            reap(pid);
            Err(RuntimeError::ChildDied {
                pid,
                phase: "rootfs setup",
            })
        }
        Err(e) => {
            kill_and_reap(pid);
            Err(e)
        }
    }
}

impl Created {
    /// Host pid of the container's PID 1.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pty master with [`Stdio::Pty`] (once).
    pub fn pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// Lets the process go: it unshares its cgroup namespace, drops to its user and
    /// capabilities and execs. Returns once the exec succeeded, or its failure.
    pub fn start(mut self) -> Result<Started, RuntimeError> {
        self.done = true;
        let pid = self.pid;
        let (Some(go_w), Some(status_r)) = (self.go_w.take(), self.status_r.take()) else {
            return Err(RuntimeError::ChildDied {
                pid,
                phase: "start",
            });
        };
        let r = nix::unistd::write(&go_w, &[1u8]);
        drop(go_w);
        if let Err(e) = r {
            kill_and_reap(pid);
            return Err(RuntimeError::sys(
                "signalling the container process to start",
                e,
            ));
        }
        match read_msg(&status_r) {
            Ok(None) => {
                tracing::debug!(pid, "container process started");
                Ok(Started {
                    pid,
                    pty_master: self.pty_master.take(),
                    status: Mutex::new(None),
                })
            }
            Ok(Some(m)) => {
                reap(pid);
                if m.tag == MSG_EXEC {
                    Err(exec_error(m.errno, &self.command))
                } else if m.tag == MSG_ERROR {
                    Err(setup_error(m, &[], &self.command))
                } else {
                    Err(RuntimeError::ChildDied {
                        pid,
                        phase: "start",
                    })
                }
            }
            Err(e) => {
                kill_and_reap(pid);
                Err(e)
            }
        }
    }

    /// Leaves the process waiting at its sync point and forgets it (not killed on drop):
    /// with [`CreateOptions::go_fifo`] another process starts it later ([`start_fifo`]).
    /// Returns its pid; whoever reaps orphans (a subreaper, or init) reaps it.
    pub fn detach(mut self) -> i32 {
        self.done = true;
        self.pid
    }

    /// Kills and reaps the process.
    pub fn abort(mut self) {
        self.done = true;
        kill_and_reap(self.pid);
    }
}

/// Starts a process created with [`CreateOptions::go_fifo`] = `fifo` by another process:
/// writes the go byte. Fails with [`RuntimeError::ChildDied`] when nobody waits on the
/// FIFO any more (the process died or was started already).
pub fn start_fifo(fifo: &Path) -> Result<(), RuntimeError> {
    let fd = match open_fd(fifo, libc::O_WRONLY | libc::O_NONBLOCK) {
        Ok(fd) => fd,
        Err(RuntimeError::Io { source, .. }) if source.raw_os_error() == Some(libc::ENXIO) => {
            return Err(RuntimeError::ChildDied {
                pid: 0,
                phase: "start (nothing waits on the start FIFO)",
            })
        }
        Err(e) => return Err(e),
    };
    nix::unistd::write(&fd, &[1u8])
        .map(|_| ())
        .map_err(|e| RuntimeError::sys("signalling the container process to start", e))
}

impl Drop for Created {
    fn drop(&mut self) {
        if !self.done {
            kill_and_reap(self.pid);
        }
    }
}

impl Started {
    /// Host pid of the process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The pty master of an [`exec`] with [`Stdio::Pty`] (once).
    pub fn pty_master(&mut self) -> Option<OwnedFd> {
        self.pty_master.take()
    }

    /// Waits for the process and reaps it (repeated calls return the same status).
    pub fn wait(&self) -> Result<ExitStatus, RuntimeError> {
        let mut guard = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = *guard {
            return Ok(s);
        }
        let mut st: libc::c_int = 0;
        loop {
            // SAFETY: waitpid on our own child with a stack status word.
            let r = unsafe { libc::waitpid(self.pid, &mut st, 0) };
            if r == self.pid {
                break;
            }
            let e = Errno::last();
            if r < 0 && e == Errno::EINTR {
                continue;
            }
            return Err(RuntimeError::sys("waitpid on the container process", e));
        }
        let s = ExitStatus::from_wait(st);
        tracing::debug!(pid = self.pid, code = s.code, "container process exited");
        *guard = Some(s);
        Ok(s)
    }
}

const EXEC_NAMESPACES: &[(&str, libc::c_int)] = &[
    ("ipc", libc::CLONE_NEWIPC),
    ("uts", libc::CLONE_NEWUTS),
    ("net", libc::CLONE_NEWNET),
    ("cgroup", libc::CLONE_NEWCGROUP),
    ("mnt", libc::CLONE_NEWNS),
];

/// Runs `process` inside the running container whose PID 1 is `container_pid` (host pid):
/// joins its cgroup (`opts.cgroup_procs`) and its mnt, pid, uts, ipc, net and cgroup
/// namespaces. Returns once exec succeeded.
///
/// An intermediate child joins everything while it is still invisible to the container,
/// then forks the process that appears in the container's pid namespace (see `child.rs`
/// on `/proc/<pid>/exe`); the returned [`Started`] is that process, a child of the caller.
pub fn exec(
    container_pid: i32,
    process: &ProcessSpec,
    stdio: Stdio,
    opts: &ExecOptions,
) -> Result<Started, RuntimeError> {
    exec_with(
        container_pid,
        process,
        stdio,
        opts,
        &CreateOptions::default(),
    )
}

/// [`exec`] with the umask, rlimits and supplementary groups of `extra` (its FIFO and
/// sysctls do not apply to an exec).
pub fn exec_with(
    container_pid: i32,
    process: &ProcessSpec,
    stdio: Stdio,
    opts: &ExecOptions,
    extra: &CreateOptions,
) -> Result<Started, RuntimeError> {
    let span = tracing::debug_span!("exec", container_pid);
    let _g = span.enter();
    let proc_dir = PathBuf::from(format!("/proc/{container_pid}"));
    let root_path = proc_dir.join("root");
    let root = user::open_root(&root_path)?;
    let who = user::resolve_at(&root, &root_path, &process.user)?;
    drop(root);
    let caps = caps::capability_mask(opts.privileged, &opts.cap_add, &opts.cap_drop)?;
    let mut proc = ProcPlan::new(
        process,
        &who,
        None,
        caps,
        opts.no_new_privileges,
        opts.seccomp.as_ref(),
        &format!("exec in container process {container_pid}"),
    )?;
    apply_extras(&mut proc, extra)?;
    let mut ns_fds: Vec<OwnedFd> = Vec::new();
    let mut namespaces: Vec<(RawFd, libc::c_int)> = Vec::new();
    for (name, flag) in EXEC_NAMESPACES {
        let fd = open_fd(&proc_dir.join("ns").join(name), libc::O_RDONLY)?;
        namespaces.push((fd.as_raw_fd(), *flag));
        ns_fds.push(fd);
    }
    let pidns = open_fd(&proc_dir.join("ns/pid"), libc::O_RDONLY)?;
    let mut cg_fds: Vec<OwnedFd> = Vec::new();
    for p in &opts.cgroup_procs {
        cg_fds.push(open_fd(p, libc::O_WRONLY)?);
    }
    let cgroup_procs: Vec<RawFd> = cg_fds.iter().map(|f| f.as_raw_fd()).collect();
    let lock = clone_lock();
    let (stdio_plan, pty_master, _console) = prepare_stdio(stdio)?;
    let (status_r, status_w) = pipe()?;
    let args = ExecArgs {
        status_w: status_w.as_raw_fd(),
        namespaces: &namespaces,
        pidns: pidns.as_raw_fd(),
        cgroup_procs: &cgroup_procs,
        stdio: &stdio_plan,
        proc: &proc,
        fd_limit: fd_limit(),
    };
    let helper = raw_clone(0)?;
    if helper == 0 {
        child::exec_main(&args);
    }
    tracing::debug!(helper, "exec intermediate cloned");
    drop((status_w, stdio_plan, ns_fds, cg_fds, pidns, lock));
    let command = process.args.first().cloned().unwrap_or_default();
    // Every record until EOF (the intermediate exits, the payload's copy closes on exec):
    // the payload's pid and the first failure, in whatever order they were written.
    let mut payload: Option<i32> = None;
    let mut failure: Option<Msg> = None;
    loop {
        match read_msg(&status_r) {
            Ok(None) => break,
            Ok(Some(m)) if m.tag == MSG_PID => payload = Some(m.index as i32),
            Ok(Some(m)) => {
                failure.get_or_insert(m);
            }
            Err(e) => {
                if let Some(p) = payload {
                    kill_and_reap(p);
                }
                kill_and_reap(helper);
                return Err(e);
            }
        }
    }
    reap(helper);
    match (payload, failure) {
        (Some(pid), None) => {
            tracing::debug!(pid, "exec process started");
            Ok(Started {
                pid,
                pty_master,
                status: Mutex::new(None),
            })
        }
        (payload, Some(m)) => {
            if let Some(p) = payload {
                reap(p);
            }
            if m.tag == MSG_EXEC {
                return Err(exec_error(m.errno, &command));
            }
            let what = if m.stage == Stage::CgroupJoin as u32 {
                opts.cgroup_procs
                    .get(m.index as usize)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            } else if m.stage == Stage::Setns as u32 {
                EXEC_NAMESPACES
                    .get(m.index as usize)
                    .map_or("pid", |n| n.0)
                    .to_string()
            } else {
                command
            };
            Err(setup_error(m, &[], &what))
        }
        (None, None) => Err(RuntimeError::ChildDied {
            pid: helper,
            phase: "exec setup",
        }),
    }
}
