//! `network create|ls|inspect|rm|prune|connect|disconnect` and `volume …`: flags and
//! printing; the rules are the engine's (`berth_engine::networks`, `berth_engine::volumes`).

use std::collections::BTreeMap;

use berth_engine::{networks::NetworkCreateOptions, volumes::VolumeCreateOptions, Filters};
use clap::Subcommand;
use serde_json::json;

use crate::{
    cmd::container::{inspect_json, labels_string},
    format::{print_inspect, Format},
    table::Table,
    GlobalOpts,
};

/// `--label k=v` values as a map.
fn labels(l: &[String]) -> BTreeMap<String, String> {
    l.iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[derive(Subcommand, Debug)]
pub enum NetworkCmd {
    /// Create a network
    #[command(after_help = "Example:\n  berth network create --subnet 10.90.0.0/24 appnet")]
    Create {
        /// Subnet in CIDR format
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address
        #[arg(long)]
        gateway: Option<String>,
        /// Restrict external access to the network
        #[arg(long)]
        internal: bool,
        /// Driver to manage the network (berth has bridge)
        #[arg(short, long, default_value = "bridge")]
        driver: String,
        /// Set metadata on the network (KEY=VALUE)
        #[arg(long = "label")]
        labels: Vec<String>,
        name: String,
    },
    /// List networks
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  berth network ls\n  berth network ls -f driver=bridge --format '{{.Name}}'"
    )]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        /// Filter (KEY=VALUE): name, id, label, driver, dangling, type, scope
        #[arg(short, long)]
        filter: Vec<String>,
        /// Output: table, json, or a Go template ('table {{.Name}}\t{{.Driver}}')
        #[arg(long)]
        format: Option<String>,
        /// Do not truncate the output
        #[arg(long)]
        no_trunc: bool,
    },
    /// Display detailed information on networks
    Inspect {
        /// Format the output with a Go template
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove networks
    #[command(visible_alias = "remove")]
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Connect a running container to a network
    #[command(after_help = "Example:\n  berth network connect --alias db appnet web")]
    Connect {
        /// Add a network-scoped alias for the container
        #[arg(long)]
        alias: Vec<String>,
        network: String,
        container: String,
    },
    /// Disconnect a container from a network
    Disconnect { network: String, container: String },
    /// Remove all unused networks
    Prune {
        #[arg(short, long)]
        force: bool,
        /// Filter (label=KEY[=VALUE], until=TIME)
        #[arg(long)]
        filter: Vec<String>,
    },
}

/// Docker's field names of `network ls --format` and their column headers.
const NETWORK_FIELDS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("IPv6", "IPV6"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
    ("CreatedAt", "CREATED"),
];

pub fn network(g: &GlobalOpts, c: NetworkCmd) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    match c {
        NetworkCmd::Create {
            subnet,
            gateway,
            internal,
            driver,
            labels: l,
            name,
        } => {
            let n = engine.create_network(&NetworkCreateOptions {
                name,
                driver,
                subnet,
                gateway,
                internal,
                labels: labels(&l),
            })?;
            println!("{}", n.id.unwrap_or_default());
        }
        NetworkCmd::Ls {
            quiet,
            filter,
            format,
            no_trunc,
        } => {
            let format = Format::parse(format.as_deref())?;
            let list = engine.list_networks(&Filters::from_cli(&filter)?)?;
            let mut t = Table::new(&["NETWORK ID", "NAME", "DRIVER", "SCOPE", "SUBNET", "GATEWAY"]);
            let mut items = Vec::new();
            for n in list {
                let full = n.id.clone().unwrap_or_default();
                let id: String = if no_trunc {
                    full
                } else {
                    full.chars().take(12).collect()
                };
                if quiet {
                    println!("{id}");
                    continue;
                }
                let ipam = n
                    .ipam
                    .as_ref()
                    .and_then(|i| i.config.as_ref())
                    .and_then(|c| c.first().cloned())
                    .unwrap_or_default();
                let name = n.name.clone().unwrap_or_default();
                let driver = n.driver.clone().unwrap_or_default();
                let scope = n.scope.clone().unwrap_or_default();
                if format.is_table() {
                    t.row(vec![
                        id,
                        name,
                        driver,
                        scope,
                        ipam.subnet.unwrap_or_default(),
                        ipam.gateway.unwrap_or_default(),
                    ]);
                } else {
                    items.push(json!({
                        "ID": id, "Name": name, "Driver": driver, "Scope": scope,
                        "IPv6": n.enable_ipv6.unwrap_or(false).to_string(),
                        "Internal": n.internal.unwrap_or(false).to_string(),
                        "Labels": labels_string(n.labels.as_ref()),
                        "CreatedAt": n.created.clone().unwrap_or_default(),
                    }));
                }
            }
            if quiet {
                return Ok(0);
            }
            if format.is_table() {
                t.print();
            } else {
                format.print(&items, NETWORK_FIELDS)?;
            }
        }
        NetworkCmd::Inspect { format, names } => {
            let mut docs = Vec::new();
            let mut failed = false;
            for n in names {
                match engine.inspect_network(&n) {
                    Ok(v) => docs.push(inspect_json(&v)?),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            if !docs.is_empty() || format.is_none() {
                print_inspect(&docs, format.as_deref())?;
            }
            return Ok(if failed { 1 } else { 0 });
        }
        NetworkCmd::Rm { names } => {
            let mut failed = false;
            for n in names {
                match engine.remove_network(&n) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        failed = true;
                    }
                }
            }
            return Ok(if failed { 1 } else { 0 });
        }
        NetworkCmd::Connect {
            alias,
            network,
            container,
        } => {
            let n = engine.inspect_network(&network)?;
            let rec = engine.container(&container)?;
            engine.connect(&rec, n.name.as_deref().unwrap_or(&network), &alias)?;
        }
        NetworkCmd::Disconnect { network, container } => {
            let rec = engine.container(&container)?;
            engine.disconnect(&rec, &network)?;
        }
        NetworkCmd::Prune { filter, .. } => {
            let r = engine.prune_networks(&Filters::from_cli(&filter)?)?;
            let deleted = r.networks_deleted.unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Networks:");
                for n in deleted {
                    println!("{n}");
                }
            }
        }
    }
    Ok(0)
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create {
        /// Volume driver name (berth has local)
        #[arg(short, long, default_value = "local")]
        driver: String,
        /// Set metadata for the volume (KEY=VALUE)
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Driver-specific options (KEY=VALUE)
        #[arg(short, long = "opt")]
        opts: Vec<String>,
        name: Option<String>,
    },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
        /// Filter (KEY=VALUE): name, label, driver, dangling
        #[arg(short, long)]
        filter: Vec<String>,
        /// Output: table, json, or a Go template ('{{.Name}}')
        #[arg(long)]
        format: Option<String>,
    },
    /// Display detailed information on volumes
    Inspect {
        /// Format the output with a Go template
        #[arg(short, long)]
        format: Option<String>,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove volumes
    Rm {
        #[arg(short, long)]
        force: bool,
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove unused anonymous volumes (all unused with -a)
    Prune {
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
        /// Filter (label=KEY[=VALUE])
        #[arg(long)]
        filter: Vec<String>,
    },
}

/// Docker's field names of `volume ls --format` and their column headers.
const VOLUME_FIELDS: &[(&str, &str)] = &[
    ("Name", "VOLUME NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];

pub fn volume(g: &GlobalOpts, c: VolumeCmd) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    match c {
        VolumeCmd::Create {
            driver,
            labels: l,
            opts,
            name,
        } => {
            let v = engine.create_volume(&VolumeCreateOptions {
                name,
                driver,
                driver_opts: labels(&opts),
                labels: labels(&l),
            })?;
            println!("{}", v.name);
        }
        VolumeCmd::Ls {
            quiet,
            filter,
            format,
        } => {
            let format = Format::parse(format.as_deref())?;
            let list = engine.list_volumes(&Filters::from_cli(&filter)?)?;
            let mut t = Table::new(&["DRIVER", "VOLUME NAME"]);
            let mut items = Vec::new();
            for v in list {
                if quiet {
                    println!("{}", v.name);
                } else if format.is_table() {
                    t.row(vec![v.driver.clone(), v.name.clone()]);
                } else {
                    items.push(json!({
                        "Name": v.name, "Driver": v.driver, "Scope": "local",
                        "Mountpoint": v.mountpoint, "Labels": labels_string(Some(&v.labels)),
                        "Links": "N/A", "Size": "N/A",
                    }));
                }
            }
            if quiet {
                return Ok(0);
            }
            if format.is_table() {
                t.print();
            } else {
                format.print(&items, VOLUME_FIELDS)?;
            }
        }
        VolumeCmd::Inspect { format, names } => {
            let mut docs = Vec::new();
            for n in names {
                docs.push(inspect_json(&engine.inspect_volume(&n)?)?);
            }
            print_inspect(&docs, format.as_deref())?;
        }
        VolumeCmd::Rm { names, force } => {
            for n in names {
                engine.remove_volume(&n, force)?;
                println!("{n}");
            }
        }
        VolumeCmd::Prune { all, filter, .. } => {
            let r = engine.prune_volumes(all, &Filters::from_cli(&filter)?)?;
            let deleted = r.volumes_deleted.unwrap_or_default();
            if !deleted.is_empty() {
                println!("Deleted Volumes:");
                for n in deleted {
                    println!("{n}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                crate::cmd::image::human_size(r.space_reclaimed.unwrap_or(0).max(0) as u64)
            );
        }
    }
    Ok(0)
}
