//! Planning, ARG scoping and StageEnv expansion.

use std::collections::BTreeMap;

use berth_dockerfile::*;

fn df(text: &str) -> Dockerfile {
    Dockerfile::parse("Dockerfile", text).unwrap()
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn plan_err(text: &str, target: Option<&str>) -> String {
    plan(&df(text), target, &BTreeMap::new())
        .unwrap_err()
        .to_string()
}

const MULTI: &str = "ARG BASE=alpine
ARG TAG=3.19
FROM $BASE:$TAG AS base
RUN echo base
FROM base AS deps
RUN echo deps
FROM golang:1.22 AS unused
RUN echo unused
FROM scratch AS tools
COPY a /a
FROM base AS final
ARG STAGE_ARG
COPY --from=deps /x /x
RUN --mount=type=bind,from=tools,target=/t true
COPY --from=busybox:1.36 /bin/busybox /bin/
";

#[test]
fn selects_needed_stages_in_order() {
    let p = plan(
        &df(MULTI),
        None,
        &args(&[
            ("TAG", "3.20"),
            ("STAGE_ARG", "1"),
            ("NOPE", "x"),
            ("HTTP_PROXY", "p"),
        ]),
    )
    .unwrap();
    let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
    assert_eq!(idx, vec![0, 1, 3, 4]);
    assert_eq!(p.stages[0].base, Base::Image("alpine:3.20".into()));
    assert_eq!(p.stages[1].base, Base::Stage(0));
    assert_eq!(p.stages[2].base, Base::Scratch);
    assert_eq!(p.stages[3].depends_on, vec![0, 1, 3]);
    assert_eq!(p.target().map(|s| s.display_name()), Some("final".into()));
    assert_eq!(p.unused_build_args, vec!["NOPE".to_string()]);
    assert_eq!(
        p.resolve_from(4, "busybox:1.36", 15, "COPY --from")
            .unwrap(),
        Base::Image("busybox:1.36".into())
    );

    let p = plan(&df(MULTI), Some("DEPS"), &BTreeMap::new()).unwrap();
    let idx: Vec<usize> = p.stages.iter().map(|s| s.index).collect();
    assert_eq!(idx, vec![0, 1]);
    // STAGE_ARG is declared only in a stage the target does not need.
    let p = plan(&df(MULTI), Some("deps"), &args(&[("STAGE_ARG", "1")])).unwrap();
    assert_eq!(p.unused_build_args, vec!["STAGE_ARG".to_string()]);
}

#[test]
fn plan_errors() {
    assert_eq!(
        plan_err(MULTI, Some("finall")),
        "Dockerfile: target stage \"finall\" could not be found (did you mean final?); named stages: base, deps, unused, tools, final"
    );
    assert_eq!(
        plan_err("FROM a AS one\nFROM b\nCOPY --from=Bad_Name! /x /y\n", None),
        "Dockerfile:3: COPY --from=Bad_Name!: \"Bad_Name!\" is neither a build stage nor a valid image reference (repository name must be lowercase)"
    );
    assert_eq!(
        plan_err("FROM a AS one\nCOPY --from=two /x /y\nFROM b AS two\n", Some("one")),
        "Dockerfile:2: COPY --from=two: stage \"two\" is defined later; a stage can only use earlier stages"
    );
    assert_eq!(
        plan_err("FROM a AS one\nCOPY --from=one /x /y\n", None),
        "Dockerfile:2: COPY --from=one: circular reference: stage \"one\" cannot use itself"
    );
    assert_eq!(
        plan_err("FROM b AS x\nCOPY --from=0 /x /y\n", None),
        "Dockerfile:2: COPY --from=0: circular reference: a stage cannot use itself"
    );
    assert_eq!(
        plan_err("FROM a\nCOPY --from=5 /x /y\n", None),
        "Dockerfile:2: COPY --from=5: there is no stage 5 (the Dockerfile has 1 stages)"
    );
    assert_eq!(
        plan_err("FROM later AS first\nFROM alpine AS later\n", Some("first")),
        "Dockerfile:1: FROM later: stage \"later\" is defined later (line 2); a stage can only build on earlier stages"
    );
    assert_eq!(
        plan_err("FROM nginx AS nginx\n", None),
        "Dockerfile:1: FROM nginx: circular reference: stage \"nginx\" cannot use itself as its base (rename the stage to use the image nginx)"
    );
    assert_eq!(
        plan_err("ARG X\nFROM $X\n", None),
        "Dockerfile:2: FROM: base name ($X) should not be blank"
    );
    assert_eq!(
        plan_err("FROM Alpine\n", None),
        "Dockerfile:1: FROM: invalid image reference \"Alpine\": repository name must be lowercase"
    );
    assert_eq!(
        plan_err("FROM a AS first\nRUN --mount=from=zz,target=/z x\nFROM b AS zz\n", Some("first")),
        "Dockerfile:2: RUN --mount from=zz: stage \"zz\" is defined later; a stage can only use earlier stages"
    );
}

#[test]
fn typo_in_from_is_an_image_with_warning() {
    let p = plan(
        &df("FROM a AS builder\nFROM b\nCOPY --from=bulder /x /y\n"),
        None,
        &BTreeMap::new(),
    )
    .unwrap();
    assert_eq!(p.stages.len(), 1);
    assert_eq!(p.warnings.len(), 1);
    assert_eq!(
        p.warnings[0].message,
        "COPY --from=bulder: no stage has this name, so it is used as an image (did you mean stage builder?)"
    );
}

#[test]
fn copy_from_expands_args() {
    let text =
        "ARG SRC=one\nFROM a AS one\nFROM a AS two\nFROM b\nARG SRC\nCOPY --from=$SRC /x /y\n";
    let p = plan(&df(text), None, &BTreeMap::new()).unwrap();
    assert_eq!(
        p.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        vec![0, 2]
    );
    let p = plan(&df(text), None, &args(&[("SRC", "two")])).unwrap();
    assert_eq!(
        p.stages.iter().map(|s| s.index).collect::<Vec<_>>(),
        vec![1, 2]
    );
}

fn run_stage(text: &str, build_args: &[(&str, &str)]) -> (StageEnv, Vec<InstructionKind>) {
    let d = df(text);
    let p = plan(&d, None, &args(build_args)).unwrap();
    let st = p.target().unwrap();
    let mut env = p
        .stage_env(st)
        .with_base(&["PATH=/usr/bin", "HOME=/root"], Some("/srv"), None);
    let mut out = Vec::new();
    for ins in &st.instructions {
        out.push(env.apply(ins).unwrap());
    }
    (env, out)
}

#[test]
fn arg_scoping_and_env_shadowing() {
    let text = "ARG G=global\nARG ONLY_GLOBAL=x\nFROM scratch\nARG G\nARG L=local-$G\nENV E=$L U=$ONLY_GLOBAL\nARG E=from-arg\nENV P=$HTTP_PROXY\nLABEL a=$E b=\"$G $L\"\n";
    let (env, out) = run_stage(text, &[]);
    assert_eq!(env.lookup("G").as_deref(), Some("global"));
    assert_eq!(env.lookup("L").as_deref(), Some("local-global"));
    assert_eq!(
        env.lookup("U").as_deref(),
        Some(""),
        "global ARGs are not visible unless re-declared"
    );
    assert_eq!(
        env.lookup("E").as_deref(),
        Some("local-global"),
        "ENV shadows ARG"
    );
    assert_eq!(
        out[5],
        InstructionKind::Label(vec![
            KeyValue {
                key: "a".into(),
                value: "local-global".into()
            },
            KeyValue {
                key: "b".into(),
                value: "global local-global".into()
            }
        ])
    );
    assert_eq!(
        env.image_env(),
        vec!["PATH=/usr/bin", "HOME=/root", "E=local-global", "U=", "P="]
    );
    // build-arg overrides both the stage default and the global value; proxies need no ARG.
    let (env, _) = run_stage(
        text,
        &[
            ("G", "cli"),
            ("L", "cli-l"),
            ("HTTP_PROXY", "http://p:3128"),
        ],
    );
    assert_eq!(env.lookup("G").as_deref(), Some("cli"));
    assert_eq!(env.lookup("L").as_deref(), Some("cli-l"));
    assert_eq!(env.lookup("P").as_deref(), Some("http://p:3128"));
    let run_env = env.run_env();
    assert!(run_env.contains(&("HTTP_PROXY".into(), "http://p:3128".into())));
    assert!(run_env.contains(&("G".into(), "cli".into())));
    assert!(!env.image_env().iter().any(|e| e.starts_with("HTTP_PROXY=")));
}

#[test]
fn env_same_instruction_uses_previous_values() {
    let (env, _) = run_stage("FROM scratch\nENV A=1\nENV A=2 B=$A\n", &[]);
    assert_eq!(env.lookup("B").as_deref(), Some("1"));
    assert_eq!(env.lookup("A").as_deref(), Some("2"));
}

#[test]
fn where_expansion_applies() {
    let text = "FROM scratch
ENV D=/data N=app P=8080 S=SIGTERM U=nobody
WORKDIR $D
WORKDIR sub/../$N
COPY --chown=$U:$U --from=busybox ${N}.conf $D/
ADD <<EOF /etc/$N.txt
home=$HOME quoted='$N'
EOF
COPY <<'EOF' /raw
$N
EOF
EXPOSE $P ${P}/udp
VOLUME $D [\"x\"]
USER $U
STOPSIGNAL $S
RUN echo $N
CMD echo $N
ONBUILD RUN echo $N
SHELL [\"/bin/bash\", \"-c\"]
";
    let (env, out) = run_stage(text, &[]);
    assert_eq!(out[1], InstructionKind::Workdir("/data".into()));
    assert_eq!(out[2], InstructionKind::Workdir("/data/app".into()));
    assert_eq!(env.workdir(), "/data/app");
    match &out[3] {
        InstructionKind::Copy(c) => {
            assert_eq!(c.sources, vec![CopySource::Path("app.conf".into())]);
            assert_eq!(c.dest, "/data/");
            assert_eq!(c.chown.as_deref(), Some("nobody:nobody"));
            assert_eq!(c.from.as_deref(), Some("busybox"));
        }
        o => panic!("{o:?}"),
    }
    match &out[4] {
        InstructionKind::Add(c) => {
            assert_eq!(c.dest, "/etc/app.txt");
            match &c.sources[0] {
                CopySource::Heredoc(h) => assert_eq!(h.content, "home=/root quoted='app'\n"),
                o => panic!("{o:?}"),
            }
        }
        o => panic!("{o:?}"),
    }
    match &out[5] {
        InstructionKind::Copy(c) => match &c.sources[0] {
            CopySource::Heredoc(h) => assert_eq!(h.content, "$N\n"),
            o => panic!("{o:?}"),
        },
        o => panic!("{o:?}"),
    }
    assert_eq!(
        out[6],
        InstructionKind::Expose(vec!["8080".into(), "8080/udp".into()])
    );
    assert_eq!(
        out[7],
        InstructionKind::Volume(vec!["/data".into(), "[x]".into()])
    );
    assert_eq!(out[8], InstructionKind::User("nobody".into()));
    assert_eq!(out[9], InstructionKind::StopSignal("SIGTERM".into()));
    match &out[10] {
        InstructionKind::Run(r) => assert_eq!(r.command, ShellOrExec::Shell("echo $N".into())),
        o => panic!("{o:?}"),
    }
    assert_eq!(
        out[11],
        InstructionKind::Cmd(ShellOrExec::Shell("echo $N".into()))
    );
    match &out[12] {
        InstructionKind::Onbuild { expression, .. } => assert_eq!(expression, "RUN echo $N"),
        o => panic!("{o:?}"),
    }
    assert_eq!(env.shell(), ["/bin/bash", "-c"]);
    assert_eq!(env.shell_command("x"), vec!["/bin/bash", "-c", "x"]);
}

#[test]
fn expansion_errors_are_positioned() {
    let d = df("FROM scratch\nENV P=\"#\"\nEXPOSE $P\nUSER ${U:?must be set}\n");
    let p = plan(&d, None, &BTreeMap::new()).unwrap();
    let st = p.target().unwrap();
    let mut env = p.stage_env(st);
    env.apply(&st.instructions[0]).unwrap();
    assert_eq!(
        env.apply(&st.instructions[1]).unwrap_err().to_string(),
        "Dockerfile:3: EXPOSE: invalid containerPort: # ('#' after the arguments is not a comment in a Dockerfile: put the comment on its own line)"
    );
    assert_eq!(
        env.apply(&st.instructions[2]).unwrap_err().to_string(),
        "Dockerfile:4: USER: U: must be set"
    );
}

#[test]
fn platform_args_in_global_scope() {
    let d = df("FROM --platform=$BUILDPLATFORM golang AS b\nARG TARGETARCH\nENV A=$TARGETARCH\nFROM scratch\n");
    let p = plan_with(
        &d,
        &PlanOptions {
            target: Some("b".into()),
            platform: Some("linux/arm64".into()),
            ..Default::default()
        },
    )
    .unwrap();
    assert!(p.stages[0]
        .platform
        .as_deref()
        .is_some_and(|s| s.starts_with("linux/")));
    let mut env = p.stage_env(&p.stages[0]);
    for i in &p.stages[0].instructions {
        env.apply(i).unwrap();
    }
    assert_eq!(env.lookup("A").as_deref(), Some("arm64"));
}
