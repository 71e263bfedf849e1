//! `berth`: build, run and manage containers, the Docker way.

mod cmd;
mod format;
mod table;

use std::{path::PathBuf, process::ExitCode};

use berth_engine::{Config, Engine, Overrides};
use clap::{Parser, Subcommand};

/// A container engine: build images from Dockerfiles, run them as isolated processes.
#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalOpts,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct GlobalOpts {
    /// State directory (images, layers, containers)
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Config file [default: /etc/berth/berth.toml]
    #[arg(long, global = true, env = "BERTH_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Storage plugin to use (overrides [storage] driver)
    #[arg(long, global = true, value_name = "NAME")]
    pub storage_driver: Option<String>,
    /// Isolator plugin to use: auto, cgroup1, cgroup2 (overrides [isolator] driver)
    #[arg(long, global = true, value_name = "NAME")]
    pub isolator: Option<String>,
    /// Network plugin to use (overrides [network] backend)
    #[arg(long, global = true, value_name = "NAME")]
    pub network_backend: Option<String>,
    /// Directory to search for plugins (repeatable; replaces the configured list)
    #[arg(long = "plugin-dir", global = true, value_name = "DIR")]
    pub plugin_dirs: Vec<PathBuf>,
    /// Log level (error, warn, info, debug, trace); RUST_LOG works too
    #[arg(long, global = true, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Print full diagnostics (e.g. abi_stable's layout reports)
    #[arg(long, global = true)]
    pub debug: bool,
}

impl GlobalOpts {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            config_file: self.config.clone(),
            root: self.root.clone(),
            storage_driver: self.storage_driver.clone(),
            network_backend: self.network_backend.clone(),
            isolator: self.isolator.clone(),
            plugin_dirs: self.plugin_dirs.clone(),
        }
    }

    /// The engine, after reclaiming what killed commands left behind (one directory read
    /// when there is nothing; see `berth_engine::debris`).
    pub fn engine(&self) -> anyhow::Result<Engine> {
        let engine = self.engine_as_is()?;
        engine.reclaim_debris();
        Ok(engine)
    }

    /// The engine without reclaiming leftovers (`system df` reports them).
    pub fn engine_as_is(&self) -> anyhow::Result<Engine> {
        let config = Config::from_env(&self.overrides())?;
        Ok(Engine::new(config)?)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the effective configuration, plugins and host facts
    Info(cmd::system::InfoArgs),
    /// List and inspect plugins
    #[command(subcommand)]
    Plugin(cmd::system::PluginCmd),
    /// Print a shell completion script: berth completion bash|zsh|fish
    Completion(cmd::system::CompletionArgs),
    /// List images
    Images(cmd::image::ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(cmd::image::ImageCmd),
    /// Import a rootfs tarball as an image
    Import(cmd::image::ImportArgs),
    /// Load images from a docker-archive or OCI archive
    Load(cmd::image::LoadArgs),
    /// Download an image from a registry
    Pull(cmd::registry::PullArgs),
    /// Upload an image to a registry
    Push(cmd::registry::PushArgs),
    /// Log in to a registry (credentials checked, then stored with mode 0600)
    Login(cmd::registry::LoginArgs),
    /// Log out from a registry
    Logout(cmd::registry::LogoutArgs),
    /// Save images to an archive (docker-archive, readable by docker and podman)
    Save(cmd::image::SaveArgs),
    /// Create a tag TARGET that refers to SOURCE
    Tag(cmd::image::TagArgs),
    /// Remove images
    Rmi(cmd::image::RmiArgs),
    /// Show the history of an image
    History(cmd::image::HistoryArgs),
    /// Create and start a container
    #[command(
        after_help = "Examples:\n  berth run --rm busybox echo hello\n  berth run -d --name site -p 8080:80 static-site\n  berth run -it busybox sh"
    )]
    Run(cmd::container::CreateArgs),
    /// Create a container without starting it
    Create(cmd::container::CreateArgs),
    /// Attach to a running container's input and output (detach: Ctrl-P Ctrl-Q)
    Attach(cmd::attach::AttachArgs),
    /// Start stopped containers
    Start(cmd::container::StartArgs),
    /// Stop running containers (stop signal, then SIGKILL after -t seconds)
    Stop(cmd::container::StopArgs),
    /// Restart containers
    Restart(cmd::container::StopArgs),
    /// Send a signal to containers
    Kill(cmd::container::KillArgs),
    /// Remove containers
    Rm(cmd::container::RmArgs),
    /// List containers
    Ps(cmd::container::PsArgs),
    /// Fetch the logs of a container
    Logs(cmd::container::LogsArgs),
    /// Block until containers stop, then print their exit codes
    Wait(cmd::container::WaitArgs),
    /// Display detailed information on containers, images, networks or volumes
    Inspect(cmd::container::InspectArgs),
    /// Display the running processes of a container
    Top(cmd::container::TopArgs),
    /// List port mappings of a container
    Port(cmd::container::PortArgs),
    /// Rename a container
    Rename(cmd::container::RenameArgs),
    /// Pause all processes within containers
    Pause(cmd::container::NamesArgs),
    /// Unpause all processes within containers
    Unpause(cmd::container::NamesArgs),
    /// Update resource limits of containers
    Update(cmd::container::UpdateArgs),
    /// Display resource usage statistics of containers
    Stats(cmd::container::StatsArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(cmd::container::ContainerCmd),
    /// Build an image from a Dockerfile
    Build(cmd::build::BuildArgs),
    /// Manage the build cache
    #[command(subcommand)]
    Builder(cmd::build::BuilderCmd),
    /// Copy files between a container and the host
    Cp(cmd::container::CpArgs),
    /// Run a command in a running container
    Exec(cmd::container::ExecArgs),
    /// Get real-time events (follows the events journal; --since/--until for past ones)
    Events(cmd::events::EventsArgs),
    /// Disk usage and cleanup
    #[command(subcommand)]
    System(cmd::system::SystemCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(cmd::network::NetworkCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(cmd::network::VolumeCmd),
    /// Answer the Docker Engine API on a unix socket (docker CLI, docker-compose, docker-py)
    Serve(cmd::serve::ServeArgs),
}

fn init_tracing(level: Option<&str>) {
    let filter = match level {
        Some(l) => tracing_subscriber::EnvFilter::new(l),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// An error and its causes on one line, `: `-separated, each message once.
///
/// Most error types in berth (and in the crates below it) write their cause into their
/// own message (`"{context}: {source}"`) *and* return it from `source()`, so that `{e}`
/// alone is a complete sentence wherever an error is formatted into another. Printing the
/// whole chain (anyhow's `{:#}`) then says every cause twice (`--env-file x: No such
/// file…: No such file…`). A cause whose text the line already contains adds nothing
/// and is left out; one that adds something (a bare `anyhow::Context`) is appended.
pub fn render_error(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if msg.is_empty() || out.contains(&msg) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&msg);
    }
    out
}

/// Docker's convention: 125 when berth itself failed.
const EXIT_ENGINE_ERROR: u8 = 125;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_tracing(cli.global.log_level.as_deref());
    match cmd::dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("berth: {}", render_error(&e));
            ExitCode::from(EXIT_ENGINE_ERROR)
        }
    }
}

/// Prints clap's message. Help and version are successes (exit 0); a bad flag or a missing
/// argument exits 125 like Docker's CLI, not clap's default 2 (see `words_after_the_image_belong_to_the_command`
/// in cli/tests/containers.rs).
fn usage_error(e: &clap::Error) -> ExitCode {
    // Printing to a closed stdout/stderr has nowhere to report to.
    let _ = e.print();
    // `berth` alone prints the help and succeeds, as `docker` does.
    let help_only = e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
    if e.use_stderr() && !help_only {
        ExitCode::from(EXIT_ENGINE_ERROR)
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use anyhow::Context;
    use clap::CommandFactory;

    fn enoent() -> std::io::Error {
        std::io::Error::from_raw_os_error(2)
    }

    /// No `: `-separated segment of the printed line appears twice.
    fn assert_no_repeats(line: &str) {
        let segs: Vec<&str> = line.split(": ").collect();
        for (i, s) in segs.iter().enumerate() {
            assert!(!segs[i + 1..].contains(s), "{s:?} repeated in {line:?}");
        }
    }

    #[test]
    fn printed_errors_say_each_cause_once() {
        use berth_engine::EngineError;
        let errors: Vec<anyhow::Error> = vec![
            // thiserror: `{context}: {source}` plus #[source].
            EngineError::io("--env-file /nonexistent", enoent()).into(),
            EngineError::plugin(
                "preparing the container's filesystem (storage driver vfs)",
                berth_abi::PluginError::new(berth_abi::ErrorKind::NotFound, "no such layer"),
            )
            .into(),
            // One error type wrapping another that carries its own source.
            EngineError::from(berth_image::ImageError::Io {
                op: "opening archive",
                path: "/x.tar".into(),
                source: enoent(),
            })
            .into(),
            // anyhow context on top of a sourced error: the context is kept.
            Err::<(), _>(EngineError::io("build context /nonexistent", enoent()))
                .context("berth build")
                .unwrap_err(),
            // A bare io error under a context: both parts are printed.
            Err::<(), _>(enoent())
                .context("reading the profile")
                .unwrap_err(),
        ];
        for e in &errors {
            let line = super::render_error(e);
            assert_no_repeats(&line);
            // Nothing is lost: every cause's own message is in the line.
            for cause in e.chain() {
                assert!(line.contains(&cause.to_string()), "{line:?} lost {cause}");
            }
        }
        assert_eq!(
            super::render_error(&errors[0]),
            "--env-file /nonexistent: No such file or directory (os error 2)"
        );
        assert_eq!(
            super::render_error(&errors[4]),
            "reading the profile: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}

#[cfg(test)]
mod argv_tests {
    use super::{Cli, Command};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("berth").chain(args.iter().copied()))
    }

    /// Everything after the image is the container's command, as in Docker, even words that
    /// look like berth's own flags (`-c` is `--cpu-shares`, `-e` is `--env`).
    #[test]
    fn run_and_create_stop_option_parsing_at_the_image() {
        for sub in ["run", "create"] {
            let cli = parse(&[
                sub,
                "-e",
                "A=1",
                "--entrypoint",
                "/bin/sh",
                "img",
                "-c",
                "echo hi",
                "-e",
                "x",
            ])
            .expect("parses");
            let a = match cli.command {
                Command::Run(a) | Command::Create(a) => a,
                other => panic!("{other:?}"),
            };
            assert_eq!(a.image(), "img");
            assert_eq!(a.env, ["A=1"]);
            assert_eq!(a.entrypoint.as_deref(), Some("/bin/sh"));
            assert_eq!(a.command(), ["-c", "echo hi", "-e", "x"]);
        }
    }

    #[test]
    fn exec_stops_option_parsing_at_the_container() {
        let cli = parse(&["exec", "-u", "nobody", "web", "-l", "-u", "-e"]).expect("parses");
        let Command::Exec(a) = cli.command else {
            panic!()
        };
        assert_eq!(a.container, "web");
        assert_eq!(a.user.as_deref(), Some("nobody"));
        assert_eq!(a.command, ["-l", "-u", "-e"]);
    }

    #[test]
    fn a_bad_flag_before_the_image_is_still_an_error() {
        assert!(parse(&["run", "--no-such-flag", "img"]).is_err());
        assert!(parse(&["exec", "--no-such-flag", "web", "ls"]).is_err());
        assert!(parse(&["run", "-c"]).is_err(), "--cpu-shares needs a value");
        assert!(parse(&["run"]).is_err(), "the image is required");
    }
}
