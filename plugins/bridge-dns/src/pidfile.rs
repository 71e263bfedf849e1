//! The responder's pid file: written atomically once the sockets are bound (so its
//! appearance means "ready"), removed on exit. [`running_pid`] lets the network backend tell
//! whether a network's responder is alive before starting another one.

use std::{
    fs, io,
    io::Write,
    path::{Path, PathBuf},
};

use tracing::{debug, warn};

/// Errors writing or reading a pid file.
#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("{op} pid file {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A written pid file; dropping it removes the file if it still holds our pid.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes the current process id to `path` (temp file + rename).
    pub fn write(path: &Path) -> Result<PidFile, PidFileError> {
        let err = |op| {
            move |source| PidFileError::Io {
                op,
                path: path.to_path_buf(),
                source,
            }
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let pid = std::process::id();
        let mut tmp = tempfile::Builder::new()
            .prefix(".berth-dns-pid.")
            .tempfile_in(dir)
            .map_err(err("create temporary file for"))?;
        writeln!(tmp, "{pid}").map_err(err("write"))?;
        tmp.persist(path).map_err(|e| err("rename into")(e.error))?;
        debug!(path = %path.display(), pid, "pid file written");
        Ok(PidFile {
            path: path.to_path_buf(),
            pid,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read_pid(&self.path).ok().flatten() == Some(self.pid) {
            if let Err(e) = fs::remove_file(&self.path) {
                warn!(path = %self.path.display(), error = %e, "cannot remove pid file");
            }
        }
    }
}

/// The pid recorded in `path` (None when the file is missing or holds no pid).
pub fn read_pid(path: &Path) -> Result<Option<u32>, PidFileError> {
    match fs::read_to_string(path) {
        Ok(t) => Ok(t.trim().parse().ok()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PidFileError::Io {
            op: "read",
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The pid in `path` if that process is alive and its command name (`/proc/PID/comm`) is
/// `comm` (use `"berth-dns"`), which guards against a reused pid.
pub fn running_pid(path: &Path, comm: &str) -> Result<Option<u32>, PidFileError> {
    let Some(pid) = read_pid(path)? else {
        return Ok(None);
    };
    let stat = match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s,
        Err(_) => return Ok(None),
    };
    // `pid (comm) S ...`: a zombie (Z) or dead (X) process does not serve anything.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next());
    if matches!(state, Some("Z") | Some("X") | None) {
        return Ok(None);
    }
    let actual = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    Ok((actual.trim_end() == comm).then_some(pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_read_and_remove_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dns.pid");
        let f = PidFile::write(&p).unwrap();
        assert_eq!(read_pid(&p).unwrap(), Some(std::process::id()));
        let comm = fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(
            running_pid(&p, comm.trim_end()).unwrap(),
            Some(std::process::id())
        );
        assert_eq!(running_pid(&p, "not-this-one").unwrap(), None);
        drop(f);
        assert!(!p.exists());
        assert_eq!(read_pid(&p).unwrap(), None);
        assert_eq!(running_pid(&p, "x").unwrap(), None);
    }

    #[test]
    fn drop_leaves_a_foreign_pid_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("dns.pid");
        let f = PidFile::write(&p).unwrap();
        fs::write(&p, "1\n").unwrap();
        drop(f);
        assert_eq!(read_pid(&p).unwrap(), Some(1));
    }
}
