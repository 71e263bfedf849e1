//! The commands.

use std::{
    io::Write,
    os::fd::{AsRawFd, OwnedFd},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::{anyhow, bail, Context, Result};
use berth_abi::{DeviceKind, DeviceRule, Isolator, Limits};
use berth_runtime::{
    oci_in::{self, OciContainer},
    DeviceCgroupRule, DeviceNode, DeviceType, ExecOptions, ProcessSpec, Stdio,
};
use nix::{
    sys::{
        signal::{SigSet, Signal},
        wait::{waitpid, WaitPidFlag, WaitStatus},
    },
    unistd::Pid,
};
use oci_spec::runtime::{LinuxResources, Spec};

use crate::{
    hooks,
    log::Logger,
    state::{self, Dir, Record, Status},
    Cli, Command, CreateArgs, Global,
};

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// An OCI process JSON file (instead of the command and flags)
    #[arg(short, long, value_name = "FILE")]
    pub process: Option<PathBuf>,
    /// Return once the process runs
    #[arg(short, long)]
    pub detach: bool,
    /// Allocate a terminal (its master goes to --console-socket)
    #[arg(short, long)]
    pub tty: bool,
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Working directory (default: the container's)
    #[arg(long)]
    pub cwd: Option<String>,
    /// KEY=value added to the container's environment
    #[arg(short, long)]
    pub env: Vec<String>,
    /// uid[:gid]
    #[arg(short, long)]
    pub user: Option<String>,
    /// Supplementary group ids
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Capabilities added to the container's set
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Set no_new_privs
    #[arg(long)]
    pub no_new_privs: bool,
    /// Accepted for runc compatibility
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility (no AppArmor/SELinux support)
    #[arg(long, hide = true)]
    pub apparmor: Option<String>,
    #[arg(long, hide = true)]
    pub process_label: Option<String>,
    pub id: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// linux.resources JSON; `-` reads stdin
    #[arg(short, long, value_name = "FILE")]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub memory: Option<i64>,
    #[arg(long)]
    pub memory_swap: Option<i64>,
    #[arg(long)]
    pub memory_reservation: Option<i64>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    pub id: String,
}

pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let n: u64 = num.parse().map_err(|_| format!("bad interval {s:?}"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("bad interval {s:?} (use 500ms, 5s, 1m)")),
    }
}

pub fn dispatch(cli: &Cli, log: &Logger) -> Result<u8> {
    let g = &cli.global;
    if g.systemd_cgroup {
        bail!(
            "--systemd-cgroup: berth-runtime manages cgroups itself (cgroupfs) and does not \
             support the systemd driver; configure the caller for cgroupfs (containerd: \
             SystemdCgroup = false; CRI-O: cgroup_manager = \"cgroupfs\"; podman: \
             cgroup_manager = \"cgroupfs\")"
        );
    }
    match &cli.command {
        Command::Create(a) => create(g, log, a, false).map(|_| 0),
        Command::Run {
            create: a, detach, ..
        } => run(g, log, a, *detach),
        Command::Start { id } => start(g, log, id).map(|_| 0),
        Command::State { id } => {
            let d = Dir::new(&g.root, id)?;
            let r = d.load()?;
            println!(
                "{}",
                serde_json::to_string_pretty(&state::state_json(&r, d.status(&r)))?
            );
            Ok(0)
        }
        Command::Kill { id, signal, all } => kill(g, id, signal, *all).map(|_| 0),
        Command::Delete { id, force } => delete(g, log, id, *force).map(|_| 0),
        Command::Exec(a) => exec(g, log, a),
        Command::Ps {
            id,
            format,
            ps_args,
        } => ps(g, id, format, ps_args).map(|_| 0),
        Command::Pause { id } => pause(g, id, true).map(|_| 0),
        Command::Resume { id } => pause(g, id, false).map(|_| 0),
        Command::Update(a) => update(g, a).map(|_| 0),
        Command::List { format, quiet } => list(g, format, *quiet).map(|_| 0),
        Command::Spec { bundle, rootless } => spec(bundle, *rootless).map(|_| 0),
        Command::Features => {
            println!("{}", serde_json::to_string_pretty(&features())?);
            Ok(0)
        }
        Command::Events {
            id,
            stats,
            interval,
        } => events(g, id, *stats, *interval).map(|_| 0),
    }
}

/// The isolator plugin (found and configured as `berth` does), with its state under
/// `<root>/.plugins`.
struct Iso {
    _plugins: berth_engine::Plugins,
    iso: Arc<dyn Isolator>,
}

fn isolator(g: &Global, parent: Option<&str>) -> Result<Iso> {
    let mut cfg = berth_engine::Config::from_env(&berth_engine::Overrides {
        root: Some(g.root.join(".plugins")),
        ..Default::default()
    })
    .context("reading berth's configuration (for the isolator plugin)")?;
    if let Some(p) = parent {
        // The container's own parent group (from linux.cgroupsPath), for whichever
        // cgroup plugin is active.
        for name in ["cgroup1", "cgroup2"] {
            cfg.isolator
                .plugins
                .insert(name.into(), serde_json::json!({ "parent": p }));
        }
    }
    let plugins = berth_engine::Plugins::new(cfg);
    let iso = plugins
        .isolator()
        .context("loading the isolator plugin (cgroups)")?;
    Ok(Iso {
        _plugins: plugins,
        iso,
    })
}

/// Where a container's group goes: `(parent, name)`. A `linux.cgroupsPath` of valid
/// names with a parent (`/a/b/c`: below the cgroup mounts; `a/b/c`: below the runtime's
/// own group) is taken literally (parent `/a/b`, group `c`); anything else (systemd's
/// `slice:prefix:name`, a single component, odd characters) becomes one group name under
/// the isolator's configured parent.
fn cgroup_place(id: &str, cgroups_path: Option<&str>) -> (Option<String>, String) {
    if let Some(p) = cgroups_path.filter(|p| !p.contains(':')) {
        let t = p.trim_end_matches('/');
        if let Some((dir, base)) = t.rsplit_once('/') {
            let valid = |n: &str| {
                !n.is_empty()
                    && !n.starts_with('.')
                    && !n.starts_with("cgroup.")
                    && n.len() <= 128
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            };
            let dir_ok = dir.split('/').filter(|c| !c.is_empty()).all(valid)
                && dir.split('/').any(|c| !c.is_empty());
            if dir_ok && valid(base) {
                return (Some(dir.to_string()), base.to_string());
            }
        }
    }
    (None, group_name(id, cgroups_path))
}

/// The isolator group of a container: `linux.cgroupsPath` made one valid name, or the id.
fn group_name(id: &str, cgroups_path: Option<&str>) -> String {
    let raw = cgroups_path
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
        .unwrap_or(id);
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    while s.starts_with(['.', '-']) {
        s.remove(0);
    }
    if s.starts_with("cgroup.") || s.is_empty() {
        s.insert_str(0, "ctr-");
    }
    s.truncate(128);
    s
}

/// `linux.resources` → the isolator's limits. What no isolator enforces is refused.
pub fn limits(r: &LinuxResources, log: Option<&Logger>) -> Result<Limits> {
    let mut l = Limits::default();
    if let Some(m) = r.memory() {
        l.memory = m.limit().filter(|v| *v >= 0);
        l.memory_swap = m.swap();
        l.memory_reservation = m.reservation().filter(|v| *v >= 0);
        let unsupported = m.kernel().is_some()
            || m.kernel_tcp().is_some()
            || m.swappiness().is_some()
            || m.disable_oom_killer().is_some();
        if let (Some(log), true) = (log, unsupported) {
            log.warn(
                "linux.resources.memory: kernel, kernelTCP, swappiness and disableOOMKiller \
                 are not supported by the isolator plugins, ignored",
            );
        }
    }
    if let Some(c) = r.cpu() {
        l.cpu_quota = c.quota().filter(|v| *v > 0);
        l.cpu_period = c.period();
        l.cpu_shares = c.shares();
        l.cpuset_cpus = c.cpus().clone().filter(|s| !s.is_empty());
        l.cpuset_mems = c.mems().clone().filter(|s| !s.is_empty());
        if c.realtime_runtime().is_some() || c.realtime_period().is_some() {
            bail!("linux.resources.cpu: realtime runtime/period are not supported");
        }
    }
    if let Some(p) = r.pids() {
        l.pids = Some(p.limit());
    }
    if let Some(b) = r.block_io() {
        l.blkio_weight = b.weight();
        if b.weight_device().as_ref().is_some_and(|v| !v.is_empty())
            || b.throttle_read_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_bps_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_read_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
            || b.throttle_write_iops_device()
                .as_ref()
                .is_some_and(|v| !v.is_empty())
        {
            bail!("linux.resources.blockIO: per-device weights and throttles are not supported");
        }
    }
    if r.hugepage_limits().as_ref().is_some_and(|v| !v.is_empty()) {
        bail!("linux.resources.hugepageLimits: hugetlb limits are not supported");
    }
    if r.network().is_some() {
        bail!("linux.resources.network: net_cls/net_prio are not supported");
    }
    if r.rdma().as_ref().is_some_and(|v| !v.is_empty())
        || r.unified().as_ref().is_some_and(|v| !v.is_empty())
    {
        bail!("linux.resources: rdma and unified (raw cgroup v2 files) are not supported");
    }
    Ok(l)
}

/// The device list of a container, as runc builds it: the config's rules, then access to
/// the nodes of `linux.devices`, then runc's always-allowed devices (null, zero, full,
/// random, urandom, tty, ptmx, pts, tun).
fn device_rules(rules: &[DeviceCgroupRule], nodes: &[DeviceNode]) -> Vec<DeviceRule> {
    let mut out: Vec<DeviceRule> = rules
        .iter()
        .map(|r| {
            let kind = match r.kind {
                'c' => DeviceKind::Char,
                'b' => DeviceKind::Block,
                _ => DeviceKind::All,
            };
            let mut access = 0;
            for ch in r.access.chars() {
                access |= match ch {
                    'r' => DeviceRule::READ,
                    'w' => DeviceRule::WRITE,
                    'm' => DeviceRule::MKNOD,
                    _ => 0,
                };
            }
            DeviceRule::new(r.allow, kind, r.major, r.minor, access)
        })
        .collect();
    for n in nodes {
        let kind = match n.kind {
            DeviceType::Char => DeviceKind::Char,
            DeviceType::Block => DeviceKind::Block,
            DeviceType::Fifo => continue,
        };
        out.push(DeviceRule::new(
            true,
            kind,
            Some(n.major),
            Some(n.minor),
            DeviceRule::ALL_ACCESS,
        ));
    }
    out.extend(berth_engine::devices::default_rules().into_iter().skip(1));
    // The isolator wants a list that starts with a verdict for every device.
    if !out.first().is_some_and(DeviceRule::is_everything) {
        out.insert(0, DeviceRule::everything(false));
    }
    // Only the last wildcard counts (later rules refine it): drop earlier ones.
    if let Some(last) = out.iter().rposition(DeviceRule::is_everything) {
        out.drain(..last);
    }
    out
}

fn read_spec(path: &Path) -> Result<Spec> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Sends the terminal's master to the caller's socket (SCM_RIGHTS), as runc does.
fn send_console(socket: &Path, master: &OwnedFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("connecting to the console socket {}", socket.display()))?;
    let fds = [master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<nix::sys::socket::UnixAddr>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .with_context(|| format!("sending the terminal to {}", socket.display()))?;
    Ok(())
}

fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    state::write_atomic(path, pid.to_string().as_bytes())
}

/// Undoes a half-made container unless disarmed.
struct Cleanup<'a> {
    dir: &'a Dir,
    iso: Option<(&'a Iso, String)>,
    armed: bool,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.armed {
            if let Some((iso, group)) = &self.iso {
                let _ = iso.iso.destroy(group);
            }
            let _ = std::fs::remove_dir_all(&self.dir.path);
        }
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `create`: returns the container's pid.
fn create(g: &Global, log: &Logger, a: &CreateArgs, _run: bool) -> Result<i32> {
    let dir = Dir::new(&g.root, &a.id)?;
    let bundle = std::fs::canonicalize(&a.bundle)
        .with_context(|| format!("bundle {}", a.bundle.display()))?;
    let config_path = bundle.join("config.json");
    let spec = read_spec(&config_path)?;
    let OciContainer {
        spec: cspec,
        mut options,
        oom_score_adj,
        cgroups_path,
        resources,
        hooks: spec_hooks,
    } = oci_in::from_oci(&spec, &bundle, &a.id)?;
    let limits = match &resources {
        Some(r) => limits(r, Some(log))?,
        None => Limits::default(),
    };
    if cspec.process.tty && a.console_socket.is_none() {
        bail!("process.terminal is set: --console-socket is required to receive the terminal");
    }
    let (parent, group) = cgroup_place(&a.id, cgroups_path.as_deref());
    let iso = isolator(g, parent.as_deref())?;
    dir.make()?;
    let mut cleanup = Cleanup {
        dir: &dir,
        iso: None,
        armed: true,
    };
    // No lock here: the container process would inherit it (a flock belongs to the open
    // file) and hold it until exec. The directory itself (mkdir) reserves the id, and other
    // commands see no container until state.json is renamed into place.
    std::fs::copy(&config_path, dir.config())
        .with_context(|| format!("copying {}", config_path.display()))?;
    let fifo = dir.fifo();
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .with_context(|| format!("creating {}", fifo.display()))?;
    options.go_fifo = Some(fifo);
    options.preserve_fds = a.preserve_fds;
    iso.iso
        .create(&group, &limits)
        .with_context(|| format!("creating the container's cgroup {group:?}"))?;
    cleanup.iso = Some((&iso, group.clone()));
    if !cspec.device_rules.is_empty() {
        iso.iso
            .set_devices(&group, &device_rules(&cspec.device_rules, &cspec.devices))
            .with_context(|| "linux.resources.devices: setting the device access list")?;
    }
    log.debug(&format!(
        "creating container {} from {}",
        a.id,
        bundle.display()
    ));
    let stdio = if cspec.process.tty {
        Stdio::Pty
    } else {
        Stdio::Inherit
    };
    let mut created = berth_runtime::create_with(&cspec, stdio, &options)?;
    let pid = created.pid();
    iso.iso
        .add_process(&group, pid)
        .with_context(|| format!("adding process {pid} to cgroup {group:?}"))?;
    if let Some(adj) = oom_score_adj {
        std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string())
            .with_context(|| format!("process.oomScoreAdj {adj}"))?;
    }
    let (_, start_time) =
        state::proc_stat(pid).ok_or_else(|| anyhow!("container process {pid} vanished"))?;
    let record = Record {
        id: a.id.clone(),
        pid,
        start_time,
        bundle: bundle.clone(),
        rootfs: cspec.rootfs.clone(),
        created: now_rfc3339(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        group,
        cgroup_parent: parent,
        paused: false,
    };
    let st = state::state_json(&record, Status::Created);
    if let Some(h) = &spec_hooks {
        #[allow(deprecated)]
        let prestart = h.prestart().clone().unwrap_or_default();
        hooks::run("prestart", &prestart, &st)?;
        hooks::run(
            "createRuntime",
            &h.create_runtime().clone().unwrap_or_default(),
            &st,
        )?;
        hooks::run(
            "createContainer",
            &h.create_container().clone().unwrap_or_default(),
            &st,
        )?;
    }
    if let (Some(sock), Some(master)) = (&a.console_socket, created.pty_master()) {
        send_console(sock, &master)?;
    }
    dir.save(&record)?;
    if let Some(p) = &a.pid_file {
        write_pid_file(p, pid)?;
    }
    cleanup.armed = false;
    created.detach();
    Ok(pid)
}

fn start(g: &Global, log: &Logger, id: &str) -> Result<()> {
    let dir = Dir::new(&g.root, id)?;
    let _lock = dir.lock()?;
    let r = dir.load()?;
    let status = dir.status(&r);
    if status != Status::Created {
        bail!(
            "cannot start container {id:?}: it is {} (only a created container starts)",
            status.as_str()
        );
    }
    let spec = read_spec(&dir.config())?;
    let hooks_cfg = spec.hooks().clone();
    if let Some(h) = &hooks_cfg {
        // These belong inside the container after its setup; run here, in the runtime's
        // namespaces, with the state on stdin (see docs/runtime.md).
        hooks::run(
            "startContainer",
            &h.start_container().clone().unwrap_or_default(),
            &state::state_json(&r, Status::Created),
        )?;
    }
    berth_runtime::start_fifo(&dir.fifo()).with_context(|| format!("starting container {id:?}"))?;
    let _ = std::fs::remove_file(dir.fifo());
    if let Some(h) = &hooks_cfg {
        let st = state::state_json(&r, Status::Running);
        if let Err(e) = hooks::run("poststart", &h.poststart().clone().unwrap_or_default(), &st) {
            log.warn(&format!("{e:#}"));
        }
    }
    Ok(())
}

const FORWARDED: &[Signal] = &[
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Waits for our child `pid`, forwarding the usual signals to it; its exit code (128+N
/// for a signal).
fn wait_forwarding(pid: i32) -> Result<u8> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(*s);
    }
    set.thread_block().context("blocking signals")?;
    loop {
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code as u8),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128u8.wrapping_add(sig as i32 as u8)),
            Ok(_) => {}
            Err(nix::errno::Errno::ECHILD) => return Ok(255),
            Err(e) => return Err(e).context("waiting for the container process"),
        }
        let sig = set.wait().context("waiting for signals")?;
        if sig != Signal::SIGCHLD {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), sig);
        }
    }
}

fn run(g: &Global, log: &Logger, a: &CreateArgs, detach: bool) -> Result<u8> {
    let pid = create(g, log, a, true)?;
    if let Err(e) = start(g, log, &a.id) {
        let _ = delete(g, log, &a.id, true);
        return Err(e);
    }
    if detach {
        return Ok(0);
    }
    let code = wait_forwarding(pid)?;
    delete(g, log, &a.id, true)?;
    Ok(code)
}

pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("invalid signal number {n}");
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>()
        .map(|s| s as i32)
        .map_err(|_| anyhow!("unknown signal {s:?}"))
}

fn kill(g: &Global, id: &str, signal: &str, all: bool) -> Result<()> {
    let sig = parse_signal(signal)?;
    let dir = Dir::new(&g.root, id)?;
    let r = dir.load()?;
    if dir.status(&r) == Status::Stopped {
        bail!("container {id:?} is not running");
    }
    if all {
        let iso = isolator(g, r.cgroup_parent.as_deref())?;
        iso.iso
            .kill(&r.group, sig)
            .with_context(|| format!("signalling every process of container {id:?}"))?;
    } else {
        // SAFETY: kill(2) with a pid we recorded and checked (start time) just now.
        if unsafe { libc::kill(r.pid, sig) } < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("signalling process {} of container {id:?}", r.pid));
        }
    }
    Ok(())
}

fn delete(g: &Global, log: &Logger, id: &str, force: bool) -> Result<()> {
    let dir = Dir::new(&g.root, id)?;
    if !dir.exists() {
        if force {
            return Ok(());
        }
        bail!("container {id:?} does not exist");
    }
    let _lock = dir.lock()?;
    let r = dir.load()?;
    let status = dir.status(&r);
    let iso = isolator(g, r.cgroup_parent.as_deref())?;
    match status {
        Status::Stopped => {}
        Status::Created => {
            // SAFETY: kill(2) of the process we created (start time checked).
            unsafe { libc::kill(r.pid, libc::SIGKILL) };
        }
        Status::Running | Status::Paused if !force => bail!(
            "cannot delete container {id:?}: it is {} (stop it first, or use --force)",
            status.as_str()
        ),
        Status::Running | Status::Paused => {
            let _ = iso.iso.kill(&r.group, libc::SIGKILL);
            let _ = iso.iso.thaw(&r.group);
            // SAFETY: as above.
            unsafe { libc::kill(r.pid, libc::SIGKILL) };
        }
    }
    // Wait (bounded) until the process is gone, or at least a zombie.
    for _ in 0..500 {
        if dir.status(&r) == Status::Stopped {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    iso.iso
        .destroy(&r.group)
        .with_context(|| format!("removing cgroup {:?}", r.group))?;
    if let Ok(spec) = read_spec(&dir.config()) {
        if let Some(h) = spec.hooks() {
            let st = state::state_json(&r, Status::Stopped);
            if let Err(e) = hooks::run("poststop", &h.poststop().clone().unwrap_or_default(), &st) {
                log.warn(&format!("{e:#}"));
            }
        }
    }
    std::fs::remove_dir_all(&dir.path)
        .with_context(|| format!("removing {}", dir.path.display()))?;
    Ok(())
}

fn exec(g: &Global, log: &Logger, a: &ExecArgs) -> Result<u8> {
    let dir = Dir::new(&g.root, &a.id)?;
    let r = dir.load()?;
    let status = dir.status(&r);
    if !matches!(status, Status::Running | Status::Created) {
        bail!(
            "cannot exec in container {:?}: it is {}",
            a.id,
            status.as_str()
        );
    }
    let spec = read_spec(&dir.config())?;
    let base = oci_in::from_oci(&spec, &r.bundle, &a.id)?;
    let oci_in::OciProcess {
        process,
        caps,
        no_new_privileges: nnp,
        options: extra,
    } = match &a.process {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            let p: oci_spec::runtime::Process =
                serde_json::from_str(&text).with_context(|| format!("parsing {}", f.display()))?;
            oci_in::process_from_oci(&p)?
        }
        None => {
            if a.command.is_empty() {
                bail!("exec needs a command (or --process FILE)");
            }
            let mut p = ProcessSpec {
                args: a.command.clone(),
                env: base.spec.process.env.clone(),
                cwd: a
                    .cwd
                    .clone()
                    .unwrap_or_else(|| base.spec.process.cwd.clone()),
                user: base.spec.process.user.clone(),
                tty: a.tty,
            };
            p.env.extend(a.env.iter().cloned());
            if let Some(u) = &a.user {
                p.user = u.clone();
            }
            let mut caps = base.spec.cap_add.clone();
            caps.extend(a.cap.iter().cloned());
            let mut extra = base.options.clone();
            extra.sysctls.clear();
            if let Some(cs) = &mut extra.cap_sets {
                cs.effective.extend(a.cap.iter().cloned());
                cs.permitted.extend(a.cap.iter().cloned());
            }
            if !a.additional_gids.is_empty() {
                extra.additional_gids = Some(a.additional_gids.clone());
            }
            oci_in::OciProcess {
                process: p,
                caps,
                no_new_privileges: base.spec.no_new_privileges || a.no_new_privs,
                options: extra,
            }
        }
    };
    let opts = ExecOptions {
        privileged: false,
        cap_add: caps,
        cap_drop: vec!["ALL".into()],
        no_new_privileges: nnp || a.no_new_privs,
        cgroup_procs: berth_engine::exec::cgroup_procs_of(r.pid),
        seccomp: base.spec.seccomp.clone(),
    };
    if process.tty && a.console_socket.is_none() {
        bail!("a terminal (-t or process.terminal) needs --console-socket to receive it");
    }
    let stdio = if process.tty {
        Stdio::Pty
    } else {
        Stdio::Inherit
    };
    log.debug(&format!("exec {:?} in {}", process.args, a.id));
    let mut started = berth_runtime::exec_with(r.pid, &process, stdio, &opts, &extra)?;
    if let (Some(sock), Some(master)) = (&a.console_socket, started.pty_master()) {
        send_console(sock, &master)?;
    }
    if let Some(p) = &a.pid_file {
        write_pid_file(p, started.pid())?;
    }
    if a.detach {
        return Ok(0);
    }
    wait_forwarding(started.pid())
}

fn ps(g: &Global, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    let dir = Dir::new(&g.root, id)?;
    let r = dir.load()?;
    let iso = isolator(g, r.cgroup_parent.as_deref())?;
    let pids = iso
        .iso
        .pids(&r.group)
        .with_context(|| format!("listing the processes of container {id:?}"))?;
    if format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(());
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = std::process::Command::new("ps")
        .args(&args)
        .output()
        .context("running ps")?;
    if !out.status.success() {
        bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| anyhow!("ps output has no PID column (use -ef or add -o pid)"))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{header}")?;
    for l in lines {
        let pid: Option<i32> = l.split_whitespace().nth(col).and_then(|p| p.parse().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(stdout, "{l}")?;
        }
    }
    Ok(())
}

fn pause(g: &Global, id: &str, freeze: bool) -> Result<()> {
    let dir = Dir::new(&g.root, id)?;
    let _lock = dir.lock()?;
    let mut r = dir.load()?;
    let status = dir.status(&r);
    let iso = isolator(g, r.cgroup_parent.as_deref())?;
    if freeze {
        if status != Status::Running {
            bail!("cannot pause container {id:?}: it is {}", status.as_str());
        }
        iso.iso
            .freeze(&r.group)
            .with_context(|| format!("freezing container {id:?}"))?;
    } else {
        if status != Status::Paused {
            bail!("cannot resume container {id:?}: it is {}", status.as_str());
        }
        iso.iso
            .thaw(&r.group)
            .with_context(|| format!("thawing container {id:?}"))?;
    }
    r.paused = freeze;
    dir.save(&r)
}

fn update(g: &Global, a: &UpdateArgs) -> Result<()> {
    let dir = Dir::new(&g.root, &a.id)?;
    let _lock = dir.lock()?;
    let r = dir.load()?;
    let mut l = match &a.resources {
        Some(p) => {
            let text = if p.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
            };
            let res: LinuxResources =
                serde_json::from_str(&text).context("parsing the resources JSON")?;
            limits(&res, None)?
        }
        None => Limits::default(),
    };
    if let Some(v) = a.memory {
        l.memory = Some(v);
    }
    if let Some(v) = a.memory_swap {
        l.memory_swap = Some(v);
    }
    if let Some(v) = a.memory_reservation {
        l.memory_reservation = Some(v);
    }
    if let Some(v) = a.cpu_period {
        l.cpu_period = Some(v);
    }
    if let Some(v) = a.cpu_quota {
        l.cpu_quota = Some(v);
    }
    if let Some(v) = a.cpu_shares {
        l.cpu_shares = Some(v);
    }
    if let Some(v) = &a.cpuset_cpus {
        l.cpuset_cpus = Some(v.clone());
    }
    if let Some(v) = &a.cpuset_mems {
        l.cpuset_mems = Some(v.clone());
    }
    if let Some(v) = a.pids_limit {
        l.pids = Some(v);
    }
    if let Some(v) = a.blkio_weight {
        l.blkio_weight = Some(v);
    }
    let iso = isolator(g, r.cgroup_parent.as_deref())?;
    iso.iso
        .update(&r.group, &l)
        .with_context(|| format!("updating the limits of container {:?}", a.id))?;
    Ok(())
}

fn list(g: &Global, format: &str, quiet: bool) -> Result<()> {
    let mut all = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&g.root) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(dir) = Dir::new(&g.root, &name) else {
                continue;
            };
            if let Ok(r) = dir.load() {
                let st = dir.status(&r);
                all.push((r, st));
            }
        }
    }
    all.sort_by(|a, b| a.0.id.cmp(&b.0.id));
    if quiet {
        for (r, _) in &all {
            println!("{}", r.id);
        }
    } else if format == "json" {
        let v: Vec<_> = all.iter().map(|(r, s)| state::state_json(r, *s)).collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER",
            "ID", "PID", "STATUS", "BUNDLE", "CREATED"
        );
        for (r, s) in &all {
            let pid = if *s == Status::Stopped { 0 } else { r.pid };
            println!(
                "{:<20} {:<8} {:<10} {:<40} {:<32} root",
                r.id,
                pid,
                s.as_str(),
                r.bundle.display(),
                r.created
            );
        }
    }
    Ok(())
}

fn spec(bundle: &Path, rootless: bool) -> Result<()> {
    let path = bundle.join("config.json");
    if path.exists() {
        bail!("{} exists already: remove it first", path.display());
    }
    let mut s = if rootless {
        Spec::rootless(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Spec::default()
    };
    s.set_hostname(Some("berth".into()));
    std::fs::write(&path, serde_json::to_string_pretty(&s)?)
        .with_context(|| format!("writing {}", path.display()))
}

fn features() -> serde_json::Value {
    let caps: Vec<String> = berth_runtime::mask_names(u64::MAX)
        .iter()
        .map(|c| {
            if c.starts_with("CAP_") {
                c.clone()
            } else {
                format!("CAP_{c}")
            }
        })
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "defaults", "dev", "diratime", "dirsync", "exec", "mand",
            "noatime", "nodev", "nodiratime", "noexec", "nomand", "norelatime", "nostrictatime",
            "nosuid", "rbind", "bind", "relatime", "ro", "rw", "strictatime", "suid", "sync"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "uts"],
            "capabilities": caps,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {
            "org.opencontainers.runtime-spec.features.berth.version": env!("CARGO_PKG_VERSION")
        }
    })
}

fn events(g: &Global, id: &str, once: bool, interval: Duration) -> Result<()> {
    let dir = Dir::new(&g.root, id)?;
    let first = dir.load()?;
    let iso = isolator(g, first.cgroup_parent.as_deref())?;
    loop {
        let r = dir.load()?;
        if dir.status(&r) == Status::Stopped {
            if once {
                bail!("container {id:?} is not running");
            }
            return Ok(());
        }
        let s = iso
            .iso
            .stats(&r.group)
            .with_context(|| format!("reading the usage of container {id:?}"))?;
        let opt = |v: Option<u64>| v;
        let ev = serde_json::json!({
            "type": "stats",
            "id": id,
            "data": {
                "cpu": {"usage": {"total": opt(s.cpu_usage_ns).unwrap_or(0)}},
                "memory": {
                    "usage": {
                        "usage": opt(s.memory_current).unwrap_or(0),
                        "max": opt(s.memory_peak).unwrap_or(0),
                        "limit": opt(s.memory_limit).unwrap_or(u64::MAX),
                    },
                    "oom_kills": s.oom_kills,
                },
                "pids": {"current": opt(s.pids_current).unwrap_or(0), "limit": opt(s.pids_limit).unwrap_or(0)},
                "blkio": {"read_bytes": opt(s.io_read_bytes), "write_bytes": opt(s.io_write_bytes)},
            }
        });
        println!("{ev}");
        if once {
            return Ok(());
        }
        std::thread::sleep(interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_valid_cgroup_names() {
        assert_eq!(group_name("c1", None), "c1");
        assert_eq!(group_name("c1", Some("/default/c1")), "default-c1");
        assert_eq!(
            group_name("c1", Some("machine.slice:libpod:abc")),
            "machine.slice-libpod-abc"
        );
        assert_eq!(group_name("c1", Some("/")), "c1");
        assert_eq!(group_name("cgroup.procs", None), "ctr-cgroup.procs");
    }

    #[test]
    fn cgroups_paths_with_a_parent_are_literal() {
        assert_eq!(
            cgroup_place("c", Some("/a/b/c1")),
            (Some("/a/b".into()), "c1".into())
        );
        assert_eq!(
            cgroup_place("c", Some("testdir/cgrouptest/container")),
            (Some("testdir/cgrouptest".into()), "container".into())
        );
        assert_eq!(cgroup_place("c", Some("/top")), (None, "top".into()));
        assert_eq!(
            cgroup_place("c", Some("system.slice:berth:c")),
            (None, "system.slice-berth-c".into())
        );
        assert_eq!(cgroup_place("c", None), (None, "c".into()));
        assert_eq!(cgroup_place("c", Some("/a/../b")), (None, "a-..-b".into()));
    }

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }

    #[test]
    fn device_lists_start_with_a_wildcard() {
        let defaults = berth_engine::devices::default_rules().len() - 1;
        let r = device_rules(
            &[DeviceCgroupRule {
                allow: true,
                kind: 'c',
                major: Some(1),
                minor: Some(3),
                access: "rwm".into(),
            }],
            &[],
        );
        assert!(r[0].is_everything() && !r[0].allow);
        assert_eq!(r.len(), 2 + defaults);
        let r = device_rules(
            &[
                DeviceCgroupRule {
                    allow: false,
                    kind: 'a',
                    major: None,
                    minor: None,
                    access: "rwm".into(),
                },
                DeviceCgroupRule {
                    allow: true,
                    kind: 'a',
                    major: None,
                    minor: None,
                    access: "rwm".into(),
                },
            ],
            &[],
        );
        assert_eq!(r.len(), 1 + defaults);
        assert!(r[0].allow && r[0].is_everything());
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_interval("5x").is_err());
    }
}
