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

    // 2. A plugin built for another ABI version: versions and a layout summary.
    let path = lib(&dir, "berth-fixture-abi-mismatch");
    let err = load_plugin(&path).result.expect_err("mismatch is refused");
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
    assert!(msg.contains("incompatible ABI"), "{msg}");
    assert!(msg.lines().count() < 15, "summary stays short: {msg}");

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

/// The third-party template (depends on berth-abi alone) builds and loads, and works.
#[test]
fn template_plugin_builds_and_loads() {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "berth-plugin-template"])
        .status()
        .expect("run cargo build for the template");
    assert!(status.success(), "building the template failed");
    let entry = load_plugin(&lib(&target_dir(), "berth-plugin-template"));
    let plugin = entry.result.expect("template loads");
    assert_eq!(plugin.kind, PluginKind::Isolator);
    assert_eq!(plugin.name, "signals");
    let dir = std::env::temp_dir().join(format!("bt-template-{}", std::process::id()));
    let iso = plugin
        .isolator(PluginContext {
            state_dir: dir.join("state").display().to_string().into(),
            run_dir: dir.join("run").display().to_string().into(),
            config_json: "{}".into(),
            root_dir: dir.display().to_string().into(),
        })
        .expect("constructor works");
    let caps = iso.capabilities().unwrap();
    assert!(caps.supported.iter().any(|c| c.as_str() == "freeze"));
    // A limit it can't enforce is refused, not ignored.
    let limits = berth_abi::Limits {
        memory: berth_abi::rtypes::RSome(1 << 20),
        ..Default::default()
    };
    let err = iso.create("bt-x", &limits).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported);
    iso.create("bt-x", &Default::default()).unwrap();
    // It does not implement set_devices (added to the ABI later): the trait's default
    // answers across the boundary, so the host knows it can't restrict devices.
    let err = iso
        .set_devices("bt-x", &[berth_abi::DeviceRule::everything(false)])
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Unsupported, "{err}");
    assert_eq!(iso.list().unwrap(), vec!["bt-x".to_string()]);
    iso.destroy("bt-x").unwrap();
    iso.destroy("bt-x").unwrap(); // idempotent
    let _ = std::fs::remove_dir_all(&dir);
}
