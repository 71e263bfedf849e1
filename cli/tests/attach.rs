//! The per-container monitor (`berth-monitor`), attaching through its socket, detach keys,
//! and the events journal — through the real binaries, as root.

mod common;

use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, Stdio},
};

use common::{mounts_under, Env};

/// Reads lines of `child`'s stdout until one contains `want`; returns what was read.
fn read_until(out: &mut impl BufRead, want: &str) -> String {
    let mut seen = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = out.read_line(&mut line).unwrap();
        assert!(n > 0, "output ended before {want:?}:\n{seen}");
        seen.push_str(&line);
        if line.contains(want) {
            return seen;
        }
    }
}

fn state(env: &Env, name: &str) -> String {
    env.ok(&["inspect", "-f", "{{.State.Status}}", name])
        .trim()
        .to_string()
}

/// The pid of the `berth-monitor` supervising container `id`, from /proc.
fn monitor_pid(id: &str) -> Option<i32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("/berth-monitor"))
            && args.get(1).is_some_and(|a| a == id)
        {
            return Some(pid);
        }
    }
    None
}

/// A child process killed and reaped when dropped (also when the test fails).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn attach_streams_output_takes_stdin_and_detaches() {
    let env = Env::new("attach");
    env.import_busybox();
    env.ok(&[
        "run",
        "-d",
        "-i",
        "--name",
        "echoer",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo ready; while read l; do echo \"got $l\"; echo \"err $l\" >&2; done",
    ]);
    let mut att = env
        .cmd(&["attach", "--detach-keys", "ctrl-x,x", "echoer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = att.stdin.take().unwrap();
    let mut out = BufReader::new(att.stdout.take().unwrap());
    let mut err = BufReader::new(att.stderr.take().unwrap());
    // Input reaches the container; its stdout and stderr come back on ours.
    input.write_all(b"one\n").unwrap();
    read_until(&mut out, "got one");
    read_until(&mut err, "err one");
    // The detach keys end the attach, not the container (a lone ^X is passed on).
    input.write_all(&[0x18, b'y', b'\n']).unwrap();
    read_until(&mut out, "got \u{18}y");
    input.write_all(&[0x18, b'x']).unwrap();
    let status = att.wait().unwrap();
    assert!(status.success(), "attach after detach: {status}");
    assert_eq!(state(&env, "echoer"), "running");
    // A second client still gets the stream, and the log kept everything.
    let mut att2 = env
        .cmd(&["attach", "echoer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input2 = att2.stdin.take().unwrap();
    let mut out2 = BufReader::new(att2.stdout.take().unwrap());
    input2.write_all(b"two\n").unwrap();
    read_until(&mut out2, "got two");
    // Attach returns the container's exit code (SIGKILL: 137).
    env.ok(&["kill", "echoer"]);
    let status = att2.wait().unwrap();
    assert_eq!(status.code(), Some(137), "attach returns the exit code");
    let logs = env.ok(&["logs", "echoer"]);
    assert!(
        logs.contains("ready") && logs.contains("got one") && logs.contains("got two"),
        "{logs}"
    );
    // A stopped container cannot be attached to.
    let o = env.run(&["attach", "echoer"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("start it first"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Bad detach keys are refused before anything happens.
    let o = env.run(&["attach", "--detach-keys", "ctrl-1", "echoer"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--detach-keys"));
    env.ok(&["rm", "echoer"]);
}

#[test]
fn start_attached_sees_all_output_and_feeds_stdin() {
    let env = Env::new("startai");
    env.import_busybox();
    // A process that prints and exits at once: nothing is lost to a late attach.
    env.ok(&[
        "create",
        "--name",
        "quick",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo first; echo second >&2; exit 3",
    ]);
    let o = env.run(&["start", "-a", "quick"]);
    assert_eq!(o.status.code(), Some(3));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "first\n");
    assert_eq!(String::from_utf8_lossy(&o.stderr), "second\n");
    // The exit is recorded by the time start -a returns.
    assert_eq!(state(&env, "quick"), "exited");
    // start -ai: our stdin is the container's, its end closes the container's.
    env.ok(&[
        "create",
        "-i",
        "--name",
        "reader",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "cat; echo done",
    ]);
    let mut c = env
        .cmd(&["start", "-ai", "reader"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"piped text\n").unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success());
    assert_eq!(String::from_utf8_lossy(&o.stdout), "piped text\ndone\n");
    // run --rm with a tty goes through the monitor too; the container is gone after.
    let o = env.run(&[
        "run",
        "--rm",
        "-t",
        "--name",
        "ttyrm",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "echo on-a-tty; exit 4",
    ]);
    assert_eq!(o.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&o.stdout).contains("on-a-tty"));
    assert!(!env.ok(&["ps", "-a"]).contains("ttyrm"));
    env.ok(&["rm", "quick", "reader"]);
    assert!(mounts_under(&env.root).is_empty());
}

#[test]
fn run_it_detach_keys_leave_the_container_running() {
    let env = Env::new("detach");
    env.import_busybox();
    // `run -it` under a real pty (util-linux `script`), detached with Ctrl-P Ctrl-Q.
    let cmdline = format!(
        "{} --config {} run -it --name shell --network none busybox sh",
        env.bin.display(),
        env.config.display()
    );
    let mut s = std::process::Command::new("script")
        .args(["-qec", &cmdline, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    let mut input = s.stdin.take().unwrap();
    let mut out = BufReader::new(s.stdout.take().unwrap());
    input.write_all(b"echo marker-$((6*7))\n").unwrap();
    read_until(&mut out, "marker-42");
    input.write_all(&[0x10, 0x11]).unwrap();
    let mut rest = Vec::new();
    out.read_to_end(&mut rest).unwrap();
    let status = s.wait().unwrap();
    assert!(status.success(), "{status}");
    drop(input);
    assert_eq!(state(&env, "shell"), "running");
    // The shell still answers through a new attach.
    let mut att = env
        .cmd(&["attach", "shell"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = att.stdin.take().unwrap();
    let mut out = BufReader::new(att.stdout.take().unwrap());
    input.write_all(b"echo again-$((2+3))\n").unwrap();
    read_until(&mut out, "again-5");
    input.write_all(b"exit 7\n").unwrap();
    assert_eq!(att.wait().unwrap().code(), Some(7));
    assert_eq!(state(&env, "shell"), "exited");
    env.ok(&["rm", "shell"]);
}

#[test]
fn the_monitor_is_its_own_program_and_a_killed_one_is_repaired() {
    let env = Env::new("monitor");
    env.import_busybox();
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "sleeper",
            "--network",
            "none",
            "busybox",
            "sleep",
            "600",
        ])
        .trim()
        .to_string();
    let pid = monitor_pid(&id).expect("a berth-monitor process for the container");
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "berth-monitor");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(
        exe.ends_with("lib/berth/berth-monitor"),
        "{}",
        exe.display()
    );
    // The attach socket lives in the container's directory while it runs.
    let sock = env
        .root
        .join("state/containers")
        .join(&id)
        .join("attach.sock");
    assert!(sock.exists(), "{}", sock.display());
    // SIGKILL the monitor: the container still runs, and stop/rm still work.
    nix_kill(pid);
    assert_eq!(state(&env, "sleeper"), "running");
    env.ok(&["stop", "-t", "1", "sleeper"]);
    let st = state(&env, "sleeper");
    assert_eq!(st, "exited");
    env.ok(&["rm", "sleeper"]);
    assert!(mounts_under(&env.root).is_empty());
}

fn nix_kill(pid: i32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    // Gone (reaped by init) before we look at the record.
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z")) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn events_json(env: &Env, extra: &[&str], since: &str) -> Vec<serde_json::Value> {
    let mut args = vec![
        "events", "--since", since, "--until", "0s", "--format", "json",
    ];
    args.extend_from_slice(extra);
    env.ok(&args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn events_journal_records_a_run_and_filters() {
    let env = Env::new("events");
    env.import_busybox();
    let since = chrono::Utc::now().timestamp().to_string();
    // A follower (--since without --until: the past, then what comes) sees the run.
    let mut follower = Reaped(
        env.cmd(&[
            "events",
            "--since",
            &since,
            "--filter",
            "event=start",
            "--format",
            "{{.Actor.Attributes.name}}",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let o = env.run(&[
        "run",
        "--rm",
        "--name",
        "evrun",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "exit 3",
    ]);
    assert_eq!(o.status.code(), Some(3));
    env.ok(&["network", "create", "evnet"]);
    env.ok(&["volume", "create", "evvol"]);
    env.ok(&["tag", "busybox", "evtag:1"]);
    let mut line = String::new();
    BufReader::new(follower.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "evrun");
    drop(follower);

    let all = events_json(&env, &["--filter", "container=evrun"], &since);
    let actions: Vec<&str> = all.iter().map(|e| e["Action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["create", "start", "die", "destroy"], "{all:?}");
    for e in &all {
        assert_eq!(e["Type"], "container");
        assert_eq!(e["Actor"]["Attributes"]["name"], "evrun");
        assert_eq!(e["Actor"]["Attributes"]["image"], "busybox");
        assert_eq!(e["scope"], "local");
        assert!(e["timeNano"].as_i64().unwrap() / 1_000_000_000 == e["time"].as_i64().unwrap());
    }
    let dies = events_json(
        &env,
        &["--filter", "type=container", "--filter", "event=die"],
        &since,
    );
    assert_eq!(dies.len(), 1, "{dies:?}");
    assert_eq!(dies[0]["Actor"]["Attributes"]["exitCode"], "3");
    let nets = events_json(&env, &["--filter", "type=network"], &since);
    assert!(
        nets.iter()
            .any(|e| e["Action"] == "create" && e["Actor"]["Attributes"]["name"] == "evnet"),
        "{nets:?}"
    );
    assert!(nets.iter().all(|e| e["Type"] == "network"));
    let vols = events_json(&env, &["--filter", "volume=evvol"], &since);
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0]["Action"], "create");
    let tags = events_json(
        &env,
        &["--filter", "type=image", "--filter", "event=tag"],
        &since,
    );
    assert!(
        tags.iter()
            .any(|e| e["Actor"]["Attributes"]["name"] == "evtag:1"),
        "{tags:?}"
    );
    // The default text form, and errors.
    let text = env.ok(&[
        "events",
        "--since",
        &since,
        "--until",
        "0s",
        "--filter",
        "event=destroy",
    ]);
    assert!(
        text.contains(" container destroy ") && text.contains("name=evrun"),
        "{text}"
    );
    let o = env.run(&[
        "events",
        "--since",
        &since,
        "--until",
        "0s",
        "--filter",
        "colour=red",
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("colour"));
    let o = env.run(&["events", "--since", "yesterday-ish", "--until", "0s"]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--since"));
    env.ok(&["network", "rm", "evnet"]);
}
