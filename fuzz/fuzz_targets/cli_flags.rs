//! Flag value parsers of `berth run/create` (core/engine/src/parse.rs), `EXPOSE` port
//! specs (berth-dockerfile) and `--change` instructions (berth-image). The first byte
//! picks the parser, the rest is the value. Errors are fine; panics are bugs, and
//! accepted values must satisfy the invariants checked below.

#![no_main]

use std::path::Path;

use berth_engine::parse::{
    parse_env, parse_mount, parse_publish, parse_restart, parse_size, parse_tmpfs, parse_volume,
    validate_volume_name,
};
use libfuzzer_sys::fuzz_target;

/// A directory that does not exist, so relative bind sources never resolve.
const CWD: &str = "/nonexistent-bt-fuzz-cwd";

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(s) = std::str::from_utf8(rest) else {
        return;
    };
    let cwd = Path::new(CWD);
    match which % 10 {
        0 => {
            if let Ok(ports) = parse_publish(s) {
                assert!(!ports.is_empty(), "{s:?}: accepted with no ports");
                assert!(ports.len() <= 65535);
                for p in &ports {
                    assert!(p.container_port != 0, "{s:?}: container port 0");
                    assert!(p.protocol == "tcp" || p.protocol == "udp", "{s:?}");
                    if !p.host_ip.is_empty() {
                        assert!(p.host_ip.parse::<std::net::IpAddr>().is_ok(), "{s:?}");
                    }
                }
            }
        }
        1 => {
            if let Ok(v) = parse_size("-m", s) {
                assert!(v >= -1, "{s:?}: negative size {v}");
                // Only numbers are sizes: NaN and infinities are not.
                let t = s.trim().to_ascii_lowercase();
                assert!(
                    !t.contains("nan") && !t.contains("inf"),
                    "{s:?}: accepted as size {v}"
                );
            }
        }
        2 => {
            if let Ok(m) = parse_volume(s, cwd) {
                assert!(m.destination.starts_with('/'), "{s:?}");
                assert!(m.kind == "bind" || m.kind == "volume", "{s:?}");
            }
        }
        3 => {
            if let Ok(m) = parse_mount(s, cwd) {
                assert!(m.destination.starts_with('/'), "{s:?}");
                assert!(
                    matches!(m.kind.as_str(), "bind" | "volume" | "tmpfs"),
                    "{s:?}"
                );
            }
        }
        4 => {
            if let Ok(m) = parse_tmpfs(s) {
                assert!(m.destination.starts_with('/'), "{s:?}");
            }
        }
        5 => {
            // `-e KEY` reads berth's own environment; names with '=' or NUL must not panic.
            let _ = parse_env(s);
        }
        6 => {
            if parse_restart(s).is_ok() {
                assert!(
                    ["no", "always", "unless-stopped", "on-failure"]
                        .iter()
                        .any(|p| s.starts_with(p)),
                    "{s:?}"
                );
            }
        }
        7 => {
            if validate_volume_name(s).is_ok() {
                assert!(s.len() >= 2 && !s.contains('/'), "{s:?}");
            }
        }
        8 => {
            if let Ok(p) = berth_dockerfile::parse_port(s) {
                assert!(p.start <= p.end, "{s:?}");
            }
        }
        _ => {
            let mut config = oci_spec::image::Config::default();
            let changes: Vec<String> = s.split('\n').take(8).map(str::to_string).collect();
            let _ = berth_image::apply_changes(&mut config, &changes);
        }
    }
});
