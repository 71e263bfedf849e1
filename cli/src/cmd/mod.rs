//! One module per group of commands.

pub mod system;

use crate::{Cli, Command};

/// Runs a command; returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Info(a) => system::info(g, a),
        Command::Plugin(c) => system::plugin(g, c),
        Command::Completion(a) => system::completion(a),
    }
}
