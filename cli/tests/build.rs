//! `berth build` end to end: multi-stage, cache, .dockerignore, errors, reproducibility.

mod common;

use common::{mounts_under, Env};

fn write(dir: &std::path::Path, files: &[(&str, &str)]) {
    for (p, c) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, c).unwrap();
    }
}

const SEED_SHAPED: &str = r#"# a seed-shaped two-stage build on busybox
FROM busybox AS builder
WORKDIR /app
COPY . .
RUN mkdir -p dist && cp src/index.html dist/ && echo built > dist/info.txt
RUN test ! -e secret.txt

FROM busybox
COPY --from=builder /app/dist /usr/share/site
EXPOSE 80
CMD ["cat", "/usr/share/site/index.html"]
"#;

#[test]
fn multi_stage_build_cache_and_run() {
    let env = Env::new("build");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    write(
        &ctx,
        &[
            ("Dockerfile", SEED_SHAPED),
            ("src/index.html", "<h1>v1</h1>\n"),
            ("secret.txt", "must not be copied\n"),
            (".dockerignore", "secret.txt\n"),
        ],
    );
    let cold = env.run(&["build", "-t", "site:1", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&cold.stderr).to_string();
    assert!(cold.status.success(), "{err}");
    assert!(err.contains("[builder 3/5] COPY . ."), "{err}");
    assert!(err.contains("naming to site:1"), "{err}");
    assert_eq!(
        env.ok(&["run", "--rm", "--network", "none", "site:1"]),
        "<h1>v1</h1>\n"
    );
    // Warm: every layer step is CACHED.
    let warm = env.run(&["build", "-t", "site:1", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&warm.stderr).to_string();
    assert_eq!(err.matches("CACHED").count(), 4, "{err}");
    // One source file changes: the COPY that reads it and everything after rebuild.
    write(&ctx, &[("src/index.html", "<h1>v2</h1>\n")]);
    let o = env.run(&["build", "-q", "-t", "site:2", ctx.to_str().unwrap()]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout)
        .trim()
        .starts_with("sha256:"));
    assert_eq!(
        env.ok(&["run", "--rm", "--network", "none", "site:2"]),
        "<h1>v2</h1>\n"
    );
    // --target builds only the builder stage.
    let o = env.run(&[
        "build",
        "--target",
        "builder",
        "-t",
        "site:builder",
        ctx.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.success() && !err.contains("[2/4]") && !err.contains("COPY --from"),
        "{err}"
    );
    let h = env.ok(&["history", "site:1"]);
    assert!(
        h.contains("EXPOSE 80") && h.contains("COPY --from=builder"),
        "{h}"
    );
    assert!(mounts_under(&env.root).is_empty());
}

#[test]
fn failing_run_and_bad_dockerfiles_are_clear_errors() {
    let env = Env::new("buildbad");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo about to fail && exit 3\n",
        )],
    );
    let o = env.run(&["build", "-t", "bad:1", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success());
    assert!(
        err.contains("about to fail")
            && err.contains("exit code: 3")
            && err.contains("Dockerfile:2"),
        "{err}"
    );
    assert!(
        !env.ok(&["images"]).contains("bad"),
        "a failed build must not tag"
    );
    assert!(mounts_under(&env.root).is_empty());
    for (df, want) in [
        ("FROM busybox\nCOPPY a b\n", "unknown instruction: COPPY"),
        ("FROM busybox\nCOPY missing.txt /x\n", "missing.txt"),
        (
            "FROM busybox\nCOPY ../outside /x\n",
            "outside the build context",
        ),
        ("FROM busybox\nCOPY --from=nostage /a /b\n", "nostage"),
        // A loopback registry that refuses connections: the pull fails, nothing leaves the host.
        ("FROM 127.0.0.1:1/no-such-base:1\n", "no-such-base"),
    ] {
        write(&ctx, &[("Dockerfile", df)]);
        let o = env.run(&["build", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success() && err.contains(want), "{df}: {err}");
    }
}

#[test]
fn reproducible_with_source_date_epoch() {
    let env = Env::new("repro");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    write(&ctx, &[
        ("Dockerfile", "FROM busybox\nCOPY a.txt /a.txt\nRUN echo stable > /b.txt\nCMD [\"cat\", \"/a.txt\"]\n"),
        ("a.txt", "A\n"),
    ]);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let o = env
            .cmd(&["build", "--no-cache", "-q", ctx.to_str().unwrap()])
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        ids.push(String::from_utf8_lossy(&o.stdout).trim().to_string());
    }
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn copy_link_layers_survive_a_changed_base() {
    let env = Env::new("link");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nARG V=1\nRUN echo $V > /v\n\
                 COPY --link --chown=nobody f.txt /data/\nCOPY g.txt /g.txt\n\
                 CMD [\"sh\", \"-c\", \"cat /v /data/f.txt /g.txt; stat -c %u /data/f.txt\"]\n",
            ),
            ("f.txt", "F\n"),
            ("g.txt", "G\n"),
        ],
    );
    let layers = |tag: &str| -> Vec<String> {
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["image", "inspect", tag])).unwrap();
        v[0]["RootFS"]["Layers"]
            .as_array()
            .unwrap_or_else(|| panic!("no RootFS.Layers in {v}"))
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let c = ctx.to_str().unwrap();
    env.ok(&["build", "--build-arg", "V=1", "-t", "link:1", c]);
    // A different base below the COPY --link (the RUN reruns): the linked layer is reused
    // as it is; the plain COPY after it depends on its parent and runs again.
    let o = env.run(&["build", "--build-arg", "V=2", "-t", "link:2", c]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    let cached: Vec<&str> = err.lines().filter(|l| l.contains("CACHED")).collect();
    assert_eq!(cached.len(), 1, "{err}");
    let (l1, l2) = (layers("link:1"), layers("link:2"));
    assert_eq!(l1.len(), l2.len());
    let n = l1.len();
    assert_ne!(l1[n - 3], l2[n - 3], "the RUN layers differ");
    assert_eq!(
        l1[n - 2],
        l2[n - 2],
        "the COPY --link layer is the same blob"
    );
    // The result is the files of every layer; --chown=nobody was looked up in the stage.
    assert_eq!(
        env.ok(&["run", "--rm", "--network", "none", "link:2"]),
        "2\nF\nG\n65534\n"
    );
    assert!(mounts_under(&env.root).is_empty());
}

#[test]
fn healthcheck_and_onbuild_are_stored_and_triggered() {
    let env = Env::new("onbuild");
    env.import_busybox();
    let base = env.root.join("base");
    write(
        &base,
        &[(
            "Dockerfile",
            "FROM busybox\n\
             HEALTHCHECK --interval=5s --retries=2 CMD [\"true\"]\n\
             ONBUILD COPY greeting.txt /greeting.txt\n\
             ONBUILD RUN echo triggered >> /greeting.txt\n",
        )],
    );
    env.ok(&["build", "-q", "-t", "obbase", base.to_str().unwrap()]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "obbase"])).unwrap();
    let cfg = &inspect[0]["Config"];
    assert_eq!(
        cfg["Healthcheck"]["Test"],
        serde_json::json!(["CMD", "true"])
    );
    assert_eq!(cfg["Healthcheck"]["Interval"], 5_000_000_000i64);
    assert_eq!(cfg["Healthcheck"]["Retries"], 2);
    assert_eq!(
        cfg["OnBuild"],
        serde_json::json!([
            "COPY greeting.txt /greeting.txt",
            "RUN echo triggered >> /greeting.txt"
        ])
    );

    // A child build runs the triggers first, in its own context, and does not inherit them.
    let child = env.root.join("child");
    write(
        &child,
        &[
            (
                "Dockerfile",
                "FROM obbase\nHEALTHCHECK NONE\nCMD [\"cat\", \"/greeting.txt\"]\n",
            ),
            ("greeting.txt", "hello from the child context\n"),
        ],
    );
    let o = env.run(&["build", "-t", "obchild", child.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    assert!(err.contains("executing 2 build trigger(s)"), "{err}");
    assert_eq!(
        env.ok(&["run", "--rm", "--network", "none", "obchild"]),
        "hello from the child context\ntriggered\n"
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "obchild"])).unwrap();
    let cfg = &inspect[0]["Config"];
    // Not inherited: no triggers (Docker's inspect shows `"OnBuild": null`).
    assert!(cfg["OnBuild"].is_null(), "{cfg}");
    assert_eq!(cfg["Healthcheck"]["Test"], serde_json::json!(["NONE"]));

    // A trigger that fails names the FROM line.
    write(&child, &[("Dockerfile", "# comment\nFROM obbase\n")]);
    std::fs::remove_file(child.join("greeting.txt")).unwrap();
    let o = env.run(&["build", child.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success());
    assert!(err.contains("Dockerfile:2"), "{err}");
}

#[test]
fn tty_progress_collapses_steps_and_shows_a_failing_steps_output() {
    let env = Env::new("ttyview");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo hidden-when-ok\nRUN echo shown-on-failure; false\n",
        )],
    );
    let o = env.run(&["build", "--progress", "tty", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success());
    assert!(err.contains("✔ #2 [2/3] RUN echo hidden-when-ok"), "{err}");
    let output_line = |needle: &str| {
        err.lines()
            .any(|l| l.starts_with("  ") && l.contains(needle))
    };
    assert!(
        !output_line("hidden-when-ok"),
        "a finished step's output collapses: {err}"
    );
    assert!(
        err.contains("✘ #3 [3/3] RUN echo shown-on-failure; false"),
        "{err}"
    );
    assert!(output_line("shown-on-failure"), "{err}");
    assert!(err.contains("Dockerfile:3"), "{err}");
}

/// A build that must fail; returns its stderr.
fn build_fails(env: &Env, ctx: &std::path::Path, dockerfile: &str) -> String {
    write(ctx, &[("Dockerfile", dockerfile)]);
    let o = env.run(&["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{dockerfile}: {err}");
    err
}

#[test]
fn copy_sources_never_resolve_through_the_host() {
    assert!(
        std::path::Path::new("/etc/passwd").is_file(),
        "the host has /etc/passwd"
    );
    let env = Env::new("copysym");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    write(&ctx, &[("real/file", "real file\n"), ("sub/f", "sub f\n")]);
    std::os::unix::fs::symlink("/etc", ctx.join("linketc")).unwrap();
    std::os::unix::fs::symlink("./real", ctx.join("dirlink")).unwrap();
    std::os::unix::fs::symlink("/sub", ctx.join("abs")).unwrap();
    // A link to the host's /etc resolves to <context>/etc, which does not exist.
    for (src, want) in [
        ("linketc/passwd", "no such file in the build context"),
        ("linketc/shadow", "no such file in the build context"),
        ("lin*/passwd", "matches nothing in the build context"),
    ] {
        let err = build_fails(&env, &ctx, &format!("FROM busybox\nCOPY {src} /x\n"));
        assert!(
            err.contains("Dockerfile:2") && err.contains(want),
            "{src}: {err}"
        );
    }
    // A stage's (or image's) link to /etc is that stage's /etc, here without passwd.
    let stage = "FROM busybox AS st\n\
                 RUN rm /etc/passwd && ln -s /etc /etclink && mkdir /data \
                 && echo stage file > /data/f && ln -s /data /dlink\n";
    let err = build_fails(
        &env,
        &ctx,
        &format!("{stage}FROM busybox\nCOPY --from=st /etclink/passwd /x\n"),
    );
    assert!(
        err.contains("Dockerfile:4") && err.contains("no such file in the files of --from=st"),
        "{err}"
    );
    write(&ctx, &[("Dockerfile", stage)]);
    env.ok(&["build", "-q", "-t", "symstage:1", ctx.to_str().unwrap()]);
    let err = build_fails(
        &env,
        &ctx,
        "FROM busybox\nCOPY --from=symstage:1 /etclink/passwd /x\n",
    );
    assert!(
        err.contains("Dockerfile:2")
            && err.contains("no such file in the files of --from=symstage:1"),
        "{err}"
    );
    // What does work: a source link is copied as a link; links on the way that stay in
    // the context (or stage) are followed there. Metadata around a RUN is kept.
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "{stage}FROM busybox\nLABEL a=1\nCOPY linketc /link\nCOPY dirlink/file /y\n\
                 COPY abs/f /z\nCOPY --from=st /dlink/f /sf\nLABEL b=2\nUSER nobody\n\
                 RUN test \"$(id -u)\" = 65534\nLABEL c=3\n"
            ),
        )],
    );
    env.ok(&["build", "-q", "-t", "sym:1", ctx.to_str().unwrap()]);
    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "sym:1",
        "sh",
        "-c",
        "readlink /link; cat /y /z /sf",
    ]);
    assert_eq!(out, "/etc\nreal file\nsub f\nstage file\n");
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "sym:1"])).unwrap();
    let labels = &inspect[0]["Config"]["Labels"];
    assert_eq!(labels, &serde_json::json!({"a": "1", "b": "2", "c": "3"}));
}

#[test]
fn a_too_long_run_line_is_one_short_clear_error() {
    let env = Env::new("e2big");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    // One argument above the kernel's 128 KiB limit for a single string.
    let err = build_fails(
        &env,
        &ctx,
        &format!("FROM busybox\nRUN echo {}\n", "x".repeat(300_000)),
    );
    assert!(
        err.contains("Dockerfile:2") && err.contains("command line too long: 300"),
        "{}",
        &err[..err.len().min(3000)]
    );
    assert!(
        err.len() < 5000,
        "the command is echoed in full: {} bytes of stderr",
        err.len()
    );
}

#[test]
fn a_bad_stopsignal_fails_the_build_at_its_line() {
    let env = Env::new("stopsig");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    let err = build_fails(&env, &ctx, "FROM busybox\nLABEL a=b\nSTOPSIGNAL FOO\n");
    assert!(
        err.contains("Dockerfile:3") && err.contains("STOPSIGNAL") && err.contains("\"FOO\""),
        "{err}"
    );
    // Docker's real-time names are fine.
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM busybox\nSTOPSIGNAL SIGRTMIN+3\n",
    )
    .unwrap();
    env.ok(&["build", "-t", "rtstop:1", ctx.to_str().unwrap()]);
}

#[test]
fn shell_is_stored_and_inherited_by_child_images() {
    let env = Env::new("bshell");
    env.import_busybox();
    let base = env.root.join("base");
    // The shell writes its script argument ($0 of `sh -c`) to a file: a RUN that went
    // through `/bin/sh -c` instead would fail on an unknown command.
    write(
        &base,
        &[(
            "Dockerfile",
            "FROM busybox\nSHELL [\"/bin/sh\", \"-c\", \"echo \\\"$0\\\" >> /via-shell\"]\n",
        )],
    );
    env.ok(&["build", "-q", "-t", "shbase", base.to_str().unwrap()]);
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "shbase"])).unwrap();
    assert_eq!(
        inspect[0]["Config"]["Shell"],
        serde_json::json!(["/bin/sh", "-c", "echo \"$0\" >> /via-shell"])
    );
    let child = env.root.join("child");
    write(
        &child,
        &[(
            "Dockerfile",
            "FROM shbase AS one\nRUN from-image\nFROM one\nRUN from-stage\n\
             CMD [\"cat\", \"/via-shell\"]\n",
        )],
    );
    let o = env.run(&["build", "-t", "shchild", child.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        env.ok(&["run", "--rm", "--network", "none", "shchild"]),
        "from-image\nfrom-stage\n"
    );
}

#[test]
fn a_fully_cached_rebuild_gives_the_same_image() {
    let env = Env::new("bsame");
    env.import_busybox();
    let ctx = env.root.join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM busybox\nENV A=1\nCOPY a.txt /a.txt\nRUN echo b > /b.txt\n\
                 LABEL one=1 two=2 three=3 four=4\nCMD [\"cat\", \"/a.txt\"]\n",
            ),
            ("a.txt", "A\n"),
        ],
    );
    let build = || env.ok(&["build", "-q", "-t", "same:1", ctx.to_str().unwrap()]);
    let first = build();
    let second = build();
    assert_eq!(first, second);
    let images = env.ok(&["images"]);
    assert!(!images.contains("<none>"), "{images}");
    let h = env.ok(&["history", "same:1"]);
    assert!(h.contains("LABEL one=1"), "{h}");

    // scratch: the default PATH is in the image Env, where ENV extends it.
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM scratch\nENV PATH=/opt/bin:$PATH\nLABEL x=y\n",
        )],
    );
    let first = build();
    assert_eq!(first, build());
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["image", "inspect", "same:1"])).unwrap();
    assert_eq!(
        inspect[0]["Config"]["Env"],
        serde_json::json!([
            "PATH=/opt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        ])
    );
}
