//! Registry commands: `pull`, `push`, `login`, `logout`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Context};
use berth_engine::registry::TransferRequest;
use clap::Args;

use crate::GlobalOpts;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth pull busybox\n  berth pull 127.0.0.1:5000/team/app:1.2\n  berth pull --platform linux/arm64 alpine@sha256:..."
)]
pub struct PullArgs {
    /// NAME[:TAG|@DIGEST]
    pub image: String,
    /// Platform to pick from a multi-platform image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Registry (host[:port]) to reach over plain HTTP or unverified TLS
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
    /// Suppress the progress output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth push 127.0.0.1:5000/site:1\n  berth push site:1 127.0.0.1:5000/team/site:1"
)]
pub struct PushArgs {
    /// Local image (name, ID)
    pub image: String,
    /// Destination (default: the image name itself)
    pub destination: Option<String>,
    /// Registry (host[:port]) to reach over plain HTTP or unverified TLS
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
    /// Suppress the progress output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// Registry (default: docker.io)
    pub registry: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry (host[:port]) to reach over plain HTTP or unverified TLS
    #[arg(long = "insecure-registry")]
    pub insecure_registry: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    /// Registry (default: docker.io)
    pub registry: Option<String>,
}

pub fn pull(g: &GlobalOpts, a: PullArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let req = TransferRequest {
        insecure: a.insecure_registry,
        platform: a.platform,
        quiet: a.quiet,
    };
    let r = engine.pull(&a.image, &req)?;
    if a.quiet {
        println!("{}", r.reference);
    } else {
        println!("Digest: {}", r.digest);
        if r.up_to_date {
            println!("Status: Image is up to date for {}", r.reference);
        } else {
            println!("Status: Downloaded newer image for {}", r.reference);
        }
        println!("{}", r.reference);
    }
    Ok(0)
}

pub fn push(g: &GlobalOpts, a: PushArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let dest = a.destination.clone().unwrap_or_else(|| a.image.clone());
    let req = TransferRequest {
        insecure: a.insecure_registry,
        platform: None,
        quiet: a.quiet,
    };
    let r = engine.push(&a.image, &dest, &req)?;
    if !a.quiet {
        println!("{}: digest: {} size: {}", r.reference, r.digest, r.size);
    }
    Ok(0)
}

fn prompt(what: &str) -> anyhow::Result<String> {
    eprint!("{what}: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

pub fn login(g: &GlobalOpts, a: LoginArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let registry = a.registry.clone().unwrap_or_else(|| "docker.io".into());
    let user = match a.username {
        Some(u) => u,
        None if std::io::stdin().is_terminal() => prompt("Username")?,
        None => bail!("berth login: --username is required when standard input is not a terminal"),
    };
    let password = match (a.password, a.password_stdin) {
        (Some(_), true) => {
            bail!("berth login: --password and --password-stdin are mutually exclusive")
        }
        (Some(p), false) => {
            eprintln!(
                "WARNING! Using --password on the command line is insecure; use --password-stdin."
            );
            p
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut s)
                .context("reading the password from standard input")?;
            s.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => {
            if !std::io::stdin().is_terminal() {
                bail!("berth login: use --password-stdin when standard input is not a terminal");
            }
            let mut term = nix::sys::termios::tcgetattr(std::io::stdin())?;
            let saved = term.clone();
            term.local_flags.remove(nix::sys::termios::LocalFlags::ECHO);
            nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &term,
            )?;
            let p = prompt("Password");
            nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                &saved,
            )?;
            eprintln!();
            p?
        }
    };
    if password.is_empty() {
        bail!("berth login: the password is empty");
    }
    let reg = engine.login(&registry, &user, &password, &a.insecure_registry)?;
    println!(
        "Login Succeeded ({reg}; credentials in {})",
        engine.auth_file().display()
    );
    Ok(0)
}

pub fn logout(g: &GlobalOpts, a: LogoutArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let registry = a.registry.clone().unwrap_or_else(|| "docker.io".into());
    if engine.logout(&registry)? {
        println!("Removing login credentials for {registry}");
    } else {
        println!("Not logged in to {registry}");
    }
    Ok(0)
}
