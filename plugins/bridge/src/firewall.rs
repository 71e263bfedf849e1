//! nftables rules in berth's own table (default `table inet berth`; no other table is read or
//! written), applied with `nft -f -` (one batch per change, atomic in the kernel).
//!
//! Layout:
//! * `map pf_any` (`proto . port → container ip . port`) and `map pf_ip`
//!   (`host ip . proto . port → …`) hold the published ports; attach/detach only add or
//!   delete elements there.
//! * `chain portfwd` DNATs through both maps; it is jumped to from `prerouting` (traffic from
//!   outside and from containers, hairpin) and from `output` (the host itself, including
//!   127.0.0.1 — the bridge gets `route_localnet=1` and 127.0.0.0/8 sources are masqueraded
//!   on the way to the bridge, as netavark does).
//! * `postrouting` masquerades outbound traffic of non-internal networks and hairpin/localhost
//!   DNATed traffic; `forward` drops traffic between two berth bridges (isolation), keeps
//!   internal networks inside their bridge, and accepts traffic of our bridges.
//!
//! Those network-level rules are rewritten from the persisted state whenever networks change
//! (`flush chain` + rules, in one batch).

use std::{
    fmt::Write as _,
    io::Write as _,
    net::Ipv4Addr,
    process::{Command, Stdio},
};

use berth_abi::{PluginError, PluginResult};
use tracing::debug;

use crate::state::{Network, Port};

const CHAINS: &[(&str, &str)] = &[
    ("portfwd", ""),
    (
        "prerouting",
        "{ type nat hook prerouting priority dstnat; policy accept; }",
    ),
    (
        "output",
        "{ type nat hook output priority -100; policy accept; }",
    ),
    (
        "postrouting",
        "{ type nat hook postrouting priority srcnat; policy accept; }",
    ),
    (
        "forward",
        "{ type filter hook forward priority filter; policy accept; }",
    ),
];

pub struct Firewall {
    pub table: String,
    nft: String,
}

impl Firewall {
    pub fn new(table: String, nft: String) -> Firewall {
        Firewall { table, nft }
    }

    /// Runs one batch through `nft -f -`.
    pub fn apply(&self, batch: &str) -> PluginResult<()> {
        debug!(table = %self.table, batch, "nft -f -");
        let mut child = Command::new(&self.nft)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                PluginError::io(format!("run {} (is nftables installed?)", self.nft), e)
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(batch.as_bytes())
                .map_err(|e| PluginError::io(format!("write ruleset to {}", self.nft), e))?;
        }
        let out = child
            .wait_with_output()
            .map_err(|e| PluginError::io(format!("wait for {}", self.nft), e))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(PluginError::io(
                format!("nft rejected the rules for table inet {}", self.table),
                String::from_utf8_lossy(&out.stderr).trim(),
            ))
        }
    }

    /// `nft list table inet <table>` with whitespace collapsed; None when the table is absent.
    pub fn listing(&self) -> PluginResult<Option<String>> {
        let out = Command::new(&self.nft)
            .args(["list", "table", "inet", &self.table])
            .output()
            .map_err(|e| PluginError::io(format!("run {}", self.nft), e))?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(Some(text.split_whitespace().collect::<Vec<_>>().join(" ")))
    }

    /// Rewrites the network-level rules from `nets` (deletes the table when there is none).
    pub fn sync_networks(&self, nets: &[Network]) -> PluginResult<()> {
        self.apply(&self.render_networks(nets))
    }

    pub fn render_networks(&self, nets: &[Network]) -> String {
        let t = &self.table;
        let mut b = String::new();
        let _ = writeln!(b, "add table inet {t}");
        if nets.is_empty() {
            let _ = writeln!(b, "delete table inet {t}");
            return b;
        }
        for (name, spec) in CHAINS {
            let _ = writeln!(b, "add chain inet {t} {name} {spec}");
            let _ = writeln!(b, "flush chain inet {t} {name}");
        }
        let _ = writeln!(
            b,
            "add map inet {t} pf_any {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}"
        );
        let _ = writeln!(b, "add map inet {t} pf_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}");
        let _ = writeln!(
            b,
            "add rule inet {t} portfwd dnat ip to ip daddr . meta l4proto . th dport map @pf_ip"
        );
        let _ = writeln!(
            b,
            "add rule inet {t} portfwd dnat ip to meta l4proto . th dport map @pf_any"
        );
        for hook in ["prerouting", "output"] {
            let _ = writeln!(
                b,
                "add rule inet {t} {hook} fib daddr type local jump portfwd"
            );
        }
        for n in nets {
            let br = &n.bridge;
            let sn = &n.subnet;
            let _ = writeln!(
                b,
                "add rule inet {t} postrouting oifname \"{br}\" ip saddr 127.0.0.0/8 masquerade"
            );
            let _ = writeln!(
                b,
                "add rule inet {t} postrouting oifname \"{br}\" ip saddr {sn} ct status dnat masquerade"
            );
            if !n.internal {
                let _ = writeln!(
                    b,
                    "add rule inet {t} postrouting ip saddr {sn} ip daddr != {sn} oifname != \"{br}\" masquerade"
                );
            }
            let others: Vec<String> = nets
                .iter()
                .filter(|o| o.bridge != *br)
                .map(|o| format!("\"{}\"", o.bridge))
                .collect();
            if !others.is_empty() {
                let _ = writeln!(
                    b,
                    "add rule inet {t} forward iifname \"{br}\" oifname {{ {} }} drop",
                    others.join(", ")
                );
            }
            if n.internal {
                let _ = writeln!(
                    b,
                    "add rule inet {t} forward iifname \"{br}\" oifname != \"{br}\" drop"
                );
                let _ = writeln!(
                    b,
                    "add rule inet {t} forward oifname \"{br}\" iifname != \"{br}\" drop"
                );
            }
            let _ = writeln!(b, "add rule inet {t} forward iifname \"{br}\" accept");
            let _ = writeln!(
                b,
                "add rule inet {t} forward oifname \"{br}\" ct state established,related accept"
            );
            let _ = writeln!(
                b,
                "add rule inet {t} forward oifname \"{br}\" ct status dnat accept"
            );
        }
        b
    }

    fn element(ip: Ipv4Addr, p: &Port) -> (String, String) {
        let key = match p.host_ip {
            Some(h) => format!("{h} . {} . {}", p.proto.as_str(), p.host_port),
            None => format!("{} . {}", p.proto.as_str(), p.host_port),
        };
        let map = if p.host_ip.is_some() {
            "pf_ip"
        } else {
            "pf_any"
        };
        (
            map.to_string(),
            format!("{key} : {ip} . {}", p.container_port),
        )
    }

    fn key(p: &Port) -> (String, String) {
        match p.host_ip {
            Some(h) => (
                "pf_ip".into(),
                format!("{h} . {} . {}", p.proto.as_str(), p.host_port),
            ),
            None => (
                "pf_any".into(),
                format!("{} . {}", p.proto.as_str(), p.host_port),
            ),
        }
    }

    /// Installs the DNAT elements of one attachment in one batch.
    pub fn add_ports(&self, ip: Ipv4Addr, ports: &[Port]) -> PluginResult<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let t = &self.table;
        let mut b = String::new();
        for p in ports {
            let (map, el) = Self::element(ip, p);
            let _ = writeln!(b, "add element inet {t} {map} {{ {el} }}");
        }
        match self.apply(&b) {
            Ok(()) => Ok(()),
            Err(first) => {
                // A stale element with other data (left by a crash) holds a key: drop those
                // keys one by one, then try once more.
                debug!(error = %first, "adding port elements failed; clearing stale keys");
                for p in ports {
                    let (map, key) = Self::key(p);
                    let _ = self.apply(&format!("delete element inet {t} {map} {{ {key} }}\n"));
                }
                self.apply(&b)
            }
        }
    }

    /// Removes the DNAT elements of one attachment; absent elements are fine.
    pub fn remove_ports(&self, ip: Ipv4Addr, ports: &[Port]) -> PluginResult<()> {
        if ports.is_empty() {
            return Ok(());
        }
        let t = &self.table;
        // `add` first makes the `delete` valid whether or not the element exists.
        let mut b = String::new();
        for p in ports {
            let (map, el) = Self::element(ip, p);
            let (_, key) = Self::key(p);
            let _ = writeln!(b, "add element inet {t} {map} {{ {el} }}");
            let _ = writeln!(b, "delete element inet {t} {map} {{ {key} }}");
        }
        if self.apply(&b).is_ok() {
            return Ok(());
        }
        // The table is gone (nothing to remove) or a key holds other data: go key by key.
        if self.listing()?.is_none() {
            return Ok(());
        }
        for p in ports {
            let (map, key) = Self::key(p);
            let _ = self.apply(&format!("delete element inet {t} {map} {{ {key} }}\n"));
        }
        Ok(())
    }

    /// CHECK: the network's rules and the attachment's elements are in the kernel.
    pub fn check(&self, net: &Network, ip: Ipv4Addr, ports: &[Port]) -> PluginResult<()> {
        let Some(listing) = self.listing()? else {
            return Err(PluginError::not_found(format!(
                "nftables table inet {} is missing; re-attach the container to restore its rules",
                self.table
            )));
        };
        let want = format!(
            "oifname \"{}\" ip saddr {} ct status dnat masquerade",
            net.bridge, net.subnet
        );
        if !listing.contains(&want) {
            return Err(PluginError::not_found(format!(
                "nftables rules of network {} are missing from table inet {}",
                net.name, self.table
            )));
        }
        for p in ports {
            let (_, el) = Self::element(ip, p);
            if !listing.contains(&el) {
                return Err(PluginError::not_found(format!(
                    "port forward {}{}/{} → {ip}:{} is missing from table inet {}",
                    p.host_ip.map(|h| format!("{h}:")).unwrap_or_default(),
                    p.host_port,
                    p.proto.as_str(),
                    p.container_port,
                    self.table
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Proto;

    fn net(name: &str, br: &str, sn: &str, internal: bool) -> Network {
        Network {
            name: name.into(),
            id: "x".into(),
            bridge: br.into(),
            subnet: sn.into(),
            gateway: Ipv4Addr::new(10, 0, 0, 1),
            internal,
            mtu: 1500,
            created: 0,
            options: serde_json::json!({}),
            last_ip: None,
            leases: Default::default(),
            reaping: Default::default(),
        }
    }

    #[test]
    fn render_isolates_and_masquerades() {
        let fw = Firewall::new("bt_t".into(), "nft".into());
        let text = fw.render_networks(&[
            net("a", "bta", "10.9.0.0/24", false),
            net("b", "btb", "10.9.1.0/24", true),
        ]);
        assert!(
            text.contains("iifname \"bta\" oifname { \"btb\" } drop"),
            "{text}"
        );
        assert!(
            text.contains("iifname \"btb\" oifname { \"bta\" } drop"),
            "{text}"
        );
        assert!(text.contains("ip saddr 10.9.0.0/24 ip daddr != 10.9.0.0/24"));
        assert!(!text.contains("ip saddr 10.9.1.0/24 ip daddr != 10.9.1.0/24"));
        assert!(text.lines().all(|l| l.contains("inet bt_t")), "{text}");
        let empty = fw.render_networks(&[]);
        assert!(empty.contains("delete table inet bt_t"));
    }

    #[test]
    fn elements() {
        let p = Port {
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 8080,
            container_port: 80,
            proto: Proto::Tcp,
        };
        let (map, el) = Firewall::element(Ipv4Addr::new(10, 9, 0, 2), &p);
        assert_eq!(map, "pf_ip");
        assert_eq!(el, "127.0.0.1 . tcp . 8080 : 10.9.0.2 . 80");
    }
}
