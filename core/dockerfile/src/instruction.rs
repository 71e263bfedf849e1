//! Typed Dockerfile instructions. Arguments are kept exactly as written
//! (unexpanded, quotes kept where Docker keeps them); [`crate::StageEnv`]
//! expands them.

use std::time::Duration;

use serde::Serialize;

/// One instruction with its position in the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// 1-based last line (continuations and heredoc bodies included).
    pub end_line: usize,
    /// The instruction text with continuations joined (heredoc bodies excluded).
    pub original: String,
    /// What the instruction says.
    pub kind: InstructionKind,
}

impl Instruction {
    /// The instruction keyword in upper case (`RUN`).
    pub fn name(&self) -> &'static str {
        self.kind.name()
    }
}

/// A command in shell form (`RUN echo hi`) or exec form (`RUN ["echo","hi"]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum ShellOrExec {
    /// Passed to the stage's SHELL as one string.
    Shell(String),
    /// Executed directly.
    Exec(Vec<String>),
}

/// A here-document attached to RUN, COPY or ADD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word with quotes removed (`EOF`).
    pub name: String,
    /// The body, one `\n` after each line; leading tabs removed for `<<-`.
    pub content: String,
    /// False when the delimiter was quoted (`<<"EOF"`, `<<'EOF'`): no expansion.
    pub expand: bool,
    /// `<<-`: leading tabs were stripped.
    pub chomp: bool,
    /// The file descriptor prefix (`3<<EOF`), 0 when absent.
    pub fd: u32,
}

/// A source of COPY/ADD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum CopySource {
    /// A path (or URL for ADD) as written.
    Path(String),
    /// An inline file from a heredoc (`COPY <<EOF /dest`).
    Heredoc(Heredoc),
}

/// `COPY` (and `ADD`, which adds a few fields).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Sources in order.
    pub sources: Vec<CopySource>,
    /// The destination.
    pub dest: String,
    /// `--from=` (stage name, index or image reference); COPY only.
    pub from: Option<String>,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude=` (repeatable).
    pub exclude: Vec<String>,
    /// ADD `--keep-git-dir`.
    pub keep_git_dir: bool,
    /// ADD `--checksum=`.
    pub checksum: Option<String>,
    /// ADD `--unpack=`.
    pub unpack: Option<bool>,
    /// Written in JSON form.
    pub json: bool,
}

/// Type of a `RUN --mount`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum MountKind {
    /// `type=bind` (the default).
    Bind,
    /// `type=cache`.
    Cache,
    /// `type=tmpfs`.
    Tmpfs,
    /// `type=secret`.
    Secret,
    /// `type=ssh`.
    Ssh,
}

/// `sharing=` of a cache mount.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum CacheSharing {
    /// `shared` (default).
    Shared,
    /// `private`.
    Private,
    /// `locked`.
    Locked,
}

/// One `RUN --mount=...`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// Mount type.
    pub kind: MountKind,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `from=`: stage name, index or image.
    pub from: Option<String>,
    /// Read-only (bind mounts default to read-only).
    pub readonly: bool,
    /// `id=`.
    pub id: Option<String>,
    /// `sharing=`.
    pub sharing: Option<CacheSharing>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
    /// `required`.
    pub required: bool,
    /// `size=` (tmpfs).
    pub size: Option<String>,
    /// `env=` (secret).
    pub env: Option<String>,
    /// The flag value as written.
    pub raw: String,
}

/// `RUN --network=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum NetworkMode {
    /// `default`.
    Default,
    /// `none`.
    None,
    /// `host`.
    Host,
}

/// `RUN --security=`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum SecurityMode {
    /// `sandbox`.
    Sandbox,
    /// `insecure`.
    Insecure,
}

/// `RUN`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    /// The command.
    pub command: ShellOrExec,
    /// Heredocs of the command line, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--mount` flags in order.
    pub mounts: Vec<Mount>,
    /// `--network`.
    pub network: Option<NetworkMode>,
    /// `--security`.
    pub security: Option<SecurityMode>,
}

/// What the executor runs for a RUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunScript {
    /// Exec form: run argv directly.
    Exec(Vec<String>),
    /// Run `SHELL + [script]` (heredoc bodies appended as real here-documents).
    Shell(String),
    /// `RUN <<EOF` alone: the body is a script file; if it starts with `#!`
    /// it is executed directly, otherwise passed to SHELL.
    File {
        /// The body.
        content: String,
        /// Starts with `#!`.
        shebang: bool,
    },
}

impl Run {
    /// How to execute this RUN.
    pub fn script(&self) -> RunScript {
        match &self.command {
            ShellOrExec::Exec(v) => RunScript::Exec(v.clone()),
            ShellOrExec::Shell(s) => {
                if self.heredocs.is_empty() {
                    return RunScript::Shell(s.clone());
                }
                if let [only] = self.heredocs.as_slice() {
                    // The whole command is the marker (`<<EOF`, `<<  EOF`): run the body
                    // as a script file, as BuildKit does.
                    if crate::parser::heredoc_word(s.trim()).is_some() {
                        return RunScript::File {
                            shebang: only.content.starts_with("#!"),
                            content: only.content.clone(),
                        };
                    }
                }
                let mut script = s.clone();
                script.push('\n');
                for h in &self.heredocs {
                    script.push_str(&h.content);
                    script.push_str(&h.name);
                    script.push('\n');
                }
                RunScript::Shell(script)
            }
        }
    }
}

/// `KEY=value` of ENV or LABEL, unexpanded (quotes kept).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key as written.
    pub key: String,
    /// The value as written.
    pub value: String,
}

/// One name of an ARG instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// `=default` as written (unexpanded), if any.
    pub default: Option<String>,
}

/// HEALTHCHECK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable the base image's check.
    None,
    /// `HEALTHCHECK [options] CMD ...`.
    Cmd {
        /// The test command (shell form becomes `CMD-SHELL`).
        test: ShellOrExec,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

impl Healthcheck {
    /// The OCI/Docker `Test` array: `["NONE"]`, `["CMD", ...]`, `["CMD-SHELL", s]`.
    pub fn test_vec(&self) -> Vec<String> {
        match self {
            Healthcheck::None => vec!["NONE".into()],
            Healthcheck::Cmd {
                test: ShellOrExec::Exec(v),
                ..
            } => std::iter::once("CMD".to_string())
                .chain(v.iter().cloned())
                .collect(),
            Healthcheck::Cmd {
                test: ShellOrExec::Shell(s),
                ..
            } => vec!["CMD-SHELL".into(), s.clone()],
        }
    }
}

/// One variant per instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum InstructionKind {
    /// `FROM [--platform=p] image [AS name]`.
    From {
        /// Base image, earlier stage name, or `scratch` (unexpanded).
        image: String,
        /// Stage name (lower-cased, as Docker does).
        name: Option<String>,
        /// `--platform`.
        platform: Option<String>,
    },
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(ShellOrExec),
    /// `ENTRYPOINT`.
    Entrypoint(ShellOrExec),
    /// `SHELL ["exe", "arg"]`.
    Shell(Vec<String>),
    /// `COPY`.
    Copy(Copy),
    /// `ADD` (uses the same fields as COPY; `from` is always `None`).
    Add(Copy),
    /// `WORKDIR path`.
    Workdir(String),
    /// `ENV k=v ...` / `ENV k v`.
    Env(Vec<KeyValue>),
    /// `ARG a[=b] ...`.
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v ...`.
    Label(Vec<KeyValue>),
    /// `USER user[:group]`.
    User(String),
    /// `EXPOSE port[/proto] ...` (words as written).
    Expose(Vec<String>),
    /// `VOLUME`.
    Volume(Vec<String>),
    /// `STOPSIGNAL sig`.
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `ONBUILD <instruction>`.
    Onbuild {
        /// The trigger text stored in the image (keyword upper-cased).
        expression: String,
        /// The parsed trigger.
        trigger: Box<InstructionKind>,
    },
    /// `MAINTAINER name` (deprecated; sets the `maintainer` label).
    Maintainer(String),
}

impl InstructionKind {
    /// The keyword in upper case.
    pub fn name(&self) -> &'static str {
        match self {
            InstructionKind::From { .. } => "FROM",
            InstructionKind::Run(_) => "RUN",
            InstructionKind::Cmd(_) => "CMD",
            InstructionKind::Entrypoint(_) => "ENTRYPOINT",
            InstructionKind::Shell(_) => "SHELL",
            InstructionKind::Copy(_) => "COPY",
            InstructionKind::Add(_) => "ADD",
            InstructionKind::Workdir(_) => "WORKDIR",
            InstructionKind::Env(_) => "ENV",
            InstructionKind::Arg(_) => "ARG",
            InstructionKind::Label(_) => "LABEL",
            InstructionKind::User(_) => "USER",
            InstructionKind::Expose(_) => "EXPOSE",
            InstructionKind::Volume(_) => "VOLUME",
            InstructionKind::StopSignal(_) => "STOPSIGNAL",
            InstructionKind::Healthcheck(_) => "HEALTHCHECK",
            InstructionKind::Onbuild { .. } => "ONBUILD",
            InstructionKind::Maintainer(_) => "MAINTAINER",
        }
    }
}

/// All instruction keywords.
pub const INSTRUCTIONS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A parsed `EXPOSE` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortSpec {
    /// First port.
    pub start: u16,
    /// Last port (== start for a single port).
    pub end: u16,
    /// `tcp`, `udp` or `sctp`.
    pub proto: String,
}

/// Parses `80`, `80/udp`, `8000-8010/tcp` like Docker's `nat.ParsePortSpec`.
pub fn parse_port(spec: &str) -> Result<PortSpec, String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    let bad = || format!("invalid containerPort: {ports}");
    let num = |s: &str| -> Result<u16, String> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<u16>().map_err(|_| bad())
    };
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (num(a)?, num(b)?),
        None => {
            let p = num(ports)?;
            (p, p)
        }
    };
    if end < start {
        return Err(format!(
            "invalid range specified for container port: {ports}"
        ));
    }
    Ok(PortSpec { start, end, proto })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(
            parse_port("80").unwrap(),
            PortSpec {
                start: 80,
                end: 80,
                proto: "tcp".into()
            }
        );
        assert_eq!(parse_port("53/UDP").unwrap().proto, "udp");
        assert_eq!(parse_port("8000-8010/sctp").unwrap().end, 8010);
        assert_eq!(parse_port("#").unwrap_err(), "invalid containerPort: #");
        assert_eq!(parse_port("80/xyz").unwrap_err(), "invalid proto: xyz");
        assert_eq!(
            parse_port("70000").unwrap_err(),
            "invalid containerPort: 70000"
        );
        assert!(parse_port("9-8").is_err());
    }

    fn run(cmd: &str, docs: &[(&str, &str)]) -> Run {
        Run {
            command: ShellOrExec::Shell(cmd.into()),
            heredocs: docs
                .iter()
                .map(|(n, c)| Heredoc {
                    name: (*n).into(),
                    content: (*c).into(),
                    expand: true,
                    chomp: false,
                    fd: 0,
                })
                .collect(),
            mounts: vec![],
            network: None,
            security: None,
        }
    }

    #[test]
    fn run_script() {
        assert_eq!(
            run("echo hi", &[]).script(),
            RunScript::Shell("echo hi".into())
        );
        assert_eq!(
            run("<<EOF", &[("EOF", "#!/bin/sh\necho a\n")]).script(),
            RunScript::File {
                content: "#!/bin/sh\necho a\n".into(),
                shebang: true
            }
        );
        assert_eq!(
            run("cat <<A >/a && cat <<B >/b", &[("A", "1\n"), ("B", "2\n")]).script(),
            RunScript::Shell("cat <<A >/a && cat <<B >/b\n1\nA\n2\nB\n".into())
        );
    }
}
