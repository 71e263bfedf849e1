//! `.dockerignore` matching with Docker's semantics (moby/patternmatcher):
//! Go `filepath.Match` syntax per path segment (`*`, `?`, `[a-z]`, `[^a]`, `\x`),
//! `**` for any number of directories, `!` exceptions where the last matching
//! pattern wins, and a path is excluded when it or one of its parent directories
//! matches.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// A `.dockerignore` that could not be read or parsed.
#[derive(Debug, Error)]
pub enum IgnoreError {
    /// The file exists but could not be read.
    #[error("failed to read {path}: {source}")]
    Read {
        /// The ignore file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A pattern is malformed (e.g. an unclosed `[`).
    #[error("{file}:{line}: syntax error in pattern {pattern:?}")]
    BadPattern {
        /// The ignore file name (`.dockerignore`).
        file: String,
        /// 1-based line.
        line: usize,
        /// The pattern as written.
        pattern: String,
    },
    /// A line that is only `!`.
    #[error("{file}:{line}: illegal exclusion pattern: \"!\"")]
    EmptyExclusion {
        /// The ignore file name.
        file: String,
        /// 1-based line.
        line: usize,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `*`: any run of non-separator characters.
    Star,
    /// `?`: one non-separator character.
    Quest,
    /// `[...]`: negated flag and ranges.
    Class(bool, Vec<(char, char)>),
    /// `**/` or inner `**`: `(.*/)?`.
    DoubleStar,
    /// trailing `**`: `.*`.
    AnyTail,
}

/// One compiled pattern.
#[derive(Clone, Debug)]
pub struct Pattern {
    text: String,
    exclusion: bool,
    toks: Vec<Tok>,
}

impl Pattern {
    /// The cleaned pattern text (without the `!`).
    pub fn as_str(&self) -> &str {
        &self.text
    }
    /// Whether this is an exception (`!pattern`).
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Compiles one cleaned pattern. `None` if malformed.
    fn compile(text: &str) -> Option<Vec<Tok>> {
        let chars: Vec<char> = text.chars().collect();
        let mut toks = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            match c {
                '*' if chars.get(i + 1) == Some(&'*') => {
                    i += 2;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i >= chars.len() {
                        toks.push(Tok::AnyTail);
                    } else {
                        toks.push(Tok::DoubleStar);
                    }
                    continue;
                }
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Quest),
                '[' => {
                    let (neg, ranges, used) = parse_class(&chars[i + 1..])?;
                    toks.push(Tok::Class(neg, ranges));
                    i += 1 + used;
                    continue;
                }
                '\\' => {
                    // Go's Match rejects a trailing backslash.
                    let n = *chars.get(i + 1)?;
                    toks.push(Tok::Lit(n));
                    i += 2;
                    continue;
                }
                _ => toks.push(Tok::Lit(c)),
            }
            i += 1;
        }
        Some(toks)
    }
}

/// Parses a class body after `[`; returns (negated, ranges, chars consumed incl. `]`).
/// A parsed class: (negated, inclusive ranges, chars consumed incl. `]`).
type Class = (bool, Vec<(char, char)>, usize);

fn parse_class(p: &[char]) -> Option<Class> {
    let mut i = 0;
    let mut neg = false;
    if p.first() == Some(&'^') {
        neg = true;
        i = 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *p.get(i)?;
        if c == ']' && !first {
            return Some((neg, ranges, i + 1));
        }
        first = false;
        let lo = class_char(p, &mut i)?;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|&c| c != ']') {
            i += 1;
            hi = class_char(p, &mut i)?;
            if hi < lo {
                return None;
            }
        }
        ranges.push((lo, hi));
    }
}

fn class_char(p: &[char], i: &mut usize) -> Option<char> {
    let c = *p.get(*i)?;
    if c == '-' || c == ']' {
        // Go rejects an unescaped '-' or ']' where a class character is expected.
        return None;
    }
    if c == '\\' {
        let n = *p.get(*i + 1)?;
        *i += 2;
        return Some(n);
    }
    *i += 1;
    Some(c)
}

/// NFA state: token index and whether we are inside a `**` run.
type State = (usize, bool);

fn closure(toks: &[Tok], set: &mut Vec<State>) {
    let mut k = 0;
    while k < set.len() {
        let (i, inside) = set[k];
        if !inside {
            if let Some(Tok::Star | Tok::DoubleStar | Tok::AnyTail) = toks.get(i) {
                let n = (i + 1, false);
                if !set.contains(&n) {
                    set.push(n);
                }
            }
        }
        k += 1;
    }
}

fn step(toks: &[Tok], set: &[State], c: char) -> Vec<State> {
    let mut out: Vec<State> = Vec::new();
    let mut add = |s: State| {
        if !out.contains(&s) {
            out.push(s);
        }
    };
    for &(i, _inside) in set {
        match toks.get(i) {
            Some(Tok::Lit(l)) if *l == c => add((i + 1, false)),
            Some(Tok::Star) if c != '/' => add((i, false)),
            Some(Tok::Quest) if c != '/' => add((i + 1, false)),
            Some(Tok::Class(neg, ranges)) if c != '/' => {
                let hit = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
                if hit != *neg {
                    add((i + 1, false));
                }
            }
            Some(Tok::DoubleStar) => {
                add((i, true));
                if c == '/' {
                    add((i + 1, false));
                }
            }
            Some(Tok::AnyTail) => add((i, false)),
            _ => {}
        }
    }
    closure(toks, &mut out);
    out
}

fn start(toks: &[Tok]) -> Vec<State> {
    let mut s = vec![(0, false)];
    closure(toks, &mut s);
    s
}

fn accepts(toks: &[Tok], set: &[State]) -> bool {
    set.contains(&(toks.len(), false))
}

/// A compiled `.dockerignore`.
#[derive(Clone, Debug, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
    has_exclusions: bool,
}

impl DockerIgnore {
    /// Reads `<context>/.dockerignore`; a missing file means "nothing excluded".
    pub fn load(context_dir: &Path) -> Result<DockerIgnore, IgnoreError> {
        let path = context_dir.join(".dockerignore");
        match std::fs::read(&path) {
            Ok(bytes) => DockerIgnore::parse(".dockerignore", &String::from_utf8_lossy(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerIgnore::default()),
            Err(source) => Err(IgnoreError::Read { path, source }),
        }
    }

    /// Parses the text of an ignore file (`file` names it in errors).
    pub fn parse(file: &str, text: &str) -> Result<DockerIgnore, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            if raw.starts_with('#') {
                continue;
            }
            let mut p = raw.trim();
            if p.is_empty() {
                continue;
            }
            let exclusion = p.starts_with('!');
            if exclusion {
                p = p[1..].trim();
                if p.is_empty() {
                    return Err(IgnoreError::EmptyExclusion {
                        file: file.to_string(),
                        line,
                    });
                }
            }
            let mut cleaned = clean_path(p);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let toks = Pattern::compile(&cleaned).ok_or_else(|| IgnoreError::BadPattern {
                file: file.to_string(),
                line,
                pattern: raw.trim().to_string(),
            })?;
            patterns.push(Pattern {
                text: cleaned,
                exclusion,
                toks,
            });
        }
        let has_exclusions = patterns.iter().any(|p| p.exclusion);
        Ok(DockerIgnore {
            patterns,
            has_exclusions,
        })
    }

    /// The patterns in file order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any `!` exception exists.
    pub fn has_exclusions(&self) -> bool {
        self.has_exclusions
    }

    /// Whether `rel_path` (relative to the context, `/`-separated) is excluded
    /// from the build context: the last pattern that matches the path or one of
    /// its parent directories decides. `is_dir` is accepted for callers' clarity;
    /// like Docker, matching does not depend on it (`foo/` matches a file `foo`).
    pub fn is_excluded(&self, rel_path: &str, is_dir: bool) -> bool {
        let _ = is_dir;
        let path = clean_path(rel_path.trim_start_matches('/'));
        if path == "." || path.is_empty() {
            return false;
        }
        let mut excluded = false;
        for p in &self.patterns {
            if p.exclusion != excluded {
                continue;
            }
            if matches_or_parent(&p.toks, &path) {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether some path strictly inside directory `rel_dir` could be matched by
    /// an exception pattern. When a directory is excluded and this is false, the
    /// walker can skip the whole subtree.
    pub fn may_reinclude_inside(&self, rel_dir: &str) -> bool {
        if !self.has_exclusions {
            return false;
        }
        let dir = clean_path(rel_dir.trim_start_matches('/'));
        let prefix = if dir == "." {
            String::new()
        } else {
            format!("{dir}/")
        };
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            let mut set = start(&p.toks);
            for c in prefix.chars() {
                set = step(&p.toks, &set, c);
                if set.is_empty() {
                    return false;
                }
            }
            !set.is_empty()
        })
    }

    /// Convenience for walkers: `rel_dir` is excluded and nothing inside it can
    /// be re-included, so the subtree may be skipped entirely.
    pub fn can_skip_dir(&self, rel_dir: &str) -> bool {
        self.is_excluded(rel_dir, true) && !self.may_reinclude_inside(rel_dir)
    }
}

/// Matches the full path, or any of its parent directories.
fn matches_or_parent(toks: &[Tok], path: &str) -> bool {
    let mut set = start(toks);
    for c in path.chars() {
        if c == '/' && accepts(toks, &set) {
            return true; // a parent directory matches
        }
        set = step(toks, &set, c);
        if set.is_empty() {
            return false;
        }
    }
    accepts(toks, &set)
}

/// Go's `path.Clean` for `/`-separated paths.
pub fn clean_path(p: &str) -> String {
    if p.is_empty() {
        return ".".to_string();
    }
    let rooted = p.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else if !rooted {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(".dockerignore", text).unwrap()
    }

    #[test]
    fn clean() {
        for (i, o) in [
            ("./a//b/", "a/b"),
            ("/a/../b", "/b"),
            ("a/../..", ".."),
            ("", "."),
            ("/", "/"),
            ("./", "."),
            ("a/./b/.", "a/b"),
        ] {
            assert_eq!(clean_path(i), o, "{i}");
        }
    }

    #[test]
    fn table() {
        // (patterns, path, excluded)
        let cases: &[(&str, &str, bool)] = &[
            ("*.md", "README.md", true),
            ("*.md", "docs/README.md", false),
            ("*/*.md", "docs/README.md", true),
            ("**/*.md", "docs/a/README.md", true),
            ("**/*.md", "README.md", true),
            ("node_modules", "node_modules/x/y.js", true),
            ("node_modules", "a/node_modules", false),
            ("**/node_modules", "a/b/node_modules/c", true),
            ("/dist", "dist/app.js", true),
            ("./dist", "dist", true),
            ("dist/", "dist", true),
            ("a/**", "a/b/c", true),
            ("a/**", "a", false),
            ("a/**/z", "a/z", true),
            ("a/**/z", "a/b/c/z", true),
            ("a/**/z", "a/bz", false),
            ("?.txt", "a.txt", true),
            ("?.txt", "ab.txt", false),
            ("[a-c].txt", "b.txt", true),
            ("[a-c].txt", "d.txt", false),
            ("[^a].txt", "a.txt", false),
            ("[^a].txt", "b.txt", true),
            ("\\*.txt", "*.txt", true),
            ("\\*.txt", "a.txt", false),
            ("*", "anything/deep", true),
            ("# comment\n", "# comment", false),
            ("*\n!keep.md", "keep.md", false),
            ("*\n!keep.md", "other", true),
            ("*.md\n!README.md\nREADME.md", "README.md", true),
            ("docs\n!docs/keep", "docs/keep/x", false),
            ("docs\n!docs/keep", "docs/other", true),
            ("  spaced.txt  ", "spaced.txt", true),
            ("\u{feff}bom", "bom", true),
            ("**", "x/y", true),
            ("a*b", "a/b", false),
            ("a?b", "a/b", false),
        ];
        for (pats, path, want) in cases {
            assert_eq!(
                ig(pats).is_excluded(path, false),
                *want,
                "patterns {pats:?} path {path:?}"
            );
        }
        assert!(!ig("*").is_excluded(".", true));
    }

    #[test]
    fn reinclude_inside() {
        let i = ig("node_modules\n!node_modules/keep/**");
        assert!(i.is_excluded("node_modules", true));
        assert!(i.may_reinclude_inside("node_modules"));
        assert!(!i.can_skip_dir("node_modules"));
        assert!(!i.may_reinclude_inside("other"));
        let j = ig("build\n!**/*.keep");
        assert!(j.may_reinclude_inside("build"));
        assert!(!j.is_excluded("build/x/a.keep", false));
        assert!(j.is_excluded("build/x/a.o", false));
        let k = ig("build\n!src/x");
        assert!(k.can_skip_dir("build"));
        assert!(!ig("build").may_reinclude_inside("build"));
    }

    #[test]
    fn errors() {
        let e = DockerIgnore::parse(".dockerignore", "ok\n[a-").unwrap_err();
        assert_eq!(
            e.to_string(),
            ".dockerignore:2: syntax error in pattern \"[a-\""
        );
        let e = DockerIgnore::parse(".dockerignore", "!").unwrap_err();
        assert_eq!(
            e.to_string(),
            ".dockerignore:1: illegal exclusion pattern: \"!\""
        );
        assert!(DockerIgnore::parse(".dockerignore", "a\\").is_err());
        assert!(DockerIgnore::parse(".dockerignore", "[]a]").is_err());
    }

    #[test]
    fn load_missing_and_present() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DockerIgnore::load(dir.path())
            .unwrap()
            .patterns()
            .is_empty());
        std::fs::write(dir.path().join(".dockerignore"), "target\n!target/keep\n").unwrap();
        let i = DockerIgnore::load(dir.path()).unwrap();
        assert_eq!(i.patterns().len(), 2);
        assert!(i.patterns()[1].is_exclusion());
        assert_eq!(i.patterns()[1].as_str(), "target/keep");
    }
}
