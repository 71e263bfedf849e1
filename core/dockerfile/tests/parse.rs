//! Table-driven parser tests with exact expected results and error strings.

use std::time::Duration;

use berth_dockerfile::*;

fn parse(text: &str) -> Dockerfile {
    match Dockerfile::parse("Dockerfile", text) {
        Ok(d) => d,
        Err(e) => panic!("parse failed: {e}\n{text}"),
    }
}

fn err(text: &str) -> String {
    match Dockerfile::parse("Dockerfile", text) {
        Ok(d) => panic!("expected an error for {text:?}, got {d:#?}"),
        Err(e) => e.to_string(),
    }
}

/// The single instruction after `FROM scratch`.
fn one(body: &str) -> Instruction {
    let df = parse(&format!("FROM scratch\n{body}"));
    assert_eq!(
        df.stages[0].instructions.len(),
        1,
        "{body}: {:#?}",
        df.stages[0].instructions
    );
    df.stages[0].instructions[0].clone()
}

fn kind(body: &str) -> InstructionKind {
    one(body).kind
}

fn shell(s: &str) -> ShellOrExec {
    ShellOrExec::Shell(s.into())
}
fn exec(v: &[&str]) -> ShellOrExec {
    ShellOrExec::Exec(v.iter().map(|s| s.to_string()).collect())
}
fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: v.into(),
    }
}
fn path(p: &str) -> CopySource {
    CopySource::Path(p.into())
}

pub const SEED: &str = "# 1️⃣ 빌드 전용 환경
FROM node:20 AS builder
WORKDIR /app
COPY . .
RUN npm install
RUN npm run build  # 👉 dist 폴더 생성(프로젝트 빌드)

# 2️⃣ 실행 환경 (NGINX)
FROM nginx:latest
COPY nginx.conf /etc/nginx/nginx.conf
COPY --from=builder /app/dist /usr/share/nginx/html # builder 단계에서 만들어진 /app/dist 폴더를 /usr/share/nginx/html로 복사
EXPOSE 80 # 컨테이너 80번 포트 열기
CMD [\"nginx\", \"-g\", \"daemon off;\"]
";

#[test]
fn seed_dockerfile_fails_like_docker_on_expose_comment() {
    assert_eq!(
        err(SEED),
        "Dockerfile:12: EXPOSE: invalid containerPort: # ('#' after the arguments is not a comment in a Dockerfile: put the comment on its own line)"
    );
}

#[test]
fn seed_dockerfile_with_comments_on_their_own_lines() {
    let fixed = SEED
        .replace("EXPOSE 80 # 컨테이너 80번 포트 열기", "# 컨테이너 80번 포트 열기\nEXPOSE 80")
        .replace(
            "/usr/share/nginx/html # builder 단계에서 만들어진 /app/dist 폴더를 /usr/share/nginx/html로 복사",
            "/usr/share/nginx/html",
        );
    let df = parse(&fixed);
    assert!(df.warnings.is_empty(), "{:?}", df.warnings);
    assert_eq!(df.stages.len(), 2);
    let b = &df.stages[0];
    assert_eq!(
        (b.name.as_deref(), b.base(), b.from.line),
        (Some("builder"), "node:20", 2)
    );
    let kinds: Vec<&InstructionKind> = b.instructions.iter().map(|i| &i.kind).collect();
    assert_eq!(kinds[0], &InstructionKind::Workdir("/app".into()));
    assert_eq!(
        kinds[1],
        &InstructionKind::Copy(Copy {
            sources: vec![path(".")],
            dest: ".".into(),
            ..Copy::default()
        })
    );
    assert_eq!(
        kinds[2],
        &InstructionKind::Run(Run {
            command: shell("npm install"),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None
        })
    );
    // The shell treats `# ...` as a comment, so it stays part of the command.
    match kinds[3] {
        InstructionKind::Run(r) => assert_eq!(
            r.command,
            shell("npm run build  # 👉 dist 폴더 생성(프로젝트 빌드)")
        ),
        other => panic!("{other:?}"),
    }
    let n = &df.stages[1];
    assert_eq!(
        (n.name.as_deref(), n.base(), n.from.line, n.index),
        (None, "nginx:latest", 9, 1)
    );
    let lines: Vec<usize> = n.instructions.iter().map(|i| i.line).collect();
    assert_eq!(lines, vec![10, 11, 13, 14]);
    assert_eq!(
        n.instructions[1].kind,
        InstructionKind::Copy(Copy {
            sources: vec![path("/app/dist")],
            dest: "/usr/share/nginx/html".into(),
            from: Some("builder".into()),
            ..Copy::default()
        })
    );
    assert_eq!(
        n.instructions[2].kind,
        InstructionKind::Expose(vec!["80".into()])
    );
    assert_eq!(
        n.instructions[3].kind,
        InstructionKind::Cmd(exec(&["nginx", "-g", "daemon off;"]))
    );

    let p = plan(&df, None, &Default::default()).unwrap();
    assert_eq!(p.stages.len(), 2);
    assert_eq!(p.stages[0].base, Base::Image("node:20".into()));
    assert_eq!(p.stages[1].base, Base::Image("nginx:latest".into()));
    assert_eq!(p.stages[1].depends_on, vec![0]);
    let p = plan(&df, Some("builder"), &Default::default()).unwrap();
    assert_eq!(p.stages.len(), 1);
}

#[test]
fn seed_trailing_comment_on_copy_is_arguments_with_warning() {
    let df = parse(&SEED.replace("EXPOSE 80 # 컨테이너 80번 포트 열기", "EXPOSE 80"));
    let copy = &df.stages[1].instructions[1];
    match &copy.kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.sources.len(), 9);
            assert_eq!(c.sources[2], path("#"));
            assert_eq!(c.dest, "복사");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(df.warnings.len(), 1);
    assert_eq!(df.warnings[0].line, 11);
    assert!(df.warnings[0]
        .message
        .starts_with("COPY: '#' after the arguments is not a comment"));
}

#[test]
fn directives_and_escape() {
    let df = parse("# syntax=docker/dockerfile:1\n# escape=`\nFROM scratch\nRUN echo a `\n  b\nENV P=C:\\dir\n");
    assert_eq!(df.directives.syntax.as_deref(), Some("docker/dockerfile:1"));
    assert_eq!(df.directives.escape, '`');
    let ins = &df.stages[0].instructions;
    assert_eq!(
        ins[0].kind,
        InstructionKind::Run(Run {
            command: shell("echo a   b"),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None
        })
    );
    assert_eq!((ins[0].line, ins[0].end_line), (4, 5));
    assert_eq!(ins[1].kind, InstructionKind::Env(vec![kv("P", "C:\\dir")]));

    // Directives only count at the very top: after a comment or blank line they are comments.
    let df = parse("# hello\n# escape=`\nFROM scratch\nRUN a \\\n b\n");
    assert_eq!(df.directives.escape, '\\');
    let df = parse("\n# escape=`\nFROM scratch\n");
    assert_eq!(df.directives.escape, '\\');
    let df = parse("FROM scratch\n# escape=`\n");
    assert_eq!(df.directives.escape, '\\');
    // Unknown directive ends directive parsing.
    let df = parse("# foo=bar\n# escape=`\nFROM scratch\n");
    assert_eq!(df.directives.escape, '\\');
    let df = parse("#check=skip=all\nFROM scratch\n");
    assert_eq!(df.directives.check.as_deref(), Some("skip=all"));
    let df = parse("\u{feff}# escape=`\nFROM scratch\n");
    assert_eq!(df.directives.escape, '`');
}

#[test]
fn continuations_comments_and_empty_lines() {
    let i = one(
        "RUN apt-get update && \\\n# a comment inside\n    apt-get install -y \\\n\n      curl\n",
    );
    assert_eq!(
        i.kind,
        kind("RUN apt-get update &&     apt-get install -y       curl")
    );
    assert_eq!((i.line, i.end_line), (2, 6));
    assert_eq!(
        i.original,
        "RUN apt-get update &&     apt-get install -y       curl"
    );
    let df = parse("FROM scratch\nRUN a \\\n\n b\n");
    assert_eq!(df.warnings.len(), 1);
    assert!(df.warnings[0]
        .message
        .starts_with("empty continuation line found in: RUN a  b"));
    // Backslash followed by blanks still continues; lower-case instruction names work.
    assert_eq!(kind("run a \\  \n b"), kind("RUN a  b"));
    // Continuation at end of file.
    assert_eq!(kind("RUN a \\"), kind("RUN a"));
    // Indented comments and instructions.
    let df = parse("  # c\n   FROM scratch\n\t  RUN x\n");
    assert_eq!(df.stages[0].instructions[0].line, 3);
    // CRLF line endings.
    assert_eq!(kind("RUN a \\\r\n b\r\n"), kind("RUN a  b"));
}

#[test]
fn json_and_shell_forms() {
    assert_eq!(
        kind("CMD [\"a\", \"b c\"]"),
        InstructionKind::Cmd(exec(&["a", "b c"]))
    );
    assert_eq!(kind("CMD [ ]"), InstructionKind::Cmd(exec(&[])));
    assert_eq!(
        kind("ENTRYPOINT [\"/x\"]"),
        InstructionKind::Entrypoint(exec(&["/x"]))
    );
    // Invalid JSON falls back to shell form.
    assert_eq!(
        kind("CMD [\"a\", 'b']"),
        InstructionKind::Cmd(shell("[\"a\", 'b']"))
    );
    assert_eq!(kind("CMD [a"), InstructionKind::Cmd(shell("[a")));
    assert_eq!(
        kind("CMD [\"a\"] x"),
        InstructionKind::Cmd(shell("[\"a\"] x"))
    );
    assert_eq!(
        kind("RUN [\"sh\", \"-c\", \"echo \\\"q\\\"\"]"),
        kind("RUN [\"sh\",\"-c\",\"echo \\\"q\\\"\"]")
    );
    assert_eq!(
        kind("SHELL [\"powershell\", \"-command\"]"),
        InstructionKind::Shell(vec!["powershell".into(), "-command".into()])
    );
    assert_eq!(
        kind("VOLUME [\"/a\", \"/b\"]"),
        InstructionKind::Volume(vec!["/a".into(), "/b".into()])
    );
    assert_eq!(
        kind("VOLUME /a /b"),
        InstructionKind::Volume(vec!["/a".into(), "/b".into()])
    );
}

#[test]
fn from_forms() {
    let df = parse(
        "ARG V=1\nARG A B=2\nfrom --platform=$BUILDPLATFORM alpine:$V as Build-1\nFROM build-1\n",
    );
    assert_eq!(df.global_args.len(), 2);
    assert_eq!(
        df.global_args[1].kind,
        InstructionKind::Arg(vec![
            ArgDecl {
                name: "A".into(),
                default: None
            },
            ArgDecl {
                name: "B".into(),
                default: Some("2".into())
            }
        ])
    );
    assert_eq!(
        df.stages[0].from.kind,
        InstructionKind::From {
            image: "alpine:$V".into(),
            name: Some("build-1".into()),
            platform: Some("$BUILDPLATFORM".into())
        }
    );
    assert_eq!(df.stage("BUILD-1").map(|s| s.index), Some(0));
    assert_eq!(df.stage("1").map(|s| s.index), Some(1));
}

#[test]
fn run_flags() {
    match kind("RUN --mount=type=cache,target=/root/.npm --mount=type=bind,from=deps,source=/x,target=/y --network=none --security=insecure npm ci") {
        InstructionKind::Run(r) => {
            assert_eq!(r.command, shell("npm ci"));
            assert_eq!(r.mounts.len(), 2);
            assert_eq!(r.mounts[0].kind, MountKind::Cache);
            assert_eq!(r.mounts[1].from.as_deref(), Some("deps"));
            assert_eq!(r.network, Some(NetworkMode::None));
            assert_eq!(r.security, Some(SecurityMode::Insecure));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn copy_add_flags() {
    assert_eq!(
        kind("COPY --from=0 --chown=1:2 --chmod=755 --link --parents --exclude=*.md --exclude=x a b /d/"),
        InstructionKind::Copy(Copy {
            sources: vec![path("a"), path("b")],
            dest: "/d/".into(),
            from: Some("0".into()),
            chown: Some("1:2".into()),
            chmod: Some("755".into()),
            link: true,
            parents: true,
            exclude: vec!["*.md".into(), "x".into()],
            ..Copy::default()
        })
    );
    assert_eq!(
        kind("ADD --keep-git-dir=true --checksum=sha256:abc --unpack=false --link=false [\"a b\", \"/c\"]"),
        InstructionKind::Add(Copy {
            sources: vec![path("a b")],
            dest: "/c".into(),
            keep_git_dir: true,
            checksum: Some("sha256:abc".into()),
            unpack: Some(false),
            json: true,
            ..Copy::default()
        })
    );
}

#[test]
fn env_label_arg() {
    assert_eq!(
        kind("ENV A B C"),
        InstructionKind::Env(vec![kv("A", "B C")])
    );
    assert_eq!(
        kind("ENV A=1 B=\"x y\" C=a\\ b D="),
        InstructionKind::Env(vec![
            kv("A", "1"),
            kv("B", "\"x y\""),
            kv("C", "a\\ b"),
            kv("D", "")
        ])
    );
    assert_eq!(
        kind("LABEL \"com.x\"=\"v 1\" b='2'"),
        InstructionKind::Label(vec![kv("\"com.x\"", "\"v 1\""), kv("b", "'2'")])
    );
    assert_eq!(
        kind("ARG a b=\"c d\""),
        InstructionKind::Arg(vec![
            ArgDecl {
                name: "a".into(),
                default: None
            },
            ArgDecl {
                name: "b".into(),
                default: Some("\"c d\"".into())
            }
        ])
    );
}

#[test]
fn simple_instructions() {
    assert_eq!(
        kind("WORKDIR /a b"),
        InstructionKind::Workdir("/a b".into())
    );
    assert_eq!(
        kind("USER app:app"),
        InstructionKind::User("app:app".into())
    );
    assert_eq!(
        kind("STOPSIGNAL SIGTERM"),
        InstructionKind::StopSignal("SIGTERM".into())
    );
    assert_eq!(
        kind("MAINTAINER Jane <j@x>"),
        InstructionKind::Maintainer("Jane <j@x>".into())
    );
    assert_eq!(
        kind("EXPOSE 80/tcp 53/udp 8000-8010 $P"),
        InstructionKind::Expose(vec![
            "80/tcp".into(),
            "53/udp".into(),
            "8000-8010".into(),
            "$P".into()
        ])
    );
}

#[test]
fn healthcheck() {
    assert_eq!(
        kind("HEALTHCHECK NONE"),
        InstructionKind::Healthcheck(Healthcheck::None)
    );
    let h = kind("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --start-interval=500ms --retries=3 CMD curl -f http://localhost/ || exit 1");
    assert_eq!(
        h,
        InstructionKind::Healthcheck(Healthcheck::Cmd {
            test: shell("curl -f http://localhost/ || exit 1"),
            interval: Some(Duration::from_secs(30)),
            timeout: Some(Duration::from_secs(90)),
            start_period: Some(Duration::from_secs(5)),
            start_interval: Some(Duration::from_millis(500)),
            retries: Some(3),
        })
    );
    match kind("HEALTHCHECK cmd [\"/bin/check\", \"-q\"]") {
        InstructionKind::Healthcheck(h) => {
            assert_eq!(h.test_vec(), vec!["CMD", "/bin/check", "-q"])
        }
        other => panic!("{other:?}"),
    }
    match kind("HEALTHCHECK CMD true") {
        InstructionKind::Healthcheck(h) => assert_eq!(h.test_vec(), vec!["CMD-SHELL", "true"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn onbuild() {
    assert_eq!(
        kind("ONBUILD copy --from=x a /b"),
        InstructionKind::Onbuild {
            expression: "COPY --from=x a /b".into(),
            trigger: Box::new(InstructionKind::Copy(Copy {
                sources: vec![path("a")],
                dest: "/b".into(),
                from: Some("x".into()),
                ..Copy::default()
            }))
        }
    );
}

fn heredoc(name: &str, content: &str, expand: bool, chomp: bool) -> Heredoc {
    Heredoc {
        name: name.into(),
        content: content.into(),
        expand,
        chomp,
        fd: 0,
    }
}

#[test]
fn heredocs() {
    let i = one("RUN <<EOF\necho $HOME\n  indented\nEOF\n");
    assert_eq!((i.line, i.end_line), (2, 5));
    match &i.kind {
        InstructionKind::Run(r) => {
            assert_eq!(r.command, shell("<<EOF"));
            assert_eq!(
                r.heredocs,
                vec![heredoc("EOF", "echo $HOME\n  indented\n", true, false)]
            );
            assert_eq!(
                r.script(),
                RunScript::File {
                    content: "echo $HOME\n  indented\n".into(),
                    shebang: false
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // <<- strips leading tabs, also before the terminator; quoted delimiter disables expansion.
    match kind("RUN <<-'END' cat > /a && cat <<\"B\" > /b\n\t\tx\n\tEND\ny\nB\n") {
        InstructionKind::Run(r) => {
            assert_eq!(
                r.heredocs,
                vec![
                    heredoc("END", "x\n", false, true),
                    heredoc("B", "y\n", false, false)
                ]
            );
            assert_eq!(
                r.script(),
                RunScript::Shell("<<-'END' cat > /a && cat <<\"B\" > /b\nx\nEND\ny\nB\n".into())
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        kind("COPY --chmod=755 <<EOF <<EOT /dest/\na\nEOF\nb\nEOT\n"),
        InstructionKind::Copy(Copy {
            sources: vec![
                CopySource::Heredoc(heredoc("EOF", "a\n", true, false)),
                CopySource::Heredoc(heredoc("EOT", "b\n", true, false)),
            ],
            dest: "/dest/".into(),
            chmod: Some("755".into()),
            ..Copy::default()
        })
    );
    // JSON form and quoted markers are not heredocs.
    assert_eq!(
        kind("RUN [\"echo\", \"<<EOF\"]"),
        InstructionKind::Run(Run {
            command: exec(&["echo", "<<EOF"]),
            heredocs: vec![],
            mounts: vec![],
            network: None,
            security: None
        })
    );
    match kind("RUN echo '<<EOF'") {
        InstructionKind::Run(r) => assert!(r.heredocs.is_empty()),
        other => panic!("{other:?}"),
    }
    // The next instruction after a heredoc gets the right line.
    let df = parse("FROM scratch\nRUN <<EOF\nx\nEOF\nUSER a\n");
    assert_eq!(df.stages[0].instructions[1].line, 5);
    // ONBUILD RUN with heredoc.
    match kind("ONBUILD RUN <<EOF\nhi\nEOF\n") {
        InstructionKind::Onbuild { trigger, .. } => match *trigger {
            InstructionKind::Run(r) => {
                assert_eq!(r.heredocs, vec![heredoc("EOF", "hi\n", true, false)])
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_messages() {
    let cases: &[(&str, &str)] = &[
        ("FROM scratch\n\n\nCOPPY a b\n", "Dockerfile:4: unknown instruction: COPPY (did you mean COPY?)"),
        ("FROM scratch\nfrobnicate x\n", "Dockerfile:2: unknown instruction: frobnicate"),
        ("FROM scratch\n\nCOPY --frm=x a b\n", "Dockerfile:3: unknown flag --frm for COPY (did you mean --from?)"),
        ("FROM scratch\nADD --from=x a b\n", "Dockerfile:2: unknown flag --from for ADD"),
        ("FROM scratch\nCOPY --from a b\n", "Dockerfile:2: missing a value on flag --from for COPY"),
        ("FROM scratch\nCOPY --from=a --from=b a b\n", "Dockerfile:2: duplicate flag --from for COPY"),
        ("FROM scratch\nCOPY --link=maybe a b\n", "Dockerfile:2: expecting boolean value for flag --link for COPY, not: maybe"),
        ("FROM scratch\nCMD --help\n", "Dockerfile:2: unknown flag --help for CMD"),
        ("FROM scratch\nRUN <<EOF\necho\n", "Dockerfile:2: RUN: unterminated heredoc: no line \"EOF\" ends the here-document started here"),
        ("RUN x\nFROM scratch\n", "Dockerfile:1: RUN is not allowed before the first FROM (only ARG may come before FROM)"),
        ("ARG x\n", "Dockerfile: no FROM instruction: a Dockerfile needs at least one build stage"),
        ("", "Dockerfile: no FROM instruction: a Dockerfile needs at least one build stage"),
        ("FROM scratch\nCOPY a\n", "Dockerfile:2: COPY requires at least two arguments, but only one was provided. Destination could not be determined"),
        ("FROM scratch\nCOPY\n", "Dockerfile:2: COPY requires at least two arguments"),
        ("FROM scratch\nRUN\n", "Dockerfile:2: RUN requires at least one argument"),
        ("FROM scratch\nWORKDIR\n", "Dockerfile:2: WORKDIR requires exactly one argument"),
        ("FROM scratch\nENV\n", "Dockerfile:2: ENV requires at least one argument"),
        ("FROM scratch\nENV A\n", "Dockerfile:2: ENV must have two arguments"),
        ("FROM scratch\nENV A=1 B\n", "Dockerfile:2: ENV: syntax error - can't find = in \"B\". Must be of the form: name=value"),
        ("FROM scratch\nLABEL\n", "Dockerfile:2: LABEL requires at least one argument"),
        ("FROM scratch\nEXPOSE\n", "Dockerfile:2: EXPOSE requires at least one argument"),
        ("FROM scratch\nEXPOSE 80/xyz\n", "Dockerfile:2: EXPOSE: invalid proto: xyz"),
        ("FROM scratch\nSTOPSIGNAL A B\n", "Dockerfile:2: STOPSIGNAL requires exactly one argument"),
        ("FROM scratch\nSHELL /bin/bash -c\n", "Dockerfile:2: SHELL requires the arguments to be in JSON form"),
        ("FROM scratch\nCMD [\"a\", 1]\n", "Dockerfile:2: CMD: when using JSON array syntax, arrays must be comprised of strings only"),
        ("FROM scratch\nVOLUME [\"\"]\n", "Dockerfile:2: VOLUME specified can not be an empty string"),
        ("FROM scratch\nHEALTHCHECK NONE x\n", "Dockerfile:2: HEALTHCHECK NONE takes no arguments"),
        ("FROM scratch\nHEALTHCHECK CMD\n", "Dockerfile:2: HEALTHCHECK: missing command after HEALTHCHECK CMD"),
        ("FROM scratch\nHEALTHCHECK RUN x\n", "Dockerfile:2: HEALTHCHECK: unknown type \"RUN\" (try CMD or NONE)"),
        ("FROM scratch\nHEALTHCHECK --interval=10 CMD x\n", "Dockerfile:2: HEALTHCHECK --interval: invalid duration \"10\" (e.g. 30s, 1m30s, 500ms)"),
        ("FROM scratch\nHEALTHCHECK --retries=-1 CMD x\n", "Dockerfile:2: HEALTHCHECK: --retries cannot be negative (-1)"),
        ("FROM scratch\nHEALTHCHECK --intervl=1s CMD x\n", "Dockerfile:2: unknown flag --intervl for HEALTHCHECK (did you mean --interval?)"),
        ("FROM scratch\nONBUILD ONBUILD RUN x\n", "Dockerfile:2: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        ("FROM scratch\nONBUILD FROM x\n", "Dockerfile:2: FROM isn't allowed as an ONBUILD trigger"),
        ("FROM scratch\nONBUILD maintainer x\n", "Dockerfile:2: MAINTAINER isn't allowed as an ONBUILD trigger"),
        ("FROM scratch\nONBUILD\n", "Dockerfile:2: ONBUILD requires at least one argument"),
        ("FROM a b\n", "Dockerfile:1: FROM requires either one or three arguments"),
        ("FROM a AS 1x\n", "Dockerfile:1: FROM: invalid name for build stage: \"1x\", name can't start with a number or contain symbols"),
        ("FROM a AS x\nFROM b AS X\n", "Dockerfile:2: duplicate stage name \"x\" (first defined at line 1)"),
        ("FROM a AS scratch\n", "Dockerfile:1: FROM: stage name \"scratch\" is reserved"),
        ("# escape=x\nFROM a\n", "Dockerfile:1: invalid escape token 'x' does not match ` or \\"),
        ("# escape=`\n# escape=\\\nFROM a\n", "Dockerfile:2: only one escape parser directive can be used"),
        ("FROM scratch\nRUN --network=bridge x\n", "Dockerfile:2: RUN: unsupported network mode \"bridge\" (use default, none or host)"),
        ("FROM scratch\nRUN --mount=type=cache x\n", "Dockerfile:2: RUN --mount=type=cache: a mount target is required (target=/path)"),
        ("FROM scratch\nCOPY a <<EOF\nx\nEOF\n", "Dockerfile:2: COPY: a heredoc cannot be used as the destination"),
        ("FROM scratch\nARG\n", "Dockerfile:2: ARG requires at least one argument"),
    ];
    for (text, want) in cases {
        assert_eq!(&err(text), want, "for {text:?}");
    }
}

#[test]
fn from_path_reads_and_names_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("Containerfile");
    std::fs::write(&p, "FROM scratch\nCOPPY a b\n").unwrap();
    assert_eq!(
        Dockerfile::from_path(&p).unwrap_err().to_string(),
        "Containerfile:2: unknown instruction: COPPY (did you mean COPY?)"
    );
    let missing = dir.path().join("nope");
    assert!(Dockerfile::from_path(&missing)
        .unwrap_err()
        .to_string()
        .starts_with("failed to read "));
}

/// BuildKit's continuation rule: an escape at the end continues the line unless it is
/// itself escaped (`\\`); a line of only the escape continues too.
#[test]
fn escaped_escape_at_end_of_line_ends_the_instruction() {
    let df = parse("FROM scratch\nENV P=c:\\\\dir\\\\\nENV Q=next\nENV R=a\\\n\\\nb\n");
    let envs: Vec<_> = df.stages[0]
        .instructions
        .iter()
        .map(|i| match &i.kind {
            InstructionKind::Env(kv) => kv[0].value.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(envs, ["c:\\\\dir\\\\", "next", "ab"]);
    // The same with the backtick escape of `# escape=`.
    let df = parse("# escape=`\nFROM scratch\nENV P=a``\nENV Q=b`\nc\n");
    assert_eq!(df.stages[0].instructions.len(), 2);
}

/// Heredoc markers as BuildKit reads them: blanks may follow `<<` (`<<  END`), and the
/// marker is never expanded (`<<$END` ends at a line `$END`).
#[test]
fn heredoc_markers_with_blanks_and_dollars() {
    match kind("RUN <<  END\nuname\nEND\n") {
        InstructionKind::Run(r) => {
            assert_eq!(r.heredocs, vec![heredoc("END", "uname\n", true, false)]);
            assert_eq!(
                r.script(),
                RunScript::File {
                    content: "uname\n".into(),
                    shebang: false
                }
            );
        }
        other => panic!("{other:?}"),
    }
    match kind("RUN <<$END\ntrue\n$END\n") {
        InstructionKind::Run(r) => {
            assert_eq!(r.heredocs, vec![heredoc("$END", "true\n", true, false)])
        }
        other => panic!("{other:?}"),
    }
    // `<<` alone, then a word, is a marker with blanks; `<` alone is a redirection.
    match kind("RUN wc -l < /etc/passwd") {
        InstructionKind::Run(r) => assert!(r.heredocs.is_empty()),
        other => panic!("{other:?}"),
    }
}
