//! `berth-runtime`, the OCI runtime with runc's command line: driven directly (as
//! containerd's shim and runtime-tools do), by podman (`--runtime`) and by containerd 1.6
//! (`ctr run --runc-binary`). Every test has its own state root, cgroup parent and names
//! with a `bt-rt` prefix, removed on drop, also when the test fails.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use serde_json::{json, Value};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A state root, a berth config (cgroup parent of its own) and a wrapper script that runs
/// the staged binary with that config, which is what podman and containerd are given.
struct Rt {
    dir: PathBuf,
    root: PathBuf,
    bin: PathBuf,
    wrapper: PathBuf,
    config: PathBuf,
    ids: std::cell::RefCell<Vec<String>>,
}

impl Rt {
    fn new(name: &str) -> Rt {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("bt-rt-{name}-{pid}-{n}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let parent = format!("bt-rt-{pid}-{n}");
        let config = dir.join("berth.toml");
        std::fs::write(
            &config,
            format!(
                "plugin_dirs = [\"{}\"]\n[isolator]\ndriver = \"auto\"\n[isolator.cgroup1]\nparent = \"{parent}\"\n[isolator.cgroup2]\nparent = \"{parent}\"\n",
                common::stage().join("lib/berth/plugins").display()
            ),
        )
        .unwrap();
        let bin = common::stage().join("bin/berth-runtime");
        let wrapper = dir.join("berth-runtime");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nBERTH_CONFIG={} exec {} \"$@\"\n",
                config.display(),
                bin.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Rt {
            root: dir.join("state"),
            dir,
            bin,
            wrapper,
            config,
            ids: Default::default(),
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.arg("--root").arg(&self.root).args(args);
        c.env("BERTH_CONFIG", &self.config).env_remove("BERTH_ROOT");
        c.stdin(Stdio::null());
        c
    }

    /// Runs to completion. Output goes through files, not pipes: a container (or a
    /// detached exec) inherits them and may outlive the command.
    fn run(&self, args: &[&str]) -> Output {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let (out, err) = (
            self.dir.join(format!("out-{n}")),
            self.dir.join(format!("err-{n}")),
        );
        let status = self
            .cmd(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .status()
            .expect("running berth-runtime");
        Output {
            status,
            stdout: std::fs::read(&out).unwrap(),
            stderr: std::fs::read(&err).unwrap(),
        }
    }

    fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "berth-runtime {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// A container id that is deleted (forced) on drop.
    fn id(&self, name: &str) -> String {
        let id = format!("bt-rt-{name}-{}", std::process::id());
        self.ids.borrow_mut().push(id.clone());
        id
    }

    fn state(&self, id: &str) -> Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// A bundle with a busybox rootfs and `berth-runtime spec`'s config, edited by `edit`.
    fn bundle(&self, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> PathBuf {
        let b = self.dir.join(format!("bundle-{name}"));
        busybox_rootfs(&b.join("rootfs"));
        let o = self.ok(&["spec", "--bundle", b.to_str().unwrap()]);
        assert!(o.is_empty());
        let mut v: Value =
            serde_json::from_str(&std::fs::read_to_string(b.join("config.json")).unwrap()).unwrap();
        v["process"]["args"] = json!(args);
        v["process"]["terminal"] = json!(false);
        v["root"]["readonly"] = json!(false);
        v["linux"]["cgroupsPath"] = json!(format!("bt-rt-{name}-{}", std::process::id()));
        edit(&mut v);
        std::fs::write(b.join("config.json"), v.to_string()).unwrap();
        b
    }

    fn wait_stopped(&self, id: &str) {
        for _ in 0..500 {
            if self.state(id)["status"] == "stopped" {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{id} did not stop: {}", self.state(id));
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        for id in self.ids.borrow().iter() {
            let _ = self.run(&["delete", "--force", id]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn busybox_rootfs(rootfs: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
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
}

fn root_or_skip() -> bool {
    berth_testkit::require_root()
}

#[test]
fn run_in_the_foreground_returns_the_exit_code_and_deletes() {
    if !root_or_skip() {
        return;
    }
    let rt = Rt::new("run");
    let id = rt.id("run");
    let b = rt.bundle("run", &["sh", "-c", "echo hi from $$; exit 3"], |_| {});
    let o = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(3), "{o:?}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi from 1\n");
    assert!(
        !rt.run(&["state", &id]).status.success(),
        "run leaves no state"
    );
}

#[test]
fn create_start_exec_ps_pause_kill_delete() {
    if !root_or_skip() {
        return;
    }
    let rt = Rt::new("life");
    let id = rt.id("life");
    let b = rt.bundle("life", &["sleep", "300"], |_| {});
    let pidfile = rt.dir.join("init.pid");
    rt.ok(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pidfile.to_str().unwrap(),
        &id,
    ]);
    let st = rt.state(&id);
    assert_eq!(st["status"], "created", "{st}");
    assert_eq!(st["id"], id.as_str());
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap().trim(),
        pid.to_string()
    );
    // Waiting at the sync point: not the command yet.
    let comm = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(!comm.starts_with("sleep"), "{comm}");
    // A second create with the same id is refused and leaves the first alone.
    let dup = rt.run(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    assert_eq!(rt.state(&id)["status"], "created");

    rt.ok(&["start", &id]);
    assert_eq!(rt.state(&id)["status"], "running");
    assert!(!rt.run(&["start", &id]).status.success(), "started twice");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(cmdline.starts_with("sleep"), "{cmdline}");

    let out = rt.ok(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo in $(hostname); cat /proc/1/cmdline",
    ]);
    assert!(out.contains("sleep"), "{out}");
    let exec_pid = rt.dir.join("exec.pid");
    let pf = rt.dir.join("process.json");
    std::fs::write(
        &pf,
        json!({"args": ["sleep", "100"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})
            .to_string(),
    )
    .unwrap();
    rt.ok(&[
        "exec",
        "--process",
        pf.to_str().unwrap(),
        "--detach",
        "--pid-file",
        exec_pid.to_str().unwrap(),
        &id,
    ]);
    let epid: i64 = std::fs::read_to_string(&exec_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&pid) && pids.contains(&epid), "{pids:?}");
    let table = rt.ok(&["ps", &id]);
    assert!(
        table.starts_with("UID") && table.contains("sleep 100"),
        "{table}"
    );

    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    let running = rt.run(&["delete", &id]);
    assert!(!running.status.success(), "deleted a paused container");
    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "running");

    let list = rt.ok(&["list", "--format", "json"]);
    assert!(list.contains(&id), "{list}");
    rt.ok(&["update", "--pids-limit", "50", &id]);
    let ev: Value = serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(ev["type"], "stats");

    rt.ok(&["kill", "--all", &id, "KILL"]);
    rt.wait_stopped(&id);
    assert!(!rt.run(&["kill", &id, "TERM"]).status.success());
    rt.ok(&["delete", &id]);
    assert!(!rt.run(&["state", &id]).status.success());
    // runc: deleting what is gone is an error, unless forced.
    assert!(!rt.run(&["delete", &id]).status.success());
    rt.ok(&["delete", "--force", &id]);
}

#[test]
fn delete_of_a_created_container_kills_it() {
    if !root_or_skip() {
        return;
    }
    let rt = Rt::new("delcreated");
    let id = rt.id("delcreated");
    let b = rt.bundle("delcreated", &["true"], |_| {});
    rt.ok(&["create", "--bundle", b.to_str().unwrap(), &id]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    rt.ok(&["delete", &id]);
    let gone = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s.rsplit(')').next().unwrap().trim().starts_with('Z'),
    };
    assert!(gone, "process {pid} survived delete");
}

#[test]
fn the_config_is_applied() {
    if !root_or_skip() {
        return;
    }
    let rt = Rt::new("cfg");
    let id = rt.id("cfg");
    let script = "hostname; cat /proc/sys/net/ipv4/ip_forward; id -G; umask; ulimit -n; \
                  cat /proc/self/oom_score_adj; grep CapBnd /proc/self/status; \
                  touch /x 2>/dev/null && echo rw || echo ro; wc -c < /etc/group; \
                  ls /dev/bt-null && cat /etc/hostname-from-bind; cat /proc/sys/kernel/domainname";
    let b = rt.bundle("cfg", &["sh", "-c", script], |v| {
        v["hostname"] = json!("cfgbox");
        v["domainname"] = json!("cfg.example");
        v["root"]["readonly"] = json!(true);
        v["process"]["user"] = json!({"uid": 0, "gid": 0, "additionalGids": [7, 9], "umask": 63});
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "hard": 256, "soft": 200}]);
        v["process"]["oomScoreAdj"] = json!(123);
        let two = json!(["CAP_CHOWN", "CAP_KILL"]);
        v["process"]["capabilities"] = json!({"bounding": two, "effective": two,
            "permitted": two, "inheritable": [], "ambient": []});
        v["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
        v["linux"]["maskedPaths"] = json!(["/etc/group"]);
        v["linux"]["devices"] =
            json!([{"path": "/dev/bt-null", "type": "c", "major": 1, "minor": 3}]);
        v["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/etc/hostname-from-bind", "type": "bind",
                         "source": "hostfile", "options": ["rbind", "ro"]}),
        );
    });
    std::fs::write(b.join("hostfile"), "bound\n").unwrap();
    let o = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{o:?}");
    let lines: Vec<&str> = out.lines().collect();
    // CAP_CHOWN (0) and CAP_KILL (5): 0x21.
    assert_eq!(
        lines,
        vec![
            "cfgbox",
            "1",
            "0 7 9",
            "0077",
            "200",
            "123",
            "CapBnd:\t0000000000000021",
            "ro",
            "0",
            "/dev/bt-null",
            "bound",
            "cfg.example"
        ],
        "{out}"
    );
}

#[test]
fn a_failure_after_start_is_reported_on_stderr() {
    if !root_or_skip() {
        return;
    }
    let rt = Rt::new("late");
    let id = rt.id("late");
    let b = rt.bundle("late", &["/no/such/command"], |_| {});
    let o = rt.run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(127), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("executing the command: errno 2"), "{err}");
}

#[test]
fn what_it_cannot_do_is_refused_with_the_field() {
    if !root_or_skip() {
        return;
    }
    let rt = Rt::new("refuse");
    let id = rt.id("refuse");
    let b = rt.bundle("refuse", &["true"], |v| {
        v["linux"]["sysctl"] = json!({"vm.swappiness": "10"});
    });
    let log = rt.dir.join("log.json");
    let o = rt.run(&[
        "--log",
        log.to_str().unwrap(),
        "--log-format",
        "json",
        "create",
        "--bundle",
        b.to_str().unwrap(),
        &id,
    ]);
    assert!(!o.status.success());
    // runc's JSON log: what podman (conmon) and containerd's shim read the error from.
    let text = std::fs::read_to_string(&log).unwrap();
    let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("vm.swappiness"),
        "{last}"
    );
    assert!(last["time"].is_string());
    // Nothing left behind.
    assert!(!rt.root.join(&id).exists());
    let sd = rt.run(&["--systemd-cgroup", "list"]);
    assert!(!sd.status.success());
    assert!(String::from_utf8_lossy(&sd.stderr).contains("cgroupfs"));
}

#[test]
fn hooks_receive_the_state_on_stdin() {
    if !root_or_skip() {
        return;
    }
    let rt = Rt::new("hooks");
    let id = rt.id("hooks");
    let out = rt.dir.join("hooks-out");
    std::fs::create_dir_all(&out).unwrap();
    let hook = |name: &str| json!({"path": "/bin/sh", "args": ["sh", "-c", format!("cat > {}/{name}", out.display())]});
    let b = rt.bundle("hooks", &["true"], |v| {
        v["hooks"] = json!({
            "prestart": [hook("prestart")],
            "createRuntime": [hook("createRuntime")],
            "poststart": [hook("poststart")],
            "poststop": [hook("poststop")],
        });
    });
    rt.ok(&["run", "--bundle", b.to_str().unwrap(), &id]);
    for (name, status) in [
        ("prestart", "created"),
        ("createRuntime", "created"),
        ("poststart", "running"),
        ("poststop", "stopped"),
    ] {
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join(name)).unwrap()).unwrap();
        assert_eq!(v["id"], id.as_str(), "{name}: {v}");
        assert_eq!(v["status"], status, "{name}: {v}");
        assert!(v["bundle"].as_str().unwrap().ends_with("bundle-hooks"));
    }
}

#[test]
fn features_and_spec() {
    let rt = Rt::new("features");
    let f: Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(f["ociVersionMin"], "1.0.0");
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .contains(&json!("network")));
    assert!(f["linux"]["capabilities"]
        .as_array()
        .unwrap()
        .contains(&json!("CAP_CHOWN")));
    let b = rt.dir.join("specb");
    std::fs::create_dir_all(&b).unwrap();
    rt.ok(&["spec", "--bundle", b.to_str().unwrap()]);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(b.join("config.json")).unwrap()).unwrap();
    assert_eq!(v["root"]["path"], "rootfs");
    assert!(!rt
        .run(&["spec", "--bundle", b.to_str().unwrap()])
        .status
        .success());
}

/// podman (through conmon) with berth-runtime: its own storage, run root and
/// containers.conf, never the host's.
#[test]
fn podman_runs_containers_with_berth_runtime() {
    if !root_or_skip() || !berth_testkit::require_command("podman", "apt-get install podman") {
        return;
    }
    let rt = Rt::new("podman");
    let tar = common::busybox_tar(&rt.dir);
    let conf = rt.dir.join("containers.conf");
    std::fs::write(
        &conf,
        "[containers]\ndefault_ulimits = []\nnetns = \"none\"\n[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    let proot = rt.dir.join("podman-root");
    let prun = rt.dir.join("podman-run");
    // podman puts conmon in `<cgroup parent>/conmon` (cgroupfs manager): a parent of this
    // test's own, removed at the end, instead of the host-wide default `/libpod_parent`.
    let cgroup_parent = format!("/bt-rt-podman-{}", std::process::id());
    let podman = |args: &[&str]| {
        let mut args: Vec<&str> = args.to_vec();
        if args.first() == Some(&"run") {
            args.splice(1..1, ["--cgroup-parent", cgroup_parent.as_str()]);
        }
        let o = Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(&proot)
            .arg("--runroot")
            .arg(&prun)
            .arg("--runtime")
            .arg(&rt.wrapper)
            .arg("--storage-driver")
            .arg("vfs")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    type Podman<'a> = &'a dyn Fn(&[&str]) -> (bool, String, String);
    struct Cleanup<'a>(Podman<'a>, String);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            (self.0)(&["rm", "--all", "--force"]);
            (self.0)(&["system", "reset", "--force"]);
            // The cgroups podman made below this test's parent, deepest first.
            if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
                for h in hierarchies.flatten() {
                    let parent = h.path().join(self.1.trim_start_matches('/'));
                    if let Ok(children) = std::fs::read_dir(&parent) {
                        for c in children.flatten() {
                            if c.path().is_dir() {
                                let _ = std::fs::remove_dir(c.path());
                            }
                        }
                    }
                    let _ = std::fs::remove_dir(&parent);
                }
            }
        }
    }
    let _c = Cleanup(&podman, cgroup_parent.clone());
    let (ok, _, err) = podman(&["import", tar.to_str().unwrap(), "bt-rt-busybox"]);
    assert!(ok, "{err}");
    let (ok, out, err) = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bt-rt-busybox",
        "sh",
        "-c",
        "echo hello from $$",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out, "hello from 1\n");
    let (ok, out, err) = podman(&[
        "run",
        "-d",
        "--name",
        "bt-rt-pod1",
        "--network",
        "none",
        "bt-rt-busybox",
        "sleep",
        "300",
    ]);
    assert!(ok, "{err}");
    assert!(!out.trim().is_empty());
    let (ok, out, err) = podman(&[
        "exec",
        "bt-rt-pod1",
        "sh",
        "-c",
        "echo exec $(cat /proc/1/cmdline | tr '\\0' ' ')",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "exec sleep 300");
    let (ok, _, err) = podman(&["stop", "-t", "1", "bt-rt-pod1"]);
    assert!(ok, "{err}");
    let (ok, _, err) = podman(&["rm", "bt-rt-pod1"]);
    assert!(ok, "{err}");
    // A failure comes back through the JSON log that conmon reads.
    let (ok, _, err) = podman(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bt-rt-busybox",
        "/nonexistent",
    ]);
    assert!(!ok);
    assert!(!err.contains("no logs from conmon"), "{err}");
}

/// containerd 1.6 on private paths, with `ctr run --runc-binary` (the runc v2 shim calls
/// create/start/exec/kill/delete/ps/pause/resume on berth-runtime).
#[test]
fn containerd_runs_containers_with_berth_runtime() {
    if !root_or_skip()
        || !berth_testkit::require_command("containerd", "apt-get install containerd")
        || !berth_testkit::require_command("ctr", "apt-get install containerd")
    {
        return;
    }
    let rt = Rt::new("ctrd");
    let base = rt.dir.join("containerd");
    let sock = base.join("c.sock");
    std::fs::create_dir_all(&base).unwrap();
    std::fs::write(
        base.join("config.toml"),
        format!(
            "version = 2\nroot = \"{r}/root\"\nstate = \"{r}/state\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\naddress = \"{s}\"\n[ttrpc]\naddress = \"{s}.ttrpc\"\n[debug]\naddress = \"\"\n[metrics]\naddress = \"\"\n",
            r = base.display(),
            s = sock.display()
        ),
    )
    .unwrap();
    let daemon = Command::new("containerd")
        .arg("--config")
        .arg(base.join("config.toml"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(base.join("containerd.log")).unwrap())
        .spawn()
        .unwrap();
    struct Daemon(std::process::Child, PathBuf, String);
    impl Drop for Daemon {
        fn drop(&mut self) {
            let ctr = |a: &[&str]| {
                let _ = Command::new("ctr")
                    .arg("--address")
                    .arg(&self.1)
                    .args(a)
                    .output();
            };
            ctr(&["task", "kill", "-s", "KILL", &self.2]);
            std::thread::sleep(Duration::from_millis(200));
            ctr(&["task", "delete", "--force", &self.2]);
            ctr(&["container", "delete", &self.2]);
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let id = rt.id("ctr");
    let _d = Daemon(daemon, sock.clone(), id.clone());
    for _ in 0..200 {
        if sock.exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        sock.exists(),
        "containerd did not start: {}",
        std::fs::read_to_string(base.join("containerd.log")).unwrap_or_default()
    );
    let rootfs = rt.dir.join("ctr-rootfs");
    busybox_rootfs(&rootfs);
    let ctr = |args: &[&str]| {
        let o = Command::new("ctr")
            .arg("--address")
            .arg(&sock)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            o.status.success(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let wrapper = rt.wrapper.to_str().unwrap().to_string();
    let (ok, _, err) = ctr(&[
        "run",
        "-d",
        "--runtime",
        "io.containerd.runc.v2",
        "--runc-binary",
        &wrapper,
        "--rootfs",
        rootfs.to_str().unwrap(),
        &id,
        "sleep",
        "300",
    ]);
    assert!(ok, "ctr run: {err}");
    let (ok, out, err) = ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        &id,
        "sh",
        "-c",
        "echo exec ok",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "exec ok");
    let (ok, out, err) = ctr(&["task", "ps", &id]);
    assert!(ok, "{err}");
    assert!(out.lines().count() >= 2, "{out}");
    let (ok, _, err) = ctr(&["task", "pause", &id]);
    assert!(ok, "{err}");
    let (_, out, _) = ctr(&["task", "ls"]);
    assert!(out.contains("PAUSED"), "{out}");
    let (ok, _, err) = ctr(&["task", "resume", &id]);
    assert!(ok, "{err}");
    let (ok, _, err) = ctr(&["task", "kill", "-s", "KILL", &id]);
    assert!(ok, "{err}");
    let mut stopped = false;
    for _ in 0..200 {
        let (_, out, _) = ctr(&["task", "ls"]);
        if out
            .lines()
            .any(|l| l.contains(&id) && l.contains("STOPPED"))
        {
            stopped = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(stopped, "task did not stop");
    let (ok, _, err) = ctr(&["task", "delete", &id]);
    assert!(ok, "{err}");
    let (ok, _, err) = ctr(&["container", "delete", &id]);
    assert!(ok, "{err}");
}
