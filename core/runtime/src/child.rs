//! Code that runs in the cloned child, between `clone` and `execve`.
//!
//! # What this code relies on
//! The caller may be multi-threaded (the engine, `cargo test`), so after `clone` only the
//! calling thread exists in the child and any lock another thread held (malloc arenas,
//! stdio, glibc's thread list) stays held forever. Therefore this module:
//! - never allocates and never panics (no indexing that can fail, no formatting): every
//!   string, pointer array, mask and mount list was prepared in the parent ([`crate::plan`]);
//! - only calls thin libc system-call wrappers (`mount`, `openat`, `dup2`, `prctl`...) or
//!   `libc::syscall` directly — in particular `setresuid`/`setresgid`/`setgroups` go through
//!   the raw system call, because glibc's wrappers would try to broadcast the change to
//!   threads that do not exist in the child;
//! - forks the exec'd payload with a raw `clone` too (glibc's `fork` runs atfork handlers);
//! - reports failures as fixed-size records on a CLOEXEC pipe and leaves with `_exit`.
//!
//! # Seccomp
//! The filter is compiled in the parent; the child only calls `seccomp(2)` with it. With
//! `no_new_privs` it is installed last, right before `execve` (the filter then also
//! constrains nothing of our setup). Without `no_new_privs` the kernel requires
//! CAP_SYS_ADMIN to install a filter, so, as runc does, it is installed *before* the
//! identity change drops capabilities: the profile must then allow the setup calls that
//! follow (`prctl`, `setgroups`, `setresgid`, `setresuid`, `capset`, `rt_sigaction`,
//! `rt_sigprocmask`, `umask`, `execve`, and for `--init` `clone`, `wait4`, `kill`,
//! `rt_sigtimedwait`, `close_range`), which Docker's and berth's default profiles do.
//!
//! # /proc/<pid>/exe (CVE-2019-5736)
//! Until `execve`, a container or exec child is a copy of the engine: `/proc/<pid>/exe`
//! is the host's berth binary. A container process that could open it could later
//! reopen it for writing through `/proc/self/fd/N` once no berth process runs it any more
//! (while one runs it, the kernel answers ETXTBSY). Defences:
//! - nothing long-lived is a copy of the engine: with `--init`, PID 1 is the static
//!   `berth-init` program exec'd from a sealed memfd (`crate::init`), so its
//!   `/proc/1/exe` is an anonymous, unmodifiable file, not the host binary;
//! - every child makes itself non-dumpable first thing (`PR_SET_DUMPABLE 0`; `execve`
//!   makes the payload dumpable again, `berth-init` clears it again). Opening
//!   `/proc/<pid>/exe` needs ptrace read access: the caller must hold every capability
//!   the target has, and for a non-dumpable target also CAP_SYS_PTRACE. While a child
//!   still has all capabilities the first rule already refuses a container process; in
//!   the short window after it dropped to the container's set (between `capset` and
//!   `execve`) only the dumpable flag keeps a container root without CAP_SYS_PTRACE out;
//! - an `exec` child joins the cgroup and *all* namespaces (mount namespace included)
//!   while still in the engine's pid namespace, where the container cannot see it, and
//!   only then forks (CLONE_PARENT) the process that appears in the container's pid
//!   namespace: a container process never sees a berth copy that is outside its mounts.
//!
//! Not covered: a container given CAP_SYS_PTRACE passes the dumpable check in that window
//! between `capset` and `execve` (microseconds, once per start or exec), and a
//! `--privileged` one can attach to an exec child during its whole setup. Closing it
//! would mean re-executing every child from a sealed copy of the engine before it enters
//! the container, as runc does, at the cost of an 18 MB copy per start; like Docker,
//! berth treats CAP_SYS_PTRACE as trusting the host.

use std::{ffi::CStr, os::fd::AsRawFd};

use libc::{c_char, c_int, c_ulong};

use crate::{
    init::InitPlan,
    plan::{Create, Op, ProcPlan, StdioPlan},
    protocol::{ExecSearch, Msg, Stage, MSG_ERROR, MSG_PID, MSG_READY},
};

/// Everything the container's first process reads (all prepared in the parent).
pub(crate) struct ChildArgs<'a> {
    pub status_w: c_int,
    pub go_r: c_int,
    /// The engine's end of the go pipe: closed first thing, so the engine's death (its
    /// copy closing) is EOF on `go_r` and the waiting process leaves instead of blocking
    /// forever with the engine's inherited descriptors (locks) open.
    pub go_w: c_int,
    pub netns: Option<c_int>,
    pub lo_up: bool,
    pub rootfs: &'a CStr,
    pub ops: &'a [Op],
    pub readonly_root: bool,
    pub hostname: &'a CStr,
    /// `--init`: exec `berth-init` (which forks the command) instead of the command.
    pub init: Option<&'a InitPlan>,
    pub stdio: &'a StdioPlan,
    pub proc: &'a ProcPlan,
    pub fd_limit: c_int,
    /// `(/proc/sys/... path, value)`: namespaced sysctls, written through the host's
    /// `/proc` before the rootfs is set up (the kernel resolves them in the writer's
    /// namespaces; the container's `/proc/sys` may be read-only later).
    pub sysctls: &'a [(std::ffi::CString, std::ffi::CString)],
    /// Descriptors below this one (≥ 3) stay open across exec (`--preserve-fds`).
    pub first_cloexec: c_int,
}

/// Everything an `exec`'d process reads.
pub(crate) struct ExecArgs<'a> {
    pub status_w: c_int,
    /// (fd, CLONE_NEW* flag), mount namespace last.
    pub namespaces: &'a [(c_int, c_int)],
    /// The container's pid namespace (joined last, for the forked payload).
    pub pidns: c_int,
    pub cgroup_procs: &'a [c_int],
    pub stdio: &'a StdioPlan,
    pub proc: &'a ProcPlan,
    pub fd_limit: c_int,
}

fn errno() -> i32 {
    nix::errno::Errno::last_raw()
}

fn send(fd: c_int, msg: Msg) {
    let b = msg.to_bytes();
    // SAFETY: writes 16 bytes from a stack buffer; a short or failed write only loses the report.
    unsafe {
        libc::write(fd, b.as_ptr().cast(), b.len());
    }
}

/// Set (in the parent, before `clone`) for processes nobody reads the status pipe of once
/// they were started from another process (`CreateOptions::go_fifo`): their late failures
/// then also go to their stderr, the only place the caller can see them.
pub(crate) static REPORT_TO_STDERR: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// `berth-runtime: <what>: errno <n>` on fd 2, without allocating.
fn report_stderr(what: &str, err: i32) {
    if !REPORT_TO_STDERR.load(std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let mut buf = [0u8; 160];
    let mut n = 0;
    let mut put = |b: &[u8], n: &mut usize| {
        for &c in b {
            if let Some(slot) = buf.get_mut(*n) {
                *slot = c;
                *n += 1;
            }
        }
    };
    put(b"berth-runtime: container process: ", &mut n);
    put(what.as_bytes(), &mut n);
    put(b": errno ", &mut n);
    let mut digits = [0u8; 12];
    let mut d = 0;
    let mut v = err.max(0) as u32;
    loop {
        if let Some(slot) = digits.get_mut(d) {
            *slot = b'0' + (v % 10) as u8;
        }
        d += 1;
        v /= 10;
        if v == 0 || d >= digits.len() {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        if let Some(&c) = digits.get(d) {
            put(&[c], &mut n);
        }
    }
    put(b"\n", &mut n);
    // SAFETY: writes from a stack buffer to fd 2; a failed write only loses the report.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n.min(buf.len()));
    }
}

fn fail(fd: c_int, stage: Stage, index: u32, err: i32) -> ! {
    report_stderr(
        crate::protocol::STAGES
            .get(stage as usize)
            .copied()
            .unwrap_or("setup"),
        err,
    );
    send(
        fd,
        Msg {
            tag: MSG_ERROR,
            stage: stage as u32,
            index,
            errno: err,
        },
    );
    // SAFETY: _exit is async-signal-safe and never returns.
    unsafe { libc::_exit(1) }
}

/// `/proc/self/fd/<fd>` into a stack buffer (NUL-terminated).
fn fd_path(fd: c_int, buf: &mut [u8; 32]) -> *const c_char {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    let mut i = 0;
    for &b in PREFIX {
        if let Some(slot) = buf.get_mut(i) {
            *slot = b;
        }
        i += 1;
    }
    let mut digits = [0u8; 12];
    let mut n = fd.max(0) as u32;
    let mut d = 0;
    loop {
        if let Some(slot) = digits.get_mut(d) {
            *slot = b'0' + (n % 10) as u8;
        }
        d += 1;
        n /= 10;
        if n == 0 || d >= digits.len() {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        if let (Some(slot), Some(&v)) = (buf.get_mut(i), digits.get(d)) {
            *slot = v;
        }
        i += 1;
    }
    if let Some(slot) = buf.get_mut(i) {
        *slot = 0;
    }
    buf.as_ptr().cast()
}

/// The kernel's `struct open_how` (libc's is non-exhaustive).
#[repr(C)]
pub(crate) struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

impl OpenHow {
    /// `flags | O_CLOEXEC`, resolved inside the root, magic links refused.
    pub(crate) fn in_root(flags: c_int) -> OpenHow {
        OpenHow {
            flags: (flags | libc::O_CLOEXEC) as u64,
            mode: 0,
            resolve: libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS,
        }
    }
}

/// The kernel's `struct statfs` (libc hides `f_flags`).
#[repr(C)]
struct StatFs {
    f_type: libc::c_long,
    f_bsize: libc::c_long,
    f_blocks: libc::c_ulong,
    f_bfree: libc::c_ulong,
    f_bavail: libc::c_ulong,
    f_files: libc::c_ulong,
    f_ffree: libc::c_ulong,
    f_fsid: [c_int; 2],
    f_namelen: libc::c_long,
    f_frsize: libc::c_long,
    f_flags: libc::c_long,
    f_spare: [libc::c_long; 4],
}

/// openat2 with RESOLVE_IN_ROOT: `..` and symlinks never leave `root`.
fn open_in(root: c_int, rel: &CStr, flags: c_int) -> Result<c_int, i32> {
    let how = OpenHow::in_root(flags);
    // SAFETY: `rel` is NUL-terminated, `how` lives on the stack for the call.
    let r = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            rel.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as c_int)
    }
}

fn close(fd: c_int) {
    // SAFETY: closing a descriptor this code opened.
    unsafe {
        libc::close(fd);
    }
}

/// Creates the missing components of a destination, each inside the root.
fn create_chain(
    root: c_int,
    chain: &[(std::ffi::CString, std::ffi::CString)],
    last: Create,
) -> Result<(), i32> {
    let n = chain.len();
    for (i, (parent, name)) in chain.iter().enumerate() {
        let pfd = open_in(root, parent, libc::O_PATH | libc::O_DIRECTORY)?;
        let is_last = i + 1 == n;
        // SAFETY: *at calls relative to a directory descriptor we own, with NUL-terminated names.
        let r = unsafe {
            if is_last && last == Create::File {
                let f = libc::openat(
                    pfd,
                    name.as_ptr(),
                    libc::O_CREAT
                        | libc::O_EXCL
                        | libc::O_WRONLY
                        | libc::O_NOFOLLOW
                        | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                );
                if f >= 0 {
                    libc::close(f);
                    0
                } else {
                    -1
                }
            } else {
                libc::mkdirat(pfd, name.as_ptr(), 0o755)
            }
        };
        let e = errno();
        close(pfd);
        if r < 0 && e != libc::EEXIST {
            return Err(e);
        }
    }
    Ok(())
}

fn open_target(
    root: c_int,
    target: &CStr,
    chain: &[(std::ffi::CString, std::ffi::CString)],
    create: Create,
) -> Result<c_int, i32> {
    match open_in(root, target, libc::O_PATH) {
        Err(libc::ENOENT) if create != Create::Nothing => {
            create_chain(root, chain, create)?;
            open_in(root, target, libc::O_PATH)
        }
        r => r,
    }
}

fn mount(
    src: *const c_char,
    target: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_char,
) -> Result<(), i32> {
    // SAFETY: every pointer is null or a NUL-terminated string that outlives the call.
    let r = unsafe { libc::mount(src, target, fstype, flags, data.cast()) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

fn opt_ptr(c: &Option<std::ffi::CString>) -> *const c_char {
    c.as_ref().map_or(std::ptr::null(), |c| c.as_ptr())
}

/// Whether `fd` is on a procfs (`PROC_SUPER_MAGIC`).
fn on_procfs(fd: c_int) -> bool {
    // SAFETY: StatFs is plain integers; all-zero is a valid value.
    let mut st: StatFs = unsafe { std::mem::zeroed() };
    // SAFETY: the raw fstatfs system call fills the kernel's struct statfs we own.
    if unsafe { libc::syscall(libc::SYS_fstatfs, fd, &mut st as *mut StatFs) } < 0 {
        return false;
    }
    st.f_type == 0x9fa0
}

/// Flags that a bind remount must keep (they may be locked).
fn locked_flags(fd: c_int) -> c_ulong {
    // SAFETY: StatFs is plain integers; all-zero is a valid value.
    let mut st: StatFs = unsafe { std::mem::zeroed() };
    // SAFETY: the raw fstatfs system call fills the kernel's struct statfs we own.
    if unsafe { libc::syscall(libc::SYS_fstatfs, fd, &mut st as *mut StatFs) } < 0 {
        return 0;
    }
    let f = st.f_flags as c_ulong;
    let mut out = 0;
    for (st_flag, ms) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag as c_ulong != 0 {
            out |= ms;
        }
    }
    out
}

/// Bind-remounts the mount on top of `rel` read-only.
fn remount_ro(root: c_int, rel: &CStr) -> Result<(), i32> {
    let fd = open_in(root, rel, libc::O_PATH)?;
    let mut buf = [0u8; 32];
    let p = fd_path(fd, &mut buf);
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(fd);
    let r = mount(
        std::ptr::null(),
        p,
        std::ptr::null(),
        flags,
        std::ptr::null(),
    );
    close(fd);
    r
}

fn run_op(root: c_int, op: &Op) -> Result<(), i32> {
    let mut buf = [0u8; 32];
    match op {
        Op::Mount {
            source,
            target,
            fstype,
            flags,
            data,
            create,
            chain,
            readonly,
            not_on_proc,
        } => {
            let fd = open_target(root, target, chain, *create)?;
            if *not_on_proc && on_procfs(fd) {
                close(fd);
                return Err(crate::plan::ERR_ON_PROC);
            }
            let r = mount(
                opt_ptr(source),
                fd_path(fd, &mut buf),
                opt_ptr(fstype),
                *flags,
                opt_ptr(data),
            );
            close(fd);
            r?;
            if *readonly {
                remount_ro(root, target)?;
            }
            Ok(())
        }
        Op::Mknod {
            dir,
            name,
            mode,
            dev,
            owner,
        } => {
            let d = open_in(root, dir, libc::O_PATH | libc::O_DIRECTORY)?;
            // SAFETY: mknodat relative to a directory descriptor we own.
            let r = unsafe { libc::mknodat(d, name.as_ptr(), *mode, *dev) };
            let mut e = errno();
            let mut failed = r < 0 && e != libc::EEXIST;
            if !failed && r == 0 && *owner != (0, 0) {
                // SAFETY: fchownat on the node just created, relative to `d`, not
                // following a symlink.
                let c = unsafe {
                    libc::fchownat(
                        d,
                        name.as_ptr(),
                        owner.0,
                        owner.1,
                        libc::AT_SYMLINK_NOFOLLOW,
                    )
                };
                if c < 0 {
                    e = errno();
                    failed = true;
                }
            }
            close(d);
            if failed {
                return Err(e);
            }
            Ok(())
        }
        Op::Symlink { dir, name, target } => {
            let d = open_in(root, dir, libc::O_PATH | libc::O_DIRECTORY)?;
            // SAFETY: symlinkat relative to a directory descriptor we own.
            let r = unsafe { libc::symlinkat(target.as_ptr(), d, name.as_ptr()) };
            let e = errno();
            close(d);
            if r < 0 && e != libc::EEXIST {
                return Err(e);
            }
            Ok(())
        }
        Op::Mask { target } => {
            let fd = match open_in(root, target, libc::O_PATH) {
                Ok(fd) => fd,
                Err(libc::ENOENT) | Err(libc::ENOTDIR) => return Ok(()),
                Err(e) => return Err(e),
            };
            // SAFETY: fstat of an O_PATH descriptor into a zeroed stack struct.
            let mut st: libc::stat = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let r = unsafe { libc::fstat(fd, &mut st) };
            if r < 0 {
                let e = errno();
                close(fd);
                return Err(e);
            }
            let p = fd_path(fd, &mut buf);
            let r = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                mount(
                    c"tmpfs".as_ptr(),
                    p,
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY,
                    c"size=0k,mode=755".as_ptr(),
                )
            } else {
                mount(
                    c"/dev/null".as_ptr(),
                    p,
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            close(fd);
            r
        }
        Op::ReadOnly { target } => {
            let fd = match open_in(root, target, libc::O_PATH | libc::O_NOFOLLOW) {
                Ok(fd) => fd,
                Err(libc::ENOENT) | Err(libc::ENOTDIR) => return Ok(()),
                Err(e) => return Err(e),
            };
            let p = fd_path(fd, &mut buf);
            let r = mount(
                p,
                p,
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            );
            close(fd);
            r?;
            remount_ro(root, target)
        }
        Op::MkdirAll { target, chain } => {
            let fd = open_target(root, target, chain, Create::Dir)?;
            close(fd);
            Ok(())
        }
    }
}

/// Marks every descriptor ≥ 3 close-on-exec (the engine's descriptors never reach the container).
fn cloexec_all(first: c_int, limit: c_int) {
    // SAFETY: close_range with CLOSE_RANGE_CLOEXEC only sets flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first.max(3) as u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r < 0 {
        for fd in first.max(3)..limit {
            // SAFETY: F_SETFD on a possibly closed descriptor is harmless.
            unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

fn setup_stdio(s: &StdioPlan) -> Result<(), i32> {
    if s.ctty {
        // SAFETY: setsid/ioctl on our own session and the pty slave descriptor.
        unsafe {
            if libc::setsid() < 0 {
                return Err(errno());
            }
            if let Some(fd) = s.fds[0] {
                if libc::ioctl(fd, libc::TIOCSCTTY, 0) < 0 {
                    return Err(errno());
                }
            }
        }
    } else {
        // SAFETY: a new session so the container does not share the engine's terminal job control.
        unsafe {
            libc::setsid();
        }
    }
    for (target, src) in s.fds.iter().enumerate() {
        if let Some(src) = src {
            // SAFETY: dup2 of a descriptor ≥ 3 onto 0..2 (the copy is not CLOEXEC).
            if unsafe { libc::dup2(*src, target as c_int) } < 0 {
                return Err(errno());
            }
        }
    }
    Ok(())
}

fn reset_signals(unblock: bool) {
    // SAFETY: sigaction/sigprocmask with stack structs; failures for KILL/STOP are ignored.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut sa.sa_mask);
        for sig in 1..65 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &sa, std::ptr::null_mut());
            }
        }
        if unblock {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        }
    }
}

fn load_seccomp(status: c_int, p: &ProcPlan) {
    if let Some(prog) = &p.seccomp {
        if let Err(e) = prog.install() {
            fail(status, Stage::Seccomp, 0, e);
        }
    }
}

/// `PR_SET_DUMPABLE 0`: `/proc/<pid>/exe` (the engine binary) and ptrace become
/// inaccessible to processes without CAP_SYS_PTRACE, even with the same uid.
fn non_dumpable(status: c_int) {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } < 0 {
        fail(status, Stage::Dumpable, 0, errno());
    }
}

/// Groups, uid/gid and capabilities; keeps the capabilities across setuid. Installs the
/// seccomp filter first (no `no_new_privs`) or last (see the module docs).
fn apply_identity(status: c_int, p: &ProcPlan) {
    if !p.no_new_privs {
        load_seccomp(status, p);
    }
    // SAFETY: prctl/syscall with integer arguments and stack buffers only.
    unsafe {
        libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        for i in 0..64u32 {
            let bit = 1u64 << i;
            if p.supported & bit != 0
                && p.caps & bit == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, i as c_ulong, 0, 0, 0) < 0
            {
                fail(status, Stage::Bounding, i, errno());
            }
        }
        if libc::syscall(libc::SYS_setgroups, p.groups.len(), p.groups.as_ptr()) < 0 {
            fail(status, Stage::Identity, 0, errno());
        }
        if libc::syscall(libc::SYS_setresgid, p.gid, p.gid, p.gid) < 0 {
            fail(status, Stage::Identity, 1, errno());
        }
        if libc::syscall(libc::SYS_setresuid, p.uid, p.uid, p.uid) < 0 {
            fail(status, Stage::Identity, 2, errno());
        }
        let hdr = CapHeader {
            version: 0x2008_0522,
            pid: 0,
        };
        let data = [
            CapData {
                effective: p.effective as u32,
                permitted: p.permitted as u32,
                inheritable: p.inheritable as u32,
            },
            CapData {
                effective: (p.effective >> 32) as u32,
                permitted: (p.permitted >> 32) as u32,
                inheritable: (p.inheritable >> 32) as u32,
            },
        ];
        if libc::syscall(libc::SYS_capset, &hdr as *const CapHeader, data.as_ptr()) < 0 {
            fail(status, Stage::Capset, 0, errno());
        }
        libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
        // Ambient capabilities: cleared, then the requested ones raised (each must be
        // permitted and inheritable). EINVAL on kernels without them is fine when none
        // are requested.
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as c_ulong,
            0,
            0,
            0,
        );
        for i in 0..64u32 {
            if p.ambient & (1u64 << i) != 0
                && libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_RAISE as c_ulong,
                    i as c_ulong,
                    0,
                    0,
                ) < 0
            {
                fail(status, Stage::Capset, i + 1, errno());
            }
        }
        if p.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            fail(status, Stage::NoNewPrivs, 0, errno());
        }
    }
    if p.no_new_privs {
        load_seccomp(status, p);
    }
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: c_int,
}

#[repr(C)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Tries every PATH candidate like `execvp`; reports the errno and exits 127/126.
fn exec(status: c_int, p: &ProcPlan) -> ! {
    // SAFETY: umask is a plain syscall.
    unsafe {
        libc::umask(p.umask);
    }
    for (i, (resource, soft, hard)) in p.rlimits.iter().enumerate() {
        let lim = libc::rlimit {
            rlim_cur: *soft,
            rlim_max: *hard,
        };
        // SAFETY: setrlimit with a stack struct; the resource number was checked by the parent.
        if unsafe { libc::setrlimit(*resource as _, &lim) } < 0 {
            fail(status, Stage::Rlimit, i as u32, errno());
        }
    }
    let mut search = ExecSearch::default();
    for c in &p.candidates {
        // SAFETY: NUL-terminated path and NULL-terminated pointer arrays into CStrings that
        // the parent built and that live (copied) in this process.
        unsafe {
            libc::execve(c.as_ptr(), p.argv_ptrs.as_ptr(), p.envp_ptrs.as_ptr());
        }
        if !search.failed(errno()) {
            break;
        }
    }
    let (msg, code) = search.report();
    report_stderr("executing the command", msg.errno);
    send(status, msg);
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(code) }
}

/// Raw fork with extra clone flags (`CLONE_PARENT`).
fn raw_fork_flags(flags: c_int) -> libc::pid_t {
    // SAFETY: clone without CLONE_VM and without a new stack behaves like fork.
    unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        ) as libc::pid_t
    }
}

fn lo_up() -> Result<(), i32> {
    // SAFETY: a datagram socket and SIOC[GS]IFFLAGS on a zeroed ifreq naming "lo".
    unsafe {
        let s = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if s < 0 {
            return Err(errno());
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as c_char;
        ifr.ifr_name[1] = b'o' as c_char;
        if libc::ioctl(s, libc::SIOCGIFFLAGS, &mut ifr) < 0 {
            let e = errno();
            close(s);
            return Err(e);
        }
        ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        let r = libc::ioctl(s, libc::SIOCSIFFLAGS, &ifr);
        let e = errno();
        close(s);
        if r < 0 {
            return Err(e);
        }
    }
    Ok(())
}

/// PID 1 with `--init`: execs the sealed `berth-init` memfd, which forks the command,
/// forwards signals and reaps (see `init/main.rs`). The status pipe stays open across
/// this exec: `berth-init` reports the command's exec failure on it.
fn exec_init(status: c_int, init: &InitPlan, p: &ProcPlan) -> ! {
    // SAFETY: fcntl on our status descriptor; execveat with the memfd, an empty path and
    // NULL-terminated arrays built by the parent.
    unsafe {
        if libc::fcntl(status, libc::F_SETFD, 0) < 0 {
            fail(status, Stage::InitExec, 0, errno());
        }
        libc::execveat(
            init.fd.as_raw_fd(),
            c"".as_ptr(),
            init.argv_ptrs.as_ptr().cast(),
            p.envp_ptrs.as_ptr().cast(),
            libc::AT_EMPTY_PATH,
        );
    }
    fail(status, Stage::InitExec, 0, errno())
}

/// Writes `data` into the existing file `path` (one `write`).
fn write_file(path: &CStr, data: &[u8]) -> Result<(), i32> {
    // SAFETY: open of a NUL-terminated path.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(errno());
    }
    // SAFETY: write from a slice we borrow, to a descriptor we own.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    let e = errno();
    close(fd);
    if n < 0 {
        Err(e)
    } else {
        Ok(())
    }
}

/// The container's first process. Never returns.
pub(crate) fn container_main(a: &ChildArgs<'_>) -> ! {
    close(a.go_w);
    let st = a.status_w;
    non_dumpable(st);
    cloexec_all(a.first_cloexec, a.fd_limit);
    // SAFETY: umask is a plain syscall; setup creates nodes with exact modes.
    unsafe {
        libc::umask(0);
    }
    if let Err(e) = setup_stdio(a.stdio) {
        fail(st, Stage::Stdio, 0, e);
    }
    if let Some(fd) = a.netns {
        // SAFETY: setns with a namespace descriptor opened by the parent.
        if unsafe { libc::setns(fd, libc::CLONE_NEWNET) } < 0 {
            fail(st, Stage::JoinNetns, 0, errno());
        }
    }
    if a.lo_up {
        if let Err(e) = lo_up() {
            fail(st, Stage::Loopback, 0, e);
        }
    }
    // SAFETY: hostname in our own UTS namespace (an empty one keeps the inherited name).
    if !a.hostname.is_empty()
        && unsafe { libc::sethostname(a.hostname.as_ptr(), a.hostname.to_bytes().len()) } < 0
    {
        fail(st, Stage::Hostname, 0, errno());
    }
    for (i, (path, value)) in a.sysctls.iter().enumerate() {
        if let Err(e) = write_file(path, value.to_bytes()) {
            fail(st, Stage::Sysctl, i as u32, e);
        }
    }
    // Nothing we mount from here on propagates back to the host.
    if let Err(e) = mount(
        std::ptr::null(),
        c"/".as_ptr(),
        std::ptr::null(),
        libc::MS_REC | libc::MS_SLAVE,
        std::ptr::null(),
    ) {
        fail(st, Stage::Propagation, 0, e);
    }
    if let Err(e) = mount(
        a.rootfs.as_ptr(),
        a.rootfs.as_ptr(),
        std::ptr::null(),
        libc::MS_BIND | libc::MS_REC,
        std::ptr::null(),
    ) {
        fail(st, Stage::BindRootfs, 0, e);
    }
    // SAFETY: open of a NUL-terminated path.
    let root = unsafe {
        libc::open(
            a.rootfs.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if root < 0 {
        fail(st, Stage::OpenRootfs, 0, errno());
    }
    for (i, op) in a.ops.iter().enumerate() {
        if let Err(e) = run_op(root, op) {
            fail(st, Stage::Op, i as u32, e);
        }
    }
    // SAFETY: fchdir/pivot_root/umount2/chdir with our root descriptor and literal paths.
    unsafe {
        if libc::fchdir(root) < 0 {
            fail(st, Stage::Pivot, 0, errno());
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) < 0 {
            fail(st, Stage::Pivot, 1, errno());
        }
        if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) < 0 {
            fail(st, Stage::Pivot, 2, errno());
        }
        if libc::chdir(c"/".as_ptr()) < 0 {
            fail(st, Stage::Pivot, 3, errno());
        }
        libc::close(root);
    }
    if a.readonly_root {
        // SAFETY: open of a literal path.
        let fd = unsafe { libc::open(c"/".as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        let flags = libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | if fd >= 0 { locked_flags(fd) } else { 0 };
        close(fd);
        if let Err(e) = mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ) {
            fail(st, Stage::ReadonlyRoot, 0, e);
        }
    }
    // SAFETY: chdir with a NUL-terminated path.
    if unsafe { libc::chdir(a.proc.cwd.as_ptr()) } < 0 {
        fail(st, Stage::Cwd, 0, errno());
    }
    send(
        st,
        Msg {
            tag: MSG_READY,
            ..Default::default()
        },
    );
    let mut b = [0u8; 1];
    // SAFETY: read of one byte into a stack buffer.
    let n = unsafe { libc::read(a.go_r, b.as_mut_ptr().cast(), 1) };
    if n != 1 {
        // The engine went away or aborted: leave quietly.
        // SAFETY: _exit never returns.
        unsafe { libc::_exit(1) }
    }
    // The engine has placed us in our cgroup: its root becomes our cgroup namespace root.
    // SAFETY: unshare with a flag constant.
    if unsafe { libc::unshare(libc::CLONE_NEWCGROUP) } < 0 {
        fail(st, Stage::UnshareCgroup, 0, errno());
    }
    apply_identity(st, a.proc);
    if let Some(init) = a.init {
        exec_init(st, init, a.proc);
    }
    reset_signals(true);
    exec(st, a.proc)
}

/// The intermediate of an `exec`, still in the engine's pid namespace: becomes
/// non-dumpable, joins the cgroup and every namespace, then forks the payload into the
/// container's pid namespace as a sibling (CLONE_PARENT: the engine reaps it), reports its
/// pid and exits. Never returns.
pub(crate) fn exec_main(a: &ExecArgs<'_>) -> ! {
    let st = a.status_w;
    non_dumpable(st);
    cloexec_all(3, a.fd_limit);
    for (i, fd) in a.cgroup_procs.iter().enumerate() {
        // SAFETY: write of a literal to a cgroup.procs descriptor ("0" = this process).
        if unsafe { libc::write(*fd, c"0".as_ptr().cast(), 1) } < 0 {
            fail(st, Stage::CgroupJoin, i as u32, errno());
        }
    }
    for (i, (fd, flag)) in a.namespaces.iter().enumerate() {
        // SAFETY: setns with namespace descriptors opened by the parent.
        if unsafe { libc::setns(*fd, *flag) } < 0 {
            fail(st, Stage::Setns, i as u32, errno());
        }
    }
    // SAFETY: setns of our pid_for_children with a descriptor opened by the parent.
    if unsafe { libc::setns(a.pidns, libc::CLONE_NEWPID) } < 0 {
        fail(st, Stage::Setns, a.namespaces.len() as u32, errno());
    }
    let pid = raw_fork_flags(libc::CLONE_PARENT);
    if pid < 0 {
        fail(st, Stage::ExecFork, 0, errno());
    }
    if pid == 0 {
        exec_payload(a);
    }
    send(
        st,
        Msg {
            tag: MSG_PID,
            index: pid as u32,
            ..Default::default()
        },
    );
    // SAFETY: _exit never returns.
    unsafe { libc::_exit(0) }
}

/// The exec'd process, inside every namespace of the container (non-dumpable, inherited).
fn exec_payload(a: &ExecArgs<'_>) -> ! {
    let st = a.status_w;
    if let Err(e) = setup_stdio(a.stdio) {
        fail(st, Stage::Stdio, 0, e);
    }
    // SAFETY: chdir with a NUL-terminated path.
    if unsafe { libc::chdir(a.proc.cwd.as_ptr()) } < 0 {
        fail(st, Stage::Cwd, 0, errno());
    }
    apply_identity(st, a.proc);
    reset_signals(true);
    exec(st, a.proc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_path_formats() {
        let mut b = [0u8; 32];
        for (fd, want) in [
            (0, "/proc/self/fd/0"),
            (7, "/proc/self/fd/7"),
            (1234, "/proc/self/fd/1234"),
        ] {
            let p = fd_path(fd, &mut b);
            // SAFETY: fd_path NUL-terminates the buffer.
            let s = unsafe { CStr::from_ptr(p) };
            assert_eq!(s.to_str().unwrap(), want);
        }
    }
}
