//! Concurrent `RecordsFile` writers in separate processes (this test binary re-executed)
//! lose no update, and glibc's stub resolver (`getent`) resolves through the binary.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use berth_bridge_dns::RecordsFile;
use common::*;

const WRITERS: usize = 4;
const PER_WRITER: usize = 30;

/// Not a test of its own: the body of one writer process, run by
/// `concurrent_processes_lose_no_update` with `--ignored`.
#[test]
#[ignore]
fn writer_child() {
    let (Ok(path), Ok(id)) = (
        std::env::var("BT_DNS_WRITER_PATH"),
        std::env::var("BT_DNS_WRITER_ID"),
    ) else {
        return;
    };
    let id: u8 = id.parse().unwrap();
    let f = RecordsFile::new("net", PathBuf::from(path));
    for i in 0..PER_WRITER {
        let ip = IpAddr::V4(Ipv4Addr::new(10, 92, id, i as u8 + 1));
        f.add(ip, &[format!("p{id}-{i}")]).unwrap();
    }
}

#[test]
fn concurrent_processes_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|id| {
            Command::new(&exe)
                .args(["--ignored", "--exact", "writer_child", "--test-threads=1"])
                .env("BT_DNS_WRITER_PATH", &path)
                .env("BT_DNS_WRITER_ID", id.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let r = RecordsFile::new("net", &path).read().unwrap();
    assert_eq!(r.len(), WRITERS * PER_WRITER);
}

/// glibc's resolver (port 53 only) through the real binary, in a private mount namespace
/// whose /etc/resolv.conf points at the responder on a loopback address of this test.
#[test]
fn glibc_resolves_bare_and_search_domain_names() {
    if !berth_testkit::require_command("unshare", "apt-get install util-linux")
        || !berth_testkit::require_command("getent", "apt-get install libc-bin")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let records = RecordsFile::new("net1", dir.path().join("net1"));
    records
        .add(
            IpAddr::V4(Ipv4Addr::new(10, 89, 0, 7)),
            &["glibcweb", "gw-alias"],
        )
        .unwrap();
    let addr = unique_loopback(53);
    let pidfile = dir.path().join("pid");
    let mut child = Command::new(env!("CARGO_BIN_EXE_berth-dns"))
        .args(["--listen", &addr.to_string(), "--no-upstream", "--pidfile"])
        .arg(&pidfile)
        .arg("--hosts")
        .arg(records.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + TIMEOUT;
    while !pidfile.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let conf = dir.path().join("resolv.conf");
    std::fs::write(
        &conf,
        format!(
            "nameserver {}\nsearch dns.berth\noptions timeout:2 attempts:1\n",
            addr.ip()
        ),
    )
    .unwrap();
    let script = format!(
        "mount --bind {} /etc/resolv.conf && getent hosts glibcweb && getent hosts gw-alias.dns.berth && getent hosts GW-ALIAS; echo rc=$?; getent hosts nosuchname; echo nx=$?",
        conf.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("rc=0"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches("10.89.0.7").count(), 3, "{stdout}");
    assert!(stdout.contains("nx=2"), "{stdout}");
}
