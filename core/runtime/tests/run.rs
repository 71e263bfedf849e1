//! Integration tests (root): real containers in a busybox rootfs, each on its own
//! `bt-rt-<pid>-<n>` bind mount that is removed (and checked for leaks) at the end.

mod common;

use std::{
    io::{BufRead, BufReader},
    os::fd::AsRawFd,
};

use berth_runtime::{ExecOptions, MountSpec, NetworkMode, ProcessSpec, RuntimeError, Stdio};
use common::*;

/// Drops the rootfs and checks that no mount of this test is left on the host.
fn finish(r: Rootfs) {
    let mnt = r.mnt.clone();
    drop(r);
    assert_no_mount_leak(&mnt);
}

fn sh(r: &Rootfs, script: &str) -> berth_runtime::ContainerSpec {
    r.spec(&["sh", "-c", script])
}

#[test]
fn pid1_hostname_and_file_lands_in_rootfs() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let (st, out, err) = run(&sh(&r, "echo $$; hostname; echo hi > /tmp/x"));
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out, "1\nbt-host\n");
    assert_eq!(
        std::fs::read_to_string(r.dir.path().join("tmp/x")).unwrap(),
        "hi\n"
    );
    finish(r);
}

#[test]
fn only_own_processes_are_visible() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let (st, out, err) = run(&sh(
        &r,
        "sleep 30 & ls /proc | grep '^[0-9]*$'; ps -o pid | tail -n +2; kill %1",
    ));
    assert_eq!(st.code(), 0, "stderr: {err}");
    let pids: Vec<u32> = out.split_whitespace().map(|p| p.parse().unwrap()).collect();
    assert!(pids.contains(&1), "{out}");
    assert!(
        pids.iter().all(|&p| p < 20),
        "host processes visible: {out}"
    );
    finish(r);
}

#[test]
fn new_network_has_only_lo_and_it_is_up() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let (st, out, err) = run(&sh(
        &r,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; ls /sys/class/net; cat /sys/class/net/lo/flags",
    ));
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out, "lo\nlo\n0x9\n");
    finish(r);
}

#[test]
fn host_and_joined_networks() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let mut spec = sh(&r, "readlink /proc/self/ns/net; ls /sys/class/net | wc -l");
    spec.network = NetworkMode::Host;
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    let host_ns = std::fs::read_link("/proc/self/ns/net").unwrap();
    let host_ifs = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert_eq!(out, format!("{}\n{host_ifs}\n", host_ns.display()));

    // Join the network namespace of another container.
    let a = berth_runtime::create(&r.spec(&["sleep", "30"]), Stdio::Inherit).unwrap();
    let a = a.start().unwrap();
    let ns_path = format!("/proc/{}/ns/net", a.pid());
    let a_ns = std::fs::read_link(&ns_path).unwrap();
    let mut spec = sh(&r, "readlink /proc/self/ns/net");
    spec.network = NetworkMode::Join(ns_path.into());
    let (st, out, err) = run(&spec);
    // SAFETY: killing our own child.
    unsafe { libc::kill(a.pid(), libc::SIGKILL) };
    assert_eq!(a.wait().unwrap().code(), 137);
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out.trim(), a_ns.to_string_lossy());
    finish(r);
}

#[test]
fn masked_and_readonly_paths() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    // /proc/kcore does not exist on every kernel; /proc/timer_list (a file with content)
    // and /proc/acpi or /sys/firmware (directories) are in runc's list too.
    let (st, out, err) = run(&sh(
        &r,
        "wc -c < /proc/timer_list; ls /sys/firmware | wc -l; \
         grep -E ' /(proc/sys|proc/timer_list|sys/firmware) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1 | sort; \
         (echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo writable || echo refused",
    ));
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(
        out,
        "0\n0\n/proc/sys ro\n/proc/timer_list rw\n/sys/firmware ro\nrefused\n"
    );
    // Explicit lists replace the defaults.
    let mut spec = sh(&r, "wc -c < /etc/group; wc -c < /proc/timer_list | grep -vxc 0; (echo > /tmp/t) 2>/dev/null || echo tmp-ro");
    spec.masked_paths = Some(vec!["/etc/group".into()]);
    spec.readonly_paths = Some(vec!["/tmp".into()]);
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out, "0\n1\ntmp-ro\n");
    // Privileged: nothing masked, no read-only /proc/sys.
    let mut spec = sh(
        &r,
        "grep -c ' /proc/sys ' /proc/mounts; wc -c < /proc/timer_list | grep -vxc 0",
    );
    spec.privileged = true;
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out, "0\n1\n");
    finish(r);
}

fn cap_lines(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

#[test]
fn capabilities_default_drop_all_and_add() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let (st, out, err) = run(&sh(&r, "grep Cap /proc/self/status"));
    assert_eq!(st.code(), 0, "stderr: {err}");
    let dflt = "00000000a80425fb";
    for (k, v) in cap_lines(&out) {
        let want = if k == "CapInh" || k == "CapAmb" {
            "0000000000000000"
        } else {
            dflt
        };
        assert_eq!(v, want, "{k} in\n{out}");
    }
    let mut spec = sh(&r, "grep Cap /proc/self/status");
    spec.cap_drop = vec!["ALL".into()];
    let (st, out, _) = run(&spec);
    assert_eq!(st.code(), 0);
    assert!(
        cap_lines(&out).iter().all(|(_, v)| v == "0000000000000000"),
        "{out}"
    );
    let mut spec = sh(&r, "grep CapBnd /proc/self/status");
    spec.cap_add = vec!["net_admin".into()];
    spec.cap_drop = vec!["CAP_CHOWN".into()];
    let (_, out, _) = run(&spec);
    // + NET_ADMIN (bit 12) - CHOWN (bit 0)
    assert_eq!(
        out.split_whitespace().nth(1),
        Some(&*format!("{:016x}", (0xa80425fbu64 | 1 << 12) & !1))
    );
    finish(r);
}

#[test]
fn users_resolve_and_apply() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    for user in ["nobody", "65534:65534", "nobody:nogroup"] {
        let mut spec = sh(
            &r,
            "id -u; id -g; id -G; echo $HOME; grep CapEff /proc/self/status",
        );
        spec.process.user = user.into();
        let (st, out, err) = run(&spec);
        assert_eq!(st.code(), 0, "stderr: {err}");
        // nobody's passwd entry (uid 65534) gives HOME=/home in all three forms.
        assert_eq!(
            out, "65534\n65534\n65534\n/home\nCapEff:\t0000000000000000\n",
            "user {user}"
        );
    }
    let mut spec = sh(&r, "true");
    spec.process.user = "nosuchuser".into();
    let e = berth_runtime::create(&spec, Stdio::Inherit).unwrap_err();
    assert!(matches!(e, RuntimeError::User { .. }), "{e}");
    finish(r);
}

#[test]
fn exit_codes_propagate() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    assert_eq!(run(&sh(&r, "exit 0")).0.code(), 0);
    assert_eq!(run(&sh(&r, "exit 42")).0.code(), 42);
    // PID 1 ignores its own SIGKILL; under --init the shell is not PID 1.
    let mut spec = sh(&r, "kill -9 $$");
    spec.init = true;
    let st = run(&spec).0;
    assert_eq!((st.code(), st.signal()), (137, None));
    // Killed from outside without init.
    let c = berth_runtime::create(&r.spec(&["sleep", "30"]), Stdio::Inherit).unwrap();
    let s = c.start().unwrap();
    // SAFETY: killing our own child.
    unsafe { libc::kill(s.pid(), libc::SIGKILL) };
    let st = s.wait().unwrap();
    assert_eq!((st.code(), st.signal()), (137, Some(9)));
    assert_eq!(s.wait().unwrap().code(), 137, "wait is idempotent");
    finish(r);
}

#[test]
fn exec_failures_are_127_and_126() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    for (args, code) in [
        (vec!["/nonexistent"], 127),
        (vec!["nosuchcommand", "x"], 127),
        (vec!["/etc/notexec"], 126),
        (vec!["/etc"], 126),
    ] {
        for init in [false, true] {
            let mut spec = r.spec(&args);
            spec.init = init;
            let c = berth_runtime::create(&spec, Stdio::Inherit).unwrap();
            let pid = c.pid();
            let e = c.start().unwrap_err();
            assert_eq!(e.exit_code(), Some(code), "{args:?} init={init}: {e}");
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "not reaped"
            );
        }
    }
    finish(r);
}

#[test]
fn init_reaps_orphaned_zombies_and_forwards_signals() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    // The orphan is re-parented to PID 1 (init) and becomes a zombie when it exits unless
    // init reaps it. Bounded polling (max ~20 s) instead of a timed assertion.
    let mut spec = sh(
        &r,
        "sh -c 'sleep 0.2 & echo $! > /tmp/orphan'; p=$(cat /tmp/orphan); i=0; \
         while [ -e /proc/$p ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; \
         cat /proc/1/cmdline | tr '\\0' ' '; echo; \
         if [ -e /proc/$p ]; then echo zombie; else echo reaped; fi",
    );
    spec.init = true;
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        !lines[0].starts_with("sh"),
        "PID 1 must be the init, got {out}"
    );
    assert_eq!(lines[1], "reaped", "{out}");

    // SIGTERM from the host reaches the payload through init.
    let mut spec = sh(
        &r,
        "trap 'exit 7' TERM; echo ready; while true; do sleep 0.05; done",
    );
    spec.init = true;
    let (out_r, out_w) = pipe();
    let (_err_r, err_w) = pipe();
    let c = berth_runtime::create(
        &spec,
        Stdio::Fds {
            stdin: None,
            stdout: out_w,
            stderr: err_w,
        },
    )
    .unwrap();
    let s = c.start().unwrap();
    let mut line = String::new();
    BufReader::new(std::fs::File::from(out_r))
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line, "ready\n");
    // SAFETY: signalling our own child.
    unsafe { libc::kill(s.pid(), libc::SIGTERM) };
    assert_eq!(s.wait().unwrap().code(), 7);
    finish(r);
}

#[test]
fn exec_joins_the_container() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let c = berth_runtime::create(&r.spec(&["sleep", "30"]), Stdio::Inherit).unwrap();
    let s = c.start().unwrap();
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let p = ProcessSpec {
        args: vec!["sh".into(), "-c".into(), "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; readlink /proc/self/ns/net; grep CapEff /proc/self/status; wc -c < /proc/timer_list".into()],
        cwd: "/tmp".into(),
        ..Default::default()
    };
    let e = berth_runtime::exec(
        s.pid(),
        &p,
        Stdio::Fds {
            stdin: None,
            stdout: out_w,
            stderr: err_w,
        },
        &ExecOptions::default(),
    )
    .unwrap();
    assert_ne!(e.pid(), s.pid());
    let st = e.wait().unwrap();
    let out = read_all(out_r);
    assert_eq!(st.code(), 0, "stderr: {}", read_all(err_r));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bt-host");
    assert_eq!(lines[1].trim(), "sleep 30");
    assert_eq!(
        std::fs::read_link(format!("/proc/{}/ns/net", s.pid()))
            .unwrap()
            .to_string_lossy(),
        lines[2]
    );
    assert_eq!(lines[3], "CapEff:\t00000000a80425fb");
    assert_eq!(lines[4].trim(), "0");
    // exec failures map like start's.
    let p = ProcessSpec {
        args: vec!["nosuch".into()],
        ..Default::default()
    };
    let err =
        berth_runtime::exec(s.pid(), &p, Stdio::Inherit, &ExecOptions::default()).unwrap_err();
    assert_eq!(err.exit_code(), Some(127));
    // SAFETY: killing our own child.
    unsafe { libc::kill(s.pid(), libc::SIGKILL) };
    s.wait().unwrap();
    finish(r);
}

#[test]
fn mounts_etc_files_readonly_rootfs_and_workdir() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let host = tempfile::Builder::new()
        .prefix("bt-rt-vol-")
        .tempdir()
        .unwrap();
    std::fs::write(host.path().join("f"), "from host\n").unwrap();
    let rw = tempfile::Builder::new()
        .prefix("bt-rt-rw-")
        .tempdir()
        .unwrap();
    let hosts = host.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 bt-etc\n").unwrap();
    let mut spec = sh(
        &r,
        "cat /data/f; (touch /data/g) 2>/dev/null && echo ro-broken || echo ro-ok; echo w > /rw/out; \
         cat /etc/hosts; (touch /newfile) 2>/dev/null && echo root-writable || echo root-ro; \
         echo t > /scratch/t && echo tmpfs-ok; pwd; grep ' /scratch ' /proc/mounts | cut -d' ' -f3",
    );
    spec.mounts = vec![
        MountSpec::Bind {
            source: host.path().into(),
            destination: "/data".into(),
            read_only: true,
        },
        MountSpec::Bind {
            source: rw.path().into(),
            destination: "/mnt/deep/rw".into(),
            read_only: false,
        },
        MountSpec::Tmpfs {
            destination: "/scratch".into(),
            options: "size=1m,mode=1777".into(),
        },
    ];
    spec.mounts.push(MountSpec::Bind {
        source: rw.path().into(),
        destination: "/rw".into(),
        read_only: false,
    });
    spec.etc_files = vec![(hosts.clone(), "/etc/hosts".into())];
    spec.readonly_rootfs = true;
    spec.process.cwd = "/work/dir".into();
    // The working directory must exist before / becomes read-only: created in setup.
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(
        out,
        "from host\nro-ok\n127.0.0.1 bt-etc\nroot-ro\ntmpfs-ok\n/work/dir\ntmpfs\n"
    );
    assert_eq!(
        std::fs::read_to_string(rw.path().join("out")).unwrap(),
        "w\n"
    );
    assert!(r.dir.path().join("work/dir").is_dir());
    assert!(r.dir.path().join("mnt/deep/rw").is_dir());
    finish(r);
}

#[test]
fn mount_destinations_never_escape_the_root() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let name = format!("bt-rt-escape-{}", std::process::id());
    // /evil -> / (absolute) and /up -> ../../../.. : both must resolve inside the rootfs.
    std::os::unix::fs::symlink("/", r.dir.path().join("evil")).unwrap();
    std::os::unix::fs::symlink("../../../../../..", r.dir.path().join("up")).unwrap();
    let vol = tempfile::Builder::new()
        .prefix("bt-rt-vol-")
        .tempdir()
        .unwrap();
    let mut spec = sh(&r, "ls -d /$0-a /$0-b");
    spec.process.args.push(name.clone());
    spec.mounts = vec![
        MountSpec::Bind {
            source: vol.path().into(),
            destination: format!("/evil/{name}-a"),
            read_only: false,
        },
        MountSpec::Bind {
            source: vol.path().into(),
            destination: format!("/up/{name}-b"),
            read_only: false,
        },
    ];
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out, format!("/{name}-a\n/{name}-b\n"));
    assert!(
        !std::path::Path::new(&format!("/{name}-a")).exists(),
        "escaped to the host"
    );
    assert!(
        !std::path::Path::new(&format!("/{name}-b")).exists(),
        "escaped to the host"
    );
    assert!(r.dir.path().join(format!("{name}-a")).is_dir());
    finish(r);
}

#[test]
fn environment_cgroupns_nnp_and_no_fd_leak() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    // A non-CLOEXEC descriptor of the "engine" must not reach the container.
    let leak = std::fs::File::open("/etc/hostname").unwrap();
    // SAFETY: dup of an open descriptor; the copy (no CLOEXEC) is closed below.
    let dup = unsafe { libc::dup(leak.as_raw_fd()) };
    assert!(dup > 2);
    let mut spec = sh(&r, "env | sort; ls /proc/self/fd | tr '\\n' ' '; echo; cat /proc/self/cgroup | grep -vc ':/$'; grep NoNewPrivs /proc/self/status");
    spec.process.env = vec!["FOO=bar".into()];
    spec.no_new_privileges = true;
    let (st, out, err) = run(&spec);
    // SAFETY: closing the descriptor we duplicated.
    unsafe { libc::close(dup) };
    assert_eq!(st.code(), 0, "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    for want in [
        "FOO=bar",
        "HOME=/root",
        "HOSTNAME=bt-host",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ] {
        assert!(lines.contains(&want), "{want} missing in {out}");
    }
    let fds_line = lines.iter().find(|l| l.starts_with("0 1 2")).unwrap();
    let fds: Vec<u32> = fds_line
        .split_whitespace()
        .map(|f| f.parse().unwrap())
        .collect();
    assert!(
        fds.iter().all(|&f| f <= 3),
        "leaked descriptors: {fds_line}"
    );
    let n = lines.len();
    assert_eq!(lines[n - 2], "0", "cgroup paths not rooted at /: {out}");
    assert_eq!(lines[n - 1], "NoNewPrivs:\t1");
    finish(r);
}

#[test]
fn pty_gives_a_controlling_terminal() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let mut spec = sh(
        &r,
        "test -t 0 && test -t 1 && echo isatty; echo $TERM; ls /dev/console",
    );
    spec.process.tty = true;
    let mut c = berth_runtime::create(&spec, Stdio::Pty).unwrap();
    let master = c.pty_master().expect("pty master");
    let s = c.start().unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match nix::unistd::read(master.as_raw_fd(), &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => panic!("read pty: {e}"),
        }
    }
    assert_eq!(s.wait().unwrap().code(), 0);
    let out = String::from_utf8_lossy(&out).replace('\r', "");
    assert_eq!(out, "isatty\nxterm\n/dev/console\n");
    finish(r);
}

#[test]
fn create_then_abort_leaves_nothing() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let c = berth_runtime::create(&r.spec(&["true"]), Stdio::Inherit).unwrap();
    let pid = c.pid();
    // The engine's step between create and start: the netns is reachable by path.
    assert!(std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok());
    c.abort();
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    // A bad mount source fails in the parent with the path in the message.
    let mut spec = r.spec(&["true"]);
    spec.mounts = vec![MountSpec::Bind {
        source: "/nonexistent-bt".into(),
        destination: "/x".into(),
        read_only: false,
    }];
    let e = berth_runtime::create(&spec, Stdio::Inherit).unwrap_err();
    assert!(e.to_string().contains("/nonexistent-bt"), "{e}");
    finish(r);
}

/// A cgroup v1 `pids` group of this test, removed on drop.
struct TestCgroup(std::path::PathBuf);
impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn cgroup_namespace_is_rooted_at_the_group_set_before_start() {
    if skip() {
        return;
    }
    let base = std::path::Path::new("/sys/fs/cgroup/pids");
    if !berth_testkit::require_path(base.join("cgroup.procs"), "a cgroup v1 pids hierarchy") {
        return;
    }
    let r = Rootfs::new();
    let name = format!("bt-rt-cg-{}", std::process::id());
    let cg = TestCgroup(base.join(&name));
    std::fs::create_dir(&cg.0).unwrap();
    let (out_r, out_w) = pipe();
    let (_err_r, err_w) = pipe();
    let c = berth_runtime::create(
        &sh(
            &r,
            "grep :pids: /proc/self/cgroup; echo ready; exec sleep 30",
        ),
        Stdio::Fds {
            stdin: None,
            stdout: out_w,
            stderr: err_w,
        },
    )
    .unwrap();
    // The engine's step at the sync point.
    std::fs::write(cg.0.join("cgroup.procs"), c.pid().to_string()).unwrap();
    let s = c.start().unwrap();
    let mut reader = BufReader::new(std::fs::File::from(out_r));
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line.trim_end().rsplit(':').next(), Some("/"), "{line}");
    line.clear();
    reader.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let host_view = std::fs::read_to_string(format!("/proc/{}/cgroup", s.pid())).unwrap();
    assert!(host_view.contains(&format!(":pids:/{name}")), "{host_view}");

    // exec joins the group (cgroup.procs) and the cgroup namespace.
    let (o_r, o_w) = pipe();
    let (_e_r, e_w) = pipe();
    let p = ProcessSpec {
        args: vec!["grep".into(), ":pids:".into(), "/proc/self/cgroup".into()],
        ..Default::default()
    };
    let opts = ExecOptions {
        cgroup_procs: vec![cg.0.join("cgroup.procs")],
        ..Default::default()
    };
    let e = berth_runtime::exec(
        s.pid(),
        &p,
        Stdio::Fds {
            stdin: None,
            stdout: o_w,
            stderr: e_w,
        },
        &opts,
    )
    .unwrap();
    assert_eq!(e.wait().unwrap().code(), 0);
    let out = read_all(o_r);
    assert_eq!(out.trim_end().rsplit(':').next(), Some("/"), "{out}");
    // SAFETY: killing our own child.
    unsafe { libc::kill(s.pid(), libc::SIGKILL) };
    s.wait().unwrap();
    drop(cg);
    finish(r);
}

/// `--device`: the node is created in the container with its type, numbers, mode and
/// owner, below a directory that did not exist (c 1:3 stands in for a host device).
#[test]
fn device_nodes_are_created_with_mode_and_owner() {
    if skip() {
        return;
    }
    let r = Rootfs::new();
    let mut spec = sh(
        &r,
        "stat -c '%F %t:%T %a %u:%g' /dev/bt/null2; echo x > /dev/bt/null2 && echo written",
    );
    spec.devices.push(berth_runtime::DeviceNode {
        path: "/dev/bt/null2".into(),
        kind: berth_runtime::DeviceType::Char,
        major: 1,
        minor: 3,
        mode: 0o620,
        uid: 0,
        gid: 5,
    });
    let (st, out, err) = run(&spec);
    assert_eq!(st.code(), 0, "stderr: {err}");
    assert_eq!(out, "character special file 1:3 620 0:5\nwritten\n");
    finish(r);
}
