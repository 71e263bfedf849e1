//! Persistent state: one JSON file per network (config + leases) under
//! `<state_dir>/networks/`, guarded by an exclusive file lock held across processes.

use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    io::Write,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use berth_abi::{PluginError, PluginResult, Protocol};
use fs2::FileExt;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl From<Protocol> for Proto {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
        }
    }
}

impl From<Proto> for Protocol {
    fn from(p: Proto) -> Self {
        match p {
            Proto::Tcp => Protocol::Tcp,
            Proto::Udp => Protocol::Udp,
        }
    }
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A published port as bound (host_port resolved).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Port {
    /// None = every host address.
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: Proto,
}

/// One container attached to a network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub container_name: String,
    pub ip: Ipv4Addr,
    pub ifname: String,
    pub host_veth: String,
    pub netns_path: String,
    pub mac: String,
    pub ports: Vec<Port>,
    /// False while attach is in progress (a crash leaves it false: the next attach redoes it).
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: String,
    pub id: String,
    pub bridge: String,
    pub subnet: String,
    pub gateway: Ipv4Addr,
    pub internal: bool,
    pub mtu: u32,
    pub created: i64,
    pub options: serde_json::Value,
    /// Last address handed out (allocation continues after it).
    pub last_ip: Option<Ipv4Addr>,
    /// container id → lease
    pub leases: BTreeMap<String, Lease>,
    /// Host ends of veth pairs whose container namespace died at detach: the kernel is
    /// removing them. Their addresses are not handed out again until the link is seen
    /// gone; one still present after a while (its namespace kept alive by someone else)
    /// is deleted explicitly. veth name → (address, detach time in ms since the epoch).
    #[serde(default)]
    pub reaping: BTreeMap<String, (Ipv4Addr, u64)>,
}

impl Network {
    pub fn net(&self) -> PluginResult<ipnet::Ipv4Net> {
        self.subnet.parse().map_err(|_| {
            PluginError::internal(format!(
                "state of network {} has a corrupt subnet {:?}",
                self.name, self.subnet
            ))
        })
    }
}

/// The state directory.
pub struct Store {
    dir: PathBuf,
}

/// Held while the state is read and changed; released on drop.
pub struct Locked {
    file: File,
}

impl Drop for Locked {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock anyway; unlocking early is a courtesy.
        let _ = FileExt::unlock(&self.file);
    }
}

impl Store {
    pub fn open(state_dir: &Path) -> PluginResult<Store> {
        let dir = state_dir.join("networks");
        fs::create_dir_all(&dir)
            .map_err(|e| PluginError::io(format!("create state directory {}", dir.display()), e))?;
        Ok(Store {
            dir: state_dir.to_path_buf(),
        })
    }

    fn nets_dir(&self) -> PathBuf {
        self.dir.join("networks")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.nets_dir().join(format!("{name}.json"))
    }

    /// Takes the exclusive lock (blocks until other processes release it).
    pub fn lock(&self) -> PluginResult<Locked> {
        let p = self.dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| PluginError::io(format!("open lock file {}", p.display()), e))?;
        file.lock_exclusive()
            .map_err(|e| PluginError::io(format!("lock {}", p.display()), e))?;
        Ok(Locked { file })
    }

    pub fn load(&self, _l: &Locked, name: &str) -> PluginResult<Option<Network>> {
        let p = self.path(name);
        let text = match fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(PluginError::io(format!("read {}", p.display()), e)),
        };
        serde_json::from_str(&text).map(Some).map_err(|e| {
            PluginError::internal(format!(
                "corrupt network state {}: {e}; fix or remove the file",
                p.display()
            ))
        })
    }

    pub fn list(&self, l: &Locked) -> PluginResult<Vec<Network>> {
        let dir = self.nets_dir();
        let rd = fs::read_dir(&dir)
            .map_err(|e| PluginError::io(format!("read {}", dir.display()), e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| PluginError::io(format!("read {}", dir.display()), e))?;
            let fname = entry.file_name();
            let Some(name) = fname.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if let Some(n) = self.load(l, name)? {
                out.push(n);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Writes atomically (temp file + rename).
    pub fn save(&self, _l: &Locked, net: &Network) -> PluginResult<()> {
        let p = self.path(&net.name);
        let tmp = self.nets_dir().join(format!(".{}.json.tmp", net.name));
        let data = serde_json::to_vec_pretty(net)
            .map_err(|e| PluginError::internal(format!("serialise network {}: {e}", net.name)))?;
        let mut f = File::create(&tmp)
            .map_err(|e| PluginError::io(format!("create {}", tmp.display()), e))?;
        f.write_all(&data)
            .and_then(|_| f.sync_all())
            .map_err(|e| PluginError::io(format!("write {}", tmp.display()), e))?;
        fs::rename(&tmp, &p)
            .map_err(|e| PluginError::io(format!("rename {} to {}", tmp.display(), p.display()), e))
    }

    pub fn delete(&self, _l: &Locked, name: &str) -> PluginResult<()> {
        let p = self.path(name);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(PluginError::io(format!("remove {}", p.display()), e)),
        }
    }
}
