//! The responder driven in-process on 127.0.0.1 with free ports, against a fake upstream
//! on another loopback port.

mod common;

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::{atomic::Ordering, mpsc},
    time::Duration,
};

use berth_bridge_dns::{
    server::{Config, Exit, Server, Upstreams},
    RecordsFile,
};
use common::*;
use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{Name, RecordType},
    serialize::binary::BinDecodable,
};
use tokio::sync::oneshot;

/// A running responder with its records file; stops on drop.
struct Dns {
    addr: SocketAddr,
    records: RecordsFile,
    stop: Option<oneshot::Sender<()>>,
    exit: mpsc::Receiver<Exit>,
    _dir: tempfile::TempDir,
    _bg: Bg,
}

impl Dns {
    fn start(upstreams: Upstreams) -> Dns {
        Dns::start_with(upstreams, |_| {})
    }

    fn start_with(upstreams: Upstreams, tweak: impl FnOnce(&mut Config)) -> Dns {
        let dir = tempfile::tempdir().unwrap();
        let path: PathBuf = dir.path().join("net1");
        let records = RecordsFile::new("net1", &path);
        records.add(ip(2), &["web", "www", "3f2a1b4c5d6e"]).unwrap();
        records.add(ip(3), &["db"]).unwrap();
        let mut cfg = Config::new(vec!["127.0.0.1:0".parse().unwrap()], &path);
        cfg.upstreams = upstreams;
        cfg.upstream_timeout = Duration::from_millis(300);
        cfg.poll_interval = Duration::from_millis(50);
        cfg.ttl = 0;
        tweak(&mut cfg);
        let bg = Bg::new();
        let server = bg.run(Server::bind(cfg)).unwrap();
        let addr = server.local_addrs()[0];
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (exit_tx, exit) = mpsc::channel();
        bg.handle.spawn(async move {
            let e = server
                .run(async {
                    let _ = stop_rx.await;
                })
                .await;
            let _ = exit_tx.send(e);
        });
        Dns {
            addr,
            records,
            stop: Some(stop),
            exit,
            _dir: dir,
            _bg: bg,
        }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

fn ip(d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 89, 0, d))
}

#[test]
fn a_records_for_names_aliases_any_case_and_search_domain() {
    let dns = Dns::start(Upstreams::None);
    for name in [
        "web.",
        "www.",
        "3f2a1b4c5d6e.",
        "WeB.",
        "web.dns.berth.",
        "WWW.Dns.Berth.",
    ] {
        let r = udp_query(dns.addr, name, RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{name}");
        assert!(r.metadata.authoritative);
        assert_eq!(answers(&r), vec!["10.89.0.2"], "{name}");
        // The owner name is the question as asked.
        assert_eq!(r.answers[0].name, Name::from_ascii(name).unwrap());
    }
    assert_eq!(
        answers(&udp_query(dns.addr, "db.", RecordType::A)),
        vec!["10.89.0.3"]
    );
}

#[test]
fn aaaa_of_a_v4_only_name_is_empty_noerror() {
    let dns = Dns::start(Upstreams::None);
    let r = udp_query(dns.addr, "web.dns.berth.", RecordType::AAAA);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
}

#[test]
fn ptr_of_recorded_addresses() {
    let dns = Dns::start(Upstreams::None);
    let r = udp_query(dns.addr, "2.0.89.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(answers(&r), vec!["web.dns.berth."]);
    let r = udp_query(dns.addr, "3.0.89.10.IN-ADDR.ARPA.", RecordType::PTR);
    assert_eq!(answers(&r), vec!["db.dns.berth."]);
}

#[test]
fn nxdomain_for_unknown_names_without_upstream() {
    let dns = Dns::start(Upstreams::None);
    for name in ["nope.", "nope.dns.berth.", "example.com."] {
        let r = udp_query(dns.addr, name, RecordType::A);
        assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert!(r.answers.is_empty());
    }
}

#[test]
fn forwards_other_names_to_the_upstream() {
    let bg = Bg::new();
    let up = FakeUpstream::start(&bg, Mode::Answer { count: 2 });
    let dns = Dns::start(Upstreams::Fixed(vec![up.addr]));
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(answers(&r), vec!["192.0.2.1", "192.0.2.2"]);
    let r = udp_query(dns.addr, "nxthing.example.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.udp_queries.load(Ordering::SeqCst), 2);
    // Local names never reach the upstream, nor do unknown names under the domain.
    udp_query(dns.addr, "web.", RecordType::A);
    let r = udp_query(dns.addr, "nope.dns.berth.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(up.udp_queries.load(Ordering::SeqCst), 2);
}

#[test]
fn upstreams_from_resolv_conf_are_reread() {
    // resolv.conf names port 53 only: the fake runs on port 53 of a loopback address
    // of its own (all of 127/8 is local).
    let bg = Bg::new();
    let up = FakeUpstream::start_on(&bg, Mode::Answer { count: 1 }, unique_loopback(53));
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("resolv.conf");
    std::fs::write(
        &conf,
        format!("search example\nnameserver {}\n", up.addr.ip()),
    )
    .unwrap();
    let dns = Dns::start(Upstreams::ResolvConf(conf.clone()));
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(answers(&r), vec!["192.0.2.1"]);
    assert!(r.metadata.recursion_available);
    assert_eq!(up.udp_queries.load(Ordering::SeqCst), 1);
    // Without nameservers, nothing is forwarded: NXDOMAIN.
    std::fs::write(&conf, "search example\n").unwrap();
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    assert!(!r.metadata.recursion_available);
    assert_eq!(up.udp_queries.load(Ordering::SeqCst), 1);
}

#[test]
fn servfail_when_the_upstream_is_dead_or_silent() {
    let dns = Dns::start(Upstreams::Fixed(vec![dead_port()]));
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);

    let bg = Bg::new();
    let silent = FakeUpstream::start(&bg, Mode::Silent);
    let dns = Dns::start(Upstreams::Fixed(vec![silent.addr]));
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(silent.udp_queries.load(Ordering::SeqCst), 1);
}

#[test]
fn next_upstream_after_servfail_or_death() {
    let bg = Bg::new();
    let bad = FakeUpstream::start(&bg, Mode::ServFail);
    let good = FakeUpstream::start(&bg, Mode::Answer { count: 1 });
    let dns = Dns::start(Upstreams::Fixed(vec![dead_port(), bad.addr, good.addr]));
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(answers(&r), vec!["192.0.2.1"]);
    assert_eq!(bad.udp_queries.load(Ordering::SeqCst), 1);
}

#[test]
fn truncated_upstream_answer_is_fetched_over_tcp() {
    let bg = Bg::new();
    let up = FakeUpstream::start(&bg, Mode::TruncateUdp { count: 3 });
    let dns = Dns::start(Upstreams::Fixed(vec![up.addr]));
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert!(!r.metadata.truncation);
    assert_eq!(answers(&r).len(), 3);
    assert_eq!(up.tcp_queries.load(Ordering::SeqCst), 1);
}

#[test]
fn too_big_for_the_client_udp_size_is_truncated() {
    // 40 A records (~660 bytes) exceed a plain 512-byte UDP answer: the client is told to
    // retry over TCP, where it gets everything.
    let bg = Bg::new();
    let up = FakeUpstream::start(&bg, Mode::TruncateUdp { count: 40 });
    let dns = Dns::start(Upstreams::Fixed(vec![up.addr]));
    let r = udp_query(dns.addr, "example.com.", RecordType::A);
    assert!(r.metadata.truncation);
    assert!(r.answers.is_empty());
    let r = tcp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(answers(&r).len(), 40);
}

#[test]
fn tcp_queries_local_and_forwarded() {
    let bg = Bg::new();
    let up = FakeUpstream::start(&bg, Mode::Answer { count: 1 });
    let dns = Dns::start(Upstreams::Fixed(vec![up.addr]));
    let r = tcp_query(dns.addr, "web.dns.berth.", RecordType::A);
    assert_eq!(answers(&r), vec!["10.89.0.2"]);
    let r = tcp_query(dns.addr, "example.com.", RecordType::A);
    assert_eq!(answers(&r), vec!["192.0.2.1"]);
}

#[test]
fn changes_are_seen_by_the_next_query() {
    let dns = Dns::start(Upstreams::None);
    let r = udp_query(dns.addr, "new.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    dns.records.add(ip(9), &["new"]).unwrap();
    assert_eq!(
        answers(&udp_query(dns.addr, "new.", RecordType::A)),
        vec!["10.89.0.9"]
    );
    dns.records.remove(ip(2)).unwrap();
    let r = udp_query(dns.addr, "web.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    // Several replacements in a row, each checked at once.
    for i in 10..20u8 {
        dns.records.add(ip(i), &[format!("c{i}")]).unwrap();
        let r = udp_query(dns.addr, &format!("c{i}.dns.berth."), RecordType::A);
        assert_eq!(answers(&r), vec![format!("10.89.0.{i}")]);
    }
}

#[test]
fn exits_when_the_records_file_is_removed() {
    let dns = Dns::start(Upstreams::None);
    dns.records.delete().unwrap();
    let exit = dns.exit.recv_timeout(TIMEOUT).unwrap();
    assert_eq!(exit, Exit::RecordsRemoved);
}

#[test]
fn stops_on_shutdown() {
    let mut dns = Dns::start(Upstreams::None);
    dns.stop.take().unwrap().send(()).unwrap();
    assert_eq!(dns.exit.recv_timeout(TIMEOUT).unwrap(), Exit::Shutdown);
}

#[test]
fn malformed_queries_are_answered_or_dropped_without_harm() {
    let dns = Dns::start(Upstreams::None);
    // Too short for a header: dropped.
    assert!(udp_exchange_timeout(dns.addr, &[1, 2, 3], Duration::from_millis(200)).is_none());
    // A header announcing a question that is not there: FORMERR with the id.
    let bad = [0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'w'];
    let r = Message::from_bytes(&udp_exchange(dns.addr, &bad).unwrap()).unwrap();
    assert_eq!(r.metadata.id, 0xabcd);
    assert_eq!(r.metadata.response_code, ResponseCode::FormErr);
    // A response is never answered (no loops).
    let mut resp = query_msg("web.", RecordType::A);
    resp.metadata.message_type = hickory_proto::op::MessageType::Response;
    assert!(udp_exchange_timeout(
        dns.addr,
        &resp.to_vec().unwrap(),
        Duration::from_millis(200)
    )
    .is_none());
    // Still serving.
    assert_eq!(
        answers(&udp_query(dns.addr, "web.", RecordType::A)),
        vec!["10.89.0.2"]
    );
}

#[test]
fn bind_fails_clearly_without_records_file_or_on_a_taken_port() {
    let bg = Bg::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::new(
        vec!["127.0.0.1:0".parse().unwrap()],
        dir.path().join("missing"),
    );
    let err = bg.run(Server::bind(cfg)).err().unwrap().to_string();
    assert!(err.contains("does not exist"), "{err}");

    let dns = Dns::start(Upstreams::None);
    let path = dns.records.path().to_path_buf();
    let cfg = Config::new(vec![dns.addr], path);
    let err = bg.run(Server::bind(cfg)).err().unwrap().to_string();
    assert!(
        err.contains("bind udp") && err.contains(&dns.addr.to_string()),
        "{err}"
    );
}

#[test]
fn search_domain_can_be_changed_or_disabled() {
    let dns = Dns::start_with(Upstreams::None, |c| c.domain = "internal.example".into());
    let r = udp_query(dns.addr, "web.internal.example.", RecordType::A);
    assert_eq!(answers(&r), vec!["10.89.0.2"]);
    let r = udp_query(dns.addr, "web.dns.berth.", RecordType::A);
    assert_eq!(r.metadata.response_code, ResponseCode::NXDomain);
    let dns = Dns::start_with(Upstreams::None, |c| c.domain = String::new());
    let r = udp_query(dns.addr, "2.0.89.10.in-addr.arpa.", RecordType::PTR);
    assert_eq!(answers(&r), vec!["web."]);
}

#[test]
fn many_concurrent_clients() {
    let dns = Dns::start(Upstreams::None);
    let addr = dns.addr;
    let handles: Vec<_> = (0..8)
        .map(|_| {
            std::thread::spawn(move || {
                for _ in 0..50 {
                    assert_eq!(
                        answers(&udp_query(addr, "db.", RecordType::A)),
                        vec!["10.89.0.3"]
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
