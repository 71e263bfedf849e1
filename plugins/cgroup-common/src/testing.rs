//! Test support shared by the cgroup plugins' integration tests (feature `testing`).
//!
//! Load generators run in a child process that re-executes the test binary itself: each
//! test binary declares
//! ```ignore
//! #[test]
//! fn bt_helper() { berth_cgroup_common::testing::helper_main() }
//! ```
//! which does nothing in a normal run and acts as the generator when `BT_CG_HELPER` is
//! set. A helper waits for a line on stdin before it starts, so the test can place it in
//! a group first (like the host does between fork and exec).

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

const ENV: &str = "BT_CG_HELPER";
const RESULT: &str = "BT-RESULT ";

/// A unique `bt-<tag>-<pid>-<n>` name for a test's parent group.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "bt-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The helper side; returns at once unless `BT_CG_HELPER` is set.
pub fn helper_main() {
    let Ok(mode) = std::env::var(ENV) else {
        return;
    };
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    if let Some(spec) = mode.strip_prefix("open:") {
        // `open:r|w|rw:PATH`: open a (device) node and close it at once; never reads or
        // writes it.
        let (how, path) = spec.split_once(':').unwrap_or(("r", spec));
        let mut o = std::fs::OpenOptions::new();
        o.read(how.contains('r')).write(how.contains('w'));
        match o.open(path) {
            Ok(_) => println!("{RESULT}open=ok"),
            Err(e) => println!("{RESULT}open=errno{}", e.raw_os_error().unwrap_or(-1)),
        }
        std::process::exit(0);
    }
    let (what, arg) = mode.split_once(':').unwrap_or((mode.as_str(), "0"));
    let n: u64 = arg.parse().unwrap_or(0);
    match what {
        "hog" => {
            // Touch n MiB, one page at a time, so the memory is really charged.
            let mut keep: Vec<Vec<u8>> = Vec::new();
            for i in 0..n {
                let mut v = vec![0u8; 1 << 20];
                for p in (0..v.len()).step_by(4096) {
                    v[p] = (i as u8) | 1;
                }
                keep.push(v);
            }
            println!("{RESULT}allocated={}", keep.len());
            std::thread::sleep(Duration::from_secs(60));
        }
        "forks" => {
            let (mut ok, mut fail) = (0, 0);
            for _ in 0..n {
                // SAFETY: the child only calls async-signal-safe functions (sleep, _exit).
                match unsafe { libc::fork() } {
                    0 => unsafe {
                        // SAFETY: async-signal-safe calls only, see above.
                        libc::sleep(60);
                        libc::_exit(0);
                    },
                    p if p > 0 => ok += 1,
                    _ => fail += 1,
                }
            }
            println!("{RESULT}ok={ok} fail={fail}");
            std::thread::sleep(Duration::from_secs(60));
        }
        "spin" => {
            let end = Instant::now() + Duration::from_secs(n.max(1));
            let mut x: u64 = 0;
            while Instant::now() < end {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
            println!("{RESULT}spun={x}");
        }
        other => eprintln!("unknown helper mode {other}"),
    }
    std::process::exit(0);
}

/// A helper process (killed and reaped on drop).
pub struct Helper {
    pub child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<BufReader<ChildStdout>>,
}

impl Helper {
    /// Starts `mode` (`hog:MiB`, `forks:N`, `spin:secs`, `open:r|w|rw:PATH`); it waits for
    /// [`Helper::go`].
    pub fn spawn(mode: &str) -> Helper {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args([
                "bt_helper",
                "--exact",
                "--nocapture",
                "--test-threads=1",
                "-q",
            ])
            .env(ENV, mode)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn helper");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().map(BufReader::new);
        Helper {
            child,
            stdin,
            stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Lets the helper start its work.
    pub fn go(&mut self) {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"go\n");
        }
    }

    /// The helper's result line (without the marker), `None` if it died first.
    pub fn result(&mut self) -> Option<String> {
        let out = self.stdout.as_mut()?;
        let mut line = String::new();
        loop {
            line.clear();
            if out.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if let Some(r) = line.trim_end().strip_prefix(RESULT) {
                return Some(r.to_string());
            }
        }
    }

    /// Waits (bounded) for the helper to exit.
    pub fn wait_timeout(&mut self, t: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + t;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if Instant::now() > end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the `open:HOW:PATH` helper inside group `id` of `iso` and returns its verdict:
/// `Ok(())` or the errno of the failed `open` (the node is closed at once, never used).
pub fn open_in_group(
    iso: &dyn berth_abi::Isolator,
    id: &str,
    how: &str,
    path: &std::path::Path,
) -> Result<(), i32> {
    let mut h = Helper::spawn(&format!("open:{how}:{}", path.display()));
    iso.add_process(id, h.pid())
        .expect("placing the helper in its group");
    h.go();
    let r = h.result().expect("open helper died without a verdict");
    match r.strip_prefix("open=") {
        Some("ok") => Ok(()),
        Some(e) => Err(e
            .strip_prefix("errno")
            .and_then(|n| n.parse().ok())
            .unwrap_or(-1)),
        None => panic!("unexpected helper output {r:?}"),
    }
}

/// A character device node created for a test (removed on drop).
pub struct DevNode(pub std::path::PathBuf);

impl DevNode {
    /// `mknod PATH c MAJOR MINOR` with mode 0666 in a fresh directory below the system
    /// temp dir (named after `tag`).
    pub fn char(tag: &str, major: u32, minor: u32) -> DevNode {
        let dir = std::env::temp_dir().join(unique(tag));
        std::fs::create_dir_all(&dir).expect("creating the device node directory");
        let p = dir.join(format!("c{major}-{minor}"));
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mknod with a valid NUL-terminated path and plain integer arguments.
        let r = unsafe {
            libc::mknod(
                c.as_ptr(),
                libc::S_IFCHR | 0o666,
                libc::makedev(major, minor),
            )
        };
        assert_eq!(
            r,
            0,
            "mknod {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        );
        DevNode(p)
    }
}

impl Drop for DevNode {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A plain `sleep` process (killed and reaped on drop).
pub struct Sleeper(pub Child);

impl Sleeper {
    pub fn spawn() -> Sleeper {
        Sleeper(
            Command::new("sleep")
                .arg("60")
                .spawn()
                .expect("spawn sleep"),
        )
    }
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// utime + stime of `pid` in clock ticks, and its state letter, from /proc/PID/stat.
pub fn proc_cpu_and_state(pid: i32) -> Option<(u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    // After the command: state(0) ppid(1) ... utime(11) stime(12).
    let ut: u64 = f.get(11)?.parse().ok()?;
    let st: u64 = f.get(12)?.parse().ok()?;
    Some((ut + st, state))
}
