//! Shell-like word processing the builder applies to instruction arguments:
//! variable expansion (`$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:+a}`, `${V+a}`,
//! `${V:?e}`, `${V?e}`, `${V#p}`, `${V##p}`, `${V%p}`, `${V%%p}`, `${V/p/r}`, `${V//p/r}`),
//! quote removal and (for [`expand_words`]) word splitting. This mirrors BuildKit's
//! `shell.Lex`, including its pattern language: `*` and `?` are wildcards, `\*`, `\?` and
//! `\\` literal, every other character (also `[`) literal; a pattern is matched as a
//! regular expression with leftmost-first semantics, as BuildKit does.

use thiserror::Error;

/// Failure to expand a word.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExpandError {
    /// A `'` without its closing quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A `"` without its closing quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// `${` without `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${:x}`, `${{x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${V<op>...}` with an operator the builder does not support.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${V/pattern` without the `/` that ends the pattern.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// A `#`, `%` or `/` pattern with an escape other than `\*`, `\?`, `\\`.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern as written (after expansion).
        pattern: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `${V?msg}` / `${V:?msg}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message given in the word, or the default one.
        message: String,
    },
}

/// Options of the lexer.
#[derive(Clone, Copy, Debug)]
pub struct Lexer {
    /// The escape character (`\` or `` ` ``, from the `# escape=` directive).
    pub escape: char,
    /// Keep quotes in the output instead of removing them.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as they are (`$X`, `${X}`).
    pub skip_unset: bool,
    /// Only expand `$`: quotes are ordinary characters (heredoc bodies).
    pub dollar_only: bool,
}

impl Default for Lexer {
    fn default() -> Self {
        Lexer::new('\\')
    }
}

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

impl Lexer {
    /// A lexer with the given escape character and Docker's defaults.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
            dollar_only: false,
        }
    }

    /// Expands `word` into one string (quotes removed, no splitting).
    pub fn process_word(
        &self,
        word: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, ExpandError> {
        let chars: Vec<char> = word.chars().collect();
        let mut w = WordState {
            lex: self,
            chars: &chars,
            pos: 0,
            lookup,
        };
        let (s, _) = w.process_stop_on(None, self.raw_escapes)?;
        Ok(s)
    }

    /// Expands `word` and splits the result into words on unquoted white space.
    pub fn process_words(
        &self,
        word: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Vec<String>, ExpandError> {
        let chars: Vec<char> = word.chars().collect();
        let mut w = WordState {
            lex: self,
            chars: &chars,
            pos: 0,
            lookup,
        };
        let (_, words) = w.process_stop_on(None, self.raw_escapes)?;
        Ok(words)
    }
}

/// Expands one word with the default escape character `\`.
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    Lexer::new('\\').process_word(word, lookup)
}

/// Expands and splits a word (as Docker does for EXPOSE) with the escape `\`.
pub fn expand_words(
    word: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ExpandError> {
    Lexer::new('\\').process_words(word, lookup)
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    word: String,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char) {
        if c.is_whitespace() {
            if self.in_word && !self.word.is_empty() {
                self.words.push(std::mem::take(&mut self.word));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }
    fn add_raw_char(&mut self, c: char) {
        self.word.push(c);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        for c in s.chars() {
            self.add_char(c);
        }
    }
    fn add_raw_string(&mut self, s: &str) {
        self.word.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.word.is_empty() {
            self.words.push(std::mem::take(&mut self.word));
        }
        self.words
    }
}

struct WordState<'a> {
    lex: &'a Lexer,
    chars: &'a [char],
    pos: usize,
    lookup: Lookup<'a>,
}

impl WordState<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until `stop` (unquoted) or the end. Returns the joined result
    /// and the split words. `raw_escapes` keeps escape characters in the output (the
    /// top level follows the lexer's setting; substitution patterns are always raw).
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.pos += 1;
                return Ok((result, words.finish()));
            }
            if c == '<' {
                // `<<` keeps the blanks after it in the same word, so `<<  EOF` is one
                // heredoc marker (BuildKit: "allow whitespace in heredocs").
                self.pos += 1;
                let mut s = String::from("<");
                if self.peek() == Some('<') {
                    self.pos += 1;
                    s.push('<');
                    while let Some(b @ (' ' | '\t' | '\r')) = self.peek() {
                        self.pos += 1;
                        s.push(b);
                    }
                }
                words.add_raw_string(&s);
                result.push_str(&s);
            } else if !self.lex.dollar_only && (c == '\'' || c == '"') {
                let s = if c == '\'' {
                    self.process_single_quote()?
                } else {
                    self.process_double_quote()?
                };
                words.add_raw_string(&s);
                result.push_str(&s);
            } else if c == '$' {
                let s = self.process_dollar()?;
                words.add_string(&s);
                result.push_str(&s);
            } else {
                self.pos += 1;
                let mut ch = c;
                if c == self.lex.escape {
                    if self.lex.dollar_only {
                        // In heredoc bodies only `\$` and `\\` are escapes.
                        match self.peek() {
                            Some('$') => {
                                self.pos += 1;
                                words.add_raw_char('$');
                                result.push('$');
                                continue;
                            }
                            Some(n) if n == c => {
                                self.pos += 1;
                            }
                            _ => {}
                        }
                        words.add_raw_char(c);
                        result.push(c);
                        continue;
                    }
                    if raw_escapes {
                        words.add_raw_char(c);
                        result.push(c);
                    }
                    match self.next() {
                        None => break,
                        Some(n) => ch = n,
                    }
                    words.add_raw_char(ch);
                } else {
                    words.add_char(ch);
                }
                result.push(ch);
            }
        }
        match stop {
            Some('/') => Err(ExpandError::MissingSlash),
            Some(_) => Err(ExpandError::MissingBrace),
            None => Ok((result, words.finish())),
        }
    }

    fn process_single_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // the quote
        let mut out = String::new();
        if self.lex.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => return Err(ExpandError::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ExpandError> {
        self.pos += 1;
        let mut out = String::new();
        if self.lex.raw_quotes {
            out.push('"');
        }
        loop {
            let Some(c) = self.peek() else {
                return Err(ExpandError::UnterminatedDoubleQuote);
            };
            if c == '"' {
                self.pos += 1;
                if self.lex.raw_quotes {
                    out.push('"');
                }
                return Ok(out);
            }
            if c == '$' {
                let s = self.process_dollar()?;
                out.push_str(&s);
                continue;
            }
            self.pos += 1;
            let mut ch = c;
            if c == self.lex.escape {
                if self.lex.raw_escapes {
                    out.push(c);
                }
                match self.peek() {
                    None => continue,
                    Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                        self.pos += 1;
                        ch = n;
                    }
                    Some(_) => {}
                }
            }
            out.push(ch);
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    self.pos += 1;
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.pos += 1;
                name.push(c);
                return name;
            }
            if !(c.is_alphanumeric() || c == '_') {
                break;
            }
            self.pos += 1;
            name.push(c);
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, ExpandError> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match (self.lookup)(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.pos += 1; // '{'
        match self.peek() {
            None => return Err(ExpandError::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandError::BadSubstitution),
            _ => {}
        }
        let name = self.process_name();
        let Some(op) = self.next() else {
            return Err(ExpandError::MissingBrace);
        };
        match op {
            '}' => Ok(match (self.lookup)(&name) {
                Some(v) => v,
                None if self.lex.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let mut null_is_unset = false;
                let mut op = op;
                let mut ops = op.to_string();
                if op == ':' {
                    null_is_unset = true;
                    op = self.next().ok_or(ExpandError::MissingBrace)?;
                    ops.push(op);
                    if !matches!(op, '+' | '-' | '?') {
                        return Err(ExpandError::UnsupportedModifier(ops));
                    }
                }
                // A pattern keeps its escapes: `\*` is a literal star, not a wildcard.
                let is_pattern = op == '#' || op == '%';
                let (word, _) = self.process_stop_on(Some('}'), is_pattern)?;
                let value = (self.lookup)(&name);
                if self.lex.skip_unset && value.is_none() {
                    return Ok(format!("${{{name}{ops}{word}}}"));
                }
                let unset = value.is_none() || (null_is_unset && value.as_deref() == Some(""));
                match op {
                    '-' => Ok(if unset {
                        word
                    } else {
                        value.unwrap_or_default()
                    }),
                    '+' => Ok(if unset { String::new() } else { word }),
                    '?' => {
                        if value.is_none() || unset {
                            let message = if !word.is_empty() {
                                word
                            } else if value.is_none() {
                                "is not allowed to be unset".to_string()
                            } else {
                                "is not allowed to be empty".to_string()
                            };
                            return Err(ExpandError::Required { name, message });
                        }
                        Ok(value.unwrap_or_default())
                    }
                    _ => {
                        // `%%`/`##` (the doubled operator, seen after expansion as BuildKit
                        // does) match the longest text, `%`/`#` the shortest.
                        let (greedy, pattern) = match word.strip_prefix(op) {
                            Some(rest) => (true, rest),
                            None => (false, word.as_str()),
                        };
                        let value = value.unwrap_or_default();
                        if op == '#' {
                            trim_prefix(&value, pattern, greedy)
                        } else {
                            trim_suffix(&value, pattern, greedy)
                        }
                    }
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.pos += 1;
                }
                let (pattern, _) = self.process_stop_on(Some('/'), true)?;
                let (replacement, _) = self.process_stop_on(Some('}'), true)?;
                let Some(value) = (self.lookup)(&name) else {
                    if self.lex.skip_unset {
                        return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                    }
                    return Ok(String::new());
                };
                let re = pattern_regex(&pattern, true, false)?;
                Ok(if replace_all {
                    re.replace_all(&value, replacement.as_str()).into_owned()
                } else {
                    match re.find(&value) {
                        Some(m) => {
                            format!("{}{replacement}{}", &value[..m.start()], &value[m.end()..])
                        }
                        None => value,
                    }
                })
            }
            other => Err(ExpandError::UnsupportedModifier(other.to_string())),
        }
    }
}

/// Converts a substitution pattern to a regular expression as BuildKit does: `*` is
/// `.*` (`.*?` when not greedy), `?` is `.`, `\*`/`\?`/`\\` are literal, `\}` and `\/`
/// drop their escape, any other escape is an error, everything else is literal.
fn pattern_regex(pattern: &str, greedy: bool, anchored: bool) -> Result<regex::Regex, ExpandError> {
    let invalid = |reason: String| ExpandError::InvalidPattern {
        pattern: pattern.to_string(),
        reason,
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    if anchored {
        out.push('^');
    }
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(if greedy { ".*" } else { ".*?" }),
            '?' => out.push('.'),
            '\\' => {
                if matches!(chars.peek(), Some('}' | '/')) {
                    continue;
                }
                match chars.next() {
                    Some(e @ ('*' | '?' | '\\')) => {
                        out.push('\\');
                        out.push(e);
                    }
                    Some(e) => return Err(invalid(format!("invalid escape '\\{e}'"))),
                    None => return Err(invalid("a trailing escape character".into())),
                }
            }
            _ => {
                let mut buf = [0u8; 4];
                out.push_str(&regex::escape(c.encode_utf8(&mut buf)));
            }
        }
    }
    regex::Regex::new(&out).map_err(|e| invalid(e.to_string()))
}

/// `${V#p}` / `${V##p}`: removes the text the anchored pattern matches first.
fn trim_prefix(value: &str, pattern: &str, greedy: bool) -> Result<String, ExpandError> {
    let re = pattern_regex(pattern, greedy, true)?;
    Ok(match re.find(value) {
        Some(m) => value[m.end()..].to_string(),
        None => value.to_string(),
    })
}

/// `${V%p}` / `${V%%p}`: the same on the reversed value with the reversed pattern.
fn trim_suffix(value: &str, pattern: &str, greedy: bool) -> Result<String, ExpandError> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reversed, &reverse_pattern(pattern), greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern keeping each escape before the character it escapes (`a\*c` →
/// `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        units.push(&chars[i..i + len]);
        i += len;
    }
    units.iter().rev().flat_map(|u| u.iter()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "A" => Some("a".into()),
            "EMPTY" => Some(String::new()),
            "SP" => Some("x  y".into()),
            "PATHV" => Some("/usr/local/bin/app.tar.gz".into()),
            _ => None,
        }
    }

    fn with(vars: &[(&str, &str)], word: &str) -> Result<String, ExpandError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        expand(word, &move |n: &str| {
            vars.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone())
        })
    }

    /// Patterns are BuildKit's: escaped `*`/`?` are literal, `[` is an ordinary character,
    /// `%`/`#` shortest, doubled longest.
    #[test]
    fn trim_patterns() {
        let v = [("F", "v1.2*rc*"), ("B", "[ab]x")];
        assert_eq!(with(&v, "${F%\\*}").unwrap(), "v1.2*rc");
        assert_eq!(with(&v, "${F%%\\**}").unwrap(), "v1.2");
        assert_eq!(with(&v, "${F%%\\*rc\\*}").unwrap(), "v1.2");
        assert_eq!(with(&v, "${F#v?}").unwrap(), ".2*rc*");
        assert_eq!(with(&v, "${F##*.}").unwrap(), "2*rc*");
        assert_eq!(with(&v, "${B#[ab]}").unwrap(), "x");
        assert_eq!(with(&v, "${B#[}").unwrap(), "ab]x");
        assert!(matches!(
            with(&v, "${F#\\q}"),
            Err(ExpandError::InvalidPattern { .. })
        ));
        assert!(matches!(
            with(&v, "${F:#x}"),
            Err(ExpandError::UnsupportedModifier(_))
        ));
    }

    /// `${V/p/r}` replaces the first (longest) match, `${V//p/r}` every match.
    #[test]
    fn replace_patterns() {
        let v = [("P", "/usr/lib/x86_64/lib"), ("N", "lib"), ("E", "")];
        assert_eq!(with(&v, "${P/lib/share}").unwrap(), "/usr/share/x86_64/lib");
        assert_eq!(
            with(&v, "${P//$N/share}").unwrap(),
            "/usr/share/x86_64/share"
        );
        assert_eq!(with(&v, "${P//\\//:}").unwrap(), ":usr:lib:x86_64:lib");
        assert_eq!(with(&v, "${P/\\/*\\//}").unwrap(), "lib");
        assert_eq!(with(&v, "${P/?/}").unwrap(), "usr/lib/x86_64/lib");
        assert_eq!(with(&v, "${P/zzz/y}").unwrap(), "/usr/lib/x86_64/lib");
        assert_eq!(with(&v, "${E/$E/pre}").unwrap(), "pre");
        assert_eq!(with(&v, "${UNSET//a/b}").unwrap(), "");
        assert_eq!(with(&v, "${P//}").unwrap_err(), ExpandError::MissingSlash);
        let mut skip = Lexer::new('\\');
        skip.skip_unset = true;
        assert_eq!(
            skip.process_word("${UNSET/a/b}", &|_| None).unwrap(),
            "${UNSET/a/b}"
        );
    }

    /// `<<` takes the blanks after it into the same word (heredoc markers); a lone `<`
    /// is an ordinary character.
    #[test]
    fn double_less_than_keeps_following_blanks() {
        let none = |_: &str| None;
        assert_eq!(
            Lexer::new('\\')
                .process_words("a <<  B c<d", &none)
                .unwrap(),
            ["a", "<<  B", "c<d"]
        );
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("$A", "a"),
            ("${A}", "a"),
            ("x${A}y", "xay"),
            ("$UNSET", ""),
            ("${UNSET:-def}", "def"),
            ("${EMPTY:-def}", "def"),
            ("${EMPTY-def}", ""),
            ("${UNSET-def}", "def"),
            ("${A:-def}", "a"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET+alt}", ""),
            ("\\$A", "$A"),
            ("'$A'", "$A"),
            ("\"$A\"", "a"),
            ("\"\\$A\"", "$A"),
            ("\"a\\b\"", "a\\b"),
            ("a\\ b", "a b"),
            ("$", "$"),
            ("$$", ""), // `$$` is a special parameter, unset in the builder
            ("${UNSET:-${A}x}", "ax"),
            ("${UNSET:-'q v'}", "q v"),
            ("${PATHV##*/}", "app.tar.gz"),
            ("${PATHV#*/}", "usr/local/bin/app.tar.gz"),
            ("${PATHV%.*}", "/usr/local/bin/app.tar"),
            ("${PATHV%%.*}", "/usr/local/bin/app"),
            ("${A:?}", "a"),
            ("é$A", "éa"),
            ("$A-$A", "a-a"),
            ("$1x", "x"),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env).unwrap(), *want, "input {input:?}");
        }
    }

    #[test]
    fn errors() {
        let cases: &[(&str, &str)] = &[
            (
                "'abc",
                "unexpected end of statement while looking for matching single-quote",
            ),
            (
                "\"abc",
                "unexpected end of statement while looking for matching double-quote",
            ),
            ("${A", "syntax error: missing '}'"),
            ("${}", "syntax error: bad substitution"),
            ("${:a}", "syntax error: bad substitution"),
            ("${UNSET:?}", "UNSET: is not allowed to be unset"),
            ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
            ("${UNSET?must set}", "UNSET: must set"),
            ("${A/x", "syntax error: missing '/' in ${}"),
            ("${A/x/y", "syntax error: missing '}'"),
            ("${A=x}", "unsupported modifier (=) in substitution"),
            ("${A:=x}", "unsupported modifier (:=) in substitution"),
        ];
        for (input, want) in cases {
            assert_eq!(
                expand(input, &env).unwrap_err().to_string(),
                *want,
                "input {input:?}"
            );
        }
        assert!(expand("${EMPTY?}", &env).is_ok());
    }

    #[test]
    fn words() {
        assert_eq!(
            expand_words("80 $SP \"$SP\"", &env).unwrap(),
            vec!["80", "x", "y", "x  y"]
        );
        assert_eq!(expand_words("  a   b ", &env).unwrap(), vec!["a", "b"]);
        assert_eq!(expand_words("a\\ b", &env).unwrap(), vec!["a b"]);
    }

    #[test]
    fn backtick_escape() {
        let lex = Lexer::new('`');
        assert_eq!(lex.process_word("`$A c:\\dir", &env).unwrap(), "$A c:\\dir");
    }

    #[test]
    fn skip_unset_and_raw() {
        let mut lex = Lexer::new('\\');
        lex.skip_unset = true;
        assert_eq!(
            lex.process_word("$X ${Y} ${Z:-d} $A", &env).unwrap(),
            "$X ${Y} ${Z:-d} a"
        );
        let mut raw = Lexer::new('\\');
        raw.raw_quotes = true;
        raw.raw_escapes = true;
        assert_eq!(
            raw.process_words("<<\"EOF\" 'a b'", &env).unwrap(),
            vec!["<<\"EOF\"", "'a b'"]
        );
    }

    #[test]
    fn dollar_only() {
        let mut lex = Lexer::new('\\');
        lex.dollar_only = true;
        assert_eq!(
            lex.process_word("echo \"$A\" '$A' \\$A \\n", &env).unwrap(),
            "echo \"a\" 'a' $A \\n"
        );
    }
}
