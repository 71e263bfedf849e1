//! The layer unpacker must never write outside its target directory.
//!
//! Each run applies one tar into `<sandbox>/target`; the sandbox also holds a sentinel file
//! and a sentinel directory. After the apply (success or error), the sandbox must hold
//! exactly those three entries with unchanged metadata, the sentinels unchanged, and no
//! inode below the target may have a link outside it (a hard link to a host file).
//!
//! Input: first byte even = the rest is a raw tar stream; odd = the rest drives a
//! structured generator (`arbitrary`) that writes hostile archives byte by byte: `..`
//! components, absolute paths, symlinks to `/` or to the sandbox followed by entries
//! through them, hard links to absolute host paths, whiteouts and opaque markers.
//! Bit 1 of the first byte picks the whiteout strategy (deleting / overlay).
//! `BT_FUZZ_DEBUG=1` prints the generated entries (to read a crash of the generator).

#![no_main]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use berth_layer_tar::{apply_layer, DeletingWhiteouts, OverlayWhiteouts, WhiteoutStrategy};
use libfuzzer_sys::fuzz_target;

const SENTINEL_TEXT: &[u8] = b"sentinel: must never change\n";

struct Sandbox {
    /// `/dev/shm/bt-fuzz-layer-<pid>`: holds only `sb`.
    base: PathBuf,
    /// `<base>/sb`: holds `target`, `sentinel`, `sentinel_dir/inner`.
    sb: PathBuf,
    target: PathBuf,
    sentinel: PathBuf,
    sentinel_dir: PathBuf,
}

/// The metadata that any write, link, chmod, chown or utimes would change.
#[derive(Debug, PartialEq, Eq)]
struct Snap {
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

fn snap(p: &Path) -> Snap {
    let m = fs::symlink_metadata(p).unwrap_or_else(|e| panic!("lstat {}: {e}", p.display()));
    Snap {
        ino: m.ino(),
        mode: m.mode(),
        uid: m.uid(),
        gid: m.gid(),
        nlink: m.nlink(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        ctime: (m.ctime(), m.ctime_nsec()),
    }
}

fn names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn dev_shm_or_tmp() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

fn sandbox() -> &'static Sandbox {
    static SB: OnceLock<Sandbox> = OnceLock::new();
    SB.get_or_init(|| {
        let parent = dev_shm_or_tmp();
        // Sandboxes of fuzzing processes that are gone (libFuzzer exits without cleanup).
        if let Ok(rd) = fs::read_dir(&parent) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = n.strip_prefix("bt-fuzz-layer-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let base = parent.join(format!("bt-fuzz-layer-{}", std::process::id()));
        let _ = fs::remove_dir_all(&base);
        let sb = base.join("sb");
        let sentinel_dir = sb.join("sentinel_dir");
        fs::create_dir_all(&sentinel_dir).expect("create sandbox");
        fs::write(sb.join("sentinel"), SENTINEL_TEXT).expect("write sentinel");
        fs::write(sentinel_dir.join("inner"), SENTINEL_TEXT).expect("write inner sentinel");
        Sandbox {
            target: sb.join("target"),
            sentinel: sb.join("sentinel"),
            sentinel_dir,
            sb,
            base,
        }
    })
}

struct Before {
    base: Snap,
    sb: Snap,
    target: Snap,
    sentinel: Snap,
    sentinel_dir: Snap,
    inner: Snap,
}

impl Sandbox {
    /// A fresh, empty target; returns the state to compare with after the apply.
    fn reset(&self) -> Before {
        match fs::remove_dir_all(&self.target) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("cleaning {}: {e}", self.target.display()),
        }
        fs::create_dir(&self.target).expect("create target");
        Before {
            base: snap(&self.base),
            sb: snap(&self.sb),
            target: snap(&self.target),
            sentinel: snap(&self.sentinel),
            sentinel_dir: snap(&self.sentinel_dir),
            inner: snap(&self.sentinel_dir.join("inner")),
        }
    }

    fn check(&self, before: &Before) {
        let want: BTreeSet<String> = ["sb"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names(&self.base),
            want,
            "an entry appeared next to the sandbox"
        );
        let want: BTreeSet<String> = ["sentinel", "sentinel_dir", "target"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            names(&self.sb),
            want,
            "an entry appeared next to the target"
        );
        let want: BTreeSet<String> = ["inner"].iter().map(|s| s.to_string()).collect();
        assert_eq!(names(&self.sentinel_dir), want, "sentinel_dir was modified");
        assert_eq!(snap(&self.base), before.base, "the sandbox parent changed");
        assert_eq!(snap(&self.sb), before.sb, "the sandbox dir changed");
        assert_eq!(
            snap(&self.sentinel),
            before.sentinel,
            "the sentinel changed"
        );
        assert_eq!(
            snap(&self.sentinel_dir),
            before.sentinel_dir,
            "sentinel_dir changed"
        );
        assert_eq!(
            snap(&self.sentinel_dir.join("inner")),
            before.inner,
            "sentinel_dir/inner changed"
        );
        assert_eq!(
            fs::read(&self.sentinel).expect("read sentinel"),
            SENTINEL_TEXT
        );
        let t = snap(&self.target);
        assert_eq!(t.ino, before.target.ino, "the target was replaced");
        assert!(
            t.mode & 0o170000 == 0o040000,
            "the target is no longer a directory"
        );
        check_no_outside_links(&self.target);
    }
}

/// Every non-directory inode below `root` must have all its links below `root`.
fn check_no_outside_links(root: &Path) {
    let mut seen: HashMap<u64, (u64, u64, PathBuf)> = HashMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(rd) = fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else {
                let entry = seen.entry(m.ino()).or_insert((m.nlink(), 0, p));
                entry.1 += 1;
            }
        }
    }
    for (nlink, found, p) in seen.values() {
        assert!(
            nlink == found,
            "{} has {nlink} links but only {found} below the target: a link escapes",
            p.display()
        );
    }
}

// ----- structured generator ----------------------------------------------------------

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Comp {
    A,
    B,
    Dot,
    DotDot,
    Empty,
    Link,
    Wh,
    Opq,
    Sentinel,
    SentinelDir,
    Target,
    Sb,
}

#[derive(Arbitrary, Debug)]
struct RelPath {
    absolute: bool,
    comps: Vec<Comp>,
}

#[derive(Arbitrary, Debug)]
enum LinkTarget {
    Rel(RelPath),
    /// `../` repeated n times, then `sentinel`.
    UpToSentinel(u8),
    Root,
    HostSentinel,
    HostSentinelDir,
    HostSb,
    HostBase,
    ProcSelfRoot,
    EtcPasswd,
}

#[derive(Arbitrary, Debug)]
enum Kind {
    File(Vec<u8>),
    Dir,
    Symlink(LinkTarget),
    Hardlink(LinkTarget),
    Fifo,
    CharDev,
    /// `.wh.` + the last component.
    Whiteout,
}

#[derive(Arbitrary, Debug)]
struct Entry {
    path: RelPath,
    kind: Kind,
    mode: u16,
    xattr: Option<(bool, u8)>,
}

fn comp_bytes(c: Comp) -> &'static [u8] {
    match c {
        Comp::A => b"a",
        Comp::B => b"b",
        Comp::Dot => b".",
        Comp::DotDot => b"..",
        Comp::Empty => b"",
        Comp::Link => b"l",
        Comp::Wh => b".wh.a",
        Comp::Opq => b".wh..wh..opq",
        Comp::Sentinel => b"sentinel",
        Comp::SentinelDir => b"sentinel_dir",
        Comp::Target => b"target",
        Comp::Sb => b"sb",
    }
}

fn rel_bytes(p: &RelPath) -> Vec<u8> {
    let mut out = Vec::new();
    if p.absolute {
        out.push(b'/');
    }
    for (i, c) in p.comps.iter().take(6).enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(comp_bytes(*c));
    }
    out
}

fn target_bytes(t: &LinkTarget, sb: &Sandbox) -> Vec<u8> {
    let abs = |p: &Path| p.to_string_lossy().as_bytes().to_vec();
    match t {
        LinkTarget::Rel(p) => rel_bytes(p),
        LinkTarget::UpToSentinel(n) => {
            let mut v = b"../".repeat(usize::from(n % 6));
            v.extend_from_slice(b"sentinel");
            v
        }
        LinkTarget::Root => b"/".to_vec(),
        LinkTarget::HostSentinel => abs(&sb.sentinel),
        LinkTarget::HostSentinelDir => abs(&sb.sentinel_dir),
        LinkTarget::HostSb => abs(&sb.sb),
        LinkTarget::HostBase => abs(&sb.base),
        LinkTarget::ProcSelfRoot => b"/proc/self/root".to_vec(),
        LinkTarget::EtcPasswd => b"/etc/passwd".to_vec(),
    }
}

/// Appends one 512-byte ustar header with raw (unvalidated) name and link name.
fn push_header(
    out: &mut Vec<u8>,
    name: &[u8],
    link: &[u8],
    kind: tar::EntryType,
    mode: u32,
    size: u64,
) {
    let mut h = tar::Header::new_ustar();
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h.set_entry_type(kind);
    {
        let u = h.as_ustar_mut().expect("ustar header");
        let n = name.len().min(u.name.len());
        u.name[..n].copy_from_slice(&name[..n]);
        let n = link.len().min(u.linkname.len());
        u.linkname[..n].copy_from_slice(&link[..n]);
    }
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
}

fn push_data(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

/// One PAX record `"<len> key=value\n"`, where len counts the whole record.
fn pax_record(key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut r = format!("{len} ").into_bytes();
    r.extend_from_slice(key);
    r.push(b'=');
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn build_tar(entries: &[Entry], sb: &Sandbox) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries.iter().take(12) {
        let mut name = rel_bytes(&e.path);
        let mode = u32::from(e.mode) & 0o7777;
        if let Some((user, v)) = e.xattr {
            let key: &[u8] = if user {
                b"SCHILY.xattr.user.fuzz"
            } else {
                b"SCHILY.xattr.trusted.overlay.opaque"
            };
            let rec = pax_record(key, &[b'a' + v % 26]);
            push_header(
                &mut out,
                b"pax",
                b"",
                tar::EntryType::XHeader,
                0o644,
                rec.len() as u64,
            );
            push_data(&mut out, &rec);
        }
        match &e.kind {
            Kind::File(data) => {
                let data = &data[..data.len().min(1024)];
                push_header(
                    &mut out,
                    &name,
                    b"",
                    tar::EntryType::Regular,
                    mode,
                    data.len() as u64,
                );
                push_data(&mut out, data);
            }
            Kind::Dir => push_header(&mut out, &name, b"", tar::EntryType::Directory, mode, 0),
            Kind::Symlink(t) => {
                let t = target_bytes(t, sb);
                push_header(&mut out, &name, &t, tar::EntryType::Symlink, mode, 0)
            }
            Kind::Hardlink(t) => {
                let t = target_bytes(t, sb);
                push_header(&mut out, &name, &t, tar::EntryType::Link, mode, 0)
            }
            Kind::Fifo => push_header(&mut out, &name, b"", tar::EntryType::Fifo, mode, 0),
            Kind::CharDev => push_header(&mut out, &name, b"", tar::EntryType::Char, mode, 0),
            Kind::Whiteout => {
                let cut = name.iter().rposition(|b| *b == b'/').map_or(0, |i| i + 1);
                name.splice(cut..cut, b".wh.".iter().copied());
                push_header(&mut out, &name, b"", tar::EntryType::Regular, 0o644, 0)
            }
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let sb = sandbox();
    let tar_bytes = if mode & 1 == 0 {
        rest.to_vec()
    } else {
        let mut u = Unstructured::new(rest);
        let Ok(entries) = Vec::<Entry>::arbitrary(&mut u) else {
            return;
        };
        if std::env::var_os("BT_FUZZ_DEBUG").is_some() {
            eprintln!("{entries:#?}");
        }
        build_tar(&entries, sb)
    };
    let before = sb.reset();
    let mut deleting = DeletingWhiteouts;
    let mut overlay = OverlayWhiteouts;
    let strategy: &mut dyn WhiteoutStrategy = if mode & 2 == 0 {
        &mut deleting
    } else {
        &mut overlay
    };
    let _ = apply_layer(&sb.target, &mut tar_bytes.as_slice(), strategy);
    sb.check(&before);
});
