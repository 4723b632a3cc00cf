//! Verification against a [`Pin`]: SHA-256 of bytes and files, the size and hash
//! checks whose errors name the origin and the expected and actual value, and the one
//! copy loop that hashes and counts bytes as they stream and stops at a size cap.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::DataError;
use crate::manifest::Pin;

/// SHA-256 of bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// SHA-256 (hex) and size of a file.
pub fn hash_file(path: &Path) -> Result<(u64, String), DataError> {
    let io = |source| DataError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut file = File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(hasher.finalize())))
}

/// The file's display name and size, or a size mismatch against `pin`.
pub(super) fn check_file_size(path: &Path, pin: &Pin) -> Result<(String, u64), DataError> {
    let origin = path.display().to_string();
    let len = std::fs::metadata(path)
        .map_err(|source| DataError::Io {
            path: origin.clone(),
            source,
        })?
        .len();
    if len != pin.size {
        return Err(DataError::SizeMismatch {
            origin,
            expected: pin.size,
            actual: len,
        });
    }
    Ok((origin, len))
}

/// Checks a file against its pin (size first, then SHA-256).
pub fn verify_file(path: &Path, pin: &Pin) -> Result<(), DataError> {
    let (origin, len) = check_file_size(path, pin)?;
    let (_, sha) = hash_file(path)?;
    check_bytes_hash(&origin, pin, len, &sha)
}

/// Checks bytes already in memory against a pin.
pub fn verify_bytes(origin: &str, bytes: &[u8], pin: &Pin) -> Result<(), DataError> {
    let sha = hex::encode(Sha256::digest(bytes));
    check_bytes_hash(origin, pin, bytes.len() as u64, &sha)
}

/// Checks a `size` and SHA-256 (hex) already computed for `origin` against a pin
/// (size first).
pub(super) fn check_bytes_hash(
    origin: &str,
    pin: &Pin,
    size: u64,
    sha: &str,
) -> Result<(), DataError> {
    if size != pin.size {
        return Err(DataError::SizeMismatch {
            origin: origin.to_string(),
            expected: pin.size,
            actual: size,
        });
    }
    if sha != pin.sha256 {
        return Err(DataError::HashMismatch {
            origin: origin.to_string(),
            expected: pin.sha256.clone(),
            actual: sha.to_string(),
        });
    }
    Ok(())
}

/// The number and SHA-256 of the bytes copied so far.
pub(super) struct Hashed {
    /// Bytes so far.
    pub(super) size: u64,
    hasher: Sha256,
}

impl Hashed {
    /// No bytes yet.
    pub(super) fn new() -> Hashed {
        Hashed {
            size: 0,
            hasher: Sha256::new(),
        }
    }

    /// Counts and hashes `bytes`.
    pub(super) fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.size += bytes.len() as u64;
    }

    /// The SHA-256 of all bytes, lowercase hex.
    pub(super) fn hex(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

/// Why [`copy_hashed`] stopped before the end of its input.
pub(super) enum CopyError {
    /// Reading the input failed.
    Read(std::io::Error),
    /// Writing the output failed.
    Write(std::io::Error),
    /// The input is longer than `cap` bytes: its next chunk would have made `size`.
    TooLong {
        /// The most bytes allowed.
        cap: u64,
        /// The bytes so far plus those of the chunk that crossed the cap.
        size: u64,
    },
}

/// Copies `reader` to its end into `writer`, counting and hashing every byte in
/// `hashed` and reporting the new count to `on_bytes` after each chunk. `hashed` may
/// already hold earlier bytes of the same file (a resumed transfer): the cap and the
/// counts are for the whole file. A chunk that would take the count past `cap` is
/// neither written nor hashed: the copy stops there, so an overlong input is cut off as
/// soon as it shows. Interrupted reads are retried; any other read or write error stops
/// the copy, with everything before it written and counted.
pub(super) fn copy_hashed(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    hashed: &mut Hashed,
    cap: Option<u64>,
    on_bytes: &dyn Fn(u64),
) -> Result<(), CopyError> {
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        let size = hashed.size + n as u64;
        if let Some(cap) = cap
            && size > cap
        {
            return Err(CopyError::TooLong { cap, size });
        }
        writer.write_all(&buf[..n]).map_err(CopyError::Write)?;
        hashed.update(&buf[..n]);
        on_bytes(hashed.size);
    }
}

/// Whether `path` has the size and SHA-256 of some file of the built-in manifests.
pub(super) fn is_other_pinned_file(path: &Path) -> Result<bool, DataError> {
    let size = std::fs::metadata(path)
        .map_err(|source| DataError::Io {
            path: path.display().to_string(),
            source,
        })?
        .len();
    let manifests = crate::manifest::builtin()?;
    let mut pins = manifests.iter().flat_map(|m| &m.files).map(|f| &f.pin);
    if !pins.any(|p| p.size == size) {
        return Ok(false);
    }
    let (_, sha) = hash_file(path)?;
    Ok(manifests
        .iter()
        .flat_map(|m| &m.files)
        .any(|f| f.pin.size == size && f.pin.sha256 == sha))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_hashed_counts_hashes_and_resumes() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut hashed = Hashed::new();
        hashed.update(&body[..1000]);
        let mut out = Vec::new();
        let seen = std::cell::Cell::new(0);
        let result = copy_hashed(
            &mut &body[1000..],
            &mut out,
            &mut hashed,
            Some(body.len() as u64),
            &|done| seen.set(done),
        );
        assert!(matches!(result, Ok(())));
        assert_eq!(out, body[1000..]);
        assert_eq!(hashed.size, body.len() as u64);
        assert_eq!(seen.get(), body.len() as u64);
        assert_eq!(hashed.hex(), sha256_hex(&body));
    }

    #[test]
    fn copy_hashed_stops_before_the_chunk_past_the_cap() {
        let mut hashed = Hashed::new();
        let mut out = Vec::new();
        let result = copy_hashed(&mut &[7u8; 10][..], &mut out, &mut hashed, Some(4), &|_| {});
        assert!(matches!(
            result,
            Err(CopyError::TooLong { cap: 4, size: 10 })
        ));
        assert!(out.is_empty());
        assert_eq!(hashed.size, 0);
    }
}
