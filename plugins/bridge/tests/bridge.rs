//! Integration tests (need root): real bridges, veths, namespaces and nftables, all with
//! `bt` names, traffic only inside test namespaces and on loopback.

mod common;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use berth_abi::{ErrorKind, NetworkBackend};
use common::*;

macro_rules! need_root {
    () => {
        if !berth_testkit::require_root() {
            return;
        }
    };
}

#[test]
fn same_network_talks_other_network_is_isolated() {
    need_root!();
    let env = Env::new("10.201.0.0/24");
    let u = uniq();
    let (na, nb) = (format!("bta{u}"), format!("btb{u}"));
    env.b
        .create_network(&spec(&na, Some("10.201.1.0/24")))
        .unwrap();
    env.b
        .create_network(&spec(&nb, Some("10.201.2.0/24")))
        .unwrap();
    let (ns1, ns2, ns3) = (Netns::new(), Netns::new(), Netns::new());
    let r1 = env.b.attach(&attach_req("c1", &ns1, &na, vec![])).unwrap();
    let r2 = env.b.attach(&attach_req("c2", &ns2, &na, vec![])).unwrap();
    let _r3 = env.b.attach(&attach_req("c3", &ns3, &nb, vec![])).unwrap();
    assert_eq!(r1.gateway, Some("10.201.1.1".into()));
    assert_ne!(addr_of(&r1), addr_of(&r2));
    env.b.check(&detach_req("c1", &ns1.path(), &na)).unwrap();

    let server = listen_in(&ns2, 7000);
    let target: SocketAddr = format!("{}:7000", addr_of(&r2)).parse().unwrap();
    let got = ns1.run(|| fetch(target, b"")).unwrap();
    assert_eq!(got, "hello from bt\n");
    // Another network: forwarding between two berth bridges is dropped.
    let blocked = ns3.run(|| fetch(target, b""));
    assert!(blocked.is_err(), "network {nb} reached {na}: {blocked:?}");
    // Unblock the server thread (it serves at most 4 connections).
    for _ in 0..3 {
        let _ = ns1.run(|| fetch(target, b""));
    }
    server.join().unwrap();

    // The network inspection names the attached containers.
    let info = env.b.inspect_network(&na).unwrap();
    let ids: Vec<&str> = info.containers.iter().map(|c| c.as_str()).collect();
    assert_eq!(ids, vec!["c1", "c2"]);
    // Busy while attached.
    let err = env.b.remove_network(&na).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Busy);
    assert!(err.message().contains("c1"), "{}", err.message());

    // Idempotent attach returns the same result.
    let again = env.b.attach(&attach_req("c1", &ns1, &na, vec![])).unwrap();
    assert_eq!(again, r1);
    // Host veth deleted behind our back: check fails, attach repairs.
    let veth = r1.interfaces[0].host_interface.to_string();
    std::process::Command::new("ip")
        .args(["link", "del", &veth])
        .status()
        .unwrap();
    assert_eq!(
        env.b
            .check(&detach_req("c1", &ns1.path(), &na))
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    env.b.attach(&attach_req("c1", &ns1, &na, vec![])).unwrap();
    env.b.check(&detach_req("c1", &ns1.path(), &na)).unwrap();

    for (c, ns, n) in [("c1", &ns1, &na), ("c2", &ns2, &na), ("c3", &ns3, &nb)] {
        env.b.detach(&detach_req(c, &ns.path(), n)).unwrap();
        // Twice is fine.
        env.b.detach(&detach_req(c, &ns.path(), n)).unwrap();
    }
    let bridges: Vec<String> = env
        .b
        .list_networks()
        .unwrap()
        .iter()
        .map(|n| n.interface.to_string())
        .collect();
    env.b.remove_network(&na).unwrap();
    env.b.remove_network(&nb).unwrap();
    assert_eq!(
        env.b.remove_network(&na).unwrap_err().kind,
        ErrorKind::NotFound
    );
    for br in bridges {
        assert!(!link_exists(&br), "bridge {br} left behind");
    }
    assert!(!link_exists(&veth));
    assert!(!ruleset().contains(&env.table), "table left behind");
    assert_eq!(std::fs::read_dir(env.state_dir()).unwrap().count(), 0);
}

#[test]
fn published_port_answers_on_loopback() {
    need_root!();
    let env = Env::new("10.202.0.0/24");
    // The default network as the host creates it.
    let info = env.b.create_network(&spec("bridge", None)).unwrap();
    assert_eq!(info.interface.as_str(), env.default_bridge);
    assert_eq!(info.subnet.as_str(), "10.202.0.0/24");
    let ns = Netns::new();
    let www = tempfile::tempdir().unwrap();
    std::fs::write(www.path().join("index.html"), "bt-httpd-works\n").unwrap();
    let r = env
        .b
        .attach(&attach_req(
            "web",
            &ns,
            "bridge",
            vec![port("127.0.0.1", 0, 80)],
        ))
        .unwrap();
    let hp = r.ports[0].host_port;
    assert_ne!(hp, 0, "host port 0 resolved");
    assert_eq!(r.ports[0].container_port, 80);
    let _httpd = ns.spawn(&[
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        www.path().to_str().unwrap(),
    ]);
    let addr: SocketAddr = format!("127.0.0.1:{hp}").parse().unwrap();
    let mut body = Err(std::io::Error::other("not tried"));
    for _ in 0..50 {
        body = fetch(addr, b"GET /index.html HTTP/1.0\r\n\r\n");
        if body.as_ref().is_ok_and(|b| b.contains("bt-httpd-works")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let body = body.unwrap();
    assert!(body.contains("bt-httpd-works"), "{body}");
    env.b
        .check(&detach_req("web", &ns.path(), "bridge"))
        .unwrap();
    assert!(ruleset().contains(&format!("127.0.0.1 . tcp . {hp}")));

    // The same host port for another container: Busy, naming the port, nothing created.
    let ns2 = Netns::new();
    let err = env
        .b
        .attach(&attach_req("web2", &ns2, "bridge", vec![port("", hp, 80)]))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Busy);
    assert!(err.message().contains(&hp.to_string()), "{}", err.message());
    // A port held by a listening socket of the host.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = l.local_addr().unwrap().port();
    let err = env
        .b
        .attach(&attach_req(
            "web2",
            &ns2,
            "bridge",
            vec![port("127.0.0.1", taken, 80)],
        ))
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Busy);
    assert!(
        err.message().contains(&taken.to_string()),
        "{}",
        err.message()
    );
    assert_eq!(
        env.b.inspect_network("bridge").unwrap().containers.len(),
        1,
        "failed attach left a lease"
    );
    let no_eth = !has_link_in(&ns2, "eth0");
    assert!(no_eth, "failed attach left an interface");

    env.b
        .detach(&detach_req("web", &ns.path(), "bridge"))
        .unwrap();
    assert!(!ruleset().contains(&format!("127.0.0.1 . tcp . {hp}")));
    env.b.remove_network("bridge").unwrap();
    assert!(!link_exists(&env.default_bridge));
    assert!(!ruleset().contains(&env.table));
}

#[test]
fn parallel_attaches_get_distinct_addresses() {
    need_root!();
    let env = Arc::new(Env::new("10.203.0.0/24"));
    let net = format!("btp{}", uniq());
    let br = env
        .b
        .create_network(&spec(&net, Some("10.203.1.0/24")))
        .unwrap()
        .interface
        .to_string();
    let nss: Vec<Netns> = (0..20).map(|_| Netns::new()).collect();
    let results: Vec<(String, String)> = std::thread::scope(|s| {
        let hs: Vec<_> = nss
            .iter()
            .enumerate()
            .map(|(i, ns)| {
                let env = env.clone();
                let net = net.clone();
                s.spawn(move || {
                    let r = env
                        .b
                        .attach(&attach_req(&format!("p{i}"), ns, &net, vec![]))
                        .unwrap();
                    (addr_of(&r), r.interfaces[0].host_interface.to_string())
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut uniq_addrs: Vec<String> = results.iter().map(|r| r.0.clone()).collect();
    uniq_addrs.sort();
    uniq_addrs.dedup();
    assert_eq!(uniq_addrs.len(), 20, "duplicate addresses: {results:?}");
    // Namespace gone before detach: still succeeds.
    let first = nss[0].path();
    drop(nss);
    env.b.detach(&detach_req("p0", &first, &net)).unwrap();
    for i in 1..20 {
        env.b
            .detach(&detach_req(&format!("p{i}"), "/nonexistent", &net))
            .unwrap();
    }
    assert!(env.b.inspect_network(&net).unwrap().containers.is_empty());
    env.b.remove_network(&net).unwrap();
    let links = String::from_utf8(
        std::process::Command::new("ip")
            .args(["-br", "link"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(!links.contains(&br), "{links}");
    for (_, veth) in &results {
        assert!(
            !links.contains(veth.as_str()),
            "veth {veth} left behind: {links}"
        );
    }
}

#[test]
fn bad_input_is_refused_clearly() {
    need_root!();
    let env = Env::new("10.204.0.0/24");
    let u = uniq();
    let small = format!("bts{u}");
    env.b
        .create_network(&spec(&small, Some("10.204.8.0/29")))
        .unwrap();
    // Overlapping and malformed subnets, bad gateway, taken name.
    let e = env
        .b
        .create_network(&spec(&format!("bto{u}"), Some("10.204.8.0/24")))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(e.message().contains(&small), "{}", e.message());
    let e = env
        .b
        .create_network(&spec(&format!("btm{u}"), Some("10.204.9.0/33")))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    let mut g = spec(&format!("btg{u}"), Some("10.204.10.0/24"));
    g.gateway = Some("10.205.0.1".into());
    assert_eq!(
        env.b.create_network(&g).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    assert_eq!(
        env.b
            .create_network(&spec(&small, Some("10.204.11.0/24")))
            .unwrap_err()
            .kind,
        ErrorKind::AlreadyExists
    );
    // A subnet picked from the pool.
    let auto = env
        .b
        .create_network(&spec(&format!("bta{u}"), None))
        .unwrap();
    assert!(auto.subnet.starts_with("10.210."), "{}", auto.subnet);

    // A /29 holds 5 containers; the 6th is Exhausted and leaves nothing behind.
    let nss: Vec<Netns> = (0..6).map(|_| Netns::new()).collect();
    for (i, ns) in nss.iter().take(5).enumerate() {
        env.b
            .attach(&attach_req(&format!("x{i}"), ns, &small, vec![]))
            .unwrap();
    }
    let e = env
        .b
        .attach(&attach_req("x5", &nss[5], &small, vec![]))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Exhausted);
    assert!(e.message().contains("10.204.8.0/29"), "{}", e.message());
    assert!(!has_link_in(&nss[5], "eth0"));
    // Static address: taken → Busy; gateway → invalid; free → honoured.
    env.b
        .detach(&detach_req("x4", &nss[4].path(), &small))
        .unwrap();
    let mut req = attach_req("x5", &nss[5], &small, vec![]);
    req.static_ip = Some("10.204.8.1".into());
    assert_eq!(
        env.b.attach(&req).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
    let taken = env
        .b
        .inspect_network(&small)
        .map(|_| ())
        .and_then(|_| env.b.attach(&attach_req("x0", &nss[0], &small, vec![])))
        .map(|r| addr_of(&r))
        .unwrap();
    req.static_ip = Some(taken.as_str().into());
    assert_eq!(env.b.attach(&req).unwrap_err().kind, ErrorKind::Busy);
    req.static_ip = Some("10.204.8.6".into());
    let r = env.b.attach(&req).unwrap();
    assert_eq!(addr_of(&r), "10.204.8.6");
    // Unknown network.
    let e = env
        .b
        .attach(&attach_req("x9", &nss[4], "btnope", vec![]))
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    // Bad names never reach the kernel.
    let mut bad = attach_req("x9", &nss[4], &small, vec![]);
    bad.ifname = "this-name-is-too-long".into();
    assert_eq!(
        env.b.attach(&bad).unwrap_err().kind,
        ErrorKind::InvalidArgument
    );
}
