//! berth-plugin-bridge: the `bridge` network backend.
//!
//! * One Linux bridge per network: the default network `bridge` is `berth0` on 10.77.0.0/16
//!   (it stays clear of podman's 10.88.0.0/16); user networks get `berth-<hash>` and, without
//!   an explicit subnet, the first free /24 of 10.78.0.0/15 that overlaps neither another
//!   network nor a route of the host.
//! * One veth pair per attachment: the host side `vb<hash>` is plugged into the bridge, the
//!   peer moves into the container's namespace and becomes `ifname` with its address, the
//!   default route via the gateway, `lo` up and the uplink's MTU. All through rtnetlink.
//! * IPAM and attachments live in `<state_dir>/networks/<name>.json` under an exclusive
//!   file lock (`<state_dir>/lock`), so concurrent `berth` processes never hand out the
//!   same address.
//! * Firewall: see [`firewall`] (nftables, berth's own table only). Published ports reach
//!   the container from other hosts' view, from the host's own addresses including
//!   127.0.0.1 (output-chain DNAT + `route_localnet`) and from other containers (hairpin
//!   masquerade).
//!
//! Every operation is idempotent: `attach` of an attached container returns the recorded
//! result after CHECK passes (or redoes the attachment when it does not), and `detach`
//! succeeds when the namespace, link or lease is already gone.
//!
//! Configuration (`[network.bridge]` in berth.toml, all optional): `default_bridge`,
//! `default_subnet`, `pool`, `bridge_prefix`, `veth_prefix`, `table`, `nft`.
#![allow(non_local_definitions)]

pub mod dns;
pub mod firewall;
pub mod ipam;
pub mod netlink;
pub mod ports;
pub mod state;

use std::{
    collections::BTreeSet,
    fs::File,
    net::Ipv4Addr,
    path::{Path, PathBuf},
};

use berth_abi::{
    AttachRequest, AttachResult, DetachRequest, ErrorKind, InterfaceInfo, NetworkBackend,
    NetworkInfo, NetworkSpec, PluginContext, PluginError, PluginResult, PortMapping,
};
use ipnet::Ipv4Net;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tracing::{debug, debug_span};

use crate::{
    firewall::Firewall,
    netlink::NlError,
    state::{Lease, Network, Store},
};

/// Name of the default network the host creates on demand.
pub const DEFAULT_NETWORK: &str = "bridge";

/// The plugin's configuration table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Bridge interface of the default network.
    pub default_bridge: String,
    /// Subnet of the default network.
    pub default_subnet: String,
    /// Where subnets of user networks without an explicit subnet come from (in /24s).
    pub pool: String,
    /// Bridge name prefix of user networks (`<prefix><hash>`, at most 15 characters).
    pub bridge_prefix: String,
    /// Host-side veth name prefix.
    pub veth_prefix: String,
    /// nftables table (family inet) owned by this plugin.
    pub table: String,
    /// The nft binary.
    pub nft: String,
    /// Name resolution on user-defined networks (a `berth-dns` per network).
    pub dns: bool,
    /// The responder binary; empty = `berth-dns` next to the engine or on PATH.
    pub dns_binary: String,
    /// Port the responder listens on at the gateway address.
    pub dns_port: u16,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_bridge: "berth0".into(),
            default_subnet: "10.77.0.0/16".into(),
            pool: "10.78.0.0/15".into(),
            bridge_prefix: "berth-".into(),
            veth_prefix: "vb".into(),
            table: "berth".into(),
            nft: "nft".into(),
            dns: true,
            dns_binary: String::new(),
            dns_port: 53,
        }
    }
}

impl Config {
    fn parse(json: &str) -> PluginResult<Config> {
        let cfg: Config = if json.trim().is_empty() {
            Config::default()
        } else {
            serde_json::from_str(json).map_err(|e| {
                PluginError::invalid(format!("bad [network.bridge] configuration: {e}"))
            })?
        };
        let ifname_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        };
        if !ifname_ok(&cfg.default_bridge) || cfg.default_bridge.len() > 15 {
            return Err(PluginError::invalid(format!(
                "bad default_bridge {:?}: an interface name of 1-15 characters [A-Za-z0-9._-]",
                cfg.default_bridge
            )));
        }
        if !ifname_ok(&cfg.bridge_prefix) || cfg.bridge_prefix.len() > 9 {
            return Err(PluginError::invalid(format!(
                "bad bridge_prefix {:?}: 1-9 characters [A-Za-z0-9._-]",
                cfg.bridge_prefix
            )));
        }
        if !ifname_ok(&cfg.veth_prefix) || cfg.veth_prefix.len() > 5 {
            return Err(PluginError::invalid(format!(
                "bad veth_prefix {:?}: 1-5 characters [A-Za-z0-9._-]",
                cfg.veth_prefix
            )));
        }
        if cfg.table.is_empty()
            || !cfg
                .table
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(PluginError::invalid(format!(
                "bad table {:?}: letters, digits and _ only",
                cfg.table
            )));
        }
        ipam::parse_subnet(&cfg.default_subnet).map_err(|e| e.context("default_subnet"))?;
        cfg.pool
            .parse::<Ipv4Net>()
            .ok()
            .filter(|p| p.prefix_len() <= 24)
            .ok_or_else(|| {
                PluginError::invalid(format!(
                    "bad pool {:?}: an IPv4 CIDR of /24 or larger",
                    cfg.pool
                ))
            })?;
        Ok(cfg)
    }
}

/// The bridge backend.
pub struct Bridge {
    cfg: Config,
    store: Store,
    fw: Firewall,
    dns: Option<dns::Dns>,
}

/// How long a veth whose namespace died may take to disappear before it is deleted.
const REAP_GRACE_MS: u64 = 5_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn hash_hex(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

fn nl_err(e: NlError) -> PluginError {
    let kind = match e.errno() {
        Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::PermissionDenied,
        Some(libc::EEXIST) => ErrorKind::AlreadyExists,
        _ => ErrorKind::Io,
    };
    PluginError::new(kind, e.to_string())
}

fn valid_name(what: &str, s: &str, max: usize) -> PluginResult<()> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(PluginError::invalid(format!(
            "invalid {what} {s:?}: use 1-{max} characters [A-Za-z0-9._-], starting with a letter or digit"
        )))
    }
}

fn write_sysctl(path: &str, value: &str) -> PluginResult<()> {
    if std::fs::read_to_string(path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    debug!(path, value, "writing sysctl");
    std::fs::write(path, value).map_err(|e| PluginError::io(format!("write {value} to {path}"), e))
}

fn info_of(n: &Network) -> NetworkInfo {
    NetworkInfo {
        name: n.name.as_str().into(),
        id: n.id.as_str().into(),
        interface: n.bridge.as_str().into(),
        subnet: n.subnet.as_str().into(),
        gateway: n.gateway.to_string(),
        internal: n.internal,
        containers: n.leases.keys().cloned().collect(),
        created: n.created,
    }
}

impl Bridge {
    pub fn new(ctx: &PluginContext) -> PluginResult<Bridge> {
        let cfg = Config::parse(ctx.config_json())?;
        if ctx.state_dir().is_empty() {
            return Err(PluginError::invalid(
                "the bridge network plugin needs a state directory (PluginContext.state_dir)",
            ));
        }
        let store = Store::open(Path::new(ctx.state_dir()))?;
        let fw = Firewall::new(cfg.table.clone(), cfg.nft.clone());
        let dns = dns::Dns::new(ctx.run_dir(), cfg.dns, &cfg.dns_binary, cfg.dns_port);
        Ok(Bridge {
            cfg,
            store,
            fw,
            dns,
        })
    }

    fn bridge_name(&self, network: &str) -> String {
        if network == DEFAULT_NETWORK {
            return self.cfg.default_bridge.clone();
        }
        let room = (15 - self.cfg.bridge_prefix.len()).min(8);
        format!(
            "{}{}",
            self.cfg.bridge_prefix,
            &hash_hex(&[network])[..room]
        )
    }

    /// Host-side veth name of `container` on `network` (the peer is born inside the
    /// container's namespace under its final name).
    fn veth_name(&self, container: &str, network: &str) -> String {
        let h = hash_hex(&[container, network]);
        let p = &self.cfg.veth_prefix;
        let room = (15 - p.len()).min(11);
        format!("{p}{}", &h[..room])
    }

    fn ensure_forwarding(&self, nets: &[Network]) -> PluginResult<()> {
        if nets.iter().any(|n| !n.internal) {
            write_sysctl("/proc/sys/net/ipv4/ip_forward", "1")?;
        }
        Ok(())
    }

    /// Creates the bridge of `net` if needed; returns (index, created now).
    fn ensure_bridge(&self, net: &Network) -> PluginResult<(u32, bool)> {
        let _s = debug_span!("ensure_bridge", bridge = %net.bridge).entered();
        let prefix = net.net()?.prefix_len();
        let (br, gw, mtu) = (net.bridge.clone(), net.gateway, net.mtu);
        let r =
            netlink::run(|h| async move { netlink::ensure_bridge(&h, &br, gw, prefix, mtu).await })
                .map_err(nl_err)
                .map_err(|e| e.context(format!("network {}", net.name)))?;
        write_sysctl(
            &format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge),
            "1",
        )?;
        Ok(r)
    }

    fn delete_link(&self, name: &str) -> PluginResult<()> {
        let n = name.to_string();
        netlink::run(|h| async move { netlink::delete_link(&h, &n).await })
            .map(|_| ())
            .map_err(nl_err)
    }

    fn pick_subnet(&self, spec_name: &str, existing: &[Network]) -> PluginResult<Ipv4Net> {
        let routes: Vec<Ipv4Net> = netlink::run(|h| async move { netlink::ipv4_routes(&h).await })
            .map_err(nl_err)?
            .into_iter()
            .filter(|(_, p, _)| *p > 0)
            .filter_map(|(d, p, _)| Ipv4Net::new(d, p).ok())
            .collect();
        let taken: Vec<(String, Ipv4Net)> = existing
            .iter()
            .filter_map(|n| n.net().ok().map(|s| (format!("network {}", n.name), s)))
            .chain(routes.iter().map(|r| (format!("the host route {r}"), *r)))
            .collect();
        let clash = |cand: &Ipv4Net| taken.iter().find(|(_, t)| ipam::overlaps(cand, t));
        if spec_name == DEFAULT_NETWORK {
            let net = ipam::parse_subnet(&self.cfg.default_subnet)?;
            if let Some((who, s)) = clash(&net) {
                return Err(PluginError::invalid(format!(
                    "the default subnet {net} overlaps {who} ({s}); set default_subnet in \
                     [network.bridge] to a free range"
                )));
            }
            return Ok(net);
        }
        let pool: Ipv4Net = self
            .cfg
            .pool
            .parse()
            .map_err(|_| PluginError::invalid(format!("bad pool {:?}", self.cfg.pool)))?;
        let subnets = pool
            .subnets(24)
            .map_err(|e| PluginError::invalid(format!("bad pool {pool}: {e}")))?;
        for cand in subnets {
            if clash(&cand).is_none() {
                return Ok(cand);
            }
        }
        Err(PluginError::new(
            ErrorKind::Exhausted,
            format!(
                "no free /24 left in the pool {pool} (every one overlaps a network or a host \
                 route); pass an explicit subnet or remove unused networks"
            ),
        ))
    }

    fn result_of(&self, net: &Network, lease: &Lease) -> PluginResult<AttachResult> {
        let prefix = net.net()?.prefix_len();
        Ok(AttachResult {
            interfaces: vec![InterfaceInfo {
                name: lease.ifname.as_str().into(),
                mac: lease.mac.as_str().into(),
                addresses: vec![format!("{}/{prefix}", lease.ip)],
                host_interface: lease.host_veth.as_str().into(),
            }],
            gateway: Some(net.gateway.to_string()),
            dns_servers: self
                .dns_for(net)
                .map(|_| net.gateway.to_string())
                .into_iter()
                .collect(),
            dns_search: self
                .dns_for(net)
                .map(|_| dns::DOMAIN.to_string())
                .into_iter()
                .collect(),
            ports: lease
                .ports
                .iter()
                .map(|p| PortMapping {
                    host_ip: p.host_ip.map(|i| i.to_string()).unwrap_or_default(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                    protocol: p.proto.into(),
                })
                .collect(),
        })
    }

    /// CHECK of one lease (the lock is held by the caller).
    fn check_lease(&self, net: &Network, cid: &str, lease: &Lease) -> PluginResult<()> {
        let _s = debug_span!("check", container = cid, network = %net.name).entered();
        if !lease.complete {
            return Err(PluginError::not_found(format!(
                "the attachment of container {cid} to network {} did not complete; attach again",
                net.name
            )));
        }
        let (veth, br) = (lease.host_veth.clone(), net.bridge.clone());
        let host = netlink::run(|h| async move {
            let v = netlink::link_by_name(&h, &veth).await?;
            let b = netlink::link_by_name(&h, &br).await?;
            Ok((v, b))
        })
        .map_err(nl_err)?;
        let (Some(v), Some(b)) = host else {
            return Err(PluginError::not_found(format!(
                "veth {} or bridge {} of container {cid} on network {} is missing",
                lease.host_veth, net.bridge, net.name
            )));
        };
        if netlink::link_controller(&v) != Some(b.header.index) || !netlink::link_is_up(&v) {
            return Err(PluginError::not_found(format!(
                "veth {} is not up on bridge {}",
                lease.host_veth, net.bridge
            )));
        }
        let ifname = lease.ifname.clone();
        let inside = netlink::run_in_netns(Path::new(&lease.netns_path), |h| async move {
            netlink::inspect_peer(&h, &ifname).await
        })
        .map_err(|e| {
            if e.errno() == Some(libc::ENOENT) {
                PluginError::not_found(format!(
                    "network namespace {} of container {cid} is gone",
                    lease.netns_path
                ))
            } else {
                nl_err(e)
            }
        })?;
        let prefix = net.net()?.prefix_len();
        match inside {
            Some((true, addrs)) if addrs.contains(&(lease.ip, prefix)) => {}
            _ => {
                return Err(PluginError::not_found(format!(
                    "interface {} with address {}/{prefix} is missing or down in {}",
                    lease.ifname, lease.ip, lease.netns_path
                )))
            }
        }
        self.fw.check(net, lease.ip, &lease.ports)
    }

    /// Drops `reaping` entries whose link the kernel has removed; deletes links still
    /// present `older_than_ms` after their detach (0 = all of them, e.g. `network rm`).
    fn settle_reaping(&self, net: &mut Network, older_than_ms: u64) -> PluginResult<()> {
        if net.reaping.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let entries: Vec<(String, bool)> = net
            .reaping
            .iter()
            .map(|(veth, (_, since))| (veth.clone(), now.saturating_sub(*since) >= older_than_ms))
            .collect();
        let gone = netlink::run(|h| async move {
            let mut gone = Vec::new();
            for (veth, overdue) in entries {
                if netlink::link_by_name(&h, &veth).await?.is_none()
                    || (overdue && netlink::delete_link(&h, &veth).await.is_ok())
                {
                    gone.push(veth);
                }
            }
            Ok(gone)
        })
        .map_err(nl_err)?;
        for veth in gone {
            net.reaping.remove(&veth);
        }
        Ok(())
    }

    /// The DNS responder manager when `net` gets name resolution.
    fn dns_for(&self, net: &Network) -> Option<&dns::Dns> {
        self.dns.as_ref().filter(|d| d.serves(net))
    }

    /// Removes what an attachment made (best effort, absent parts are fine): its DNS
    /// record, veth pair and port rules.
    fn teardown(&self, net: &mut Network, lease: &Lease) -> PluginResult<()> {
        let _s = debug_span!("teardown", veth = %lease.host_veth).entered();
        if let Some(d) = self.dns_for(net) {
            d.unregister(net, lease.ip)?;
        }
        if Path::new(&lease.netns_path).exists() {
            self.delete_link(&lease.host_veth)?;
        } else {
            // The container's process (and with it, usually, its namespace) is gone: the
            // kernel is already tearing the pair down, asynchronously. Waiting for it, or a
            // synchronous delete, costs an RCU grace period (~10-20 ms here); record it
            // instead and confirm later (`settle_reaping`).
            net.reaping
                .insert(lease.host_veth.clone(), (lease.ip, now_ms()));
        }
        self.fw.remove_ports(lease.ip, &lease.ports)
    }

    /// Kernel side of an attachment; returns the MAC of the container interface.
    fn plumb(&self, nets: &[Network], net: &Network, lease: &Lease) -> PluginResult<String> {
        let netns_path = PathBuf::from(&lease.netns_path);
        let netns = File::open(&netns_path).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Io
            };
            PluginError::new(
                kind,
                format!("open network namespace {}: {e}", netns_path.display()),
            )
        })?;
        let (br_index, created) = self.ensure_bridge(net)?;
        if created {
            // The bridge was missing (e.g. after a reboot): the rules may be too.
            self.fw.sync_networks(nets)?;
            self.ensure_forwarding(nets)?;
        }
        let host = lease.host_veth.clone();
        let (ifname, mtu) = (lease.ifname.clone(), net.mtu);
        netlink::run(|h| async move {
            netlink::delete_link(&h, &host).await?; // a leftover of a crashed attempt
            netlink::create_veth(&h, &host, &ifname, br_index, mtu, &netns).await
        })
        .map_err(|e| {
            if e.errno() == Some(libc::EEXIST) {
                PluginError::already_exists(format!(
                    "interface {} already exists in network namespace {}; pick another \
                     interface name",
                    lease.ifname,
                    netns_path.display()
                ))
            } else {
                nl_err(e)
            }
        })?;
        let (ifname, ip, gw) = (lease.ifname.clone(), lease.ip, net.gateway);
        let prefix = net.net()?.prefix_len();
        let mac = netlink::run_in_netns(&netns_path, |h| async move {
            netlink::configure_peer(&h, &ifname, ip, prefix, gw).await
        })
        .map_err(nl_err)?;
        if !lease.ports.is_empty() {
            if let Err(e) = self.fw.add_ports(lease.ip, &lease.ports) {
                debug!(error = %e, "adding ports failed; restoring the table and retrying");
                self.fw.sync_networks(nets)?;
                self.fw.add_ports(lease.ip, &lease.ports)?;
            }
        }
        Ok(mac)
    }

    fn attach_locked(
        &self,
        lock: &state::Locked,
        req: &AttachRequest,
    ) -> PluginResult<AttachResult> {
        let cid = req.container_id.as_str();
        let name = req.network.as_str();
        let mut net = self.store.load(lock, name)?.ok_or_else(|| {
            PluginError::not_found(format!(
                "network {name} does not exist; create it with `berth network create {name}`"
            ))
        })?;
        if let Some(old) = net.leases.get(cid).cloned() {
            if self.check_lease(&net, cid, &old).is_ok() {
                debug!(container = cid, network = name, "already attached");
                return self.result_of(&net, &old);
            }
            debug!(
                container = cid,
                network = name,
                "stale attachment: redoing it"
            );
            self.teardown(&mut net, &old)?;
            net.leases.remove(cid);
            self.store.save(lock, &net)?;
        }
        let all = self.store.list(lock)?;
        if net.internal && !req.ports.is_empty() {
            return Err(PluginError::invalid(format!(
                "network {name} is internal (no route to the outside): ports cannot be published on it"
            )));
        }
        let ports = ports::resolve(&all, cid, &req.ports)?;
        let subnet = net.net()?;
        let ip = match req.static_ip.as_ref() {
            Some(s) => {
                let ip = ipam::check_static(name, &subnet, net.gateway, s.as_str())?;
                self.settle_reaping(&mut net, REAP_GRACE_MS)?;
                if net.reaping.values().any(|(r, _)| *r == ip) {
                    return Err(PluginError::busy(format!(
                        "address {ip} on network {name} is still being released; retry in a moment"
                    )));
                }
                if let Some((other, _)) = net.leases.iter().find(|(_, l)| l.ip == ip) {
                    return Err(PluginError::busy(format!(
                        "address {ip} on network {name} is already used by container {other}; \
                         choose another address or let berth pick one"
                    )));
                }
                ip
            }
            None => {
                self.settle_reaping(&mut net, REAP_GRACE_MS)?;
                let used: BTreeSet<Ipv4Addr> = net
                    .leases
                    .values()
                    .map(|l| l.ip)
                    .chain(net.reaping.values().map(|(ip, _)| *ip))
                    .collect();
                ipam::allocate(name, &subnet, net.gateway, &used, net.last_ip)?
            }
        };
        let host_veth = self.veth_name(cid, name);
        if let Some(d) = self.dns_for(&net) {
            // Before anything else: a name clash refuses the attach with nothing to undo.
            let mut names: Vec<String> = Vec::new();
            if !req.container_name.is_empty() {
                names.push(req.container_name.to_string());
            }
            names.extend(req.aliases.iter().map(|a| a.to_string()));
            names.push(cid.chars().take(12).collect());
            d.register(&net, ip, &names)
                .map_err(|e| e.context(format!("attach container {cid} to network {name}")))?;
        }
        let mut lease = Lease {
            container_name: req.container_name.to_string(),
            ip,
            ifname: req.ifname.to_string(),
            host_veth,
            netns_path: req.netns_path.to_string(),
            mac: String::new(),
            ports,
            complete: false,
        };
        // Record the lease first: a crash from here on leaves a lease the next attach or
        // detach cleans up.
        net.leases.insert(cid.to_string(), lease.clone());
        net.last_ip = Some(ip);
        self.store.save(lock, &net)?;
        let plumbed = self.plumb(&all, &net, &lease).and_then(|mac| {
            if let Some(d) = self.dns_for(&net) {
                d.ensure_running(&net)?;
            }
            Ok(mac)
        });
        match plumbed {
            Ok(mac) => {
                // A restart reuses the veth name: plumb removed any leftover of it.
                net.reaping.remove(&lease.host_veth);
                lease.mac = mac;
                lease.complete = true;
                net.leases.insert(cid.to_string(), lease.clone());
                self.store.save(lock, &net)?;
                self.result_of(&net, &lease)
            }
            Err(e) => {
                debug!(error = %e, "attach failed: rolling back");
                let _ = self.teardown(&mut net, &lease);
                net.leases.remove(cid);
                let _ = self.store.save(lock, &net);
                Err(e.context(format!("attach container {cid} to network {name}")))
            }
        }
    }
}

impl NetworkBackend for Bridge {
    fn create_network(&self, spec: &NetworkSpec) -> PluginResult<NetworkInfo> {
        let name = spec.name.as_str();
        let _s = debug_span!("create_network", network = name).entered();
        valid_name("network name", name, 64)?;
        let options: serde_json::Value = if spec.options_json.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(spec.options_json.as_str()).map_err(|e| {
                PluginError::invalid(format!("network options of {name} are not JSON: {e}"))
            })?
        };
        let Some(opts) = options.as_object() else {
            return Err(PluginError::invalid(format!(
                "network options of {name} must be a JSON object"
            )));
        };
        if let Some(k) = opts.keys().find(|k| k.as_str() != "mtu") {
            return Err(PluginError::invalid(format!(
                "unknown option {k:?} for network {name}; the bridge backend knows: mtu"
            )));
        }
        let mtu_opt = match opts.get("mtu") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|m| (576..=65535).contains(m))
                    .map(|m| m as u32)
                    .ok_or_else(|| {
                        PluginError::invalid(format!(
                            "option mtu of network {name} must be a number between 576 and 65535"
                        ))
                    })?,
            ),
        };
        let lock = self.store.lock()?;
        if self.store.load(&lock, name)?.is_some() {
            return Err(PluginError::already_exists(format!(
                "network {name} already exists"
            )));
        }
        let mut all = self.store.list(&lock)?;
        let subnet = match spec.subnet.as_ref() {
            Some(s) => {
                let net = ipam::parse_subnet(s.as_str())?;
                if let Some(o) = all
                    .iter()
                    .find(|o| o.net().is_ok_and(|on| ipam::overlaps(&net, &on)))
                {
                    return Err(PluginError::invalid(format!(
                        "subnet {net} overlaps network {} ({}); choose a free range",
                        o.name, o.subnet
                    )));
                }
                let routes = netlink::run(|h| async move { netlink::ipv4_routes(&h).await })
                    .map_err(nl_err)?;
                if let Some((d, p, _)) = routes.iter().find(|(d, p, _)| {
                    *p > 0 && Ipv4Net::new(*d, *p).is_ok_and(|r| ipam::overlaps(&net, &r))
                }) {
                    return Err(PluginError::invalid(format!(
                        "subnet {net} overlaps the host route {d}/{p}; choose a free range"
                    )));
                }
                net
            }
            None => self.pick_subnet(name, &all)?,
        };
        let gateway = ipam::parse_gateway(&subnet, spec.gateway.as_deref())?;
        let bridge = self.bridge_name(name);
        if let Some(o) = all.iter().find(|o| o.bridge == bridge) {
            return Err(PluginError::already_exists(format!(
                "bridge {bridge} is already used by network {}",
                o.name
            )));
        }
        let mtu = match mtu_opt {
            Some(m) => m,
            None => netlink::run(|h| async move { netlink::uplink_mtu(&h).await })
                .map_err(nl_err)?
                .unwrap_or(1500),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let net = Network {
            name: name.to_string(),
            id: hash_hex(&[name, &now.as_nanos().to_string()]),
            bridge,
            subnet: subnet.to_string(),
            gateway,
            internal: spec.internal,
            mtu,
            created: now.as_secs() as i64,
            options,
            last_ip: None,
            leases: Default::default(),
            reaping: Default::default(),
        };
        self.store.save(&lock, &net)?;
        all.push(net.clone());
        let made = self
            .ensure_bridge(&net)
            .and_then(|_| self.fw.sync_networks(&all))
            .and_then(|_| self.ensure_forwarding(&all));
        if let Err(e) = made {
            let _ = self.delete_link(&net.bridge);
            let _ = self.store.delete(&lock, name);
            all.retain(|n| n.name != name);
            let _ = self.fw.sync_networks(&all);
            return Err(e.context(format!("create network {name}")));
        }
        Ok(info_of(&net))
    }

    fn remove_network(&self, name: &str) -> PluginResult<()> {
        let _s = debug_span!("remove_network", network = name).entered();
        let lock = self.store.lock()?;
        let net = self
            .store
            .load(&lock, name)?
            .ok_or_else(|| PluginError::not_found(format!("network {name} does not exist")))?;
        if !net.leases.is_empty() {
            let ids: Vec<&str> = net.leases.keys().map(|s| s.as_str()).collect();
            return Err(PluginError::busy(format!(
                "network {name} is in use by container(s) {}; disconnect them first",
                ids.join(", ")
            )));
        }
        if let Some(d) = &self.dns {
            d.forget(&net);
        }
        let mut net = net;
        self.settle_reaping(&mut net, 0)?;
        self.delete_link(&net.bridge)
            .map_err(|e| e.context(format!("remove network {name}")))?;
        self.store.delete(&lock, name)?;
        let rest = self.store.list(&lock)?;
        self.fw.sync_networks(&rest)
    }

    fn list_networks(&self) -> PluginResult<Vec<NetworkInfo>> {
        let lock = self.store.lock()?;
        Ok(self.store.list(&lock)?.iter().map(info_of).collect())
    }

    fn inspect_network(&self, name: &str) -> PluginResult<NetworkInfo> {
        let lock = self.store.lock()?;
        self.store
            .load(&lock, name)?
            .map(|n| info_of(&n))
            .ok_or_else(|| PluginError::not_found(format!("network {name} does not exist")))
    }

    fn attach(&self, req: &AttachRequest) -> PluginResult<AttachResult> {
        let _s =
            debug_span!("attach", container = %req.container_id, network = %req.network).entered();
        valid_name("container id", req.container_id.as_str(), 128)?;
        valid_name("network name", req.network.as_str(), 64)?;
        valid_name("interface name", req.ifname.as_str(), 15)?;
        if req.netns_path.is_empty() {
            return Err(PluginError::invalid(format!(
                "attach of container {}: no network namespace path given",
                req.container_id
            )));
        }
        let lock = self.store.lock()?;
        self.attach_locked(&lock, req)
    }

    fn detach(&self, req: &DetachRequest) -> PluginResult<()> {
        let cid = req.container_id.as_str();
        let name = req.network.as_str();
        let _s = debug_span!("detach", container = cid, network = name).entered();
        valid_name("container id", cid, 128)?;
        valid_name("network name", name, 64)?;
        let lock = self.store.lock()?;
        let host_veth = self.veth_name(cid, name);
        let Some(mut net) = self.store.load(&lock, name)? else {
            // No network, no lease: only a leftover link could remain.
            return self.delete_link(&host_veth);
        };
        match net.leases.get(cid).cloned() {
            Some(lease) => {
                self.teardown(&mut net, &lease)?;
                net.leases.remove(cid);
                self.store.save(&lock, &net)
            }
            None => self.delete_link(&host_veth),
        }
    }

    fn check(&self, req: &DetachRequest) -> PluginResult<()> {
        let cid = req.container_id.as_str();
        let name = req.network.as_str();
        let lock = self.store.lock()?;
        let net = self
            .store
            .load(&lock, name)?
            .ok_or_else(|| PluginError::not_found(format!("network {name} does not exist")))?;
        let lease = net.leases.get(cid).ok_or_else(|| {
            PluginError::not_found(format!("container {cid} is not attached to network {name}"))
        })?;
        self.check_lease(&net, cid, lease)
    }
}

berth_abi::export_plugin! {
    kind: network,
    name: "bridge",
    description: "Linux bridge + veth per container, file-locked IPAM, nftables NAT and published ports",
    constructor: Bridge::new,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_in_ifnamsiz() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = PluginContext {
            state_dir: dir.path().to_str().unwrap().into(),
            ..Default::default()
        };
        let b = Bridge::new(&ctx).unwrap();
        assert_eq!(b.bridge_name("bridge"), "berth0");
        let n = b.bridge_name("my-very-long-network-name");
        assert!(n.starts_with("berth-") && n.len() <= 15, "{n}");
        assert_ne!(n, b.bridge_name("other"));
        let h = b.veth_name("abcdef0123456789", "bridge");
        assert!(h.starts_with("vb") && h.len() <= 15, "{h}");
        assert_ne!(h, b.veth_name("abcdef0123456789", "other"));
    }

    #[test]
    fn config_is_checked() {
        assert!(Config::parse("").is_ok());
        assert!(Config::parse(r#"{"table":"bad table"}"#).is_err());
        assert!(Config::parse(r#"{"bridge_prefix":"waytoolongprefix"}"#).is_err());
        assert!(Config::parse(r#"{"nope":1}"#).is_err());
        assert!(Config::parse(r#"{"default_subnet":"10.0.0.1/8"}"#).is_err());
    }
}
