//! `berth-init`: PID 1 of a `berth run --init` container.
//!
//! It forks the container's command, forwards every signal it receives to it, reaps every
//! process that ends up re-parented to it, and exits with the command's status (128 + the
//! signal number when a signal killed it), as tini or catatonit do.
//!
//! Why a program of its own: PID 1 lives as long as the container. Were it a copy of the
//! engine (a fork that never execs), `/proc/1/exe` would be the host's berth binary for
//! that whole time, and a container process able to open it could later write to it
//! (CVE-2019-5736). The runtime instead execs this program from a sealed memfd (see
//! `src/init.rs`): `/proc/1/exe` is then an anonymous, write-sealed in-memory copy that
//! leads nowhere on the host. Being static, it needs nothing from the container's root.
//!
//! Usage (built by the runtime, not by people): `berth-init [-t] -s FD -- COMMAND [ARG...]`
//! with the container's environment; `-s` is the status pipe (see `src/protocol.rs`), `-t`
//! hands the terminal's foreground to the command. Compiled by `build.rs` with plain
//! `rustc` (no crates), statically linked against glibc.

#![no_main]

#[path = "../src/protocol.rs"]
#[allow(dead_code)]
mod protocol;

use std::ffi::{c_char, c_int, c_long, CStr, CString};

use protocol::{exec_candidates, ExecSearch, Msg, Stage, MSG_ERROR};

/// glibc's `sigset_t` (1024 bits) and `siginfo_t` (128 bytes), only passed by pointer.
#[repr(C)]
struct SigSet([u64; 16]);
#[repr(C)]
struct SigInfo([u64; 16]);

const SIG_SETMASK: c_int = 2;
const SIG_DFL: usize = 0;
const SIGKILL: c_int = 9;
const SIGSTOP: c_int = 19;
const SIGCHLD: c_int = 17;
const WNOHANG: c_int = 1;
const F_SETFD: c_int = 2;
const FD_CLOEXEC: c_int = 1;
const PR_SET_DUMPABLE: c_int = 4;
const SYS_CLOSE_RANGE: c_long = 436;

extern "C" {
    fn sigfillset(set: *mut SigSet) -> c_int;
    fn sigemptyset(set: *mut SigSet) -> c_int;
    fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    fn sigwaitinfo(set: *const SigSet, info: *mut SigInfo) -> c_int;
    fn signal(sig: c_int, handler: usize) -> usize;
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn kill(pid: c_int, sig: c_int) -> c_int;
    fn getpid() -> c_int;
    fn setpgid(pid: c_int, pgid: c_int) -> c_int;
    fn tcsetpgrp(fd: c_int, pgrp: c_int) -> c_int;
    fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char)
        -> c_int;
    fn umask(mask: u32) -> u32;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    fn prctl(option: c_int, ...) -> c_int;
    fn syscall(n: c_long, ...) -> c_long;
    fn write(fd: c_int, buf: *const u8, n: usize) -> isize;
    fn close(fd: c_int) -> c_int;
    fn _exit(code: c_int) -> !;
    fn __errno_location() -> *mut c_int;
}

fn errno() -> c_int {
    // SAFETY: glibc's per-thread errno slot, always valid.
    unsafe { *__errno_location() }
}

fn send(fd: c_int, msg: Msg) {
    let b = msg.to_bytes();
    // SAFETY: writes 16 bytes from a stack buffer; a failed write only loses the report.
    unsafe {
        write(fd, b.as_ptr(), b.len());
    }
}

struct Args {
    status: c_int,
    tty: bool,
    argv: Vec<CString>,
}

fn parse(argv: &[&CStr]) -> Option<Args> {
    let mut status = None;
    let mut tty = false;
    let mut it = argv.iter().skip(1);
    while let Some(a) = it.next() {
        match a.to_bytes() {
            b"-t" => tty = true,
            b"-s" => status = it.next()?.to_str().ok()?.parse().ok(),
            b"--" => break,
            _ => return None,
        }
    }
    let argv: Vec<CString> = it.map(|a| CString::from(*a)).collect();
    if argv.is_empty() {
        return None;
    }
    Some(Args {
        status: status?,
        tty,
        argv,
    })
}

fn null_terminated(v: &[CString]) -> Vec<*const c_char> {
    v.iter()
        .map(|c| c.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// The forked command: default signal dispositions, nothing blocked, then the same
/// `execvp`-style search the runtime does without `--init`.
fn exec_command(a: &Args, envp: *const *const c_char, env: &[String]) -> ! {
    // SAFETY: plain system calls on this process; failures for KILL/STOP are expected.
    unsafe {
        if a.tty {
            setpgid(0, 0);
            tcsetpgrp(0, getpid());
        }
        for sig in 1..65 {
            if sig != SIGKILL && sig != SIGSTOP {
                signal(sig, SIG_DFL);
            }
        }
        let mut none = SigSet([0; 16]);
        sigemptyset(&mut none);
        sigprocmask(SIG_SETMASK, &none, std::ptr::null_mut());
        umask(0o022);
    }
    let argv = null_terminated(&a.argv);
    let arg0 = a.argv[0].to_string_lossy();
    let mut search = ExecSearch::default();
    for c in exec_candidates(&arg0, env) {
        let Ok(path) = CString::new(c) else { continue };
        // SAFETY: NUL-terminated path and NULL-terminated arrays that outlive the call.
        unsafe {
            execve(path.as_ptr(), argv.as_ptr(), envp);
        }
        if !search.failed(errno()) {
            break;
        }
    }
    let (msg, code) = search.report();
    send(a.status, msg);
    // SAFETY: _exit never returns.
    unsafe { _exit(code) }
}

/// Exit status of a `waitpid` status word, shell style.
fn exit_code(st: c_int) -> Option<c_int> {
    let sig = st & 0x7f;
    if sig == 0 {
        Some((st >> 8) & 0xff)
    } else if sig != 0x7f {
        Some(128 + sig)
    } else {
        None
    }
}

/// # Safety
/// Called by the C runtime with the process's `argc`/`argv`/`envp`.
#[no_mangle]
pub unsafe extern "C" fn main(
    argc: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: the kernel passes `argc` valid NUL-terminated strings and a NULL-terminated
    // environment; both live for the whole process.
    let (args, env) = unsafe {
        let args: Vec<&CStr> = (0..argc as usize)
            .map(|i| CStr::from_ptr(*argv.add(i)))
            .collect();
        let mut env = Vec::new();
        let mut p = envp;
        while !(*p).is_null() {
            env.push(CStr::from_ptr(*p).to_string_lossy().into_owned());
            p = p.add(1);
        }
        (args, env)
    };
    let Some(a) = parse(&args) else {
        eprintln!("usage: berth-init [-t] -s FD -- COMMAND [ARG...] (started by berth run --init)");
        return 2;
    };
    // SAFETY: prctl/fcntl/sigprocmask/fork on this process with valid arguments.
    let child = unsafe {
        // As the runtime's own children: no /proc/1/exe or ptrace for the container's root.
        prctl(
            PR_SET_DUMPABLE,
            0 as c_long,
            0 as c_long,
            0 as c_long,
            0 as c_long,
        );
        // The command's exec closes the status pipe: the engine's EOF means it ran.
        fcntl(a.status, F_SETFD, FD_CLOEXEC);
        let mut all = SigSet([0; 16]);
        sigfillset(&mut all);
        sigprocmask(SIG_SETMASK, &all, std::ptr::null_mut());
        fork()
    };
    if child < 0 {
        send(
            a.status,
            Msg {
                tag: MSG_ERROR,
                stage: Stage::InitFork as u32,
                index: 0,
                errno: errno(),
            },
        );
        return 1;
    }
    if child == 0 {
        exec_command(&a, envp, &env);
    }
    // SAFETY: closes every descriptor but stdio (the status pipe included); signal waiting
    // and reaping with stack buffers.
    unsafe {
        if syscall(
            SYS_CLOSE_RANGE,
            3 as c_long,
            c_long::from(u32::MAX),
            0 as c_long,
        ) < 0
        {
            for fd in 3..4096 {
                close(fd);
            }
        }
        let mut all = SigSet([0; 16]);
        sigfillset(&mut all);
        let mut code = 0;
        loop {
            let mut info = SigInfo([0; 16]);
            let sig = sigwaitinfo(&all, &mut info);
            if sig < 0 {
                continue;
            }
            if sig != SIGCHLD {
                kill(child, sig);
                continue;
            }
            loop {
                let mut st: c_int = 0;
                let pid = waitpid(-1, &mut st, WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == child {
                    if let Some(c) = exit_code(st) {
                        code = c;
                    }
                    _exit(code);
                }
            }
        }
    }
}
