//! COPY/ADD for builds: Docker's source expansion (globs, `.dockerignore`), directory-copy
//! semantics, ownership and mode, writing only inside the target root.

use std::{
    fs::Metadata,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Component, Path, PathBuf},
};

use berth_dockerfile::{CopySource, DockerIgnore};

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

/// The (relative, absolute) paths a COPY source names: itself, or its glob matches.
pub fn expand_sources(
    root: &Path,
    pattern: &str,
    ignore: Option<&DockerIgnore>,
) -> Result<Vec<(String, PathBuf)>, String> {
    let rel = clean_rel(pattern)?;
    let mut out = Vec::new();
    if has_glob(&rel) {
        let pat =
            glob::Pattern::new(&rel).map_err(|e| format!("invalid pattern {pattern:?}: {e}"))?;
        // Walk only as deep as the pattern has components.
        let depth = rel.split('/').count();
        let mut stack = vec![(String::new(), root.to_path_buf(), 0usize)];
        while let Some((r, p, d)) = stack.pop() {
            if d == depth {
                continue;
            }
            let Ok(rd) = std::fs::read_dir(&p) else {
                continue;
            };
            let mut names: Vec<_> = rd.filter_map(|e| e.ok()).collect();
            names.sort_by_key(|e| e.file_name());
            for e in names {
                let name = e.file_name().to_string_lossy().into_owned();
                let nr = if r.is_empty() {
                    name.clone()
                } else {
                    format!("{r}/{name}")
                };
                let np = e.path();
                if d + 1 == depth {
                    if pat.matches(&nr) && !ignore.is_some_and(|i| i.is_excluded(&nr, np.is_dir()))
                    {
                        out.push((nr, np));
                    }
                } else if np.is_dir() {
                    stack.push((nr, np, d + 1));
                }
            }
        }
        out.sort();
        if out.is_empty() {
            return Err(format!(
                "no source files were specified: {pattern:?} matches nothing in the build context"
            ));
        }
        return Ok(out);
    }
    let abs = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(&rel)
    };
    let excluded = !rel.is_empty() && ignore.is_some_and(|i| i.is_excluded(&rel, abs.is_dir()));
    if excluded || std::fs::symlink_metadata(&abs).is_err() {
        return Err(format!(
            "\"/{rel}\": not found (file not found in build context or excluded by .dockerignore)"
        ));
    }
    out.push((rel, abs));
    Ok(out)
}

/// Calls `f(rel, path, metadata)` for `abs` and everything below it, skipping paths the
/// ignore file excludes (relative paths are relative to the context).
pub fn walk(
    abs: &Path,
    rel: &str,
    ignore: Option<&DockerIgnore>,
    f: &mut dyn FnMut(&str, &Path, &Metadata) -> Result<(), String>,
) -> Result<(), String> {
    let md = std::fs::symlink_metadata(abs).map_err(|e| format!("{}: {e}", abs.display()))?;
    f(rel, abs, &md)?;
    if md.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(abs)
            .map_err(|e| format!("{}: {e}", abs.display()))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let p = e.path();
            if let Some(i) = ignore {
                let is_dir = p.is_dir();
                if i.is_excluded(&r, is_dir) && !(is_dir && i.may_reinclude_inside(&r)) {
                    continue;
                }
            }
            walk(&p, &r, ignore, f)?;
        }
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

fn apply_meta(path: &Path, md: Option<&Metadata>, o: &Owner, is_link: bool) -> Result<(), String> {
    std::os::unix::fs::lchown(path, Some(o.uid), Some(o.gid))
        .map_err(|e| format!("chown {}: {e}", path.display()))?;
    if !is_link {
        let mode = match (o.mode, md) {
            (Some(m), _) => Some(m),
            (None, Some(md)) => Some(md.mode() & 0o7777),
            (None, None) => None,
        };
        if let Some(m) = mode {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(m))
                .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        }
    }
    if let Some(md) = md {
        let t = nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec());
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

/// Copies one tree (file, dir or link) from `src` to container path `dst` in `root`.
fn copy_tree(
    src: &Path,
    root: &Path,
    dst: &str,
    ignore: Option<&DockerIgnore>,
    rel: &str,
    o: &Owner,
) -> Result<(), String> {
    walk(src, rel, ignore, &mut |r, path, md| {
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
        let ft = md.file_type();
        if ft.is_dir() {
            if !target.is_dir() {
                let _ = std::fs::remove_file(&target);
                std::fs::create_dir(&target).map_err(|e| format!("creating {target_c}: {e}"))?;
            }
            apply_meta(&target, Some(md), o, false)
        } else if ft.is_symlink() {
            let link = std::fs::read_link(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let _ = std::fs::remove_file(&target);
            std::os::unix::fs::symlink(&link, &target)
                .map_err(|e| format!("linking {target_c}: {e}"))?;
            apply_meta(&target, Some(md), o, true)
        } else if ft.is_file() {
            if target.is_dir() {
                return Err(format!("cannot overwrite directory {target_c} with a file"));
            }
            let _ = std::fs::remove_file(&target);
            std::fs::copy(path, &target).map_err(|e| format!("copying to {target_c}: {e}"))?;
            apply_meta(&target, Some(md), o, false)
        } else {
            Ok(()) // sockets, devices: not copied from a build context
        }
    })
}

fn looks_like_archive(p: &Path) -> bool {
    let n = p
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    n.ends_with(".tar") || n.ends_with(".tar.gz") || n.ends_with(".tgz") || n.ends_with(".tar.zst")
}

fn extract(archive: &Path, root: &Path, dest_dir: &str, o: &Owner) -> Result<(), String> {
    let target = mkdirs(root, dest_dir, o)?;
    let f = std::fs::File::open(archive).map_err(|e| format!("{}: {e}", archive.display()))?;
    let name = archive.to_string_lossy().to_lowercase();
    let reader: Box<dyn std::io::Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else if name.ends_with(".zst") {
        Box::new(
            zstd::stream::read::Decoder::new(f)
                .map_err(|e| format!("{}: {e}", archive.display()))?,
        )
    } else {
        Box::new(f)
    };
    let mut a = tar::Archive::new(reader);
    a.set_preserve_permissions(true);
    // `tar` refuses entries that would land outside `target` (`..`, absolute paths).
    a.unpack(&target)
        .map_err(|e| format!("extracting {}: {e}", archive.display()))
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
    src_root: &Path,
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
    let mut expanded: Vec<(String, PathBuf)> = Vec::new();
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
    for (rel, abs) in expanded {
        let md = std::fs::symlink_metadata(&abs).map_err(|e| format!("{}: {e}", abs.display()))?;
        if parents {
            // The source's own path below the context, directories included.
            let target = format!("{}/{}", dest_abs.trim_end_matches('/'), rel);
            if let Some(parent) = Path::new(&target).parent() {
                mkdirs(root, &parent.to_string_lossy(), &o)?;
            }
            if md.is_dir() {
                mkdirs(root, &target, &o)?;
            }
            copy_tree(&abs, root, &target, ignore, &rel, &o)?;
        } else if md.is_dir() {
            // A directory's contents are copied, not the directory itself.
            mkdirs(root, &dest_abs, &o)?;
            copy_tree(&abs, root, &dest_abs, ignore, &rel, &o)?;
        } else if is_add && looks_like_archive(&abs) {
            extract(&abs, root, &dest_abs, &o)?;
        } else {
            let target = if dest_is_dir {
                let base = abs
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                format!("{}/{}", dest_abs.trim_end_matches('/'), base)
            } else {
                dest_abs.clone()
            };
            copy_tree(&abs, root, &target, ignore, &rel, &o)?;
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
    copy_tree(src, dst_root, &target, None, "", &o)
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
        // A directory's contents go into the destination.
        copy_into(
            ctx.path(),
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
            ctx.path(),
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
            ctx.path(),
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
            ctx.path(),
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
            ctx.path(),
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
            ctx.path(),
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
            ctx.path(),
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
}
