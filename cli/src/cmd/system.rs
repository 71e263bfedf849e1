//! `info`, `plugin ls|inspect|test`, `completion`.

use berth_abi::{PluginKind, ABI_MINOR, ABI_VERSION};
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
    /// Run the conformance suite of a plugin file's kind and print a pass/fail table
    #[command(
        after_help = "Needs root (mounts, namespaces, cgroups). Objects it makes are named bt-conf-*.\n\
Examples:\n  berth plugin test target/release/libmydriver.so\n  \
berth plugin test /usr/lib/berth/plugins/libberth_plugin_cgroup2.so --config '{\"parent\": \"bt-conf\"}'"
    )]
    Test {
        /// The plugin library (`.so`), loaded exactly as berth loads plugins
        path: std::path::PathBuf,
        /// The plugin's configuration as JSON (what `[KIND.NAME]` in berth.toml gives it);
        /// use it to keep the suite's host objects apart from real ones
        #[arg(long, default_value = "{}")]
        config: String,
        /// Run only the cases whose name contains this text
        #[arg(long)]
        only: Option<String>,
        /// Output format: table (default) or json
        #[arg(long, default_value = "table")]
        format: String,
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
    let storage_caps = match engine.plugins.storage_capabilities() {
        Ok(c) => json!({
            "copy_on_write": c.copy_on_write, "native_diff": c.native_diff,
            "max_layers": c.max_layers, "detail": c.detail,
        }),
        Err(e) => json!({ "error": e.to_string() }),
    };
    let v = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "abi_version": ABI_VERSION,
        "abi": format!("{ABI_VERSION}.{ABI_MINOR}"),
        "root": cfg.root,
        "config_file": cfg.source_file,
        "plugin_dirs": cfg.plugin_search_dirs(),
        "storage_driver_recorded": engine.plugins.recorded_storage_driver().ok().flatten(),
        "plugins": plugins,
        "storage_capabilities": storage_caps,
        "kernel_version": host::kernel_version(),
        "cgroup_layout": setup.as_str(),
        "cgroup_v2_controllers": host::v2_controllers(&setup),
    });
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "berth version {} (plugin ABI {ABI_VERSION}.{ABI_MINOR})",
        env!("CARGO_PKG_VERSION"),
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
        cfg.plugin_search_dirs()
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
    let caps = &v["storage_capabilities"];
    match caps["error"].as_str() {
        Some(e) => println!(" Storage Capabilities: unknown — {e}"),
        None => println!(
            " Storage Capabilities: copy-on-write {}, native diff {}, max layers {}{}",
            if caps["copy_on_write"] == true {
                "yes"
            } else {
                "no"
            },
            if caps["native_diff"] == true {
                "yes"
            } else {
                "no"
            },
            match caps["max_layers"].as_u64() {
                Some(0) | None => "no limit".to_string(),
                Some(n) => n.to_string(),
            },
            caps["detail"]
                .as_str()
                .filter(|d| !d.is_empty())
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        ),
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
    // `test` works on a file and needs no engine (nor a configured root).
    if let PluginCmd::Test {
        path,
        config,
        only,
        format,
    } = &c
    {
        return super::plugin_test::run(path, config, only.as_deref(), format);
    }
    let engine = g.engine()?;
    let reg = engine.plugins.registry();
    let active: Vec<(PluginKind, String)> = KINDS
        .iter()
        .map(|k| (*k, engine.plugins.active_name(*k)))
        .collect();
    let is_active = |k: PluginKind, n: &str| active.iter().any(|(ak, an)| *ak == k && an == n);
    let shadowed_by = |path: &std::path::Path| {
        reg.shadowed()
            .into_iter()
            .find(|(hidden, _)| hidden.path == path)
            .map(|(_, winner)| winner.path.display().to_string())
    };
    match c {
        PluginCmd::Ls { format } => {
            let mut rows = Vec::new();
            for e in reg.entries() {
                rows.push(match &e.result {
                    Ok(p) => json!({
                        "kind": p.kind.as_str(), "name": p.name, "version": p.version,
                        "abi": p.abi, "path": p.path,
                        "status": match shadowed_by(&p.path) {
                            Some(w) => format!("shadowed by {w}"),
                            None if is_active(p.kind, &p.name) => "active".into(),
                            None => "ok".into(),
                        },
                        "description": p.description,
                    }),
                    Err(err) => json!({
                        "kind": e.kind.map(|k| k.as_str()).unwrap_or("?"),
                        "name": e.display_name(), "version": "-", "abi": e.abi, "path": e.path,
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
                    r["abi"].as_str().unwrap_or("-").into(),
                    status,
                    r["path"].as_str().unwrap_or("").into(),
                ]);
            }
            t.print();
            Ok(0)
        }
        PluginCmd::Test { .. } => Ok(0), // answered above, before the engine
        PluginCmd::Inspect { name } => {
            let mut found = Vec::new();
            for e in reg.entries() {
                match &e.result {
                    Ok(p) if p.name == name => found.push(json!({
                        "Name": p.name, "Kind": p.kind.as_str(), "Version": p.version,
                        "Description": p.description, "AbiVersion": p.abi_version,
                        "Abi": p.abi, "Path": p.path,
                        "Active": is_active(p.kind, &p.name), "Status": "ok",
                    })),
                    // The error in one line, the full report (abi_stable's layout
                    // comparison, hundreds of lines) as an array of lines to scroll.
                    Err(err) if e.display_name() == name => found.push(json!({
                        "Name": name, "Kind": e.kind.map(|k| k.as_str()), "Abi": e.abi,
                        "Path": e.path, "Status": "error", "Error": err.to_string(),
                        "Report": err.full_report().lines().collect::<Vec<_>>(),
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
    use std::io::Write;
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails, and a reader that
    // stops early (`berth completion bash | head -1`) closes the pipe. That is no error.
    let mut script = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "berth", &mut script);
    match std::io::stdout().lock().write_all(&script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("writing the completion script"))
        }
        _ => Ok(0),
    }
}

#[derive(Subcommand, Debug)]
pub enum SystemCmd {
    /// Show disk usage: images, containers, layers, volumes, build cache
    Df {
        /// Show detailed information on space usage
        #[arg(short, long)]
        verbose: bool,
        /// Output: table or json
        #[arg(long)]
        format: Option<String>,
    },
    /// Remove stopped containers, unused networks, dangling images and the build cache
    Prune {
        /// Also remove all images not used by a container
        #[arg(short, long)]
        all: bool,
        /// Do not prompt (berth never prompts)
        #[arg(short, long)]
        force: bool,
        /// Also remove unused anonymous volumes (every unused volume with -a)
        #[arg(long)]
        volumes: bool,
    },
    /// Show the effective configuration (same as `berth info`)
    Info(InfoArgs),
}

fn opt_size(v: Option<u64>) -> String {
    v.map(crate::cmd::image::human_size)
        .unwrap_or_else(|| "-".into())
}

fn df(g: &GlobalOpts, verbose: bool, format: Option<&str>) -> anyhow::Result<u8> {
    use crate::cmd::image::human_size;
    let engine = g.engine_as_is()?;
    engine.reconcile_records()?;
    let du = engine.system_df()?;
    if format == Some("json") {
        println!("{}", serde_json::to_string_pretty(&du)?);
        return Ok(0);
    }
    if let Some(f) = format.filter(|f| !f.is_empty() && *f != "table") {
        anyhow::bail!("invalid --format {f:?}: use table or json");
    }
    if !verbose {
        let mut t = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
        for r in du.rows() {
            t.row(vec![
                r.kind,
                r.total.to_string(),
                r.active
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "-".into()),
                opt_size(r.size),
                opt_size(r.reclaimable),
            ]);
        }
        t.print();
        return Ok(0);
    }
    let d = &du.docker;
    println!("Images space usage:\n");
    let mut t = Table::new(&["REPOSITORY", "TAG", "IMAGE ID", "SIZE", "CONTAINERS"]);
    for i in d.images.iter().flatten() {
        let id: String =
            i.id.trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect();
        let tags = if i.repo_tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            i.repo_tags.clone()
        };
        for tag in tags {
            let (repo, tag) = match tag.rfind(':') {
                Some(p) if !tag[p..].contains('/') => {
                    (tag[..p].to_string(), tag[p + 1..].to_string())
                }
                _ => (tag.clone(), "<none>".to_string()),
            };
            t.row(vec![
                repo,
                tag,
                id.clone(),
                human_size(i.size.max(0) as u64),
                i.containers.to_string(),
            ]);
        }
    }
    t.print();
    println!("\nContainers space usage:\n");
    let mut t = Table::new(&[
        "CONTAINER ID",
        "IMAGE",
        "LOCAL VOLUMES",
        "SIZE",
        "STATUS",
        "NAMES",
    ]);
    for c in d.containers.iter().flatten() {
        t.row(vec![
            c.id.clone().unwrap_or_default().chars().take(12).collect(),
            c.image.clone().unwrap_or_default(),
            c.mounts
                .iter()
                .flatten()
                .filter(|m| m.typ == Some(berth_engine::models::MountPointTypeEnum::VOLUME))
                .count()
                .to_string(),
            human_size(c.size_rw.unwrap_or(0).max(0) as u64),
            c.status.clone().unwrap_or_default(),
            c.names
                .iter()
                .flatten()
                .map(|n| n.trim_start_matches('/'))
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    t.print();
    println!("\nLocal Volumes space usage:\n");
    let mut t = Table::new(&["VOLUME NAME", "LINKS", "SIZE"]);
    for v in d.volumes.iter().flatten() {
        let u = v.usage_data.clone().unwrap_or_default();
        t.row(vec![
            v.name.clone(),
            u.ref_count.to_string(),
            human_size(u.size.max(0) as u64),
        ]);
    }
    t.print();
    println!(
        "\nBuild cache usage: {} entries",
        d.build_cache.as_ref().map_or(0, Vec::len)
    );
    println!(
        "\nUnpacked layers: {} ({}); debris: {} ({} reclaimable)",
        du.layers.count,
        human_size(du.layers.size),
        du.debris.total,
        human_size(du.debris.reclaimable)
    );
    Ok(0)
}

pub fn system(g: &GlobalOpts, c: SystemCmd) -> anyhow::Result<u8> {
    match c {
        SystemCmd::Info(a) => info(g, a),
        SystemCmd::Df { verbose, format } => df(g, verbose, format.as_deref()),
        SystemCmd::Prune { all, volumes, .. } => {
            let engine = g.engine()?;
            engine.reconcile()?;
            let r =
                engine.system_prune(berth_engine::prune::SystemPruneOptions { all, volumes })?;
            let containers = r.containers.containers_deleted.unwrap_or_default();
            println!("Deleted containers: {}", containers.len());
            let images = r.images.images_deleted.unwrap_or_default();
            println!("Deleted images: {}", images.len());
            match r.layers {
                Some(n) => println!("Deleted layers: {n}"),
                None => println!("Deleted layers: 0 (a build is running: unpacked layers are kept until it ends)"),
            }
            println!("Deleted build cache entries: {}", r.build_cache);
            for n in r.networks.networks_deleted.unwrap_or_default() {
                println!("Deleted network: {n}");
            }
            if let Some(v) = r.volumes {
                for n in v.volumes_deleted.unwrap_or_default() {
                    println!("Deleted volume: {n}");
                }
            }
            let reclaimed = r.containers.space_reclaimed.unwrap_or(0).max(0)
                + r.images.space_reclaimed.unwrap_or(0).max(0);
            println!(
                "Total reclaimed space: {}",
                crate::cmd::image::human_size(reclaimed as u64)
            );
            Ok(0)
        }
    }
}
