//! SHA-256 digests and hashing / verifying readers.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use crate::error::ImageError;
use crate::reference::is_hex;

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Checks `digest` is `sha256:<64 lower-case hex>` and returns the hex part.
pub fn digest_hex(digest: &str) -> Result<&str, ImageError> {
    let invalid = |reason: &str| ImageError::InvalidDigest {
        input: digest.to_string(),
        reason: reason.to_string(),
    };
    let hex = digest
        .strip_prefix("sha256:")
        .ok_or_else(|| invalid("only sha256 digests are supported (want sha256:<64 hex>)"))?;
    if hex.len() != 64 || !is_hex(hex) {
        return Err(invalid("want 64 lower-case hex digits after sha256:"));
    }
    Ok(hex)
}

/// OCI ChainIDs: `chain[0] = diff_id[0]`, `chain[n] = sha256(chain[n-1] + " " + diff_id[n])`.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => sha256_digest(format!("{prev} {d}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A reader that hashes (and counts) everything read through it.
pub(crate) struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// Reads the rest of the stream, then returns (digest, size, inner).
    pub(crate) fn finish(mut self) -> io::Result<(String, u64, R)> {
        io::copy(&mut self, &mut io::sink())?;
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        Ok((digest, self.count, self.inner))
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// A reader that copies everything it reads into `out` while hashing it.
pub(crate) struct TeeHashReader<R, W> {
    inner: R,
    out: W,
    hasher: Sha256,
    count: u64,
    progress: Option<std::sync::Arc<dyn crate::Progress>>,
}

impl<R: Read, W: Write> TeeHashReader<R, W> {
    pub(crate) fn new(
        inner: R,
        out: W,
        progress: Option<std::sync::Arc<dyn crate::Progress>>,
    ) -> Self {
        TeeHashReader {
            inner,
            out,
            hasher: Sha256::new(),
            count: 0,
            progress,
        }
    }

    /// Drains the input, then returns (digest, size, writer).
    pub(crate) fn finish(mut self) -> io::Result<(String, u64, W)> {
        io::copy(&mut self, &mut io::sink())?;
        self.out.flush()?;
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        Ok((digest, self.count, self.out))
    }
}

impl<R: Read, W: Write> Read for TeeHashReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(p) = &self.progress {
            p.advance(n as u64);
        }
        Ok(n)
    }
}

/// A reader that checks, at end of stream, that the content has the expected
/// digest (and size, when known). A mismatch, an over-long stream or a short
/// one is reported as an `InvalidData` / `UnexpectedEof` error from `read()`.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    what: String,
    expected: String,
    expected_size: Option<u64>,
    hasher: Sha256,
    count: u64,
    verified: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(
        inner: R,
        what: String,
        expected: String,
        expected_size: Option<u64>,
    ) -> Self {
        VerifyingReader {
            inner,
            what,
            expected,
            expected_size,
            hasher: Sha256::new(),
            count: 0,
            verified: false,
        }
    }

    /// Feeds bytes obtained elsewhere (when this verifier is not in the read path).
    pub(crate) fn feed(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.count += data.len() as u64;
    }

    /// Declares the end of fed data and verifies it.
    pub(crate) fn feed_end(&mut self) -> io::Result<()> {
        self.verify()
    }

    fn verify(&mut self) -> io::Result<()> {
        if self.verified {
            return Ok(());
        }
        if let Some(size) = self.expected_size {
            if self.count != size {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{}: truncated: expected {size} bytes, got {}",
                        self.what, self.count
                    ),
                ));
            }
        }
        let actual = format!(
            "sha256:{}",
            hex::encode(std::mem::take(&mut self.hasher).finalize())
        );
        if actual != self.expected {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: digest mismatch: expected {}, got {actual}",
                    self.what, self.expected
                ),
            ));
        }
        self.verified = true;
        Ok(())
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.verified {
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let n = self.inner.read(buf)?;
        if n == 0 {
            self.verify()?;
            return Ok(0);
        }
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if let Some(size) = self.expected_size {
            if self.count > size {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: longer than the expected {size} bytes", self.what),
                ));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = sha256_digest(b"a");
        let b = sha256_digest(b"b");
        let c = sha256_digest(b"c");
        let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_digest(format!("{a} {b}").as_bytes()));
        assert_eq!(ids[2], sha256_digest(format!("{} {c}", ids[1]).as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn verifying_reader_detects_mismatch_and_truncation() {
        let data = b"hello world".to_vec();
        let good = sha256_digest(&data);
        let mut out = Vec::new();
        VerifyingReader::new(&data[..], "x".into(), good.clone(), Some(11))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
        let err = VerifyingReader::new(&data[..5], "x".into(), good.clone(), Some(11))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let err = VerifyingReader::new(&b"hellO world"[..], "x".into(), good, None)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn digest_validation() {
        assert!(digest_hex(&sha256_digest(b"")).is_ok());
        assert!(digest_hex("sha256:ABC").is_err());
        assert!(digest_hex("md5:00").is_err());
    }
}
