//! Test harness: drives the staged `berth` binary (`cargo xtask test` sets BERTH_STAGE) in an
//! isolated root with its own bridge name, subnet, nft table and cgroup parent, and removes
//! everything on drop — also when the test fails.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct Env {
    pub name: String,
    pub root: PathBuf,
    pub config: PathBuf,
    pub bin: PathBuf,
    cgroup_parent: String,
    bridge: String,
    table: String,
}

pub fn stage() -> PathBuf {
    let s = std::env::var_os("BERTH_STAGE").map(PathBuf::from).unwrap_or_else(|| {
        // `cargo test` without xtask: use the debug stage if it exists.
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/stage/debug");
        assert!(
            p.join("bin/berth").exists(),
            "no staged berth: run the tests with `cargo xtask test` (it builds and stages berth and its plugins)"
        );
        p
    });
    s
}

/// A busybox rootfs tarball (static busybox from Debian's busybox-static).
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let rootfs = dir.join("bbroot");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::create_dir_all(rootfs.join("tmp")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .expect("busybox-static is installed (apt-get install busybox-static)");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" {
            let _ = std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet));
        }
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )
    .unwrap();
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
    let tar = dir.join("busybox.tar");
    let st = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    tar
}

impl Env {
    pub fn new(name: &str) -> Env {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("{:04x}{}", pid % 0xffff, n);
        let root = std::env::temp_dir().join(format!("bt-cli-{name}-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let subnet_octet = 100 + (pid as usize * 7 + n * 13) % 150;
        let bridge = format!("btb{tag}");
        let table = format!("bt{tag}");
        let cgroup_parent = format!("bt-cli-{pid}-{n}");
        let config = root.join("berth.toml");
        std::fs::write(
            &config,
            format!(
                r#"root = "{root}"
plugin_dirs = ["{plugins}"]
[storage]
driver = "overlayfs"
[network]
backend = "bridge"
[network.bridge]
default_bridge = "{bridge}"
default_subnet = "10.{subnet_octet}.{n2}.0/24"
pool = "10.{subnet_octet}.128.0/17"
bridge_prefix = "btn{tag}"
veth_prefix = "bv"
table = "{table}"
[isolator]
driver = "auto"
[isolator.cgroup1]
parent = "{cgroup_parent}"
[isolator.cgroup2]
parent = "{cgroup_parent}"
"#,
                root = root.join("state").display(),
                plugins = stage().join("lib/berth/plugins").display(),
                n2 = n % 128,
            ),
        )
        .unwrap();
        Env {
            name: name.into(),
            bin: stage().join("bin/berth"),
            root,
            config,
            cgroup_parent,
            bridge,
            table,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--config").arg(&self.config).args(args);
        c.env_remove("BERTH_ROOT").env_remove("BERTH_CONFIG");
        c.stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("running berth")
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn import_busybox(&self) {
        let tar = busybox_tar(&self.root);
        self.ok(&[
            "import",
            "-c",
            "CMD [\"/bin/sh\"]",
            tar.to_str().unwrap(),
            "busybox:latest",
        ]);
    }

    pub fn bridge(&self) -> &str {
        &self.bridge
    }
}

fn rmdir_cgroups(name: &str) {
    // Every hierarchy: /sys/fs/cgroup/<ctrl>/.../<name> (and the v2 mount).
    let out = Command::new("find")
        .args([
            "/sys/fs/cgroup",
            "-maxdepth",
            "6",
            "-type",
            "d",
            "-name",
            name,
        ])
        .output();
    if let Ok(o) = out {
        let mut dirs: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.len()));
        for d in dirs {
            // Children first (groups of containers that were not destroyed).
            if let Ok(rd) = std::fs::read_dir(&d) {
                for e in rd.flatten() {
                    if e.path().is_dir() {
                        let _ = std::fs::remove_dir(e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(&d);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        // Containers first (stops monitors, detaches networks, removes cgroups and mounts).
        if let Ok(o) = self.cmd(&["ps", "-aq"]).output() {
            for id in String::from_utf8_lossy(&o.stdout).lines() {
                let _ = self.cmd(&["rm", "-f", id]).output();
            }
        }
        let _ = self.cmd(&["network", "prune", "-f"]).output();
        rmdir_cgroups(&self.cgroup_parent);
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .stderr(Stdio::null())
            .status();
        // Any mount left below the root (a bug, but don't leak it further).
        if let Ok(m) = std::fs::read_to_string("/proc/self/mountinfo") {
            let root = self.root.display().to_string();
            let mut points: Vec<&str> = m
                .lines()
                .filter_map(|l| l.split(' ').nth(4))
                .filter(|p| p.starts_with(&root))
                .collect();
            points.sort_by_key(|p| std::cmp::Reverse(p.len()));
            for p in points {
                let _ = nix_umount(p);
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn nix_umount(p: &str) -> std::io::Result<()> {
    let st = Command::new("umount").args(["-l", p]).status()?;
    if st.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("umount failed"))
    }
}

/// Mount points under `root` (to check nothing is left).
pub fn mounts_under(root: &Path) -> Vec<String> {
    let root = root.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&root))
        .collect()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    for _ in 0..50 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .ok();
            let _ = write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut out = String::new();
            if s.read_to_string(&mut out).is_ok() && !out.is_empty() {
                return Some(out);
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    None
}
