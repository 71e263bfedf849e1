//! Timed loop (not a test): cost of compiling the default seccomp profile and of
//! create/start/wait of `/bin/true` in a busybox rootfs with and without it.
//! Run as root: `cargo run --release -p berth-runtime --example seccomp_cost [N]`.

use std::{path::Path, process::Command, time::Instant};

use berth_runtime::{ContainerSpec, NetworkMode, ProcessSpec, Stdio};
use berth_seccomp::{CompileOptions, Profile};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let profile = Profile::default_profile();
    let caps = berth_runtime::capability_mask(false, &[], &[])?;
    let t = Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len = profile.compile(&CompileOptions::with_caps(caps))?.len();
    }
    println!(
        "compile default profile: {:.1} µs/iter ({len} BPF instructions)",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );
    let t = Instant::now();
    for _ in 0..n {
        profile.compile_cached(&CompileOptions::with_caps(caps))?;
    }
    println!(
        "compile_cached (hits): {:.1} µs/iter",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
    );

    let dir = tempfile::Builder::new().prefix("bt-cost-").tempdir()?;
    let root = dir.path();
    for d in ["bin", "etc", "proc", "dev", "sys", "tmp"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))?;
    std::os::unix::fs::symlink("busybox", root.join("bin/true"))?;
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(root.join("etc/group"), "root:x:0:\n")?;
    let _ = Command::new("true").status();
    for (label, seccomp) in [("unconfined", None), ("default profile", Some(profile))] {
        let spec = spec(root, seccomp);
        let t = Instant::now();
        for _ in 0..n {
            let st = berth_runtime::create(&spec, Stdio::Inherit)?
                .start()?
                .wait()?;
            assert!(st.success());
        }
        println!(
            "create/start/wait, {label}: {:.2} ms/iter",
            t.elapsed().as_secs_f64() * 1e3 / f64::from(n)
        );
    }
    Ok(())
}

fn spec(root: &Path, seccomp: Option<Profile>) -> ContainerSpec {
    ContainerSpec {
        id: "bt-cost".into(),
        rootfs: root.to_path_buf(),
        hostname: "bt-cost".into(),
        process: ProcessSpec {
            args: vec!["/bin/true".into()],
            ..Default::default()
        },
        mounts: vec![],
        etc_files: vec![],
        network: NetworkMode::Host,
        readonly_rootfs: false,
        privileged: false,
        cap_add: vec![],
        cap_drop: vec![],
        no_new_privileges: false,
        init: false,
        masked_paths: None,
        readonly_paths: None,
        seccomp,
        devices: vec![],
        device_rules: vec![],
    }
}
