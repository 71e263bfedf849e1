//! `berth-runtime`: berth's runtime behind runc's command line, so containerd's shim,
//! podman (conmon), CRI-O and runtime-tools can drive it as they drive runc.
//!
//! Each command is one short-lived process, as with runc: `create` leaves the container's
//! first process waiting on `<root>/<id>/exec.fifo` and exits; `start` writes the go byte
//! into it. The container's state is `<root>/<id>/state.json` (written atomically; every
//! command that changes it holds `<root>/<id>/lock`). Cgroups are the isolator plugin's
//! (found next to the binary like `berth`'s). See docs/runtime.md.

mod cmd;
mod hooks;
mod log;
mod state;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// An OCI runtime with runc's command line, built on berth's runtime.
#[derive(Parser, Debug)]
#[command(name = "berth-runtime", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// Directory of the containers' state
    #[arg(
        long,
        global = true,
        default_value = "/run/berth-runtime",
        value_name = "DIR"
    )]
    pub root: PathBuf,
    /// Write errors (and with --debug, progress) to this file instead of stderr only
    #[arg(long, global = true, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Format of --log: text or json (runc's {"level","msg","time"} lines)
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log progress too
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd for cgroups (not supported: an error says so)
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility (before the command); berth-runtime needs root
    #[arg(long, value_name = "true|false|auto")]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility (checkpointing is not supported)
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
}

#[derive(clap::Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle (the directory holding config.json)
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Write the container's pid here
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Unix socket that receives the terminal's master (SCM_RIGHTS) when process.terminal is set
    #[arg(long, value_name = "PATH")]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility (berth-runtime always uses pivot_root)
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is created)
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass this many descriptors from 3 on to the container
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// Container id
    pub id: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container; its process waits for `start`
    Create(CreateArgs),
    /// Start a created container
    Start { id: String },
    /// Create and start a container (and wait for it unless --detach)
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once the process runs
        #[arg(short, long)]
        detach: bool,
        /// Accepted for runc compatibility
        #[arg(long)]
        keep: bool,
    },
    /// Print a container's state (OCI state JSON)
    State { id: String },
    /// Send a signal (default SIGTERM) to a container's process, or with --all to all of them
    Kill {
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
        #[arg(short, long)]
        all: bool,
    },
    /// Delete a container (--force kills a running one first)
    Delete {
        id: String,
        #[arg(short, long)]
        force: bool,
    },
    /// Run a process in a running container
    Exec(cmd::ExecArgs),
    /// List a container's processes
    Ps {
        id: String,
        /// table or json (pids)
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Options for ps(1) (table format)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Freeze every process of a container
    Pause { id: String },
    /// Thaw a paused container
    Resume { id: String },
    /// Change a container's resource limits
    Update(cmd::UpdateArgs),
    /// List containers
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Only ids
        #[arg(short, long)]
        quiet: bool,
    },
    /// Write a default config.json into the bundle
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// A config for rootless containers (user namespace with the caller's ids)
        #[arg(long)]
        rootless: bool,
    },
    /// What this runtime supports (JSON, as runc >= 1.1)
    Features,
    /// Print a container's resource usage (JSON); --stats once, else every --interval
    Events {
        id: String,
        #[arg(long)]
        stats: bool,
        #[arg(long, default_value = "5s", value_parser = cmd::parse_interval)]
        interval: std::time::Duration,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let logger = log::Logger::new(&cli.global);
    match cmd::dispatch(&cli, &logger) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            logger.error(&format!("{e:#}"));
            ExitCode::from(1)
        }
    }
}
