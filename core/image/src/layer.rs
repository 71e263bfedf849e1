//! Layer streams: compression detection, one-pass import (copy + digest +
//! diff_id + tar check) and verified decompressing readers.

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use berth_layer_tar::EntryValidator;
use flate2::read::MultiGzDecoder;

use crate::digest::{HashingReader, TeeHashReader, VerifyingReader};
use crate::error::ImageError;

pub(crate) const MT_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub(crate) const MT_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub(crate) const MT_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// From the first bytes of a stream.
    pub(crate) fn detect(head: &[u8]) -> Result<Compression, String> {
        if head.starts_with(&[0x1f, 0x8b]) {
            Ok(Compression::Gzip)
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Ok(Compression::Zstd)
        } else if head.starts_with(b"BZh") {
            Err("bzip2 compression is not supported; decompress it first or use gzip/zstd".into())
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            Err("xz compression is not supported; decompress it first or use gzip/zstd".into())
        } else {
            Ok(Compression::None)
        }
    }

    pub(crate) fn oci_media_type(self) -> &'static str {
        match self {
            Compression::None => MT_TAR,
            Compression::Gzip => MT_TAR_GZIP,
            Compression::Zstd => MT_TAR_ZSTD,
        }
    }

    /// From a layer media type (OCI or Docker).
    pub(crate) fn from_media_type(mt: &str) -> Option<Compression> {
        match mt {
            MT_TAR
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            MT_TAR_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            MT_TAR_ZSTD
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// Result of streaming a layer into a file.
pub(crate) struct Ingested {
    pub(crate) compression: Compression,
    pub(crate) digest: String,
    pub(crate) size: u64,
    pub(crate) diff_id: String,
}

/// Copies `input` into `out` in one pass, computing the digest of the bytes
/// as given and the diff_id of the decompressed tar, and checking that the
/// decompressed stream is a tar archive whose entries are safe to unpack.
pub(crate) fn ingest_layer<W: Write>(
    input: &mut dyn Read,
    out: W,
    what: &str,
    progress: Option<std::sync::Arc<dyn crate::Progress>>,
) -> Result<(Ingested, W), ImageError> {
    let read_err = |e: io::Error| ImageError::Read {
        what: what.to_string(),
        source: e,
    };
    let mut buffered = BufReader::with_capacity(1 << 20, input);
    let head = buffered.fill_buf().map_err(read_err)?;
    let compression = Compression::detect(head).map_err(|reason| ImageError::InvalidTar {
        what: what.to_string(),
        reason,
    })?;
    let tee = TeeHashReader::new(buffered, BufWriter::with_capacity(1 << 20, out), progress);
    let tar_err = |e| tar_error(e, what);
    let (diff_id, tee) = match compression {
        Compression::None => (None, check_tar(tee, what)?),
        Compression::Gzip => {
            let hashing = check_tar(HashingReader::new(MultiGzDecoder::new(tee)), what)?;
            let (diff, _, dec) = hashing.finish().map_err(tar_err)?;
            (Some(diff), dec.into_inner())
        }
        Compression::Zstd => {
            let dec =
                zstd::stream::read::Decoder::with_buffer(BufReader::new(tee)).map_err(read_err)?;
            let hashing = check_tar(HashingReader::new(dec), what)?;
            let (diff, _, dec) = hashing.finish().map_err(tar_err)?;
            // Trailing bytes not consumed by the decoder are still part of the blob.
            (Some(diff), dec.finish().into_inner())
        }
    };
    let (digest, size, writer) = tee.finish().map_err(read_err)?;
    let out = writer.into_inner().map_err(|e| read_err(e.into_error()))?;
    let diff_id = diff_id.unwrap_or_else(|| digest.clone());
    Ok((
        Ingested {
            compression,
            digest,
            size,
            diff_id,
        },
        out,
    ))
}

/// A read error of a layer stream: a broken tar (or compressed) stream is `InvalidTar`,
/// anything else a failure to read the input.
pub(crate) fn tar_error(e: io::Error, what: &str) -> ImageError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::InvalidData
        | io::ErrorKind::InvalidInput
        | io::ErrorKind::Other => ImageError::InvalidTar {
            what: what.to_string(),
            reason: e.to_string(),
        },
        _ => ImageError::Read {
            what: what.to_string(),
            source: e,
        },
    }
}

/// Reads a whole tar archive (headers and contents), checking every entry with the
/// layer unpacker's rules ([`EntryValidator`]), and returns the reader positioned after
/// the end-of-archive marker. This is the pass that also hashes the stream: the layer
/// is not read a second time to be checked.
pub(crate) fn check_tar<R: Read>(reader: R, what: &str) -> Result<R, ImageError> {
    let mut counting = CountingReader {
        inner: reader,
        n: 0,
    };
    {
        let mut archive = tar::Archive::new(&mut counting);
        let mut validator = EntryValidator::new();
        let mut sink = io::sink();
        for entry in archive.entries().map_err(|e| tar_error(e, what))? {
            let mut entry = entry.map_err(|e| tar_error(e, what))?;
            validator
                .check_entry(&mut entry)
                .map_err(|error| ImageError::UnsafeLayer {
                    what: what.to_string(),
                    error,
                })?;
            io::copy(&mut entry, &mut sink).map_err(|e| tar_error(e, what))?;
        }
    }
    let invalid = |reason: String| ImageError::InvalidTar {
        what: what.to_string(),
        reason,
    };
    if counting.n == 0 {
        return Err(invalid(format!("{what} is empty, not a tar archive")));
    }
    if counting.n % 512 != 0 {
        return Err(invalid(format!(
            "{what} is not a tar archive (length is not a multiple of 512 bytes)"
        )));
    }
    Ok(counting.inner)
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

type Verified = VerifyingReader<BufReader<File>>;

enum Decoder {
    Plain(Verified),
    Gzip(MultiGzDecoder<Verified>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<Verified>>),
}

/// Decompressed layer stream verifying both the blob digest and the diff_id.
pub(crate) struct LayerReader {
    decoder: Decoder,
    diff: VerifyingReader<NullRead>,
    done: bool,
}

/// Placeholder inner reader: `LayerReader` feeds the diff verifier itself.
pub(crate) struct NullRead;
impl Read for NullRead {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl LayerReader {
    pub(crate) fn new(
        file: File,
        compression: Compression,
        digest: &str,
        size: u64,
        diff_id: &str,
        what: &str,
    ) -> io::Result<LayerReader> {
        let blob = VerifyingReader::new(
            BufReader::with_capacity(1 << 20, file),
            format!("{what} blob"),
            digest.to_string(),
            Some(size),
        );
        let decoder = match compression {
            Compression::None => Decoder::Plain(blob),
            Compression::Gzip => Decoder::Gzip(MultiGzDecoder::new(blob)),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::new(blob)?),
        };
        Ok(LayerReader {
            decoder,
            diff: VerifyingReader::new(
                NullRead,
                format!("{what} diff_id"),
                diff_id.to_string(),
                None,
            ),
            done: false,
        })
    }

    fn blob_mut(&mut self) -> &mut Verified {
        match &mut self.decoder {
            Decoder::Plain(v) => v,
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zstd(d) => d.get_mut().get_mut(),
        }
    }
}

impl Read for LayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let n = match &mut self.decoder {
            Decoder::Plain(v) => v.read(buf)?,
            Decoder::Gzip(d) => d.read(buf)?,
            Decoder::Zstd(d) => d.read(buf)?,
        };
        if n == 0 {
            // End of the decompressed stream: the whole blob must have been
            // consumed and match its digest, and the tar its diff_id.
            io::copy(self.blob_mut(), &mut io::sink())?;
            self.diff.feed_end()?;
            self.done = true;
            return Ok(0);
        }
        self.diff.feed(&buf[..n]);
        Ok(n)
    }
}
