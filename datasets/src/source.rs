//! Byte sources shared by the binary formats: a file or an in-memory buffer, raw or gzip
//! (detected by its magic bytes), with progress reporting and reads that never trust a header.

use crate::error::{DataError, Result};
use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// A progress callback: `(done, total)` in units the caller documents (bytes of the file read,
/// or files decoded). Called from the loading thread, a few times per second of work at most.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

/// Deflate cannot expand data by more than about 1032:1, so a gzip stream of `n` bytes cannot
/// hold more than this many times `n` bytes. Used to bound an allocation before the true size
/// is known.
const MAX_DEFLATE_RATIO: u64 = 1032;

/// Counts bytes read from the stored (possibly compressed) stream and reports them.
struct Counting<'p, R> {
    inner: R,
    done: u64,
    total: u64,
    last_report: u64,
    progress: Option<Progress<'p>>,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if let Some(p) = self.progress.as_mut()
            && (self.done - self.last_report >= 1 << 20 || n == 0 || self.done == self.total)
        {
            self.last_report = self.done;
            p(self.done, self.total);
        }
        Ok(n)
    }
}

/// An open byte stream, already unwrapped from gzip if it was compressed.
pub(crate) struct Source<'a> {
    reader: Box<dyn Read + 'a>,
    path: PathBuf,
    /// Whether the stored bytes were gzip.
    pub gz: bool,
    /// Length of the stored (possibly compressed) bytes.
    pub stored_len: u64,
    /// Bytes of the decoded stream consumed so far.
    pub consumed: u64,
}

impl<'a> Source<'a> {
    /// Opens `path`, detecting gzip by its first two bytes.
    pub fn open(path: &Path, progress: Option<Progress<'a>>) -> Result<Source<'a>> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let stored_len = file.metadata().map_err(|e| DataError::io(path, e))?.len();
        let counting = Counting {
            inner: file,
            done: 0,
            total: stored_len,
            last_report: 0,
            progress,
        };
        Self::wrap(
            BufReader::with_capacity(1 << 16, counting),
            path,
            stored_len,
        )
    }

    /// A source over bytes already in memory; `path` names them in errors.
    pub fn from_bytes(bytes: &'a [u8], path: &Path) -> Result<Source<'a>> {
        Self::wrap(BufReader::new(bytes), path, bytes.len() as u64)
    }

    fn wrap<R: BufRead + 'a>(mut reader: R, path: &Path, stored_len: u64) -> Result<Source<'a>> {
        let head = reader.fill_buf().map_err(|e| DataError::io(path, e))?;
        let gz = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
        let reader: Box<dyn Read + 'a> = if gz {
            Box::new(MultiGzDecoder::new(reader))
        } else {
            Box::new(reader)
        };
        Ok(Source {
            reader,
            path: path.to_path_buf(),
            gz,
            stored_len,
            consumed: 0,
        })
    }

    /// The path used in errors.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_error(&self, e: std::io::Error) -> DataError {
        if self.gz {
            DataError::Gzip {
                path: self.path.clone(),
                source: e,
            }
        } else {
            DataError::io(&self.path, e)
        }
    }

    /// Reads as many bytes as fit in `buf` or until the stream ends; returns the count.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(e)),
            }
        }
        self.consumed += got as u64;
        Ok(got)
    }

    /// Reads exactly `buf.len()` bytes; a short stream is [`DataError::Truncated`].
    pub fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let start = self.consumed;
        let got = self.fill(buf)?;
        if got < buf.len() {
            return Err(DataError::truncated(
                &self.path,
                what,
                start + buf.len() as u64,
                start + got as u64,
            ));
        }
        Ok(())
    }

    /// Reads a body of exactly `declared` bytes, then checks the stream ends there.
    ///
    /// For a raw stream the caller must already have checked `declared` against the file's
    /// length (see [`Source::check_raw_len`]). For gzip the true size is unknown until read, so
    /// the buffer starts no larger than the compressed size allows and grows only as real data
    /// arrives: a lying header cannot make this allocate more than the stream holds.
    pub fn read_body(&mut self, declared: u64, what: &str) -> Result<Vec<u8>> {
        let bound = if self.gz {
            self.stored_len.saturating_mul(MAX_DEFLATE_RATIO)
        } else {
            self.stored_len
        };
        let cap = declared.min(bound).min(usize::MAX as u64) as usize;
        let mut body = Vec::with_capacity(cap);
        let start = self.consumed;
        let mut limited = (&mut self.reader).take(declared);
        let read = limited.read_to_end(&mut body);
        self.consumed += body.len() as u64;
        if let Err(e) = read {
            return Err(self.read_error(e));
        }
        if (body.len() as u64) < declared {
            return Err(DataError::truncated(
                &self.path,
                what,
                start + declared,
                start + body.len() as u64,
            ));
        }
        self.expect_end(declared)?;
        Ok(body)
    }

    /// Reads whatever remains of the stream (its size is bounded by the stored bytes, not by
    /// anything the data claims).
    pub fn read_rest(&mut self) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        let read = self.reader.read_to_end(&mut body);
        self.consumed += body.len() as u64;
        read.map_err(|e| self.read_error(e))?;
        Ok(body)
    }

    /// Fails unless the stream is at its end (for gzip this also verifies the CRC trailer).
    fn expect_end(&mut self, declared: u64) -> Result<()> {
        let mut one = [0u8; 1];
        if self.fill(&mut one)? != 0 {
            return Err(DataError::TrailingData {
                path: self.path.clone(),
                declared,
            });
        }
        Ok(())
    }

    /// For an uncompressed stream, checks before any allocation that the bytes left after a
    /// header of `header_len` bytes are exactly the `declared` body length.
    pub fn check_raw_len(&self, header_len: u64, declared: u64, what: &str) -> Result<()> {
        if self.gz {
            return Ok(());
        }
        let have = self.stored_len.saturating_sub(header_len);
        if have < declared {
            return Err(DataError::truncated(
                &self.path,
                what,
                header_len + declared,
                self.stored_len,
            ));
        }
        if have > declared {
            return Err(DataError::TrailingData {
                path: self.path.clone(),
                declared,
            });
        }
        Ok(())
    }
}
