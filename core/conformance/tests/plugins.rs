//! `berth plugin test`'s suites against every first-party plugin and every template (the
//! templates copied out of the tree and built there, as an author would). Needs root.
//!
//! The plugins get configurations that keep their host objects apart from a real berth's:
//! cgroup groups below `bt-conf-<pid>` in this process's own cgroup, the bridge's table
//! `bt_conf_<pid>` with `bt-`/`btv` interface prefixes. All of it is removed afterwards.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Once,
};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// `target/debug` of this test binary.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

static BUILD: Once = Once::new();

fn first_party(stem: &str) -> PathBuf {
    BUILD.call_once(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--quiet"])
            .args(["-p", "berth-plugin-bridge"])
            .args(["-p", "berth-plugin-cgroup1", "-p", "berth-plugin-cgroup2"])
            .status()
            .expect("run cargo build for the plugins");
        assert!(status.success(), "building the first-party plugins failed");
    });
    target_dir().join(format!("libberth_plugin_{stem}.so"))
}

/// Copies `examples/<name>` out of the tree, points its SDK dependency at this checkout
/// (the one line docs/plugins.md says to adjust), builds it offline there.
fn template(name: &str, stem: &str) -> PathBuf {
    let root = workspace_root();
    let scratch = tempfile::Builder::new()
        .prefix("bt-conf-tpl-")
        .tempdir()
        .expect("temp dir");
    let copy = scratch.path().join(name);
    let status = Command::new("cp")
        .arg("-r")
        .arg(root.join("examples").join(name))
        .arg(&copy)
        .status()
        .expect("cp the template");
    assert!(status.success());
    let _ = std::fs::remove_dir_all(copy.join("target"));
    let _ = std::fs::remove_file(copy.join("Cargo.lock"));
    let manifest = copy.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let adjusted = text.replace(
        "path = \"../../core/plugin-sdk\"",
        &format!(
            "path = {:?}",
            root.join("core/plugin-sdk").display().to_string()
        ),
    );
    assert_ne!(
        text, adjusted,
        "{name} names the SDK by the documented path"
    );
    std::fs::write(&manifest, adjusted).unwrap();
    let target = target_dir()
        .parent()
        .expect("target root")
        .join("out-of-tree");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--offline", "--target-dir"])
        .arg(&target)
        .current_dir(&copy)
        .status()
        .expect("run cargo build for the template");
    assert!(status.success(), "building {name} out of tree failed");
    target.join("debug").join(format!("lib{stem}.so"))
}

fn passes(path: &Path, config: &str) {
    let report = berth_conformance::run(path, config, None)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    eprintln!("{}", report.table());
    assert!(!report.outcomes.is_empty());
    assert!(report.all_passed(), "{}", report.table());
}

/// Removes the (empty) `bt-conf-<pid>` parents the cgroup plugins made, in every
/// hierarchy, deepest first.
fn remove_cgroup_parents(name: &str) {
    let mut found = Vec::new();
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            if p.file_name().is_some_and(|n| n == name) {
                found.push(p);
            } else if depth < 8 {
                stack.push((p, depth + 1));
            }
        }
    }
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in found {
        let _ = std::fs::remove_dir(&p);
    }
}

#[test]
fn storage_plugins_and_template_pass() {
    if !berth_testkit::require_root() {
        return;
    }
    // overlayfs and vfs run the same suite in plugins/storage-suite.
    passes(
        &template("storage-template", "berth_storage_template"),
        "{}",
    );
}

#[test]
fn network_plugins_and_template_pass() {
    if !berth_testkit::require_root()
        || !berth_testkit::require_command("ip", "apt-get install iproute2")
        || !berth_testkit::require_command("nft", "apt-get install nftables")
    {
        return;
    }
    let pid = std::process::id();
    let table = format!("bt_conf_{pid}");
    let config = format!(
        r#"{{"table": "{table}", "default_bridge": "bt0-c{pid}", "default_subnet": "10.213.0.0/24", "pool": "10.214.0.0/16", "bridge_prefix": "bt-", "veth_prefix": "btv", "dns": false}}"#
    );
    let bridge = std::panic::catch_unwind(|| passes(&first_party("bridge"), &config));
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", &table])
        .output();
    if let Err(p) = bridge {
        std::panic::resume_unwind(p);
    }
    passes(
        &template("network-template", "berth_network_template"),
        "{}",
    );
}

#[test]
fn isolator_plugins_and_template_pass() {
    if !berth_testkit::require_root() {
        return;
    }
    let parent = format!("bt-conf-{}", std::process::id());
    let config = format!(r#"{{"parent": "{parent}"}}"#);
    let host = isolators_for_this_host();
    let result = std::panic::catch_unwind(|| {
        for stem in host {
            passes(&first_party(stem), &config);
        }
        passes(
            &template("isolator-template", "berth_isolator_template"),
            "{}",
        );
    });
    remove_cgroup_parents(&parent);
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}

/// The isolators this host can run: cgroup1 where v1 controllers are mounted, cgroup2
/// where the v2 hierarchy is (berth's `auto` picks by the same facts).
fn isolators_for_this_host() -> Vec<&'static str> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    if mounts.lines().any(|l| l.contains(" - cgroup ")) {
        out.push("cgroup1");
    }
    if mounts.lines().any(|l| l.contains(" - cgroup2 ")) {
        out.push("cgroup2");
    }
    out
}
