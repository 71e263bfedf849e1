//! `berth serve`: the Docker Engine API on a unix socket (see `berth-api` and docs/api.md).

use clap::Args;

use crate::GlobalOpts;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth serve\n  berth serve -H unix:///tmp/berth.sock\n  DOCKER_HOST=unix:///run/berth/berth.sock docker ps"
)]
pub struct ServeArgs {
    /// Socket to listen on: unix:///path (tcp:// is refused: it needs mutual TLS)
    #[arg(
        short = 'H',
        long = "host",
        default_value = "unix:///run/berth/berth.sock",
        value_name = "ADDR"
    )]
    pub host: String,
    /// Group allowed to use the socket (mode 0660) [default: berth, when it exists]
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

pub fn serve(g: &GlobalOpts, a: ServeArgs) -> anyhow::Result<u8> {
    let listen = berth_api::parse_host(&a.host)?;
    let engine = g.engine()?;
    berth_api::serve(
        engine,
        &berth_api::ServeOptions {
            listen,
            group: a.group,
        },
    )?;
    Ok(0)
}
