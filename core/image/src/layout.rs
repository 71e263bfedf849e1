//! The on-disk OCI image layout: `oci-layout`, `index.json`, `blobs/sha256/`,
//! plus berth's private `.berth/` directory (locks and temporary files).
//!
//! Locking protocol (all `flock(2)`, so a killed process releases its locks):
//! * `.berth/index.lock` (exclusive) guards every read-modify-write of `index.json`.
//! * `.berth/gc.lock` is held *shared* by every operation that writes blobs or
//!   temporary files, and *exclusive* (try-lock, never waiting) by blob garbage
//!   collection and temp-file cleanup. When the exclusive lock cannot be had, GC
//!   is deferred to a later call: unreferenced blobs are harmless.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use fs2::FileExt;
use oci_spec::image::{ImageIndex, ImageIndexBuilder, MediaType, OciLayoutBuilder};
use tempfile::NamedTempFile;

use crate::digest::{digest_hex, HashingReader};
use crate::error::{ImageError, Result};

/// Largest JSON document (manifest, config, index) berth reads into memory.
pub(crate) const MAX_JSON: u64 = 64 << 20;

pub(crate) struct Layout {
    pub(crate) root: PathBuf,
    blobs: PathBuf,
    tmp: PathBuf,
    /// Blobs being downloaded, named by digest: unlike `tmp`, kept when a writer is
    /// killed, so the next pull can resume them; only GC removes them.
    pub(crate) partial: PathBuf,
    /// Temp files of index.json / oci-layout rewrites: only written with the
    /// index lock held, so anything found there by a lock holder is stale.
    index_tmp: PathBuf,
    index_lock: PathBuf,
    gc_lock: PathBuf,
}

/// A held `flock`; released when dropped (the file is closed).
pub(crate) struct LockGuard {
    _file: File,
}

impl Layout {
    pub(crate) fn open(root: &Path) -> Result<Layout> {
        let layout = Layout {
            root: root.to_path_buf(),
            blobs: root.join("blobs").join("sha256"),
            tmp: root.join(".berth").join("tmp"),
            partial: root.join(".berth").join("partial"),
            index_tmp: root.join(".berth").join("index-tmp"),
            index_lock: root.join(".berth").join("index.lock"),
            gc_lock: root.join(".berth").join("gc.lock"),
        };
        for dir in [
            &layout.blobs,
            &layout.tmp,
            &layout.partial,
            &layout.index_tmp,
        ] {
            fs::create_dir_all(dir).map_err(|e| ImageError::io("creating directory", dir, e))?;
        }
        let _lock = layout.lock_index()?;
        let oci_layout = root.join("oci-layout");
        if !oci_layout.exists() {
            let doc = OciLayoutBuilder::default()
                .image_layout_version("1.0.0")
                .build()
                .map_err(|e| ImageError::json("oci-layout", e))?;
            let bytes = serde_json::to_vec(&doc).map_err(|e| ImageError::json("oci-layout", e))?;
            layout.write_file_atomic(&oci_layout, &bytes)?;
        }
        if !root.join("index.json").exists() {
            layout.write_index(&empty_index()?)?;
        }
        Ok(layout)
    }

    pub(crate) fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs.join(digest_hex(digest)?))
    }

    fn open_lock(&self, path: &Path) -> Result<File> {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| ImageError::io("opening lock file", path, e))
    }

    pub(crate) fn lock_index(&self) -> Result<LockGuard> {
        let file = self.open_lock(&self.index_lock)?;
        file.lock_exclusive()
            .map_err(|e| ImageError::io("locking", &self.index_lock, e))?;
        // A writer killed while rewriting index.json leaves its temp file here.
        if let Ok(entries) = fs::read_dir(&self.index_tmp) {
            for entry in entries.flatten() {
                if fs::remove_file(entry.path()).is_ok() {
                    tracing::debug!(path = %entry.path().display(), "removed stale index temp file");
                }
            }
        }
        Ok(LockGuard { _file: file })
    }

    /// Shared "writer in flight" lock. Cleans stale temp files first when no
    /// other writer is active.
    pub(crate) fn writer_guard(&self) -> Result<LockGuard> {
        if let Some(excl) = self.try_gc_exclusive()? {
            self.remove_temp_files();
            drop(excl);
        }
        let file = self.open_lock(&self.gc_lock)?;
        file.lock_shared()
            .map_err(|e| ImageError::io("locking", &self.gc_lock, e))?;
        Ok(LockGuard { _file: file })
    }

    pub(crate) fn try_gc_exclusive(&self) -> Result<Option<LockGuard>> {
        let file = self.open_lock(&self.gc_lock)?;
        match file.try_lock_exclusive() {
            Ok(()) => Ok(Some(LockGuard { _file: file })),
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == Some(libc::EWOULDBLOCK) =>
            {
                Ok(None)
            }
            Err(e) => Err(ImageError::io("locking", &self.gc_lock, e)),
        }
    }

    /// Removes everything in `.berth/tmp`. Only call with the exclusive GC lock.
    pub(crate) fn remove_temp_files(&self) -> usize {
        Self::remove_all_in(&self.tmp)
    }

    /// Removes the partial downloads too (GC: no pull is in flight).
    pub(crate) fn remove_partial_files(&self) -> usize {
        Self::remove_all_in(&self.partial)
    }

    fn remove_all_in(dir: &Path) -> usize {
        let mut removed = 0;
        let Ok(entries) = fs::read_dir(dir) else {
            return 0;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let res = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match res {
                Ok(()) => {
                    tracing::debug!(path = %path.display(), "removed stale temporary file");
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove stale temporary file")
                }
            }
        }
        removed
    }

    pub(crate) fn temp_file(&self) -> Result<NamedTempFile> {
        tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&self.tmp)
            .map_err(|e| ImageError::io("creating temporary file in", &self.tmp, e))
    }

    pub(crate) fn temp_dir(&self, prefix: &str) -> Result<tempfile::TempDir> {
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&self.tmp)
            .map_err(|e| ImageError::io("creating temporary directory in", &self.tmp, e))
    }

    /// fsyncs `tmp` and renames it to the blob of `digest` (unless that blob
    /// exists already: content addressing makes it identical).
    pub(crate) fn commit_blob(&self, tmp: NamedTempFile, digest: &str) -> Result<PathBuf> {
        let dest = self.blob_path(digest)?;
        if dest.exists() {
            return Ok(dest);
        }
        tmp.as_file()
            .sync_all()
            .map_err(|e| ImageError::io("syncing", tmp.path(), e))?;
        tmp.persist(&dest)
            .map_err(|e| ImageError::io("renaming blob into place at", &dest, e.error))?;
        sync_dir(&self.blobs);
        tracing::debug!(%digest, "blob committed");
        Ok(dest)
    }

    /// Moves an existing file (inside the layout's filesystem) into place as a blob.
    pub(crate) fn commit_blob_path(&self, src: &Path, digest: &str) -> Result<PathBuf> {
        let dest = self.blob_path(digest)?;
        if dest.exists() {
            return Ok(dest);
        }
        let f = File::open(src).map_err(|e| ImageError::io("opening", src, e))?;
        f.sync_all()
            .map_err(|e| ImageError::io("syncing", src, e))?;
        fs::rename(src, &dest)
            .map_err(|e| ImageError::io("renaming blob into place at", &dest, e))?;
        sync_dir(&self.blobs);
        Ok(dest)
    }

    /// Writes `data` to a blob, returns (digest, size).
    pub(crate) fn write_bytes(&self, data: &[u8]) -> Result<(String, u64)> {
        let digest = crate::digest::sha256_digest(data);
        if self.blob_path(&digest)?.exists() {
            return Ok((digest, data.len() as u64));
        }
        let mut tmp = self.temp_file()?;
        tmp.write_all(data)
            .map_err(|e| ImageError::io("writing", tmp.path(), e))?;
        self.commit_blob(tmp, &digest)?;
        Ok((digest, data.len() as u64))
    }

    /// Streams `data` into a blob, returns (digest, size).
    pub(crate) fn write_stream(&self, data: &mut dyn Read, what: &str) -> Result<(String, u64)> {
        let tmp = self.temp_file()?;
        let tmp_path = tmp.path().to_path_buf();
        let mut writer = BufWriter::with_capacity(1 << 20, tmp);
        let mut reader = HashingReader::new(data);
        io::copy(&mut reader, &mut writer).map_err(|e| ImageError::Read {
            what: what.to_string(),
            source: e,
        })?;
        let (digest, size, _) = reader.finish().map_err(|e| ImageError::Read {
            what: what.to_string(),
            source: e,
        })?;
        let tmp = writer
            .into_inner()
            .map_err(|e| ImageError::io("writing", &tmp_path, e.into_error()))?;
        self.commit_blob(tmp, &digest)?;
        Ok((digest, size))
    }

    /// Reads a whole (small) blob and checks its digest and, if given, size.
    pub(crate) fn read_blob(&self, digest: &str, size: Option<u64>, what: &str) -> Result<Vec<u8>> {
        let path = self.blob_path(digest)?;
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(ImageError::MissingBlob {
                    digest: digest.to_string(),
                    referenced_by: what.to_string(),
                })
            }
            Err(e) => return Err(ImageError::io("opening blob", &path, e)),
        };
        let mut data = Vec::new();
        file.take(MAX_JSON + 1)
            .read_to_end(&mut data)
            .map_err(|e| ImageError::io("reading blob", &path, e))?;
        if data.len() as u64 > MAX_JSON {
            return Err(ImageError::InvalidJson {
                what: what.to_string(),
                reason: format!("blob {digest} is larger than {MAX_JSON} bytes"),
            });
        }
        if let Some(size) = size {
            if data.len() as u64 != size {
                return Err(ImageError::SizeMismatch {
                    what: format!("{what} ({})", path.display()),
                    expected: size,
                    actual: data.len() as u64,
                });
            }
        }
        let actual = crate::digest::sha256_digest(&data);
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what: format!("{what} ({})", path.display()),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(data)
    }

    pub(crate) fn read_index(&self) -> Result<ImageIndex> {
        let path = self.root.join("index.json");
        let data = fs::read(&path).map_err(|e| ImageError::io("reading", &path, e))?;
        serde_json::from_slice(&data).map_err(|e| ImageError::json(path.display().to_string(), e))
    }

    /// Atomically replaces `index.json`. Call with the index lock held.
    pub(crate) fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let bytes = serde_json::to_vec(index).map_err(|e| ImageError::json("index.json", e))?;
        self.write_file_atomic(&self.root.join("index.json"), &bytes)
    }

    fn write_file_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix("index-")
            .tempfile_in(&self.index_tmp)
            .map_err(|e| ImageError::io("creating temporary file in", &self.index_tmp, e))?;
        tmp.write_all(bytes)
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| ImageError::io("writing", tmp.path(), e))?;
        tmp.persist(dest)
            .map_err(|e| ImageError::io("renaming into place", dest, e.error))?;
        sync_dir(&self.root);
        tracing::debug!(path = %dest.display(), "file replaced atomically");
        Ok(())
    }

    /// Every blob digest present in `blobs/sha256`.
    pub(crate) fn all_blobs(&self) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let entries =
            fs::read_dir(&self.blobs).map_err(|e| ImageError::io("listing", &self.blobs, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ImageError::io("listing", &self.blobs, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if digest_hex(&format!("sha256:{name}")).is_ok() {
                    out.push(format!("sha256:{name}"));
                }
            }
        }
        Ok(out)
    }
}

pub(crate) fn empty_index() -> Result<ImageIndex> {
    ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(Vec::new())
        .build()
        .map_err(|e| ImageError::json("index.json", e))
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        if let Err(e) = d.sync_all() {
            tracing::warn!(dir = %dir.display(), error = %e, "fsync of directory failed");
        }
    }
}
