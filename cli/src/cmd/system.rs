//! `info`, `plugin ls|inspect`, `completion`.

use berth_abi::{PluginKind, ABI_VERSION};
use berth_engine::host;
use clap::{Args, CommandFactory, Subcommand};
use serde_json::json;

use crate::{table::Table, Cli, GlobalOpts};

#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  berth info\n  berth info --format json")]
pub struct InfoArgs {
    /// Output format: table (default) or json
    #[arg(long, default_value = "table")]
    pub format: String,
}

#[derive(Subcommand, Debug)]
pub enum PluginCmd {
    /// List every plugin found, with its ABI status
    #[command(visible_alias = "list", after_help = "Example:\n  berth plugin ls")]
    Ls {
        /// Output format: table (default) or json
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Show one plugin in detail
    #[command(after_help = "Example:\n  berth plugin inspect overlayfs")]
    Inspect {
        /// Plugin name
        name: String,
    },
}

#[derive(Args, Debug)]
pub struct CompletionArgs {
    /// Shell: bash, zsh, fish, elvish or powershell
    pub shell: clap_complete::Shell,
}

const KINDS: [PluginKind; 3] = [
    PluginKind::Storage,
    PluginKind::Network,
    PluginKind::Isolator,
];

pub fn info(g: &GlobalOpts, a: InfoArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let cfg = &engine.config;
    let setup = host::cgroup_setup();
    let mut plugins = Vec::new();
    for kind in KINDS {
        let name = engine.plugins.active_name(kind);
        let configured = match kind {
            PluginKind::Storage => &cfg.storage.driver,
            PluginKind::Network => &cfg.network.driver,
            PluginKind::Isolator => &cfg.isolator.driver,
        };
        let loaded = engine.plugins.active(kind);
        plugins.push(match loaded {
            Ok(p) => json!({
                "kind": kind.as_str(), "name": p.name, "configured": configured,
                "version": p.version, "abi": p.abi_version, "path": p.path, "status": "ok",
            }),
            Err(e) => json!({
                "kind": kind.as_str(), "name": name, "configured": configured,
                "status": format!("error: {e}"),
            }),
        });
    }
    let v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "abi_version": ABI_VERSION,
        "root": cfg.root,
        "config_file": cfg.source_file,
        "plugin_dirs": cfg.plugin_dirs,
        "plugins": plugins,
        "kernel_version": host::kernel_version(),
        "cgroup_layout": setup.as_str(),
        "cgroup_v2_controllers": host::v2_controllers(&setup),
    });
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "berth version {} (plugin ABI {})",
        env!("CARGO_PKG_VERSION"),
        ABI_VERSION
    );
    println!(" Root Dir: {}", cfg.root.display());
    println!(
        " Config File: {}",
        cfg.source_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "none (built-in defaults)".into())
    );
    println!(
        " Plugin Dirs: {}",
        cfg.plugin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    for p in &plugins {
        let title = match p["kind"].as_str() {
            Some("storage") => "Storage Driver",
            Some("network") => "Network Backend",
            _ => "Isolator",
        };
        let auto = if p["configured"] == "auto" {
            " (auto)"
        } else {
            ""
        };
        if p["status"] == "ok" {
            println!(
                " {title}: {}{auto} {} [{}]",
                p["name"].as_str().unwrap_or(""),
                p["version"].as_str().unwrap_or(""),
                p["path"].as_str().unwrap_or("")
            );
        } else {
            println!(
                " {title}: {}{auto} — {}",
                p["name"].as_str().unwrap_or(""),
                p["status"].as_str().unwrap_or("")
            );
        }
    }
    println!(" Kernel Version: {}", host::kernel_version());
    println!(" Cgroup Layout: {}", setup.as_str());
    let ctrl = host::v2_controllers(&setup);
    println!(
        " Cgroup v2 Controllers: {}",
        if ctrl.is_empty() {
            "none".to_string()
        } else {
            ctrl.join(" ")
        }
    );
    Ok(0)
}

pub fn plugin(g: &GlobalOpts, c: PluginCmd) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let reg = engine.plugins.registry();
    let active: Vec<(PluginKind, String)> = KINDS
        .iter()
        .map(|k| (*k, engine.plugins.active_name(*k)))
        .collect();
    let is_active = |k: PluginKind, n: &str| active.iter().any(|(ak, an)| *ak == k && an == n);
    match c {
        PluginCmd::Ls { format } => {
            let mut rows = Vec::new();
            for e in reg.entries() {
                rows.push(match &e.result {
                    Ok(p) => json!({
                        "kind": p.kind.as_str(), "name": p.name, "version": p.version,
                        "abi": p.abi_version, "path": p.path,
                        "status": if is_active(p.kind, &p.name) { "active" } else { "ok" },
                        "description": p.description,
                    }),
                    Err(err) => json!({
                        "kind": e.kind.map(|k| k.as_str()).unwrap_or("?"),
                        "name": e.display_name(), "version": "", "abi": null, "path": e.path,
                        "status": format!("error: {}", if g.debug { err.full_report() } else { err.to_string() }),
                    }),
                });
            }
            if format == "json" {
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(0);
            }
            if rows.is_empty() {
                eprintln!(
                    "no plugins found in {}",
                    reg.dirs()
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            let mut t = Table::new(&["KIND", "NAME", "VERSION", "ABI", "STATUS", "PATH"]);
            for r in &rows {
                let status = r["status"].as_str().unwrap_or("");
                // Tables keep one line per plugin; --format json has the whole message.
                let status = status.lines().next().unwrap_or("").to_string();
                t.row(vec![
                    r["kind"].as_str().unwrap_or("").into(),
                    r["name"].as_str().unwrap_or("").into(),
                    r["version"].as_str().unwrap_or("").into(),
                    r["abi"]
                        .as_u64()
                        .map(|v| v.to_string())
                        .unwrap_or("-".into()),
                    status,
                    r["path"].as_str().unwrap_or("").into(),
                ]);
            }
            t.print();
            Ok(0)
        }
        PluginCmd::Inspect { name } => {
            let mut found = Vec::new();
            for e in reg.entries() {
                match &e.result {
                    Ok(p) if p.name == name => found.push(json!({
                        "Name": p.name, "Kind": p.kind.as_str(), "Version": p.version,
                        "Description": p.description, "AbiVersion": p.abi_version,
                        "Path": p.path, "Active": is_active(p.kind, &p.name), "Status": "ok",
                    })),
                    Err(err) if e.display_name() == name => found.push(json!({
                        "Name": name, "Path": e.path, "Status": err.full_report(),
                    })),
                    _ => {}
                }
            }
            if found.is_empty() {
                anyhow::bail!(
                    "no plugin named {name:?} in {} (see `berth plugin ls`)",
                    reg.dirs()
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            println!("{}", serde_json::to_string_pretty(&found)?);
            Ok(0)
        }
    }
}

pub fn completion(a: CompletionArgs) -> anyhow::Result<u8> {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "berth", &mut std::io::stdout());
    Ok(0)
}
