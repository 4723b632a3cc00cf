//! Verification against a [`Pin`]: SHA-256 of bytes and files, and the size and hash
//! checks whose errors name the origin and the expected and actual value.

use std::fs::File;
use std::io::Read;
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
