//! Container commands: `run`, `create`, `start`, `stop`, `kill`, `restart`, `rm`, `ps`,
//! `logs`, `exec`, `wait`, `inspect`, `top`, `port`, `rename`, `pause`, `unpause`,
//! `update`, `stats`, `container prune`.

use std::{collections::BTreeMap, io::Write, path::PathBuf, time::Duration};

use anyhow::{bail, Context};
use berth_engine::{
    container::{ContainerRecord, LimitsConfig},
    create::CreateOptions,
    health::HealthOptions,
    inspect::{Inspected, ListContainersOptions, ObjectKind},
    logs::{read_from, read_log, LogOptions},
    models, parse,
    stats::StatsSummary,
    supervise::IoMode,
    Engine, Filters,
};
use clap::{Args, Subcommand};
use serde_json::json;

use crate::{
    format::{ellipsis, go_quote, print_inspect, Format},
    table::Table,
    GlobalOpts,
};

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
    after_help = "Examples:\n  berth ps\n  berth ps -a --format json\n  berth ps -q --filter status=exited\n  berth ps --format 'table {{.Names}}\\t{{.Status}}'"
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
    /// Filter (KEY=VALUE): id, name, label, status, exited, ancestor, before, since,
    /// network, volume, publish, expose, health, is-task
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Output: table, json (one object per line), or a Go template ('table {{.ID}}\t{{.Names}}')
    #[arg(long)]
    pub format: Option<String>,
    /// Show the n last created containers (all states)
    #[arg(short = 'n', long = "last")]
    pub last: Option<usize>,
    /// Show only the latest created container
    #[arg(short = 'l', long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

/// `ps`'s PORTS column: `0.0.0.0:8080->80/tcp, …`.
pub fn ports_string(c: &models::ContainerSummary) -> String {
    let mut out = Vec::new();
    for p in c.ports.iter().flatten() {
        let proto = p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into());
        match p.public_port {
            Some(pp) => out.push(format!(
                "{}:{pp}->{}/{proto}",
                p.ip.as_deref().unwrap_or("0.0.0.0"),
                p.private_port
            )),
            None => out.push(format!("{}/{proto}", p.private_port)),
        }
    }
    out.join(", ")
}

/// Docker's field names of `ps --format` and their column headers.
const PS_FIELDS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Ports", "PORTS"),
    ("State", "STATE"),
    ("Status", "STATUS"),
    ("Size", "SIZE"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
    ("LocalVolumes", "LOCAL VOLUMES"),
];

/// `key=value,…` of a label map, sorted.
pub fn labels_string(labels: Option<&std::collections::HashMap<String, String>>) -> String {
    let mut v: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    v.sort();
    v.join(",")
}

/// `Go time.Time` as Docker prints `CreatedAt`: `2026-12-02 13:00:00 +0000 UTC`.
pub fn docker_time(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

pub fn ps(g: &GlobalOpts, a: PsArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let format = Format::parse(a.format.as_deref())?;
    let now = chrono::Utc::now();
    let list = engine.list_containers(&ListContainersOptions {
        all: a.all,
        limit: if a.latest { Some(1) } else { a.last },
        size: a.size,
        filters: Filters::from_cli(&a.filter)?,
    })?;
    let mut headers = vec![
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ];
    if a.size {
        headers.push("SIZE");
    }
    let mut t = Table::new(&headers);
    let mut rows = Vec::new();
    for c in &list {
        let full_id = c.id.clone().unwrap_or_default();
        let id = if a.no_trunc {
            full_id.clone()
        } else {
            full_id.chars().take(12).collect()
        };
        if a.quiet {
            println!("{id}");
            continue;
        }
        let command = c.command.clone().unwrap_or_default();
        let command = go_quote(&if a.no_trunc {
            command
        } else {
            ellipsis(&command, 20)
        });
        let created = c.created.unwrap_or(0);
        let running_for = chrono::DateTime::from_timestamp(created, 0)
            .map(|t| {
                format!(
                    "{} ago",
                    berth_engine::container::human_duration(now.signed_duration_since(t))
                )
            })
            .unwrap_or_default();
        let names = c
            .names
            .iter()
            .flatten()
            .map(|n| n.trim_start_matches('/').to_string())
            .collect::<Vec<_>>()
            .join(",");
        let status = c.status.clone().unwrap_or_default();
        let size = c
            .size_rw
            .map(|s| crate::cmd::image::human_size(s.max(0) as u64))
            .unwrap_or_default();
        if format.is_table() {
            let mut row = vec![
                id,
                c.image.clone().unwrap_or_default(),
                command,
                running_for,
                status,
                ports_string(c),
                names,
            ];
            if a.size {
                row.push(size);
            }
            t.row(row);
            continue;
        }
        let mounts: Vec<String> = c
            .mounts
            .iter()
            .flatten()
            .map(|m| {
                m.name
                    .clone()
                    .or_else(|| m.source.clone())
                    .unwrap_or_default()
            })
            .collect();
        let mut networks: Vec<String> = c
            .network_settings
            .as_ref()
            .and_then(|n| n.networks.as_ref())
            .map(|n| n.keys().cloned().collect())
            .unwrap_or_default();
        networks.sort();
        rows.push(json!({
            "ID": id, "Image": c.image, "Command": command, "CreatedAt": docker_time(created),
            "RunningFor": running_for, "Ports": ports_string(c),
            "State": c.state.map(|s| s.to_string()).unwrap_or_default(), "Status": status,
            "Size": size, "Names": names, "Labels": labels_string(c.labels.as_ref()),
            "Mounts": mounts.join(","), "Networks": networks.join(","),
            "LocalVolumes": c.mounts.iter().flatten().filter(|m| m.typ == Some(berth_engine::models::MountPointTypeEnum::VOLUME)).count().to_string(),
        }));
    }
    if a.quiet {
        return Ok(0);
    }
    if format.is_table() {
        t.print();
    } else {
        format.print(&rows, PS_FIELDS)?;
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
#[command(
    after_help = "Examples:\n  berth inspect web\n  berth inspect -f '{{.State.Status}}' web\n  berth inspect --type image -f '{{json .Config.Env}}' busybox"
)]
pub struct InspectArgs {
    /// Format the output with a Go template (e.g. '{{.State.Status}}', '{{json .Config}}')
    #[arg(short, long)]
    pub format: Option<String>,
    /// Only this kind of object: container, image, network or volume
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// Fields a Go template may ask for although Docker leaves them out when empty (a missing
/// key is an error, `null` prints `<nil>`, as Docker's typed structs do).
const NULLABLE: &[(&str, &str)] = &[
    ("State", "Health"),
    ("Config", "Healthcheck"),
    ("Config", "ExposedPorts"),
    ("Config", "Cmd"),
    ("Config", "Entrypoint"),
    ("Config", "Volumes"),
    ("Config", "OnBuild"),
    ("Config", "StopSignal"),
    ("Config", "StopTimeout"),
    ("Config", "Shell"),
    ("HostConfig", "Tmpfs"),
    ("HostConfig", "PidsLimit"),
];

/// An inspected object as JSON for printing and templates.
pub fn inspect_json(v: &impl serde::Serialize) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::to_value(v)?;
    for (outer, key) in NULLABLE {
        if let Some(o) = v.get_mut(*outer).and_then(|o| o.as_object_mut()) {
            o.entry(key.to_string()).or_insert(serde_json::Value::Null);
        }
    }
    Ok(v)
}

pub fn inspect(g: &GlobalOpts, a: InspectArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let kind = a
        .kind
        .as_deref()
        .map(str::parse::<ObjectKind>)
        .transpose()?;
    let mut docs = Vec::new();
    let mut failed = false;
    for n in &a.names {
        match engine.inspect_object(n, kind) {
            Ok(Inspected::Container(mut c)) => {
                if a.size {
                    if let Ok(u) = engine.plugins.storage().and_then(|s| {
                        s.usage(c.id.as_deref().unwrap_or(""))
                            .map_err(|e| berth_engine::EngineError::plugin("sizing", e))
                    }) {
                        c.size_rw = Some(u.bytes as i64);
                    }
                }
                docs.push(inspect_json(&c)?);
            }
            Ok(other) => docs.push(inspect_json(&other)?),
            Err(e) => {
                eprintln!("Error: {e}");
                failed = true;
            }
        }
    }
    if !docs.is_empty() || a.format.is_none() {
        print_inspect(&docs, a.format.as_deref())?;
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(Args, Debug)]
pub struct TopArgs {
    pub container: String,
}

pub fn top(g: &GlobalOpts, a: TopArgs) -> anyhow::Result<u8> {
    let engine = engine(g)?;
    let top = engine.top(&a.container)?;
    let titles = top.titles.unwrap_or_default();
    let mut t = Table::new(&titles.iter().map(String::as_str).collect::<Vec<_>>());
    for p in top.processes.unwrap_or_default() {
        t.row(p);
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
    /// Output: table, json (one object per line), or a Go template ('table {{.Name}}\t{{.CPUPerc}}')
    #[arg(long)]
    pub format: Option<String>,
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    pub containers: Vec<String>,
}

/// Docker's field names of `stats --format` and their column headers.
const STATS_FIELDS: &[(&str, &str)] = &[
    ("Container", "CONTAINER"),
    ("ID", "CONTAINER ID"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];

pub fn stats(g: &GlobalOpts, a: StatsArgs) -> anyhow::Result<u8> {
    use crate::cmd::image::human_size;
    let engine = engine(g)?;
    let format = Format::parse(a.format.as_deref())?;
    let list: Vec<ContainerRecord> = if a.containers.is_empty() {
        engine.list_container_records(&ListContainersOptions {
            all: a.all,
            ..Default::default()
        })?
    } else {
        a.containers
            .iter()
            .map(|c| engine.container(c))
            .collect::<Result<_, _>>()?
    };
    // CPU % needs two samples: the first is the previous one of the second.
    let mut prev: Vec<Option<models::ContainerStatsResponse>> = list
        .iter()
        .map(|c| engine.container_stats(c, None).ok())
        .collect();
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let mut t = Table::new(&[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ]);
        let mut rows = Vec::new();
        for (c, before) in list.iter().zip(prev.iter_mut()) {
            let s = engine.container_stats(c, before.as_ref())?;
            let v = StatsSummary::of(&s);
            *before = Some(s);
            let id = if a.no_trunc {
                c.id.clone()
            } else {
                c.short_id().to_string()
            };
            let mem = format!("{} / {}", human_size(v.mem_usage), human_size(v.mem_limit));
            let net = format!("{} / {}", human_size(v.net_rx), human_size(v.net_tx));
            let block = format!(
                "{} / {}",
                human_size(v.block_read),
                human_size(v.block_write)
            );
            if format.is_table() {
                t.row(vec![
                    id,
                    c.name.clone(),
                    format!("{:.2}%", v.cpu_percent),
                    mem,
                    format!("{:.2}%", v.mem_percent),
                    net,
                    block,
                    v.pids.to_string(),
                ]);
            } else {
                rows.push(json!({
                    "Container": id, "ID": id, "Name": c.name,
                    "CPUPerc": format!("{:.2}%", v.cpu_percent), "MemUsage": mem,
                    "MemPerc": format!("{:.2}%", v.mem_percent), "NetIO": net, "BlockIO": block,
                    "PIDs": v.pids.to_string(),
                    // berth's numbers, for scripts.
                    "MemLimit": v.mem_limit, "MemBytes": v.mem_usage, "NetRx": v.net_rx,
                    "NetTx": v.net_tx,
                }));
            }
        }
        if format.is_table() {
            t.print();
        } else {
            format.print(&rows, STATS_FIELDS)?;
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
    /// Filter (label=KEY[=VALUE], until=TIME)
    #[arg(long)]
    pub filter: Vec<String>,
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
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of resource usage statistics
    Stats(StatsArgs),
}

pub fn container(g: &GlobalOpts, c: ContainerCmd) -> anyhow::Result<u8> {
    match c {
        ContainerCmd::Ls(a) => ps(g, a),
        ContainerCmd::Inspect(mut a) => {
            a.kind = Some("container".into());
            inspect(g, a)
        }
        ContainerCmd::Rm(a) => rm(g, a),
        ContainerCmd::Top(a) => top(g, a),
        ContainerCmd::Stats(a) => stats(g, a),
        ContainerCmd::Prune(a) => {
            let engine = engine(g)?;
            let r = engine.prune_containers(&Filters::from_cli(&a.filter)?)?;
            println!("Deleted Containers:");
            for id in r.containers_deleted.unwrap_or_default() {
                println!("{id}");
            }
            println!();
            println!(
                "Total reclaimed space: {}",
                crate::cmd::image::human_size(r.space_reclaimed.unwrap_or(0).max(0) as u64)
            );
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
