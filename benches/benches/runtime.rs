//! Runtime hot path: create + start + wait of `/bin/true` in a busybox rootfs with new
//! pid, mount, uts, ipc, net and cgroup namespaces (`NetworkMode::New`), the full rootfs
//! setup (proc, dev, sys, masked/read-only paths, pivot_root) and capability drop.
//! Needs root and busybox-static; skipped with a message otherwise.
//! Compare with `hyperfine -N 'unshare -p -m -u -i -n -f true'`.
//! Registered as a bench of berth-runtime (core/runtime/Cargo.toml).

use std::{ffi::CString, os::unix::ffi::OsStrExt, path::Path, process::Command, time::Duration};

use berth_runtime::{ContainerSpec, NetworkMode, ProcessSpec, Stdio};
use criterion::{criterion_group, criterion_main, Criterion};

fn busybox_tree(root: &Path) -> std::io::Result<()> {
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    let out = Command::new("/bin/busybox").arg("--list").output()?;
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(applet))?;
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n")
}

/// The bench's own bind mount, removed on drop.
struct Mnt(std::path::PathBuf);
impl Drop for Mnt {
    fn drop(&mut self) {
        if let Ok(c) = CString::new(self.0.as_os_str().as_bytes()) {
            // SAFETY: unmount of our own mount point.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn create_start_wait(c: &mut Criterion) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/bin/busybox").exists() {
        eprintln!("runtime bench skipped: needs root and /bin/busybox");
        return;
    }
    let src = tempfile::Builder::new()
        .prefix("bt-rt-bench-src-")
        .tempdir()
        .expect("tempdir");
    busybox_tree(src.path()).expect("busybox rootfs");
    let mnt = Mnt(std::env::temp_dir().join(format!("bt-rt-bench-{}", std::process::id())));
    std::fs::create_dir_all(&mnt.0).expect("mkdir");
    let (s, d) = (
        CString::new(src.path().as_os_str().as_bytes()).expect("path"),
        CString::new(mnt.0.as_os_str().as_bytes()).expect("path"),
    );
    // SAFETY: bind mount of two NUL-terminated paths.
    let rc = unsafe {
        libc::mount(
            s.as_ptr(),
            d.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "bind mount: {}", std::io::Error::last_os_error());
    let spec = ContainerSpec {
        id: "bench".into(),
        rootfs: mnt.0.clone(),
        hostname: "bench".into(),
        process: ProcessSpec {
            args: vec!["/bin/true".into()],
            cwd: "/".into(),
            ..Default::default()
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
    };
    let mut g = c.benchmark_group("runtime");
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("create+start+wait /bin/true (new ns)", |b| {
        b.iter(|| {
            let c = berth_runtime::create(&spec, Stdio::Inherit).expect("create");
            let s = c.start().expect("start");
            assert_eq!(s.wait().expect("wait").code(), 0);
        })
    });
    g.finish();
}

criterion_group!(benches, create_start_wait);
criterion_main!(benches);
