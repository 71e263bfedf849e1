//! Shared fixtures: a busybox rootfs bind-mounted on a per-test `bt-rt-` directory.
#![allow(dead_code)]

use std::{
    ffi::CString,
    io::Read,
    os::{fd::OwnedFd, unix::ffi::OsStrExt},
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use berth_runtime::{ContainerSpec, ExitStatus, NetworkMode, ProcessSpec, Stdio};

static N: AtomicU32 = AtomicU32::new(0);

/// Skips (returns true) when not root or busybox is missing; in CI both are required.
pub fn skip() -> bool {
    !(berth_testkit::require_root()
        && berth_testkit::require_path("/bin/busybox", "apt-get install busybox-static"))
}

/// A busybox root filesystem in a temp dir, bind-mounted on `/tmp/bt-rt-<pid>-<n>`.
pub struct Rootfs {
    pub dir: tempfile::TempDir,
    pub mnt: PathBuf,
    mounted: bool,
}

pub fn busybox_tree(root: &Path) {
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp", "root", "home"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let out = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
    )
    .unwrap();
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/notexec"), "just data\n").unwrap();
}

/// Unmounts the `bt-rt-<pid>-<n>` mounts of test processes that died without dropping
/// their `Rootfs` (killed by a timeout, say), once per test process.
fn reclaim_dead_runs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for point in info.lines().filter_map(|l| l.split(' ').nth(4)) {
            let Some(rest) = point.strip_prefix("/tmp/bt-rt-") else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            if Path::new(&format!("/proc/{pid}")).exists() {
                continue;
            }
            let Ok(c) = CString::new(point) else { continue };
            // SAFETY: unmount of a NUL-terminated path; a dead test run's own mount.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            let _ = std::fs::remove_dir(point);
        }
    });
}

impl Rootfs {
    pub fn new() -> Rootfs {
        reclaim_dead_runs();
        let dir = tempfile::Builder::new()
            .prefix("bt-rt-src-")
            .tempdir()
            .unwrap();
        busybox_tree(dir.path());
        let mnt = PathBuf::from(format!(
            "/tmp/bt-rt-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&mnt).unwrap();
        let mut r = Rootfs {
            dir,
            mnt,
            mounted: false,
        };
        let src = CString::new(r.dir.path().as_os_str().as_bytes()).unwrap();
        let dst = CString::new(r.mnt.as_os_str().as_bytes()).unwrap();
        // SAFETY: bind mount of two NUL-terminated paths we own.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND,
                std::ptr::null(),
            )
        };
        assert_eq!(
            rc,
            0,
            "bind mount {:?}: {}",
            r.mnt,
            std::io::Error::last_os_error()
        );
        r.mounted = true;
        r
    }

    pub fn spec(&self, args: &[&str]) -> ContainerSpec {
        spec_at(&self.mnt, args)
    }
}

/// A spec for the busybox root mounted at `mnt` (see [`Rootfs`]).
pub fn spec_at(mnt: &Path, args: &[&str]) -> ContainerSpec {
    {
        ContainerSpec {
            id: format!("bt-{}", mnt.file_name().unwrap().to_string_lossy()),
            rootfs: mnt.to_path_buf(),
            hostname: "bt-host".into(),
            process: ProcessSpec {
                args: args.iter().map(|s| s.to_string()).collect(),
                env: vec![],
                cwd: "/".into(),
                user: String::new(),
                tty: false,
            },
            mounts: vec![],
            etc_files: vec![],
            network: NetworkMode::New,
            readonly_rootfs: false,
            privileged: false,
            cap_add: vec![],
            cap_drop: vec![],
            no_new_privileges: false,
            init: false,
            masked_paths: None,
            readonly_paths: None,
            seccomp: None,
            devices: vec![],
            device_rules: vec![],
        }
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if self.mounted {
            let dst = CString::new(self.mnt.as_os_str().as_bytes()).unwrap();
            // SAFETY: unmount of our own bind mount.
            unsafe { libc::umount2(dst.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.mnt);
    }
}

/// No mount of this test (its mount dir) is left in the host namespace.
pub fn assert_no_mount_leak(mnt: &Path) {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let m = mnt.to_string_lossy();
    assert!(
        !info.lines().any(|l| l.contains(&*m)),
        "mounts left under {m}:\n{info}"
    );
}

pub fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap()
}

pub fn read_all(fd: OwnedFd) -> String {
    let mut s = String::new();
    std::fs::File::from(fd).read_to_string(&mut s).unwrap();
    s
}

/// Creates, starts and waits; returns (status, stdout, stderr).
pub fn run(spec: &ContainerSpec) -> (ExitStatus, String, String) {
    let (out_r, out_w) = pipe();
    let (err_r, err_w) = pipe();
    let c = berth_runtime::create(
        spec,
        Stdio::Fds {
            stdin: None,
            stdout: out_w,
            stderr: err_w,
        },
    )
    .unwrap();
    let s = c.start().unwrap();
    let st = s.wait().unwrap();
    (st, read_all(out_r), read_all(err_r))
}
