//! Corpus: each `tests/corpus/NAME.Dockerfile` parses to `NAME.expected`: one
//! line per instruction (`line-end_line NAME json-of-kind`), then directives and
//! warnings; or, for files that must fail, the exact error message.
//! Set `BLESS=1` to rewrite the expected files after reviewing a change.

use std::fmt::Write;
use std::path::Path;

use berth_dockerfile::Dockerfile;

fn render(df: &Dockerfile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "directives {}",
        serde_json::to_string(&df.directives).unwrap()
    );
    for ins in df.instructions() {
        let _ = writeln!(
            out,
            "{}-{} {}",
            ins.line,
            ins.end_line,
            serde_json::to_string(&ins.kind).unwrap()
        );
    }
    for w in &df.warnings {
        let _ = writeln!(out, "warning {}: {}", w.line, w.message);
    }
    out
}

#[test]
fn corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "Dockerfile"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "corpus is missing files: {files:?}");
    let bless = std::env::var_os("BLESS").is_some();
    let mut failures = Vec::new();
    for f in files {
        let got = match Dockerfile::from_path(&f) {
            Ok(df) => render(&df),
            Err(e) => format!("error {e}\n"),
        };
        let expected_path = f.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        if want != got {
            failures.push(format!("{}:\n--- want\n{want}--- got\n{got}", f.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
