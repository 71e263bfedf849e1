//! Loads the bridge plugin as a cdylib through the plugin host and drives it over the ABI.

mod common;

use std::path::{Path, PathBuf};

use berth_abi::{ErrorKind, PluginContext, PluginKind};
use berth_plugin_host::load_plugin;
use common::*;

fn cdylib() -> PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "berth-plugin-bridge"])
        .status()
        .expect("run cargo build");
    assert!(status.success(), "building the bridge plugin failed");
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap();
    dir.join("libberth_plugin_bridge.so")
}

#[test]
fn attach_detach_through_the_abi() {
    if !berth_testkit::require_root() {
        return;
    }
    let entry = load_plugin(&cdylib());
    let plugin = entry.result.expect("bridge plugin loads");
    assert_eq!(plugin.kind, PluginKind::Network);
    assert_eq!(plugin.name, "bridge");

    // A bad configuration is a constructor error, not a crash.
    let bad = PluginContext {
        state_dir: "/tmp".into(),
        config_json: r#"{"table":"no spaces allowed"}"#.into(),
        ..Default::default()
    };
    assert!(plugin.network(bad).is_err());

    let dir = tempfile::tempdir().unwrap();
    let u = uniq();
    let table = format!("bt_{u}");
    let ctx = PluginContext {
        state_dir: dir.path().to_str().unwrap().into(),
        run_dir: dir.path().to_str().unwrap().into(),
        config_json: config(&table, &format!("bt0-{u}"), "10.205.0.0/24"),
        root_dir: dir.path().to_str().unwrap().into(),
    };
    let b = plugin.network(ctx).expect("constructor works");
    struct Cleanup<'a>(&'a dyn berth_abi::NetworkBackend, String);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            cleanup(self.0, &self.1);
        }
    }
    let _guard = Cleanup(&*b, table.clone());

    let info = b.create_network(&spec("bridge", None)).unwrap();
    let ns = Netns::new();
    let r = b
        .attach(&attach_req("abi1", &ns, "bridge", vec![]))
        .unwrap();
    assert!(r.interfaces[0].addresses[0].starts_with("10.205.0."));
    assert_eq!(r.interfaces[0].name.as_str(), "eth0");
    assert_eq!(r.interfaces[0].mac.len(), 17);
    b.check(&detach_req("abi1", &ns.path(), "bridge")).unwrap();
    assert_eq!(
        b.remove_network("bridge").unwrap_err().kind,
        ErrorKind::Busy
    );
    b.detach(&detach_req("abi1", &ns.path(), "bridge")).unwrap();
    assert_eq!(
        b.check(&detach_req("abi1", &ns.path(), "bridge"))
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    b.remove_network("bridge").unwrap();
    assert!(!link_exists(info.interface.as_str()));
    assert!(!ruleset().contains(&table));
    assert!(b.list_networks().unwrap().is_empty());
}
