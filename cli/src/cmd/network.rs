//! `network create|ls|inspect|rm|prune|connect|disconnect` and `volume …`.

use anyhow::bail;
use berth_abi::rtypes::ROption;
use berth_engine::{container::new_id, parse::validate_volume_name};
use clap::Subcommand;
use serde_json::json;

use crate::{table::Table, GlobalOpts};

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
        name: String,
    },
    /// List networks
    #[command(visible_alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on networks
    Inspect {
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
    },
}

fn net_json(n: &berth_abi::NetworkInfo) -> serde_json::Value {
    json!({
        "Name": n.name.as_str(), "Id": n.id.as_str(), "Driver": "bridge",
        "Interface": n.interface.as_str(), "Internal": n.internal,
        "IPAM": {"Config": [{"Subnet": n.subnet.as_str(), "Gateway": n.gateway.as_str()}]},
        "Containers": n.containers.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "Created": n.created,
    })
}

pub fn network(g: &GlobalOpts, c: NetworkCmd) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let net = engine.plugins.network()?;
    match c {
        NetworkCmd::Create {
            subnet,
            gateway,
            internal,
            name,
        } => {
            if matches!(name.as_str(), "none" | "host" | "bridge") {
                bail!("{name} is a pre-defined network and cannot be created");
            }
            let info = net
                .create_network(&berth_abi::NetworkSpec {
                    name: name.into(),
                    subnet: ROption::from(subnet.map(Into::into)),
                    gateway: ROption::from(gateway.map(Into::into)),
                    internal,
                    options_json: "{}".into(),
                })
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            engine.emit_named(
                "network",
                "create",
                &info.id,
                &info.name,
                &[("type", "bridge".into())],
            );
            println!("{}", info.id);
        }
        NetworkCmd::Ls { quiet } => {
            let list = net.list_networks().map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut t = Table::new(&["NETWORK ID", "NAME", "DRIVER", "SUBNET", "GATEWAY"]);
            for n in list {
                let id: String = n.id.chars().take(12).collect();
                if quiet {
                    println!("{id}");
                    continue;
                }
                t.row(vec![
                    id,
                    n.name.to_string(),
                    "bridge".into(),
                    n.subnet.to_string(),
                    n.gateway.to_string(),
                ]);
            }
            if !quiet {
                t.print();
            }
        }
        NetworkCmd::Inspect { names } => {
            let mut out = Vec::new();
            for n in names {
                let info = net
                    .inspect_network(&n)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                out.push(net_json(&info));
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        NetworkCmd::Rm { names } => {
            let mut failed = false;
            for n in names {
                let in_use = engine
                    .db()?
                    .list()?
                    .into_iter()
                    .filter(|c| c.config.network == n)
                    .map(|c| c.name)
                    .collect::<Vec<_>>();
                if !in_use.is_empty() {
                    eprintln!(
                        "Error: network {n} is used by containers {}: remove them first",
                        in_use.join(", ")
                    );
                    failed = true;
                    continue;
                }
                let id = net
                    .inspect_network(&n)
                    .map(|i| i.id.to_string())
                    .unwrap_or_else(|_| n.clone());
                match net.remove_network(&n) {
                    Ok(()) => {
                        engine.emit_named(
                            "network",
                            "destroy",
                            &id,
                            &n,
                            &[("type", "bridge".into())],
                        );
                        println!("{n}")
                    }
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
            net.inspect_network(&network)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let rec = engine.db()?.resolve(&container)?;
            engine.connect(&rec, &network, &alias)?;
        }
        NetworkCmd::Disconnect { network, container } => {
            let rec = engine.db()?.resolve(&container)?;
            engine.disconnect(&rec, &network)?;
        }
        NetworkCmd::Prune { .. } => {
            let used: Vec<String> = engine
                .db()?
                .list()?
                .into_iter()
                .map(|c| c.config.network)
                .collect();
            println!("Deleted Networks:");
            for n in net.list_networks().map_err(|e| anyhow::anyhow!("{e}"))? {
                // The default network is recreated on demand, so it is pruned like the others.
                if !used.contains(&n.name.to_string())
                    && n.containers.is_empty()
                    && net.remove_network(&n.name).is_ok()
                {
                    engine.emit_named(
                        "network",
                        "destroy",
                        &n.id,
                        &n.name,
                        &[("type", "bridge".into())],
                    );
                    println!("{}", n.name);
                }
            }
        }
    }
    Ok(0)
}

#[derive(Subcommand, Debug)]
pub enum VolumeCmd {
    /// Create a volume
    Create { name: Option<String> },
    /// List volumes
    #[command(visible_alias = "list")]
    Ls {
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on volumes
    Inspect {
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
    },
}

pub fn volume(g: &GlobalOpts, c: VolumeCmd) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    match c {
        VolumeCmd::Create { name } => {
            let anonymous = name.is_none();
            let name = name.unwrap_or_else(new_id);
            validate_volume_name(&name).map_err(|e| anyhow::anyhow!(e))?;
            std::fs::create_dir_all(engine.volume_dir(&name))?;
            if engine
                .db()?
                .volume_insert(&name, &chrono::Utc::now().to_rfc3339(), anonymous)?
            {
                engine.emit_named(
                    "volume",
                    "create",
                    &name,
                    &name,
                    &[("driver", "local".into())],
                );
            }
            println!("{name}");
        }
        VolumeCmd::Ls { quiet } => {
            let mut t = Table::new(&["DRIVER", "VOLUME NAME"]);
            for (n, _, _) in engine.db()?.volumes()? {
                if quiet {
                    println!("{n}");
                } else {
                    t.row(vec!["local".into(), n]);
                }
            }
            if !quiet {
                t.print();
            }
        }
        VolumeCmd::Inspect { names } => {
            let all = engine.db()?.volumes()?;
            let mut out = Vec::new();
            for n in names {
                let Some((name, created, anon)) = all.iter().find(|v| v.0 == n) else {
                    bail!("no such volume: {n}");
                };
                out.push(
                    json!({"Name": name, "Driver": "local", "CreatedAt": created,
                    "Mountpoint": engine.volume_dir(name), "Anonymous": anon}),
                );
            }
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        VolumeCmd::Rm { names, force } => {
            let all = engine.db()?.volumes()?;
            for n in names {
                if !all.iter().any(|v| v.0 == n) {
                    if force {
                        continue;
                    }
                    bail!("no such volume: {n}");
                }
                if engine.volume_in_use(&n)? {
                    bail!("volume {n} is in use by a container: remove the container first");
                }
                engine.remove_volume_data(&n)?;
                println!("{n}");
            }
        }
        VolumeCmd::Prune { all, .. } => {
            println!("Deleted Volumes:");
            for (n, _, anon) in engine.db()?.volumes()? {
                if (anon || all) && !engine.volume_in_use(&n)? {
                    engine.remove_volume_data(&n)?;
                    println!("{n}");
                }
            }
        }
    }
    Ok(0)
}
