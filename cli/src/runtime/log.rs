//! runc's log: `--log FILE` with `--log-format json` gets one `{"level","msg","time"}`
//! object per line (podman/conmon and containerd's shim read the last error from it);
//! `text` gets `time="…" level=… msg="…"` lines. Errors also go to stderr.

use std::io::Write;

use crate::Global;

pub struct Logger {
    file: Option<std::path::PathBuf>,
    json: bool,
    debug: bool,
}

impl Logger {
    pub fn new(g: &Global) -> Logger {
        Logger {
            file: g.log.clone(),
            json: g.log_format == "json",
            debug: g.debug,
        }
    }

    fn write(&self, level: &str, msg: &str) {
        let Some(path) = &self.file else {
            return;
        };
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let line = if self.json {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        } else {
            format!("time={time:?} level={level} msg={msg:?}")
        };
        // The log is best effort: a failure to write it must not hide the error itself,
        // which also goes to stderr.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }

    pub fn error(&self, msg: &str) {
        self.write("error", msg);
        eprintln!("berth-runtime: {msg}");
    }

    pub fn warn(&self, msg: &str) {
        self.write("warning", msg);
        eprintln!("berth-runtime: warning: {msg}");
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.write("debug", msg);
            if self.file.is_none() {
                eprintln!("berth-runtime: {msg}");
            }
        }
    }
}
