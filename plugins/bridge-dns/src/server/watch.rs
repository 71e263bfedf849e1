//! Re-reading a file when it changes: a stat per check, compared with the last one read.
//! An atomic replacement (rename) changes the inode; an in-place write changes mtime/size.

use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
}

impl Stamp {
    fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
            ctime: m.ctime(),
            ctime_nsec: m.ctime_nsec(),
        }
    }
}

/// Result of [`Watched::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Unchanged,
    /// The file was (re-)read: the new text is returned alongside.
    Changed,
    /// The file does not exist (any more).
    Missing,
}

/// A watched file.
#[derive(Debug)]
pub struct Watched {
    path: PathBuf,
    stamp: Option<Stamp>,
}

impl Watched {
    pub fn new(path: &Path) -> Watched {
        Watched {
            path: path.to_path_buf(),
            stamp: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stats the file; reads it when it differs from the version seen last. The stamp
    /// is taken from the opened file, so a replacement racing with the read is seen at the
    /// next check rather than missed.
    pub fn check(&mut self) -> io::Result<(Change, Option<String>)> {
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.stamp = None;
                return Ok((Change::Missing, None));
            }
            Err(e) => return Err(e),
        };
        if self.stamp == Some(Stamp::of(&meta)) {
            return Ok((Change::Unchanged, None));
        }
        let text = match fs::File::open(&self.path) {
            Ok(f) => {
                let meta = f.metadata()?;
                let text = io::read_to_string(&f)?;
                self.stamp = Some(Stamp::of(&meta));
                text
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.stamp = None;
                return Ok((Change::Missing, None));
            }
            Err(e) => return Err(e),
        };
        Ok((Change::Changed, Some(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_replacement_in_place_write_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let mut w = Watched::new(&p);
        assert_eq!(w.check().unwrap().0, Change::Missing);
        fs::write(&p, "a").unwrap();
        assert_eq!(w.check().unwrap(), (Change::Changed, Some("a".into())));
        assert_eq!(w.check().unwrap().0, Change::Unchanged);
        // Atomic replacement with the same size.
        let tmp = dir.path().join("t");
        fs::write(&tmp, "b").unwrap();
        fs::rename(&tmp, &p).unwrap();
        assert_eq!(w.check().unwrap(), (Change::Changed, Some("b".into())));
        fs::write(&p, "cc").unwrap();
        assert_eq!(w.check().unwrap(), (Change::Changed, Some("cc".into())));
        fs::remove_file(&p).unwrap();
        assert_eq!(w.check().unwrap().0, Change::Missing);
    }
}
