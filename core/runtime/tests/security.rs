//! Integration tests (root) of the escape defences: the seccomp profile in created and
//! exec'd processes, descriptor hygiene, /proc masking for exec, and non-dumpable copies
//! of the engine (/proc/<pid>/exe, CVE-2019-5736).

mod common;

use std::{
    io::Read,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use berth_runtime::{ExecOptions, ProcessSpec, Started, Stdio};
use berth_seccomp::Profile;
use common::*;

const PROBE: &str = env!("CARGO_BIN_EXE_bt-syscall-probe");

fn finish(r: Rootfs) {
    let mnt = r.mnt.clone();
    drop(r);
    assert_no_mount_leak(&mnt);
}

/// Copies the probe and the shared libraries `ldd` lists for it into the rootfs.
fn install_probe(root: &Path) {
    std::fs::copy(PROBE, root.join("bin/bt-syscall-probe")).unwrap();
    let out = Command::new("ldd").arg(PROBE).output().unwrap();
    for lib in String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter(|t| t.starts_with('/'))
    {
        let dst = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(lib, &dst).unwrap();
    }
}

fn rootfs_with_probe() -> Rootfs {
    let r = Rootfs::new();
    install_probe(r.dir.path());
    r
}

/// `name=errno` lines of the probe → pairs.
fn probe_results(out: &str) -> Vec<(String, i64)> {
    out.lines()
        .filter_map(|l| l.split_once('='))
        .filter_map(|(k, v)| Some((k.to_string(), v.trim().parse().ok()?)))
        .collect()
}

fn result_of(out: &str, name: &str) -> i64 {
    probe_results(out)
        .into_iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("no {name}= in {out:?}"))
        .1
}

const ESCAPE_SCRIPT: &str = "mount -t tmpfs none /tmp 2>/dev/null; echo mount=$?; \
     unshare -U true 2>/dev/null; echo unshare_cmd=$?; \
     bt-syscall-probe reboot kexec_load init_module clone3 unshare_user vsock personality keyctl getpid; \
     (echo c > /proc/sysrq-trigger) 2>/dev/null; echo sysrq=$?; \
     echo kcore_bytes=$(head -c 16 /proc/kcore 2>/dev/null | wc -c)";

fn assert_confined(out: &str) {
    let eperm = i64::from(libc::EPERM);
    assert_ne!(result_of(out, "mount"), 0, "{out}");
    assert_ne!(result_of(out, "unshare_cmd"), 0, "{out}");
    for name in [
        "reboot",
        "kexec_load",
        "init_module",
        "unshare_user",
        "vsock",
        "personality",
        "keyctl",
    ] {
        assert_eq!(result_of(out, name), eperm, "{name}: {out}");
    }
    assert_eq!(result_of(out, "clone3"), i64::from(libc::ENOSYS), "{out}");
    assert_eq!(result_of(out, "getpid"), 0, "{out}");
    assert_ne!(result_of(out, "sysrq"), 0, "{out}");
    assert_eq!(result_of(out, "kcore_bytes"), 0, "{out}");
}

#[test]
fn default_profile_blocks_escape_calls_with_and_without_nnp() {
    if skip() {
        return;
    }
    let r = rootfs_with_probe();
    for nnp in [false, true] {
        let mut spec = r.spec(&["sh", "-c", ESCAPE_SCRIPT]);
        spec.seccomp = Some(Profile::default_profile());
        spec.no_new_privileges = nnp;
        let (st, out, err) = run(&spec);
        assert_eq!(st.code(), 0, "nnp={nnp} stderr: {err}");
        assert_confined(&out);
    }
    finish(r);
}

#[test]
fn unconfined_container_can_unshare_a_user_namespace() {
    if skip() {
        return;
    }
    let r = rootfs_with_probe();
    let (st, out, err) = run(&r.spec(&[
        "sh",
        "-c",
        "unshare -U true; echo unshare_cmd=$?; bt-syscall-probe unshare_user clone3",
    ]));
    assert_eq!(st.code(), 0, "stderr: {err}");
    // The same calls the default profile refuses reach the kernel without it.
    assert_eq!(result_of(&out, "unshare_cmd"), 0, "{out} {err}");
    assert_eq!(result_of(&out, "unshare_user"), 0, "{out}");
    assert_eq!(result_of(&out, "clone3"), i64::from(libc::EINVAL), "{out}");
    finish(r);
}

fn mkdir_eacces_profile() -> Profile {
    Profile::from_json(
        r#"{"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}"#,
    )
    .unwrap()
}

fn exec_in(pid: i32, args: &[&str], opts: &ExecOptions) -> (i32, String, String) {
    let (o_r, o_w) = pipe();
    let (e_r, e_w) = pipe();
    let p = ProcessSpec {
        args: args.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    let e = berth_runtime::exec(
        pid,
        &p,
        Stdio::Fds {
            stdin: None,
            stdout: o_w,
            stderr: e_w,
        },
        opts,
    )
    .unwrap();
    let code = e.wait().unwrap().code();
    (code, read_all(o_r), read_all(e_r))
}

/// A started container running `sleep 30`, and the read end of its stdout.
fn sleeper(r: &Rootfs, seccomp: Option<Profile>) -> Started {
    let (_o_r, o_w) = pipe();
    let (_e_r, e_w) = pipe();
    let mut spec = r.spec(&["sh", "-c", "exec sleep 30"]);
    spec.seccomp = seccomp;
    berth_runtime::create(
        &spec,
        Stdio::Fds {
            stdin: None,
            stdout: o_w,
            stderr: e_w,
        },
    )
    .unwrap()
    .start()
    .unwrap()
}

fn stop(s: Started) {
    // SAFETY: killing our own child.
    unsafe { libc::kill(s.pid(), libc::SIGKILL) };
    s.wait().unwrap();
}

#[test]
fn custom_profile_applies_to_the_container_and_to_exec() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let mut spec = r.spec(&["sh", "-c", "mkdir /tmp/bt-d; echo rc=$?"]);
    spec.seccomp = Some(mkdir_eacces_profile());
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out, "rc=1\n");
    assert!(err.contains("Permission denied"), "{err}");
    assert!(!r.dir.path().join("tmp/bt-d").exists());

    // exec gets its own filter: with the profile mkdir fails, without it it works.
    let s = sleeper(&r, Some(mkdir_eacces_profile()));
    let opts = ExecOptions {
        seccomp: Some(mkdir_eacces_profile()),
        ..Default::default()
    };
    let (code, _, err) = exec_in(s.pid(), &["mkdir", "/tmp/bt-e"], &opts);
    assert_ne!(code, 0);
    assert!(err.contains("Permission denied"), "{err}");
    let (code, _, err) = exec_in(s.pid(), &["mkdir", "/tmp/bt-e"], &ExecOptions::default());
    assert_eq!(code, 0, "{err}");
    assert!(r.dir.path().join("tmp/bt-e").is_dir());
    stop(s);
    finish(r);
}

#[test]
fn exec_gets_the_default_profile_and_the_proc_masks() {
    if skip() {
        return;
    }
    let r = rootfs_with_probe();
    let s = sleeper(&r, Some(Profile::default_profile()));
    let opts = ExecOptions {
        seccomp: Some(Profile::default_profile()),
        ..Default::default()
    };
    let (code, out, err) = exec_in(s.pid(), &["sh", "-c", ESCAPE_SCRIPT], &opts);
    assert_eq!(code, 0, "{err}");
    assert_confined(&out);
    // Masks hold for exec'd processes even without a profile (they are mounts of the
    // container's mount namespace, which exec joins).
    let (code, out, err) = exec_in(
        s.pid(),
        &[
            "sh",
            "-c",
            "(echo c > /proc/sysrq-trigger) 2>/dev/null; echo sysrq=$?; \
             echo kcore_bytes=$(head -c 16 /proc/kcore 2>/dev/null | wc -c); echo firmware=$(ls /sys/firmware | wc -l)",
        ],
        &ExecOptions::default(),
    );
    assert_eq!(code, 0, "{err}");
    assert_ne!(result_of(&out, "sysrq"), 0, "{out}");
    assert_eq!(result_of(&out, "kcore_bytes"), 0, "{out}");
    assert_eq!(result_of(&out, "firmware"), 0, "{out}");
    stop(s);
    finish(r);
}

/// A descriptor of the test process that is *not* close-on-exec.
struct LeakyFd(i32);

impl LeakyFd {
    fn open() -> LeakyFd {
        // SAFETY: open of a literal path without O_CLOEXEC, on purpose.
        let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        assert!(fd >= 3);
        LeakyFd(fd)
    }
}

impl Drop for LeakyFd {
    fn drop(&mut self) {
        // SAFETY: closing the descriptor this guard opened.
        unsafe { libc::close(self.0) };
    }
}

#[test]
fn only_stdio_descriptors_reach_created_and_exec_processes() {
    if skip() {
        return;
    }
    let leaky = LeakyFd::open();
    let r = Rootfs::new();
    // `ls` itself opens one descriptor (3) to read the directory.
    let (st, out, err) = run(&r.spec(&["ls", "/proc/self/fd"]));
    assert_eq!(st.code(), 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    let s = sleeper(&r, None);
    let (code, out, err) = exec_in(s.pid(), &["ls", "/proc/self/fd"], &ExecOptions::default());
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        ["0", "1", "2", "3"]
    );
    stop(s);
    drop(leaky);
    finish(r);
}

#[test]
fn init_pid1_is_not_dumpable_so_its_exe_is_hidden() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let mut spec = r.spec(&[
        "sh",
        "-c",
        "readlink /proc/1/exe; echo rc=$?; readlink /proc/self/exe",
    ]);
    spec.init = true;
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "{err}");
    // PID 1 is berth-init, non-dumpable: root in the container without CAP_SYS_PTRACE
    // cannot even look at its executable.
    assert_eq!(out, "rc=1\n/bin/busybox\n", "stderr: {err}");
    finish(r);
}

#[test]
fn init_pid1_runs_from_a_sealed_memfd_not_the_host_binary() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    // With CAP_SYS_PTRACE the container may open /proc/1/exe: it must be the sealed
    // in-memory berth-init, and writing to it must fail (the CVE-2019-5736 overwrite).
    let mut spec = r.spec(&[
        "sh",
        "-c",
        "readlink /proc/1/exe; tr '\\0' ' ' < /proc/1/cmdline; echo; \
         echo x >> /proc/1/exe && echo wrote || echo refused",
    ]);
    spec.init = true;
    spec.cap_add = vec!["CAP_SYS_PTRACE".into()];
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}\nstderr: {err}");
    assert!(lines[0].starts_with("/memfd:berth-init"), "{out}");
    assert!(
        lines[1].starts_with("berth-init -s ") && lines[1].contains(" -- sh -c readlink"),
        "{out}"
    );
    assert_eq!(lines[2], "refused", "{out}\nstderr: {err}");
    finish(r);
}

/// Pids of our children blocked writing to `fifo`.
fn children_writing_to(fifo: &Path) -> Vec<i32> {
    let me = std::process::id().to_string();
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the `(comm)`: state, ppid, ...
        let ppid = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().nth(1));
        if ppid != Some(me.as_str()) {
            continue;
        }
        let sc = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
        let mut f = sc.split_whitespace();
        if f.next() != Some(&libc::SYS_write.to_string()) {
            continue;
        }
        let Some(fd) = f
            .next()
            .and_then(|h| i64::from_str_radix(h.trim_start_matches("0x"), 16).ok())
        else {
            continue;
        };
        if std::fs::read_link(format!("/proc/{pid}/fd/{fd}"))
            .ok()
            .as_deref()
            == Some(fifo)
        {
            v.push(pid);
        }
    }
    v
}

#[test]
fn exec_child_is_invisible_to_the_container_until_it_joined_everything() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let s = sleeper(&r, None);

    // A full FIFO as "cgroup.procs": the exec intermediate blocks writing to it before it
    // joins any namespace, which gives a deterministic window to look at it.
    let dir = tempfile::Builder::new()
        .prefix("bt-fifo-")
        .tempdir()
        .unwrap();
    let fifo = dir.path().join("cgroup.procs");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: open of a NUL-terminated path; owned below.
    let raw = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    assert!(raw >= 0);
    // SAFETY: a fresh descriptor.
    let keep = unsafe { OwnedFd::from_raw_fd(raw) };
    let chunk = [b'x'; 4096];
    // SAFETY: non-blocking writes from a stack buffer until the pipe is full.
    while unsafe { libc::write(keep.as_raw_fd(), chunk.as_ptr().cast(), chunk.len()) } > 0 {}

    let pid = s.pid();
    let fifo2 = fifo.clone();
    let t = std::thread::spawn(move || {
        let opts = ExecOptions {
            cgroup_procs: vec![fifo2],
            ..Default::default()
        };
        exec_in(pid, &["true"], &opts)
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let helper = loop {
        if let Some(p) = children_writing_to(&fifo).into_iter().next() {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "the exec intermediate never blocked"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // The blocked copy of the engine is root with every capability and still in the
    // host's mount namespace: the container must not see it at all.
    let own_ns = std::fs::read_link("/proc/self/ns/mnt").unwrap();
    assert_eq!(
        std::fs::read_link(format!("/proc/{helper}/ns/mnt")).unwrap(),
        own_ns
    );
    let (code, out, err) = exec_in(
        s.pid(),
        &["sh", "-c", "ls /proc | grep -c '^[0-9]*$'"],
        &ExecOptions::default(),
    );
    // Unblock the intermediate whatever the outcome, so the thread can finish.
    let mut f = std::fs::File::from(keep);
    let mut sink = [0u8; 65536];
    let drain_deadline = Instant::now() + Duration::from_secs(20);
    let (code2, _, err2) = loop {
        let _ = f.read(&mut sink);
        if t.is_finished() {
            break t.join().unwrap();
        }
        assert!(Instant::now() < drain_deadline, "exec did not finish");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(code, 0, "{err}");
    // PID 1 (sleep), sh, ls and grep at most: the blocked intermediate is not among them.
    assert!(
        out.trim().parse::<u32>().unwrap() <= 4,
        "pids in the container: {out}"
    );
    assert_eq!(code2, 0, "{err2}");
    stop(s);
    finish(r);
}

#[test]
fn seccomp_compile_error_is_reported_before_clone() {
    if skip() {
        return;
    }
    // A profile that is valid JSON but cannot be compiled: the error names the entry.
    let r = Rootfs::new();
    let mut spec = r.spec(&["true"]);
    let mut p = Profile::default_profile();
    // 5000 distinct conditional rules exceed the kernel's 4096-instruction limit.
    let rules: Vec<String> = (0..5000)
        .map(|i| {
            format!(r#"{{"names":["write"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#)
        })
        .collect();
    let extra = Profile::from_json(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}"#,
        rules.join(",")
    ))
    .unwrap();
    p.syscalls.retain(|s| !s.all_names().any(|n| n == "write"));
    p.syscalls.extend(extra.syscalls);
    spec.seccomp = Some(p);
    let e = berth_runtime::create(&spec, Stdio::Inherit).unwrap_err();
    let m = e.to_string();
    assert!(m.contains("seccomp") && m.contains(&spec.id), "{m}");
    finish(r);
}
