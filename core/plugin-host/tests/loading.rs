//! Loads the fixture plugins (built by cargo as cdylibs of this workspace) and checks that
//! each failure is a clear error and the process lives on.

use std::path::{Path, PathBuf};

use berth_abi::{ErrorKind, PluginContext, PluginKind};
use berth_plugin_host::{load_plugin, LoadError, Registry};

/// The workspace target directory of this test binary (`target/debug`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/loading-HASH → target/debug
    exe.parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf()
}

fn build_fixtures() -> PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "berth-fixture-panicky",
            "-p",
            "berth-fixture-abi-mismatch",
        ])
        .status()
        .expect("run cargo build for fixtures");
    assert!(status.success(), "building fixture plugins failed");
    target_dir()
}

fn lib(dir: &Path, crate_name: &str) -> PathBuf {
    dir.join(format!("lib{}.so", crate_name.replace('-', "_")))
}

#[test]
fn fixtures_load_or_fail_clearly() {
    let dir = build_fixtures();

    // 1. A plugin that panics: loads, and a panicking call becomes an error.
    let entry = load_plugin(&lib(&dir, "berth-fixture-panicky"));
    let plugin = entry.result.expect("panicky fixture loads");
    assert_eq!(plugin.kind, PluginKind::Storage);
    assert_eq!(plugin.name, "panicky");
    let driver = plugin
        .storage(PluginContext::default())
        .expect("constructor works");
    let err = driver.capabilities().expect_err("capabilities panics");
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(
        err.message().contains("panicked in capabilities"),
        "{}",
        err.message()
    );
    let mut input: &[u8] = b"";
    let err = driver
        .apply_layer("x", None, &mut input)
        .expect_err("apply_layer panics");
    assert!(err.message().contains("apply_layer"), "{}", err.message());
    // The same object still answers afterwards.
    assert!(driver.list().is_err());

    // 2. A plugin built for a future major: refused in one line naming both versions;
    //    the layout differences only in the full report.
    let path = lib(&dir, "berth-fixture-abi-mismatch");
    let entry = load_plugin(&path);
    assert_eq!(
        entry.abi.as_deref(),
        Some("2.0"),
        "the file's ABI is reported"
    );
    let err = entry.result.expect_err("mismatch is refused");
    match &err {
        LoadError::AbiMismatch {
            expected,
            found,
            path: p,
            ..
        } => {
            assert_eq!((*expected, *found), (1, 2));
            assert_eq!(p, &path);
        }
        other => panic!("expected AbiMismatch, got {other:?}"),
    }
    let msg = err.to_string();
    eprintln!("mismatch message: {msg}");
    assert_eq!(msg.lines().count(), 1, "one line: {msg}");
    assert!(msg.contains("ABI version 2"), "{msg}");
    assert!(msg.contains("ABI version 1"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(err.full_report().len() >= msg.len());

    // 3. A file that is not a library.
    let tmp = std::env::temp_dir().join(format!("berth-test-notlib-{}.so", std::process::id()));
    std::fs::write(&tmp, b"this is not an ELF file").unwrap();
    let err = load_plugin(&tmp).result.expect_err("text file refused");
    let _ = std::fs::remove_file(&tmp);
    assert!(matches!(err, LoadError::NotALibrary { .. }), "{err:?}");
    assert!(err.to_string().contains(&tmp.display().to_string()));

    // 4. A library that is not a berth plugin (libc).
    let err = load_plugin(Path::new("/lib/x86_64-linux-gnu/libc.so.6"))
        .result
        .expect_err("libc is not a plugin");
    assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err:?}");
}

#[test]
fn the_first_directory_wins_and_shadowing_is_reported() {
    let dir = build_fixtures();
    let a = tempfile_dir("bt-plugdir-a");
    let b = tempfile_dir("bt-plugdir-b");
    for d in [&a, &b] {
        std::fs::copy(lib(&dir, "berth-fixture-panicky"), d.join("libpanicky.so")).unwrap();
    }
    let reg = Registry::discover(&[a.clone(), b.clone()]);
    let found = reg
        .find(PluginKind::Storage, "panicky")
        .unwrap()
        .path
        .clone();
    let shadowed: Vec<_> = reg
        .shadowed()
        .iter()
        .map(|(hidden, winner)| (hidden.path.clone(), winner.path.clone()))
        .collect();
    let _ = std::fs::remove_dir_all(&a);
    let _ = std::fs::remove_dir_all(&b);
    assert_eq!(found, a.join("libpanicky.so"));
    assert_eq!(
        shadowed,
        vec![(b.join("libpanicky.so"), a.join("libpanicky.so"))]
    );
}

#[test]
fn missing_plugin_names_dirs_and_alternatives() {
    let dir = build_fixtures();
    let scratch = std::env::temp_dir().join(format!("berth-test-plugdir-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    std::fs::copy(
        lib(&dir, "berth-fixture-panicky"),
        scratch.join("libpanicky.so"),
    )
    .unwrap();
    let reg = Registry::discover(&[scratch.clone(), PathBuf::from("/nonexistent/berth")]);
    let err = reg
        .find(PluginKind::Storage, "zfs")
        .expect_err("no zfs plugin");
    let msg = err.to_string();
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(msg.contains("zfs"), "{msg}");
    assert!(msg.contains(&scratch.display().to_string()), "{msg}");
    assert!(msg.contains("/nonexistent/berth"), "{msg}");
    assert!(msg.contains("panicky"), "available plugins listed: {msg}");
}

/// The workspace root (two levels above this crate).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// A plugin built against the previous minor ABI (1.0, before `Isolator::set_devices`):
/// the frozen copy of berth-abi in `plugins/fixtures/abi-1-0`, its own workspace. The
/// current host loads it, and the method it lacks answers with the default.
#[test]
fn plugin_of_the_previous_minor_abi_loads_and_lacks_only_the_new_method() {
    let fixture = workspace_root().join("plugins/fixtures/abi-1-0");
    let target = target_dir()
        .parent()
        .expect("target root")
        .join("out-of-tree");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--offline", "--manifest-path"])
        .arg(fixture.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("run cargo build for the ABI 1.0 fixture");
    assert!(status.success(), "building the ABI 1.0 fixture failed");
    let path = target.join("debug/libberth_fixture_abi_1_0.so");
    let entry = load_plugin(&path);
    assert_eq!(entry.abi.as_deref(), Some("1.0"));
    let plugin = entry
        .result
        .expect("an ABI 1.0 plugin loads in an ABI 1.1 host");
    assert_eq!(plugin.kind, PluginKind::Isolator);
    assert_eq!(plugin.abi, "1.0");
    let iso = plugin
        .isolator(PluginContext::default())
        .expect("constructor works");
    assert_eq!(iso.capabilities().unwrap().notes, "ABI 1.0 fixture");
    iso.create("bt-old", &Default::default()).unwrap();
    // The method appended in 1.1 is absent from its vtable: the host's default answers.
    let err = iso
        .set_devices("bt-old", &[berth_abi::DeviceRule::everything(false)])
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    assert!(err.message().contains("predates"), "{err}");
    // Everything of 1.0 keeps working after that.
    assert_eq!(iso.list().unwrap(), vec!["bt-old".to_string()]);
    iso.destroy("bt-old").unwrap();
    assert!(iso.list().unwrap().is_empty());
}

/// Copies the template `name` (under `examples/`) out of the tree as an author would,
/// points its SDK dependency at this checkout, builds it offline there and returns the
/// library. The copy lives in a `bt-` temp dir; the build shares `target/templates`.
fn build_template_out_of_tree(name: &str, lib_stem: &str) -> PathBuf {
    let root = workspace_root();
    let scratch = tempfile_dir(&format!("bt-tpl-{name}"));
    let copy = scratch.join(name);
    let status = std::process::Command::new("cp")
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
    let sdk = root.join("core/plugin-sdk");
    let adjusted = text.replace(
        "path = \"../../core/plugin-sdk\"",
        &format!("path = {:?}", sdk.display().to_string()),
    );
    assert_ne!(
        text, adjusted,
        "the template names the SDK by the documented path"
    );
    std::fs::write(&manifest, adjusted).unwrap();
    let target = target_dir()
        .parent()
        .expect("target root")
        .join("out-of-tree");
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--offline"])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(&copy)
        .status()
        .expect("run cargo build for the template");
    let _ = std::fs::remove_dir_all(&scratch);
    assert!(
        status.success(),
        "building the {name} template out of tree failed"
    );
    target.join("debug").join(format!("lib{lib_stem}.so"))
}

fn tempfile_dir(prefix: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The isolator template builds out of tree with the SDK alone, loads and works.
#[test]
fn isolator_template_builds_out_of_tree_and_loads() {
    let path = build_template_out_of_tree("isolator-template", "berth_isolator_template");
    let entry = load_plugin(&path);
    let plugin = entry.result.expect("template loads");
    assert_eq!(plugin.kind, PluginKind::Isolator);
    assert_eq!(plugin.name, "signals");
    let dir = std::env::temp_dir().join(format!("bt-template-{}", std::process::id()));
    let iso = plugin
        .isolator(PluginContext {
            state_dir: dir.join("state").display().to_string(),
            run_dir: dir.join("run").display().to_string(),
            config_json: "{}".into(),
            root_dir: dir.display().to_string(),
        })
        .expect("constructor works");
    let caps = iso.capabilities().unwrap();
    assert!(caps.supported.iter().any(|c| c == "freeze"));
    // A limit it can't enforce is refused, not ignored.
    let limits = berth_abi::Limits {
        memory: Some(1 << 20),
        ..Default::default()
    };
    let err = iso.create("bt-x", &limits).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    iso.create("bt-x", &Default::default()).unwrap();
    // It does not override set_devices: the trait's default answers across the boundary,
    // so the host knows it can't restrict devices.
    let err = iso
        .set_devices("bt-x", &[berth_abi::DeviceRule::everything(false)])
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    assert_eq!(iso.list().unwrap(), vec!["bt-x".to_string()]);
    iso.destroy("bt-x").unwrap();
    iso.destroy("bt-x").unwrap(); // idempotent
    let _ = std::fs::remove_dir_all(&dir);
}

/// The storage and network templates build out of tree with the SDK alone and load (the
/// conformance suite runs them in `berth plugin test`'s tests).
#[test]
fn storage_and_network_templates_build_out_of_tree_and_load() {
    for (name, stem, kind, plugin_name) in [
        (
            "storage-template",
            "berth_storage_template",
            PluginKind::Storage,
            "copies",
        ),
        (
            "network-template",
            "berth_network_template",
            PluginKind::Network,
            "isolated",
        ),
    ] {
        let path = build_template_out_of_tree(name, stem);
        let plugin = load_plugin(&path)
            .result
            .unwrap_or_else(|e| panic!("{name} loads: {e}"));
        assert_eq!((plugin.kind, plugin.name.as_str()), (kind, plugin_name));
        assert_eq!(
            plugin.abi,
            format!("{}.{}", berth_abi::ABI_VERSION, berth_abi::ABI_MINOR)
        );
    }
}
