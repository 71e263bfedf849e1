//! Commands killed with SIGKILL at known places (`BERTH_TEST_PAUSE_AT`), and a full disk:
//! the next command reclaims what the dead one left, and nothing a live command owns is
//! touched.

mod common;

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
};

use common::{mounts_under, Env};

/// Starts `berth args` so that it stops at `point`, and returns it once it got there.
fn pause_at(env: &Env, args: &[&str], point: &str) -> Child {
    let mut child = env
        .cmd(args)
        .env("BERTH_TEST_PAUSE_AT", point)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut text = String::new();
    for l in BufReader::new(stderr).lines() {
        let l = l.unwrap();
        if l.contains(&format!("paused at {point}")) {
            return child;
        }
        text.push_str(&l);
        text.push('\n');
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("berth {args:?} ended before reaching {point}:\n{text}");
}

/// `pause_at`, then SIGKILL.
fn kill_at(env: &Env, args: &[&str], point: &str) {
    let mut child = pause_at(env, args, point);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn state(env: &Env) -> PathBuf {
    env.root.join("state")
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Keys of the storage driver's objects (each object's `meta.json`).
fn storage_keys(env: &Env) -> Vec<String> {
    let objects = state(env).join("storage/overlayfs/objects");
    let mut keys = Vec::new();
    for e in entries(&objects) {
        let meta = std::fs::read_to_string(objects.join(e).join("meta.json")).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&meta).unwrap_or_default();
        if let Some(k) = v["key"].as_str() {
            keys.push(k.to_string());
        }
    }
    keys
}

/// The `Debris` row of `system df`: (total, active).
fn debris_row(env: &Env) -> (String, String) {
    let df = env.ok(&["system", "df"]);
    let line = df
        .lines()
        .find(|l| l.starts_with("Debris"))
        .unwrap_or_else(|| panic!("no Debris row:\n{df}"));
    let cols: Vec<&str> = line.split_whitespace().collect();
    (cols[1].to_string(), cols[2].to_string())
}

fn build_context(env: &Env) -> PathBuf {
    let ctx = env.root.join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM busybox\nCOPY f /f\n").unwrap();
    std::fs::write(ctx.join("f"), "data\n").unwrap();
    ctx
}

#[test]
fn a_killed_builds_mount_and_snapshot_are_reclaimed_by_the_next_command() {
    let env = Env::new("crashbuild");
    env.import_busybox();
    let ctx = build_context(&env);
    let run_build = state(&env).join("run/build");
    kill_at(
        &env,
        &["build", ctx.to_str().unwrap()],
        "build-snapshot-mounted",
    );
    assert_eq!(mounts_under(&run_build).len(), 1);
    assert!(storage_keys(&env).iter().any(|k| k.starts_with("build-")));
    // `system df` shows it (and does not reclaim it).
    assert_eq!(debris_row(&env), ("1".into(), "0".into()));
    // The next command, whichever it is, reclaims it.
    env.ok(&["images"]);
    assert!(mounts_under(&run_build).is_empty());
    assert!(entries(&run_build).is_empty(), "{:?}", entries(&run_build));
    assert!(!storage_keys(&env).iter().any(|k| k.starts_with("build-")));
    assert_eq!(debris_row(&env), ("0".into(), "0".into()));
    // And the build itself works afterwards, leaving nothing behind.
    env.ok(&["build", "-t", "after:1", ctx.to_str().unwrap()]);
    assert!(mounts_under(&run_build).is_empty());
    assert!(entries(&run_build).is_empty(), "{:?}", entries(&run_build));
}

#[test]
fn prunes_leave_a_live_build_alone_and_reclaim_it_once_killed() {
    let env = Env::new("crashlive");
    env.import_busybox();
    let ctx = build_context(&env);
    let run_build = state(&env).join("run/build");
    let mut live = pause_at(
        &env,
        &["build", ctx.to_str().unwrap()],
        "build-snapshot-mounted",
    );
    env.ok(&["ps", "-a"]);
    let out = env.ok(&["builder", "prune", "-f"]);
    assert!(out.contains("a build is running"), "{out}");
    let out = env.ok(&["system", "prune", "-af"]);
    assert!(out.contains("a build is running"), "{out}");
    assert_eq!(mounts_under(&run_build).len(), 1);
    assert!(storage_keys(&env).iter().any(|k| k.starts_with("build-")));
    assert_eq!(debris_row(&env), ("1".into(), "1".into()));
    live.kill().unwrap();
    live.wait().unwrap();
    env.ok(&["builder", "prune", "-f"]);
    assert!(mounts_under(&run_build).is_empty());
    assert!(entries(&run_build).is_empty(), "{:?}", entries(&run_build));
    assert!(storage_keys(&env).is_empty(), "{:?}", storage_keys(&env));
}

#[test]
fn image_rm_removes_the_images_unpacked_layers() {
    let env = Env::new("crashrmi");
    env.import_busybox();
    env.ok(&["run", "--rm", "--network", "none", "busybox", "true"]);
    assert!(!storage_keys(&env).is_empty());
    env.ok(&["image", "rm", "busybox"]);
    assert!(storage_keys(&env).is_empty(), "{:?}", storage_keys(&env));
}

#[test]
fn a_killed_rm_is_finished_by_the_next_command() {
    let env = Env::new("crashrm");
    env.import_busybox();
    let id = env
        .ok(&[
            "create",
            "--name",
            "c1",
            "--network",
            "none",
            "busybox",
            "true",
        ])
        .trim()
        .to_string();
    kill_at(&env, &["rm", "c1"], "rm-removing");
    let ps = env.ok(&["ps", "-a"]);
    assert!(!ps.contains("c1"), "{ps}");
    assert!(!state(&env).join("containers").join(&id).exists());
    assert!(!storage_keys(&env).contains(&id));
}

#[test]
fn a_rm_container_whose_removal_did_not_happen_is_removed_by_the_next_command() {
    let env = Env::new("crashautorm");
    env.import_busybox();
    kill_at(
        &env,
        &[
            "run",
            "--rm",
            "--name",
            "r1",
            "--network",
            "none",
            "busybox",
            "true",
        ],
        "supervise-exited",
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(!ps.contains("r1"), "{ps}");
    assert!(entries(&state(&env).join("containers")).is_empty());
}

/// A tmpfs mounted as the berth root of one test, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "bt-crash-full",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let why = "cannot mount a tmpfs (needs root)";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipping: {why}");
            return None;
        }
        Some(Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
fn read_commands_work_on_a_full_disk() {
    // Declared first, dropped last: the Env's cleanup runs while the tmpfs is mounted.
    let mut _fs = None;
    let env = Env::new("crashfull");
    _fs = Tmpfs::mount(&state(&env), "64m");
    if _fs.is_none() {
        return;
    }
    env.import_busybox();
    env.ok(&[
        "create",
        "--name",
        "c1",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let fill = state(&env).join("fill");
    let mut f = std::fs::File::create(&fill).unwrap();
    let chunk = vec![0u8; 1 << 16];
    loop {
        use std::io::Write;
        if f.write_all(&chunk).is_err() {
            break;
        }
    }
    // Small writes fit in a partly used page: fill that too.
    loop {
        use std::io::Write;
        if f.write_all(&[0u8; 512]).is_err() {
            break;
        }
    }
    drop(f);
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("c1"), "{ps}");
    let images = env.ok(&["images"]);
    assert!(images.contains("busybox"), "{images}");
    // A run fails on the full disk but leaves no container once there is space again.
    let o = env.run(&[
        "run",
        "--rm",
        "--name",
        "r1",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    std::fs::remove_file(&fill).unwrap();
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("c1") && !ps.contains("r1"), "{ps}");
}

/// Pids of processes whose command line is exactly `argv`.
fn pids_running(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    entries(Path::new("/proc"))
        .iter()
        .filter_map(|p| p.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_build_killed_during_run_has_its_step_process_and_cgroup_reclaimed() {
    let env = Env::new("crashrun");
    env.import_busybox();
    let ctx = env.root.join("ctx-run");
    std::fs::create_dir_all(&ctx).unwrap();
    // A number no other test uses, to find the step's process on the host.
    let secs = format!("{}", 900_000 + std::process::id() % 90_000);
    std::fs::write(
        ctx.join("Dockerfile"),
        format!("FROM busybox\nRUN touch /bt-ready && exec sleep {secs}\n"),
    )
    .unwrap();
    let run_build = state(&env).join("run/build");
    let mut build = env
        .cmd(&["build", ctx.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = || {
        entries(&run_build)
            .iter()
            .any(|k| run_build.join(k).join("bt-ready").exists())
            && !pids_running(&["sleep", &secs]).is_empty()
    };
    let t0 = std::time::Instant::now();
    while !ready() {
        assert!(t0.elapsed().as_secs() < 60, "the RUN step never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    build.kill().unwrap();
    build.wait().unwrap();
    // The step outlives the killed build…
    assert_eq!(pids_running(&["sleep", &secs]).len(), 1);
    // …until the next command reclaims the build's leftovers: the step's group (and with
    // it the process), the mount, the snapshot.
    env.ok(&["images"]);
    let t0 = std::time::Instant::now();
    while !pids_running(&["sleep", &secs]).is_empty() {
        assert!(t0.elapsed().as_secs() < 10, "the RUN step still runs");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(mounts_under(&run_build).is_empty());
    assert!(entries(&run_build).is_empty(), "{:?}", entries(&run_build));
    assert!(!storage_keys(&env).iter().any(|k| k.starts_with("build-")));
}
