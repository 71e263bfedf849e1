//! The `berth-dns` binary: readiness through the pid file, answers, SIGTERM, exit when
//! the records file is removed, start-up errors.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use berth_bridge_dns::{pidfile, RecordsFile};
use common::*;
use hickory_proto::{op::ResponseCode, rr::RecordType};
use nix::{
    sys::signal::{kill, Signal},
    unistd::Pid,
};

const BIN: &str = env!("CARGO_BIN_EXE_berth-dns");

/// A spawned responder; killed on drop if still running.
struct Proc {
    child: Child,
    addr: SocketAddr,
    pidfile: PathBuf,
    records: RecordsFile,
    _dir: tempfile::TempDir,
}

impl Proc {
    fn spawn(extra: &[&str]) -> Proc {
        let dir = tempfile::tempdir().unwrap();
        let records = RecordsFile::new("net1", dir.path().join("net1"));
        records
            .add(IpAddr::V4(Ipv4Addr::new(10, 89, 0, 2)), &["web", "www"])
            .unwrap();
        let pidfile = dir.path().join("dns.pid");
        let addr = unique_loopback(5353);
        let child = Command::new(BIN)
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--hosts")
            .arg(records.path())
            .arg("--pidfile")
            .arg(&pidfile)
            .arg("--poll-interval-ms")
            .arg("50")
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let p = Proc {
            child,
            addr,
            pidfile,
            records,
            _dir: dir,
        };
        p.wait_ready();
        p
    }

    /// The pid file appears once the sockets are bound.
    fn wait_ready(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.pidfile.exists() {
            assert!(Instant::now() < deadline, "berth-dns did not become ready");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "berth-dns did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn stderr_of(p: &mut Proc) -> String {
    use std::io::Read;
    let mut s = String::new();
    if let Some(mut e) = p.child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

#[test]
fn answers_and_stops_cleanly_on_sigterm() {
    let mut p = Proc::spawn(&["--no-upstream"]);
    let pid = pidfile::read_pid(&p.pidfile).unwrap().unwrap();
    assert_eq!(pid, p.child.id());
    assert_eq!(
        pidfile::running_pid(&p.pidfile, "berth-dns").unwrap(),
        Some(pid)
    );
    let r = udp_query(p.addr, "WWW.dns.berth.", RecordType::A);
    assert_eq!(answers(&r), vec!["10.89.0.2"]);
    let r = tcp_query(p.addr, "web.", RecordType::A);
    assert_eq!(answers(&r), vec!["10.89.0.2"]);
    let r = udp_query(p.addr, "example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    kill(Pid::from_raw(pid as i32), Signal::SIGTERM).unwrap();
    assert!(p.wait_exit().success());
    assert!(!p.pidfile.exists());
    let log = stderr_of(&mut p);
    assert!(log.contains("SIGTERM"), "{log}");
}

#[test]
fn sigint_is_a_clean_exit_too() {
    let mut p = Proc::spawn(&["--no-upstream"]);
    kill(Pid::from_raw(p.child.id() as i32), Signal::SIGINT).unwrap();
    assert!(p.wait_exit().success());
    assert!(!p.pidfile.exists());
}

#[test]
fn exits_by_itself_when_the_records_file_is_removed() {
    let mut p = Proc::spawn(&["--no-upstream"]);
    p.records
        .add(IpAddr::V4(Ipv4Addr::new(10, 89, 0, 3)), &["db"])
        .unwrap();
    assert_eq!(
        answers(&udp_query(p.addr, "db.", RecordType::A)),
        vec!["10.89.0.3"]
    );
    p.records.delete().unwrap();
    assert!(p.wait_exit().success());
    assert!(!p.pidfile.exists());
    let log = stderr_of(&mut p);
    assert!(log.contains("records file removed"), "{log}");
}

#[test]
fn forwards_to_the_upstream_given_on_the_command_line() {
    let bg = Bg::new();
    let up = FakeUpstream::start(&bg, Mode::Answer { count: 1 });
    let p = Proc::spawn(&["--upstream", &up.addr.to_string()]);
    let r = udp_query(p.addr, "example.com.", RecordType::A);
    assert_eq!(answers(&r), vec!["192.0.2.1"]);
}

fn run_to_failure(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn start_up_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let addr = unique_loopback(5353).to_string();
    let err = run_to_failure(&["--listen", &addr, "--hosts", path(&missing)]);
    assert!(err.contains("does not exist"), "{err}");
    let err = run_to_failure(&["--hosts", path(&missing)]);
    assert!(err.contains("--listen"), "{err}");
    let err = run_to_failure(&["--listen", &addr, "--hosts", "x", "--upstream", "nonsense"]);
    assert!(err.contains("neither IP nor IP:PORT"), "{err}");
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}
