//! The safety rules for layer tar entries, in one place: [`EntryValidator`] is fed the
//! entries of one layer in stream order and refuses the first one that could not be
//! unpacked safely. The unpacker ([`crate::apply_layer`]) asks it before touching the file
//! system, and image import/load/pull run it over the stream they already read for the
//! digest ([`validate_tar`], [`TarCheckWriter`]), so an image that would fail at its first
//! run with "unsafe layer entry" is refused when it enters the store instead.
//!
//! The validator keeps a model of what the layer has written so far (directories,
//! files, symlinks with their targets, whiteouts) and resolves every entry's parent
//! through it the way the unpacker's `openat2(RESOLVE_BENEATH)` resolves it on disk:
//!
//! * paths are split like Docker's (a leading `/` is dropped, `.` and empty components
//!   skipped); a `..` component is refused;
//! * a symlink may point anywhere absolute (it is resolved inside the container root at
//!   run time), but a relative target may not climb above the root from where the link
//!   lives, and nothing may be written *through* a symlink that is absolute, climbs out,
//!   loops, or does not lead to a directory of this layer;
//! * a hard link must name an earlier non-directory entry of the same layer, found by a
//!   path that stays inside the root;
//! * whiteouts: `.wh..` and `.wh...` (the directory itself or its parent), an empty
//!   `.wh.`, and `.wh.` names used as directories are refused; `.wh..wh..opq` is an opaque
//!   marker, other `.wh..wh.` names are AUFS metadata without effect;
//! * a GNU sparse entry may not expand absurdly (a few stored bytes claiming terabytes).
//!
//! Every refusal is a [`LayerError::Unsafe`] or [`LayerError::Malformed`] naming the entry.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::sync::mpsc::{Receiver, SyncSender};

use tar::EntryType;

use crate::error::{LayerError, Result};
use crate::whiteout::{OPAQUE_NAME, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX};

/// Path components (no `.`, `..` or empty ones).
pub type Components = Vec<Vec<u8>>;

/// Symlinks followed while resolving one path before it counts as a loop (Linux's limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// What the unpacker has to do for an entry the validator accepted. Paths are the
/// *resolved* ones: symlinks of this layer on the way have been replaced by their targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Planned {
    /// Nothing: a PAX/GNU metadata header or an entry type berth does not unpack.
    Skip,
    /// The root directory itself (`./`): only a directory entry's metadata applies.
    Root,
    /// `.wh.NAME`: delete `name` in `dir` from lower layers. `shadowed` when an entry of
    /// this same layer wrote that path (it wins over the whiteout: nothing to do).
    Whiteout {
        dir: Components,
        name: Vec<u8>,
        shadowed: bool,
    },
    /// `.wh..wh..opq`: `dir` hides what lower layers have in it.
    Opaque { dir: Components },
    /// Another AUFS meta entry (`.wh..wh.plnk`…) in `dir`: nothing to unpack.
    AufsMeta { dir: Components },
    /// A directory, file, symlink, device node or fifo at `path`.
    Write { path: Components },
    /// A hard link at `path` to the earlier entry at `target`.
    Hardlink {
        path: Components,
        target: Components,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Special,
    Symlink(Vec<u8>),
    /// A whited-out name (overlayfs keeps a 0/0 character device there).
    Whiteout,
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    /// Written by an entry of this layer (parents created on the way are not).
    explicit: bool,
}

/// Why a path could not be resolved through the model.
enum Refusal {
    Unsafe(String),
    Malformed(String),
}

/// Checks the entries of one layer tar, in stream order. See the module documentation
/// for the rules.
#[derive(Debug, Default)]
pub struct EntryValidator {
    /// Everything this layer has put in place so far, by `/`-joined resolved path.
    tree: BTreeMap<Vec<u8>, Node>,
    entries: u64,
}

/// Splits an entry path into safe components: a leading `/` is dropped (as Docker does),
/// `.` and empty components are skipped, `..` is refused.
pub fn normalize_entry_path(raw: &[u8]) -> Result<Components> {
    let shown = || String::from_utf8_lossy(raw).into_owned();
    if raw.contains(&0) {
        return Err(LayerError::malformed(shown(), "NUL byte in path"));
    }
    let mut out = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(LayerError::unsafe_entry(
                    shown(),
                    "path contains a `..` component",
                ))
            }
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

/// True when a relative symlink target, taken from the directory at `depth` below the
/// root, climbs above the root.
pub(crate) fn symlink_escapes(depth: usize, target: &[u8]) -> bool {
    if target.starts_with(b"/") {
        return false; // resolved inside the container root at run time
    }
    let mut level = depth as i64;
    for c in target.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                level -= 1;
                if level < 0 {
                    return true;
                }
            }
            _ => level += 1,
        }
    }
    false
}

/// A GNU sparse entry stores only its data blocks; the tar reader expands its holes as
/// zeros. A few bytes claiming a terabyte would keep the unpacker busy for hours, so
/// an entry may expand to at most 1 GiB or 1024 times what it stores, whichever is more.
fn check_sparse_expansion(shown: &str, real: u64, stored: io::Result<u64>) -> Result<()> {
    const FLOOR: u64 = 1 << 30;
    let stored = stored.map_err(|e| LayerError::malformed(shown, e.to_string()))?;
    let limit = stored.saturating_mul(1024).max(FLOOR);
    if real > limit {
        return Err(LayerError::malformed(
            shown,
            format!(
                "sparse file expands {stored} stored bytes to {real} (more than {limit}); refusing"
            ),
        ));
    }
    Ok(())
}

fn join(comps: &[Vec<u8>]) -> Vec<u8> {
    comps.join(&b'/')
}

fn lossy(comps: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&join(comps)).into_owned()
}

impl EntryValidator {
    pub fn new() -> EntryValidator {
        EntryValidator::default()
    }

    /// Entries accepted so far (metadata headers not counted).
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// True when an entry of this layer wrote `path` (`/`-joined, resolved).
    pub fn written(&self, path: &[u8]) -> bool {
        self.tree.get(path).is_some_and(|n| n.explicit)
    }

    /// Checks the next entry of the stream: its header, PAX records included (its data
    /// is not read). Metadata the unpacker could not use (a broken mode, a PAX uid that
    /// is not a number) is refused here too.
    pub fn check_entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<Planned> {
        let kind = entry.header().entry_type();
        let path = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&path).into_owned();
        if kind == EntryType::GNUSparse {
            check_sparse_expansion(&shown, entry.size(), entry.header().entry_size())?;
        }
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let planned = self.check(&path, kind, link.as_deref())?;
        let has_meta = match planned {
            Planned::Write { .. } | Planned::Hardlink { .. } => true,
            Planned::Root => kind == EntryType::Directory,
            _ => false,
        };
        if has_meta {
            crate::apply::entry_meta(entry, &shown)?;
        }
        Ok(planned)
    }

    /// Checks the next entry given its raw path, type and (for links) raw link name.
    pub fn check(&mut self, raw: &[u8], kind: EntryType, link: Option<&[u8]>) -> Result<Planned> {
        if matches!(
            kind,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(Planned::Skip);
        }
        let shown = String::from_utf8_lossy(raw).into_owned();
        let comps = normalize_entry_path(raw)?;
        let supported = matches!(
            kind,
            EntryType::Directory
                | EntryType::Regular
                | EntryType::Continuous
                | EntryType::GNUSparse
                | EntryType::Symlink
                | EntryType::Link
                | EntryType::Char
                | EntryType::Block
                | EntryType::Fifo
        );
        if !supported {
            tracing::debug!(entry = %shown, kind = ?kind, "skipping unsupported tar entry type");
            return Ok(Planned::Skip);
        }
        let Some((name, parent)) = comps.split_last() else {
            return Ok(Planned::Root);
        };
        if let Some(c) = parent
            .iter()
            .find(|c| c.starts_with(WHITEOUT_PREFIX.as_bytes()))
        {
            return Err(LayerError::malformed(
                shown,
                format!(
                    "whiteout name {:?} used as a directory",
                    String::from_utf8_lossy(c)
                ),
            ));
        }
        let dir = self.resolve(parent, &shown)?;
        self.ensure_dirs(&dir);
        self.entries += 1;

        if let Some(rest) = name.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            if name.as_slice() == OPAQUE_NAME.as_bytes() {
                self.opaque(&dir, &shown)?;
                return Ok(Planned::Opaque { dir });
            }
            if name.starts_with(WHITEOUT_META_PREFIX.as_bytes()) {
                return Ok(Planned::AufsMeta { dir });
            }
            if rest.is_empty() {
                return Err(LayerError::malformed(shown, "whiteout without a name"));
            }
            // `.wh..` and `.wh...` would whiteout the parent directory itself or the
            // directory *above* it (found by fuzzing: `.wh...` at the top level emptied the
            // directory holding the layer). Nothing may be deleted through `.`/`..`.
            if rest == b"." || rest == b".." {
                return Err(LayerError::unsafe_entry(
                    shown,
                    "whiteout of `.` or `..` would delete outside its directory",
                ));
            }
            let mut target = dir.clone();
            target.push(rest.to_vec());
            let key = join(&target);
            let shadowed = self.written(&key);
            if !shadowed {
                self.remove_subtree(&key);
                self.tree.insert(
                    key,
                    Node {
                        kind: Kind::Whiteout,
                        explicit: false,
                    },
                );
            }
            return Ok(Planned::Whiteout {
                dir,
                name: rest.to_vec(),
                shadowed,
            });
        }

        let mut path = dir.clone();
        path.push(name.clone());
        let key = join(&path);
        // What is there is replaced, unless both are directories.
        let keep_dir = kind == EntryType::Directory
            && self.tree.get(&key).is_some_and(|n| n.kind == Kind::Dir);
        if !keep_dir {
            self.remove_subtree(&key);
        }
        let (node, planned) = match kind {
            EntryType::Directory => (Kind::Dir, None),
            EntryType::Symlink => {
                let target = link
                    .filter(|t| !t.is_empty() && !t.contains(&0))
                    .ok_or_else(|| {
                        LayerError::malformed(&shown, "empty or invalid symlink target")
                    })?;
                check_symlink(&shown, dir.len(), target)?;
                (Kind::Symlink(target.to_vec()), None)
            }
            EntryType::Link => {
                let (node, target) = self.hardlink_target(&shown, link)?;
                if let Kind::Symlink(t) = &node {
                    // A second name of a symlink is a symlink at another depth.
                    check_symlink(&shown, dir.len(), t)?;
                }
                (node, Some(target))
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => (Kind::Special, None),
            _ => (Kind::File, None),
        };
        self.tree.insert(
            key,
            Node {
                kind: node,
                explicit: true,
            },
        );
        Ok(match planned {
            Some(target) => Planned::Hardlink { path, target },
            None => Planned::Write { path },
        })
    }

    /// Resolves parent components through the symlinks of this layer, as
    /// `openat2(RESOLVE_BENEATH)` would on the unpacked tree.
    fn resolve(&self, comps: &[Vec<u8>], shown: &str) -> Result<Components> {
        self.resolve_inner(comps).map_err(|r| match r {
            Refusal::Unsafe(reason) => LayerError::unsafe_entry(shown, reason),
            Refusal::Malformed(reason) => LayerError::malformed(shown, reason),
        })
    }

    fn resolve_inner(&self, comps: &[Vec<u8>]) -> std::result::Result<Components, Refusal> {
        enum Step {
            Name(Vec<u8>),
            /// The target of the symlink named here must exist as a directory.
            Arrived(Vec<u8>),
        }
        let mut todo: VecDeque<Step> = comps.iter().cloned().map(Step::Name).collect();
        let mut out: Components = Vec::new();
        let mut hops = 0;
        while let Some(step) = todo.pop_front() {
            let c = match step {
                Step::Arrived(link) => {
                    let here = self.tree.get(&join(&out)).map(|n| &n.kind);
                    if !out.is_empty() && here != Some(&Kind::Dir) {
                        return Err(Refusal::Malformed(format!(
                            "goes through symlink {:?}, whose target {:?} is not a directory of this layer",
                            String::from_utf8_lossy(&link),
                            lossy(&out)
                        )));
                    }
                    continue;
                }
                Step::Name(c) => c,
            };
            match c.as_slice() {
                b"" | b"." => continue,
                b".." => {
                    if out.pop().is_none() {
                        return Err(Refusal::Unsafe(
                            "resolves outside the layer through a symlink".into(),
                        ));
                    }
                    continue;
                }
                _ => {}
            }
            out.push(c);
            let key = join(&out);
            match self.tree.get(&key).map(|n| &n.kind) {
                None | Some(Kind::Dir) => {}
                Some(Kind::Symlink(target)) => {
                    hops += 1;
                    if hops > MAX_SYMLINK_HOPS {
                        return Err(Refusal::Unsafe(format!(
                            "symlink loop at {:?}",
                            String::from_utf8_lossy(&key)
                        )));
                    }
                    if target.starts_with(b"/") {
                        return Err(Refusal::Unsafe(format!(
                            "resolves outside the layer through absolute symlink {:?} -> {:?}",
                            String::from_utf8_lossy(&key),
                            String::from_utf8_lossy(target)
                        )));
                    }
                    out.pop();
                    todo.push_front(Step::Arrived(key));
                    for t in target.split(|b| *b == b'/').rev() {
                        todo.push_front(Step::Name(t.to_vec()));
                    }
                }
                Some(Kind::File | Kind::Special | Kind::Whiteout) => {
                    return Err(Refusal::Malformed(format!(
                        "{:?} is not a directory",
                        String::from_utf8_lossy(&key)
                    )))
                }
            }
        }
        Ok(out)
    }

    /// The node a hard link shares and its resolved path.
    fn hardlink_target(&self, shown: &str, link: Option<&[u8]>) -> Result<(Kind, Components)> {
        let link = link.ok_or_else(|| LayerError::malformed(shown, "hardlink without target"))?;
        let tcomps = normalize_entry_path(link).map_err(|_| {
            LayerError::unsafe_entry(
                shown,
                format!(
                    "hardlink target {:?} points outside the layer",
                    String::from_utf8_lossy(link)
                ),
            )
        })?;
        let Some((tname, tparent)) = tcomps.split_last() else {
            return Err(LayerError::unsafe_entry(shown, "hardlink to the root"));
        };
        let mut target = self.resolve(tparent, shown)?;
        target.push(tname.clone());
        match self.tree.get(&join(&target)).map(|n| &n.kind) {
            Some(Kind::Dir) => Err(LayerError::malformed(shown, "hardlink to a directory")),
            None | Some(Kind::Whiteout) => Err(LayerError::malformed(
                shown,
                format!(
                    "hardlink target {:?} is not an earlier entry of this layer",
                    String::from_utf8_lossy(link)
                ),
            )),
            Some(k) => Ok((k.clone(), target)),
        }
    }

    fn remove_subtree(&mut self, key: &[u8]) {
        self.tree.remove(key);
        let mut prefix = key.to_vec();
        prefix.push(b'/');
        let below: Vec<Vec<u8>> = self
            .tree
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.tree.remove(&k);
        }
    }

    /// An opaque marker hides what lower layers have in `dir`. Drivers differ in how:
    /// overlayfs only marks the directory, copying drivers delete every child this layer
    /// did not write. Both agree as long as this layer has no child there without an
    /// entry of its own (a parent created on the way), so such a marker is refused: tar
    /// writers put the marker before a directory's content.
    fn opaque(&self, dir: &[Vec<u8>], shown: &str) -> Result<()> {
        let mut prefix = join(dir);
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        let implicit = self
            .tree
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .find(|(k, n)| {
                !k[prefix.len()..].contains(&b'/') && !n.explicit && n.kind != Kind::Whiteout
            });
        if let Some((k, _)) = implicit {
            return Err(LayerError::malformed(
                shown,
                format!(
                    "opaque marker after {:?}, which this layer created without an entry of its own",
                    String::from_utf8_lossy(k)
                ),
            ));
        }
        Ok(())
    }

    /// Parents of an entry that do not exist yet are created (as directories).
    fn ensure_dirs(&mut self, dir: &[Vec<u8>]) {
        for i in 1..=dir.len() {
            self.tree.entry(join(&dir[..i])).or_insert(Node {
                kind: Kind::Dir,
                explicit: false,
            });
        }
    }
}

/// Refuses a symlink whose relative target climbs out of the root from `depth`.
fn check_symlink(shown: &str, depth: usize, target: &[u8]) -> Result<()> {
    if symlink_escapes(depth, target) {
        return Err(LayerError::unsafe_entry(
            shown,
            format!(
                "symlink target {:?} points outside the layer",
                String::from_utf8_lossy(target)
            ),
        ));
    }
    Ok(())
}

/// Reads a whole uncompressed layer tar (headers and contents) and checks every entry.
/// Returns the number of entries checked.
pub fn validate_tar(input: &mut dyn Read) -> Result<u64> {
    let mut archive = tar::Archive::new(input);
    let mut validator = EntryValidator::new();
    let entries = archive
        .entries()
        .map_err(|e| LayerError::malformed("", e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| LayerError::malformed("", e.to_string()))?;
        validator.check_entry(&mut entry)?;
        io::copy(&mut entry, &mut io::sink()).map_err(|e| {
            LayerError::malformed(String::from_utf8_lossy(&entry.path_bytes()), e.to_string())
        })?;
    }
    Ok(validator.entries())
}

/// Checks a layer tar that is written rather than read (a download arriving in chunks,
/// a decompressor's output): [`validate_tar`] runs on a helper thread fed through a
/// bounded channel, and [`finish`](Self::finish) returns its verdict. Once the checker
/// has stopped (refusal, or the end of the archive) further writes are dropped.
pub struct TarCheckWriter {
    tx: Option<SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<Result<u64>>>,
}

struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.buf.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.buf = chunk;
                    self.pos = 0;
                }
                Err(_) => return Ok(0), // the writer is done
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl TarCheckWriter {
    /// Starts the checker thread.
    pub fn new() -> io::Result<TarCheckWriter> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
        let worker = std::thread::Builder::new()
            .name("layer-check".into())
            .spawn(move || {
                let mut reader = ChannelReader {
                    rx,
                    buf: Vec::new(),
                    pos: 0,
                };
                validate_tar(&mut reader)
            })?;
        Ok(TarCheckWriter {
            tx: Some(tx),
            worker: Some(worker),
        })
    }

    /// Ends the stream and returns the checker's verdict (the number of entries).
    pub fn finish(mut self) -> Result<u64> {
        self.tx = None;
        match self.worker.take().map(|w| w.join()) {
            Some(Ok(verdict)) => verdict,
            _ => Err(LayerError::malformed("", "the layer checker thread failed")),
        }
    }
}

impl Write for TarCheckWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if let Some(tx) = &self.tx {
            if !data.is_empty() && tx.send(data.to_vec()).is_err() {
                self.tx = None; // the checker has its verdict; finish() reports it
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for TarCheckWriter {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

impl std::fmt::Debug for TarCheckWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TarCheckWriter")
            .field("open", &self.tx.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntryType::*;

    /// An entry: path, type, link name.
    type E = (&'static str, EntryType, &'static str);

    /// Runs entries through a fresh validator.
    fn run(entries: &[E]) -> Result<Vec<Planned>> {
        let mut v = EntryValidator::new();
        entries
            .iter()
            .map(|(p, k, l)| {
                let link = (!l.is_empty()).then_some(l.as_bytes());
                v.check(p.as_bytes(), *k, link)
            })
            .collect()
    }

    fn comps(s: &str) -> Components {
        normalize_entry_path(s.as_bytes()).unwrap()
    }

    #[test]
    fn paths_are_normalised_like_docker() {
        assert_eq!(
            comps("/etc/passwd"),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
        assert_eq!(comps("./a//b/."), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(normalize_entry_path(b"a/../../b")
            .unwrap_err()
            .is_invalid_input());
        assert!(comps("./").is_empty());
    }

    #[test]
    fn relative_symlinks_may_not_climb_out() {
        assert!(!symlink_escapes(0, b"/etc/passwd"));
        assert!(symlink_escapes(0, b"../x"));
        assert!(!symlink_escapes(1, b"../x"));
        assert!(symlink_escapes(1, b"a/../../../x"));
        assert!(!symlink_escapes(2, b"./../../usr/lib"));
    }

    /// Each case: the entries, the entry that must be named, unsafe (true) or malformed.
    #[test]
    fn unsafe_sequences_are_refused_naming_the_entry() {
        let cases: &[(&[E], &str, bool)] = &[
            (&[("../x", Regular, "")], "../x", true),
            (&[("a/../../x", Regular, "")], "a/../../x", true),
            (
                &[("a", Symlink, "/etc"), ("a/passwd", Regular, "")],
                "a/passwd",
                true,
            ),
            (
                &[
                    ("d/", Directory, ""),
                    ("d/a", Symlink, "/etc"),
                    ("d/a/x/y", Regular, ""),
                ],
                "d/a/x/y",
                true,
            ),
            (&[("up", Symlink, "../etc")], "up", true),
            (&[("d/up", Symlink, "../../etc")], "d/up", true),
            (
                &[("loop", Symlink, "loop"), ("loop/x", Regular, "")],
                "loop/x",
                true,
            ),
            (
                &[
                    ("a", Symlink, "b"),
                    ("b", Symlink, "a"),
                    ("a/x", Regular, ""),
                ],
                "a/x",
                true,
            ),
            (&[("h", Link, "../../etc/shadow")], "h", true),
            (&[("h", Link, "/")], "h", true),
            // `/etc/shadow` is the layer's own: it must be an earlier entry of it.
            (&[("h", Link, "/etc/shadow")], "h", false),
            (
                &[("a", Symlink, "/etc"), ("h", Link, "a/shadow")],
                "h",
                true,
            ),
            (&[("d/", Directory, ""), ("h", Link, "d")], "h", false),
            (&[(".wh...", Regular, "")], ".wh...", true),
            (&[("a/.wh..", Regular, "")], "a/.wh..", true),
            (&[("a/.wh.", Regular, "")], "a/.wh.", false),
            (&[(".wh.x/y", Regular, "")], ".wh.x/y", false),
            (&[(".wh..wh..opq/x", Regular, "")], ".wh..wh..opq/x", false),
            (
                &[("a", Symlink, "/etc"), ("a/.wh..wh..opq", Regular, "")],
                "a/.wh..wh..opq",
                true,
            ),
            (
                &[("a", Symlink, "/etc"), ("a/.wh.passwd", Regular, "")],
                "a/.wh.passwd",
                true,
            ),
            // Writing through a link whose target is not a directory of the layer.
            (
                &[("a", Symlink, "nowhere"), ("a/x", Regular, "")],
                "a/x",
                false,
            ),
            (
                &[
                    ("f", Regular, ""),
                    ("a", Symlink, "f"),
                    ("a/x", Regular, ""),
                ],
                "a/x",
                false,
            ),
            (&[("f", Regular, ""), ("f/x", Regular, "")], "f/x", false),
            // A second name of a relative symlink, closer to the root, climbs out.
            (
                &[("a/b/s", Symlink, "../../x"), ("s", Link, "a/b/s")],
                "s",
                true,
            ),
            // Fine at the apparent depth, out at the real one (`up` is the root).
            (
                &[
                    ("d1/d2/up", Symlink, "../.."),
                    ("d1/d2/up/s", Symlink, "../x"),
                ],
                "d1/d2/up/s",
                true,
            ),
            (&[("x", Symlink, "")], "x", false),
        ];
        for (entries, named, unsafe_) in cases {
            let err = run(entries).expect_err(named);
            let (entry, is_unsafe) = match &err {
                LayerError::Unsafe { entry, .. } => (entry, true),
                LayerError::Malformed { entry, .. } => (entry, false),
                other => panic!("{named}: {other}"),
            };
            assert_eq!(entry, named, "{err}");
            assert_eq!(is_unsafe, *unsafe_, "{named}: {err}");
        }
    }

    #[test]
    fn legitimate_links_are_accepted() {
        let planned = run(&[
            ("etc/", Directory, ""),
            ("etc/shadow", Regular, ""),
            ("bin", Symlink, "usr/bin"),
            ("abs", Symlink, "/etc/shadow"),
            ("usr/lib/up", Symlink, "../../lib"),
            ("/shadow-link", Link, "/etc/shadow"),
            ("etc/abs-link", Link, "abs"),
            ("sub/", Directory, ""),
            ("alias", Symlink, "sub"),
            ("alias/f", Regular, ""),
            ("alias/new/g", Regular, ""),
            ("h", Link, "alias/f"),
            ("d/", Directory, ""),
            ("d/.wh..wh..opq", Regular, ""),
            ("d/.wh.gone", Regular, ""),
            (".wh..wh.plnk", Directory, ""),
            ("./", Directory, ""),
        ])
        .unwrap();
        assert_eq!(
            planned[5],
            Planned::Hardlink {
                path: comps("shadow-link"),
                target: comps("etc/shadow")
            }
        );
        // Written through `alias`, recorded where it really is.
        assert_eq!(
            planned[9],
            Planned::Write {
                path: comps("sub/f")
            }
        );
        assert_eq!(
            planned[10],
            Planned::Write {
                path: comps("sub/new/g")
            }
        );
        assert_eq!(
            planned[11],
            Planned::Hardlink {
                path: comps("h"),
                target: comps("sub/f")
            }
        );
        assert_eq!(
            planned[14],
            Planned::Whiteout {
                dir: comps("d"),
                name: b"gone".to_vec(),
                shadowed: false
            }
        );
        assert_eq!(planned[16], Planned::Root);
    }

    #[test]
    fn an_entry_of_the_layer_wins_over_its_whiteout() {
        let planned = run(&[("d/f", Regular, ""), ("d/.wh.f", Regular, "")]).unwrap();
        assert!(matches!(
            planned[1],
            Planned::Whiteout { shadowed: true, .. }
        ));
        // Replaced by a whiteout that is not shadowed, a name is no hardlink target.
        assert!(run(&[("d/.wh.f", Regular, ""), ("h", Link, "d/f")]).is_err());
    }

    /// Header metadata the unpacker would refuse is refused by the check as well.
    #[test]
    fn unusable_pax_records_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(XHeader);
        h.set_size(11);
        b.append_data(&mut h, "PaxHeaders/f", &b"11 uid=abc\n"[..])
            .unwrap();
        let mut h = tar::Header::new_ustar();
        h.set_size(0);
        b.append_data(&mut h, "f", std::io::empty()).unwrap();
        let data = b.into_inner().unwrap();
        let err = validate_tar(&mut data.as_slice()).unwrap_err();
        assert!(
            matches!(&err, LayerError::Malformed { entry, .. } if entry == "f"),
            "{err}"
        );
    }

    #[test]
    fn pushed_streams_are_checked_like_read_ones() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_entry_type(Symlink);
        h.set_size(0);
        b.append_link(&mut h, "a", "/etc").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(3);
        b.append_data(&mut h, "a/passwd", &b"x:0"[..]).unwrap();
        let bad = b.into_inner().unwrap();
        let mut w = TarCheckWriter::new().unwrap();
        for c in bad.chunks(100) {
            w.write_all(c).unwrap();
        }
        let err = w.finish().unwrap_err();
        assert!(err.to_string().contains("a/passwd"), "{err}");
        assert!(validate_tar(&mut bad.as_slice()).is_err());

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(1 << 20);
        b.append_data(&mut h, "big", &vec![7u8; 1 << 20][..])
            .unwrap();
        let good = b.into_inner().unwrap();
        let mut w = TarCheckWriter::new().unwrap();
        for c in good.chunks(4096) {
            w.write_all(c).unwrap();
        }
        assert_eq!(w.finish().unwrap(), 1);
        // Dropped without finish: the thread ends, nothing hangs.
        let mut w = TarCheckWriter::new().unwrap();
        w.write_all(&good[..1000]).unwrap();
        drop(w);
    }
}
