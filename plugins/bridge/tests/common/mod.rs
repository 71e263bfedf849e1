//! Shared fixtures: per-test network namespaces, plugin instances with `bt`-prefixed names,
//! and guards that remove everything on every path.
#![allow(dead_code)]

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command},
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use berth_abi::{
    AttachRequest, DetachRequest, NetworkBackend, NetworkSpec, PluginContext, PortMapping, Protocol,
};
use berth_plugin_bridge::Bridge;

static SEQ: AtomicU32 = AtomicU32::new(0);

pub fn uniq() -> String {
    format!(
        "{:x}{}",
        std::process::id() % 0xffff,
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// A network namespace `bt-<uniq>` removed on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!("bt-{}", uniq());
        let st = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(st.success(), "ip netns add {name}");
        Netns { name }
    }
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
    /// Runs `f` on a thread inside this namespace.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = self.path();
        std::thread::scope(|s| {
            s.spawn(move || {
                let fd = std::fs::File::open(&path).unwrap();
                nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                f()
            })
            .join()
            .unwrap()
        })
    }
    pub fn spawn(&self, args: &[&str]) -> ChildGuard {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(args)
            .spawn()
            .unwrap();
        ChildGuard(child)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A plugin instance with its own state dir, nft table and bt-prefixed interface names.
pub struct Env {
    pub b: Bridge,
    pub table: String,
    pub default_bridge: String,
    _dir: tempfile::TempDir,
}

pub fn config(table: &str, default_bridge: &str, default_subnet: &str) -> String {
    serde_json::json!({
        "table": table,
        "default_bridge": default_bridge,
        "default_subnet": default_subnet,
        "bridge_prefix": "bt-",
        "veth_prefix": "btv",
        "pool": "10.210.0.0/16",
    })
    .to_string()
}

impl Env {
    pub fn new(default_subnet: &str) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let u = uniq();
        let table = format!("bt_{u}");
        let default_bridge = format!("bt0-{u}");
        let ctx = PluginContext {
            state_dir: dir.path().to_str().unwrap().into(),
            run_dir: dir.path().to_str().unwrap().into(),
            config_json: config(&table, &default_bridge, default_subnet),
            root_dir: dir.path().to_str().unwrap().into(),
        };
        let b = Bridge::new(&ctx).unwrap();
        Env {
            b,
            table,
            default_bridge,
            _dir: dir,
        }
    }
    pub fn state_dir(&self) -> PathBuf {
        self._dir.path().join("networks")
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        cleanup(&self.b, &self.table);
    }
}

/// Detaches everything, removes every network and the table.
pub fn cleanup(b: &dyn NetworkBackend, table: &str) {
    if let Ok(nets) = b.list_networks() {
        for n in nets {
            for c in n.containers.iter() {
                let _ = b.detach(&detach_req(c.as_str(), "/nonexistent", n.name.as_str()));
            }
            let _ = b.remove_network(n.name.as_str());
        }
    }
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", table])
        .output();
}

pub fn spec(name: &str, subnet: Option<&str>) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        subnet: subnet.map(String::from),
        gateway: None,
        internal: false,
        options_json: "{}".into(),
    }
}

pub fn attach_req(cid: &str, ns: &Netns, network: &str, ports: Vec<PortMapping>) -> AttachRequest {
    AttachRequest {
        container_id: cid.into(),
        container_name: cid.into(),
        netns_path: ns.path(),
        network: network.into(),
        ifname: "eth0".into(),
        static_ip: None,
        aliases: Vec::new(),
        ports,
    }
}

pub fn detach_req(cid: &str, netns: &str, network: &str) -> DetachRequest {
    DetachRequest {
        container_id: cid.into(),
        netns_path: netns.into(),
        network: network.into(),
        ifname: "eth0".into(),
    }
}

pub fn port(host_ip: &str, host: u16, ctr: u16) -> PortMapping {
    PortMapping {
        host_ip: host_ip.into(),
        host_port: host,
        container_port: ctr,
        protocol: Protocol::Tcp,
    }
}

pub fn link_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["link", "show", "dev", name])
        .output()
        .unwrap()
        .status
        .success()
}

pub fn ruleset() -> String {
    String::from_utf8(
        Command::new("nft")
            .args(["list", "ruleset"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
}

/// Address (without prefix) of the first interface in an attach result.
pub fn addr_of(r: &berth_abi::AttachResult) -> String {
    r.interfaces[0].addresses[0]
        .split('/')
        .next()
        .unwrap()
        .to_string()
}

/// Serves one line per connection until dropped (inside the namespace it was created in).
pub fn listen_in(ns: &Netns, port: u16) -> std::thread::JoinHandle<()> {
    let path = ns.path();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        let fd = std::fs::File::open(&path).unwrap();
        nix::sched::setns(&fd, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let l = TcpListener::bind(("0.0.0.0", port)).unwrap();
        tx.send(()).unwrap();
        // Bounded: serve at most 4 connections, each answered once.
        l.set_nonblocking(false).unwrap();
        for mut s in l.incoming().take(4).flatten() {
            let _ = s.write_all(b"hello from bt\n");
        }
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap();
    h
}

/// Connects (bounded timeout) and reads what the server says.
pub fn fetch(addr: SocketAddr, send: &[u8]) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(send)?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

/// Whether `ifname` exists inside the namespace.
pub fn has_link_in(ns: &Netns, ifname: &str) -> bool {
    Command::new("ip")
        .args([
            "netns", "exec", &ns.name, "ip", "link", "show", "dev", ifname,
        ])
        .output()
        .unwrap()
        .status
        .success()
}
