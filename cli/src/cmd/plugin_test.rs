//! `berth plugin test PATH.so`: the conformance suite of the plugin's kind
//! (`berth-conformance`), run against any plugin file.

use std::path::Path;

use serde_json::json;

pub fn run(path: &Path, config: &str, only: Option<&str>, format: &str) -> anyhow::Result<u8> {
    // A failed check is a panic inside the case; the table reports it, so the default
    // hook's "thread panicked at" lines would only be noise. Restored afterwards.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let report = berth_conformance::run(path, config, only);
    std::panic::set_hook(hook);
    let report = report.map_err(anyhow::Error::msg)?;
    if report.outcomes.is_empty() {
        anyhow::bail!(
            "no {} case matches --only {:?}",
            report.kind.as_str(),
            only.unwrap_or("")
        );
    }
    if format == "json" {
        let cases: Vec<_> = report
            .outcomes
            .iter()
            .map(|o| match &o.result {
                Ok(()) => json!({"case": o.case, "result": "pass"}),
                Err(why) => json!({"case": o.case, "result": "fail", "reason": why}),
            })
            .collect();
        let v = json!({
            "path": report.path, "kind": report.kind.as_str(), "name": report.name,
            "version": report.version, "abi": report.abi,
            "passed": report.passed(), "total": report.outcomes.len(), "cases": cases,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report.table());
    }
    Ok(if report.all_passed() { 0 } else { 1 })
}
