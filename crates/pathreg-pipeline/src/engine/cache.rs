//! A content-addressed cache of stage outputs.
//!
//! `key = SHA-256(stage name, stage schema version, canonical parameters, input keys)`,
//! where the parameters are serialized as JSON with sorted keys (typed, so `1`
//! and `1.0` differ) and the inputs are the keys or content hashes of what the
//! stage reads (the dataset's hash included). Bump a stage's schema version
//! whenever its code changes what it computes.
//!
//! Entries live at `<root>/<stage>/<key[..2]>/<key>` and are framed as
//! `magic ‖ payload length ‖ SHA-256(payload) ‖ payload`. They are written to a
//! temporary file in the same folder, fsynced and renamed, so a reader sees a
//! whole entry or none; every load re-checks the frame, and a corrupt or
//! truncated entry is reported and recomputed, never used.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::PipelineError;

const MAGIC: &[u8; 8] = b"PRCACHE1";
const HEADER: usize = 8 + 8 + 32;

/// A content key for one stage output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    /// The stage, e.g. "arrangements".
    pub stage: &'static str,
    /// Hex SHA-256.
    pub hash: String,
}

impl CacheKey {
    /// Computes the key of `stage` (schema `version`) with `params` and `inputs`.
    pub fn new<P: Serialize>(
        stage: &'static str,
        version: u32,
        params: &P,
        inputs: &[&str],
    ) -> Self {
        // serde_json::Value keeps object keys sorted (no preserve_order feature),
        // which makes the encoding canonical.
        let canonical = serde_json::to_value(params)
            .and_then(|v| serde_json::to_string(&v))
            .unwrap_or_default();
        let mut hasher = Sha256::new();
        for part in [
            stage.as_bytes(),
            &version.to_le_bytes(),
            canonical.as_bytes(),
        ] {
            hasher.update((part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        for input in inputs {
            hasher.update((input.len() as u64).to_le_bytes());
            hasher.update(input.as_bytes());
        }
        Self {
            stage,
            hash: hex::encode(hasher.finalize()),
        }
    }
}

/// Counters of one run's cache use.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Entries loaded.
    pub hits: AtomicUsize,
    /// Entries computed.
    pub misses: AtomicUsize,
    /// Entries found corrupt and recomputed.
    pub corrupt: AtomicUsize,
}

/// The cache: a folder, or disabled (`--no-cache`: compute and write nothing).
#[derive(Debug)]
pub struct Cache {
    root: Option<PathBuf>,
    /// Use counters.
    pub stats: CacheStats,
}

impl Cache {
    /// A cache rooted at `root`, or a disabled one for `None`.
    pub fn new(root: Option<PathBuf>) -> Self {
        Self {
            root,
            stats: CacheStats::default(),
        }
    }

    /// Whether entries are read and written at all.
    pub fn is_enabled(&self) -> bool {
        self.root.is_some()
    }

    /// Where the entry for `key` lives.
    pub fn entry_path(&self, key: &CacheKey) -> Option<PathBuf> {
        self.root
            .as_ref()
            .map(|root| root.join(key.stage).join(&key.hash[..2]).join(&key.hash))
    }

    /// Whether a valid entry exists for `key`.
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.entry_path(key)
            .and_then(|p| std::fs::read(p).ok())
            .is_some_and(|bytes| unframe(&bytes).is_some())
    }

    /// Loads `key`'s payload, or computes it with `compute` and stores it.
    /// `decode` failures on a well-framed entry also count as corruption.
    pub fn get_or_compute<T>(
        &self,
        key: &CacheKey,
        encode: impl Fn(&T) -> Vec<u8>,
        decode: impl Fn(&[u8]) -> Option<T>,
        compute: impl FnOnce() -> Result<T, PipelineError>,
    ) -> Result<(T, bool), PipelineError> {
        if let Some(path) = self.entry_path(key)
            && let Ok(bytes) = std::fs::read(&path)
        {
            match unframe(&bytes).and_then(&decode) {
                Some(value) => {
                    self.stats.hits.fetch_add(1, Ordering::Relaxed);
                    return Ok((value, true));
                }
                None => {
                    self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                    eprintln!(
                        "warning: cache entry {} is corrupt or truncated; recomputing it",
                        path.display()
                    );
                }
            }
        }
        let value = compute()?;
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        if let Some(path) = self.entry_path(key) {
            store(&path, &encode(&value))?;
        }
        Ok((value, false))
    }

    /// Removes the whole cache, or one stage's entries.
    pub fn clean(&self, stage: Option<&str>) -> Result<(), PipelineError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let target = match stage {
            Some(s)
                if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                root.join(s)
            }
            Some(s) => {
                return Err(PipelineError::CacheStage(s.to_string()));
            }
            None => root.clone(),
        };
        if target.exists() {
            std::fs::remove_dir_all(&target).map_err(|source| PipelineError::Io {
                path: target.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::digest(payload));
    out.extend_from_slice(payload);
    out
}

fn unframe(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return None;
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let payload = &bytes[HEADER..];
    if u64::try_from(payload.len()).ok()? != u64::from_le_bytes(len) {
        return None;
    }
    (Sha256::digest(payload).as_slice() == &bytes[16..48]).then_some(payload)
}

fn store(path: &Path, payload: &[u8]) -> Result<(), PipelineError> {
    let io = |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    tmp.write_all(&frame(payload)).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_depend_on_every_part() {
        let a = CacheKey::new("s", 1, &serde_json::json!({"b": 1, "a": 2.0}), &["x"]);
        let same = CacheKey::new("s", 1, &serde_json::json!({"a": 2.0, "b": 1}), &["x"]);
        assert_eq!(a, same, "key order must not matter");
        for other in [
            CacheKey::new("t", 1, &serde_json::json!({"b": 1, "a": 2.0}), &["x"]),
            CacheKey::new("s", 2, &serde_json::json!({"b": 1, "a": 2.0}), &["x"]),
            CacheKey::new("s", 1, &serde_json::json!({"b": 1, "a": 2}), &["x"]),
            CacheKey::new("s", 1, &serde_json::json!({"b": 1, "a": 2.0}), &["y"]),
        ] {
            assert_ne!(a, other);
        }
    }

    #[test]
    fn corrupt_and_truncated_entries_are_recomputed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let key = CacheKey::new("stage", 1, &1u8, &[]);
        let enc = |v: &Vec<u8>| v.clone();
        let dec = |b: &[u8]| Some(b.to_vec());
        let (v, hit) = cache
            .get_or_compute(&key, enc, dec, || Ok(vec![1, 2, 3]))
            .unwrap();
        assert!(!hit && v == [1, 2, 3]);
        let (_, hit) = cache
            .get_or_compute(&key, enc, dec, || Ok(vec![9]))
            .unwrap();
        assert!(hit);
        let path = cache.entry_path(&key).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (v, hit) = cache
            .get_or_compute(&key, enc, dec, || Ok(vec![1, 2, 3]))
            .unwrap();
        assert!(!hit && v == [1, 2, 3]);
        std::fs::write(&path, &bytes[..10]).unwrap();
        assert!(!cache.contains(&key));
        let (_, hit) = cache
            .get_or_compute(&key, enc, dec, || Ok(vec![1, 2, 3]))
            .unwrap();
        assert!(!hit);
        assert!(cache.contains(&key));
        assert_eq!(cache.stats.corrupt.load(Ordering::Relaxed), 2);
        // No temporary files are left beside the entry.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );
    }

    #[test]
    fn a_disabled_cache_always_computes() {
        let cache = Cache::new(None);
        let key = CacheKey::new("stage", 1, &1u8, &[]);
        let (_, hit) = cache
            .get_or_compute(&key, |v: &u8| vec![*v], |b| b.first().copied(), || Ok(3))
            .unwrap();
        assert!(!hit);
        assert!(!cache.contains(&key));
    }
}
