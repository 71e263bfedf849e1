//! Following a container's log as it grows, for `logs --follow` and attach-style
//! streaming. The file is opened once it exists and kept open, so the entries a
//! container wrote before it was removed (`--rm`) are still read to the end.

use std::{
    fs::File,
    io::{BufRead, BufReader, Seek, SeekFrom},
    path::PathBuf,
};

use crate::{logs::LogEntry, EngineError};

/// Where a [`LogTail`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailStart {
    /// Every entry, the old ones first.
    Beginning,
    /// Only entries written from now on.
    End,
}

pub struct LogTail {
    path: PathBuf,
    reader: Option<BufReader<File>>,
    start: TailStart,
    /// A line read before its writer finished it.
    partial: String,
}

impl LogTail {
    /// Like [`LogTail::new`], but creates the (empty) log first when its directory
    /// exists: a follower that attaches before the container starts then holds the
    /// file the container will write, even if the container runs, exits and is removed
    /// between two polls.
    pub fn creating(path: PathBuf, start: TailStart) -> LogTail {
        if path.parent().is_some_and(|d| d.is_dir()) {
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path);
        }
        LogTail::new(path, start)
    }

    pub fn new(path: PathBuf, start: TailStart) -> LogTail {
        let mut t = LogTail {
            path,
            reader: None,
            start,
            partial: String::new(),
        };
        // Opened now when it exists, so `End` means the end as of this call.
        let _ = t.open();
        t
    }

    fn open(&mut self) -> Result<(), EngineError> {
        if self.reader.is_some() {
            return Ok(());
        }
        let mut f = match File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(EngineError::io(
                    format!("reading log {}", self.path.display()),
                    e,
                ))
            }
        };
        if self.start == TailStart::End {
            f.seek(SeekFrom::End(0))
                .map_err(|e| EngineError::io("seeking log", e))?;
        }
        self.reader = Some(BufReader::new(f));
        Ok(())
    }

    /// The complete entries written since the last call (none while the file does not
    /// exist yet).
    pub fn poll(&mut self) -> Result<Vec<LogEntry>, EngineError> {
        self.open()?;
        let Some(r) = self.reader.as_mut() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        loop {
            let n = r
                .read_line(&mut self.partial)
                .map_err(|e| EngineError::io(format!("reading log {}", self.path.display()), e))?;
            if n == 0 || !self.partial.ends_with('\n') {
                break;
            }
            if let Ok(e) = serde_json::from_str::<LogEntry>(&self.partial) {
                out.push(e);
            }
            self.partial.clear();
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::LogWriter;

    #[test]
    fn follows_from_the_end_and_survives_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.log");
        let mut early = LogTail::new(p.clone(), TailStart::Beginning);
        assert!(early.poll().unwrap().is_empty());
        let mut w = LogWriter::open(&p).unwrap();
        w.write(0, b"old\n").unwrap();
        let mut late = LogTail::new(p.clone(), TailStart::End);
        w.write(1, b"new\n").unwrap();
        assert_eq!(
            early
                .poll()
                .unwrap()
                .iter()
                .map(|e| e.log.as_str())
                .collect::<Vec<_>>(),
            ["old\n", "new\n"]
        );
        std::fs::remove_file(&p).unwrap();
        w.write(0, b"last\n").unwrap();
        let l = late.poll().unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(
            (l[0].stream.as_str(), l[1].log.as_str()),
            ("stderr", "last\n")
        );
    }
}
