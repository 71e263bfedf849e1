//! Per-stage ENV/ARG/SHELL/WORKDIR tracking and instruction expansion.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ignore::clean_path;
use crate::instruction::*;
use crate::shell::{ExpandError, Lexer};
use crate::Error;

/// Build args usable without an `ARG` declaration (Docker's predefined args).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The environment of one stage while its instructions are executed in order.
///
/// ```
/// # use berth_dockerfile::*;
/// let df = Dockerfile::parse("Dockerfile", "FROM scratch\nARG V=1\nENV P=/opt/$V\nWORKDIR $P\n").unwrap();
/// let plan = plan(&df, None, &Default::default()).unwrap();
/// let mut env = plan.stage_env(&plan.stages[0]);
/// for ins in &plan.stages[0].instructions {
///     let _expanded = env.apply(ins).unwrap();
/// }
/// assert_eq!(env.workdir(), "/opt/1");
/// assert_eq!(env.lookup("P").as_deref(), Some("/opt/1"));
/// ```
#[derive(Clone, Debug)]
pub struct StageEnv {
    file: Arc<str>,
    escape: char,
    env: Vec<(String, String)>,
    args: Vec<(String, Option<String>)>,
    build_args: Arc<BTreeMap<String, String>>,
    globals: Arc<BTreeMap<String, Option<String>>>,
    shell: Vec<String>,
    workdir: String,
}

impl StageEnv {
    /// A fresh stage environment. `globals` are the resolved global ARGs
    /// (declared before the first FROM, plus automatic platform args): a stage
    /// sees them only after re-declaring them with `ARG NAME`.
    pub fn new(
        file: &str,
        escape: char,
        build_args: Arc<BTreeMap<String, String>>,
        globals: Arc<BTreeMap<String, Option<String>>>,
    ) -> StageEnv {
        StageEnv {
            file: Arc::from(file),
            escape,
            env: Vec::new(),
            args: Vec::new(),
            build_args,
            globals,
            shell: vec!["/bin/sh".into(), "-c".into()],
            workdir: "/".into(),
        }
    }

    /// Seeds the environment from the base: image config `Env` entries
    /// (`K=V`), its working directory and (for a stage base) its SHELL.
    pub fn with_base<S: AsRef<str>>(
        mut self,
        env: &[S],
        workdir: Option<&str>,
        shell: Option<Vec<String>>,
    ) -> StageEnv {
        for kv in env {
            let kv = kv.as_ref();
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            self.set_env(k.to_string(), v.to_string());
        }
        if let Some(w) = workdir.filter(|w| !w.is_empty()) {
            self.workdir = clean_path(w);
        }
        if let Some(s) = shell {
            self.shell = s;
        }
        self
    }

    fn set_env(&mut self, k: String, v: String) {
        match self.env.iter_mut().find(|(n, _)| *n == k) {
            Some(slot) => slot.1 = v,
            None => self.env.push((k, v)),
        }
    }

    /// The value of a variable for expansion: ENV first (ENV shadows ARG), then
    /// ARGs declared in this stage, then predefined proxy args given as build args.
    pub fn lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.env.iter().find(|(k, _)| k == name) {
            return Some(v.clone());
        }
        if let Some((_, v)) = self.args.iter().rev().find(|(k, _)| k == name) {
            return v.clone();
        }
        if PROXY_ARGS.contains(&name) {
            return self.build_args.get(name).cloned();
        }
        None
    }

    fn lexer(&self) -> Lexer {
        Lexer::new(self.escape)
    }

    /// Expands one word (quote removal, no splitting).
    pub fn expand(&self, word: &str) -> Result<String, ExpandError> {
        self.lexer().process_word(word, &|n| self.lookup(n))
    }

    /// Expands and splits a word (EXPOSE semantics).
    pub fn expand_words(&self, word: &str) -> Result<Vec<String>, ExpandError> {
        self.lexer().process_words(word, &|n| self.lookup(n))
    }

    /// Expands `$VAR` references in a heredoc body (quotes are kept).
    pub fn expand_heredoc(&self, content: &str) -> Result<String, ExpandError> {
        let mut lex = Lexer::new('\\');
        lex.dollar_only = true;
        lex.process_word(content, &|n| self.lookup(n))
    }

    /// ENV variables (what goes into the image config), in definition order.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// ENV as `K=V` strings for the image config.
    pub fn image_env(&self) -> Vec<String> {
        self.env.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    /// The environment of a RUN process: ENV, then ARGs with a value that no ENV
    /// shadows, then proxy build args (these must not be persisted in the image).
    pub fn run_env(&self) -> Vec<(String, String)> {
        let mut out = self.env.clone();
        let mut push = |k: &str, v: &str| {
            if !out.iter().any(|(n, _)| n == k) {
                out.push((k.to_string(), v.to_string()));
            }
        };
        for (k, v) in self.args.iter().rev() {
            if let Some(v) = v {
                push(k, v);
            }
        }
        for p in PROXY_ARGS {
            if let Some(v) = self.build_args.get(*p) {
                push(p, v);
            }
        }
        out
    }

    /// ARGs declared in this stage so far, with their values (`None`: no value).
    pub fn args(&self) -> &[(String, Option<String>)] {
        &self.args
    }

    /// The current SHELL (default `["/bin/sh", "-c"]`).
    pub fn shell(&self) -> &[String] {
        &self.shell
    }

    /// The current working directory (absolute, cleaned; `/` by default).
    pub fn workdir(&self) -> &str {
        &self.workdir
    }

    /// Command line for a shell-form command: SHELL followed by the script.
    pub fn shell_command(&self, script: &str) -> Vec<String> {
        let mut v = self.shell.clone();
        v.push(script.to_string());
        v
    }

    fn err(&self, ins: &Instruction, e: impl std::fmt::Display) -> Error {
        Error::At {
            file: self.file.to_string(),
            line: ins.line,
            message: format!("{}: {e}", ins.name()),
        }
    }

    /// The instruction with its arguments expanded where Docker expands them
    /// (ADD COPY ENV EXPOSE LABEL STOPSIGNAL USER VOLUME WORKDIR ARG, and the
    /// `--from/--chown/--chmod/--exclude/--checksum` flags and RUN mount
    /// options). RUN/CMD/ENTRYPOINT commands, HEALTHCHECK, SHELL, ONBUILD and
    /// MAINTAINER are returned unchanged. Does not change the environment.
    pub fn expand_instruction(&self, ins: &Instruction) -> Result<InstructionKind, Error> {
        let x = |w: &str| self.expand(w).map_err(|e| self.err(ins, e));
        let xo = |w: &Option<String>| w.as_deref().map(x).transpose();
        Ok(match &ins.kind {
            InstructionKind::Run(r) => {
                let mut r = r.clone();
                for m in r.mounts.iter_mut() {
                    m.target = xo(&m.target)?;
                    m.source = xo(&m.source)?;
                    m.from = xo(&m.from)?;
                    m.id = xo(&m.id)?;
                    m.env = xo(&m.env)?;
                    m.size = xo(&m.size)?;
                }
                InstructionKind::Run(r)
            }
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                let mut c = c.clone();
                for s in c.sources.iter_mut() {
                    match s {
                        CopySource::Path(p) => *p = x(p)?,
                        CopySource::Heredoc(h) if h.expand => {
                            h.content = self
                                .expand_heredoc(&h.content)
                                .map_err(|e| self.err(ins, e))?
                        }
                        CopySource::Heredoc(_) => {}
                    }
                }
                c.dest = x(&c.dest)?;
                c.from = xo(&c.from)?;
                c.chown = xo(&c.chown)?;
                c.chmod = xo(&c.chmod)?;
                c.checksum = xo(&c.checksum)?;
                c.exclude = c.exclude.iter().map(|e| x(e)).collect::<Result<_, _>>()?;
                if matches!(ins.kind, InstructionKind::Copy(_)) {
                    InstructionKind::Copy(c)
                } else {
                    InstructionKind::Add(c)
                }
            }
            InstructionKind::Workdir(p) => InstructionKind::Workdir(x(p)?),
            InstructionKind::Env(kvs) => InstructionKind::Env(
                kvs.iter()
                    .map(|kv| {
                        Ok(KeyValue {
                            key: x(&kv.key)?,
                            value: x(&kv.value)?,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
            ),
            InstructionKind::Label(kvs) => InstructionKind::Label(
                kvs.iter()
                    .map(|kv| {
                        Ok(KeyValue {
                            key: x(&kv.key)?,
                            value: x(&kv.value)?,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
            ),
            InstructionKind::Arg(decls) => InstructionKind::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: d.name.clone(),
                            default: xo(&d.default)?,
                        })
                    })
                    .collect::<Result<_, Error>>()?,
            ),
            InstructionKind::User(u) => InstructionKind::User(x(u)?),
            InstructionKind::StopSignal(s) => InstructionKind::StopSignal(x(s)?),
            InstructionKind::Volume(v) => {
                let v: Vec<String> = v.iter().map(|p| x(p)).collect::<Result<_, _>>()?;
                if v.iter().any(|p| p.trim().is_empty()) {
                    return Err(self.err(ins, "VOLUME specified can not be an empty string"));
                }
                InstructionKind::Volume(v)
            }
            InstructionKind::Expose(words) => {
                let mut ports = Vec::new();
                for w in words {
                    for p in self.expand_words(w).map_err(|e| self.err(ins, e))? {
                        parse_port(&p).map_err(|m| {
                            let hint = if p.starts_with('#') {
                                " ('#' after the arguments is not a comment in a Dockerfile: put the comment on its own line)"
                            } else {
                                ""
                            };
                            self.err(ins, format!("{m}{hint}"))
                        })?;
                        ports.push(p);
                    }
                }
                InstructionKind::Expose(ports)
            }
            other => other.clone(),
        })
    }

    /// Expands `ins` with the current environment, then records its effect
    /// (ENV, ARG, SHELL, WORKDIR) for the instructions after it. Returns the
    /// expanded instruction; for WORKDIR the path is made absolute.
    pub fn apply(&mut self, ins: &Instruction) -> Result<InstructionKind, Error> {
        let mut kind = self.expand_instruction(ins)?;
        match &mut kind {
            InstructionKind::Env(kvs) => {
                for kv in kvs.iter() {
                    self.set_env(kv.key.clone(), kv.value.clone());
                }
            }
            InstructionKind::Arg(decls) => {
                for d in decls.iter() {
                    let value = match self.build_args.get(&d.name) {
                        Some(v) => Some(v.clone()),
                        None => match &d.default {
                            Some(v) => Some(v.clone()),
                            None => self.globals.get(&d.name).cloned().flatten(),
                        },
                    };
                    self.args.retain(|(k, _)| *k != d.name);
                    self.args.push((d.name.clone(), value));
                }
            }
            InstructionKind::Shell(s) => self.shell = s.clone(),
            InstructionKind::Workdir(p) => {
                let joined = if p.starts_with('/') {
                    p.clone()
                } else {
                    format!("{}/{}", self.workdir, p)
                };
                self.workdir = clean_path(&joined);
                *p = self.workdir.clone();
            }
            _ => {}
        }
        Ok(kind)
    }
}
