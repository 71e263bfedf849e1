//! Container records and the configuration a container is created with.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Removing => "removing",
        }
    }
    pub fn parse(s: &str) -> State {
        match s {
            "created" => State::Created,
            "running" => State::Running,
            "paused" => State::Paused,
            "restarting" => State::Restarting,
            "exited" => State::Exited,
            "removing" => State::Removing,
            _ => State::Dead,
        }
    }
    /// Running or paused: a process exists.
    pub fn is_live(self) -> bool {
        matches!(self, State::Running | State::Paused | State::Restarting)
    }
}

/// `-v`, `--mount`, `--tmpfs` after parsing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountConfig {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Host path (bind) or volume name (volume); empty for tmpfs.
    pub source: String,
    pub destination: String,
    pub read_only: bool,
    /// tmpfs options (`size=64m,mode=1777`).
    #[serde(default)]
    pub options: String,
}

/// `-p` after parsing (one entry per port of a range).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortConfig {
    pub host_ip: String,
    /// 0 = a free port chosen at start.
    pub host_port: u16,
    pub container_port: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// Resource limits (a serialisable mirror of the isolator ABI's `Limits`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitsConfig {
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// `--cpus` × 100000 (quota for a 100 ms period).
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<u64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub pids: Option<i64>,
    pub blkio_weight: Option<u16>,
}

impl LimitsConfig {
    pub fn to_abi(&self) -> berth_abi::Limits {
        berth_abi::Limits {
            memory: self.memory,
            memory_swap: self.memory_swap,
            memory_reservation: self.memory_reservation,
            cpu_quota: self.cpu_quota,
            cpu_period: self.cpu_quota.map(|_| 100_000u64),
            cpu_shares: self.cpu_shares,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids: self.pids,
            blkio_weight: self.blkio_weight,
            io_throttle: Default::default(),
        }
    }
    pub fn is_empty(&self) -> bool {
        *self == LimitsConfig::default()
    }
}

/// Everything `create` decided; `start` turns it into a runtime spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub hostname: String,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub tty: bool,
    pub interactive: bool,
    pub mounts: Vec<MountConfig>,
    /// `bridge`, `none`, `host`, `container:<name|id>` or a network name.
    pub network: String,
    pub aliases: Vec<String>,
    pub ports: Vec<PortConfig>,
    pub readonly_rootfs: bool,
    /// Every capability and every device (see [`crate::devices`]).
    pub privileged: bool,
    /// `--device`: host device nodes made available in the container.
    #[serde(default)]
    pub devices: Vec<crate::devices::DeviceMapping>,
    /// `--device-cgroup-rule`: extra entries of the device access list (`c 1:3 rwm`).
    #[serde(default)]
    pub device_cgroup_rules: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub no_new_privileges: bool,
    /// `--security-opt seccomp=`: `None` = the default profile, `"unconfined"`, or the
    /// text of a profile file (kept, like Docker, so later edits of the file don't matter).
    #[serde(default)]
    pub seccomp: Option<String>,
    pub init: bool,
    /// The image's HEALTHCHECK with the `--health-*` flags applied (`test: ["NONE"]` for
    /// `--no-healthcheck`).
    #[serde(default)]
    pub healthcheck: Option<berth_image::HealthConfig>,
    pub limits: LimitsConfig,
    /// `no`, `on-failure[:N]`, `always`, `unless-stopped`.
    pub restart: String,
    pub auto_remove: bool,
    pub stop_signal: String,
    pub stop_timeout: Option<u32>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    /// Entrypoint/Cmd as the user sees them in `inspect`.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// Storage driver that holds the snapshot (to remove it with the right driver).
    pub storage_driver: String,
}

/// What the network backend gave a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkState {
    pub networks: Vec<AttachedNetwork>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedNetwork {
    pub network: String,
    pub ifname: String,
    pub ip: String,
    pub prefix_len: u8,
    pub gateway: String,
    pub mac: String,
    pub ports: Vec<PortConfig>,
    /// Name servers and search domains the network provides (its DNS responder).
    #[serde(default)]
    pub dns_servers: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
}

/// One row of the containers table.
#[derive(Debug, Clone)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub created: String,
    pub state: State,
    pub pid: i32,
    pub monitor_pid: i32,
    pub exit_code: i32,
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: i64,
    pub error: String,
    pub config: ContainerConfig,
    pub network: NetworkState,
}

impl ContainerRecord {
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }

    /// Docker's STATUS column: `Up 5 minutes`, `Exited (0) 2 seconds ago`, `Created`.
    pub fn status_line(&self, now: chrono::DateTime<chrono::Utc>) -> String {
        let ago = |t: &str| -> String {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|t| human_duration(now.signed_duration_since(t.with_timezone(&chrono::Utc))))
                .unwrap_or_default()
        };
        match self.state {
            State::Created => "Created".into(),
            State::Running => format!("Up {}", ago(&self.started_at)),
            State::Paused => format!("Up {} (Paused)", ago(&self.started_at)),
            State::Restarting => format!("Restarting ({})", self.exit_code),
            State::Exited => format!("Exited ({}) {} ago", self.exit_code, ago(&self.finished_at)),
            State::Dead => "Dead".into(),
            State::Removing => "Removal In Progress".into(),
        }
    }
}

/// `5 minutes`, `About an hour`, `2 days` — Docker's wording.
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        2..=59 => format!("{s} seconds"),
        60..=119 => "About a minute".into(),
        120..=3599 => format!("{} minutes", s / 60),
        3600..=7199 => "About an hour".into(),
        7200..=172_799 => format!("{} hours", s / 3600),
        _ => format!("{} days", s / 86400),
    }
}

/// A random `adjective_noun` name, like Docker's.
pub fn random_name() -> String {
    use rand::seq::SliceRandom;
    const ADJ: &[&str] = &[
        "brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry",
        "nifty", "proud", "quirky", "sharp", "tender", "vivid", "witty", "zen", "bold", "cool",
    ];
    const NOUN: &[&str] = &[
        "anchor",
        "barge",
        "cutter",
        "dinghy",
        "ferry",
        "galley",
        "harbor",
        "jetty",
        "keel",
        "lighthouse",
        "mast",
        "pier",
        "quay",
        "rudder",
        "schooner",
        "tug",
        "wharf",
        "yacht",
        "buoy",
        "dock",
    ];
    let mut rng = rand::thread_rng();
    format!(
        "{}_{}",
        ADJ.choose(&mut rng).unwrap_or(&"calm"),
        NOUN.choose(&mut rng).unwrap_or(&"berth")
    )
}

/// A fresh 64-hex container id.
pub fn new_id() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(chrono::Duration::seconds(5)), "5 seconds");
        assert_eq!(
            human_duration(chrono::Duration::seconds(90)),
            "About a minute"
        );
        assert_eq!(human_duration(chrono::Duration::seconds(600)), "10 minutes");
    }

    #[test]
    fn ids_and_names() {
        let a = new_id();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_id());
        assert!(random_name().contains('_'));
    }
}
