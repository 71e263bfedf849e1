//! The Dockerfile front end: parser, build planner, per-stage variable expansion
//! (`StageEnv::apply`), `.dockerignore` matching and the word expander, all fed from
//! one text. Errors are fine; panics and hangs are bugs.

#![no_main]

use std::collections::BTreeMap;

use berth_dockerfile::{
    expand, expand_words, plan_with, DockerIgnore, Dockerfile, Lexer, PlanOptions,
};
use libfuzzer_sys::fuzz_target;

fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("a b".into()),
        "EMPTY" => Some(String::new()),
        "P" => Some("/opt/app".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // Parser, then planner and expansion for every stage of the plan.
    if let Ok(df) = Dockerfile::parse("Dockerfile", text) {
        let _ = df.instructions().count();
        let _ = df.stage("0");
        let mut targets: Vec<Option<String>> = vec![None];
        targets.extend(df.stages.iter().filter_map(|s| s.name.clone()).map(Some));
        targets.truncate(4);
        for target in targets {
            let mut build_args = BTreeMap::new();
            build_args.insert("A".to_string(), "x y".to_string());
            build_args.insert("HTTP_PROXY".to_string(), "http://p".to_string());
            let opts = PlanOptions {
                target,
                build_args,
                platform: Some("linux/arm64/v8".into()),
            };
            let Ok(plan) = plan_with(&df, &opts) else {
                continue;
            };
            for stage in &plan.stages {
                let _ = stage.display_name();
                let mut env =
                    plan.stage_env(stage)
                        .with_base(&["PATH=/usr/bin", "X"], Some("rel/dir"), None);
                for ins in &stage.instructions {
                    let _ = env.apply(ins);
                }
                let _ = env.image_env();
                let _ = env.run_env();
                let _ = env.shell_command("echo hi");
                let _ = plan.resolve_from(stage.index, "0", stage.line, "COPY --from");
            }
        }
    }

    // The same text as a .dockerignore.
    if let Ok(ign) = DockerIgnore::parse(".dockerignore", text) {
        for p in [
            "a",
            "a/b/c",
            "node_modules/x.js",
            ".git",
            "Dockerfile",
            "dir/",
        ] {
            let _ = ign.is_excluded(p, false);
            let _ = ign.is_excluded(p, true);
            let _ = ign.may_reinclude_inside(p);
            let _ = ign.can_skip_dir(p);
        }
        for line in text.lines().take(8) {
            let _ = ign.is_excluded(line, false);
        }
    }

    // Each line as a word for the expander, with both escape characters.
    for line in text.lines().take(16) {
        let _ = expand(line, &lookup);
        let _ = expand_words(line, &lookup);
        let _ = Lexer::new('`').process_words(line, &lookup);
    }
});
