//! Per-blob progress of pulls and pushes: Docker-style lines for logs, or
//! indicatif bars on a terminal.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// What happened to one blob (or the whole transfer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransferEvent<'a> {
    /// The manifest of `reference` resolved to `digest`.
    Resolved { reference: &'a str, digest: &'a str },
    /// A blob transfer starts.
    BlobStart { digest: &'a str, size: u64 },
    /// `bytes` more bytes of a blob went over the wire.
    BlobProgress { digest: &'a str, bytes: u64 },
    /// A blob was transferred and verified.
    BlobDone { digest: &'a str },
    /// Nothing to transfer: the blob is already at the destination.
    BlobExists { digest: &'a str },
    /// Pushed by cross-repository mount from `from`.
    BlobMounted { digest: &'a str, from: &'a str },
}

/// Receives [`TransferEvent`]s; called from several tasks at once.
pub trait TransferProgress: Send + Sync {
    fn event(&self, event: &TransferEvent<'_>);
}

/// Which way blobs go (for the wording of lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Pull,
    Push,
}

fn short(digest: &str) -> &str {
    let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

/// Docker's non-terminal output: one line per blob state change.
pub struct PlainTransferProgress<W: Write + Send> {
    out: Mutex<W>,
    direction: Direction,
}

impl<W: Write + Send> PlainTransferProgress<W> {
    pub fn new(out: W, direction: Direction) -> Self {
        PlainTransferProgress {
            out: Mutex::new(out),
            direction,
        }
    }
}

impl<W: Write + Send> TransferProgress for PlainTransferProgress<W> {
    fn event(&self, event: &TransferEvent<'_>) {
        let pull = self.direction == Direction::Pull;
        let line = match event {
            TransferEvent::Resolved { reference, digest } => {
                format!("{reference}: resolved to {digest}")
            }
            TransferEvent::BlobStart { digest, .. } => {
                format!(
                    "{}: {}",
                    short(digest),
                    if pull {
                        "Pulling fs layer"
                    } else {
                        "Preparing"
                    }
                )
            }
            TransferEvent::BlobProgress { .. } => return,
            TransferEvent::BlobDone { digest } => {
                format!(
                    "{}: {}",
                    short(digest),
                    if pull { "Pull complete" } else { "Pushed" }
                )
            }
            TransferEvent::BlobExists { digest } => format!(
                "{}: {}",
                short(digest),
                if pull {
                    "Already exists"
                } else {
                    "Layer already exists"
                }
            ),
            TransferEvent::BlobMounted { digest, from } => {
                format!("{}: Mounted from {from}", short(digest))
            }
        };
        if let Ok(mut out) = self.out.lock() {
            let _ = writeln!(out, "{line}");
        }
    }
}

/// One indicatif bar per blob on stderr.
pub struct BarTransferProgress {
    multi: indicatif::MultiProgress,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    direction: Direction,
}

impl BarTransferProgress {
    pub fn new(direction: Direction) -> Self {
        BarTransferProgress {
            multi: indicatif::MultiProgress::with_draw_target(
                indicatif::ProgressDrawTarget::stderr(),
            ),
            bars: Mutex::new(HashMap::new()),
            direction,
        }
    }

    fn finish(&self, digest: &str, msg: String) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match bars.remove(digest) {
            Some(bar) => bar.finish_with_message(msg),
            None => {
                let _ = self.multi.println(format!("{}: {msg}", short(digest)));
            }
        }
    }
}

impl TransferProgress for BarTransferProgress {
    fn event(&self, event: &TransferEvent<'_>) {
        let pull = self.direction == Direction::Pull;
        match event {
            TransferEvent::Resolved { .. } => {}
            TransferEvent::BlobStart { digest, size } => {
                let bar = self.multi.add(indicatif::ProgressBar::new(*size));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix}: {msg:12} [{bar:30}] {bytes}/{total_bytes}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar.set_prefix(short(digest).to_string());
                bar.set_message(if pull { "Downloading" } else { "Pushing" });
                if let Ok(mut bars) = self.bars.lock() {
                    bars.insert(digest.to_string(), bar);
                }
            }
            TransferEvent::BlobProgress { digest, bytes } => {
                if let Ok(bars) = self.bars.lock() {
                    if let Some(b) = bars.get(*digest) {
                        b.inc(*bytes);
                    }
                }
            }
            TransferEvent::BlobDone { digest } => self.finish(
                digest,
                (if pull { "Pull complete" } else { "Pushed" }).to_string(),
            ),
            TransferEvent::BlobExists { digest } => self.finish(
                digest,
                (if pull {
                    "Already exists"
                } else {
                    "Layer already exists"
                })
                .to_string(),
            ),
            TransferEvent::BlobMounted { digest, from } => {
                self.finish(digest, format!("Mounted from {from}"))
            }
        }
    }
}

/// Bars on stderr when it is a terminal, Docker-style lines otherwise.
pub fn terminal_transfer_progress(direction: Direction) -> Arc<dyn TransferProgress> {
    if std::io::stderr().is_terminal() {
        Arc::new(BarTransferProgress::new(direction))
    } else {
        Arc::new(PlainTransferProgress::new(std::io::stderr(), direction))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_like_docker() {
        let buf: Vec<u8> = Vec::new();
        let p = PlainTransferProgress::new(buf, Direction::Pull);
        let d = format!("sha256:{}", "ab".repeat(32));
        p.event(&TransferEvent::BlobStart {
            digest: &d,
            size: 3,
        });
        p.event(&TransferEvent::BlobProgress {
            digest: &d,
            bytes: 3,
        });
        p.event(&TransferEvent::BlobDone { digest: &d });
        p.event(&TransferEvent::BlobExists { digest: &d });
        let out = String::from_utf8(p.out.into_inner().unwrap()).unwrap();
        assert_eq!(
            out,
            "abababababab: Pulling fs layer\nabababababab: Pull complete\nabababababab: Already exists\n"
        );
    }
}
