//! Measures the `berth-dns` binary: time from spawn to the first answered query, and the
//! latency of single queries (local answers). Loopback only.
//!
//! `cargo build --release -p berth-bridge-dns && cargo run --release -p berth-bridge-dns
//! --example measure -- <path/to/berth-dns> [runs=20] [queries=5000]`

use std::{
    net::{SocketAddr, UdpSocket},
    process::{Command, Stdio},
    str::FromStr,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RecordType},
};

fn query(name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(
        Name::from_str(name).expect("name"),
        RecordType::A,
    ));
    m.to_vec().expect("encode")
}

fn stats(label: &str, mut v: Vec<Duration>) {
    v.sort();
    let n = v.len();
    let mean = v.iter().sum::<Duration>() / n as u32;
    println!(
        "{label}: n={n} min={:?} p50={:?} p90={:?} p99={:?} max={:?} mean={mean:?}",
        v[0],
        v[n / 2],
        v[n * 9 / 10],
        v[(n * 99 / 100).min(n - 1)],
        v[n - 1]
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let bin = args
        .next()
        .expect("usage: measure <berth-dns> [runs] [queries]");
    let runs: usize = args.next().map_or(20, |s| s.parse().expect("runs"));
    let queries: usize = args.next().map_or(5000, |s| s.parse().expect("queries"));
    let dir = tempfile::tempdir().expect("tempdir");
    let hosts = dir.path().join("net");
    std::fs::write(&hosts, "10.89.0.2 web www\n10.89.0.3 db\n").expect("write records");
    let q = query("web.dns.berth.");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let mut buf = [0u8; 1500];

    let mut startup = Vec::new();
    for i in 0..runs {
        let addr: SocketAddr = format!("127.79.0.{}:5353", i % 200 + 1)
            .parse()
            .expect("addr");
        let t0 = Instant::now();
        let mut child = Command::new(&bin)
            .args(["--listen", &addr.to_string(), "--no-upstream", "--hosts"])
            .arg(&hosts)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        sock.set_read_timeout(Some(Duration::from_micros(500)))
            .expect("timeout");
        loop {
            let _ = sock.send_to(&q, addr);
            if let Ok((_, from)) = sock.recv_from(&mut buf) {
                if from == addr {
                    break;
                }
            }
            assert!(t0.elapsed() < Duration::from_secs(5), "no answer");
        }
        startup.push(t0.elapsed());
        let _ = child.kill();
        let _ = child.wait();
        // Drain late answers to the retries.
        while sock.recv_from(&mut buf).is_ok() {}
    }
    stats("spawn -> first answer", startup);

    let addr: SocketAddr = "127.79.1.1:5353".parse().expect("addr");
    let mut child = Command::new(&bin)
        .args(["--listen", &addr.to_string(), "--no-upstream", "--hosts"])
        .arg(&hosts)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    std::thread::sleep(Duration::from_millis(100));
    for (label, name) in [
        ("local A query", "web.dns.berth."),
        ("NXDOMAIN (no upstream)", "nope.example."),
    ] {
        let q = query(name);
        let mut lat = Vec::with_capacity(queries);
        for _ in 0..queries {
            let t = Instant::now();
            sock.send_to(&q, addr).expect("send");
            sock.recv_from(&mut buf).expect("answer");
            lat.push(t.elapsed());
        }
        stats(label, lat);
    }
    let _ = child.kill();
    let _ = child.wait();
}
