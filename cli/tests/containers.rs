//! End-to-end tests of the container commands through the real `berth` binary, as root.

mod common;

use common::{free_port, http_get, mounts_under, Env};

#[test]
fn run_isolation_and_exit_codes() {
    let env = Env::new("run");
    env.import_busybox();
    // PID 1, own hostname, only lo under --network none.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--hostname",
        "box1",
        "busybox",
        "sh",
        "-c",
        "echo $$; hostname; ls /sys/class/net",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines, vec!["1", "box1", "lo"], "{out}");
    // Only its own processes.
    let ps = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ls /proc | grep -c '^[0-9]'",
    ]);
    // sh (PID 1), ls and grep: nothing of the host.
    assert!(
        ps.trim().parse::<u32>().unwrap() <= 3,
        "sees other processes: {ps}"
    );
    // Exit codes as Docker.
    // (PID 1 can't SIGKILL itself from inside its namespace, so a child does.)
    for (cmd, code) in [
        ("exit 0", 0),
        ("exit 42", 42),
        ("sh -c 'kill -9 $$'; exit $?", 137),
    ] {
        let o = env.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "sh",
            "-c",
            cmd,
        ]);
        assert_eq!(
            o.status.code(),
            Some(code),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "no-such-command",
    ]);
    assert_eq!(o.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found"));
    // Copy-on-write: a write in one container is invisible to another and to the image.
    env.ok(&[
        "run",
        "--name",
        "writer",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo secret > /etc/written",
    ]);
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/etc/written",
    ]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "second container saw the first one's write"
    );
    env.ok(&["rm", "writer"]);
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(
        mounts_under(&env.root).is_empty(),
        "mounts left: {:?}",
        mounts_under(&env.root)
    );
}

#[test]
fn detached_web_server_with_published_port() {
    let env = Env::new("web");
    env.import_busybox();
    let www = env.root.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from berth\n").unwrap();
    let port = free_port();
    let id = env.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "-v",
        &format!("{}:/www:ro", www.display()),
        "busybox",
        "httpd",
        "-f",
        "-v",
        "-p",
        "80",
        "-h",
        "/www",
    ]);
    assert_eq!(id.trim().len(), 64);
    let page = http_get(port, "/").expect("the published port answers");
    assert!(page.contains("hello from berth"), "{page}");
    // ps, port, exec, logs, inspect.
    let ps = env.ok(&["ps"]);
    assert!(
        ps.contains("web") && ps.contains(&format!("127.0.0.1:{port}->80/tcp")),
        "{ps}"
    );
    assert_eq!(
        env.ok(&["port", "web", "80"]).trim(),
        format!("127.0.0.1:{port}")
    );
    let hn = env.ok(&["exec", "web", "hostname"]);
    assert_eq!(hn.trim(), &id.trim()[..12]);
    let o = env.run(&["exec", "web", "sh", "-c", "exit 7"]);
    assert_eq!(o.status.code(), Some(7));
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.Status}}", "web"])
            .trim(),
        "running"
    );
    // The same host port again is a clear error before the container starts.
    let o = env.run(&[
        "run",
        "-d",
        "--name",
        "web2",
        "-p",
        &format!("127.0.0.1:{port}:80"),
        "busybox",
        "httpd",
        "-f",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(&port.to_string()),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // stop: httpd as PID 1 ignores SIGTERM, so SIGKILL after -t.
    env.ok(&["stop", "-t", "1", "web"]);
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "web"])
            .trim(),
        "137"
    );
    let logs = env.ok(&["logs", "web"]);
    let _ = logs; // httpd -v logs to stderr
    env.ok(&["rm", "web"]);
    let _ = env.run(&["rm", "-f", "web2"]);
    assert!(mounts_under(&env.root).is_empty());
    // The kernel removes a dead namespace's veth pair asynchronously (within ms).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let links = std::process::Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap();
        let links = String::from_utf8_lossy(&links.stdout).to_string();
        if !links.contains(" bv") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "veth left: {links}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn bad_input_is_a_clear_error_and_leaves_nothing() {
    let env = Env::new("bad");
    env.import_busybox();
    let o = env.run(&["run", "--rm", "127.0.0.1:1/no-such-image"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-image"));
    for flags in [
        vec!["-p", "99999:80"],
        vec!["-v", "/no/such/dir/bt:/x"],
        vec!["-e", "=x"],
        vec!["--restart", "sometimes"],
    ] {
        let mut args = vec!["run", "--rm"];
        args.extend(flags.iter().copied());
        args.extend(["busybox", "true"]);
        let o = env.run(&args);
        assert_eq!(o.status.code(), Some(125), "{flags:?}");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(flags[0]),
            "{flags:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    env.ok(&[
        "run",
        "-d",
        "--name",
        "dup",
        "--network",
        "none",
        "busybox",
        "sleep",
        "60",
    ]);
    let o = env.run(&[
        "run",
        "-d",
        "--name",
        "dup",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already in use"));
    let o = env.run(&["rm", "dup"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("stop the container"));
    env.ok(&["rm", "-f", "dup"]);
    env.ok(&[
        "create",
        "--name",
        "stopped",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let o = env.run(&["exec", "stopped", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("not running"));
    env.ok(&["rm", "stopped"]);
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(mounts_under(&env.root).is_empty());
}

#[test]
fn parallel_runs_get_distinct_names_and_ids() {
    let env = Env::new("par");
    env.import_busybox();
    let handles: Vec<_> = (0..20)
        .map(|_| {
            let mut c = env.cmd(&["run", "-d", "--network", "none", "busybox", "sleep", "30"]);
            std::thread::spawn(move || c.output().unwrap())
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let o = h.join().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ids.insert(String::from_utf8_lossy(&o.stdout).trim().to_string());
    }
    assert_eq!(ids.len(), 20);
    let names = env.ok(&["ps", "--format", "json"]);
    let names: std::collections::HashSet<String> = names
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["Names"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names.len(), 20);
}

#[test]
fn logs_keep_a_large_burst_in_order() {
    let env = Env::new("logs");
    env.import_busybox();
    // ~2.1 MB of output.
    env.ok(&[
        "run",
        "--name",
        "burst",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "seq 1 300000",
    ]);
    let logs = env.ok(&["logs", "burst"]);
    let lines: Vec<&str> = logs.lines().collect();
    assert_eq!(lines.len(), 300000);
    assert_eq!(lines[0], "1");
    assert_eq!(lines[299_999], "300000");
    let tail = env.ok(&["logs", "--tail", "2", "burst"]);
    assert_eq!(tail, "299999\n300000\n");
    let pruned = env.ok(&["container", "prune", "-f"]);
    assert!(
        pruned.contains(env.ok(&["ps", "-aq", "--no-trunc"]).trim())
            || env.ok(&["ps", "-aq"]).trim().is_empty(),
        "{pruned}"
    );
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());
}

#[test]
fn pause_memory_limit_and_stats() {
    let env = Env::new("iso");
    env.import_busybox();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "p",
        "--network",
        "none",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "busybox",
        "sleep",
        "60",
    ]);
    env.ok(&["pause", "p"]);
    assert!(env.ok(&["ps"]).contains("(Paused)"));
    let o = env.run(&["exec", "p", "true"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("paused"));
    env.ok(&["unpause", "p"]);
    env.ok(&["exec", "p", "true"]);
    let stats = env.ok(&["stats", "--no-stream", "--format", "json", "p"]);
    let v: serde_json::Value = serde_json::from_str(stats.lines().next().unwrap()).unwrap();
    assert_eq!(v["MemLimit"].as_u64(), Some(64 << 20), "{v}");
    env.ok(&["update", "--memory", "96m", "p"]);
    let stats = env.ok(&["stats", "--no-stream", "--format", "json", "p"]);
    let v: serde_json::Value = serde_json::from_str(stats.lines().next().unwrap()).unwrap();
    assert_eq!(v["MemLimit"].as_u64(), Some(96 << 20), "{v}");
    env.ok(&["rm", "-f", "p"]);
    // Over its memory limit: OOM-killed, and inspect says so.
    let o = env.run(&[
        "run",
        "--name",
        "oom",
        "--network",
        "none",
        "-m",
        "32m",
        "--memory-swap",
        "32m",
        "busybox",
        "sh",
        "-c",
        "head -c 200m /dev/zero | tail > /dev/null",
    ]);
    assert_eq!(
        o.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.OOMKilled}}", "oom"])
            .trim(),
        "true"
    );
    env.ok(&["rm", "oom"]);
}

#[test]
fn cp_between_host_and_container_stays_inside() {
    let env = Env::new("cp");
    env.import_busybox();
    let host = env.root.join("host");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "from the host\n").unwrap();
    // Stopped container: its snapshot is mounted for the copy.
    env.ok(&[
        "create",
        "--name",
        "c",
        "--network",
        "none",
        "busybox",
        "cat",
        "/tmp/in.txt",
    ]);
    env.ok(&["cp", host.join("in.txt").to_str().unwrap(), "c:/tmp/"]);
    assert_eq!(env.ok(&["start", "-a", "c"]), "from the host\n");
    env.ok(&["cp", "c:/etc/passwd", host.join("passwd").to_str().unwrap()]);
    assert!(std::fs::read_to_string(host.join("passwd"))
        .unwrap()
        .starts_with("root:"));
    // Running container; a symlink pointing out of the container resolves inside it.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "r",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "ln -s / /tmp/up && ln -s ../../../../../etc /tmp/rel && sleep 60",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(300));
    env.ok(&["cp", "r:/tmp/rel/passwd", host.join("p2").to_str().unwrap()]);
    assert!(
        std::fs::read_to_string(host.join("p2"))
            .unwrap()
            .contains("nobody:x:65534"),
        "the container's passwd, not the host's"
    );
    let o = env.run(&[
        "cp",
        "r:/tmp/up/no-such-file",
        host.join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    env.ok(&["rm", "-f", "r", "c"]);
    assert!(mounts_under(&env.root).is_empty());
}

#[test]
fn tty_and_interactive_stdin() {
    let env = Env::new("tty");
    env.import_busybox();
    // -t under a real pty (util-linux `script` provides one).
    let cmdline = format!(
        "{} --config {} run --rm -t --network none busybox sh -c '[ -t 0 ] && [ -t 1 ] && echo both-tty; echo $TERM'",
        env.bin.display(),
        env.config.display()
    );
    let o = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("both-tty") && out.contains("xterm"), "{out}");
    // -i forwards stdin.
    let mut child = env
        .cmd(&["run", "--rm", "-i", "--network", "none", "busybox", "sh"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo hi-from-stdin\nexit 5\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(5));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hi-from-stdin\n");
}

#[test]
fn user_networks_resolve_names_and_are_isolated() {
    let env = Env::new("net");
    env.import_busybox();
    env.ok(&["network", "create", "appnet"]);
    env.ok(&["network", "create", "othernet"]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "appnet",
        "--network-alias",
        "db",
        "busybox",
        "sleep",
        "60",
    ]);
    // By name and by alias, and the peer learns the newcomer's name too.
    let out = env.ok(&[
        "run",
        "--rm",
        "--name",
        "cli",
        "--network",
        "appnet",
        "busybox",
        "sh",
        "-c",
        "ping -c1 -W2 srv >/dev/null && ping -c1 -W2 db >/dev/null && echo reachable",
    ]);
    assert_eq!(out.trim(), "reachable");
    env.ok(&[
        "run",
        "-d",
        "--name",
        "late",
        "--network",
        "appnet",
        "busybox",
        "sleep",
        "60",
    ]);
    let hosts = env.ok(&["exec", "srv", "cat", "/etc/hosts"]);
    assert!(hosts.contains("late"), "{hosts}");
    // The network's DNS responder (nslookup asks the name server, not /etc/hosts).
    let srv_ip = env.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"]);
    let late_ip = env.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "late"]);
    let resolv = env.ok(&["exec", "late", "cat", "/etc/resolv.conf"]);
    assert!(resolv.contains("search dns.berth"), "{resolv}");
    for name in ["srv", "DB", "db.dns.berth"] {
        let out = env.ok(&["exec", "late", "nslookup", name]);
        assert!(out.contains(srv_ip.trim()), "{name}: {out}");
    }
    let out = env.ok(&["exec", "srv", "nslookup", "late"]);
    assert!(out.contains(late_ip.trim()), "{out}");
    // A name already taken on the network is refused, and nothing is left behind.
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "appnet",
        "--network-alias",
        "srv",
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already used"),
        "{o:?}"
    );
    // A container that goes away is gone from DNS at once.
    env.ok(&["rm", "-f", "late"]);
    let o = env.run(&["exec", "srv", "nslookup", "late"]);
    assert!(!o.status.success(), "{o:?}");
    // A container on another network can't reach it.
    let ip = env.ok(&["inspect", "-f", "{{.NetworkSettings.IPAddress}}", "srv"]);
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        ip.trim(),
    ]);
    assert!(!o.status.success(), "different networks must be isolated");
    // Connected to the other network too, it is reachable there by name; then not.
    env.ok(&["network", "connect", "othernet", "srv"]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "sh",
        "-c",
        "ping -c1 -W2 srv >/dev/null && echo reachable",
    ]);
    assert_eq!(out.trim(), "reachable");
    env.ok(&["network", "disconnect", "othernet", "srv"]);
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "othernet",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        "srv",
    ]);
    assert!(!o.status.success());
    // Removing a network in use is refused.
    assert!(!env.run(&["network", "rm", "appnet"]).status.success());
    env.ok(&["rm", "-f", "srv"]);
    env.ok(&["network", "rm", "appnet", "othernet"]);
    // The responders went with the networks.
    let run_dir = env.root.join("state/run").display().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let ps = std::process::Command::new("pgrep")
            .args(["-f", &run_dir])
            .output()
            .unwrap();
        if ps.stdout.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "berth-dns still running: {}",
            String::from_utf8_lossy(&ps.stdout)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn restart_policy_on_failure_retries_then_gives_up() {
    let env = Env::new("restart");
    env.import_busybox();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--network",
        "none",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "echo attempt; exit 3",
    ]);
    // Back-off is 100 ms then 200 ms: give it a few seconds at most.
    let mut state = String::new();
    for _ in 0..100 {
        state = env.ok(&["inspect", "-f", "{{.State.Status}}", "flaky"]);
        let count = env.ok(&["inspect", "-f", "{{.RestartCount}}", "flaky"]);
        if state.trim() == "exited" && count.trim() == "2" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(state.trim(), "exited");
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.RestartCount}}", "flaky"])
            .trim(),
        "2"
    );
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "flaky"])
            .trim(),
        "3"
    );
    assert_eq!(env.ok(&["logs", "flaky"]).matches("attempt").count(), 3);
    env.ok(&["rm", "flaky"]);
    // `always` restarts until stopped; stop ends it with its own exit code.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "loop",
        "--network",
        "none",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(400));
    env.ok(&["stop", "-t", "1", "loop"]);
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.Status}}", "loop"])
            .trim(),
        "exited"
    );
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "loop"])
            .trim(),
        "1"
    );
    let n: u32 = env
        .ok(&["inspect", "-f", "{{.RestartCount}}", "loop"])
        .trim()
        .parse()
        .unwrap();
    assert!(n >= 1, "restarted {n} times");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let m: u32 = env
        .ok(&["inspect", "-f", "{{.RestartCount}}", "loop"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(n, m, "no restarts after stop");
    env.ok(&["rm", "loop"]);
}

#[test]
fn volumes_persist_and_mount_options_apply() {
    let env = Env::new("vol");
    env.import_busybox();
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(
        env.ok(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "data:/data:ro",
            "busybox",
            "cat",
            "/data/f"
        ]),
        "kept\n"
    );
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "data:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/g",
    ]);
    assert!(!o.status.success(), "a :ro volume is read-only");
    assert!(env.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data"));
    // --tmpfs and --read-only.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--tmpfs",
        "/scratch",
        "busybox",
        "sh",
        "-c",
        "echo ok > /scratch/x && cat /scratch/x && ! touch /rootfile",
    ]);
    assert_eq!(out, "ok\n");
    // A volume in use can't be removed.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "holder",
        "--network",
        "none",
        "-v",
        "data:/data",
        "busybox",
        "sleep",
        "30",
    ]);
    assert!(!env.run(&["volume", "rm", "data"]).status.success());
    env.ok(&["rm", "-f", "holder"]);
    env.ok(&["volume", "rm", "data"]);
    assert!(!env.ok(&["volume", "ls", "-q"]).lines().any(|l| l == "data"));
}

#[test]
fn seccomp_default_profile_unconfined_and_custom() {
    let env = Env::new("seccomp");
    env.import_busybox();
    let probe = "grep Seccomp: /proc/self/status; unshare -U true && echo userns-ok; \
                 mount -t tmpfs t /mnt && echo mount-ok; \
                 echo c > /proc/sysrq-trigger && echo sysrq-ok; \
                 exec 3>&-; ls /proc/self/fd | tr '\\n' ' '";
    // Default: filter mode (2); a new user namespace and mount are refused; no extra fds.
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        probe,
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        !out.contains("userns-ok") && !out.contains("mount-ok"),
        "{out}"
    );
    assert!(!out.contains("sysrq-ok"), "{out}");
    assert!(out.trim_end().ends_with("0 1 2 3"), "fds: {out}");
    // exec'd processes get the profile too.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "sc1",
        "--network",
        "none",
        "busybox",
        "sleep",
        "300",
    ]);
    let o = env.ok(&[
        "exec",
        "sc1",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; unshare -U true || echo refused",
    ]);
    assert!(o.contains("Seccomp:\t2") && o.contains("refused"), "{o}");
    env.ok(&["rm", "-f", "sc1"]);
    // --init under the default profile: PID 1 is berth-init (from a sealed memfd), the
    // command runs under it with the profile, and its exit status comes back.
    let o = env.run(&[
        "run",
        "--rm",
        "--init",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; grep Seccomp: /proc/self/status; \
         readlink /proc/1/exe || echo hidden; exit 7",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(7), "{o:?}");
    assert!(out.starts_with("berth-init -s "), "{out}");
    assert!(
        out.contains("Seccomp:\t2") && out.contains("hidden"),
        "{out}"
    );
    // unconfined lifts it: the same unshare now works.
    let o = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        "seccomp=unconfined",
        "busybox",
        "sh",
        "-c",
        "grep Seccomp: /proc/self/status; unshare -U true && echo userns-ok",
    ]);
    assert!(o.contains("Seccomp:\t0") && o.contains("userns-ok"), "{o}");
    // A custom profile in Docker's format: mkdir fails with EACCES.
    let profile = env.root.join("deny-mkdir.json");
    std::fs::write(
        &profile,
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#,
    )
    .unwrap();
    let opt = format!("seccomp={}", profile.display());
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &opt,
        "busybox",
        "mkdir",
        "/x",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Permission denied"),
        "{o:?}"
    );
    // A broken profile is refused before anything is created, naming the file.
    std::fs::write(&profile, "{\"defaultAction\": 12}").unwrap();
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &opt,
        "busybox",
        "true",
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("deny-mkdir.json"),
        "{o:?}"
    );
    assert_eq!(env.ok(&["ps", "-aq"]).trim(), "");
}

/// Polls `f` every 100 ms, at most 100 times (a bound, not a timed assertion).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("never happened: {what}");
}

#[test]
fn healthchecks_run_and_report_like_docker() {
    let env = Env::new("health");
    env.import_busybox();
    let inspect = |name: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&env.ok(&["inspect", name])).unwrap()[0].clone()
    };
    // A check that fails until /tmp/ok exists: starting → unhealthy → healthy.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc1",
        "--network",
        "none",
        "--health-cmd",
        "test -e /tmp/ok && echo fine",
        "--health-interval",
        "100ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "300",
    ]);
    eventually("hc1 unhealthy", || env.ok(&["ps"]).contains("(unhealthy)"));
    let h = &inspect("hc1")["State"]["Health"];
    assert!(h["FailingStreak"].as_u64().unwrap() >= 2, "{h}");
    assert_eq!(h["Log"].as_array().unwrap().last().unwrap()["ExitCode"], 1);
    env.ok(&["exec", "hc1", "touch", "/tmp/ok"]);
    eventually("hc1 healthy", || env.ok(&["ps"]).contains("(healthy)"));
    let c = inspect("hc1");
    let h = &c["State"]["Health"];
    assert_eq!(
        (h["Status"].as_str(), h["FailingStreak"].as_u64()),
        (Some("healthy"), Some(0))
    );
    assert_eq!(
        h["Log"].as_array().unwrap().last().unwrap()["Output"],
        "fine\n"
    );
    assert_eq!(c["Config"]["Healthcheck"]["Test"][0], "CMD-SHELL");
    // A hung check is killed at its timeout and counts as a failure.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc2",
        "--network",
        "none",
        "--health-cmd",
        "sleep 30",
        "--health-interval",
        "100ms",
        "--health-timeout",
        "200ms",
        "--health-retries",
        "1",
        "busybox",
        "sleep",
        "300",
    ]);
    eventually("hc2 unhealthy", || {
        inspect("hc2")["State"]["Health"]["Status"] == "unhealthy"
    });
    let log = inspect("hc2")["State"]["Health"]["Log"][0].clone();
    assert_eq!(log["ExitCode"], -1);
    assert!(
        log["Output"].as_str().unwrap().contains("exceeded timeout"),
        "{log}"
    );
    // The image's HEALTHCHECK is used; --no-healthcheck turns it off.
    let ctx = env.root.join("hcctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nHEALTHCHECK --interval=100ms CMD [\"true\"]\n",
    )
    .unwrap();
    env.ok(&["build", "-q", "-t", "hcimg", ctx.to_str().unwrap()]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc3",
        "--network",
        "none",
        "hcimg",
        "sleep",
        "300",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "hc4",
        "--network",
        "none",
        "--no-healthcheck",
        "hcimg",
        "sleep",
        "300",
    ]);
    eventually("hc3 healthy", || {
        inspect("hc3")["State"]["Health"]["Status"] == "healthy"
    });
    assert!(inspect("hc4")["State"]["Health"].is_null());
    let healthy = env.ok(&["ps", "-q", "--filter", "health=healthy"]);
    assert_eq!(healthy.lines().count(), 2, "hc1 and hc3: {healthy}");
    assert_eq!(
        env.ok(&["ps", "-q", "--filter", "health=none"])
            .lines()
            .count(),
        1
    );
    assert!(!env.ok(&["ps", "--filter", "name=hc4"]).contains("health"));
    // Bad flags are refused before anything is created.
    let o = env.run(&["run", "--health-interval", "soon", "busybox", "true"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--health-interval"),
        "{o:?}"
    );
    env.ok(&["rm", "-f", "hc1", "hc2", "hc3", "hc4"]);
}

/// Issue 15: a container can't reach host devices it was not given. Every probe opens a
/// node and closes it at once (`true > node` opens write-only and writes nothing; not
/// `:`, a special built-in whose failed redirection ends the shell), so a
/// regression can't touch the host: c 1:11 is /dev/kmsg.
#[test]
fn host_devices_are_denied_unless_given() {
    let env = Env::new("dev");
    env.import_busybox();
    let probe = |extra: &[&str], script: &str| -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", script]);
        env.ok(&args)
    };
    const KMSG_W: &str =
        "mknod /tmp/k c 1 11 && { true > /tmp/k && echo OPENED || echo DENIED; } 2>/dev/null";
    // Default: mknod works (CAP_MKNOD, as Docker), opening the node does not.
    assert_eq!(probe(&[], KMSG_W).trim(), "DENIED");
    // The default devices still work.
    assert_eq!(
        probe(
            &[],
            "echo x > /dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c && true > /dev/full && echo OK"
        )
        .split_whitespace()
        .collect::<Vec<_>>(),
        vec!["4", "4", "OK"]
    );
    // Allowed on purpose: a rule, --device (read-only here), --privileged.
    assert_eq!(
        probe(&["--device-cgroup-rule", "c 1:11 w"], KMSG_W).trim(),
        "OPENED"
    );
    // --device creates the node; its permissions go into the list (kmsg's read side is
    // refused by the kernel itself under dmesg_restrict, so only the write side is probed).
    const BT_KMSG_W: &str =
        "test -c /dev/bt/kmsg && { true > /dev/bt/kmsg && echo OPENED || echo DENIED; } 2>/dev/null";
    assert_eq!(
        probe(&["--device", "/dev/kmsg:/dev/bt/kmsg:w"], BT_KMSG_W).trim(),
        "OPENED"
    );
    assert_eq!(
        probe(&["--device", "/dev/kmsg:/dev/bt/kmsg:r"], BT_KMSG_W).trim(),
        "DENIED"
    );
    assert_eq!(probe(&["--privileged"], KMSG_W).trim(), "OPENED");
    // A process exec'd into a running container joins its list.
    let id = env.ok(&["run", "-d", "--network", "none", "busybox", "sleep", "60"]);
    let id = id.trim();
    assert_eq!(env.ok(&["exec", id, "sh", "-c", KMSG_W]).trim(), "DENIED");
    env.ok(&["rm", "-f", id]);
    // --privileged also gets the host's device nodes, as with Docker.
    assert_eq!(
        probe(&["--privileged"], "test -c /dev/kmsg && echo HOSTDEV").trim(),
        "HOSTDEV"
    );
    // tmpfs mounts are nodev (Docker's default): even an allowed node can't be opened there.
    assert_eq!(
        probe(
            &["--tmpfs", "/t", "--device-cgroup-rule", "c 1:3 rwm"],
            "mknod /t/n c 1 3 && { true > /t/n && echo OPENED || echo DENIED; } 2>/dev/null"
        )
        .trim(),
        "DENIED"
    );

    // A node shipped in an image layer is covered too, also for an unprivileged user
    // without capabilities.
    let root = env.root.join("devimg");
    std::fs::create_dir_all(&root).unwrap();
    let node = root.join("bt-kmsg");
    for (cmd, args) in [
        ("mknod", vec![node.to_str().unwrap(), "c", "1", "11"]),
        ("chmod", vec!["666", node.to_str().unwrap()]),
    ] {
        let st = std::process::Command::new(cmd)
            .args(&args)
            .status()
            .unwrap();
        assert!(st.success(), "{cmd} {args:?}");
    }
    let tar = env.root.join("devimg.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    env.ok(&["import", tar.to_str().unwrap(), "devlayer:latest"]);
    let bin = format!("{}:/bin:ro", env.root.join("bbroot/bin").display());
    let layer_probe = |extra: &[&str]| -> String {
        let mut args = vec![
            "run",
            "--rm",
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "-u",
            "1000",
            "-v",
            &bin,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[
            "devlayer",
            "sh",
            "-c",
            "test -c /bt-kmsg && { true > /bt-kmsg && echo OPENED || echo DENIED; } 2>/dev/null",
        ]);
        env.ok(&args).trim().to_string()
    };
    assert_eq!(layer_probe(&[]), "DENIED");
    // …and it is the device list that stops it (the rootfs itself is not nodev).
    assert_eq!(layer_probe(&["--device-cgroup-rule", "c 1:11 w"]), "OPENED");
}

/// Without an isolator berth can't restrict devices: it refuses, unless --privileged.
#[test]
fn no_isolator_refuses_unprivileged_containers() {
    let env = Env::new("noiso");
    env.import_busybox();
    let text = std::fs::read_to_string(&env.config).unwrap();
    std::fs::write(
        &env.config,
        text.replacen(
            "[isolator]\ndriver = \"auto\"",
            "[isolator]\ndriver = \"bt-missing\"",
            1,
        ),
    )
    .unwrap();
    let o = env.run(&["run", "--rm", "--network", "none", "busybox", "true"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "ran without an isolator: {err}");
    assert!(
        err.contains("no isolator to restrict") && err.contains("--privileged"),
        "{err}"
    );
    env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--privileged",
        "busybox",
        "true",
    ]);
}

/// No `: `-separated part of an error line is said twice (`X: io error: io error`).
fn assert_no_repeated_segment(stderr: &str) {
    for line in stderr.lines() {
        let segs: Vec<&str> = line.split(": ").collect();
        for (i, s) in segs.iter().enumerate() {
            assert!(!segs[i + 1..].contains(s), "{s:?} repeated in {line:?}");
        }
    }
}

#[test]
fn bad_limits_signals_mounts_and_users_are_refused_like_docker() {
    let env = Env::new("badin");
    env.import_busybox();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let too_many = (cpus * 1000).to_string();
    for (flags, says) in [
        (vec!["-m", "1"], "minimum memory limit allowed is 6MB"),
        (vec!["-m", "1k"], "minimum memory limit allowed is 6MB"),
        (
            vec!["--memory-reservation", "1k"],
            "minimum memory reservation allowed is 6MB",
        ),
        (
            vec!["--cpus", too_many.as_str()],
            "range of CPUs is from 0.01 to",
        ),
        (vec!["--cpus", "0.001"], "range of CPUs is from 0.01 to"),
        (vec!["--stop-signal", "FOO"], "signal name or number"),
        (vec!["--stop-signal", "RTMIN+16"], "signal name or number"),
        (vec!["-v", "/tmp:/proc"], "not of type proc"),
        (vec!["-v", "/tmp:/proc/sys"], "inside /proc"),
        (
            vec!["--mount", "type=bind,src=/tmp,dst=/proc/self"],
            "inside /proc",
        ),
        (vec!["--tmpfs", "/proc/sys"], "inside /proc"),
        (
            vec!["-u", "99999999999"],
            "uids and gids must be in range 0-2147483647",
        ),
        (
            vec!["-u", "0:4294967296"],
            "uids and gids must be in range 0-2147483647",
        ),
        (vec!["--env-file", "/nonexistent/bt-env"], "No such file"),
    ] {
        for verb in ["run", "create"] {
            let mut args = vec![verb, "--network", "none"];
            args.extend(flags.iter().copied());
            args.extend(["busybox", "true"]);
            let o = env.run(&args);
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(125), "{verb} {flags:?}: {err}");
            assert!(
                err.contains(flags[0]) && err.contains(says),
                "{verb} {flags:?}: {err}"
            );
            assert_no_repeated_segment(&err);
        }
    }
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());

    // -m 0 (and --memory-swap 0, --cpus 0) is "no limit", as in Docker.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-m",
        "0",
        "--memory-swap",
        "0",
        "--cpus",
        "0",
        "busybox",
        "echo",
        "unlimited",
    ]);
    assert_eq!(out.trim(), "unlimited");

    // A real-time stop signal is accepted and is what `stop` sends: the trap's exit code,
    // not SIGKILL's 137 after the timeout.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "rt",
        "--network",
        "none",
        "--stop-signal",
        "SIGRTMIN+3",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 7' 37; echo ready; while :; do sleep 0.1; done",
    ]);
    eventually("the trap is set", || {
        env.ok(&["logs", "rt"]).contains("ready")
    });
    env.ok(&["stop", "-t", "120", "rt"]);
    assert_eq!(
        env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "rt"])
            .trim(),
        "7"
    );
    env.ok(&["rm", "rt"]);

    // `kill -s` takes the same names: a real-time signal reaches the trap…
    env.ok(&[
        "run",
        "-d",
        "--name",
        "rtk",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "trap 'exit 9' 38; echo ready; while :; do sleep 0.1; done",
    ]);
    eventually("the trap is set", || {
        env.ok(&["logs", "rtk"]).contains("ready")
    });
    let o = env.run(&["kill", "-s", "NOPE", "rtk"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("-s/--signal") && err.contains("signal name or number"),
        "{err}"
    );
    env.ok(&["kill", "-s", "RTMIN+4", "rtk"]);
    eventually("the trap exited", || {
        env.ok(&["inspect", "-f", "{{.State.ExitCode}}", "rtk"])
            .trim()
            == "9"
    });
    env.ok(&["rm", "rtk"]);
}

#[test]
fn an_image_of_another_platform_runs_with_dockers_warning() {
    let env = Env::new("plat");
    env.import_busybox();
    // A docker-archive whose config names the other architecture (the layer is the host's
    // busybox, so it still runs).
    let dir = env.root.join("armimage");
    std::fs::create_dir_all(&dir).unwrap();
    let layer = common::busybox_tar(&dir);
    std::fs::rename(&layer, dir.join("layer.tar")).unwrap();
    let sum = std::process::Command::new("sha256sum")
        .arg(dir.join("layer.tar"))
        .output()
        .unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    let diff_id = format!("sha256:{}", sum.split_whitespace().next().unwrap());
    let other = if cfg!(target_arch = "x86_64") {
        "arm64"
    } else {
        "amd64"
    };
    let config = serde_json::json!({
        "architecture": other,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let manifest = serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["otherbox:latest"],
        "Layers": ["layer.tar"],
    }]);
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
    let archive = env.root.join("other.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .arg("-cf")
        .arg(&archive)
        .args(["manifest.json", "config.json", "layer.tar"])
        .status()
        .unwrap();
    assert!(st.success());
    env.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);

    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "otherbox",
        "echo",
        "ran",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ran");
    let warning = format!(
        "WARNING: The requested image's platform (linux/{other}) does not match the detected host platform (linux/"
    );
    assert_eq!(err.matches(&warning).count(), 1, "{err}");
    assert!(
        err.contains("and no specific platform was requested"),
        "{err}"
    );
    // The host's own images: no warning.
    let o = env.run(&["run", "--rm", "--network", "none", "busybox", "true"]);
    assert!(o.status.success());
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("WARNING"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn a_mount_reaching_proc_through_an_image_symlink_is_refused() {
    let env = Env::new("procln");
    // busybox with /myproc -> /proc and /mysys -> proc/sys (relative).
    let tar = common::busybox_tar(&env.root);
    let rootfs = env.root.join("bbroot");
    std::os::unix::fs::symlink("/proc", rootfs.join("myproc")).unwrap();
    std::os::unix::fs::symlink("proc/sys", rootfs.join("mysys")).unwrap();
    std::fs::remove_file(&tar).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    env.ok(&["import", tar.to_str().unwrap(), "linkbox:latest"]);
    for dst in ["/myproc", "/mysys"] {
        let vol = format!("/tmp:{dst}");
        let o = env.run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &vol,
            "linkbox",
            "/bin/true",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(125), "{dst}: {err}");
        assert!(err.contains("leads into /proc"), "{dst}: {err}");
        assert_no_repeated_segment(&err);
    }
    // A tmpfs the same way.
    let o = env.run(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--tmpfs",
        "/myproc",
        "linkbox",
        "/bin/true",
    ]);
    assert_eq!(o.status.code(), Some(125));
    // Elsewhere the same image mounts fine, and /proc is still the container's procfs.
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "-v",
        "/tmp:/data",
        "linkbox",
        "cat",
        "/myproc/self/status",
    ]);
    assert!(out.contains("Pid:"), "{out}");
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());
    assert!(mounts_under(&env.root).is_empty());
}

/// Docker stops option parsing at the image (and at exec's container): what follows is the
/// command even when it looks like one of berth's flags (`-c` is `--cpu-shares`). A bad flag
/// before the image is still a usage error with Docker's exit code 125.
#[test]
fn words_after_the_image_belong_to_the_command() {
    let env = Env::new("argv");
    env.import_busybox();
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        "busybox",
        "-c",
        "echo hi",
    ]);
    assert_eq!(out.trim(), "hi");
    let id = env.ok(&["create", "--network", "none", "busybox", "-c", "x"]);
    let cmd = env.ok(&["inspect", "-f", "{{json .Config.Cmd}}", id.trim()]);
    assert!(cmd.contains(r#""-c""#) && cmd.contains(r#""x""#), "{cmd}");
    env.ok(&["rm", id.trim()]);
    let o = env.run(&["run", "--rm", "--no-such-flag", "busybox", "true"]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--no-such-flag"));
    assert_eq!(
        env.run(&["run"]).status.code(),
        Some(125),
        "the image is required"
    );
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());
}

/// `--env-file` takes Docker's format and refuses a malformed line, naming file and line.
#[test]
fn env_file_is_parsed_like_docker() {
    let env = Env::new("envf");
    env.import_busybox();
    let good = env.root.join("good.env");
    std::fs::write(
        &good,
        "\u{feff}A=1\n# note\n\n  B=two words\nBERTH_T_SET\nBERTH_T_UNSET\n",
    )
    .unwrap();
    let out = String::from_utf8(
        env.cmd(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--env-file",
            good.to_str().unwrap(),
            "busybox",
            "env",
        ])
        .env("BERTH_T_SET", "yes")
        .env_remove("BERTH_T_UNSET")
        .output()
        .unwrap()
        .stdout,
    )
    .unwrap();
    let lines: Vec<&str> = out.lines().collect();
    for want in ["A=1", "B=two words", "BERTH_T_SET=yes"] {
        assert!(lines.contains(&want), "{want} missing in {out}");
    }
    assert!(!out.contains("BERTH_T_UNSET"), "{out}");
    let bad = env.root.join("bad.env");
    std::fs::write(&bad, "A=1\nexport D=4\n").unwrap();
    let o = env.run(&[
        "run",
        "--rm",
        "--env-file",
        bad.to_str().unwrap(),
        "busybox",
        "true",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(125), "{err}");
    assert!(err.contains("bad.env: line 2:"), "{err}");
    assert!(err.contains("'export D' contains whitespaces"), "{err}");
    assert!(env.ok(&["ps", "-aq"]).trim().is_empty());
}

/// `logs --since/--until` take Docker's time forms; a time without a zone is local time.
#[test]
fn logs_since_takes_dockers_time_forms() {
    let env = Env::new("lsince");
    env.import_busybox();
    let id = env.ok(&["run", "-d", "--network", "none", "busybox", "echo", "hi"]);
    let id = id.trim();
    env.ok(&["wait", id]);
    for since in [
        "2000-01-01T00:00:00",
        "2000-01-01",
        "946684800.5",
        "1h",
        "2000-01-01T00:00Z",
    ] {
        assert_eq!(
            env.ok(&["logs", "--since", since, id]).trim(),
            "hi",
            "--since {since}"
        );
    }
    for since in ["2100-01-01T00:00:00", "2100-01-01", "4102444800"] {
        assert_eq!(
            env.ok(&["logs", "--since", since, id]).trim(),
            "",
            "--since {since}"
        );
    }
    assert_eq!(
        env.ok(&["logs", "--until", "2000-01-01T00:00:00", id])
            .trim(),
        ""
    );
    let o = env.run(&["logs", "--since", "yesterday", id]);
    assert_eq!(o.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--since"));
    env.ok(&["rm", id]);
}

/// `cp - CTR:DIR` unpacks a tar stream from stdin; `cp CTR:PATH -` writes PATH as a tar
/// stream (PATH's base name at the top) to stdout. No host file or directory named `-`.
#[test]
fn cp_dash_is_a_tar_stream() {
    use std::io::Write;
    let env = Env::new("cptar");
    env.import_busybox();
    env.ok(&[
        "create",
        "--name",
        "c",
        "--network",
        "none",
        "busybox",
        "true",
    ]);
    let mut b = tar::Builder::new(Vec::new());
    for (path, body) in [("d/a.txt", "alpha\n"), ("d/sub/b.txt", "beta\n")] {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, body.as_bytes()).unwrap();
    }
    let stream = b.into_inner().unwrap();
    let mut child = env
        .cmd(&["cp", "-", "c:/tmp"])
        .current_dir(&env.root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&stream).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = env
        .cmd(&["cp", "c:/tmp/d", "-"])
        .current_dir(&env.root)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut got = Vec::new();
    let mut ar = tar::Archive::new(&o.stdout[..]);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut e, &mut body).unwrap();
        got.push((path.trim_end_matches('/').to_string(), body));
    }
    for (path, body) in [("d/a.txt", "alpha\n"), ("d/sub/b.txt", "beta\n")] {
        assert!(
            got.iter().any(|(p, b)| p == path && b == body),
            "{path} missing in {got:?}"
        );
    }
    assert!(got.iter().any(|(p, _)| p == "d"), "{got:?}");
    assert!(
        !env.root.join("-").exists(),
        "a host path named - was created"
    );
    env.ok(&["rm", "c"]);
    assert!(mounts_under(&env.root).is_empty());
}

#[test]
fn output_into_a_closed_pipe_is_no_panic() {
    let env = Env::new("pipe");
    // A pipe whose reader is gone before berth writes (`berth completion bash | head -0`).
    let (r, w) = nix::unistd::pipe().unwrap();
    drop(r);
    let o = env
        .cmd(&["completion", "bash"])
        .stdout(std::process::Stdio::from(w))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(o.status.code(), Some(0), "{err}");
}
