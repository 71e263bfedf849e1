//! Compiles `init/main.rs` into the static `berth-init` program that the runtime embeds
//! (`include_bytes!`) and runs from a sealed memfd as PID 1 of `--init` containers.
//!
//! Plain `rustc` on one file (the program has no dependencies), statically linked against
//! glibc (`+crt-static`, needs glibc's `libc.a` from libc6-dev): it runs inside the
//! container's root, where the host's shared libraries are not.

use std::{env, path::PathBuf, process::Command};

fn main() {
    println!("cargo:rerun-if-changed=init/main.rs");
    println!("cargo:rerun-if-changed=src/protocol.rs");
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let status = Command::new(&rustc)
        .args([
            "--edition",
            "2021",
            "--crate-name",
            "berth_init",
            "--crate-type",
            "bin",
        ])
        .args(["--target", &target])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "debuginfo=0",
        ])
        .args(["-C", "strip=symbols", "-C", "target-feature=+crt-static"])
        .arg("-o")
        .arg(out.join("berth-init"))
        .arg("init/main.rs")
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => panic!(
            "building the static berth-init program failed ({other:?}); it links glibc \
             statically: install libc6-dev (apt-get install libc6-dev)"
        ),
    }
}
