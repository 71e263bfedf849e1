//! Container logs: one JSON object per line, like Docker's json-file driver:
//! `{"log":"hello\n","stream":"stdout","time":"2026-11-29T03:00:00.123456789Z"}`.

use std::{
    fs::{File, OpenOptions},
    io::{BufRead, BufReader, Seek, SeekFrom, Write},
    path::Path,
};

use serde::{Deserialize, Serialize};

use crate::EngineError;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LogEntry {
    pub log: String,
    pub stream: String,
    pub time: String,
}

/// Appends entries; splits input into lines so `logs --tail` counts lines.
pub struct LogWriter {
    file: File,
    /// Partial line per stream (0 = stdout, 1 = stderr).
    pending: [Vec<u8>; 2],
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

impl LogWriter {
    pub fn open(path: &Path) -> Result<LogWriter, EngineError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| EngineError::io(format!("opening log {}", path.display()), e))?;
        Ok(LogWriter {
            file,
            pending: [Vec::new(), Vec::new()],
        })
    }

    fn emit(&mut self, stream: usize, line: &[u8]) -> std::io::Result<()> {
        let entry = LogEntry {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            time: now_rfc3339(),
        };
        let mut s = serde_json::to_string(&entry).map_err(std::io::Error::other)?;
        s.push('\n');
        self.file.write_all(s.as_bytes())
    }

    /// Records bytes read from the container's stdout (`stream` 0) or stderr (1).
    pub fn write(&mut self, stream: usize, data: &[u8]) -> std::io::Result<()> {
        let mut buf = std::mem::take(&mut self.pending[stream]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos + 1;
            self.emit(stream, &buf[start..end])?;
            start = end;
        }
        // Very long lines are flushed in 16 KiB pieces, as Docker does.
        while buf.len() - start >= 16 * 1024 {
            self.emit(stream, &buf[start..start + 16 * 1024])?;
            start += 16 * 1024;
        }
        self.pending[stream] = buf[start..].to_vec();
        Ok(())
    }

    /// Writes out partial lines (at exit).
    pub fn flush(&mut self) -> std::io::Result<()> {
        for s in 0..2 {
            let p = std::mem::take(&mut self.pending[s]);
            if !p.is_empty() {
                self.emit(s, &p)?;
            }
        }
        self.file.flush()
    }
}

/// `logs` options.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub tail: Option<usize>,
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    pub timestamps: bool,
}

fn wanted(e: &LogEntry, o: &LogOptions) -> bool {
    if o.since.is_none() && o.until.is_none() {
        return true;
    }
    let Ok(t) = chrono::DateTime::parse_from_rfc3339(&e.time) else {
        return true;
    };
    let t = t.with_timezone(&chrono::Utc);
    o.since.is_none_or(|s| t >= s) && o.until.is_none_or(|u| t <= u)
}

/// Reads the log; returns the entries and the byte offset reached (for `--follow`).
pub fn read_log(path: &Path, o: &LogOptions) -> Result<(Vec<LogEntry>, u64), EngineError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => {
            return Err(EngineError::io(
                format!("reading log {}", path.display()),
                e,
            ))
        }
    };
    let mut entries = Vec::new();
    let mut offset = 0u64;
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| EngineError::io(format!("reading log {}", path.display()), e))?;
        if n == 0 || !line.ends_with('\n') {
            break; // EOF or a line still being written
        }
        offset += n as u64;
        if let Ok(e) = serde_json::from_str::<LogEntry>(&line) {
            if wanted(&e, o) {
                entries.push(e);
            }
        }
    }
    if let Some(t) = o.tail {
        let skip = entries.len().saturating_sub(t);
        entries.drain(..skip);
    }
    Ok((entries, offset))
}

/// Reads complete entries appended after `offset`.
pub fn read_from(path: &Path, offset: u64) -> Result<(Vec<LogEntry>, u64), EngineError> {
    let mut file = File::open(path)
        .map_err(|e| EngineError::io(format!("reading log {}", path.display()), e))?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| EngineError::io("seeking log", e))?;
    let mut reader = BufReader::new(file);
    let mut entries = Vec::new();
    let mut off = offset;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| EngineError::io("reading log", e))?;
        if n == 0 || !line.ends_with('\n') {
            break;
        }
        off += n as u64;
        if let Ok(e) = serde_json::from_str::<LogEntry>(&line) {
            entries.push(e);
        }
    }
    Ok((entries, off))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_in_order_with_tail() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ctr.log");
        let mut w = LogWriter::open(&p).unwrap();
        w.write(0, b"one\ntw").unwrap();
        w.write(1, b"err\n").unwrap();
        w.write(0, b"o\nthree").unwrap();
        w.flush().unwrap();
        let (all, _) = read_log(&p, &LogOptions::default()).unwrap();
        let text: Vec<(&str, &str)> = all
            .iter()
            .map(|e| (e.stream.as_str(), e.log.as_str()))
            .collect();
        assert_eq!(
            text,
            vec![
                ("stdout", "one\n"),
                ("stderr", "err\n"),
                ("stdout", "two\n"),
                ("stdout", "three")
            ]
        );
        let (tail, _) = read_log(
            &p,
            &LogOptions {
                tail: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1].log, "three");
    }
}
