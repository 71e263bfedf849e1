//! COPY/ADD for builds: Docker's source expansion (globs, `.dockerignore`), directory-copy
//! semantics, ownership and mode, writing only inside the target root.
//!
//! Sources are read through descriptors and never leave their root (the build context, or
//! a stage's or image's files): every path is resolved with `openat2(RESOLVE_IN_ROOT)`, so
//! a symlink on the way, absolute or climbing with `..`, resolves below the root as it
//! would inside a container, never on the host. A symlink that is itself a source, or that
//! lies inside a copied directory, is copied as a link.

use std::{
    ffi::{OsStr, OsString},
    io::Read,
    os::{
        fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd},
        unix::{ffi::OsStrExt, fs::PermissionsExt},
    },
    path::{Component, Path, PathBuf},
};

use berth_dockerfile::{CopySource, DockerIgnore};
use berth_layer_tar::fsutil;
use rustix::{
    fs::{FileType, OFlags, Stat},
    io::Errno,
};

/// Normalises a source path inside the context; refuses one that leaves it.
fn clean_rel(p: &str) -> Result<String, String> {
    let mut out: Vec<String> = Vec::new();
    for c in Path::new(p.trim_start_matches('/')).components() {
        match c {
            Component::Normal(s) => out.push(s.to_string_lossy().into_owned()),
            Component::ParentDir if out.pop().is_none() => {
                return Err(format!("source {p:?} is outside the build context"));
            }
            Component::ParentDir => {}
            _ => {}
        }
    }
    Ok(out.join("/"))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn join_rel(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// The tree COPY reads from: a directory opened once; everything below it is reached
/// through this descriptor.
pub struct SourceRoot {
    fd: OwnedFd,
    path: PathBuf,
    /// The directory as the kernel names it, to tell where a resolved path really is.
    real: Option<PathBuf>,
    /// What the root is, for messages ("build context", "stage builder").
    what: String,
}

/// The path the kernel gives an open descriptor.
fn fd_path(fd: BorrowedFd<'_>) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).ok()
}

impl SourceRoot {
    /// Opens `path` (which the caller trusts, e.g. the context directory given on the
    /// command line) as the root of COPY sources; `what` names it in messages.
    pub fn open(path: &Path, what: &str) -> Result<SourceRoot, String> {
        let fd = fsutil::open_root(path).map_err(|e| e.to_string())?;
        let real = fd_path(fd.as_fd());
        Ok(SourceRoot {
            fd,
            path: path.to_path_buf(),
            real,
            what: what.to_string(),
        })
    }

    /// The content of regular file `rel` below the root (symlinks resolved inside it);
    /// `None` when there is no such file.
    pub fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, String> {
        let shown = self.path.join(rel);
        let fd = match self.open_at(rel, OFlags::RDONLY | OFlags::NONBLOCK) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(format!("reading {}: {e}", shown.display())),
        };
        let st = rustix::fs::fstat(&fd).map_err(|e| format!("reading {}: {e}", shown.display()))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(format!("{} is not a regular file", shown.display()));
        }
        let mut data = Vec::new();
        std::fs::File::from(fd)
            .read_to_end(&mut data)
            .map_err(|e| format!("reading {}: {e}", shown.display()))?;
        Ok(Some(data))
    }

    /// `rel` opened below the root (`RESOLVE_IN_ROOT`).
    fn open_at(&self, rel: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
        fsutil::open_in_root(self.fd.as_fd(), Path::new(rel), flags)
    }

    /// Where directory `fd` really is below the root (symlinks resolved), if it can tell.
    fn real_rel(&self, fd: BorrowedFd<'_>) -> Option<String> {
        let p = fd_path(fd)?;
        let rel = p.strip_prefix(self.real.as_ref()?).ok()?;
        Some(rel.to_string_lossy().into_owned())
    }

    /// The source `rel` (already cleaned): its parent directory resolved below the root,
    /// the last component not followed. `None` when it does not exist there.
    /// With `follow`, a symlink as the last component is followed too (below the root):
    /// `dirlink/` names the directory the link points to.
    fn source(&self, rel: &str, follow: bool) -> Result<Option<Source>, String> {
        let (parent, name) = match rel.rsplit_once('/') {
            _ if rel.is_empty() || follow => (rel, "."),
            Some((p, n)) => (p, n),
            None => ("", rel),
        };
        let shown = || format!("{:?} in the {}", format!("/{rel}"), self.what);
        let missing = |e: Errno| matches!(e, Errno::NOENT | Errno::NOTDIR | Errno::LOOP);
        let dir = match self.open_at(parent, OFlags::PATH | OFlags::DIRECTORY) {
            Ok(d) => d,
            Err(e) if missing(e) => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", shown())),
        };
        let st = match fsutil::lstat_at(dir.as_fd(), OsStr::new(name)) {
            Ok(st) => st,
            Err(e) if missing(e) => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", shown())),
        };
        let real = match self.real_rel(dir.as_fd()) {
            Some(p) if name == "." => p,
            Some(p) => join_rel(&p, name),
            None => rel.to_string(),
        };
        Ok(Some(Source {
            rel: rel.to_string(),
            real,
            dir,
            name: OsString::from(name),
            st,
            shown: self.path.join(rel),
        }))
    }
}

/// One COPY source: `name` in directory `dir`, both reached without leaving the root.
pub struct Source {
    /// The path as written, below the root.
    pub rel: String,
    /// The path it resolves to below the root (what `.dockerignore` is matched against).
    real: String,
    dir: OwnedFd,
    name: OsString,
    st: Stat,
    /// The path for messages.
    shown: PathBuf,
}

impl Source {
    /// A host path given by the user (`berth cp`): its parent is followed as the host
    /// resolves it, the last component is not.
    fn host(path: &Path) -> Result<Source, String> {
        let (dir, name) = match (path.parent(), path.file_name()) {
            (Some(p), Some(n)) if !p.as_os_str().is_empty() => (p, n),
            (Some(_), Some(n)) => (Path::new("."), n),
            _ => (path, OsStr::new(".")),
        };
        let dir = fsutil::open_root(dir).map_err(|e| e.to_string())?;
        let st =
            fsutil::lstat_at(dir.as_fd(), name).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Source {
            rel: String::new(),
            real: String::new(),
            dir,
            name: name.to_os_string(),
            st,
            shown: path.to_path_buf(),
        })
    }

    fn entry(&self) -> Entry<'_> {
        Entry {
            dir: self.dir.as_fd(),
            name: &self.name,
            st: &self.st,
            shown: &self.shown,
        }
    }

    fn is_dir(&self) -> bool {
        self.entry().kind() == FileType::Directory
    }

    /// The last component of the path as written.
    fn base_name(&self) -> String {
        Path::new(&self.rel)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// One file met while walking a source: `name` in directory `dir`, with its `lstat`.
pub struct Entry<'a> {
    dir: BorrowedFd<'a>,
    name: &'a OsStr,
    pub st: &'a Stat,
    shown: &'a Path,
}

impl Entry<'_> {
    pub fn kind(&self) -> FileType {
        FileType::from_raw_mode(self.st.st_mode)
    }

    /// Mode bits including the file type.
    pub fn mode(&self) -> u32 {
        self.st.st_mode
    }

    /// Opens a regular file for reading (never through a symlink, never blocking on a
    /// FIFO swapped in since the walk looked).
    pub fn open(&self) -> Result<std::fs::File, String> {
        rustix::fs::openat(
            self.dir,
            self.name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map(std::fs::File::from)
        .map_err(|e| format!("{}: {e}", self.shown.display()))
    }

    /// A symlink's target.
    pub fn read_link(&self) -> Result<PathBuf, String> {
        rustix::fs::readlinkat(self.dir, self.name, Vec::new())
            .map(|t| PathBuf::from(OsStr::from_bytes(t.as_bytes())))
            .map_err(|e| format!("{}: {e}", self.shown.display()))
    }
}

/// Whether the ignore file keeps `rel` out (a directory stays when an exception may
/// re-include something inside it).
fn ignored(ignore: Option<&DockerIgnore>, rel: &str, is_dir: bool) -> bool {
    ignore.is_some_and(|i| i.is_excluded(rel, is_dir) && !(is_dir && i.may_reinclude_inside(rel)))
}

/// The sources a COPY source names below `root`: itself, or its glob matches. Paths are
/// matched against the ignore file both as written and as they resolve.
pub fn expand_sources(
    root: &SourceRoot,
    pattern: &str,
    ignore: Option<&DockerIgnore>,
) -> Result<Vec<Source>, String> {
    let rel = clean_rel(pattern)?;
    // `dir/` and `dir/.` name a directory: a symlink there is followed.
    let follow = pattern.ends_with('/') || pattern.ends_with("/.");
    let excluded = |s: &Source| {
        !s.rel.is_empty()
            && ignore.is_some_and(|i| {
                i.is_excluded(&s.rel, s.is_dir()) || i.is_excluded(&s.real, s.is_dir())
            })
    };
    if !has_glob(&rel) {
        return match root.source(&rel, follow)? {
            Some(s) if !excluded(&s) => Ok(vec![s]),
            _ => Err(format!(
                "\"/{rel}\": not found: no such file in the {}{}",
                root.what,
                if ignore.is_some() {
                    " (or excluded by .dockerignore)"
                } else {
                    ""
                }
            )),
        };
    }
    // One pattern per path component; each level lists only the directories the level
    // above matched, resolved below the root.
    let mut frontier = vec![String::new()];
    let comps: Vec<&str> = rel.split('/').collect();
    for (i, comp) in comps.iter().enumerate() {
        let mut next = Vec::new();
        if !has_glob(comp) {
            next.extend(frontier.iter().map(|d| join_rel(d, comp)));
        } else {
            let pat = glob::Pattern::new(comp)
                .map_err(|e| format!("invalid pattern {pattern:?}: {e}"))?;
            for d in &frontier {
                let Ok(dir) = root.open_at(d, OFlags::PATH | OFlags::DIRECTORY) else {
                    continue;
                };
                let Ok(names) = fsutil::read_names(dir.as_fd()) else {
                    continue;
                };
                for n in names {
                    // A name that is not UTF-8 cannot be written in a Dockerfile either.
                    if let Some(n) = n.to_str().filter(|n| pat.matches(n)) {
                        next.push(join_rel(d, n));
                    }
                }
            }
        }
        frontier = next;
        if i + 1 == comps.len() {
            break;
        }
    }
    frontier.sort();
    let mut out = Vec::new();
    for r in frontier {
        if let Some(s) = root.source(&r, follow)? {
            if !excluded(&s) {
                out.push(s);
            }
        }
    }
    if out.is_empty() {
        return Err(format!(
            "no source files were specified: {pattern:?} matches nothing in the {}",
            root.what
        ));
    }
    Ok(out)
}

/// Calls `f(rel, entry)` for `src` and everything below it (never following a symlink),
/// skipping what the ignore file excludes. `rel` starts as `src.rel`.
pub fn walk(
    src: &Source,
    ignore: Option<&DockerIgnore>,
    f: &mut dyn FnMut(&str, &Entry<'_>) -> Result<(), String>,
) -> Result<(), String> {
    walk_at(src.entry(), &src.rel, &src.real, ignore, f)
}

fn walk_at(
    e: Entry<'_>,
    rel: &str,
    real: &str,
    ignore: Option<&DockerIgnore>,
    f: &mut dyn FnMut(&str, &Entry<'_>) -> Result<(), String>,
) -> Result<(), String> {
    f(rel, &e)?;
    if e.kind() != FileType::Directory {
        return Ok(());
    }
    let sub =
        fsutil::open_dir_read(e.dir, e.name).map_err(|x| format!("{}: {x}", e.shown.display()))?;
    let names =
        fsutil::read_names(sub.as_fd()).map_err(|x| format!("{}: {x}", e.shown.display()))?;
    for n in names {
        let shown = e.shown.join(&n);
        let st =
            fsutil::lstat_at(sub.as_fd(), &n).map_err(|x| format!("{}: {x}", shown.display()))?;
        let name = n.to_string_lossy();
        let r = join_rel(rel, &name);
        let rr = join_rel(real, &name);
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if ignored(ignore, &rr, is_dir) || (rr != r && ignored(ignore, &r, is_dir)) {
            continue;
        }
        let child = Entry {
            dir: sub.as_fd(),
            name: &n,
            st: &st,
            shown: &shown,
        };
        walk_at(child, &r, &rr, ignore, f)?;
    }
    Ok(())
}

/// Resolves `path` inside `root` as the container would see it (symlinks stay in root).
fn in_root(root: &Path, path: &str) -> PathBuf {
    let mut resolved = PathBuf::new();
    let mut pending: Vec<String> = Path::new(path)
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let next = resolved.join(&part);
        match std::fs::read_link(root.join(&next)) {
            Ok(target) if hops < 40 => {
                hops += 1;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(s) => pending.push(s.to_string_lossy().into_owned()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            _ => resolved = next,
        }
    }
    root.join(resolved)
}

struct Owner {
    uid: u32,
    gid: u32,
    mode: Option<u32>,
}

fn apply_meta(path: &Path, md: Option<&Stat>, o: &Owner, is_link: bool) -> Result<(), String> {
    std::os::unix::fs::lchown(path, Some(o.uid), Some(o.gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if !is_link {
        let mode = match (o.mode, md) {
            (Some(m), _) => Some(m),
            (None, Some(md)) => Some(md.st_mode & 0o7777),
            (None, None) => None,
        };
        if let Some(m) = mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m))
                .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        }
    }
    if let Some(md) = md {
        let t = nix::sys::time::TimeSpec::new(
            md.st_mtime,
            i64::try_from(md.st_mtime_nsec).unwrap_or(0),
        );
        let _ = nix::sys::stat::utimensat(
            None,
            path,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
    }
    Ok(())
}

fn mkdirs(root: &Path, dir: &str, o: &Owner) -> Result<PathBuf, String> {
    let mut cur = String::new();
    for part in dir.split('/').filter(|p| !p.is_empty()) {
        cur.push('/');
        cur.push_str(part);
        let p = in_root(root, &cur);
        if !p.exists() {
            std::fs::create_dir(&p).map_err(|e| format!("creating {cur}: {e}"))?;
            apply_meta(
                &p,
                None,
                &Owner {
                    uid: o.uid,
                    gid: o.gid,
                    mode: Some(0o755),
                },
                false,
            )?;
        }
    }
    Ok(in_root(root, dir))
}

/// Copies one source tree (file, dir or link) to container path `dst` in `root`.
fn copy_tree(
    src: &Source,
    root: &Path,
    dst: &str,
    ignore: Option<&DockerIgnore>,
    o: &Owner,
) -> Result<(), String> {
    let rel = src.rel.as_str();
    walk(src, ignore, &mut |r, e| {
        let sub = r.strip_prefix(rel).unwrap_or(r).trim_start_matches('/');
        let target_c = if sub.is_empty() {
            dst.to_string()
        } else {
            format!("{}/{}", dst.trim_end_matches('/'), sub)
        };
        let parent = Path::new(&target_c)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        mkdirs(root, &parent, o)?;
        let name = Path::new(&target_c).file_name().map(|n| n.to_owned());
        let target = match name {
            Some(n) => in_root(root, &parent).join(n),
            None => in_root(root, &target_c),
        };
        match e.kind() {
            FileType::Directory => {
                if !target.is_dir() {
                    let _ = std::fs::remove_file(&target);
                    std::fs::create_dir(&target)
                        .map_err(|e| format!("creating {target_c}: {e}"))?;
                }
                apply_meta(&target, Some(e.st), o, false)
            }
            FileType::Symlink => {
                let link = e.read_link()?;
                let _ = std::fs::remove_file(&target);
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|e| format!("linking {target_c}: {e}"))?;
                apply_meta(&target, Some(e.st), o, true)
            }
            FileType::RegularFile => {
                if target.is_dir() {
                    return Err(format!("cannot overwrite directory {target_c} with a file"));
                }
                let mut from = e.open()?;
                let _ = std::fs::remove_file(&target);
                let mut to = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&target)
                    .map_err(|e| format!("creating {target_c}: {e}"))?;
                std::io::copy(&mut from, &mut to)
                    .map_err(|e| format!("copying to {target_c}: {e}"))?;
                drop(to);
                apply_meta(&target, Some(e.st), o, false)
            }
            _ => Ok(()), // sockets, devices: not copied from a build context
        }
    })
}

fn looks_like_archive(name: &str) -> bool {
    let n = name.to_lowercase();
    n.ends_with(".tar") || n.ends_with(".tar.gz") || n.ends_with(".tgz") || n.ends_with(".tar.zst")
}

/// ADD of a local archive: unpacked into `dest_dir`. The `tar` crate refuses entries that
/// would land outside the directory (`..`, absolute paths, paths or hard links through a
/// symlink that leaves it).
fn extract(archive: &Source, root: &Path, dest_dir: &str, o: &Owner) -> Result<(), String> {
    let target = mkdirs(root, dest_dir, o)?;
    let f = archive.entry().open()?;
    let name = archive.base_name().to_lowercase();
    let shown = archive.shown.display();
    let reader: Box<dyn Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(f).map_err(|e| format!("{shown}: {e}"))?)
    } else {
        Box::new(f)
    };
    let mut a = tar::Archive::new(reader);
    a.set_preserve_permissions(true);
    a.unpack(&target)
        .map_err(|e| format!("extracting {shown}: {e}"))
}

/// What one COPY/ADD copies, and how.
#[derive(Debug, Clone, Copy)]
pub struct CopySpec<'a> {
    pub sources: &'a [CopySource],
    /// Container path; relative ones are relative to `workdir`.
    pub dest: &'a str,
    pub workdir: &'a str,
    pub chown: Option<&'a str>,
    pub chmod: Option<&'a str>,
    /// ADD: local archives are extracted, remote URLs refused.
    pub is_add: bool,
    /// `--parents`: each source keeps its path below the context (`a/b.txt` → `DEST/a/b.txt`).
    pub parents: bool,
}

/// The whole COPY/ADD: `spec.sources` (from `src_root`, filtered by `ignore` when it is the
/// build context) into `spec.dest` of `root`.
pub fn copy_into(
    src_root: &SourceRoot,
    ignore: Option<&DockerIgnore>,
    root: &Path,
    spec: &CopySpec<'_>,
) -> Result<(), String> {
    let CopySpec {
        sources,
        dest,
        workdir,
        chown,
        chmod,
        is_add,
        parents,
    } = *spec;
    let dest_abs = if dest.starts_with('/') {
        dest.to_string()
    } else {
        format!("{}/{}", workdir.trim_end_matches('/'), dest)
    };
    let (uid, gid) = match chown {
        None => (0, 0),
        Some(spec) => {
            let (uid, gid, _, _) = berth_runtime::resolve_user(root, spec)
                .map_err(|e| format!("--chown={spec}: {e}"))?;
            (uid, gid)
        }
    };
    let mode = match chmod {
        None => None,
        Some(m) => Some(
            u32::from_str_radix(m, 8)
                .map_err(|_| format!("--chmod={m}: expected an octal mode like 755"))?,
        ),
    };
    let o = Owner { uid, gid, mode };
    let mut expanded: Vec<Source> = Vec::new();
    let mut heredocs = Vec::new();
    for s in sources {
        match s {
            CopySource::Heredoc(h) => heredocs.push(h),
            CopySource::Path(p) => {
                if is_add
                    && (p.starts_with("http://")
                        || p.starts_with("https://")
                        || p.starts_with("git@"))
                {
                    return Err(format!("ADD {p}: remote sources are not supported (berth builds have no network access to fetch them); download the file into the build context and ADD it from there"));
                }
                if p.contains("://") {
                    return Err(format!("COPY {p}: only local paths can be copied"));
                }
                expanded.extend(expand_sources(src_root, p, ignore)?);
            }
        }
    }
    let dest_is_dir = dest.ends_with('/')
        || parents
        || expanded.len() + heredocs.len() > 1
        || in_root(root, &dest_abs).is_dir();
    if expanded.len() + heredocs.len() > 1
        && !dest.ends_with('/')
        && !parents
        && !in_root(root, &dest_abs).is_dir()
    {
        return Err(format!("when using COPY with more than one source file, the destination must be a directory and end with a /: {dest}"));
    }
    for h in heredocs {
        let target = if dest_is_dir {
            format!("{}/{}", dest_abs.trim_end_matches('/'), h.name)
        } else {
            dest_abs.clone()
        };
        let parent = Path::new(&target)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        let dir = mkdirs(root, &parent, &o)?;
        let file = dir.join(Path::new(&target).file_name().unwrap_or_default());
        std::fs::write(&file, h.content.as_bytes())
            .map_err(|e| format!("writing {target}: {e}"))?;
        apply_meta(
            &file,
            None,
            &Owner {
                uid,
                gid,
                mode: Some(mode.unwrap_or(0o644)),
            },
            false,
        )?;
    }
    for src in &expanded {
        if parents {
            // The source's own path below the context, directories included.
            let target = format!("{}/{}", dest_abs.trim_end_matches('/'), src.rel);
            if let Some(parent) = Path::new(&target).parent() {
                mkdirs(root, &parent.to_string_lossy(), &o)?;
            }
            if src.is_dir() {
                mkdirs(root, &target, &o)?;
            }
            copy_tree(src, root, &target, ignore, &o)?;
        } else if src.is_dir() {
            // A directory's contents are copied, not the directory itself.
            mkdirs(root, &dest_abs, &o)?;
            copy_tree(src, root, &dest_abs, ignore, &o)?;
        } else if is_add
            && src.entry().kind() == FileType::RegularFile
            && looks_like_archive(&src.base_name())
        {
            extract(src, root, &dest_abs, &o)?;
        } else {
            let target = if dest_is_dir {
                format!("{}/{}", dest_abs.trim_end_matches('/'), src.base_name())
            } else {
                dest_abs.clone()
            };
            copy_tree(src, root, &target, ignore, &o)?;
        }
    }
    Ok(())
}

/// `berth cp`: copies host or container path `src` (already resolved to a host path) to
/// `dst`, a path inside `dst_root` (the container's root, or `/` for the host), with Docker's
/// rule: into `dst` when it is an existing directory, else as `dst`.
pub fn copy_path(src: &Path, dst_root: &Path, dst: &str) -> Result<(), String> {
    if std::fs::symlink_metadata(src).is_err() {
        return Err(format!("{}: no such file or directory", src.display()));
    }
    let source = Source::host(src)?;
    let target = if in_root(dst_root, dst).is_dir() {
        let base = src
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("{}/{}", dst.trim_end_matches('/'), base)
    } else {
        dst.to_string()
    };
    let o = Owner {
        uid: 0,
        gid: 0,
        mode: None,
    };
    copy_tree(&source, dst_root, &target, None, &o)
}

/// Resolves container path `path` under `root` without leaving it (symlinks included).
pub fn resolve_in_root(root: &Path, path: &str) -> PathBuf {
    in_root(root, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rel_paths_stay_in_context() {
        assert_eq!(clean_rel("./a/../b").unwrap(), "b");
        assert_eq!(clean_rel("/x/y").unwrap(), "x/y");
        assert!(clean_rel("../etc/passwd").is_err());
    }

    #[test]
    fn in_root_resolves_links_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink("/real", d.path().join("abs")).unwrap();
        std::os::unix::fs::symlink("../../..", d.path().join("up")).unwrap();
        assert_eq!(in_root(d.path(), "/abs/f"), d.path().join("real/f"));
        assert_eq!(in_root(d.path(), "/up/etc"), d.path().join("etc"));
    }

    #[test]
    fn copy_semantics() {
        let ctx = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(ctx.path().join("dir/sub")).unwrap();
        std::fs::write(ctx.path().join("dir/a.txt"), "a").unwrap();
        std::fs::write(ctx.path().join("dir/sub/b.txt"), "b").unwrap();
        std::fs::write(ctx.path().join("f.conf"), "f").unwrap();
        std::fs::write(ctx.path().join("g.conf"), "g").unwrap();
        let p = |s: &str| CopySource::Path(s.into());
        let src = SourceRoot::open(ctx.path(), "build context").unwrap();
        // A directory's contents go into the destination.
        copy_into(
            &src,
            None,
            root.path(),
            &CopySpec {
                sources: &[p("dir")],
                dest: "/out",
                workdir: "/",
                chown: None,
                chmod: None,
                is_add: false,
                parents: false,
            },
        )
        .unwrap();
        assert!(root.path().join("out/a.txt").is_file());
        assert!(root.path().join("out/sub/b.txt").is_file());
        // A file to a path, relative to WORKDIR.
        copy_into(
            &src,
            None,
            root.path(),
            &CopySpec {
                sources: &[p("f.conf")],
                dest: "x.conf",
                workdir: "/etc/app",
                chown: None,
                chmod: Some("600"),
                is_add: false,
                parents: false,
            },
        )
        .unwrap();
        let md = std::fs::metadata(root.path().join("etc/app/x.conf")).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o600);
        // Globs into a directory.
        copy_into(
            &src,
            None,
            root.path(),
            &CopySpec {
                sources: &[p("*.conf")],
                dest: "/confs/",
                workdir: "/",
                chown: None,
                chmod: None,
                is_add: false,
                parents: false,
            },
        )
        .unwrap();
        assert!(
            root.path().join("confs/f.conf").is_file()
                && root.path().join("confs/g.conf").is_file()
        );
        // Several sources need a directory destination.
        assert!(copy_into(
            &src,
            None,
            root.path(),
            &CopySpec {
                sources: &[p("f.conf"), p("g.conf")],
                dest: "/one",
                workdir: "/",
                chown: None,
                chmod: None,
                is_add: false,
                parents: false,
            },
        )
        .is_err());
        // Missing and escaping sources.
        assert!(copy_into(
            &src,
            None,
            root.path(),
            &CopySpec {
                sources: &[p("nope")],
                dest: "/",
                workdir: "/",
                chown: None,
                chmod: None,
                is_add: false,
                parents: false,
            },
        )
        .unwrap_err()
        .contains("not found"));
        assert!(copy_into(
            &src,
            None,
            root.path(),
            &CopySpec {
                sources: &[p("../x")],
                dest: "/",
                workdir: "/",
                chown: None,
                chmod: None,
                is_add: false,
                parents: false,
            },
        )
        .unwrap_err()
        .contains("outside"));
        // --parents keeps each source's path below the context.
        copy_into(
            &src,
            None,
            root.path(),
            &CopySpec {
                sources: &[p("dir/a.txt"), p("dir/sub"), p("*.conf")],
                dest: "/p",
                workdir: "/",
                chown: None,
                chmod: None,
                is_add: false,
                parents: true,
            },
        )
        .unwrap();
        for f in ["p/dir/a.txt", "p/dir/sub/b.txt", "p/f.conf", "p/g.conf"] {
            assert!(root.path().join(f).is_file(), "{f}");
        }
        assert!(!root.path().join("p/a.txt").exists());
    }

    /// COPY `sources` from `ctx` into `/out` (a directory) of `root`.
    fn copy_sources(
        ctx: &SourceRoot,
        ignore: Option<&DockerIgnore>,
        root: &Path,
        sources: &[&str],
        dest: &str,
    ) -> Result<(), String> {
        let sources: Vec<CopySource> = sources
            .iter()
            .map(|s| CopySource::Path(s.to_string()))
            .collect();
        copy_into(
            ctx,
            ignore,
            root,
            &CopySpec {
                sources: &sources,
                dest,
                workdir: "/",
                chown: None,
                chmod: None,
                is_add: false,
                parents: false,
            },
        )
    }

    /// A context with `linketc -> /etc` (absolute: must mean <context>/etc), `up -> ../../..`,
    /// `dirlink -> ./real`, `abs -> /sub`, and a directory holding a link to the host's /etc.
    fn hostile_context() -> tempfile::TempDir {
        let ctx = tempfile::tempdir().unwrap();
        let c = ctx.path();
        std::fs::create_dir_all(c.join("real")).unwrap();
        std::fs::create_dir_all(c.join("sub")).unwrap();
        std::fs::create_dir_all(c.join("dir")).unwrap();
        std::fs::write(c.join("real/file"), "real file").unwrap();
        std::fs::write(c.join("sub/f"), "sub f").unwrap();
        std::os::unix::fs::symlink("/etc", c.join("linketc")).unwrap();
        std::os::unix::fs::symlink("../../../../../..", c.join("up")).unwrap();
        std::os::unix::fs::symlink("./real", c.join("dirlink")).unwrap();
        std::os::unix::fs::symlink("/sub", c.join("abs")).unwrap();
        std::os::unix::fs::symlink("/etc", c.join("dir/etc")).unwrap();
        ctx
    }

    #[test]
    fn sources_never_leave_the_context() {
        assert!(
            Path::new("/etc/passwd").is_file(),
            "the host has /etc/passwd"
        );
        let ctx = hostile_context();
        let src = SourceRoot::open(ctx.path(), "build context").unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // Intermediate symlinks to the host's /etc resolve to <context>/etc: not there.
        for s in [
            "linketc/passwd",
            "linketc/shadow",
            "up/etc/passwd",
            "dir/etc/passwd",
        ] {
            let e = copy_sources(&src, None, r, &[s], "/x").unwrap_err();
            assert!(e.contains("no such file in the build context"), "{s}: {e}");
            assert!(!r.join("x").exists(), "{s}");
        }
        // So does reading the Dockerfile or .dockerignore (a link to a host file).
        std::os::unix::fs::symlink("/etc/passwd", ctx.path().join("Dockerfile")).unwrap();
        assert_eq!(src.read("Dockerfile").unwrap(), None);
        assert_eq!(src.read("linketc/passwd").unwrap(), None);
        assert_eq!(src.read("dirlink/file").unwrap().unwrap(), b"real file");
        // Globs walk the same way.
        for s in ["lin*/passwd", "linketc/pass*", "*/passwd", "up/*/passwd"] {
            let e = copy_sources(&src, None, r, &[s], "/x").unwrap_err();
            assert!(e.contains("matches nothing"), "{s}: {e}");
            assert!(!r.join("x").exists(), "{s}");
        }
        // A symlink as the source is copied as a link, whatever it points to.
        copy_sources(&src, None, r, &["linketc"], "/x").unwrap();
        assert_eq!(std::fs::read_link(r.join("x")).unwrap(), Path::new("/etc"));
        // Links inside a copied directory stay links.
        copy_sources(&src, None, r, &["dir"], "/d/").unwrap();
        assert_eq!(
            std::fs::read_link(r.join("d/etc")).unwrap(),
            Path::new("/etc")
        );
        // Links on the way that stay inside the context are followed there.
        copy_sources(&src, None, r, &["dirlink/file"], "/y").unwrap();
        assert_eq!(std::fs::read_to_string(r.join("y")).unwrap(), "real file");
        copy_sources(&src, None, r, &["abs/f"], "/z").unwrap();
        assert_eq!(std::fs::read_to_string(r.join("z")).unwrap(), "sub f");
        copy_sources(&src, None, r, &["d*/fi*"], "/g").unwrap();
        assert_eq!(std::fs::read_to_string(r.join("g")).unwrap(), "real file");
        // With an etc/ of its own, the context's file is the one copied.
        std::fs::create_dir(ctx.path().join("etc")).unwrap();
        std::fs::write(ctx.path().join("etc/passwd"), "context passwd").unwrap();
        for (s, d) in [
            ("linketc/passwd", "/p1"),
            ("lin*/passwd", "/p2"),
            ("up/etc/passwd", "/p3"),
        ] {
            copy_sources(&src, None, r, &[s], d).unwrap();
            let got = std::fs::read_to_string(r.join(d.trim_start_matches('/'))).unwrap();
            assert_eq!(got, "context passwd", "{s}");
        }
    }

    #[test]
    fn ignored_files_are_not_reached_through_a_link() {
        let ctx = hostile_context();
        std::fs::write(ctx.path().join("real/secret"), "secret").unwrap();
        let ignore = DockerIgnore::parse(".dockerignore", "real/secret\n").unwrap();
        let src = SourceRoot::open(ctx.path(), "build context").unwrap();
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let e = copy_sources(&src, Some(&ignore), r, &["dirlink/secret"], "/s").unwrap_err();
        assert!(e.contains("excluded by .dockerignore"), "{e}");
        copy_sources(&src, Some(&ignore), r, &["dirlink"], "/l").unwrap();
        copy_sources(&src, Some(&ignore), r, &["dirlink/"], "/m/").unwrap();
        assert!(r.join("m/file").is_file() && !r.join("m/secret").exists());
    }

    #[test]
    fn from_stage_sources_stay_in_the_stage() {
        // A stage's files: `etclink -> /etc` means the stage's /etc, not the host's.
        let stage = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc", stage.path().join("etclink")).unwrap();
        let src = SourceRoot::open(stage.path(), "files of --from=builder").unwrap();
        let root = tempfile::tempdir().unwrap();
        let e = copy_sources(&src, None, root.path(), &["etclink/passwd"], "/x").unwrap_err();
        assert!(
            e.contains("no such file in the files of --from=builder"),
            "{e}"
        );
        std::fs::create_dir(stage.path().join("etc")).unwrap();
        std::fs::write(stage.path().join("etc/passwd"), "stage passwd").unwrap();
        copy_sources(&src, None, root.path(), &["/etclink/passwd"], "/x").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("x")).unwrap(),
            "stage passwd"
        );
    }

    #[test]
    fn add_archive_stays_in_its_destination() {
        let sandbox = tempfile::tempdir().unwrap();
        let outside = sandbox.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("passwd"), "host file").unwrap();
        let ctx = sandbox.path().join("ctx");
        std::fs::create_dir(&ctx).unwrap();
        // Each archive: a symlink to a host directory, then an entry through it.
        let make = |name: &str, hard: bool| {
            let mut b = tar::Builder::new(std::fs::File::create(ctx.join(name)).unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, "l", &outside).unwrap();
            let mut h = tar::Header::new_gnu();
            if hard {
                h.set_entry_type(tar::EntryType::Link);
                h.set_size(0);
                b.append_link(&mut h, "h", "l/passwd").unwrap();
            } else {
                h.set_size(4);
                h.set_mode(0o644);
                b.append_data(&mut h, "l/evil", &b"evil"[..]).unwrap();
            }
            b.finish().unwrap();
        };
        make("write.tar", false);
        make("hard.tar", true);
        let src = SourceRoot::open(&ctx, "build context").unwrap();
        let root = tempfile::tempdir().unwrap();
        for a in ["write.tar", "hard.tar"] {
            let sources = [CopySource::Path(a.into())];
            let r = copy_into(
                &src,
                None,
                root.path(),
                &CopySpec {
                    sources: &sources,
                    dest: "/x/",
                    workdir: "/",
                    chown: None,
                    chmod: None,
                    is_add: true,
                    parents: false,
                },
            );
            assert!(r.is_err(), "{a}");
        }
        assert!(!outside.join("evil").exists());
        assert!(!root.path().join("x/h").exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("passwd")).unwrap(),
            "host file"
        );
    }
}
