//! The TTY view of `berth build` (stderr is a terminal, no `--progress=plain`): one live
//! line per step with a spinner and its elapsed time; the running step's last output line
//! beside it; finished steps collapse to one line (`✔`, `CACHED`). A failing step's whole
//! output is printed, as BuildKit does. It renders the engine's plain progress lines
//! (`#N [stage i/n] INSTRUCTION`, `#N <output>`, `#N DONE 0.1s`, `#N CACHED 0.0s`).

use std::time::Duration;

use berth_engine::build::BuildOutput;
use indicatif::{ProgressBar, ProgressStyle};

pub struct TtyOutput {
    bar: Option<ProgressBar>,
    header: String,
    /// Output of the running step, kept to show it in full if the step fails.
    lines: Vec<String>,
}

impl TtyOutput {
    pub fn new() -> TtyOutput {
        TtyOutput {
            bar: None,
            header: String::new(),
            lines: Vec::new(),
        }
    }

    fn start(&mut self, header: &str) {
        self.finish(None);
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner:.cyan} {prefix} {elapsed:>3} {wide_msg:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(header.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        self.bar = Some(bar);
        self.header = header.to_string();
        self.lines.clear();
    }

    /// Collapses the running step to one line.
    fn finish(&mut self, status: Option<&str>) {
        if let Some(bar) = self.bar.take() {
            let line = match status {
                Some(s) if s.starts_with("CACHED") => format!("  {} CACHED", self.header),
                Some(s) => format!("✔ {} {}", self.header, s.trim_start_matches("DONE ")),
                None => format!("✔ {}", self.header),
            };
            bar.finish_and_clear();
            eprintln!("{line}");
        }
    }

    /// After a failed build: the running step's output in full, then the error follows.
    pub fn fail(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            eprintln!("✘ {}", self.header);
            for l in &self.lines {
                eprintln!("  {l}");
            }
        }
    }
}

impl BuildOutput for TtyOutput {
    fn line(&mut self, text: &str) {
        let Some(rest) = text.strip_prefix('#') else {
            // WARNING lines and the like.
            match &self.bar {
                Some(b) => b.println(text),
                None => eprintln!("{text}"),
            }
            return;
        };
        let body = rest.split_once(' ').map(|(_, b)| b).unwrap_or_default();
        if body.starts_with('[') || body == "exporting to image" {
            self.start(text);
        } else if body.starts_with("DONE ") || body.starts_with("CACHED") {
            self.finish(Some(body));
        } else {
            if let Some(b) = &self.bar {
                b.set_message(body.to_string());
            } else {
                eprintln!("{text}");
            }
            self.lines.push(body.to_string());
        }
    }
}

impl Drop for TtyOutput {
    fn drop(&mut self) {
        self.finish(None);
    }
}
