//! Attach + detach latency of the bridge network plugin (needs root; goal < 10 ms).
//!
//! Objects use `bt` names (namespace `bt-bench-<pid>`, table `bt_bench_<pid>`, bridge
//! `bt0-bench<pid>`) and are removed at the end.

use std::process::Command;

use berth_abi::{
    AttachRequest, DetachRequest, NetworkBackend, NetworkSpec, PluginContext, PortMapping, Protocol,
};
use berth_plugin_bridge::Bridge;
use criterion::{criterion_group, criterion_main, Criterion};

struct Fixture {
    b: Bridge,
    ns: String,
    table: String,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.b.detach(&self.detach());
        let _ = self.b.remove_network("bridge");
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.table])
            .output();
    }
}

impl Fixture {
    fn new() -> Fixture {
        let pid = std::process::id() % 0xffff;
        let dir = tempfile::tempdir().expect("tempdir");
        let table = format!("bt_bench_{pid}");
        let ns = format!("bt-bench-{pid}");
        let cfg = format!(
            r#"{{"table":"{table}","default_bridge":"bt0-b{pid}","default_subnet":"10.206.0.0/24","veth_prefix":"btv","bridge_prefix":"bt-"}}"#
        );
        let path = dir.path().to_str().expect("utf-8 tempdir").to_string();
        let ctx = PluginContext {
            state_dir: path.clone(),
            run_dir: path.clone(),
            config_json: cfg,
            root_dir: path,
        };
        let b = Bridge::new(&ctx).expect("plugin constructor");
        let st = Command::new("ip").args(["netns", "add", &ns]).status();
        assert!(st.is_ok_and(|s| s.success()), "ip netns add {ns}");
        let f = Fixture {
            b,
            ns,
            table,
            _dir: dir,
        };
        f.b.create_network(&NetworkSpec {
            name: "bridge".into(),
            subnet: None,
            gateway: None,
            internal: false,
            options_json: "{}".into(),
        })
        .expect("create network");
        f
    }

    fn attach(&self, ports: Vec<PortMapping>) -> AttachRequest {
        AttachRequest {
            container_id: "benchctr".into(),
            container_name: "benchctr".into(),
            netns_path: format!("/run/netns/{}", self.ns),
            network: "bridge".into(),
            ifname: "eth0".into(),
            static_ip: None,
            aliases: Vec::new(),
            ports,
        }
    }

    fn detach(&self) -> DetachRequest {
        DetachRequest {
            container_id: "benchctr".into(),
            netns_path: format!("/run/netns/{}", self.ns),
            network: "bridge".into(),
            ifname: "eth0".into(),
        }
    }
}

fn bench(c: &mut Criterion) {
    if !nix_is_root() {
        eprintln!("network benchmark skipped: needs root");
        return;
    }
    let f = Fixture::new();
    let mut g = c.benchmark_group("bridge");
    g.sample_size(30);
    g.bench_function("attach+detach", |b| {
        b.iter(|| {
            f.b.attach(&f.attach(vec![])).expect("attach");
            f.b.detach(&f.detach()).expect("detach");
        })
    });
    g.bench_function("attach+detach with 1 published port", |b| {
        b.iter(|| {
            let port = PortMapping {
                host_ip: "127.0.0.1".into(),
                host_port: 0,
                container_port: 80,
                protocol: Protocol::Tcp,
            };
            f.b.attach(&f.attach(vec![port])).expect("attach");
            f.b.detach(&f.detach()).expect("detach");
        })
    });
    g.bench_function("attach (already attached: CHECK + cached result)", |b| {
        f.b.attach(&f.attach(vec![])).expect("attach");
        b.iter(|| f.b.attach(&f.attach(vec![])).expect("attach"));
        f.b.detach(&f.detach()).expect("detach");
    });
    g.finish();
}

fn nix_is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

criterion_group!(benches, bench);
criterion_main!(benches);
