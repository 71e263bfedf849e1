//! Go's `text/template`, as `docker … --format` and `inspect -f` use it, over JSON values.
//!
//! The language: text and `{{actions}}` (with `{{-`/`-}}` trimming and `{{/* comments */}}`);
//! pipelines of commands joined by `|` (the previous result becomes the last argument);
//! fields (`.A.B`), variables (`$`, `$x`, `$x.A`, `$x := …`, `$x = …`), literals (strings,
//! raw strings, numbers, `true`, `false`, `nil`), parenthesised pipelines; `if`/`else if`/
//! `else`, `range` (`$i, $v :=`, maps in key order, `else`), `with`/`else`, `end`. Go's
//! functions (`and or not len index print printf println eq ne lt le gt ge`) and Docker's
//! (`json join split upper lower title pad truncate`). A field the object does not have is
//! an error, as in Docker (`map has no entry for key "X"`); `define`/`template`/`block`
//! are refused with an error.

use serde_json::Value;

use crate::EngineError;

fn err(msg: impl Into<String>) -> EngineError {
    EngineError::Invalid(format!("template: {}", msg.into()))
}

// ---- lexer -------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `.A.B` (empty for a lone `.`).
    Field(Vec<String>),
    /// `$name.A.B` (`$` alone has the name "").
    Var(String, Vec<String>),
    Ident(String),
    Str(String),
    Num(Value),
    Pipe,
    Open,
    Close,
    Declare,
    Assign,
    Comma,
}

/// A token and whether white space came before it (`(x).A` chains, `(x) .A` does not).
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    spaced: bool,
}

#[derive(Debug)]
enum Piece {
    Text(String),
    Action(Vec<Token>, String),
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex_action(src: &str) -> Result<Vec<Token>, EngineError> {
    let chars: Vec<char> = src.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let mut spaced = true;
    let ident_chain = |i: &mut usize| -> Vec<String> {
        let mut chain = Vec::new();
        while *i < chars.len() && chars[*i] == '.' {
            let start = *i + 1;
            let mut j = start;
            while j < chars.len() && is_ident(chars[j]) {
                j += 1;
            }
            if j == start {
                break;
            }
            chain.push(chars[start..j].iter().collect());
            *i = j;
        }
        chain
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let tok = match c {
            '|' => {
                i += 1;
                Tok::Pipe
            }
            '(' => {
                i += 1;
                Tok::Open
            }
            ')' => {
                i += 1;
                Tok::Close
            }
            ',' => {
                i += 1;
                Tok::Comma
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                i += 2;
                Tok::Declare
            }
            '=' => {
                i += 1;
                Tok::Assign
            }
            '.' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                lex_number(&chars, &mut i)?
            }
            '.' => {
                let chain = ident_chain(&mut i);
                if chain.is_empty() {
                    i += 1;
                }
                Tok::Field(chain)
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && is_ident(chars[j]) {
                    j += 1;
                }
                let name: String = chars[start..j].iter().collect();
                i = j;
                Tok::Var(name, ident_chain(&mut i))
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    let Some(&c) = chars.get(i) else {
                        return Err(err("unterminated quoted string"));
                    };
                    i += 1;
                    match c {
                        '"' => break,
                        '\\' => {
                            let e = chars
                                .get(i)
                                .copied()
                                .ok_or_else(|| err("unterminated quoted string"))?;
                            i += 1;
                            s.push(match e {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                '\\' => '\\',
                                '"' => '"',
                                '\'' => '\'',
                                '0' => '\0',
                                other => {
                                    return Err(err(format!("unknown escape sequence \\{other}")))
                                }
                            });
                        }
                        c => s.push(c),
                    }
                }
                Tok::Str(s)
            }
            '`' => {
                let start = i + 1;
                let Some(len) = chars[start..].iter().position(|&c| c == '`') else {
                    return Err(err("unterminated raw quoted string"));
                };
                i = start + len + 1;
                Tok::Str(chars[start..start + len].iter().collect())
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars
                        .get(i + 1)
                        .is_some_and(|d| d.is_ascii_digit() || *d == '.')) =>
            {
                lex_number(&chars, &mut i)?
            }
            c if is_ident(c) => {
                let start = i;
                while i < chars.len() && is_ident(chars[i]) {
                    i += 1;
                }
                Tok::Ident(chars[start..i].iter().collect())
            }
            other => return Err(err(format!("unexpected {other:?} in action"))),
        };
        // `ident.Field` is not Go syntax, but `(pipe).Field` and `$x.Field` are handled in
        // the lexer/parser; a field right after `)` chains on it.
        out.push(Token { tok, spaced });
        spaced = false;
    }
    Ok(out)
}

fn lex_number(chars: &[char], i: &mut usize) -> Result<Tok, EngineError> {
    let start = *i;
    if chars[*i] == '-' || chars[*i] == '+' {
        *i += 1;
    }
    while *i < chars.len()
        && (chars[*i].is_ascii_alphanumeric() || chars[*i] == '.' || chars[*i] == '_')
    {
        // exponent sign
        if (chars[*i] == 'e' || chars[*i] == 'E')
            && chars.get(*i + 1).is_some_and(|c| *c == '-' || *c == '+')
        {
            *i += 1;
        }
        *i += 1;
    }
    let text: String = chars[start..*i].iter().filter(|c| **c != '_').collect();
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Tok::Num(Value::from(n)));
    }
    if let Some(h) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if let Ok(n) = i64::from_str_radix(h, 16) {
            return Ok(Tok::Num(Value::from(n)));
        }
    }
    match text.parse::<f64>() {
        Ok(f) => Ok(Tok::Num(
            serde_json::Number::from_f64(f)
                .map(Value::Number)
                .unwrap_or(Value::Null),
        )),
        Err(_) => Err(err(format!("bad number syntax: {text:?}"))),
    }
}

/// Splits the source into text and actions, applying the trim markers.
fn split(src: &str) -> Result<Vec<Piece>, EngineError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut trim_next = false;
    while !rest.is_empty() {
        let (text, after) = match rest.find("{{") {
            Some(p) => (&rest[..p], Some(&rest[p + 2..])),
            None => (rest, None),
        };
        let mut text = text.to_string();
        if trim_next {
            text = text.trim_start().to_string();
        }
        let Some(after) = after else {
            if !text.is_empty() {
                out.push(Piece::Text(text));
            }
            break;
        };
        let (body, trim_left) = match after.strip_prefix('-') {
            Some(b) if b.starts_with(|c: char| c.is_whitespace()) => (b, true),
            _ => (after, false),
        };
        if trim_left {
            text = text.trim_end().to_string();
        }
        if !text.is_empty() {
            out.push(Piece::Text(text));
        }
        // Comments may contain `}}`-free text only up to `*/}}`.
        let trimmed = body.trim_start();
        if trimmed.starts_with("/*") {
            let Some(end) = trimmed.find("*/") else {
                return Err(err("unclosed comment"));
            };
            let tail = trimmed[end + 2..].trim_start();
            let (tail, trim) = match tail.strip_prefix('-') {
                Some(t) => (t.trim_start(), true),
                None => (tail, false),
            };
            let Some(t) = tail.strip_prefix("}}") else {
                return Err(err("comment ends before closing delimiter"));
            };
            trim_next = trim;
            rest = t;
            continue;
        }
        let Some(close) = find_close(body) else {
            return Err(err("unclosed action"));
        };
        let mut inner = &body[..close];
        trim_next = false;
        if let Some(x) = inner.strip_suffix('-') {
            if x.ends_with(|c: char| c.is_whitespace()) {
                inner = x;
                trim_next = true;
            }
        }
        let toks = lex_action(inner)?;
        out.push(Piece::Action(toks, format!("{{{{{}}}}}", inner.trim())));
        rest = &body[close + 2..];
    }
    Ok(out)
}

/// The `}}` that closes an action, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i + 1 < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'}' if b[i + 1] == b'}' => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

// ---- parser ------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Operand {
    Field(Vec<String>),
    Var(String, Vec<String>),
    Func(String),
    Lit(Value),
    Sub(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Command {
    args: Vec<Operand>,
}

#[derive(Debug, Clone)]
struct Pipeline {
    vars: Vec<String>,
    assign: bool,
    cmds: Vec<Command>,
    /// The action's text, for error messages.
    src: String,
}

#[derive(Debug, Clone)]
enum Node {
    Text(String),
    Out(Pipeline),
    If(Vec<(Pipeline, Vec<Node>)>, Option<Vec<Node>>),
    Range(Pipeline, Vec<Node>, Option<Vec<Node>>),
    With(Pipeline, Vec<Node>, Option<Vec<Node>>),
}

const FUNCS: &[&str] = &[
    "and", "or", "not", "len", "index", "print", "printf", "println", "eq", "ne", "lt", "le", "gt",
    "ge", "json", "join", "split", "upper", "lower", "title", "pad", "truncate",
];

struct Parser {
    pieces: std::vec::IntoIter<Piece>,
}

enum Stop {
    Eof,
    End,
    Else(Option<(String, Vec<Token>)>, String),
}

impl Parser {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), EngineError> {
        let mut nodes = Vec::new();
        while let Some(p) = self.pieces.next() {
            let (toks, src) = match p {
                Piece::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Piece::Action(t, s) => (t, s),
            };
            let kw = match toks.first().map(|t| &t.tok) {
                Some(Tok::Ident(k)) => k.clone(),
                None => return Err(err(format!("missing value for command in {src}"))),
                _ => String::new(),
            };
            let rest = toks[1.min(toks.len())..].to_vec();
            match kw.as_str() {
                "end" => return Ok((nodes, Stop::End)),
                "else" => {
                    let chained = match rest.first().map(|t| &t.tok) {
                        Some(Tok::Ident(k)) if k == "if" || k == "with" => {
                            Some((k.clone(), rest[1..].to_vec()))
                        }
                        None => None,
                        _ => return Err(err(format!("unexpected tokens after else in {src}"))),
                    };
                    return Ok((nodes, Stop::Else(chained, src)));
                }
                "if" | "with" | "range" => {
                    let pipe = pipeline(&rest, &src, kw == "range")?;
                    let node = self.block(&kw, pipe, &src)?;
                    nodes.push(node);
                }
                "define" | "template" | "block" => {
                    return Err(err(format!(
                        "{kw} is not supported in --format templates ({src})"
                    )))
                }
                _ => nodes.push(Node::Out(pipeline(&toks, &src, false)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn block(&mut self, kw: &str, pipe: Pipeline, src: &str) -> Result<Node, EngineError> {
        let (body, end) = self.list()?;
        let else_part = match end {
            Stop::Eof => return Err(err(format!("unexpected EOF: {src} has no {{{{end}}}}"))),
            Stop::End => None,
            Stop::Else(None, _) => {
                let (e, end) = self.list()?;
                match end {
                    Stop::End => Some(e),
                    _ => {
                        return Err(err(format!(
                            "expected {{{{end}}}} after {{{{else}}}} of {src}"
                        )))
                    }
                }
            }
            Stop::Else(Some((k, toks)), esrc) => {
                if k != kw || kw == "range" {
                    return Err(err(format!("{esrc}: else {k} inside {kw}")));
                }
                // `else if` is an `if` nested in the else branch sharing the `end`.
                let p = pipeline(&toks, &esrc, false)?;
                Some(vec![self.block(kw, p, &esrc)?])
            }
        };
        Ok(match kw {
            "if" => Node::If(vec![(pipe, body)], else_part),
            "with" => Node::With(pipe, body, else_part),
            _ => Node::Range(pipe, body, else_part),
        })
    }
}

/// Parses `[$a[, $b] :=|=] cmd | cmd …`.
fn pipeline(toks: &[Token], src: &str, range: bool) -> Result<Pipeline, EngineError> {
    let mut vars = Vec::new();
    let mut assign = false;
    let mut toks = toks;
    // Declarations: `$x :=`, `$i, $v :=` (range only), `$x =`.
    let decl_at = toks
        .iter()
        .position(|t| matches!(t.tok, Tok::Declare | Tok::Assign));
    if let Some(p) = decl_at {
        let head = &toks[..p];
        let names: Vec<String> = head
            .iter()
            .filter(|t| t.tok != Tok::Comma)
            .map(|t| match &t.tok {
                Tok::Var(n, chain) if chain.is_empty() => Ok(n.clone()),
                _ => Err(err(format!("bad variable declaration in {src}"))),
            })
            .collect::<Result<_, _>>()?;
        if names.is_empty() || names.len() > 2 || (names.len() == 2 && !range) {
            return Err(err(format!("too many declarations in {src}")));
        }
        assign = toks[p].tok == Tok::Assign;
        vars = names;
        toks = &toks[p + 1..];
    }
    let mut cmds = Vec::new();
    let mut cur: Vec<Operand> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        match &t.tok {
            Tok::Pipe => {
                if cur.is_empty() {
                    return Err(err(format!("missing command before | in {src}")));
                }
                cmds.push(Command {
                    args: std::mem::take(&mut cur),
                });
            }
            Tok::Open => {
                // Find the matching `)`.
                let mut depth = 0;
                let mut j = i;
                loop {
                    match toks.get(j).map(|t| &t.tok) {
                        Some(Tok::Open) => depth += 1,
                        Some(Tok::Close) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        None => return Err(err(format!("unclosed left paren in {src}"))),
                        _ => {}
                    }
                    j += 1;
                }
                let inner = pipeline(&toks[i + 1..j], src, false)?;
                let mut chain = Vec::new();
                if let Some(Token {
                    tok: Tok::Field(f),
                    spaced: false,
                }) = toks.get(j + 1)
                {
                    chain = f.clone();
                    j += 1;
                }
                cur.push(Operand::Sub(Box::new(inner), chain));
                i = j;
            }
            Tok::Close => return Err(err(format!("unexpected right paren in {src}"))),
            Tok::Field(f) => cur.push(Operand::Field(f.clone())),
            Tok::Var(n, c) => cur.push(Operand::Var(n.clone(), c.clone())),
            Tok::Str(s) => cur.push(Operand::Lit(Value::String(s.clone()))),
            Tok::Num(n) => cur.push(Operand::Lit(n.clone())),
            Tok::Ident(id) => match id.as_str() {
                "true" => cur.push(Operand::Lit(Value::Bool(true))),
                "false" => cur.push(Operand::Lit(Value::Bool(false))),
                "nil" => cur.push(Operand::Lit(Value::Null)),
                f if FUNCS.contains(&f) => cur.push(Operand::Func(f.to_string())),
                other => return Err(err(format!("function {other:?} not defined"))),
            },
            Tok::Declare | Tok::Assign | Tok::Comma => {
                return Err(err(format!("unexpected declaration in {src}")))
            }
        }
        i += 1;
    }
    if cur.is_empty() {
        return Err(err(format!("missing value for command in {src}")));
    }
    cmds.push(Command { args: cur });
    for (n, c) in cmds.iter().enumerate() {
        if c.args.len() > 1 && !matches!(c.args[0], Operand::Func(_)) {
            return Err(err(format!("can't give argument to non-function in {src}")));
        }
        if n > 0 && !matches!(c.args[0], Operand::Func(_)) {
            return Err(err(format!("non-function in pipeline stage in {src}")));
        }
    }
    Ok(Pipeline {
        vars,
        assign,
        cmds,
        src: src.to_string(),
    })
}

// ---- execution ---------------------------------------------------------------------------

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

struct Exec {
    out: String,
    /// Variable scopes, innermost last; `$` is in the first.
    vars: Vec<Vec<(String, Value)>>,
}

/// Go's truth: false, 0, nil, and empty strings, arrays and maps are false.
pub fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// How Go's `fmt` prints a value with `%v` (maps as `map[k:v]`, in key order).
pub fn go_string(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_string).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_string(&o[*k])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

fn field(v: &Value, name: &str, src: &str) -> Result<Value, EngineError> {
    match v {
        Value::Object(o) => o.get(name).cloned().ok_or_else(|| {
            err(format!(
                "executing {src} at <.{name}>: map has no entry for key {name:?}"
            ))
        }),
        Value::Null => Err(err(format!(
            "executing {src} at <.{name}>: nil pointer evaluating .{name}"
        ))),
        other => Err(err(format!(
            "executing {src} at <.{name}>: can't evaluate field {name} in type {}",
            type_name(other)
        ))),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nil",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

fn chain(mut v: Value, names: &[String], src: &str) -> Result<Value, EngineError> {
    for n in names {
        v = field(&v, n, src)?;
    }
    Ok(v)
}

impl Template {
    /// Parses a template; an unknown function or a syntax error is an error naming it.
    pub fn parse(src: &str) -> Result<Template, EngineError> {
        let pieces = split(src)?;
        let mut p = Parser {
            pieces: pieces.into_iter(),
        };
        let (nodes, end) = p.list()?;
        match end {
            Stop::Eof => Ok(Template { nodes }),
            Stop::End => Err(err("unexpected {{end}}")),
            Stop::Else(_, s) => Err(err(format!("unexpected {s}"))),
        }
    }

    /// Runs the template on `data`.
    pub fn execute(&self, data: &Value) -> Result<String, EngineError> {
        let mut e = Exec {
            out: String::new(),
            vars: vec![vec![(String::new(), data.clone())]],
        };
        e.walk(&self.nodes, data)?;
        Ok(e.out)
    }
}

impl Exec {
    fn var(&self, name: &str, src: &str) -> Result<Value, EngineError> {
        for scope in self.vars.iter().rev() {
            if let Some((_, v)) = scope.iter().rev().find(|(n, _)| n == name) {
                return Ok(v.clone());
            }
        }
        Err(err(format!("undefined variable ${name} in {src}")))
    }

    fn set_vars(&mut self, p: &Pipeline, v: &Value) -> Result<(), EngineError> {
        if p.assign {
            let name = &p.vars[0];
            for scope in self.vars.iter_mut().rev() {
                if let Some(slot) = scope.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                    return Ok(());
                }
            }
            return Err(err(format!("undefined variable ${name} in {}", p.src)));
        }
        if let (Some(name), Some(scope)) = (p.vars.first(), self.vars.last_mut()) {
            scope.push((name.clone(), v.clone()));
        }
        Ok(())
    }

    fn walk(&mut self, nodes: &[Node], dot: &Value) -> Result<(), EngineError> {
        for n in nodes {
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Out(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.vars.is_empty() {
                        self.out.push_str(&go_string(&v));
                    } else {
                        self.set_vars(p, &v)?;
                    }
                }
                Node::If(branches, else_part) => {
                    let mut done = false;
                    for (p, body) in branches {
                        self.vars.push(Vec::new());
                        let v = self.pipeline(p, dot)?;
                        if !p.vars.is_empty() {
                            self.set_vars(p, &v)?;
                        }
                        if truth(&v) {
                            self.walk(body, dot)?;
                            done = true;
                        }
                        self.vars.pop();
                        if done {
                            break;
                        }
                    }
                    if !done {
                        if let Some(e) = else_part {
                            self.walk(e, dot)?;
                        }
                    }
                }
                Node::With(p, body, else_part) => {
                    self.vars.push(Vec::new());
                    let v = self.pipeline(p, dot)?;
                    if !p.vars.is_empty() {
                        self.set_vars(p, &v)?;
                    }
                    if truth(&v) {
                        self.walk(body, &v)?;
                    } else if let Some(e) = else_part {
                        self.walk(e, dot)?;
                    }
                    self.vars.pop();
                }
                Node::Range(p, body, else_part) => {
                    let v = self.pipeline(p, dot)?;
                    let items: Vec<(Value, Value)> = match &v {
                        Value::Array(a) => a
                            .iter()
                            .enumerate()
                            .map(|(i, x)| (Value::from(i), x.clone()))
                            .collect(),
                        Value::Object(o) => {
                            let mut keys: Vec<&String> = o.keys().collect();
                            keys.sort();
                            keys.into_iter()
                                .map(|k| (Value::String(k.clone()), o[k].clone()))
                                .collect()
                        }
                        Value::Null => Vec::new(),
                        Value::Number(n) if n.as_i64().is_some_and(|n| n >= 0) => {
                            (0..n.as_i64().unwrap_or(0))
                                .map(|i| (Value::from(i), Value::from(i)))
                                .collect()
                        }
                        other => {
                            return Err(err(format!(
                                "range can't iterate over {} in {}",
                                go_string(other),
                                p.src
                            )))
                        }
                    };
                    if items.is_empty() {
                        if let Some(e) = else_part {
                            self.walk(e, dot)?;
                        }
                        continue;
                    }
                    for (k, x) in items {
                        let mut scope = Vec::new();
                        match p.vars.as_slice() {
                            [v1] => scope.push((v1.clone(), x.clone())),
                            [k1, v1] => {
                                scope.push((k1.clone(), k));
                                scope.push((v1.clone(), x.clone()));
                            }
                            _ => {}
                        }
                        self.vars.push(scope);
                        let r = self.walk(body, &x);
                        self.vars.pop();
                        r?;
                    }
                }
            }
        }
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, EngineError> {
        let mut last: Option<Value> = None;
        for c in &p.cmds {
            last = Some(self.command(c, dot, last, &p.src)?);
        }
        Ok(last.unwrap_or(Value::Null))
    }

    fn operand(&mut self, o: &Operand, dot: &Value, src: &str) -> Result<Value, EngineError> {
        match o {
            Operand::Field(f) => chain(dot.clone(), f, src),
            Operand::Var(n, f) => chain(self.var(n, src)?, f, src),
            Operand::Lit(v) => Ok(v.clone()),
            Operand::Sub(p, f) => {
                let v = self.pipeline(p, dot)?;
                chain(v, f, src)
            }
            Operand::Func(name) => call(name, &[], src),
        }
    }

    fn command(
        &mut self,
        c: &Command,
        dot: &Value,
        piped: Option<Value>,
        src: &str,
    ) -> Result<Value, EngineError> {
        match &c.args[0] {
            Operand::Func(name) => {
                let mut args = Vec::new();
                // `and`/`or` evaluate lazily in Go; values here have no side effects, so
                // evaluating all is the same except for errors in unused branches.
                for a in &c.args[1..] {
                    args.push(self.operand(a, dot, src)?);
                }
                if let Some(p) = piped {
                    args.push(p);
                }
                call(name, &args, src)
            }
            other => {
                if piped.is_some() {
                    return Err(err(format!("non-function in pipeline stage in {src}")));
                }
                self.operand(other, dot, src)
            }
        }
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn compare(a: &Value, b: &Value, src: &str) -> Result<std::cmp::Ordering, EngineError> {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => as_f64(a)
            .zip(as_f64(b))
            .and_then(|(x, y)| x.partial_cmp(&y))
            .ok_or_else(|| err(format!("incomparable numbers in {src}"))),
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => Err(err(format!(
            "incompatible types for comparison ({} and {}) in {src}",
            type_name(a),
            type_name(b)
        ))),
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => as_f64(a) == as_f64(b),
        _ => a == b,
    }
}

fn string_arg<'a>(name: &str, v: &'a Value, src: &str) -> Result<&'a str, EngineError> {
    v.as_str().ok_or_else(|| {
        err(format!(
            "{name}: expected a string, got {} in {src}",
            type_name(v)
        ))
    })
}

fn int_arg(name: &str, v: &Value, src: &str) -> Result<i64, EngineError> {
    v.as_i64()
        .or_else(|| v.as_f64().map(|f| f as i64))
        .ok_or_else(|| {
            err(format!(
                "{name}: expected a number, got {} in {src}",
                type_name(v)
            ))
        })
}

fn arity(name: &str, args: &[Value], n: usize, src: &str) -> Result<(), EngineError> {
    if args.len() != n {
        return Err(err(format!(
            "wrong number of args for {name}: want {n} got {} in {src}",
            args.len()
        )));
    }
    Ok(())
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 && !a.is_string() && !args[i - 1].is_string() {
            out.push(' ');
        }
        out.push_str(&go_string(a));
    }
    out
}

fn call(name: &str, args: &[Value], src: &str) -> Result<Value, EngineError> {
    Ok(match name {
        "and" => {
            if args.is_empty() {
                return Err(err(format!("wrong number of args for and in {src}")));
            }
            args.iter()
                .find(|a| !truth(a))
                .unwrap_or(&args[args.len() - 1])
                .clone()
        }
        "or" => {
            if args.is_empty() {
                return Err(err(format!("wrong number of args for or in {src}")));
            }
            args.iter()
                .find(|a| truth(a))
                .unwrap_or(&args[args.len() - 1])
                .clone()
        }
        "not" => {
            arity(name, args, 1, src)?;
            Value::Bool(!truth(&args[0]))
        }
        "len" => {
            arity(name, args, 1, src)?;
            Value::from(match &args[0] {
                Value::String(s) => s.len(),
                Value::Array(a) => a.len(),
                Value::Object(o) => o.len(),
                other => return Err(err(format!("len of {} in {src}", type_name(other)))),
            })
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return Err(err(format!("wrong number of args for index in {src}")));
            };
            let mut v = first.clone();
            for k in keys {
                v = match (&v, k) {
                    (Value::Object(o), Value::String(s)) => {
                        o.get(s).cloned().unwrap_or(Value::Null)
                    }
                    (Value::Array(a), n) if n.is_number() => {
                        let i = int_arg("index", n, src)?;
                        a.get(usize::try_from(i).unwrap_or(usize::MAX))
                            .cloned()
                            .ok_or_else(|| err(format!("index out of range: {i} in {src}")))?
                    }
                    (Value::Null, _) => return Err(err(format!("index of untyped nil in {src}"))),
                    (x, k) => {
                        return Err(err(format!(
                            "can't index item of type {} with {} in {src}",
                            type_name(x),
                            type_name(k)
                        )))
                    }
                };
            }
            v
        }
        "print" => Value::String(sprint(args)),
        "println" => Value::String(format!(
            "{}\n",
            args.iter().map(go_string).collect::<Vec<_>>().join(" ")
        )),
        "printf" => {
            let Some((f, rest)) = args.split_first() else {
                return Err(err(format!("wrong number of args for printf in {src}")));
            };
            Value::String(printf(string_arg("printf", f, src)?, rest))
        }
        "eq" => {
            let Some((a, rest)) = args.split_first() else {
                return Err(err(format!("missing argument for comparison in {src}")));
            };
            if rest.is_empty() {
                return Err(err(format!("missing argument for comparison in {src}")));
            }
            Value::Bool(rest.iter().any(|b| equal(a, b)))
        }
        "ne" => {
            arity(name, args, 2, src)?;
            Value::Bool(!equal(&args[0], &args[1]))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(name, args, 2, src)?;
            let o = compare(&args[0], &args[1], src)?;
            Value::Bool(match name {
                "lt" => o.is_lt(),
                "le" => o.is_le(),
                "gt" => o.is_gt(),
                _ => o.is_ge(),
            })
        }
        "json" => {
            arity(name, args, 1, src)?;
            Value::String(serde_json::to_string(&args[0]).unwrap_or_default())
        }
        "join" => {
            arity(name, args, 2, src)?;
            let sep = string_arg("join", &args[1], src)?;
            match &args[0] {
                Value::Array(a) => {
                    Value::String(a.iter().map(go_string).collect::<Vec<_>>().join(sep))
                }
                Value::Null => Value::String(String::new()),
                other => {
                    return Err(err(format!(
                        "join: expected a list, got {} in {src}",
                        type_name(other)
                    )))
                }
            }
        }
        "split" => {
            arity(name, args, 2, src)?;
            let s = string_arg("split", &args[0], src)?;
            let sep = string_arg("split", &args[1], src)?;
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::String(p.into())).collect()
            };
            Value::Array(parts)
        }
        "upper" => {
            arity(name, args, 1, src)?;
            Value::String(string_arg(name, &args[0], src)?.to_uppercase())
        }
        "lower" => {
            arity(name, args, 1, src)?;
            Value::String(string_arg(name, &args[0], src)?.to_lowercase())
        }
        "title" => {
            arity(name, args, 1, src)?;
            let s = string_arg(name, &args[0], src)?;
            let mut out = String::new();
            let mut start = true;
            for c in s.chars() {
                if start && c.is_alphanumeric() {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric() && c != '\'';
            }
            Value::String(out)
        }
        "pad" => {
            arity(name, args, 3, src)?;
            let s = string_arg(name, &args[0], src)?;
            let l = int_arg(name, &args[1], src)?.max(0) as usize;
            let r = int_arg(name, &args[2], src)?.max(0) as usize;
            Value::String(format!("{}{s}{}", " ".repeat(l), " ".repeat(r)))
        }
        "truncate" => {
            arity(name, args, 2, src)?;
            let s = string_arg(name, &args[0], src)?;
            let n = int_arg(name, &args[1], src)?.max(0) as usize;
            Value::String(s.chars().take(n).collect())
        }
        other => return Err(err(format!("function {other:?} not defined"))),
    })
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %t %f %e %g %x %X %%`, with
/// flags `-+0 `, width and precision.
fn printf(f: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let chars: Vec<char> = f.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '%' {
            out.push(c);
            i += 1;
            continue;
        }
        i += 1;
        let (mut minus, mut zero, mut plus) = (false, false, false);
        while let Some(&fl) = chars.get(i) {
            match fl {
                '-' => minus = true,
                '0' => zero = true,
                '+' => plus = true,
                ' ' | '#' => {}
                _ => break,
            }
            i += 1;
        }
        let mut width = None;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + d as usize);
            i += 1;
        }
        let mut prec = None;
        if chars.get(i) == Some(&'.') {
            i += 1;
            let mut p = 0;
            while let Some(d) = chars.get(i).and_then(|c| c.to_digit(10)) {
                p = p * 10 + d as usize;
                i += 1;
            }
            prec = Some(p);
        }
        let Some(&verb) = chars.get(i) else {
            out.push_str("%!(NOVERB)");
            break;
        };
        i += 1;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let s = match verb {
            'v' | 's' => {
                let s = go_string(a);
                match prec {
                    Some(p) if verb == 's' => s.chars().take(p).collect(),
                    _ => s,
                }
            }
            'q' => serde_json::to_string(&go_string(a)).unwrap_or_default(),
            't' => match a {
                Value::Bool(b) => b.to_string(),
                other => format!("%!t({})", go_string(other)),
            },
            'd' => match a
                .as_i64()
                .or_else(|| a.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64))
            {
                Some(n) if plus && n >= 0 => format!("+{n}"),
                Some(n) => n.to_string(),
                None => format!("%!d({})", go_string(a)),
            },
            'x' | 'X' => match a {
                Value::Number(n) if n.as_i64().is_some() => {
                    let n = n.as_i64().unwrap_or(0);
                    if verb == 'x' {
                        format!("{n:x}")
                    } else {
                        format!("{n:X}")
                    }
                }
                Value::String(s) => {
                    let h = hex::encode(s.as_bytes());
                    if verb == 'X' {
                        h.to_uppercase()
                    } else {
                        h
                    }
                }
                other => format!("%!{verb}({})", go_string(other)),
            },
            'f' | 'F' | 'e' | 'g' => match a.as_f64() {
                Some(x) => {
                    let p = prec.unwrap_or(6);
                    let s = match verb {
                        'e' => format!("{x:.p$e}"),
                        'g' => match prec {
                            Some(p) => format!("{x:.p$}"),
                            None => x.to_string(),
                        },
                        _ => format!("{x:.p$}"),
                    };
                    if plus && x >= 0.0 {
                        format!("+{s}")
                    } else {
                        s
                    }
                }
                None => format!("%!{verb}({})", go_string(a)),
            },
            other => format!("%!{other}({})", go_string(a)),
        };
        let w = width.unwrap_or(0);
        let len = s.chars().count();
        if len >= w {
            out.push_str(&s);
        } else if minus {
            out.push_str(&s);
            out.push_str(&" ".repeat(w - len));
        } else if zero && verb != 's' && verb != 'v' && verb != 'q' {
            let (sign, digits) = match s.strip_prefix('-') {
                Some(d) => ("-", d),
                None => ("", s.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(w - len));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(w - len));
            out.push_str(&s);
        }
    }
    let extra: Vec<String> = args
        .map(|a| format!("{}={}", type_name(a), go_string(a)))
        .collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

/// Runs `src` on `data` (parse and execute).
pub fn render(src: &str, data: &Value) -> Result<String, EngineError> {
    Template::parse(src)?.execute(data)
}

/// Docker's `table` directive: `table {{.A}}\t{{.B}}` prints a header row and aligns the
/// tab-separated columns. Returns the template without the directive, and whether it was
/// there.
pub fn strip_table(format: &str) -> (String, bool) {
    match format.strip_prefix("table") {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
            (rest.trim_start().to_string(), true)
        }
        _ => (format.to_string(), false),
    }
}

/// Aligns tab-separated rows as Go's `tabwriter` in docker's tables does (minimum width
/// 10, padding 3; the last cell of a row is not padded).
pub fn tabulate(rows: &[String]) -> String {
    let split: Vec<Vec<&str>> = rows.iter().map(|r| r.split('\t').collect()).collect();
    let cols = split.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in &split {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max((c.chars().count() + 3).max(10));
            }
        }
    }
    let mut out = String::new();
    for r in &split {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                line.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
            }
        }
        out.push_str(line.trim_end_matches(' '));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: &Value) -> String {
        render(t, v).unwrap_or_else(|e| panic!("{t}: {e}"))
    }

    fn inspect() -> Value {
        json!({
            "Id": "abc123",
            "Name": "/web",
            "State": {"Status": "running", "Running": true, "Pid": 4242, "ExitCode": 0, "Health": null},
            "Config": {"Env": ["A=1", "PATH=/bin"], "Labels": {"b": "2", "a": "1"}, "Cmd": ["sh", "-c", "x"]},
            "NetworkSettings": {"Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}], "443/tcp": null}},
            "Mounts": [],
        })
    }

    #[test]
    fn fields_and_text() {
        let v = inspect();
        assert_eq!(r("{{.State.Status}}", &v), "running");
        assert_eq!(
            r("{{.Name}} is {{.State.Status}} ({{.State.Pid}})", &v),
            "/web is running (4242)"
        );
        assert_eq!(r("{{ .State.Running }}", &v), "true");
        assert_eq!(r("{{.State.Health}}", &v), "<nil>");
        assert_eq!(r("{{.Config.Cmd}}", &v), "[sh -c x]");
        assert_eq!(r("{{.Config.Labels}}", &v), "map[a:1 b:2]");
        assert_eq!(r("no actions", &v), "no actions");
    }

    #[test]
    fn unknown_fields_are_errors_as_in_docker() {
        let v = inspect();
        let e = render("{{.Nope}}", &v).unwrap_err().to_string();
        assert!(e.contains("map has no entry for key \"Nope\""), "{e}");
        let e = render("{{.State.Status.X}}", &v).unwrap_err().to_string();
        assert!(e.contains("can't evaluate field X in type string"), "{e}");
        let e = render("{{.State.Health.Status}}", &v)
            .unwrap_err()
            .to_string();
        assert!(e.contains("nil pointer"), "{e}");
        let e = render("{{nosuch .}}", &v).unwrap_err().to_string();
        assert!(e.contains("function \"nosuch\" not defined"), "{e}");
        assert!(render("{{if .State.Running}}x", &v).is_err(), "no end");
        assert!(render("{{end}}", &v).is_err());
        assert!(render("{{.State", &v).is_err());
        assert!(render("{{define \"x\"}}{{end}}", &v).is_err());
    }

    #[test]
    fn json_join_and_friends() {
        let v = inspect();
        assert_eq!(r("{{json .Config.Cmd}}", &v), r#"["sh","-c","x"]"#);
        assert_eq!(r("{{json .State.Status}}", &v), r#""running""#);
        assert_eq!(r("{{join .Config.Env \",\"}}", &v), "A=1,PATH=/bin");
        assert_eq!(r("{{upper .State.Status}}", &v), "RUNNING");
        assert_eq!(r("{{lower \"ABC\"}}", &v), "abc");
        assert_eq!(r("{{title \"hello big world\"}}", &v), "Hello Big World");
        assert_eq!(r("{{split \"a:b:c\" \":\"}}", &v), "[a b c]");
        assert_eq!(r("{{index (split \"a:b:c\" \":\") 1}}", &v), "b");
        assert_eq!(r("{{.State.Status | upper}}", &v), "RUNNING");
        assert_eq!(r("{{.Name | printf \"%s!\"}}", &v), "/web!");
        assert_eq!(r("{{println .State.Pid}}", &v), "4242\n");
        assert_eq!(r("{{pad \"x\" 1 2}}|", &v), " x  |");
        assert_eq!(r("{{truncate .Id 3}}", &v), "abc");
        assert_eq!(r("{{len .Config.Env}}", &v), "2");
        assert_eq!(r("{{index .Config.Labels \"a\"}}", &v), "1");
        assert_eq!(
            r(
                r#"{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}"#,
                &v
            ),
            "8080"
        );
        assert_eq!(
            r(
                "{{printf \"%5d|%-4s|%.2f|%q\" 42 \"ab\" 3.14159 \"x\"}}",
                &v
            ),
            "   42|ab  |3.14|\"x\""
        );
        assert_eq!(r("{{print 1 2 \"a\" 3}}", &v), "1 2a3");
    }

    #[test]
    fn control_flow() {
        let v = inspect();
        assert_eq!(r("{{if .State.Running}}up{{else}}down{{end}}", &v), "up");
        assert_eq!(
            r(
                "{{if .State.ExitCode}}bad{{else if .State.Running}}ok{{else}}?{{end}}",
                &v
            ),
            "ok"
        );
        assert_eq!(
            r("{{if eq .State.Status \"exited\" \"running\"}}y{{end}}", &v),
            "y"
        );
        assert_eq!(
            r(
                "{{if and .State.Running (not .State.ExitCode)}}y{{end}}",
                &v
            ),
            "y"
        );
        assert_eq!(r("{{if gt .State.Pid 100}}big{{end}}", &v), "big");
        assert_eq!(
            r("{{range .Config.Env}}[{{.}}]{{end}}", &v),
            "[A=1][PATH=/bin]"
        );
        assert_eq!(
            r("{{range $i, $e := .Config.Env}}{{$i}}={{$e}} {{end}}", &v),
            "0=A=1 1=PATH=/bin "
        );
        // Maps range in key order, as in Go.
        assert_eq!(
            r(
                "{{range $k, $v := .Config.Labels}}{{$k}}:{{$v}},{{end}}",
                &v
            ),
            "a:1,b:2,"
        );
        assert_eq!(r("{{range .Mounts}}x{{else}}none{{end}}", &v), "none");
        assert_eq!(r("{{with .State}}{{.Status}}{{end}}", &v), "running");
        assert_eq!(
            r("{{with .State.Health}}h{{else}}no health{{end}}", &v),
            "no health"
        );
        assert_eq!(
            r("{{range $p, $conf := .NetworkSettings.Ports}}{{$p}}->{{if $conf}}{{(index $conf 0).HostPort}}{{else}}-{{end}} {{end}}", &v),
            "443/tcp->- 80/tcp->8080 "
        );
        assert_eq!(r("{{$x := .Name}}{{$x}}{{$x = \"b\"}}{{$x}}", &v), "/webb");
        assert_eq!(r("{{range .Config.Env}}{{$.Name}}{{end}}", &v), "/web/web");
    }

    #[test]
    fn trimming_and_comments() {
        let v = inspect();
        assert_eq!(r("a  {{- .State.Status -}}  b", &v), "arunningb");
        assert_eq!(r("a {{/* note */}}b", &v), "a b");
        assert_eq!(r("a {{- /* note */ -}} b", &v), "ab");
        assert_eq!(r("{{\"}}\"}}", &v), "}}");
    }

    #[test]
    fn table_directive_and_alignment() {
        assert_eq!(
            strip_table("table {{.ID}}\t{{.Names}}"),
            ("{{.ID}}\t{{.Names}}".into(), true)
        );
        assert_eq!(strip_table("{{.ID}}"), ("{{.ID}}".into(), false));
        assert_eq!(strip_table("tablex"), ("tablex".into(), false));
        let out = tabulate(&["CONTAINER ID\tNAMES".into(), "abc\tweb".into()]);
        assert_eq!(out, "CONTAINER ID   NAMES\nabc            web\n");
    }
}
