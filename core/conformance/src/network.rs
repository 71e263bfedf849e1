//! The network suite: CNI's ADD/DEL/CHECK contract of [`NetworkBackend`] as berth relies on
//! it. Needs root and `ip` (it makes its own network namespaces, `bt-conf-…`).
//!
//! Every network it creates is named `bt-conf-<pid>-<n>` and removed, with its
//! attachments, also when a case fails. Objects a backend makes on the host for a network
//! (bridges, firewall tables) are the backend's to remove with the network; give the
//! backend a configuration that keeps them apart from real ones (`--config`).

use std::{
    process::Command,
    sync::{
        atomic::{AtomicU32, Ordering},
        Arc,
    },
};

use berth_abi::{AttachRequest, DetachRequest, ErrorKind, NetworkBackend, NetworkSpec};

use crate::{temp_dir, Case, Suite};

/// The cases, in the order they run.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "networks are created once, listed and removed",
            run: lifecycle,
        },
        Case {
            name: "attach into a fresh netns, again, check, detach twice",
            run: attach_detach,
        },
        Case {
            name: "removal is refused while attached",
            run: busy_while_attached,
        },
        Case {
            name: "detach of a vanished namespace succeeds",
            run: detach_after_netns_gone,
        },
    ]
}

fn unique(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "bt-conf-{}{what}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh backend instance; removes every network it created on drop.
struct Env {
    backend: Arc<dyn NetworkBackend>,
    created: std::cell::RefCell<Vec<String>>,
    _dir: tempfile::TempDir,
}

impl Env {
    fn new(suite: &Suite) -> Env {
        let dir = temp_dir("net");
        let backend = suite
            .plugin
            .network(suite.context(dir.path()))
            .unwrap_or_else(|e| panic!("the constructor failed: {e}"));
        Env {
            backend,
            created: Default::default(),
            _dir: dir,
        }
    }

    fn create(&self) -> String {
        let name = unique("n");
        self.backend
            .create_network(&spec(&name))
            .unwrap_or_else(|e| panic!("create_network {name}: {e}"));
        self.created.borrow_mut().push(name.clone());
        name
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in self.created.borrow().iter() {
            if let Ok(info) = self.backend.inspect_network(name) {
                for c in &info.containers {
                    let _ = self.backend.detach(&detach_req(c, "/nonexistent", name));
                }
            }
            let _ = self.backend.remove_network(name);
        }
    }
}

/// A network namespace made with `ip netns add`, deleted on drop.
struct Netns {
    name: String,
}

impl Netns {
    fn new() -> Netns {
        let name = unique("ns");
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| panic!("running `ip netns add` (iproute2 needed): {e}"));
        assert!(
            out.status.success(),
            "ip netns add {name}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Netns { name }
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

fn spec(name: &str) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        options_json: "{}".into(),
        ..Default::default()
    }
}

fn attach_req(cid: &str, ns: &Netns, network: &str) -> AttachRequest {
    AttachRequest {
        container_id: cid.into(),
        container_name: cid.into(),
        netns_path: ns.path(),
        network: network.into(),
        ifname: "eth0".into(),
        static_ip: None,
        aliases: Vec::new(),
        ports: Vec::new(),
    }
}

fn detach_req(cid: &str, netns: &str, network: &str) -> DetachRequest {
    DetachRequest {
        container_id: cid.into(),
        netns_path: netns.into(),
        network: network.into(),
        ifname: "eth0".into(),
    }
}

fn container_id() -> String {
    // Hex like berth's ids, unique per run.
    format!("bc{:08x}{:06x}", std::process::id(), {
        static N: AtomicU32 = AtomicU32::new(0);
        N.fetch_add(1, Ordering::Relaxed)
    })
}

fn lifecycle(s: &Suite) {
    let env = Env::new(s);
    let name = env.create();
    let b = &env.backend;
    let info = b.inspect_network(&name).expect("inspect_network");
    assert_eq!(info.name, name, "inspect_network names the network");
    assert!(
        b.list_networks()
            .expect("list_networks")
            .iter()
            .any(|n| n.name == name),
        "list_networks lists a new network"
    );
    let again = b.create_network(&spec(&name)).expect_err("a second create");
    assert_eq!(again.kind, ErrorKind::AlreadyExists, "{again}");
    b.remove_network(&name).expect("remove_network");
    let gone = b.inspect_network(&name).expect_err("inspect after remove");
    assert_eq!(gone.kind, ErrorKind::NotFound, "{gone}");
    let gone = b.remove_network(&name).expect_err("a second remove");
    assert_eq!(gone.kind, ErrorKind::NotFound, "{gone}");
    assert!(
        !b.list_networks()
            .expect("list_networks")
            .iter()
            .any(|n| n.name == name),
        "a removed network is not listed"
    );
}

fn attach_detach(s: &Suite) {
    let env = Env::new(s);
    let net = env.create();
    let ns = Netns::new();
    let cid = container_id();
    let b = &env.backend;
    let first = b.attach(&attach_req(&cid, &ns, &net)).expect("attach");
    let second = b
        .attach(&attach_req(&cid, &ns, &net))
        .expect("attach again");
    assert_eq!(first, second, "attaching again returns the existing result");
    b.check(&detach_req(&cid, &ns.path(), &net))
        .expect("check of an attached container");
    assert!(
        b.inspect_network(&net)
            .expect("inspect_network")
            .containers
            .contains(&cid),
        "the network lists the attached container"
    );
    b.detach(&detach_req(&cid, &ns.path(), &net))
        .expect("detach");
    b.detach(&detach_req(&cid, &ns.path(), &net))
        .expect("detach is idempotent");
    assert!(
        b.check(&detach_req(&cid, &ns.path(), &net)).is_err(),
        "check fails after detach"
    );
    assert!(
        !b.inspect_network(&net)
            .expect("inspect_network")
            .containers
            .contains(&cid),
        "a detached container is not listed"
    );
    b.remove_network(&net).expect("remove_network after detach");
}

fn busy_while_attached(s: &Suite) {
    let env = Env::new(s);
    let net = env.create();
    let ns = Netns::new();
    let cid = container_id();
    let b = &env.backend;
    b.attach(&attach_req(&cid, &ns, &net)).expect("attach");
    let busy = b
        .remove_network(&net)
        .expect_err("removing a network with a container attached");
    assert_eq!(busy.kind, ErrorKind::Busy, "{busy}");
    b.detach(&detach_req(&cid, &ns.path(), &net))
        .expect("detach");
    b.remove_network(&net).expect("remove_network");
}

fn detach_after_netns_gone(s: &Suite) {
    let env = Env::new(s);
    let net = env.create();
    let cid = container_id();
    let b = &env.backend;
    let ns_path = {
        let ns = Netns::new();
        b.attach(&attach_req(&cid, &ns, &net)).expect("attach");
        ns.path()
    }; // the namespace is deleted here, as when a container's last process exits
    b.detach(&detach_req(&cid, &ns_path, &net))
        .expect("detach after the namespace is gone");
    b.detach(&detach_req(&cid, &ns_path, &net))
        .expect("detach again");
    b.remove_network(&net).expect("remove_network after detach");
}
