//! SHA-256 digests of payload files and boot trees, in lowercase hex.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

/// The SHA-256 of what is left to read of `f`.
pub fn sha256_reader(f: &mut File) -> io::Result<String> {
    let mut h = Hashing::new(f);
    io::copy(&mut h, &mut io::sink())?;
    Ok(h.finish().0)
}

/// A reader that hashes what passes through it, so that a copy is checked
/// as it is made: the bytes hashed are the bytes written.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R) -> Hashing<R> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The SHA-256 (hex) of what was read, and how many bytes.
    pub fn finish(self) -> (String, u64) {
        (hex(&self.hasher.finalize()), self.count)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// The SHA-256 of a payload file, read through one descriptor opened as
/// untrusted::open_regular opens it (a link, a FIFO or /dev/zero is refused
/// instead of followed, read forever or waited on).
pub fn sha256_file(path: &Path) -> io::Result<String> {
    let (mut f, _) = crate::untrusted::open_regular(path, true).map_err(|e| match e {
        crate::untrusted::UntrustedError::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    })?;
    sha256_reader(&mut f)
}

/// The hex of a finished SHA-256.
pub fn hex_digest(h: Sha256) -> String {
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
