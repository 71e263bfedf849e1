//! `berth-dns`: the DNS responder of one bridge network. See the crate documentation and
//! `berth-dns --help`.

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, time::Duration};

use berth_bridge_dns::{
    pidfile::PidFile,
    server::{Config, Server, Upstreams},
};
use clap::Parser;
use tokio::signal::unix::{signal, SignalKind};
use tracing::{error, info};

/// DNS responder for one berth bridge network: answers the names of the network's
/// containers from a records file and forwards other names upstream.
#[derive(Debug, Parser)]
#[command(name = "berth-dns", version)]
struct Cli {
    /// Address to serve on, UDP and TCP (e.g. 10.89.0.1:53). Repeatable.
    #[arg(long, required = true, value_name = "IP:PORT")]
    listen: Vec<SocketAddr>,

    /// The network's records file: lines `IP NAME [ALIAS...]`. Re-read when it changes;
    /// the responder exits when it is removed.
    #[arg(long, alias = "records", value_name = "FILE")]
    hosts: PathBuf,

    /// Search domain under which names also resolve (`web` and `web.dns.berth`); "" for none.
    #[arg(long, default_value = "dns.berth")]
    domain: String,

    /// Upstream resolver (IP or IP:PORT, port 53 by default). Repeatable; replaces the
    /// nameservers of --resolv-conf.
    #[arg(long, value_name = "IP[:PORT]", value_parser = parse_upstream, conflicts_with = "no_upstream")]
    upstream: Vec<SocketAddr>,

    /// Do not forward: names not in the records are NXDOMAIN (internal networks).
    #[arg(long)]
    no_upstream: bool,

    /// Where the default upstreams come from (re-read when it changes). Loopback
    /// nameservers are used too: the responder runs in the host's network namespace.
    #[arg(long, default_value = "/etc/resolv.conf", value_name = "FILE")]
    resolv_conf: PathBuf,

    /// Time allowed to each upstream per exchange, in milliseconds.
    #[arg(long, default_value_t = 2000, value_name = "MS")]
    upstream_timeout_ms: u64,

    /// TTL of the answers from the records, in seconds.
    #[arg(long, default_value_t = 1)]
    ttl: u32,

    /// How often the records file is checked for removal between queries, in milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    poll_interval_ms: u64,

    /// Pid file, written atomically once the sockets are bound (readiness) and removed on
    /// exit.
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
}

fn parse_upstream(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    s.parse::<std::net::IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| format!("{s:?} is neither IP nor IP:PORT"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    // Handlers first, so a SIGTERM right after the pid file appears is a clean exit.
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(e), _) | (_, Err(e)) => {
            error!(error = %e, "cannot install signal handlers");
            return ExitCode::FAILURE;
        }
    };
    let upstreams = if cli.no_upstream {
        Upstreams::None
    } else if !cli.upstream.is_empty() {
        Upstreams::Fixed(cli.upstream.clone())
    } else {
        Upstreams::ResolvConf(cli.resolv_conf.clone())
    };
    let mut cfg = Config::new(cli.listen.clone(), cli.hosts.clone());
    cfg.domain = cli.domain.clone();
    cfg.upstreams = upstreams;
    cfg.upstream_timeout = Duration::from_millis(cli.upstream_timeout_ms);
    cfg.ttl = cli.ttl;
    cfg.poll_interval = Duration::from_millis(cli.poll_interval_ms.max(10));
    let server = match Server::bind(cfg).await {
        Ok(s) => s,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let _pidfile = match cli.pidfile.as_deref().map(PidFile::write).transpose() {
        Ok(p) => p,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let exit = server
        .run(async {
            tokio::select! {
                _ = term.recv() => info!("SIGTERM"),
                _ = int.recv() => info!("SIGINT"),
            }
        })
        .await;
    info!(?exit, "exiting");
    ExitCode::SUCCESS
}
