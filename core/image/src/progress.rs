//! Progress reporting for long imports, loads and saves.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// Receives progress of a long operation. Byte counts are of the input
/// (import, load) or output (save) stream.
pub trait Progress: Send + Sync {
    /// A new task starts (`"importing rootfs"`, `"loading <file>"`), with its total if known.
    fn begin(&self, task: &str, total: Option<u64>);
    /// `bytes` more were processed.
    fn advance(&self, bytes: u64);
    /// The current task finished.
    fn end(&self);
}

/// Prints one plain line per task and roughly every 64 MiB (for logs / non-terminals).
pub struct PlainProgress<W: Write + Send> {
    state: Mutex<(W, String, u64, u64)>,
}

impl<W: Write + Send> PlainProgress<W> {
    pub fn new(out: W) -> Self {
        PlainProgress {
            state: Mutex::new((out, String::new(), 0, 0)),
        }
    }
}

const STEP: u64 = 64 << 20;

impl<W: Write + Send> Progress for PlainProgress<W> {
    fn begin(&self, task: &str, total: Option<u64>) {
        if let Ok(mut s) = self.state.lock() {
            s.1 = task.to_string();
            s.2 = 0;
            s.3 = 0;
            let line = match total {
                Some(t) => format!("{task}: {} MiB", t >> 20),
                None => format!("{task}..."),
            };
            let _ = writeln!(s.0, "{line}");
        }
    }
    fn advance(&self, bytes: u64) {
        if let Ok(mut s) = self.state.lock() {
            s.2 += bytes;
            if s.2 >= s.3 + STEP {
                s.3 = s.2;
                let line = format!("{}: {} MiB", s.1, s.2 >> 20);
                let _ = writeln!(s.0, "{line}");
            }
        }
    }
    fn end(&self) {
        if let Ok(mut s) = self.state.lock() {
            let line = format!("{}: done ({} MiB)", s.1, s.2 >> 20);
            let _ = writeln!(s.0, "{line}");
        }
    }
}

struct IndicatifProgress {
    bar: Mutex<Option<indicatif::ProgressBar>>,
}

impl Progress for IndicatifProgress {
    fn begin(&self, task: &str, total: Option<u64>) {
        let bar = match total {
            Some(t) => indicatif::ProgressBar::new(t).with_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            ),
            None => indicatif::ProgressBar::new_spinner().with_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg} {bytes} {bytes_per_sec}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            ),
        };
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_message(task.to_string());
        if let Ok(mut b) = self.bar.lock() {
            *b = Some(bar);
        }
    }
    fn advance(&self, bytes: u64) {
        if let Ok(b) = self.bar.lock() {
            if let Some(bar) = b.as_ref() {
                bar.inc(bytes);
            }
        }
    }
    fn end(&self) {
        if let Ok(mut b) = self.bar.lock() {
            if let Some(bar) = b.take() {
                bar.finish();
            }
        }
    }
}

/// An indicatif bar on stderr when it is a terminal, plain lines otherwise.
pub fn terminal_progress() -> Arc<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Arc::new(IndicatifProgress {
            bar: Mutex::new(None),
        })
    } else {
        Arc::new(PlainProgress::new(std::io::stderr()))
    }
}
