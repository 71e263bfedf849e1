//! The records file: the contract between the network backend (writer) and `berth-dns`
//! (reader).
//!
//! # Format
//!
//! One file per network, one line per address, `/etc/hosts`-like:
//!
//! ```text
//! # berth-dns records of network "mynet"
//! 10.89.0.2 web www 3f2a1b4c5d6e
//! 10.89.0.3 db
//! ```
//!
//! * `IP NAME [NAME...]`, separated by spaces or tabs; `#` starts a comment; blank lines are
//!   ignored. IPv4 and IPv6 addresses are accepted.
//! * The first name is the primary one (it is what a PTR query answers); the others are
//!   aliases (`--network-alias`, the short container ID, ...).
//! * Names are DNS names (labels of `[A-Za-z0-9_-]`, 1-63 bytes each, 253 bytes at most)
//!   and are compared case-insensitively. They are written without the search domain: the
//!   responder answers both `web` and `web.<domain>`.
//! * A name belongs to one address per family: [`Records::add`] refuses a name that another
//!   address of the same family already carries.
//!
//! # Writing
//!
//! [`RecordsFile`] changes the file under an exclusive lock (`<file>.lock`, `flock`) and
//! replaces it atomically (temp file in the same directory + `rename`), so the responder
//! never sees a half-written file and concurrent writers never lose an update. This module
//! depends on neither tokio nor hickory (build the crate with `default-features = false`).

use std::{
    collections::HashSet,
    fmt,
    fs::{self, File, OpenOptions},
    io::{self, Write},
    net::IpAddr,
    os::unix::fs::{MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
};

use fs2::FileExt;
use tracing::debug;

/// Longest DNS name accepted (without the trailing dot).
const MAX_NAME: usize = 253;
/// Longest DNS label.
const MAX_LABEL: usize = 63;

/// Errors of the records module.
#[derive(Debug, thiserror::Error)]
pub enum RecordsError {
    /// An I/O operation on a records or lock file failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The records file has a line that does not parse.
    #[error("corrupt records file {path}, line {line}: {reason}; fix or remove the file and re-attach the containers")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// A name given to [`Records::add`] is not a valid DNS name.
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    /// [`Records::add`] without any name.
    #[error("no name given for {ip}")]
    NoNames { ip: IpAddr },
    /// The name already belongs to another address of the network.
    #[error("name {name:?} is already used by {ip} on network {network}")]
    NameInUse {
        name: String,
        ip: IpAddr,
        network: String,
    },
}

/// A name clash found by [`Records::add`] (turned into [`RecordsError::NameInUse`] by
/// [`RecordsFile`], which knows the network).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddError {
    #[error("name {name:?} is already used by {ip}")]
    NameInUse { name: String, ip: IpAddr },
    #[error("invalid DNS name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("no name given for {ip}")]
    NoNames { ip: IpAddr },
}

/// One line: an address and its names (primary first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub ip: IpAddr,
    pub names: Vec<String>,
}

/// A problem found while parsing leniently (the line was skipped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseProblem {
    /// 1-based line number.
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// The content of a records file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    entries: Vec<Entry>,
}

/// Checks that `name` is a DNS name this format can carry.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name.len() > MAX_NAME {
        return Err("longer than 253 bytes");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err("empty label (leading, trailing or double dot)");
        }
        if label.len() > MAX_LABEL {
            return Err("a label is longer than 63 bytes");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("only letters, digits, '-', '_' and '.' are allowed");
        }
    }
    Ok(())
}

fn parse_line(line: &str) -> Result<Option<Entry>, String> {
    let content = line.split('#').next().unwrap_or("");
    let mut fields = content.split_ascii_whitespace();
    let Some(ip) = fields.next() else {
        return Ok(None);
    };
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("{ip:?} is not an IP address"))?;
    let mut names: Vec<String> = Vec::new();
    for n in fields {
        validate_name(n).map_err(|r| format!("invalid name {n:?}: {r}"))?;
        if !names.iter().any(|x| x.eq_ignore_ascii_case(n)) {
            names.push(n.to_string());
        }
    }
    if names.is_empty() {
        return Err(format!("address {ip} has no name"));
    }
    Ok(Some(Entry { ip, names }))
}

impl Records {
    /// An empty set.
    pub fn new() -> Records {
        Records::default()
    }

    /// Parses strictly: the first bad line is an error (`(line, reason)`).
    pub fn parse(text: &str) -> Result<Records, ParseProblem> {
        let (records, problems) = Records::parse_lenient(text);
        match problems.into_iter().next() {
            Some(p) => Err(p),
            None => Ok(records),
        }
    }

    /// Parses what can be parsed: bad lines are skipped and reported. A repeated address
    /// has its names merged into the first line's.
    pub fn parse_lenient(text: &str) -> (Records, Vec<ParseProblem>) {
        let mut records = Records::new();
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            match parse_line(line) {
                Ok(None) => {}
                Ok(Some(entry)) => match records.entries.iter_mut().find(|e| e.ip == entry.ip) {
                    Some(e) => {
                        for n in entry.names {
                            if !e.names.iter().any(|x| x.eq_ignore_ascii_case(&n)) {
                                e.names.push(n);
                            }
                        }
                    }
                    None => records.entries.push(entry),
                },
                Err(reason) => problems.push(ParseProblem {
                    line: i + 1,
                    reason,
                }),
            }
        }
        (records, problems)
    }

    /// The file content (a comment line naming the network, then one line per address).
    pub fn render(&self, network: &str) -> String {
        let mut out = format!("# berth-dns records of network {network:?}: IP NAME [ALIAS...]\n");
        for e in &self.entries {
            out.push_str(&e.ip.to_string());
            for n in &e.names {
                out.push(' ');
                out.push_str(n);
            }
            out.push('\n');
        }
        out
    }

    /// All entries in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The names of `ip` (primary first).
    pub fn names_of(&self, ip: IpAddr) -> Option<&[String]> {
        self.entries
            .iter()
            .find(|e| e.ip == ip)
            .map(|e| e.names.as_slice())
    }

    /// The addresses carrying `name` (case-insensitive), in file order.
    pub fn lookup(&self, name: &str) -> Vec<IpAddr> {
        self.entries
            .iter()
            .filter(|e| e.names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|e| e.ip)
            .collect()
    }

    /// Gives `ip` exactly these names (replacing the names it had: adding the same
    /// container twice is harmless). Fails, changing nothing, when a name is invalid or is
    /// carried by another address of the same family.
    pub fn add<S: AsRef<str>>(&mut self, ip: IpAddr, names: &[S]) -> Result<(), AddError> {
        let mut clean: Vec<String> = Vec::new();
        for n in names {
            let n = n.as_ref();
            validate_name(n).map_err(|reason| AddError::InvalidName {
                name: n.to_string(),
                reason,
            })?;
            if !clean.iter().any(|x| x.eq_ignore_ascii_case(n)) {
                clean.push(n.to_string());
            }
        }
        if clean.is_empty() {
            return Err(AddError::NoNames { ip });
        }
        for e in &self.entries {
            if e.ip == ip || e.ip.is_ipv4() != ip.is_ipv4() {
                continue;
            }
            if let Some(n) = clean
                .iter()
                .find(|n| e.names.iter().any(|x| x.eq_ignore_ascii_case(n)))
            {
                return Err(AddError::NameInUse {
                    name: n.clone(),
                    ip: e.ip,
                });
            }
        }
        match self.entries.iter_mut().find(|e| e.ip == ip) {
            Some(e) => e.names = clean,
            None => self.entries.push(Entry { ip, names: clean }),
        }
        Ok(())
    }

    /// Removes `ip`; returns its names when it was there.
    pub fn remove(&mut self, ip: IpAddr) -> Option<Vec<String>> {
        let pos = self.entries.iter().position(|e| e.ip == ip)?;
        Some(self.entries.remove(pos).names)
    }

    /// Names used more than once across addresses of one family (only possible in a
    /// hand-edited file); for diagnostics.
    pub fn duplicate_names(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        let mut dups = Vec::new();
        for e in &self.entries {
            for n in &e.names {
                let key = (e.ip.is_ipv4(), n.to_ascii_lowercase());
                if !seen.insert(key) && !dups.contains(n) {
                    dups.push(n.clone());
                }
            }
        }
        dups
    }
}

/// The writer's handle on one network's records file.
#[derive(Debug, Clone)]
pub struct RecordsFile {
    network: String,
    path: PathBuf,
}

/// The exclusive lock on a records file; released on drop.
struct Lock {
    file: File,
    path: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Closing the descriptor releases the lock anyway.
        let _ = FileExt::unlock(&self.file);
    }
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> RecordsError + 'a {
    move |source| RecordsError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

impl RecordsFile {
    /// `network` is only used in messages; `path` is the file `berth-dns --hosts` reads.
    pub fn new(network: impl Into<String>, path: impl Into<PathBuf>) -> RecordsFile {
        RecordsFile {
            network: network.into(),
            path: path.into(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    /// `<file>.lock`, the lock file next to the records file.
    pub fn lock_path(&self) -> PathBuf {
        let mut p = self.path.clone().into_os_string();
        p.push(".lock");
        PathBuf::from(p)
    }

    /// Takes the lock. The lock file can be removed by [`RecordsFile::delete`] while we
    /// wait, so after locking we check that the path still names the locked inode.
    fn lock(&self) -> Result<Lock, RecordsError> {
        let lock_path = self.lock_path();
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
        }
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&lock_path)
                .map_err(io_err("open lock file", &lock_path))?;
            file.lock_exclusive().map_err(io_err("lock", &lock_path))?;
            let held = file.metadata().map_err(io_err("stat", &lock_path))?;
            match fs::metadata(&lock_path) {
                Ok(m) if m.dev() == held.dev() && m.ino() == held.ino() => {
                    return Ok(Lock {
                        file,
                        path: lock_path,
                    })
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("stat", &lock_path)(e)),
            }
            debug!(path = %lock_path.display(), "lock file replaced while waiting, retrying");
        }
    }

    fn load(&self) -> Result<Records, RecordsError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Records::new()),
            Err(e) => return Err(io_err("read", &self.path)(e)),
        };
        Records::parse(&text).map_err(|p| RecordsError::Corrupt {
            path: self.path.clone(),
            line: p.line,
            reason: p.reason,
        })
    }

    fn store(&self, records: &Records) -> Result<(), RecordsError> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let fname = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "records".into());
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!(".{fname}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .map_err(io_err("create temporary file in", dir))?;
        let tmp_path = tmp.path().to_path_buf();
        tmp.write_all(records.render(&self.network).as_bytes())
            .and_then(|_| {
                tmp.as_file()
                    .set_permissions(fs::Permissions::from_mode(0o644))
            })
            .and_then(|_| tmp.as_file().sync_all())
            .map_err(io_err("write", &tmp_path))?;
        tmp.persist(&self.path)
            .map_err(|e| io_err("rename temporary file to", &self.path)(e.error))?;
        debug!(path = %self.path.display(), entries = records.len(), "records file replaced");
        Ok(())
    }

    /// Reads the file (a missing file is an empty set). Takes no lock: the writer replaces
    /// the file atomically.
    pub fn read(&self) -> Result<Records, RecordsError> {
        self.load()
    }

    /// Runs `f` on the current records under the lock and writes the result back
    /// atomically when `f` succeeded and changed something. Creates the parent directory
    /// and the file as needed.
    pub fn update<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Records) -> Result<T, E>,
        E: From<RecordsError>,
    {
        let _lock = self.lock()?;
        let before = self.load()?;
        let mut after = before.clone();
        let out = f(&mut after)?;
        if after != before || !self.path.exists() {
            self.store(&after)?;
        }
        Ok(out)
    }

    fn add_error(&self, e: AddError) -> RecordsError {
        match e {
            AddError::NameInUse { name, ip } => RecordsError::NameInUse {
                name,
                ip,
                network: self.network.clone(),
            },
            AddError::InvalidName { name, reason } => RecordsError::InvalidName { name, reason },
            AddError::NoNames { ip } => RecordsError::NoNames { ip },
        }
    }

    /// Gives `ip` these names (see [`Records::add`]); a clash is
    /// [`RecordsError::NameInUse`] and leaves the file unchanged.
    pub fn add<S: AsRef<str>>(&self, ip: IpAddr, names: &[S]) -> Result<(), RecordsError> {
        self.update(|r| r.add(ip, names).map_err(|e| self.add_error(e)))
    }

    /// Removes `ip` (nothing to do when it is absent); returns how many addresses are left,
    /// so the caller can [`RecordsFile::delete`] the file after the last one.
    pub fn remove(&self, ip: IpAddr) -> Result<usize, RecordsError> {
        self.update(|r| {
            r.remove(ip);
            Ok::<_, RecordsError>(r.len())
        })
    }

    /// Removes the records file (which makes its responder exit) and the lock file.
    /// Succeeds when they are already gone.
    pub fn delete(&self) -> Result<(), RecordsError> {
        let lock = self.lock()?;
        match fs::remove_file(&self.path) {
            Ok(()) => debug!(path = %self.path.display(), "records file removed"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &self.path)(e)),
        }
        // Waiters notice the unlinked lock file and retry on a new one (see `lock`).
        match fs::remove_file(&lock.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &lock.path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::{
        net::{Ipv4Addr, Ipv6Addr},
        sync::{Arc, Barrier},
    };

    fn v4(d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 89, 0, d))
    }

    #[test]
    fn parses_comments_blank_lines_and_aliases() {
        let text = "# header\n\n10.89.0.2 web www\t3f2a1b4c5d6e # trailing\n  fd00::2  web\n";
        let r = Records::parse(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            r.names_of(v4(2)).unwrap(),
            &["web".to_string(), "www".into(), "3f2a1b4c5d6e".into()]
        );
        assert_eq!(r.lookup("WWW"), vec![v4(2)]);
        let v6: IpAddr = "fd00::2".parse().unwrap();
        assert_eq!(r.lookup("web"), vec![v4(2), v6]);
        assert!(r.lookup("nope").is_empty());
    }

    #[test]
    fn strict_parse_reports_line_and_lenient_skips() {
        let text = "10.89.0.2 web\nnot-an-ip x\n10.89.0.3\n10.89.0.4 bad..name\n10.89.0.5 ok\n";
        let err = Records::parse(text).unwrap_err();
        assert_eq!(err.line, 2);
        let (r, problems) = Records::parse_lenient(text);
        assert_eq!(r.len(), 2);
        assert_eq!(
            problems.iter().map(|p| p.line).collect::<Vec<_>>(),
            vec![2, 3, 4]
        );
    }

    #[test]
    fn lenient_merges_repeated_addresses() {
        let (r, p) = Records::parse_lenient("10.89.0.2 a\n10.89.0.2 b A\n");
        assert!(p.is_empty());
        assert_eq!(r.names_of(v4(2)).unwrap(), &["a".to_string(), "b".into()]);
    }

    #[test]
    fn render_round_trips() {
        let mut r = Records::new();
        r.add(v4(2), &["web", "www"]).unwrap();
        r.add(IpAddr::V6(Ipv6Addr::LOCALHOST), &["web"]).unwrap();
        let text = r.render("net1");
        assert!(text.starts_with("# "));
        assert_eq!(Records::parse(&text).unwrap(), r);
    }

    #[test]
    fn add_replaces_names_and_refuses_clashes() {
        let mut r = Records::new();
        r.add(v4(2), &["web", "www"]).unwrap();
        r.add(v4(2), &["web", "w2", "WEB"]).unwrap();
        assert_eq!(
            r.names_of(v4(2)).unwrap(),
            &["web".to_string(), "w2".into()]
        );
        let err = r.add(v4(3), &["db", "Web"]).unwrap_err();
        assert_eq!(
            err,
            AddError::NameInUse {
                name: "Web".into(),
                ip: v4(2)
            }
        );
        assert!(r.names_of(v4(3)).is_none());
        // Another family may carry the same name (A and AAAA of one container).
        r.add("fd00::3".parse().unwrap(), &["web"]).unwrap();
        assert!(matches!(
            r.add(v4(4), &["bad name"]),
            Err(AddError::InvalidName { .. })
        ));
        assert!(matches!(
            r.add(v4(4), &[] as &[&str]),
            Err(AddError::NoNames { .. })
        ));
        assert_eq!(r.remove(v4(2)), Some(vec!["web".to_string(), "w2".into()]));
        assert_eq!(r.remove(v4(2)), None);
    }

    #[test]
    fn validates_names() {
        assert!(validate_name("web-1.svc_x").is_ok());
        assert!(validate_name(&"a".repeat(63)).is_ok());
        assert!(validate_name(&"a".repeat(64)).is_err());
        assert!(validate_name(&["a"; 130].join(".")).is_err());
        for bad in ["", ".a", "a.", "a..b", "a b", "a#b", "ä"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn file_add_remove_delete() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordsFile::new("net1", dir.path().join("sub/net1"));
        assert!(f.read().unwrap().is_empty());
        f.add(v4(2), &["web"]).unwrap();
        f.add(v4(3), &["db"]).unwrap();
        let err = f.add(v4(4), &["web"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "name \"web\" is already used by 10.89.0.2 on network net1"
        );
        assert_eq!(f.read().unwrap().len(), 2);
        assert_eq!(f.remove(v4(2)).unwrap(), 1);
        assert_eq!(f.remove(v4(2)).unwrap(), 1);
        let text = fs::read_to_string(f.path()).unwrap();
        assert!(text.contains("10.89.0.3 db"), "{text}");
        f.delete().unwrap();
        assert!(!f.path().exists());
        assert!(!f.lock_path().exists());
        f.delete().unwrap();
        // No temporary files are left behind.
        let left: Vec<_> = fs::read_dir(dir.path().join("sub")).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn unchanged_update_does_not_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordsFile::new("n", dir.path().join("n"));
        f.add(v4(2), &["web"]).unwrap();
        let ino = fs::metadata(f.path()).unwrap().ino();
        f.add(v4(2), &["web"]).unwrap();
        assert_eq!(fs::metadata(f.path()).unwrap().ino(), ino);
        f.add(v4(2), &["web", "x"]).unwrap();
        assert_ne!(fs::metadata(f.path()).unwrap().ino(), ino);
    }

    #[test]
    fn corrupt_file_is_reported_with_path_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = RecordsFile::new("n", dir.path().join("n"));
        fs::write(f.path(), "10.89.0.2 web\ngarbage here\n").unwrap();
        let err = f.add(v4(3), &["db"]).unwrap_err().to_string();
        assert!(
            err.contains("line 2") && err.contains(&*f.path().to_string_lossy()),
            "{err}"
        );
    }

    #[test]
    fn concurrent_threads_lose_no_update() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net");
        let threads = 8;
        let per_thread = 25;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    // Each thread has its own handle, as separate processes would.
                    let f = RecordsFile::new("net", path);
                    barrier.wait();
                    for i in 0..per_thread {
                        let ip = IpAddr::V4(Ipv4Addr::new(10, 90, t as u8, i as u8 + 1));
                        f.add(ip, &[format!("c{t}-{i}")]).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let r = RecordsFile::new("net", &path).read().unwrap();
        assert_eq!(r.len(), threads * per_thread);
    }

    #[test]
    fn concurrent_clashing_adds_have_one_winner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net");
        let n = 8;
        let barrier = Arc::new(Barrier::new(n));
        let handles: Vec<_> = (0..n)
            .map(|t| {
                let path = path.clone();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let f = RecordsFile::new("net", path);
                    barrier.wait();
                    f.add(v4(t as u8 + 2), &["same"]).is_ok()
                })
            })
            .collect();
        let wins = handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|ok| *ok)
            .count();
        assert_eq!(wins, 1);
    }

    #[test]
    fn delete_racing_with_adds_keeps_lock_exclusive() {
        // Writers that waited on a lock file that `delete` removed must not run
        // concurrently with writers on the new lock file: every add after the final
        // delete must be visible.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("net");
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let path = path.clone();
                std::thread::spawn(move || {
                    let f = RecordsFile::new("net", path);
                    for i in 0..20u8 {
                        if t == 0 && i % 5 == 0 {
                            f.delete().unwrap();
                        } else {
                            f.add(
                                IpAddr::V4(Ipv4Addr::new(10, 91, t, i + 1)),
                                &[format!("n{t}-{i}")],
                            )
                            .unwrap();
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let f = RecordsFile::new("net", &path);
        // Thread 0's last add happened after its last delete.
        assert!(!f.read().unwrap().lookup("n0-19").is_empty());
    }
}
