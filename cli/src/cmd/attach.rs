//! `berth attach`, and the attached sessions of `start -a` and `run -t`: the container's
//! stdio through its monitor's attach socket, our terminal in raw mode, its size and our
//! signals forwarded.

use std::os::fd::AsFd;

use berth_engine::{
    attach::{AttachEnd, AttachOptions, AttachStreams, DetachKeys, SplitOutput},
    container::ContainerRecord,
    Engine,
};
use clap::Args;
use nix::sys::signal::{SigSet, Signal};

use crate::GlobalOpts;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth attach web\n  berth attach --detach-keys ctrl-x,x shell\n\nDetach with Ctrl-P Ctrl-Q (or --detach-keys): the container keeps running."
)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Override the key sequence for detaching a container (default ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,
    /// Proxy received signals to the container
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub sig_proxy: bool,
    pub container: String,
}

pub fn attach(g: &GlobalOpts, a: AttachArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    engine.reconcile()?;
    let rec = engine.db()?.resolve(&a.container)?;
    if let Some(k) = &a.detach_keys {
        DetachKeys::parse(k)?;
    }
    let opts = AttachOptions {
        stdin: rec.config.interactive && !a.no_stdin,
        detach_keys: a.detach_keys.clone(),
        ..AttachOptions::default()
    };
    session(&engine, &rec, &opts, Session::Attach, a.sig_proxy)
}

/// What a session does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Session {
    /// Attach to a running container.
    Attach,
    /// Start the container with us attached from its first output.
    Start,
}

/// Puts our terminal in raw mode for as long as it lives (a container with a tty).
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        use nix::sys::termios;
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), termios::SetArg::TCSANOW, &raw);
        }
        RawTerminal(saved)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// Our terminal's size, if stdin is one.
fn term_size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize struct we own; fd 0 is only read.
    let r = unsafe { libc::ioctl(0, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

const PROXIED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// Runs an attached session; returns the exit code to exit with (the container's, or 0
/// after a detach).
pub fn session(
    engine: &Engine,
    rec: &ContainerRecord,
    opts: &AttachOptions,
    what: Session,
    sig_proxy: bool,
) -> anyhow::Result<u8> {
    let tty = rec.config.tty;
    // Signals are taken by a thread of ours (sigwait), so they are blocked in every
    // thread first: the mask is inherited by the threads spawned below.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    // With a tty, ^C reaches the container as a byte; without, SIGINT is proxied.
    if sig_proxy {
        for s in PROXIED {
            if !(tty && s == Signal::SIGINT) {
                mask.add(s);
            }
        }
    }
    mask.thread_block()?;
    let _raw = (tty && opts.stdin).then(RawTerminal::enter);
    let streams = AttachStreams {
        stdin: opts
            .stdin
            .then(|| Box::new(std::io::stdin()) as Box<dyn std::io::Read + Send>),
        output: Box::new(SplitOutput {
            stdout: Box::new(std::io::stdout()),
            stderr: Box::new(std::io::stderr()),
        }),
    };
    let id = rec.id.clone();
    // The signal thread: resizes the container's terminal with ours, proxies signals.
    {
        let config = engine.config.clone();
        let id = id.clone();
        std::thread::spawn(move || {
            let Ok(engine) = Engine::new(config) else {
                return;
            };
            let resize = |engine: &Engine| {
                if let Some((rows, cols)) = term_size() {
                    let _ = engine.resize(&id, rows, cols);
                }
            };
            if tty {
                // Once it runs: the monitor applies sizes to a started terminal only.
                for _ in 0..500 {
                    let live = engine
                        .db()
                        .and_then(|d| d.resolve(&id))
                        .is_ok_and(|r| r.state.is_live());
                    if live {
                        resize(&engine);
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            while let Ok(sig) = mask.wait() {
                if sig == Signal::SIGWINCH {
                    if tty {
                        resize(&engine);
                    }
                    continue;
                }
                if let Ok(rec) = engine.db().and_then(|d| d.resolve(&id)) {
                    let _ = engine.signal(&rec, sig as i32);
                }
            }
        });
    }
    let end = match what {
        Session::Attach => engine.attach(&rec.id, opts, streams)?,
        Session::Start => engine.start_attached(rec, opts, streams)?,
    };
    drop(_raw);
    Ok(match end {
        AttachEnd::Exited(code) => code.clamp(0, 255) as u8,
        AttachEnd::Detached => 0,
        AttachEnd::Closed => match engine.db()?.get(&id)? {
            Some(r) if !r.state.is_live() => r.exit_code.clamp(0, 255) as u8,
            _ => 0,
        },
    })
}
