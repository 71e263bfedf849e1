//! # berth-testkit — what a test needs, checked one way everywhere
//!
//! Integration tests need things a developer machine may lack: root, busybox-static,
//! podman, a registry binary. The rule of the project is that a test with a missing
//! prerequisite **skips with its reason** on a developer machine and **fails under CI**
//! (`CI` set, as `.ci/run` runs): CI never passes by skipping.
//!
//! ```no_run
//! #[test]
//! fn talks_to_podman() {
//!     if !berth_testkit::require_command("podman", "apt-get install podman") {
//!         return; // skipped (only possible outside CI)
//!     }
//!     // …
//! }
//! ```

use std::path::{Path, PathBuf};

/// True when the tests run under CI (`CI` set to anything but `0`/`false`/empty).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"))
}

/// Returns `ok`. When `ok` is false: panics under CI naming `what` is missing and how to
/// get it (`hint`); elsewhere prints `skipped: …` to stderr so the caller can return.
#[track_caller]
pub fn require(ok: bool, what: &str, hint: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("CI is missing a prerequisite of this test: {what} ({hint})");
    }
    eprintln!("skipped: needs {what} ({hint})");
    false
}

/// True when the effective user is root, read from `/proc/self/status` (no libc call).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

/// [`require`] for root.
#[track_caller]
pub fn require_root() -> bool {
    require(is_root(), "root", "run the tests as root, as CI does")
}

/// The absolute path of `bin` found in `PATH`, if executable.
pub fn find_command(bin: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(bin)).find(|p| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// [`require`] for a command in `PATH`.
#[track_caller]
pub fn require_command(bin: &str, hint: &str) -> bool {
    require(find_command(bin).is_some(), &format!("`{bin}`"), hint)
}

/// [`require`] for a file or directory.
#[track_caller]
pub fn require_path(path: impl AsRef<Path>, hint: &str) -> bool {
    let path = path.as_ref();
    require(path.exists(), &path.display().to_string(), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_prerequisites_pass_everywhere() {
        assert!(require(true, "nothing", "-"));
        assert!(require_command("sh", "-"));
        assert!(require_path("/", "-"));
    }

    #[test]
    fn a_missing_prerequisite_skips_outside_ci_and_fails_under_it() {
        let missing = || require_command("berth-testkit-no-such-binary", "none exists");
        if in_ci() {
            let r = std::panic::catch_unwind(missing);
            let msg = r.expect_err("must panic under CI");
            let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains("berth-testkit-no-such-binary"), "{msg}");
        } else {
            assert!(!missing());
        }
    }

    #[test]
    fn root_matches_the_uid_of_proc_self() {
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap();
        assert_eq!(is_root(), uid == 0);
    }
}
