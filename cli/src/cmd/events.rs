//! `berth events`: follows the events journal of the root.

use std::io::Write;

use berth_engine::events::{Event, EventFilter, EventsOptions};
use clap::Args;

use crate::GlobalOpts;

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  berth events\n  berth events --since 10m --until 0s --filter type=container --filter event=die\n  berth events --format '{{json .}}'"
)]
pub struct EventsArgs {
    /// Show events created since this time (RFC 3339, Unix seconds or a duration like 10m)
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this time (same forms); without it, follow
    #[arg(long)]
    pub until: Option<String>,
    /// Filter (KEY=VALUE: container, event, image, label, network, type, volume, scope, daemon)
    #[arg(short, long = "filter")]
    pub filter: Vec<String>,
    /// Output: the default text line, `json` or `{{json .}}`, or a field such as `{{.Action}}`
    #[arg(long)]
    pub format: Option<String>,
}

/// Docker's line: `TIME TYPE ACTION ID (k=v, …)`, the time in local RFC 3339 with nanoseconds.
fn text_line(e: &Event) -> String {
    let t = e
        .datetime()
        .with_timezone(&chrono::Local)
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, false);
    let attrs: Vec<String> = e
        .actor
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut line = format!("{t} {} {} {}", e.kind, e.action, e.actor.id);
    if !attrs.is_empty() {
        line.push_str(&format!(" ({})", attrs.join(", ")));
    }
    line
}

pub fn events(g: &GlobalOpts, a: EventsArgs) -> anyhow::Result<u8> {
    let engine = g.engine()?;
    let now = chrono::Utc::now();
    let time = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| berth_engine::parse::parse_log_time(flag, s, now))
            .transpose()
    };
    let opts = EventsOptions {
        since: time("--since", &a.since)?,
        until: time("--until", &a.until)?,
        filters: EventFilter::parse_pairs(&a.filter)?,
    };
    // A Go template is parsed once, before the first event.
    let template = match a.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => None,
        Some(f) => Some(
            berth_engine::template::Template::parse(f)
                .map_err(|e| anyhow::anyhow!("template parsing error in --format {f:?}: {e}"))?,
        ),
    };
    let stream = engine.events(&opts)?;
    let stdout = std::io::stdout();
    for e in stream {
        let e = e?;
        let line = match (&template, a.format.as_deref().map(str::trim)) {
            (Some(t), _) => t.execute(&serde_json::to_value(&e)?)?,
            (None, Some("json")) => serde_json::to_string(&e)?,
            (None, _) => text_line(&e),
        };
        let mut out = stdout.lock();
        // A reader that went away (`| head -1`) ends the stream without an error.
        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
            return Ok(0);
        }
    }
    Ok(0)
}
