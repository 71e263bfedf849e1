//! Container commands: `run`, `create`, `start`, `stop`, `kill`, `restart`, `rm`, `ps`,
//! `logs`, `exec`, `wait`, `inspect`, `top`, `port`, `rename`, `pause`, `unpause`,
//! `update`, `stats`, `container prune`.

use std::{collections::BTreeMap, io::Write, path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use berth_engine::{
    container::{ContainerRecord, LimitsConfig, State},
    create::CreateOptions,
    health::{Health, HealthOptions},
    logs::{read_from, read_log, LogOptions},
    parse,
    supervise::IoMode,
    Engine,
};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{table::Table, GlobalOpts};

/// Resource flags shared by `run`, `create` and `update`.
#[derive(Args, Debug, Clone, Default)]
pub struct LimitArgs {
    /// Memory limit (e.g. 512m, 1g)
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Memory + swap limit; -1 = unlimited swap
    #[arg(long, allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Number of CPUs (e.g. 0.5)
    #[arg(long)]
    pub cpus: Option<f64>,
    /// CPU shares (relative weight, default 1024)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited)
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Block IO weight (10-1000)
    #[arg(long)]
    pub blkio_weight: Option<u16>,
}

impl LimitArgs {
    pub fn to_limits(&self) -> anyhow::Result<LimitsConfig> {
        let size = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
            Ok(match v {
                Some(s) => Some(parse::parse_size(flag, s)?),
                None => None,
            })
        };
        let memory = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
            Ok(match v {
                Some(s) => parse::parse_memory(flag, s)?,
                None => None,
            })
        };
        let cpu_quota = match self.cpus {
            Some(c) => parse::parse_cpus(c, parse::host_cpus())?,
            None => None,
        };
        if let Some(w) = self.blkio_weight {
            if !(10..=1000).contains(&w) {
                bail!("invalid --blkio-weight value {w}: must be between 10 and 1000");
            }
        }
        // 0 is "not set" for --memory-swap too (Docker); -1 is unlimited swap.
        let memory_swap = size("--memory-swap", &self.memory_swap)?.filter(|&v| v != 0);
        Ok(LimitsConfig {
            memory: memory("-m/--memory", &self.memory)?,
            memory_swap,
            memory_reservation: memory("--memory-reservation", &self.memory_reservation)?,
            cpu_quota,
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids: self.pids_limit,
            blkio_weight: self.blkio_weight,
        })
    }
}

#[derive(Args, Debug, Clone)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    /// Print help (-h is --hostname, as in Docker)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Run in the background and print the container ID
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Override the key sequence for detaching (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,
    /// Set environment variables (KEY=VALUE or KEY)
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Overwrite the image's ENTRYPOINT
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Bind mount a volume (SRC:DST[:ro])
    #[arg(short = 'v', long = "volume")]
    pub volumes: Vec<String>,
    /// Attach a filesystem mount (type=bind|volume|tmpfs,source=..,target=..)
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Mount a tmpfs directory (/path[:options])
    #[arg(long = "tmpfs")]
    pub tmpfs: Vec<String>,
    /// Publish a container's port(s) to the host ([IP:][HOST:]CTR[/proto])
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Network: bridge (default), none, host, container:NAME or a network name
    #[arg(long = "network", visible_alias = "net")]
    pub network: Option<String>,
    /// Add a network-scoped alias
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Give extended privileges to this container (every capability and every device)
    #[arg(long)]
    pub privileged: bool,
    /// Add a host device to the container (HOST[:CONTAINER[:PERMS]], PERMS a subset of rwm)
    #[arg(long = "device")]
    pub device: Vec<String>,
    /// Add a rule to the container's device access list ('TYPE MAJOR:MINOR ACCESS', e.g. 'c 1:3 rwm')
    #[arg(long = "device-cgroup-rule")]
    pub device_cgroup_rule: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Security options: no-new-privileges, seccomp=unconfined, seccomp=PROFILE.json
    #[arg(long = "security-opt")]
    pub security_opt: Vec<String>,
    /// Pull the image: missing (default), always, never
    #[arg(long, default_value = "missing")]
    pub pull: String,
    /// Suppress the pull output
    #[arg(short, long)]
    pub quiet: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    pub init: bool,
    /// Command to run to check health (with /bin/sh -c)
    #[arg(long = "health-cmd")]
    pub health_cmd: Option<String>,
    /// Time between running the check (e.g. 30s, 1m)
    #[arg(long = "health-interval")]
    pub health_interval: Option<String>,
    /// Maximum time to allow one check to run
    #[arg(long = "health-timeout")]
    pub health_timeout: Option<String>,
    /// Start period for the container to initialize before failures count
    #[arg(long = "health-start-period")]
    pub health_start_period: Option<String>,
    /// Time between checks during the start period
    #[arg(long = "health-start-interval")]
    pub health_start_interval: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    pub health_retries: Option<u32>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    pub no_healthcheck: bool,
    /// Restart policy: no, on-failure[:N], always, unless-stopped
    #[arg(long)]
    pub restart: Option<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub stop_timeout: Option<u32>,
    /// Set metadata on a container (KEY=VALUE)
    #[arg(short = 'l', long = "label")]
    pub labels: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Image to run, then the command and its arguments. As in Docker, option parsing stops
    /// at the image: `berth run IMG -c x` passes `-c x` to the container. One positional, so
    /// clap's trailing mode starts at the image; the image itself may not start with `-`, so a
    /// mistyped flag before it is still an error.
    #[arg(
        value_name = "IMAGE [COMMAND] [ARG]",
        trailing_var_arg = true,
        required = true,
        num_args = 1..
    )]
    pub argv: Vec<String>,
}

impl CreateArgs {
    /// The image: the first word of `argv` (clap requires one).
    pub fn image(&self) -> &str {
        self.argv.first().map_or("", String::as_str)
    }

    /// The command: every word after the image.
    pub fn command(&self) -> &[String] {
        self.argv.get(1..).unwrap_or_default()
    }

    fn options(&self) -> anyhow::Result<CreateOptions> {
        let cwd = std::env::current_dir().context("current directory")?;
        let mut env = Vec::new();
        for f in &self.env_file {
            env.extend(parse::parse_env_file(f)?);
        }
        for e in &self.env {
            if let Some(v) = parse::parse_env(e)? {
                env.push(v);
            }
        }
        let mut mounts = Vec::new();
        for v in &self.volumes {
            mounts.push(parse::parse_volume(v, &cwd)?);
        }
        for m in &self.mounts {
            mounts.push(parse::parse_mount(m, &cwd)?);
        }
        for t in &self.tmpfs {
            mounts.push(parse::parse_tmpfs(t)?);
        }
        let mut ports = Vec::new();
        for p in &self.publish {
            ports.extend(parse::parse_publish(p)?);
        }
        let mut no_new_privileges = false;
        let mut seccomp = None;
        for s in &self.security_opt {
            match s.as_str() {
                "no-new-privileges" | "no-new-privileges:true" | "no-new-privileges=true" => {
                    no_new_privileges = true
                }
                "no-new-privileges:false" | "no-new-privileges=false" => {}
                "seccomp=unconfined" | "seccomp:unconfined" => seccomp = Some("unconfined".into()),
                other => match other
                    .strip_prefix("seccomp=")
                    .or_else(|| other.strip_prefix("seccomp:"))
                {
                    Some(path) => {
                        // Read and checked now, stored with the container (as Docker).
                        let text = std::fs::read_to_string(path).map_err(|e| {
                            anyhow::anyhow!(
                                "--security-opt seccomp={path}: cannot read the profile: {e}"
                            )
                        })?;
                        berth_seccomp::Profile::from_json(&text)
                            .map_err(|e| anyhow::anyhow!("--security-opt seccomp={path}: {e}"))?;
                        seccomp = Some(text);
                    }
                    None => bail!(
                        "invalid --security-opt {other:?}: berth supports no-new-privileges, \
                         seccomp=unconfined and seccomp=PROFILE.json"
                    ),
                },
            }
        }
        let mut labels = BTreeMap::new();
        for l in &self.labels {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            labels.insert(k.to_string(), v.to_string());
        }
        if let Some(r) = &self.restart {
            parse::parse_restart(r)?;
        }
        let duration = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<Duration>> {
            Ok(match v {
                Some(v) => Some(parse::parse_duration(flag, v)?),
                None => None,
            })
        };
        let health = HealthOptions {
            cmd: self.health_cmd.clone(),
            interval: duration("--health-interval", &self.health_interval)?,
            timeout: duration("--health-timeout", &self.health_timeout)?,
            start_period: duration("--health-start-period", &self.health_start_period)?,
            start_interval: duration("--health-start-interval", &self.health_start_interval)?,
            retries: self.health_retries,
            disable: self.no_healthcheck,
        };
        Ok(CreateOptions {
            image: self.image().to_string(),
            name: self.name.clone(),
            entrypoint: self.entrypoint.as_ref().map(|e| {
                if e.is_empty() {
                    Vec::new()
                } else {
                    vec![e.clone()]
                }
            }),
            cmd: self.command().to_vec(),
            env,
            workdir: self.workdir.clone(),
            user: self.user.clone(),
            hostname: self.hostname.clone(),
            tty: self.tty,
            interactive: self.interactive,
            mounts,
            network: self.network.clone(),
            aliases: self.network_alias.clone(),
            ports,
            publish_all: self.publish_all,
            readonly_rootfs: self.read_only,
            privileged: self.privileged,
            devices: self
                .device
                .iter()
                .map(|d| berth_engine::devices::parse_device(d))
                .collect::<Result<_, _>>()?,
            device_cgroup_rules: {
                for r in &self.device_cgroup_rule {
                    berth_engine::devices::parse_cgroup_rule(r)?;
                }
                self.device_cgroup_rule.clone()
            },
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            no_new_privileges,
            seccomp,
            init: self.init,
            health,
            pull_always: match self.pull.as_str() {
                "always" => true,
                "missing" | "never" => false,
                other => bail!("invalid --pull {other:?}: use missing, always or never"),
            },
            quiet_pull: self.quiet,
            limits: self.limits.to_limits()?,
            restart: self.restart.clone(),
            auto_remove: self.rm,
            stop_signal: self.stop_signal.clone(),
            stop_timeout: self.stop_timeout,
            labels,
        })
    }
}

fn engine(g: &GlobalOpts) -> anyhow::Result<Engine> {
    let e = g.engine()?;
    e.reconcile()?;
    Ok(e)
}

/// Exit code 125 for an engine error, like Docker.
pub fn run(g: &GlobalOpts, a: CreateArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    if let Some(k) = &a.detach_keys {
        berth_engine::attach::DetachKeys::parse(k)?;
    }
    let opts = a.options()?;
    let rec = engine.create(&opts)?;
    if a.detach {
        engine.start_detached(&rec)?;
        println!("{}", rec.id);
        return Ok(0);
    }
    // A terminal session (or one that may be detached from) runs under the container's
    // monitor with us attached, so the detach keys leave it running.
    if a.tty || a.detach_keys.is_some() {
        let attach = berth_engine::attach::AttachOptions {
            stdin: a.interactive,
            close_stdin: true,
            detach_keys: a.detach_keys.clone(),
            ..Default::default()
        };
        return super::attach::session(&engine, &rec, &attach, super::attach::Session::Start, true);
    }
    let info = engine.supervise(&rec, IoMode::Foreground, None)?;
    if let Some(e) = &info.error {
        eprintln!("berth: {e}");
    }
    Ok(info.code.clamp(0, 255) as u8)
}

pub fn create(g: &GlobalOpts, a: CreateArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let rec = engine.create(&a.options()?)?;
    println!("{}", rec.id);
    Ok(0)
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  berth start web\n  berth start -a job")]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and wait for the exit
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Override the key sequence for detaching (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn start(g: &GlobalOpts, a: StartArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    if let Some(k) = &a.detach_keys {
        berth_engine::attach::DetachKeys::parse(k)?;
    }
    if (a.attach || a.interactive) && a.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let mut code = 0;
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        if a.attach || a.interactive {
            let attach = berth_engine::attach::AttachOptions {
                stdin: a.interactive && rec.config.interactive,
                close_stdin: true,
                detach_keys: a.detach_keys.clone(),
                ..Default::default()
            };
            code = super::attach::session(
                &engine,
                &rec,
                &attach,
                super::attach::Session::Start,
                true,
            )?;
        } else {
            engine.start_detached(&rec)?;
            println!("{c}");
        }
    }
    Ok(code)
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  berth stop -t 2 web")]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout")]
    pub time: Option<u32>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn stop(g: &GlobalOpts, a: StopArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        engine.stop(&rec, a.time)?;
        println!("{c}");
    }
    Ok(0)
}

pub fn restart(g: &GlobalOpts, a: StopArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        engine.stop(&rec, a.time)?;
        let rec = engine.db()?.resolve(c)?;
        engine.start_detached(&rec)?;
        println!("{c}");
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn kill(g: &GlobalOpts, a: KillArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let sig = berth_engine::parse::parse_signal_number("-s/--signal", &a.signal)?;
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        engine.signal(&rec, sig)?;
        println!("{c}");
    }
    Ok(0)
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  berth rm web\n  berth rm -f web")]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn rm(g: &GlobalOpts, a: RmArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let mut failed = false;
    for c in &a.containers {
        let r = engine
            .db()
            .and_then(|db| db.resolve(c))
            .and_then(|rec| engine.remove_container(&rec.id, a.force, a.volumes));
        match r {
            Ok(()) => println!("{c}"),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth ps\n  berth ps -a --format json\n  berth ps -q --filter status=exited"
)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter: name=, id=, status=, ancestor=, label=
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output format: table or json (one object per line)
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Show only the latest created container
    #[arg(short = 'l', long)]
    pub latest: bool,
}

fn matches_filter(engine: &Engine, c: &ContainerRecord, f: &str) -> anyhow::Result<bool> {
    let (k, v) = f
        .split_once('=')
        .with_context(|| format!("invalid filter {f:?}: expected KEY=VALUE"))?;
    Ok(match k {
        "name" => c.name.contains(v),
        "id" => c.id.starts_with(v),
        "status" => c.state.as_str() == v,
        "ancestor" => c.image == v || c.image_id.contains(v),
        "label" => {
            let (lk, lv) = v.split_once('=').unwrap_or((v, ""));
            c.config
                .labels
                .get(lk)
                .is_some_and(|x| lv.is_empty() || x == lv)
        }
        "exited" => c.state == State::Exited && c.exit_code.to_string() == v,
        // Docker's values: starting, healthy, unhealthy, none (no check running).
        "health" => {
            let h = Health::load(&engine.container_dir(&c.id))
                .filter(|_| c.state == State::Running)
                .map(|h| serde_json::to_value(h.status).unwrap_or_default());
            match h {
                Some(serde_json::Value::String(s)) => s == v,
                _ => v == "none",
            }
        }
        other => {
            bail!("invalid filter {other:?} (name, id, status, ancestor, label, exited, health)")
        }
    })
}

pub fn ports_string(c: &ContainerRecord) -> String {
    let mut out = Vec::new();
    for n in &c.network.networks {
        for p in &n.ports {
            let ip = if p.host_ip.is_empty() {
                "0.0.0.0"
            } else {
                p.host_ip.as_str()
            };
            out.push(format!(
                "{ip}:{}->{}/{}",
                p.host_port, p.container_port, p.protocol
            ));
        }
    }
    out.join(", ")
}

pub fn ps(g: &GlobalOpts, a: PsArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let now = chrono::Utc::now();
    let mut list = engine.db()?.list()?;
    if a.latest {
        list.truncate(1);
    }
    let mut t = Table::new(&[
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ]);
    for c in list {
        if !a.all && !a.latest && !c.state.is_live() {
            continue;
        }
        let mut ok = true;
        for f in &a.filter {
            ok &= matches_filter(&engine, &c, f)?;
        }
        if !ok {
            continue;
        }
        let id = if a.no_trunc {
            c.id.clone()
        } else {
            c.short_id().to_string()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let cmd = c.config.args.join(" ");
        let cmd = if a.no_trunc || cmd.chars().count() <= 20 {
            format!("\"{cmd}\"")
        } else {
            format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
        };
        let created = chrono::DateTime::parse_from_rfc3339(&c.created)
            .map(|t| {
                format!(
                    "{} ago",
                    berth_engine::container::human_duration(
                        now.signed_duration_since(t.with_timezone(&chrono::Utc))
                    )
                )
            })
            .unwrap_or_default();
        if a.format == "json" {
            println!(
                "{}",
                json!({"ID": id, "Image": c.image, "Command": c.config.args.join(" "), "CreatedAt": c.created,
                       "RunningFor": created, "State": c.state.as_str(), "Status": status_text(&engine, &c, now),
                       "Ports": ports_string(&c), "Names": c.name, "Labels": c.config.labels})
            );
            continue;
        }
        t.row(vec![
            id,
            c.image.clone(),
            cmd,
            created,
            status_text(&engine, &c, now),
            ports_string(&c),
            c.name.clone(),
        ]);
    }
    if !a.quiet && a.format != "json" {
        t.print();
    }
    Ok(0)
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth logs web\n  berth logs -f --tail 10 web\n  berth logs -t --since 5m web"
)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for everything)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show logs since a timestamp (RFC 3339, zone optional; 2026-12-02; Unix) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    pub until: Option<String>,
    pub container: String,
}

fn print_entry(e: &berth_engine::logs::LogEntry, timestamps: bool) {
    let text = if timestamps {
        format!("{} {}", e.time, e.log)
    } else {
        e.log.clone()
    };
    if e.stream == "stderr" {
        let _ = std::io::stderr().write_all(text.as_bytes());
    } else {
        let _ = std::io::stdout().write_all(text.as_bytes());
    }
}

pub fn logs(g: &GlobalOpts, a: LogsArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let rec = engine.db()?.resolve(&a.container)?;
    let path = engine.container_dir(&rec.id).join("container.log");
    let now = chrono::Utc::now();
    let opts = LogOptions {
        tail: if a.tail == "all" {
            None
        } else {
            Some(
                a.tail
                    .parse()
                    .with_context(|| format!("invalid --tail value {:?}", a.tail))?,
            )
        },
        since: a
            .since
            .as_deref()
            .map(|s| parse::parse_log_time("--since", s, now))
            .transpose()?,
        until: a
            .until
            .as_deref()
            .map(|s| parse::parse_log_time("--until", s, now))
            .transpose()?,
        timestamps: a.timestamps,
    };
    let (entries, mut offset) = read_log(&path, &opts)?;
    for e in &entries {
        print_entry(e, a.timestamps);
    }
    let _ = std::io::stdout().flush();
    if a.follow {
        loop {
            let live = engine
                .db()?
                .get(&rec.id)?
                .is_some_and(|r| r.state.is_live());
            if path.exists() {
                let (more, off) = read_from(&path, offset)?;
                offset = off;
                for e in &more {
                    print_entry(e, a.timestamps);
                }
                let _ = std::io::stdout().flush();
            }
            if !live {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  berth wait job")]
pub struct WaitArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn wait(g: &GlobalOpts, a: WaitArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        let r = engine.wait_exit(&rec.id, None)?;
        println!("{}", r.exit_code);
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct NamesArgs {
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn pause(g: &GlobalOpts, a: NamesArgs, on: bool) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        if on {
            engine.pause(&rec)?;
        } else {
            engine.unpause(&rec)?;
        }
        println!("{c}");
    }
    Ok(0)
}

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  berth update --memory 256m web")]
pub struct UpdateArgs {
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Restart policy
    #[arg(long)]
    pub restart: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

pub fn update(g: &GlobalOpts, a: UpdateArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let limits = a.limits.to_limits()?;
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        engine.update_limits(&rec, &limits)?;
        if let Some(r) = &a.restart {
            parse::parse_restart(r)?;
            let mut cfg = engine.db()?.resolve(c)?.config;
            cfg.restart = r.clone();
            engine.db()?.update_config(&rec.id, &cfg)?;
        }
        println!("{c}");
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Output format: json (default) or a field path like .State.Status
    #[arg(short, long)]
    pub format: Option<String>,
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ps`'s STATUS: Docker's wording, with the health while the container runs.
fn status_text(engine: &Engine, c: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    let s = c.status_line(now);
    match Health::load(&engine.container_dir(&c.id)) {
        Some(h) if c.state == State::Running => format!("{s} {}", h.status.ps_suffix()),
        _ => s,
    }
}

pub fn container_json(engine: &Engine, c: &ContainerRecord) -> serde_json::Value {
    let oci = std::fs::read(engine.container_dir(&c.id).join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    json!({
        "Id": c.id,
        "Name": format!("/{}", c.name),
        "Created": c.created,
        "Path": c.config.args.first(),
        "Args": c.config.args.iter().skip(1).collect::<Vec<_>>(),
        "Image": c.image_id,
        "ImageName": c.image,
        "RestartCount": c.restart_count,
        "State": {
            "Status": c.state.as_str(),
            "Running": c.state.is_live(),
            "Paused": c.state == State::Paused,
            "Restarting": c.state == State::Restarting,
            "OOMKilled": c.oom_killed,
            "Dead": c.state == State::Dead,
            "Pid": c.pid,
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": c.started_at,
            "FinishedAt": c.finished_at,
            "Health": Health::load(&engine.container_dir(&c.id)),
        },
        "Config": {
            "Hostname": c.config.hostname,
            "User": c.config.user,
            "Env": c.config.env,
            "Cmd": c.config.cmd,
            "Entrypoint": c.config.entrypoint,
            "WorkingDir": c.config.cwd,
            "Tty": c.config.tty,
            "OpenStdin": c.config.interactive,
            "Image": c.image,
            "Labels": c.config.labels,
            "ExposedPorts": c.config.exposed_ports,
            "StopSignal": c.config.stop_signal,
            "Healthcheck": c.config.healthcheck,
        },
        "HostConfig": {
            "NetworkMode": c.config.network,
            "RestartPolicy": c.config.restart,
            "AutoRemove": c.config.auto_remove,
            "Privileged": c.config.privileged,
            "Devices": c.config.devices.iter().map(|d| serde_json::json!({
                "PathOnHost": d.host_path,
                "PathInContainer": d.container_path,
                "CgroupPermissions": d.permissions,
            })).collect::<Vec<_>>(),
            "DeviceCgroupRules": c.config.device_cgroup_rules,
            "ReadonlyRootfs": c.config.readonly_rootfs,
            "CapAdd": c.config.cap_add,
            "CapDrop": c.config.cap_drop,
            "Init": c.config.init,
            "Memory": c.config.limits.memory.unwrap_or(0),
            "MemorySwap": c.config.limits.memory_swap.unwrap_or(0),
            "MemoryReservation": c.config.limits.memory_reservation.unwrap_or(0),
            "NanoCpus": c.config.limits.cpu_quota.map(|q| q * 10_000).unwrap_or(0),
            "CpuShares": c.config.limits.cpu_shares.unwrap_or(0),
            "CpusetCpus": c.config.limits.cpuset_cpus,
            "PidsLimit": c.config.limits.pids,
            "BlkioWeight": c.config.limits.blkio_weight.unwrap_or(0),
            "PortBindings": c.config.ports,
        },
        "Mounts": c.config.mounts.iter().map(|m| json!({
            "Type": m.kind, "Source": m.source, "Destination": m.destination, "RW": !m.read_only,
        })).collect::<Vec<_>>(),
        "NetworkSettings": {
            "Networks": c.network.networks.iter().map(|n| (n.network.clone(), json!({
                "IPAddress": n.ip, "IPPrefixLen": n.prefix_len, "Gateway": n.gateway, "MacAddress": n.mac,
            }))).collect::<serde_json::Map<_, _>>(),
            "Ports": c.network.networks.iter().flat_map(|n| n.ports.clone()).collect::<Vec<_>>(),
            "IPAddress": c.network.networks.first().map(|n| n.ip.clone()).unwrap_or_default(),
        },
        "StorageDriver": c.config.storage_driver,
        "OCIConfig": oci,
    })
}

/// `--format .State.Status`-style field access (a Go-template subset: `{{.A.B}}` or `.A.B`).
pub fn format_field(v: &serde_json::Value, fmt: &str) -> String {
    let path = fmt
        .trim()
        .trim_start_matches("{{")
        .trim_end_matches("}}")
        .trim();
    if path == "json ." || path == "json" {
        return v.to_string();
    }
    let mut cur = v;
    for p in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        cur = cur.get(p).unwrap_or(&serde_json::Value::Null);
    }
    match cur {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "<no value>".into(),
        other => other.to_string(),
    }
}

pub fn inspect(g: &GlobalOpts, a: InspectArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let mut out = Vec::new();
    for c in &a.containers {
        let rec = engine.db()?.resolve(c)?;
        let v = container_json(&engine, &rec);
        if let Some(f) = &a.format {
            println!("{}", format_field(&v, f));
        } else {
            out.push(v);
        }
    }
    if a.format.is_none() {
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
}

pub fn top(g: &GlobalOpts, a: TopArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let rec = engine.db()?.resolve(&a.container)?;
    if !rec.state.is_live() {
        bail!("container {} is not running", rec.name);
    }
    let pids = match engine.plugins.isolator().and_then(|i| {
        i.pids(&rec.id)
            .map_err(|e| berth_engine::EngineError::plugin("listing processes", e))
    }) {
        Ok(p) if !p.is_empty() => p,
        _ => vec![rec.pid],
    };
    let mut t = Table::new(&["PID", "PPID", "STAT", "TIME", "CMD"]);
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let f: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        let ticks = f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
        let secs = ticks / 100;
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                String::from_utf8_lossy(&b)
                    .replace('\0', " ")
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        t.row(vec![
            pid.to_string(),
            f.get(1).unwrap_or(&"").to_string(),
            f.first().unwrap_or(&"").to_string(),
            format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
            cmd,
        ]);
    }
    t.print();
    Ok(0)
}

#[derive(Args, Debug)]
pub struct PortArgs {
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

pub fn port(g: &GlobalOpts, a: PortArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let rec = engine.db()?.resolve(&a.container)?;
    for n in &rec.network.networks {
        for p in &n.ports {
            let key = format!("{}/{}", p.container_port, p.protocol);
            if let Some(want) = &a.port {
                let want = if want.contains('/') {
                    want.clone()
                } else {
                    format!("{want}/tcp")
                };
                if want != key {
                    continue;
                }
                println!(
                    "{}:{}",
                    if p.host_ip.is_empty() {
                        "0.0.0.0"
                    } else {
                        &p.host_ip
                    },
                    p.host_port
                );
            } else {
                println!(
                    "{key} -> {}:{}",
                    if p.host_ip.is_empty() {
                        "0.0.0.0"
                    } else {
                        &p.host_ip
                    },
                    p.host_port
                );
            }
        }
    }
    Ok(0)
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    pub container: String,
    pub new_name: String,
}

pub fn rename(g: &GlobalOpts, a: RenameArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let rec = engine.db()?.resolve(&a.container)?;
    engine.rename(&rec, &a.new_name)?;
    Ok(0)
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Output format: table or json
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    pub containers: Vec<String>,
}

fn net_io(pid: i32) -> (u64, u64) {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap_or_default();
    let (mut rx, mut tx) = (0, 0);
    for l in text.lines().skip(2) {
        let Some((name, rest)) = l.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        rx += f.first().copied().unwrap_or(0);
        tx += f.get(8).copied().unwrap_or(0);
    }
    (rx, tx)
}

pub fn stats(g: &GlobalOpts, a: StatsArgs) -> anyhow::Result<u8> {
    use crate::cmd::image::human_size;
    let engine = engine(g)?;
    let iso = engine.plugins.isolator()?;
    let list: Vec<ContainerRecord> = if a.containers.is_empty() {
        engine
            .db()?
            .list()?
            .into_iter()
            .filter(|c| a.all || c.state.is_live())
            .collect()
    } else {
        a.containers
            .iter()
            .map(|c| engine.db()?.resolve(c))
            .collect::<Result<_, _>>()?
    };
    loop {
        // CPU % needs two samples.
        let first: Vec<Option<u64>> = list
            .iter()
            .map(|c| {
                iso.stats(&c.id)
                    .ok()
                    .and_then(|s| s.cpu_usage_ns.into_option())
            })
            .collect();
        let t0 = std::time::Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let dt = t0.elapsed().as_nanos() as f64;
        let mut t = Table::new(&[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "PIDS",
        ]);
        for (c, before) in list.iter().zip(first) {
            let s = iso.stats(&c.id).unwrap_or_default();
            let cpu = match (before, s.cpu_usage_ns.into_option()) {
                (Some(b), Some(a)) => (a.saturating_sub(b)) as f64 / dt * 100.0,
                _ => 0.0,
            };
            let mem = s.memory_current.into_option().unwrap_or(0);
            let limit = s.memory_limit.into_option().unwrap_or_else(|| {
                std::fs::read_to_string("/proc/meminfo")
                    .ok()
                    .and_then(|m| {
                        m.lines()
                            .next()
                            .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                    })
                    .map(|kb| kb * 1024)
                    .unwrap_or(0)
            });
            let (rx, tx) = if c.state.is_live() {
                net_io(c.pid)
            } else {
                (0, 0)
            };
            let pids = s.pids_current.into_option().unwrap_or(0);
            if a.format == "json" {
                println!(
                    "{}",
                    json!({"ID": c.short_id(), "Name": c.name, "CPUPerc": format!("{cpu:.2}%"),
                           "MemUsage": mem, "MemLimit": limit, "NetRx": rx, "NetTx": tx, "PIDs": pids,
                           "OOMKills": s.oom_kills})
                );
                continue;
            }
            t.row(vec![
                c.short_id().to_string(),
                c.name.clone(),
                format!("{cpu:.2}%"),
                format!("{} / {}", human_size(mem), human_size(limit)),
                format!(
                    "{:.2}%",
                    if limit > 0 {
                        mem as f64 / limit as f64 * 100.0
                    } else {
                        0.0
                    }
                ),
                format!("{} / {}", human_size(rx), human_size(tx)),
                pids.to_string(),
            ]);
        }
        if a.format != "json" {
            t.print();
        }
        if a.no_stream {
            return Ok(0);
        }
    }
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt (berth never prompts)
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Subcommand, Debug)]
pub enum ContainerCmd {
    /// List containers
    #[command(visible_alias = "list")]
    Ls(PsArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
    /// Display detailed information on containers
    Inspect(InspectArgs),
    /// Remove containers
    Rm(RmArgs),
}

pub fn container(g: &GlobalOpts, c: ContainerCmd) -> anyhow::Result<u8> {
    match c {
        ContainerCmd::Ls(a) => ps(g, a),
        ContainerCmd::Inspect(a) => inspect(g, a),
        ContainerCmd::Rm(a) => rm(g, a),
        ContainerCmd::Prune(_) => {
            let engine = engine(g)?;
            println!("Deleted Containers:");
            for c in engine.db()?.list()? {
                if !c.state.is_live() {
                    engine.remove_container(&c.id, false, false)?;
                    println!("{}", c.id);
                }
            }
            Ok(0)
        }
    }
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth exec web ls /\n  berth exec -it web sh\n  berth exec -u nobody -w /tmp -e A=1 web env"
)]
pub struct ExecArgs {
    /// Keep STDIN open
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Run in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    pub container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub command: Vec<String>,
}

pub fn exec(g: &GlobalOpts, a: ExecArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let rec = engine.db()?.resolve(&a.container)?;
    let mut env = Vec::new();
    for e in &a.env {
        if let Some(v) = parse::parse_env(e)? {
            env.push(v);
        }
    }
    let code = engine.exec(
        &rec,
        &berth_engine::exec::ExecRequest {
            args: a.command.clone(),
            env,
            user: a.user.clone(),
            workdir: a.workdir.clone(),
            tty: a.tty,
            interactive: a.interactive,
            detach: a.detach,
            privileged: a.privileged,
        },
    )?;
    Ok(code.clamp(0, 255) as u8)
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth cp web:/etc/nginx/nginx.conf ./nginx.conf\n  berth cp ./site web:/usr/share/nginx/html\n  berth cp web:/var/log - | tar -tv\n  tar -c conf | berth cp - web:/etc"
)]
pub struct CpArgs {
    /// CONTAINER:SRC_PATH, a host path, or - (a tar stream read from stdin)
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar stream written to stdout)
    pub dest: String,
}

fn cp_end(s: &str) -> berth_engine::lifecycle::CpEnd {
    use berth_engine::lifecycle::CpEnd;
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() && !c.contains('/') => CpEnd::Container {
            id: c.to_string(),
            path: if p.starts_with('/') {
                p.to_string()
            } else {
                format!("/{p}")
            },
        },
        _ => CpEnd::Host(PathBuf::from(s)),
    }
}

pub fn cp(g: &GlobalOpts, a: CpArgs) -> anyhow::Result<u8> {
    use berth_engine::lifecycle::CpEnd;
    let engine = engine(g)?;
    // `-` is a tar stream, as in Docker: the copy goes through a private scratch directory
    // on the host, so the container side uses the engine's own in-root copy.
    match (a.src.as_str(), a.dest.as_str()) {
        ("-", "-") => bail!("cp: source and destination cannot both be - (stdin/stdout)"),
        (_, "-") => {
            let scratch = cp_scratch(&engine)?;
            engine.cp(&cp_end(&a.src), &CpEnd::Host(scratch.path().to_path_buf()))?;
            let mut out = std::io::stdout().lock();
            tar_dir_entries(scratch.path(), &mut out)
                .context("cp: writing the tar stream to stdout")?;
            out.flush()
                .context("cp: writing the tar stream to stdout")?;
        }
        ("-", _) => {
            if !matches!(cp_end(&a.dest), CpEnd::Container { .. }) {
                bail!("cp: with - as the source the destination must be CONTAINER:DIR");
            }
            let scratch = cp_scratch(&engine)?;
            let mut ar = tar::Archive::new(std::io::stdin().lock());
            ar.unpack(scratch.path())
                .context("cp: reading a tar stream from stdin")?;
            for e in std::fs::read_dir(scratch.path()).context("cp: reading the unpacked stream")? {
                let e = e.context("cp: reading the unpacked stream")?;
                engine.cp(&CpEnd::Host(e.path()), &cp_end(&a.dest))?;
            }
        }
        _ => engine.cp(&cp_end(&a.src), &cp_end(&a.dest))?,
    }
    Ok(0)
}

/// A scratch directory for `cp -`, removed when dropped (also on error).
fn cp_scratch(engine: &Engine) -> anyhow::Result<tempfile::TempDir> {
    let parent = engine.config.run_dir();
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    tempfile::Builder::new()
        .prefix("cp-stream-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a scratch directory in {}", parent.display()))
}

/// Writes each entry of `dir` (as itself, directories recursively, symlinks as links) to a
/// tar stream, as Docker's `cp CTR:PATH -` does with PATH's base name at the top.
fn tar_dir_entries(dir: &std::path::Path, out: &mut impl Write) -> std::io::Result<()> {
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        if e.file_type()?.is_dir() {
            b.append_dir_all(&name, e.path())?;
        } else {
            b.append_path_with_name(e.path(), &name)?;
        }
    }
    b.finish()
}
