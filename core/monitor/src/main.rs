//! `berth-monitor ID`: the supervisor of one detached container (conmon's role).
//!
//! Started by the engine (`Engine::start_detached`) in its own session with the engine's
//! configuration in `BERTH_MONITOR_CONFIG` and a ready pipe as fd `BERTH_READY_FD`: it
//! starts the container, reports `ok` (or `err MESSAGE`) on the pipe, then owns the
//! container's stdio (the log, and the attach socket `containers/<id>/attach.sock`),
//! records the exit and applies `--rm` and `--restart`. A program of its own rather than
//! a subcommand of `berth`, so any frontend embedding the engine (a server, a test) can
//! start containers, and small: no command-line parser, no async runtime.

use std::{io::Write, os::fd::FromRawFd, process::ExitCode};

use berth_engine::{
    supervise::{IoMode, Ready},
    Config, Engine,
};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(id), None) = (args.next(), args.next()) else {
        eprintln!(
            "usage: berth-monitor CONTAINER-ID (started by berth, with BERTH_MONITOR_CONFIG and BERTH_READY_FD)"
        );
        return ExitCode::from(2);
    };
    // The ready pipe, taken once: fd 3 was handed over by the engine for this purpose.
    let mut ready_pipe: Option<std::fs::File> = std::env::var("BERTH_READY_FD")
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|fd| *fd > 2)
        // SAFETY: the engine handed this descriptor over for us alone (close-on-exec
        // cleared in the child only); nothing else in this process owns it.
        .map(|fd| unsafe { std::fs::File::from_raw_fd(fd) });
    // `listening` keeps the pipe open; `ok` or `err MESSAGE` is the last word.
    let mut ready = |r: Ready| {
        let msg = match r {
            Ready::Listening => {
                if let Some(p) = ready_pipe.as_mut() {
                    let _ = p.write_all(b"listening\n");
                }
                return;
            }
            Ready::Started => "ok\n".to_string(),
            Ready::Failed(e) => format!("err {}\n", e.replace('\n', " ")),
        };
        if let Some(mut p) = ready_pipe.take() {
            let _ = p.write_all(msg.as_bytes());
        }
    };
    let engine = match std::env::var("BERTH_MONITOR_CONFIG")
        .map_err(|_| {
            "BERTH_MONITOR_CONFIG is not set: berth-monitor is started by berth".to_string()
        })
        .and_then(|c| {
            serde_json::from_str::<Config>(&c).map_err(|e| format!("BERTH_MONITOR_CONFIG: {e}"))
        })
        .and_then(|c| Engine::new(c).map_err(|e| e.to_string()))
    {
        Ok(e) => e,
        Err(e) => {
            ready(Ready::Failed(e.clone()));
            eprintln!("berth-monitor: {e}");
            return ExitCode::from(125);
        }
    };
    let rec = match engine.db().and_then(|db| db.resolve(&id)) {
        Ok(r) => r,
        Err(e) => {
            ready(Ready::Failed(e.to_string()));
            return ExitCode::from(125);
        }
    };
    // `start -a`: the engine connects before the process starts.
    let mode = if std::env::var_os("BERTH_ATTACH_WAIT").is_some_and(|v| v == "1") {
        IoMode::AwaitAttach
    } else {
        IoMode::Detached
    };
    match engine.supervise(&rec, mode, Some(&mut ready)) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            ready(Ready::Failed(e.to_string()));
            ExitCode::from(125)
        }
    }
}
