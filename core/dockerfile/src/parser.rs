//! Dockerfile parsing with BuildKit's rules: parser directives, comments,
//! continuations, heredocs, JSON vs shell form, builder flags and every
//! instruction's argument syntax.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::instruction::*;
use crate::shell::Lexer;
use crate::Error;

/// Parser directives from the top of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Directives {
    /// `# syntax=`.
    pub syntax: Option<String>,
    /// `# escape=` (`\` by default, or `` ` ``).
    pub escape: char,
    /// `# check=`.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A non-fatal finding (Docker prints these as warnings).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// 1-based line.
    pub line: usize,
    /// What is wrong and what to do.
    pub message: String,
}

/// One build stage: its FROM and the instructions after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// 0-based index (usable as `COPY --from=<index>`).
    pub index: usize,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    /// The FROM instruction.
    pub from: Instruction,
    /// Instructions after FROM, in order.
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// The base as written (unexpanded).
    pub fn base(&self) -> &str {
        match &self.from.kind {
            InstructionKind::From { image, .. } => image,
            _ => "",
        }
    }
    /// `--platform` as written.
    pub fn platform(&self) -> Option<&str> {
        match &self.from.kind {
            InstructionKind::From { platform, .. } => platform.as_deref(),
            _ => None,
        }
    }
    /// The name, or the index as a string.
    pub fn display_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.index.to_string())
    }
}

/// A parsed Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// The name used in messages (`Dockerfile`).
    pub file: String,
    /// Parser directives.
    pub directives: Directives,
    /// ARG instructions before the first FROM.
    pub global_args: Vec<Instruction>,
    /// The stages in order.
    pub stages: Vec<Stage>,
    /// Warnings (empty continuation lines, `#` used as a comment after arguments...).
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// Reads and parses `path`; messages name the file by its file name.
    pub fn from_path(path: &Path) -> Result<Dockerfile, Error> {
        let bytes = std::fs::read(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let text = String::from_utf8(bytes).map_err(|e| Error::File {
            file: name.clone(),
            message: format!(
                "not valid UTF-8 (byte offset {})",
                e.utf8_error().valid_up_to()
            ),
        })?;
        Dockerfile::parse(&name, &text)
    }

    /// Parses Dockerfile text; `file` names it in error messages.
    pub fn parse(file: &str, text: &str) -> Result<Dockerfile, Error> {
        Parser::new(file).parse(text)
    }

    /// Every instruction in file order (global ARGs, then each stage's FROM and body).
    pub fn instructions(&self) -> impl Iterator<Item = &Instruction> {
        self.global_args.iter().chain(
            self.stages
                .iter()
                .flat_map(|s| std::iter::once(&s.from).chain(s.instructions.iter())),
        )
    }

    /// The stage with this name (case-insensitive) or index.
    pub fn stage(&self, name_or_index: &str) -> Option<&Stage> {
        let lower = name_or_index.to_ascii_lowercase();
        self.stages
            .iter()
            .find(|s| s.name.as_deref() == Some(lower.as_str()))
            .or_else(|| {
                name_or_index
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| self.stages.get(i))
            })
    }
}

struct Parser {
    file: String,
    directives: Directives,
    directives_done: bool,
    seen_directives: Vec<String>,
    warnings: Vec<Warning>,
}

/// Result of the line scanner for one logical instruction.
struct Logical {
    line: usize,
    text: String,
}

impl Parser {
    fn new(file: &str) -> Self {
        Parser {
            file: file.to_string(),
            directives: Directives::default(),
            directives_done: false,
            seen_directives: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn err(&self, line: usize, message: impl Into<String>) -> Error {
        Error::At {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    /// Handles a possible parser directive on a (left-trimmed) line.
    fn directive(&mut self, line_no: usize, line: &str) -> Result<(), Error> {
        if self.directives_done {
            return Ok(());
        }
        let Some((name, value)) = directive_match(line) else {
            self.directives_done = true;
            return Ok(());
        };
        let key = name.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.directives_done = true;
            return Ok(());
        }
        if self.seen_directives.contains(&key) {
            return Err(self.err(
                line_no,
                format!("only one {key} parser directive can be used"),
            ));
        }
        self.seen_directives.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    other => {
                        return Err(self.err(
                            line_no,
                            format!("invalid escape token '{other}' does not match ` or \\"),
                        ))
                    }
                }
            }
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(())
    }

    /// Strips a trailing escape token (plus blanks): `(text, ends_here)`. As in
    /// BuildKit, the token continues the line only when it is the whole line or follows
    /// another character than itself: `a\\` (an escaped escape) ends the instruction.
    fn trim_continuation<'a>(&self, line: &'a str) -> (&'a str, bool) {
        let esc = self.directives.escape;
        let t = line.trim_end_matches([' ', '\t']);
        match t.strip_suffix(esc) {
            Some(rest) if !rest.ends_with(esc) => (rest, false),
            _ => (line, true),
        }
    }

    fn parse(mut self, text: &str) -> Result<Dockerfile, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let lines: Vec<&str> = text
            .lines()
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let mut i = 0;
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        while i < lines.len() {
            let raw = lines[i];
            i += 1;
            let start = i;
            let trimmed = raw.trim_start();
            self.directive(start, trimmed)?;
            if is_comment(raw) {
                continue;
            }
            let (first, mut eol) = self.trim_continuation(trimmed);
            if eol && first.is_empty() {
                continue;
            }
            let mut line = first.to_string();
            let mut empty_continuation = false;
            while !eol && i < lines.len() {
                let raw = lines[i];
                i += 1;
                self.directive(i, raw)?;
                if is_comment(raw) {
                    continue;
                }
                if raw.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (cont, e) = self.trim_continuation(raw);
                eol = e;
                line.push_str(cont);
            }
            if empty_continuation {
                self.warnings.push(Warning {
                    line: start,
                    message: format!(
                        "empty continuation line found in: {line} (empty continuation lines will become errors in a future Docker release)"
                    ),
                });
            }
            let logical = Logical {
                line: start,
                text: line,
            };
            let (kind, heredoc_words) = self.instruction(&logical, None)?;
            let mut instruction = Instruction {
                line: start,
                end_line: i,
                original: logical.text.clone(),
                kind,
            };
            if !heredoc_words.is_empty() {
                let mut docs = Vec::new();
                for mut h in heredoc_words {
                    let mut terminated = false;
                    let mut content = String::new();
                    while i < lines.len() {
                        let body = lines[i];
                        i += 1;
                        let candidate = if h.chomp {
                            body.trim_start_matches('\t')
                        } else {
                            body
                        };
                        if candidate == h.name {
                            terminated = true;
                            break;
                        }
                        content.push_str(if h.chomp { candidate } else { body });
                        content.push('\n');
                    }
                    if !terminated {
                        return Err(self.err(
                            start,
                            format!(
                                "{}: unterminated heredoc: no line \"{}\" ends the here-document started here",
                                instruction.name(),
                                h.name
                            ),
                        ));
                    }
                    h.content = content;
                    docs.push(h);
                }
                instruction.end_line = i;
                attach_heredocs(&mut instruction.kind, docs, |m| self.err(start, m))?;
            }
            self.lint(&instruction);
            match &instruction.kind {
                InstructionKind::From { name, .. } => {
                    if let Some(n) = name {
                        if let Some(prev) = stages.iter().find(|s| s.name.as_deref() == Some(n.as_str())) {
                            return Err(self.err(
                                start,
                                format!("duplicate stage name \"{n}\" (first defined at line {})", prev.from.line),
                            ));
                        }
                    }
                    stages.push(Stage {
                        index: stages.len(),
                        name: name.clone(),
                        from: instruction,
                        instructions: Vec::new(),
                    });
                }
                InstructionKind::Arg(_) if stages.is_empty() => global_args.push(instruction),
                _ => match stages.last_mut() {
                    Some(stage) => stage.instructions.push(instruction),
                    None => {
                        return Err(self.err(
                            start,
                            format!(
                                "{} is not allowed before the first FROM (only ARG may come before FROM)",
                                instruction.name()
                            ),
                        ))
                    }
                },
            }
        }
        if stages.is_empty() {
            return Err(Error::File {
                file: self.file.clone(),
                message: "no FROM instruction: a Dockerfile needs at least one build stage".into(),
            });
        }
        Ok(Dockerfile {
            file: self.file,
            directives: self.directives,
            global_args,
            stages,
            warnings: self.warnings,
        })
    }

    /// Warns about `#` used as an end-of-line comment where Docker takes it as an argument.
    fn lint(&mut self, ins: &Instruction) {
        let words: Vec<&String> = match &ins.kind {
            InstructionKind::Copy(c) | InstructionKind::Add(c) if !c.json => c
                .sources
                .iter()
                .filter_map(|s| match s {
                    CopySource::Path(p) => Some(p),
                    CopySource::Heredoc(_) => None,
                })
                .chain(std::iter::once(&c.dest))
                .collect(),
            InstructionKind::Volume(v) => v.iter().collect(),
            InstructionKind::From { image, .. } => vec![image],
            _ => Vec::new(),
        };
        if words.iter().any(|w| w.starts_with('#')) {
            self.warnings.push(Warning {
                line: ins.line,
                message: format!(
                    "{}: '#' after the arguments is not a comment in a Dockerfile, it is taken as an argument; put the comment on its own line",
                    ins.name()
                ),
            });
        }
    }

    /// Parses one logical line into an instruction. Returns the heredocs that
    /// must be read from the following lines.
    fn instruction(
        &mut self,
        logical: &Logical,
        onbuild: Option<()>,
    ) -> Result<(InstructionKind, Vec<Heredoc>), Error> {
        let ln = logical.line;
        let trimmed = logical.text.trim();
        let (cmd, rest) = match trimmed.find(char::is_whitespace) {
            Some(p) => (&trimmed[..p], trimmed[p..].trim_start()),
            None => (trimmed, ""),
        };
        let upper = cmd.to_ascii_uppercase();
        if !INSTRUCTIONS.contains(&upper.as_str()) {
            let hint = suggest(&upper, INSTRUCTIONS.iter().copied())
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            return Err(self.err(ln, format!("unknown instruction: {cmd}{hint}")));
        }
        let (flag_words, args) = extract_flags(rest);
        let args = args.trim();
        let mut flags = Flags::new(&upper, flag_words);
        let e = |m: String| Error::At {
            file: self.file.clone(),
            line: ln,
            message: m,
        };
        let escape = self.directives.escape;
        let mut heredocs = Vec::new();
        let kind = match upper.as_str() {
            "FROM" => {
                let platform = flags.string("platform");
                flags.finish().map_err(e)?;
                let words = split_whitespace(args);
                let name = match words.as_slice() {
                    [_] => None,
                    [_, as_kw, n] if as_kw.eq_ignore_ascii_case("as") => {
                        let lower = n.to_ascii_lowercase();
                        if !valid_stage_name(&lower) {
                            return Err(e(format!(
                                "FROM: invalid name for build stage: \"{n}\", name can't start with a number or contain symbols"
                            )));
                        }
                        if lower == "scratch" || lower == "context" {
                            return Err(e(format!("FROM: stage name \"{lower}\" is reserved")));
                        }
                        Some(lower)
                    }
                    _ => return Err(e("FROM requires either one or three arguments".into())),
                };
                InstructionKind::From {
                    image: words[0].to_string(),
                    name,
                    platform: platform.map_err(e)?,
                }
            }
            "RUN" => {
                let mounts = flags.strings("mount");
                let network = flags.string("network");
                let security = flags.string("security");
                flags.finish().map_err(e)?;
                let mounts = mounts
                    .into_iter()
                    .map(|m| parse_mount(&m).map_err(|msg| e(format!("RUN --mount={m}: {msg}"))))
                    .collect::<Result<Vec<_>, _>>()?;
                let network = match network.map_err(e)?.as_deref() {
                    None => None,
                    Some("default") => Some(NetworkMode::Default),
                    Some("none") => Some(NetworkMode::None),
                    Some("host") => Some(NetworkMode::Host),
                    Some(o) => {
                        return Err(e(format!(
                            "RUN: unsupported network mode \"{o}\" (use default, none or host)"
                        )))
                    }
                };
                let security = match security.map_err(e)?.as_deref() {
                    None => None,
                    Some("sandbox") => Some(SecurityMode::Sandbox),
                    Some("insecure") => Some(SecurityMode::Insecure),
                    Some(o) => {
                        return Err(e(format!(
                            "RUN: unsupported security mode \"{o}\" (use sandbox or insecure)"
                        )))
                    }
                };
                let command = maybe_json(args).map_err(|m| e(format!("RUN: {m}")))?;
                if args.is_empty() {
                    return Err(e("RUN requires at least one argument".into()));
                }
                if matches!(command, ShellOrExec::Shell(_)) && logical.text.contains("<<") {
                    heredocs =
                        heredocs_from_line(&logical.text).map_err(|m| e(format!("RUN: {m}")))?;
                }
                InstructionKind::Run(Run {
                    command,
                    heredocs: Vec::new(),
                    mounts,
                    network,
                    security,
                })
            }
            "CMD" | "ENTRYPOINT" => {
                flags.finish().map_err(e)?;
                if args.is_empty() {
                    return Err(e(format!("{upper} requires at least one argument")));
                }
                let c = maybe_json(args).map_err(|m| e(format!("{upper}: {m}")))?;
                if upper == "CMD" {
                    InstructionKind::Cmd(c)
                } else {
                    InstructionKind::Entrypoint(c)
                }
            }
            "SHELL" => {
                flags.finish().map_err(e)?;
                if args.is_empty() {
                    return Err(e("SHELL requires at least one argument".into()));
                }
                match parse_json(args) {
                    Ok(v) if v.is_empty() => return Err(e("SHELL requires at least one argument".into())),
                    Ok(v) => InstructionKind::Shell(v),
                    Err(JsonErr::NotStrings) => {
                        return Err(e(
                            "SHELL: when using JSON array syntax, arrays must be comprised of strings only".into(),
                        ))
                    }
                    Err(JsonErr::NotJson) => {
                        return Err(e("SHELL requires the arguments to be in JSON form".into()))
                    }
                }
            }
            "COPY" | "ADD" => {
                let is_copy = upper == "COPY";
                let from = if is_copy {
                    Some(flags.string("from"))
                } else {
                    None
                };
                let chown = flags.string("chown");
                let chmod = flags.string("chmod");
                let link = flags.bool("link");
                let parents = if is_copy {
                    Some(flags.bool("parents"))
                } else {
                    None
                };
                let exclude = flags.strings("exclude");
                let (keep_git_dir, checksum, unpack) = if is_copy {
                    (None, None, None)
                } else {
                    (
                        Some(flags.bool("keep-git-dir")),
                        Some(flags.string("checksum")),
                        Some(flags.opt_bool("unpack")),
                    )
                };
                flags.finish().map_err(e)?;
                let (words, json) = match parse_json(args) {
                    Ok(v) => (v, true),
                    Err(JsonErr::NotStrings) => {
                        return Err(e(format!(
                            "{upper}: when using JSON array syntax, arrays must be comprised of strings only"
                        )))
                    }
                    Err(JsonErr::NotJson) => (split_whitespace(args).into_iter().map(String::from).collect(), false),
                };
                match words.len() {
                    0 => return Err(e(format!("{upper} requires at least two arguments"))),
                    1 => {
                        return Err(e(format!(
                            "{upper} requires at least two arguments, but only one was provided. Destination could not be determined"
                        )))
                    }
                    _ => {}
                }
                if !json && logical.text.contains("<<") {
                    heredocs = heredocs_from_line(&logical.text)
                        .map_err(|m| e(format!("{upper}: {m}")))?;
                }
                let mut c = Copy {
                    json,
                    exclude,
                    link: link.map_err(e)?,
                    chown: chown.map_err(e)?,
                    chmod: chmod.map_err(e)?,
                    ..Copy::default()
                };
                if let Some(f) = from {
                    c.from = f.map_err(e)?;
                }
                if let Some(p) = parents {
                    c.parents = p.map_err(e)?;
                }
                if let Some(k) = keep_git_dir {
                    c.keep_git_dir = k.map_err(e)?;
                }
                if let Some(k) = checksum {
                    c.checksum = k.map_err(e)?;
                }
                if let Some(u) = unpack {
                    c.unpack = u.map_err(e)?;
                }
                let (dest, sources) = words
                    .split_last()
                    .map(|(d, s)| (d.clone(), s.to_vec()))
                    .unwrap_or_default();
                if !json && heredoc_word(&dest).is_some() {
                    return Err(e(format!(
                        "{upper}: a heredoc cannot be used as the destination"
                    )));
                }
                c.dest = dest;
                c.sources = sources.into_iter().map(CopySource::Path).collect();
                if is_copy {
                    InstructionKind::Copy(c)
                } else {
                    InstructionKind::Add(c)
                }
            }
            "WORKDIR" | "USER" | "STOPSIGNAL" | "MAINTAINER" => {
                flags.finish().map_err(e)?;
                if args.is_empty() {
                    return Err(e(format!("{upper} requires exactly one argument")));
                }
                let v = args.to_string();
                match upper.as_str() {
                    "WORKDIR" => InstructionKind::Workdir(v),
                    "USER" => InstructionKind::User(v),
                    "STOPSIGNAL" => {
                        if split_whitespace(args).len() != 1 {
                            return Err(e("STOPSIGNAL requires exactly one argument".into()));
                        }
                        InstructionKind::StopSignal(v)
                    }
                    _ => InstructionKind::Maintainer(v),
                }
            }
            "ENV" | "LABEL" => {
                flags.finish().map_err(e)?;
                let pairs = parse_name_val(args, &upper, escape).map_err(e)?;
                if upper == "ENV" {
                    InstructionKind::Env(pairs)
                } else {
                    InstructionKind::Label(pairs)
                }
            }
            "ARG" => {
                flags.finish().map_err(e)?;
                let words = parse_words(args, escape);
                if words.is_empty() {
                    return Err(e("ARG requires at least one argument".into()));
                }
                let mut decls = Vec::new();
                for w in words {
                    let (name, default) = match w.split_once('=') {
                        Some((n, v)) => (n.to_string(), Some(v.to_string())),
                        None => (w, None),
                    };
                    if name.is_empty() {
                        return Err(e("ARG names can not be blank".into()));
                    }
                    decls.push(ArgDecl { name, default });
                }
                InstructionKind::Arg(decls)
            }
            "EXPOSE" => {
                flags.finish().map_err(e)?;
                let words: Vec<String> = split_whitespace(args)
                    .into_iter()
                    .map(String::from)
                    .collect();
                if words.is_empty() {
                    return Err(e("EXPOSE requires at least one argument".into()));
                }
                for w in words.iter().filter(|w| !w.contains('$')) {
                    if let Err(m) = parse_port(w) {
                        let hint = if w.starts_with('#') {
                            " ('#' after the arguments is not a comment in a Dockerfile: put the comment on its own line)"
                        } else {
                            ""
                        };
                        return Err(e(format!("EXPOSE: {m}{hint}")));
                    }
                }
                InstructionKind::Expose(words)
            }
            "VOLUME" => {
                flags.finish().map_err(e)?;
                let words = match parse_json(args) {
                    Ok(v) => v,
                    Err(JsonErr::NotStrings) => {
                        return Err(e(
                            "VOLUME: when using JSON array syntax, arrays must be comprised of strings only".into(),
                        ))
                    }
                    Err(JsonErr::NotJson) => split_whitespace(args).into_iter().map(String::from).collect(),
                };
                if words.is_empty() {
                    return Err(e("VOLUME requires at least one argument".into()));
                }
                if words.iter().any(|w| w.trim().is_empty()) {
                    return Err(e("VOLUME specified can not be an empty string".into()));
                }
                InstructionKind::Volume(words)
            }
            "HEALTHCHECK" => {
                let (typ, cmd_rest) = match args.find(char::is_whitespace) {
                    Some(p) => (&args[..p], args[p..].trim_start()),
                    None => (args, ""),
                };
                if typ.is_empty() {
                    return Err(e("HEALTHCHECK requires at least one argument".into()));
                }
                let typ = typ.to_ascii_uppercase();
                if typ == "NONE" {
                    flags.finish().map_err(e)?;
                    if !cmd_rest.is_empty() {
                        return Err(e("HEALTHCHECK NONE takes no arguments".into()));
                    }
                    InstructionKind::Healthcheck(Healthcheck::None)
                } else {
                    let interval = flags.string("interval");
                    let timeout = flags.string("timeout");
                    let start_period = flags.string("start-period");
                    let start_interval = flags.string("start-interval");
                    let retries = flags.string("retries");
                    flags.finish().map_err(e)?;
                    if typ != "CMD" {
                        return Err(e(format!(
                            "HEALTHCHECK: unknown type \"{typ}\" (try CMD or NONE)"
                        )));
                    }
                    if cmd_rest.is_empty() {
                        return Err(e(
                            "HEALTHCHECK: missing command after HEALTHCHECK CMD".into()
                        ));
                    }
                    let test = maybe_json(cmd_rest).map_err(|m| e(format!("HEALTHCHECK: {m}")))?;
                    if matches!(&test, ShellOrExec::Exec(v) if v.is_empty()) {
                        return Err(e(
                            "HEALTHCHECK: missing command after HEALTHCHECK CMD".into()
                        ));
                    }
                    let dur = |name: &str,
                               v: Result<Option<String>, String>|
                     -> Result<Option<Duration>, Error> {
                        match v.map_err(e)? {
                            None => Ok(None),
                            Some(s) => parse_health_duration(&s)
                                .map(Some)
                                .map_err(|m| e(format!("HEALTHCHECK --{name}: {m}"))),
                        }
                    };
                    let retries = match retries.map_err(e)? {
                        None => None,
                        Some(s) => match s.parse::<i64>() {
                            Ok(n) if n < 0 => {
                                return Err(e(format!(
                                    "HEALTHCHECK: --retries cannot be negative ({n})"
                                )))
                            }
                            Ok(n) => Some(u32::try_from(n).map_err(|_| {
                                e(format!("HEALTHCHECK: --retries value {n} is too large"))
                            })?),
                            Err(_) => {
                                return Err(e(format!(
                                    "HEALTHCHECK: --retries expects an integer, not \"{s}\""
                                )))
                            }
                        },
                    };
                    InstructionKind::Healthcheck(Healthcheck::Cmd {
                        test,
                        interval: dur("interval", interval)?,
                        timeout: dur("timeout", timeout)?,
                        start_period: dur("start-period", start_period)?,
                        start_interval: dur("start-interval", start_interval)?,
                        retries,
                    })
                }
            }
            "ONBUILD" => {
                flags.finish().map_err(e)?;
                if onbuild.is_some() {
                    return Err(e(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                    ));
                }
                if args.is_empty() {
                    return Err(e("ONBUILD requires at least one argument".into()));
                }
                let trigger_word = args
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                match trigger_word.as_str() {
                    "ONBUILD" => {
                        return Err(e(
                            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()
                        ))
                    }
                    "FROM" | "MAINTAINER" => {
                        return Err(e(format!(
                            "{trigger_word} isn't allowed as an ONBUILD trigger"
                        )))
                    }
                    _ => {}
                }
                let sub = Logical {
                    line: ln,
                    text: args.to_string(),
                };
                let (trigger, docs) = self.instruction(&sub, Some(()))?;
                heredocs = docs;
                let word_len = args.find(char::is_whitespace).unwrap_or(args.len());
                let expression = format!(
                    "{}{}",
                    &args[..word_len].to_ascii_uppercase(),
                    &args[word_len..]
                );
                InstructionKind::Onbuild {
                    expression,
                    trigger: Box::new(trigger),
                }
            }
            _ => return Err(e(format!("unknown instruction: {cmd}"))),
        };
        Ok((kind, heredocs))
    }
}

/// Puts heredoc bodies where they belong: RUN's list, or COPY/ADD sources.
fn attach_heredocs(
    kind: &mut InstructionKind,
    docs: Vec<Heredoc>,
    err: impl Fn(String) -> Error,
) -> Result<(), Error> {
    match kind {
        InstructionKind::Run(r) => r.heredocs = docs,
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            for src in c.sources.iter_mut() {
                if let CopySource::Path(p) = src {
                    if let Some(h) = heredoc_word(p) {
                        let doc = docs
                            .iter()
                            .find(|d| d.name == h.name)
                            .cloned()
                            .ok_or_else(|| err(format!("heredoc source {p} has no body")))?;
                        *src = CopySource::Heredoc(doc);
                    }
                }
            }
        }
        InstructionKind::Onbuild { trigger, .. } => attach_heredocs(trigger, docs, err)?,
        _ => {}
    }
    Ok(())
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn directive_match(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix('#')?.trim_start();
    let name_len = rest
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map(|(i, _)| i)
        .unwrap_or(rest.len());
    if name_len == 0 {
        return None;
    }
    let name = &rest[..name_len];
    let value = rest[name_len..].trim_start().strip_prefix('=')?.trim();
    if value.is_empty() {
        return None;
    }
    Some((name, value))
}

fn valid_stage_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Closest candidate by edit distance, if close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let max = if word.chars().count() > 10 { 3 } else { 2 };
    candidates
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= max && *d < word.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Splits leading `--flag` words off an argument string (BuildKit's
/// `extractBuilderFlags`): returns the flags (quotes removed) and the rest.
fn extract_flags(line: &str) -> (Vec<String>, &str) {
    let mut words = Vec::new();
    let bytes: Vec<(usize, char)> = line.char_indices().collect();
    let mut k = 0;
    loop {
        while k < bytes.len() && bytes[k].1.is_whitespace() {
            k += 1;
        }
        if k >= bytes.len() {
            return (words, "");
        }
        let start = bytes[k].0;
        if !line[start..].starts_with("--") {
            return (words, &line[start..]);
        }
        let mut word = String::new();
        let mut blank_ok = false;
        let mut quote: Option<char> = None;
        while k < bytes.len() {
            let c = bytes[k].1;
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                } else if c == '\\' && k + 1 < bytes.len() {
                    k += 1;
                    word.push(bytes[k].1);
                } else if c != '\\' {
                    word.push(c);
                }
                k += 1;
                continue;
            }
            if c.is_whitespace() {
                break;
            }
            if c == '\'' || c == '"' {
                quote = Some(c);
                blank_ok = true;
            } else if c == '\\' {
                if k + 1 < bytes.len() {
                    k += 1;
                    word.push(bytes[k].1);
                }
            } else {
                word.push(c);
            }
            k += 1;
        }
        if word == "--" {
            let rest = bytes.get(k).map(|b| &line[b.0..]).unwrap_or("");
            return (words, rest);
        }
        if blank_ok || !word.is_empty() {
            words.push(word);
        }
    }
}

/// Declared flags of one instruction, filled from the `--x` words.
struct Flags {
    instruction: String,
    words: Vec<(String, Option<String>)>,
    known: Vec<&'static str>,
    used: Vec<bool>,
}

impl Flags {
    fn new(instruction: &str, words: Vec<String>) -> Self {
        let words: Vec<(String, Option<String>)> = words
            .into_iter()
            .map(|w| {
                let w = w.strip_prefix("--").map(str::to_string).unwrap_or(w);
                match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w, None),
                }
            })
            .collect();
        let used = vec![false; words.len()];
        Flags {
            instruction: instruction.to_string(),
            words,
            known: Vec::new(),
            used,
        }
    }

    fn take(&mut self, name: &'static str) -> Vec<Option<String>> {
        self.known.push(name);
        let mut out = Vec::new();
        for (i, (k, v)) in self.words.iter().enumerate() {
            if k == name {
                self.used[i] = true;
                out.push(v.clone());
            }
        }
        out
    }

    fn single(&mut self, name: &'static str) -> Result<Option<Option<String>>, String> {
        let mut v = self.take(name);
        if v.len() > 1 {
            return Err(format!("duplicate flag --{name} for {}", self.instruction));
        }
        Ok(v.pop())
    }

    fn string(&mut self, name: &'static str) -> Result<Option<String>, String> {
        match self.single(name)? {
            None => Ok(None),
            Some(None) => Err(format!(
                "missing a value on flag --{name} for {}",
                self.instruction
            )),
            Some(Some(v)) => Ok(Some(v)),
        }
    }

    fn strings(&mut self, name: &'static str) -> Vec<String> {
        // A bare `--exclude` is reported by `finish` through `missing`.
        self.take(name).into_iter().flatten().collect()
    }

    fn opt_bool(&mut self, name: &'static str) -> Result<Option<bool>, String> {
        match self.single(name)? {
            None => Ok(None),
            Some(None) => Ok(Some(true)),
            Some(Some(v)) => match v.to_ascii_lowercase().as_str() {
                "true" => Ok(Some(true)),
                "false" => Ok(Some(false)),
                "" => Err(format!(
                    "missing a value on flag --{name} for {}",
                    self.instruction
                )),
                _ => Err(format!(
                    "expecting boolean value for flag --{name} for {}, not: {v}",
                    self.instruction
                )),
            },
        }
    }

    fn bool(&mut self, name: &'static str) -> Result<bool, String> {
        Ok(self.opt_bool(name)?.unwrap_or(false))
    }

    /// Reports the first unknown flag (with a suggestion) or a value-less string list flag.
    fn finish(&self) -> Result<(), String> {
        for (i, (k, v)) in self.words.iter().enumerate() {
            if !self.used[i] {
                let hint = suggest(k, self.known.iter().copied())
                    .map(|s| format!(" (did you mean --{s}?)"))
                    .unwrap_or_default();
                return Err(format!("unknown flag --{k} for {}{hint}", self.instruction));
            }
            if v.is_none() && matches!(k.as_str(), "mount" | "exclude") {
                return Err(format!(
                    "missing a value on flag --{k} for {}",
                    self.instruction
                ));
            }
        }
        Ok(())
    }
}

enum JsonErr {
    NotJson,
    NotStrings,
}

/// Parses `[ "a", "b" ]`; `NotJson` means "fall back to shell form".
fn parse_json(rest: &str) -> Result<Vec<String>, JsonErr> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Err(JsonErr::NotJson);
    }
    let v: Vec<serde_json::Value> = serde_json::from_str(rest).map_err(|_| JsonErr::NotJson)?;
    v.into_iter()
        .map(|x| match x {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(JsonErr::NotStrings),
        })
        .collect()
}

fn maybe_json(rest: &str) -> Result<ShellOrExec, String> {
    match parse_json(rest) {
        Ok(v) => Ok(ShellOrExec::Exec(v)),
        Err(JsonErr::NotStrings) => {
            Err("when using JSON array syntax, arrays must be comprised of strings only".into())
        }
        Err(JsonErr::NotJson) => Ok(ShellOrExec::Shell(rest.to_string())),
    }
}

fn split_whitespace(s: &str) -> Vec<&str> {
    s.split([' ', '\t', '\u{b}', '\u{c}', '\r'])
        .filter(|w| !w.is_empty())
        .collect()
}

/// BuildKit's `parseWords`: splits on white space outside quotes, keeping the
/// quotes and escapes in the words.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
                word.push(c);
            } else if c == escape && q != '\'' {
                if i + 1 == chars.len() {
                    i += 1;
                    continue;
                }
                word.push(c);
                i += 1;
                word.push(chars[i]);
            } else {
                word.push(c);
            }
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            if in_word && (blank_ok || !word.is_empty()) {
                words.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            i += 1;
            continue;
        }
        in_word = true;
        if c == '\'' || c == '"' {
            quote = Some(c);
            blank_ok = true;
            word.push(c);
        } else if c == escape {
            if i + 1 < chars.len() {
                word.push(c);
                i += 1;
                word.push(chars[i]);
            }
        } else {
            word.push(c);
        }
        i += 1;
    }
    if in_word && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// ENV/LABEL: `k v` (legacy, one pair) or `k=v k2=v2`.
fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Vec<KeyValue>, String> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Err(format!("{key} requires at least one argument"));
    }
    if !words[0].contains('=') {
        let mut parts = rest.splitn(2, char::is_whitespace);
        let k = parts.next().unwrap_or("");
        let v = parts.next().map(str::trim_start).unwrap_or("");
        if v.is_empty() {
            return Err(format!("{key} must have two arguments"));
        }
        return Ok(vec![KeyValue {
            key: k.to_string(),
            value: v.to_string(),
        }]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok(KeyValue {
                key: k.to_string(),
                value: v.to_string(),
            }),
            Some(_) => Err(format!("{key} names can not be blank")),
            None => Err(format!(
                "{key}: syntax error - can't find = in \"{w}\". Must be of the form: name=value"
            )),
        })
        .collect()
}

/// `^(\d*)<<(-?)\s*([^<]*)$` on a raw word; returns (fd, chomp, rest).
fn heredoc_parts(word: &str) -> Option<(u32, bool, &str)> {
    let digits = word.len() - word.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let rest = word[digits..].strip_prefix("<<")?;
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches([' ', '\t', '\n', '\x0c', '\r']);
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    Some((word[..digits].parse().unwrap_or(0), chomp, rest))
}

/// Interprets one raw word as a heredoc marker (`<<EOF`, `<<-"EOF"`, `3<<EOF`).
pub(crate) fn heredoc_word(word: &str) -> Option<Heredoc> {
    let (fd, chomp, rest) = heredoc_parts(word)?;
    let none = |_: &str| None;
    let mut lex = Lexer::new('\\');
    lex.skip_unset = true;
    let words = lex.process_words(rest, &none).ok()?;
    if words.len() != 1 {
        return None;
    }
    lex.raw_quotes = true;
    let raw = lex.process_words(rest, &none).ok()?;
    if raw.len() != 1 {
        return None;
    }
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Some(Heredoc {
        expand: quotes(&words[0]) == quotes(&raw[0]),
        name: words[0].clone(),
        content: String::new(),
        chomp,
        fd,
    })
}

fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let none = |_: &str| None;
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    // `<<$EOF` names the terminator `$EOF`: the marker is never expanded.
    lex.skip_unset = true;
    let words = lex.process_words(line, &none).unwrap_or_default();
    Ok(words.iter().filter_map(|w| heredoc_word(w)).collect())
}

/// Parses a `--mount` value (CSV of `key=value` / `key`).
fn parse_mount(raw: &str) -> Result<Mount, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut in_q = false;
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_q && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => in_q = !in_q,
            ',' if !in_q => fields.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    if in_q {
        return Err("unterminated quote".into());
    }
    fields.push(cur);
    let mut m = Mount {
        kind: MountKind::Bind,
        target: None,
        source: None,
        from: None,
        readonly: false,
        id: None,
        sharing: None,
        mode: None,
        uid: None,
        gid: None,
        required: false,
        size: None,
        env: None,
        raw: raw.to_string(),
    };
    let mut ro: Option<bool> = None;
    let parse_bool = |k: &str, v: Option<&str>| -> Result<bool, String> {
        match v.map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") | Some("1") => Ok(true),
            Some("false") | Some("0") => Ok(false),
            Some(o) => Err(format!("invalid value for {k}: {o}")),
        }
    };
    let num = |k: &str, v: Option<&str>, radix: u32| -> Result<u32, String> {
        let v = v.ok_or_else(|| format!("{k} requires a value"))?;
        u32::from_str_radix(v, radix).map_err(|_| format!("invalid value for {k}: {v}"))
    };
    for f in fields.iter().filter(|f| !f.trim().is_empty()) {
        let (k, v) = match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (f.trim().to_ascii_lowercase(), None),
        };
        let val = || {
            v.map(str::to_string)
                .ok_or_else(|| format!("{k} requires a value"))
        };
        match k.as_str() {
            "type" => {
                m.kind = match v.unwrap_or("") {
                    "bind" => MountKind::Bind,
                    "cache" => MountKind::Cache,
                    "tmpfs" => MountKind::Tmpfs,
                    "secret" => MountKind::Secret,
                    "ssh" => MountKind::Ssh,
                    o => return Err(format!("unsupported mount type \"{o}\"")),
                }
            }
            "target" | "dst" | "destination" => m.target = Some(val()?),
            "source" | "src" => m.source = Some(val()?),
            "from" => m.from = Some(val()?),
            "readonly" | "ro" => ro = Some(parse_bool(&k, v)?),
            "readwrite" | "rw" => ro = Some(!parse_bool(&k, v)?),
            "required" => m.required = parse_bool(&k, v)?,
            "id" => m.id = Some(val()?),
            "sharing" => {
                m.sharing = Some(match v.unwrap_or("") {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    o => return Err(format!("unsupported sharing value \"{o}\"")),
                })
            }
            "mode" => m.mode = Some(num(&k, v, 8)?),
            "uid" => m.uid = Some(num(&k, v, 10)?),
            "gid" => m.gid = Some(num(&k, v, 10)?),
            "size" => m.size = Some(val()?),
            "env" => m.env = Some(val()?),
            _ => return Err(format!("unexpected key '{k}' in '{f}'")),
        }
    }
    m.readonly = ro.unwrap_or(m.kind == MountKind::Bind);
    match m.kind {
        MountKind::Secret | MountKind::Ssh => {}
        _ if m.target.is_none() => return Err("a mount target is required (target=/path)".into()),
        _ => {}
    }
    if m.sharing.is_some() && m.kind != MountKind::Cache {
        return Err("sharing is only valid for cache mounts".into());
    }
    if m.from.is_some() && !matches!(m.kind, MountKind::Bind | MountKind::Cache) {
        return Err("from is only valid for bind and cache mounts".into());
    }
    Ok(m)
}

/// HEALTHCHECK durations: Go `time.ParseDuration`, `0` allowed, otherwise >= 1ms.
pub fn parse_health_duration(s: &str) -> Result<Duration, String> {
    let d = parse_go_duration(s)
        .ok_or_else(|| format!("invalid duration \"{s}\" (e.g. 30s, 1m30s, 500ms)"))?;
    if !d.is_zero() && d < Duration::from_millis(1) {
        return Err(format!("interval \"{s}\" cannot be less than 1ms"));
    }
    Ok(d)
}

/// Go's `time.ParseDuration` for non-negative durations.
pub fn parse_go_duration(s: &str) -> Option<Duration> {
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Some(Duration::ZERO);
    }
    if s.is_empty() || s.starts_with('-') {
        return None;
    }
    let mut rest = s;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Duration::try_from_secs_f64(total).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        assert_eq!(directive_match("# escape=`"), Some(("escape", "`")));
        assert_eq!(
            directive_match("#syntax = docker/dockerfile:1 "),
            Some(("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(directive_match("# just a comment"), None);
        assert_eq!(directive_match("# 1x=y"), None);
    }

    #[test]
    fn flags_extraction() {
        let (f, r) = extract_flags("--from=a --chown=\"u g\" src dst");
        assert_eq!(f, vec!["--from=a", "--chown=u g"]);
        assert_eq!(r, "src dst");
        let (f, r) = extract_flags("--link -- --notflag x");
        assert_eq!(f, vec!["--link"]);
        assert_eq!(r, " --notflag x");
        let (f, r) = extract_flags("-x y");
        assert!(f.is_empty());
        assert_eq!(r, "-x y");
    }

    #[test]
    fn words() {
        assert_eq!(
            parse_words("a=\"b c\" d='e f' g\\ h", '\\'),
            vec!["a=\"b c\"", "d='e f'", "g\\ h"]
        );
        assert_eq!(parse_words("  x  ", '\\'), vec!["x"]);
        assert_eq!(parse_words("a=\"\"", '\\'), vec!["a=\"\""]);
    }

    #[test]
    fn heredoc_words() {
        let h = heredoc_word("<<EOF").unwrap();
        assert_eq!(
            (h.name.as_str(), h.expand, h.chomp, h.fd),
            ("EOF", true, false, 0)
        );
        let h = heredoc_word("<<-'END'").unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.chomp), ("END", false, true));
        let h = heredoc_word("3<<\"X\"").unwrap();
        assert_eq!((h.name.as_str(), h.expand, h.fd), ("X", false, 3));
        assert!(heredoc_word("<<").is_none());
        assert!(heredoc_word("a<<EOF").is_none());
        assert!(heredoc_word("<<a<b").is_none());
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5x"), None);
        assert!(parse_health_duration("10us").is_err());
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked,id=npm,mode=0755,uid=1")
            .unwrap();
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert_eq!(m.sharing, Some(CacheSharing::Locked));
        assert_eq!(m.mode, Some(0o755));
        assert!(!m.readonly);
        let b = parse_mount("target=/src,from=builder,source=/out").unwrap();
        assert_eq!(b.kind, MountKind::Bind);
        assert!(b.readonly);
        assert!(!parse_mount("type=bind,target=/x,rw").unwrap().readonly);
        let s = parse_mount("type=secret,id=tok,required").unwrap();
        assert!(s.required && s.target.is_none());
        assert_eq!(
            parse_mount("type=cache").unwrap_err(),
            "a mount target is required (target=/path)"
        );
        assert_eq!(
            parse_mount("type=nfs,target=/x").unwrap_err(),
            "unsupported mount type \"nfs\""
        );
        assert_eq!(
            parse_mount("target=/x,bogus=1").unwrap_err(),
            "unexpected key 'bogus' in 'bogus=1'"
        );
        assert_eq!(
            parse_mount("\"target=/a,b\"").unwrap().target.as_deref(),
            Some("/a,b")
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("COPPY", INSTRUCTIONS.iter().copied()), Some("COPY"));
        assert_eq!(suggest("XYZZY", INSTRUCTIONS.iter().copied()), None);
        assert_eq!(suggest("frm", ["from", "chown"].into_iter()), Some("from"));
    }
}
