//! `cargo xtask bench`: whole-command timings of berth side by side with its peers (runc,
//! podman from Debian's packages) in one run, as a table of medians and ratios, written to
//! `target/bench/results.json` and drawn as `target/bench/results.svg` (`--save` also copies
//! both to `docs/bench/`). A missing peer is skipped with the reason printed.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::images::which;

#[derive(Serialize, Clone)]
pub struct Row {
    pub name: String,
    pub berth_ms: Option<f64>,
    pub peer: String,
    pub peer_ms: Option<f64>,
    /// berth / peer (lower is better for berth).
    pub ratio: Option<f64>,
    pub note: String,
}

fn quiet(mut c: Command) -> Command {
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    c
}

/// Median wall time in ms of `n` runs of `make()`; None (with the reason) if one fails.
fn time(n: usize, mut make: impl FnMut(usize) -> Command) -> Result<f64, String> {
    let mut v = Vec::new();
    for i in 0..n {
        let mut c = make(i);
        let t = Instant::now();
        let out = c.output().map_err(|e| format!("{c:?}: {e}"))?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if !out.status.success() {
            return Err(format!(
                "{:?} failed: {}",
                c.get_program(),
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .last()
                    .unwrap_or("")
            ));
        }
        v.push(ms);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Ok(v[v.len() / 2])
}

struct Bench {
    berth: PathBuf,
    dir: PathBuf,
    config: PathBuf,
    podman_conf: PathBuf,
}

impl Bench {
    fn berth(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.berth);
        c.arg("--config").arg(&self.config).args(args);
        c.env_remove("BERTH_ROOT");
        quiet(c)
    }
    fn podman(&self, args: &[&str]) -> Command {
        self.podman_in(&self.dir.join("podman"), args)
    }
    /// podman with its store (`root/`, `run/`) under `dir`.
    fn podman_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new("podman");
        c.arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("run"))
            .args(args)
            .env("CONTAINERS_CONF", &self.podman_conf);
        quiet(c)
    }
}

fn busybox_rootfs(dir: &Path) -> Result<PathBuf> {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin"))?;
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).context("busybox-static is needed")?;
    for a in ["sh", "true", "echo", "cat", "mkdir", "cp", "ls", "test"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    Ok(root)
}

fn tar(dir: &Path, out: &Path) -> Result<()> {
    let st = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .arg(".")
        .status()?;
    if !st.success() {
        bail!("tar failed");
    }
    Ok(())
}

fn row(
    name: &str,
    berth: Result<f64, String>,
    peer: &str,
    p: Result<f64, String>,
    note: &str,
) -> Row {
    let mut note = note.to_string();
    if let Err(e) = &berth {
        note = format!("berth failed: {e}");
    }
    if let Err(e) = &p {
        if !peer.is_empty() {
            note = format!(
                "{note}{}{peer} skipped: {e}",
                if note.is_empty() { "" } else { "; " }
            );
        }
    }
    let (b, pm) = (berth.ok(), p.ok());
    Row {
        name: name.into(),
        berth_ms: b,
        peer: peer.into(),
        peer_ms: pm,
        ratio: match (b, pm) {
            (Some(b), Some(p)) if p > 0.0 => Some(b / p),
            _ => None,
        },
        note,
    }
}

pub fn run(berth: &Path, workspace: &Path, save: bool, n: usize) -> Result<Vec<Row>> {
    let dir = std::env::temp_dir().join(format!("bt-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("berth.toml");
    std::fs::write(
        &config,
        format!(
            "root = \"{}\"\n[network.bridge]\ndefault_bridge = \"btbench0\"\ndefault_subnet = \"10.199.0.0/24\"\ntable = \"btbench\"\nbridge_prefix = \"btbn\"\nveth_prefix = \"bvb\"\n[isolator.cgroup1]\nparent = \"bt-bench\"\n[isolator.cgroup2]\nparent = \"bt-bench\"\n",
            dir.join("root").display()
        ),
    )?;
    let podman_conf = dir.join("containers.conf");
    std::fs::write(
        &podman_conf,
        "[containers]\ndefault_ulimits = []\n[engine]\nruntime = \"runc\"\n",
    )?;
    let b = Bench {
        berth: berth.to_path_buf(),
        dir: dir.clone(),
        config,
        podman_conf,
    };
    let before = PeerLeftovers::snapshot();
    let result = measure(&b, n);
    cleanup(&b);
    before.remove_new();
    let rows = result?;
    print_table(&rows);
    let out = workspace.join("target/bench");
    std::fs::create_dir_all(&out)?;
    let json = serde_json::to_string_pretty(&serde_json::json!({
        "date": chrono_now(),
        "machine": machine(),
        "rows": rows,
    }))?;
    std::fs::write(out.join("results.json"), &json)?;
    std::fs::write(out.join("results.svg"), svg(&rows))?;
    println!(
        "\nwrote {0}/results.json and {0}/results.svg",
        out.display()
    );
    if save {
        let docs = workspace.join("docs/bench");
        std::fs::create_dir_all(&docs)?;
        std::fs::write(docs.join("results.json"), &json)?;
        std::fs::write(docs.join("results.svg"), svg(&rows))?;
        println!("saved to {}", docs.display());
    }
    Ok(rows)
}

fn chrono_now() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, Linux {}", kernel.trim())
}

fn measure(b: &Bench, n: usize) -> Result<Vec<Row>> {
    let rootfs = busybox_rootfs(&b.dir)?;
    let bbtar = b.dir.join("busybox.tar");
    tar(&rootfs, &bbtar)?;
    let st = b
        .berth(&[
            "import",
            bbtar.to_str().unwrap_or_default(),
            "localhost/busybox:latest",
        ])
        .status()?;
    if !st.success() {
        bail!("importing busybox into berth failed");
    }
    // Warm up: unpack the layer once, create the default network once.
    let _ = b
        .berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "localhost/busybox",
            "true",
        ])
        .status();
    let _ = b
        .berth(&["run", "--rm", "localhost/busybox", "true"])
        .status();
    let mut rows = Vec::new();

    let unshare = time(n, |_| {
        quiet({
            let mut c = Command::new("unshare");
            c.args(["-p", "-m", "-u", "-i", "-n", "-f", "true"]);
            c
        })
    });
    let berth_none = time(n, |_| {
        b.berth(&[
            "run",
            "--rm",
            "--network",
            "none",
            "localhost/busybox",
            "true",
        ])
    });
    rows.push(row(
        "run --rm true (no network) vs bare unshare",
        berth_none.clone(),
        "unshare",
        unshare,
        "goal: ≤ 3× a bare unshare of 5 namespaces",
    ));

    // runc with an equivalent bundle.
    let runc = if which("runc").is_none() {
        Err("runc is not installed".to_string())
    } else {
        let bundle = b.dir.join("bundle");
        std::fs::create_dir_all(&bundle)?;
        let _ = Command::new("cp")
            .arg("-a")
            .arg(&rootfs)
            .arg(bundle.join("rootfs"))
            .status();
        let spec = Command::new("runc")
            .args(["spec"])
            .current_dir(&bundle)
            .status();
        match spec {
            Ok(s) if s.success() => {
                let p = bundle.join("config.json");
                let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&p)?)?;
                v["process"]["args"] = serde_json::json!(["true"]);
                v["process"]["terminal"] = serde_json::json!(false);
                v["root"]["readonly"] = serde_json::json!(false);
                std::fs::write(&p, serde_json::to_vec(&v)?)?;
                time(n, |i| {
                    let mut c = Command::new("runc");
                    c.args(["run", "--bundle"])
                        .arg(&bundle)
                        .arg(format!("bt-bench-runc-{i}"));
                    quiet(c)
                })
            }
            _ => Err("runc spec failed".into()),
        }
    };
    rows.push(row(
        "run --rm true (no network) vs runc run",
        berth_none.clone(),
        "runc",
        runc.clone(),
        "runc of an equivalent bundle",
    ));
    // berth-runtime (the OCI runtime CLI) on runc's very bundle.
    let rt_bin = b.berth.with_file_name("berth-runtime");
    let bundle = b.dir.join("bundle");
    let rt = if !rt_bin.exists() {
        Err(format!("{} is not staged", rt_bin.display()))
    } else if !bundle.join("config.json").exists() {
        Err("no bundle (runc spec failed)".to_string())
    } else {
        time(n, |i| {
            let mut c = Command::new(&rt_bin);
            c.arg("--root")
                .arg(b.dir.join("rt-state"))
                .env("BERTH_CONFIG", &b.config)
                .args(["run", "--bundle"])
                .arg(&bundle)
                .arg(format!("bt-bench-rt-{i}"));
            quiet(c)
        })
    };
    rows.push(row(
        "berth-runtime run vs runc run (same bundle)",
        rt,
        "runc",
        runc,
        "both OCI runtimes on runc's `runc spec` bundle running `true`",
    ));

    let podman_ok = which("podman").is_some()
        && b.podman(&[
            "import",
            bbtar.to_str().unwrap_or_default(),
            "localhost/busybox:latest",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let podman_none = if podman_ok {
        time(n, |_| {
            b.podman(&[
                "run",
                "--rm",
                "--network",
                "none",
                "localhost/busybox",
                "true",
            ])
        })
    } else {
        Err("podman is not installed or could not import the image".into())
    };
    rows.push(row(
        "run --rm true (no network) vs podman",
        berth_none.clone(),
        "podman",
        podman_none,
        "",
    ));

    let berth_bridge = time(n, |_| {
        b.berth(&["run", "--rm", "localhost/busybox", "true"])
    });
    let podman_bridge = if podman_ok {
        time(n, |_| {
            b.podman(&["run", "--rm", "localhost/busybox", "true"])
        })
    } else {
        Err("podman unavailable".into())
    };
    let bridge_cost = match (&berth_bridge, &berth_none) {
        (Ok(a), Ok(n)) => format!("bridge attach+detach adds {:.1} ms", a - n),
        _ => String::new(),
    };
    rows.push(row(
        "run --rm true (default bridge network) vs podman",
        berth_bridge,
        "podman",
        podman_bridge,
        &bridge_cost,
    ));

    // Builds: a seed-shaped two-stage Dockerfile on busybox.
    let ctx = b.dir.join("ctx");
    std::fs::create_dir_all(ctx.join("src"))?;
    std::fs::write(ctx.join("src/index.html"), "<h1>bench</h1>\n")?;
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM localhost/busybox AS builder\nWORKDIR /app\nCOPY . .\nRUN mkdir -p dist && cp src/index.html dist/\n\nFROM localhost/busybox\nCOPY --from=builder /app/dist /www\nEXPOSE 80\nCMD [\"cat\", \"/www/index.html\"]\n",
    )?;
    let ctx_s = ctx.to_str().unwrap_or_default().to_string();
    let nb = n.min(5);
    let berth_cold = time(nb, |_| {
        b.berth(&["build", "--no-cache", "-q", "-t", "bench:cold", &ctx_s])
    });
    let _ = b
        .berth(&["build", "-q", "-t", "bench:warm", &ctx_s])
        .status();
    let berth_warm = time(nb, |_| {
        b.berth(&["build", "-q", "-t", "bench:warm", &ctx_s])
    });
    let (podman_cold, podman_warm) = if podman_ok {
        let cold = time(nb, |_| {
            b.podman(&["build", "--no-cache", "-q", "-t", "bench:cold", &ctx_s])
        });
        let _ = b
            .podman(&["build", "-q", "-t", "bench:warm", &ctx_s])
            .status();
        (
            cold,
            time(nb, |_| {
                b.podman(&["build", "-q", "-t", "bench:warm", &ctx_s])
            }),
        )
    } else {
        (
            Err("podman unavailable".to_string()),
            Err("podman unavailable".to_string()),
        )
    };
    rows.push(row(
        "build, cold (--no-cache), seed-shaped",
        berth_cold,
        "podman build",
        podman_cold,
        "goal: ≥ 3× faster than podman",
    ));
    rows.push(row(
        "build, warm (all cached), seed-shaped",
        berth_warm,
        "podman build",
        podman_warm,
        "goal: berth < 50 ms",
    ));

    // Import throughput: ~100 MB rootfs tarball vs tar -x of the same file.
    let big = b.dir.join("big");
    std::fs::create_dir_all(&big)?;
    let chunk: Vec<u8> = (0..1_048_576u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for i in 0..100 {
        std::fs::write(big.join(format!("f{i:03}")), &chunk)?;
    }
    let bigtar = b.dir.join("big.tar");
    tar(&big, &bigtar)?;
    std::fs::remove_dir_all(&big)?;
    let bigtar_s = bigtar.to_str().unwrap_or_default().to_string();
    let imp = time(3, |i| {
        b.berth(&["import", &bigtar_s, &format!("bench/big:{i}")])
    });
    let untar = time(3, |i| {
        let d = b.dir.join(format!("untar{i}"));
        let _ = std::fs::create_dir_all(&d);
        let mut c = Command::new("tar");
        c.arg("-C").arg(&d).arg("-xf").arg(&bigtar);
        quiet(c)
    });
    rows.push(row(
        "import of a 100 MB rootfs tarball",
        imp,
        "tar -x",
        untar,
        "berth verifies and stores the layer (sha256 + fsync)",
    ));
    rows.push(pull_row(b)?);
    Ok(rows)
}

/// A Debian `docker-registry` on a free loopback port, killed on drop.
struct LocalRegistry {
    child: std::process::Child,
    port: u16,
}

impl LocalRegistry {
    fn start(dir: &Path) -> Result<LocalRegistry, String> {
        let bin = Path::new("/usr/bin/docker-registry");
        if !bin.exists() {
            return Err("docker-registry is not installed (apt install docker-registry)".into());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let cfg = dir.join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("data").display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let child = quiet({
            let mut c = Command::new(bin);
            c.arg("serve").arg(&cfg);
            c
        })
        .spawn()
        .map_err(|e| e.to_string())?;
        let reg = LocalRegistry { child, port };
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("docker-registry did not start within 10 s".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(reg)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pull of the ~100 MB image from a loopback registry into a fresh store, berth vs podman.
fn pull_row(b: &Bench) -> Result<Row> {
    let name = "pull of a 100 MB image from a loopback registry";
    let reg = match LocalRegistry::start(&b.dir.join("registry")) {
        Ok(r) => r,
        Err(e) => return Ok(row(name, Err(e), "", Err(String::new()), "")),
    };
    let remote = format!("127.0.0.1:{}/bench/big:1", reg.port);
    let pushed = b
        .berth(&["tag", "bench/big:0", &remote])
        .status()?
        .success()
        && b.berth(&["push", "-q", &remote]).status()?.success();
    if !pushed {
        return Ok(row(
            name,
            Err("berth push failed".into()),
            "",
            Err(String::new()),
            "",
        ));
    }
    let pull = time(3, |i| {
        let mut c = b.berth(&["pull", "-q", &remote]);
        c.env("BERTH_ROOT", b.dir.join(format!("pullroot{i}")));
        c
    });
    let podman = if which("podman").is_some() {
        time(3, |i| {
            b.podman_in(
                &b.dir.join(format!("podman-pull{i}")),
                &["pull", "-q", "--tls-verify=false", &remote],
            )
        })
    } else {
        Err("podman is not installed".into())
    };
    if which("podman").is_some() {
        for i in 0..3 {
            let _ = b
                .podman_in(
                    &b.dir.join(format!("podman-pull{i}")),
                    &["system", "reset", "-f"],
                )
                .status();
        }
    }
    drop(reg);
    Ok(row(
        name,
        pull,
        "podman pull",
        podman,
        "fresh store each run; podman also unpacks the layers, berth unpacks on first run",
    ))
}

fn cleanup(b: &Bench) {
    if let Ok(o) = b.berth(&["ps", "-aq"]).stdout(Stdio::piped()).output() {
        for id in String::from_utf8_lossy(&o.stdout).lines() {
            let _ = b.berth(&["rm", "-f", id]).status();
        }
    }
    let _ = b.berth(&["network", "prune"]).status();
    for i in 0..64 {
        let _ = quiet({
            let mut c = Command::new("runc");
            c.args(["delete", "-f", &format!("bt-bench-runc-{i}")]);
            c
        })
        .status();
    }
    if which("podman").is_some() {
        let _ = b.podman(&["rm", "-a", "-f"]).status();
        let _ = b.podman(&["system", "reset", "-f"]).status();
    }
    let _ = Command::new("umount")
        .arg("-R")
        .arg(&b.dir)
        .stderr(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(&b.dir);
}

/// What the peers leave on the host after their containers are gone: podman's cgroupfs
/// parent (`/libpod_parent` at the root of every hierarchy) and netavark's iptables-nft
/// tables. Recorded before the run so only what the run created is removed afterwards.
struct PeerLeftovers {
    cgroups: Vec<PathBuf>,
    tables: Vec<String>,
}

const PEER_TABLES: &[&str] = &["ip nat", "ip filter", "ip6 nat", "ip6 filter"];

impl PeerLeftovers {
    fn snapshot() -> Self {
        let cgroups = std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("libpod_parent"))
            .filter(|p| !p.exists())
            .collect();
        let tables = PEER_TABLES
            .iter()
            .filter(|t| !nft_table_exists(t))
            .map(|t| t.to_string())
            .collect();
        Self { cgroups, tables }
    }

    /// Removes the (empty) cgroup trees and the tables that appeared during the run.
    fn remove_new(&self) {
        for dir in &self.cgroups {
            remove_empty_cgroup_tree(dir);
        }
        for t in &self.tables {
            if nft_table_exists(t) {
                let mut c = Command::new("nft");
                c.arg(format!("delete table {t}"));
                let _ = quiet(c).status();
            }
        }
    }
}

fn nft_table_exists(table: &str) -> bool {
    let mut c = Command::new("nft");
    c.arg(format!("list table {table}"));
    quiet(c).status().is_ok_and(|s| s.success())
}

/// rmdir depth first; a cgroup with processes refuses and stays.
fn remove_empty_cgroup_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn fmt_ms(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "—".into())
}

fn print_table(rows: &[Row]) {
    println!("\n| benchmark | berth | peer | peer time | berth/peer | note |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.name,
            fmt_ms(r.berth_ms),
            r.peer,
            fmt_ms(r.peer_ms),
            r.ratio
                .map(|x| format!("{x:.2}×"))
                .unwrap_or_else(|| "—".into()),
            r.note
        );
    }
}

/// A small horizontal bar chart (log-free, per-row scaling) as a standalone SVG.
fn svg(rows: &[Row]) -> String {
    let w = 900.0;
    let row_h = 56.0;
    let h = 40.0 + row_h * rows.len() as f64;
    let mut s = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="15" font-weight="bold">berth vs peers (median wall time, lower is better)</text>"##
    );
    for (i, r) in rows.iter().enumerate() {
        let y = 40.0 + row_h * i as f64;
        let max = r
            .berth_ms
            .unwrap_or(0.0)
            .max(r.peer_ms.unwrap_or(0.0))
            .max(1e-9);
        let scale = 420.0 / max;
        s.push_str(&format!(
            r##"<text x="10" y="{}">{}</text>"##,
            y + 12.0,
            xml(&r.name)
        ));
        if let Some(v) = r.berth_ms {
            s.push_str(&format!(
                r##"<rect x="300" y="{}" width="{:.1}" height="14" fill="#2b6cb0"/><text x="{:.1}" y="{}">berth {:.1} ms</text>"##,
                y + 18.0, v * scale, 305.0 + v * scale, y + 30.0, v
            ));
        }
        if let Some(v) = r.peer_ms {
            s.push_str(&format!(
                r##"<rect x="300" y="{}" width="{:.1}" height="14" fill="#a0aec0"/><text x="{:.1}" y="{}">{} {:.1} ms</text>"##,
                y + 34.0, v * scale, 305.0 + v * scale, y + 46.0, xml(&r.peer), v
            ));
        }
    }
    s.push_str("</svg>\n");
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
