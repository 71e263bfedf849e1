//! Networks as the Docker Engine API shows them, and their rules: the predefined
//! `bridge`, `host` and `none`, create, remove (not while a container uses it), prune.
//!
//! The network backend (a plugin) keeps subnets and attachments; labels, which the plugin
//! ABI does not carry, are kept by the engine in `<root>/netmeta/<id>.json`.

use std::collections::{BTreeMap, HashMap};

use berth_abi::{ErrorKind, NetworkInfo};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::{
    container::ContainerRecord, filters::id_matches, filters::Filters, models as m, Engine,
    EngineError,
};

/// Networks every root has: `bridge` (created by the backend on first use), and the
/// `host` and `none` modes.
pub const PREDEFINED: &[&str] = &["bridge", "host", "none"];

/// The filters `network ls` knows.
pub const NETWORK_FILTERS: &[&str] =
    &["name", "id", "label", "driver", "dangling", "type", "scope"];

/// What `network create` / `POST /networks/create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkCreateOptions {
    pub name: String,
    /// `bridge` (or empty); the only driver berth has.
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
}

/// Engine-side metadata of a network.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct NetMeta {
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default()
}

impl Engine {
    fn netmeta_path(&self, id: &str) -> std::path::PathBuf {
        self.config.root.join("netmeta").join(format!("{id}.json"))
    }

    fn netmeta(&self, id: &str) -> NetMeta {
        std::fs::read(self.netmeta_path(id))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// A stable ID for a network the backend has not made (`host`, `none`, a `bridge`
    /// not created yet): derived from the root and the name.
    fn synthetic_network_id(&self, name: &str) -> String {
        let mut h = sha2::Sha256::new();
        h.update(self.config.root.display().to_string().as_bytes());
        h.update(b"\0network\0");
        h.update(name.as_bytes());
        hex::encode(h.finalize())
    }

    /// The ID of the network a container names (`bridge`, a user network, `host`, …).
    pub fn network_id_of(&self, name: &str) -> String {
        if let Ok(net) = self.plugins.network() {
            if let Ok(info) = net.inspect_network(name) {
                return info.id.to_string();
            }
        }
        self.synthetic_network_id(name)
    }

    fn network_model(&self, n: &NetworkInfo, records: &[ContainerRecord]) -> m::Network {
        let mut containers = HashMap::new();
        for id in &n.containers {
            let id = id.to_string();
            let rec = records.iter().find(|c| c.id == id);
            let att = rec.and_then(|c| {
                c.network
                    .networks
                    .iter()
                    .find(|a| a.network == n.name.as_str())
            });
            containers.insert(
                id.clone(),
                m::NetworkContainer {
                    name: Some(rec.map(|c| c.name.clone()).unwrap_or_default()),
                    endpoint_id: Some(String::new()),
                    mac_address: Some(att.map(|a| a.mac.clone()).unwrap_or_default()),
                    ipv4_address: Some(
                        att.map(|a| format!("{}/{}", a.ip, a.prefix_len))
                            .unwrap_or_default(),
                    ),
                    ipv6_address: Some(String::new()),
                },
            );
        }
        let meta = self.netmeta(n.id.as_str());
        m::Network {
            name: Some(n.name.to_string()),
            id: Some(n.id.to_string()),
            created: Some(rfc3339(n.created)),
            scope: Some("local".into()),
            driver: Some("bridge".into()),
            enable_ipv6: Some(false),
            ipam: Some(m::Ipam {
                driver: Some("default".into()),
                config: Some(vec![m::IpamConfig {
                    subnet: Some(n.subnet.to_string()),
                    gateway: Some(n.gateway.to_string()),
                    ..Default::default()
                }]),
                options: Some(HashMap::new()),
            }),
            internal: Some(n.internal),
            attachable: Some(false),
            ingress: Some(false),
            config_from: Some(m::ConfigReference {
                network: Some(String::new()),
            }),
            config_only: Some(false),
            containers: Some(containers),
            options: Some(
                [(
                    "com.docker.network.bridge.name".to_string(),
                    n.interface.to_string(),
                )]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            ),
            labels: Some(meta.labels.into_iter().collect()),
            ..Default::default()
        }
    }

    /// `host`, `none`, or a `bridge` the backend has not created yet.
    fn predefined_model(&self, name: &str) -> m::Network {
        m::Network {
            name: Some(name.into()),
            id: Some(self.synthetic_network_id(name)),
            created: Some(rfc3339(0)),
            scope: Some("local".into()),
            driver: Some(
                match name {
                    "host" => "host",
                    "none" => "null",
                    _ => "bridge",
                }
                .into(),
            ),
            enable_ipv6: Some(false),
            ipam: Some(m::Ipam {
                driver: Some("default".into()),
                config: Some(Vec::new()),
                options: Some(HashMap::new()),
            }),
            internal: Some(false),
            attachable: Some(false),
            ingress: Some(false),
            config_from: Some(m::ConfigReference {
                network: Some(String::new()),
            }),
            config_only: Some(false),
            containers: Some(HashMap::new()),
            options: Some(HashMap::new()),
            labels: Some(HashMap::new()),
            ..Default::default()
        }
    }

    /// Every network, the predefined ones first.
    fn all_networks(&self) -> Result<Vec<m::Network>, EngineError> {
        let records = self.db()?.list()?;
        let made = self
            .plugins
            .network()?
            .list_networks()
            .map_err(|e| EngineError::plugin("listing networks", e))?;
        let mut out = Vec::new();
        for p in PREDEFINED {
            match made.iter().find(|n| n.name.as_str() == *p) {
                Some(n) => out.push(self.network_model(n, &records)),
                None => out.push(self.predefined_model(p)),
            }
        }
        let mut rest: Vec<_> = made
            .iter()
            .filter(|n| !PREDEFINED.contains(&n.name.as_str()))
            .collect();
        rest.sort_by(|a, b| a.name.cmp(&b.name));
        out.extend(rest.into_iter().map(|n| self.network_model(n, &records)));
        Ok(out)
    }

    /// `docker network inspect NAME|ID` (a unique ID prefix too).
    pub fn inspect_network(&self, what: &str) -> Result<m::Network, EngineError> {
        let all = self.all_networks()?;
        if let Some(n) = all
            .iter()
            .find(|n| n.name.as_deref() == Some(what) || n.id.as_deref() == Some(what))
        {
            return Ok(n.clone());
        }
        let by_prefix: Vec<_> = all
            .iter()
            .filter(|n| n.id.as_deref().is_some_and(|id| id_matches(id, what)))
            .collect();
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(EngineError::NotFound(format!("network {what} not found"))),
            _ => Err(EngineError::Conflict(format!(
                "network {what} is ambiguous ({} networks match): use more of its ID",
                by_prefix.len()
            ))),
        }
    }

    /// `docker network ls` / `GET /networks`.
    pub fn list_networks(&self, f: &Filters) -> Result<Vec<m::Network>, EngineError> {
        f.validate(NETWORK_FILTERS)?;
        let dangling = f.bool_value("dangling")?;
        for t in f.get("type") {
            if t != "custom" && t != "builtin" {
                return Err(EngineError::Invalid(format!(
                    "invalid filter 'type={t}': use custom or builtin"
                )));
            }
        }
        let used = self.networks_in_use()?;
        Ok(self
            .all_networks()?
            .into_iter()
            .filter(|n| {
                let name = n.name.clone().unwrap_or_default();
                let id = n.id.clone().unwrap_or_default();
                let builtin = PREDEFINED.contains(&name.as_str());
                let labels = n.labels.clone().unwrap_or_default();
                f.any_or_unset("name", |v| name.contains(v))
                    && f.any_or_unset("id", |v| id_matches(&id, v))
                    && f.any_or_unset("driver", |v| n.driver.as_deref() == Some(v))
                    && f.any_or_unset("scope", |v| v == "local")
                    && f.any_or_unset("type", |v| (v == "builtin") == builtin)
                    && f.labels_match(|k| labels.get(k).map(String::as_str))
                    && dangling.is_none_or(|d| {
                        d == (!builtin
                            && !used.contains(&name)
                            && n.containers.as_ref().is_none_or(|c| c.is_empty()))
                    })
            })
            .collect())
    }

    /// Names of the networks some container (in any state) is configured for or attached to.
    fn networks_in_use(&self) -> Result<std::collections::HashSet<String>, EngineError> {
        let mut used = std::collections::HashSet::new();
        for c in self.db()?.list()? {
            used.insert(c.config.network.clone());
            used.extend(c.network.networks.iter().map(|a| a.network.clone()));
        }
        Ok(used)
    }

    /// `docker network create`; returns the new network.
    pub fn create_network(&self, o: &NetworkCreateOptions) -> Result<m::Network, EngineError> {
        if PREDEFINED.contains(&o.name.as_str()) {
            return Err(EngineError::Conflict(format!(
                "{} is a pre-defined network and cannot be created",
                o.name
            )));
        }
        if !o.driver.is_empty() && o.driver != "bridge" {
            return Err(EngineError::Invalid(format!(
                "network driver {:?} is not supported: berth has the bridge driver only",
                o.driver
            )));
        }
        let info = self
            .plugins
            .network()?
            .create_network(&berth_abi::NetworkSpec {
                name: o.name.as_str().into(),
                subnet: o.subnet.clone(),
                gateway: o.gateway.clone(),
                internal: o.internal,
                options_json: "{}".into(),
            })
            .map_err(|e| match e.kind {
                ErrorKind::AlreadyExists => {
                    EngineError::Conflict(format!("network with name {} already exists", o.name))
                }
                _ => EngineError::plugin(format!("creating network {}", o.name), e),
            })?;
        if !o.labels.is_empty() {
            let path = self.netmeta_path(info.id.as_str());
            let meta = NetMeta {
                labels: o.labels.clone(),
            };
            let write = || -> std::io::Result<()> {
                if let Some(d) = path.parent() {
                    std::fs::create_dir_all(d)?;
                }
                let tmp = path.with_extension("tmp");
                std::fs::write(&tmp, serde_json::to_vec(&meta)?)?;
                std::fs::rename(&tmp, &path)
            };
            if let Err(e) = write() {
                // Bad input or a failed write leaves nothing behind.
                let _ = self.plugins.network()?.remove_network(&o.name);
                return Err(EngineError::io(format!("writing {}", path.display()), e));
            }
        }
        self.emit_named(
            "network",
            "create",
            info.id.as_str(),
            &o.name,
            &[("type", "bridge".into())],
        );
        self.inspect_network(info.id.as_str())
    }

    /// `docker network rm`: not a predefined network, not while a container uses it.
    pub fn remove_network(&self, what: &str) -> Result<(), EngineError> {
        let n = self.inspect_network(what)?;
        let name = n.name.clone().unwrap_or_default();
        if PREDEFINED.contains(&name.as_str()) {
            return Err(EngineError::Conflict(format!(
                "{name} is a pre-defined network and cannot be removed"
            )));
        }
        let users: Vec<String> = self
            .db()?
            .list()?
            .into_iter()
            .filter(|c| {
                c.config.network == name || c.network.networks.iter().any(|a| a.network == name)
            })
            .map(|c| c.name)
            .collect();
        if !users.is_empty() {
            return Err(EngineError::Conflict(format!(
                "network {name} is used by containers {}: remove them first",
                users.join(", ")
            )));
        }
        self.plugins
            .network()?
            .remove_network(&name)
            .map_err(|e| EngineError::plugin(format!("removing network {name}"), e))?;
        let id = n.id.unwrap_or_default();
        let _ = std::fs::remove_file(self.netmeta_path(&id));
        self.emit_named(
            "network",
            "destroy",
            &id,
            &name,
            &[("type", "bridge".into())],
        );
        Ok(())
    }

    /// `docker network prune`: every network no container uses, except the predefined
    /// ones. Returns the names removed.
    pub fn prune_networks(&self, f: &Filters) -> Result<m::NetworkPruneResponse, EngineError> {
        f.validate(&["label", "until"])?;
        let until = match f.get("until").first() {
            Some(u) => Some(
                crate::parse::parse_log_time("until", u, chrono::Utc::now()).map_err(|e| {
                    EngineError::Invalid(format!("invalid filter 'until={u}': {e}"))
                })?,
            ),
            None => None,
        };
        let mut deleted = Vec::new();
        for n in self.list_networks(&Filters::new().with("dangling", "true"))? {
            let labels = n.labels.clone().unwrap_or_default();
            if !f.labels_match(|k| labels.get(k).map(String::as_str)) {
                continue;
            }
            if let (Some(u), Some(c)) = (&until, n.created.as_deref()) {
                if chrono::DateTime::parse_from_rfc3339(c)
                    .is_ok_and(|c| c.with_timezone(&chrono::Utc) >= *u)
                {
                    continue;
                }
            }
            let name = n.name.unwrap_or_default();
            if self.remove_network(&name).is_ok() {
                deleted.push(name);
            }
        }
        Ok(m::NetworkPruneResponse {
            networks_deleted: Some(deleted),
        })
    }
}
