//! `--format` of the list commands, as Docker's: `table` (the default table), `json` (one
//! JSON object per line), `table TEMPLATE` (a header row and aligned columns) or a Go
//! template run per item (berth_engine::template).

use anyhow::Context;
use berth_engine::template::{strip_table, tabulate, Template};
use serde_json::Value;

/// A parsed `--format` value.
pub enum Format {
    /// The command's own table.
    Table,
    /// One JSON object per line.
    Json,
    /// A Go template per item; `table` prints a header row and aligns the columns.
    Template { tmpl: Template, table: bool },
}

impl Format {
    pub fn parse(s: Option<&str>) -> anyhow::Result<Format> {
        Ok(match s.map(str::trim) {
            None | Some("") | Some("table") => Format::Table,
            Some("json") => Format::Json,
            Some(t) => {
                let (body, table) = strip_table(t);
                let tmpl = Template::parse(&body)
                    .with_context(|| format!("template parsing error in --format {t:?}"))?;
                Format::Template { tmpl, table }
            }
        })
    }

    /// True for the command's own table (it prints that itself).
    pub fn is_table(&self) -> bool {
        matches!(self, Format::Table)
    }

    /// Prints `items` (each the JSON context of one row) unless this is [`Format::Table`];
    /// `headers` names each field's column for `table TEMPLATE`.
    pub fn print(&self, items: &[Value], headers: &[(&str, &str)]) -> anyhow::Result<()> {
        use std::io::Write;
        let mut out = String::new();
        match self {
            Format::Table => {}
            Format::Json => {
                for i in items {
                    out.push_str(&serde_json::to_string(i)?);
                    out.push('\n');
                }
            }
            Format::Template { tmpl, table } => {
                let mut rows = Vec::new();
                if *table {
                    let head: serde_json::Map<String, Value> = headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                        .collect();
                    rows.push(tmpl.execute(&Value::Object(head)).context("--format")?);
                }
                for i in items {
                    rows.push(tmpl.execute(i).context("--format")?);
                }
                if *table {
                    out = tabulate(&rows);
                } else {
                    for r in rows {
                        out.push_str(&r);
                        out.push('\n');
                    }
                }
            }
        }
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(out.as_bytes()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
            _ => Ok(()),
        }
    }
}

/// `inspect -f`: runs the template on each document, one line each (Docker's).
pub fn print_inspect(docs: &[Value], format: Option<&str>) -> anyhow::Result<()> {
    match format {
        None | Some("") | Some("json") => {
            println!("{}", serde_json::to_string_pretty(docs)?);
        }
        Some(f) => {
            let tmpl = Template::parse(f)
                .with_context(|| format!("template parsing error in --format {f:?}"))?;
            for d in docs {
                let s = tmpl.execute(d).context("--format")?;
                println!("{s}");
            }
        }
    }
    Ok(())
}

/// Go's `strconv.Quote` (what Docker's `ps` does to COMMAND).
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Docker's `Ellipsis`: at most `n` characters, the last one `…` when cut.
pub fn ellipsis(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote(r#"sh -c "echo hi""#), r#""sh -c \"echo hi\"""#);
        assert_eq!(go_quote("a\\b\n"), r#""a\\b\n""#);
        assert_eq!(ellipsis("abcdef", 4), "abc…");
        assert_eq!(ellipsis("abc", 4), "abc");
    }

    #[test]
    fn formats() {
        assert!(Format::parse(None).unwrap().is_table());
        assert!(Format::parse(Some("table")).unwrap().is_table());
        assert!(matches!(Format::parse(Some("json")).unwrap(), Format::Json));
        assert!(matches!(
            Format::parse(Some("table {{.ID}}")).unwrap(),
            Format::Template { table: true, .. }
        ));
        let e = Format::parse(Some("{{nosuch}}")).err().unwrap();
        assert!(format!("{e:#}").contains("nosuch"));
    }
}
