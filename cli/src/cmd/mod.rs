//! One module per group of commands.

pub mod attach;
pub mod build;
mod build_tty;
pub mod container;
pub mod events;
pub mod image;
pub mod network;
mod plugin_test;
pub mod registry;
pub mod serve;
pub mod system;

use crate::{Cli, Command};

/// Runs a command; returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let g = &cli.global;
    match cli.command {
        Command::Info(a) => system::info(g, a),
        Command::Plugin(c) => system::plugin(g, c),
        Command::Completion(a) => system::completion(a),
        Command::Images(a) => image::images(g, a),
        Command::Image(c) => image::image(g, c),
        Command::Import(a) => image::import(g, a),
        Command::Load(a) => image::load(g, a),
        Command::Pull(a) => registry::pull(g, a),
        Command::Push(a) => registry::push(g, a),
        Command::Login(a) => registry::login(g, a),
        Command::Logout(a) => registry::logout(g, a),
        Command::Save(a) => image::save(g, a),
        Command::Tag(a) => image::tag(g, a),
        Command::Rmi(a) => image::rmi(g, a),
        Command::History(a) => image::history(g, a),
        Command::Run(a) => container::run(g, a),
        Command::Create(a) => container::create(g, a),
        Command::Start(a) => container::start(g, a),
        Command::Stop(a) => container::stop(g, a),
        Command::Restart(a) => container::restart(g, a),
        Command::Kill(a) => container::kill(g, a),
        Command::Rm(a) => container::rm(g, a),
        Command::Ps(a) => container::ps(g, a),
        Command::Logs(a) => container::logs(g, a),
        Command::Wait(a) => container::wait(g, a),
        Command::Inspect(a) => container::inspect(g, a),
        Command::Top(a) => container::top(g, a),
        Command::Port(a) => container::port(g, a),
        Command::Rename(a) => container::rename(g, a),
        Command::Pause(a) => container::pause(g, a, true),
        Command::Unpause(a) => container::pause(g, a, false),
        Command::Update(a) => container::update(g, a),
        Command::Stats(a) => container::stats(g, a),
        Command::Container(c) => container::container(g, c),
        Command::Network(c) => network::network(g, c),
        Command::Build(a) => build::build(g, a),
        Command::System(c) => system::system(g, c),
        Command::Builder(c) => build::builder(g, c),
        Command::Exec(a) => container::exec(g, a),
        Command::Cp(a) => container::cp(g, a),
        Command::Events(a) => events::events(g, a),
        Command::Attach(a) => attach::attach(g, a),
        Command::Volume(c) => network::volume(g, c),
        Command::Serve(a) => serve::serve(g, a),
    }
}
