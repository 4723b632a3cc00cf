//! A content-addressed cache of stage outputs.
//!
//! `key = SHA-256(stage name, stage schema version, canonical parameters, input keys)`,
//! where the parameters are serialized as JSON with sorted keys (typed, so `1`
//! and `1.0` differ) and the inputs are the keys or content hashes of what the
//! stage reads (the dataset's hash included). Bump a stage's schema version
//! whenever its code changes what it computes.
//!
//! Entries live at `<root>/<stage>/<key[..2]>/<key>` and are framed as
//! `magic ‖ header length ‖ header ‖ payload length ‖ SHA-256(header ‖ payload) ‖ payload`,
//! where the header names the entry's stage, schema version and key: an entry
//! proves which key it belongs to, so a file copied or renamed to another
//! key's path is recomputed, never used. Entries are written to a temporary
//! file in the same folder, fsynced and renamed, so a reader sees a whole
//! entry or none; every load re-checks the frame, and a corrupt, truncated or
//! misplaced entry is reported and recomputed.
//!
//! # Many hosts, one cache
//!
//! Shards of one run on a cluster ([`crate::engine::Shard`]) share one cache
//! on a network file system, with no lock across hosts: nothing here rests
//! on advisory locks, which NFS does not promise to honour between clients.
//! What the code assumes is what NFSv3/v4 give: a rename within one
//! directory is atomic on the server (a reader opens the old entry, the new
//! one, or none), and close-to-open consistency (a client that opens a file
//! after its writer closed it sees the whole of it; we also fsync before the
//! rename). Attribute caching may hide a fresh entry from another client for
//! a few seconds: it is then recomputed, bit for bit the same, and one of the
//! two renames wins. A torn or stale read fails the frame's checksum and is
//! recomputed, never used. Temporary files carry their host as well as their
//! pid (`.tmp-<pid>.<host>-…`), and a writer removes only the stale
//! temporaries of its own host: another host's pid means nothing here.
//!
//! The root holds a `CACHEDIR.TAG` marker (the cache-directory standard's
//! signature, then the format version), written with the first entry;
//! [`Cache::clean`] deletes only inside a marked root, and only files it
//! recognises as its own.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::PipelineError;

const MAGIC: &[u8; 8] = b"PRCACHE2";
/// The first format's magic: such entries cannot prove their key and are recomputed.
const OLD_MAGIC: &[u8; 8] = b"PRCACHE1";
/// The marker file of a cache root.
const MARKER: &str = "CACHEDIR.TAG";
/// The marker's content: the cache-directory standard's signature (backup
/// tools skip such folders) and this format's version.
const MARKER_TEXT: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This folder is a pathreg result cache (format 2); `cargo xtask clean` removes it.\n";

/// A content key for one stage output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey {
    /// The stage, e.g. "arrangements".
    pub stage: &'static str,
    /// The stage's schema version.
    pub version: u32,
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
            version,
            hash: hex::encode(hasher.finalize()),
        }
    }

    /// The header an entry of this key carries.
    fn header(&self) -> String {
        format!("{}\n{}\n{}\n", self.stage, self.version, self.hash)
    }
}

/// Counters of one run's cache use.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Entries loaded.
    pub hits: AtomicUsize,
    /// Entries computed.
    pub misses: AtomicUsize,
    /// Entries found corrupt or truncated, and recomputed.
    pub corrupt: AtomicUsize,
    /// Entries that belong to another key (copied or renamed), and recomputed.
    pub misplaced: AtomicUsize,
}

/// What [`Cache::clean`] removed and left.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanReport {
    /// Entry (and stale temporary) files removed.
    pub files: usize,
    /// Their total size.
    pub bytes: u64,
    /// Files inside the stage folders it did not recognise, left in place.
    pub left: usize,
}

/// The cache: a folder, or disabled (`--no-cache`: compute and write nothing).
#[derive(Debug)]
pub struct Cache {
    root: Option<PathBuf>,
    /// Use counters.
    pub stats: CacheStats,
}

/// Why a stored entry is not used.
enum Rejected {
    /// Not a whole, well-framed entry.
    Corrupt,
    /// A valid entry of another key.
    Misplaced(String),
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

    /// Whether a valid entry of `key` exists.
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.entry_path(key)
            .and_then(|p| read_entry(&p))
            .is_some_and(|bytes| unframe(&bytes, key).is_ok())
    }

    /// Loads `key`'s payload when a whole, valid entry is there (a corrupt
    /// or misplaced one is reported and counts as absent).
    pub fn get<T>(&self, key: &CacheKey, decode: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
        if let Some(dir) = self.entry_path(key).as_deref().and_then(Path::parent) {
            remove_stale_temporaries(dir);
        }
        let path = self.entry_path(key)?;
        let bytes = read_entry(&path)?;
        match unframe(&bytes, key).and_then(|p| decode(p).ok_or(Rejected::Corrupt)) {
            Ok(value) => {
                self.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(value)
            }
            Err(Rejected::Corrupt) => {
                self.stats.corrupt.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "warning: cache entry {} is corrupt or truncated; recomputing it",
                    path.display()
                );
                None
            }
            Err(Rejected::Misplaced(owner)) => {
                self.stats.misplaced.fetch_add(1, Ordering::Relaxed);
                eprintln!(
                    "warning: cache entry {} belongs to {owner}, not to this key; recomputing it",
                    path.display()
                );
                None
            }
        }
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
        if let Some(value) = self.get(key, decode) {
            return Ok((value, true));
        }
        let value = compute()?;
        self.stats.misses.fetch_add(1, Ordering::Relaxed);
        if let (Some(root), Some(path)) = (&self.root, self.entry_path(key)) {
            mark(root)?;
            store(&path, &frame(key, &encode(&value)))?;
        }
        Ok((value, false))
    }

    /// Removes the entries of `stage` (every one of `stages` when `None`)
    /// from a marked cache root: only files named and framed like entries
    /// (and stale temporary files beside them), then the folders they leave
    /// empty, and the marker when nothing else is left. A folder without the
    /// marker is refused, whatever it holds.
    pub fn clean(
        &self,
        stage: Option<&str>,
        stages: &[&str],
    ) -> Result<CleanReport, PipelineError> {
        let mut report = CleanReport::default();
        let Some(root) = &self.root else {
            return Ok(report);
        };
        if !root.exists() {
            return Ok(report);
        }
        let marker = root.join(MARKER);
        let marked = std::fs::symlink_metadata(&marker).is_ok_and(|m| m.is_file())
            && std::fs::read_to_string(&marker).is_ok_and(|t| t == MARKER_TEXT);
        if !marked {
            return Err(PipelineError::NotACache { path: root.clone() });
        }
        let targets: Vec<&str> = match stage {
            Some(s) if stages.contains(&s) => vec![s],
            Some(s) => return Err(PipelineError::CacheStage(s.to_string())),
            None => stages.to_vec(),
        };
        for stage in targets {
            clean_stage(&root.join(stage), &mut report)?;
        }
        if stage.is_none() {
            let others = std::fs::read_dir(root)
                .map_err(io_error(root))?
                .filter_map(Result::ok)
                .any(|e| e.file_name() != MARKER);
            if !others {
                std::fs::remove_file(&marker).map_err(io_error(&marker))?;
                let _ = std::fs::remove_dir(root);
            }
        }
        Ok(report)
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Removes one stage folder's entries (see [`Cache::clean`]).
fn clean_stage(dir: &Path, report: &mut CleanReport) -> Result<(), PipelineError> {
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    for shard in std::fs::read_dir(dir).map_err(io_error(dir))? {
        let shard = shard.map_err(io_error(dir))?;
        let shard_name = shard.file_name().to_string_lossy().into_owned();
        let shard_path = shard.path();
        let is_shard = shard_name.len() == 2
            && shard_name.chars().all(|c| c.is_ascii_hexdigit())
            && std::fs::symlink_metadata(&shard_path).is_ok_and(|m| m.is_dir());
        if !is_shard {
            report.left += 1;
            continue;
        }
        for file in std::fs::read_dir(&shard_path).map_err(io_error(&shard_path))? {
            let file = file.map_err(io_error(&shard_path))?;
            let path = file.path();
            let name = file.file_name().to_string_lossy().into_owned();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            if meta.is_file() && (is_entry(&path, &name, &shard_name) || is_temporary(&name)) {
                std::fs::remove_file(&path).map_err(io_error(&path))?;
                report.files += 1;
                report.bytes += meta.len();
            } else {
                report.left += 1;
            }
        }
        let _ = std::fs::remove_dir(&shard_path);
    }
    let _ = std::fs::remove_dir(dir);
    Ok(())
}

/// An entry file: named by a 64-digit hex key in its shard and starting
/// with an entry magic (this format's or the first one's).
fn is_entry(path: &Path, name: &str, shard: &str) -> bool {
    let named =
        name.len() == 64 && name.starts_with(shard) && name.chars().all(|c| c.is_ascii_hexdigit());
    let mut magic = [0u8; 8];
    named
        && std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
            .is_ok()
        && (&magic == MAGIC || &magic == OLD_MAGIC)
}

/// A temporary file `store` left behind when its process was killed (or of
/// the first format, `.tmpXXXXXX`).
fn is_temporary(name: &str) -> bool {
    temporary_writer(name).is_some() || (name.len() == 10 && name.starts_with(".tmp"))
}

/// Writes the root's marker unless it is there.
fn mark(root: &Path) -> Result<(), PipelineError> {
    let marker = root.join(MARKER);
    if marker.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(root).map_err(io_error(root))?;
    pathreg_report::write_atomic(&marker, MARKER_TEXT.as_bytes())?;
    Ok(())
}

fn frame(key: &CacheKey, payload: &[u8]) -> Vec<u8> {
    let header = key.header();
    let mut digest = Sha256::new();
    digest.update(header.as_bytes());
    digest.update(payload);
    let mut out = Vec::with_capacity(8 + 4 + header.len() + 8 + 32 + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&digest.finalize());
    out.extend_from_slice(payload);
    out
}

/// The payload of a whole, well-framed entry of `key`.
fn unframe<'b>(bytes: &'b [u8], key: &CacheKey) -> Result<&'b [u8], Rejected> {
    let take = |from: usize, len: usize| bytes.get(from..from.checked_add(len)?);
    if take(0, 8) != Some(MAGIC.as_slice()) {
        return Err(Rejected::Corrupt);
    }
    let mut word = [0u8; 4];
    word.copy_from_slice(take(8, 4).ok_or(Rejected::Corrupt)?);
    let header_len = u32::from_le_bytes(word) as usize;
    let header = take(12, header_len).ok_or(Rejected::Corrupt)?;
    let at = 12 + header_len;
    let mut long = [0u8; 8];
    long.copy_from_slice(take(at, 8).ok_or(Rejected::Corrupt)?);
    let checksum = take(at + 8, 32).ok_or(Rejected::Corrupt)?;
    let payload = &bytes[(at + 40).min(bytes.len())..];
    if u64::try_from(payload.len()).ok() != Some(u64::from_le_bytes(long)) {
        return Err(Rejected::Corrupt);
    }
    let mut digest = Sha256::new();
    digest.update(header);
    digest.update(payload);
    if digest.finalize().as_slice() != checksum {
        return Err(Rejected::Corrupt);
    }
    if header != key.header().as_bytes() {
        let owner = String::from_utf8_lossy(header)
            .trim_end()
            .replace('\n', " ");
        return Err(Rejected::Misplaced(owner));
    }
    Ok(payload)
}

/// The bytes of the entry file at `path`: only a regular file (not a link, a
/// device or a FIFO), read up to its size; anything else is no entry (and is
/// recomputed and replaced).
fn read_entry(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    if !meta.is_file() {
        if meta.file_type().is_symlink() || !meta.is_dir() {
            eprintln!(
                "warning: cache entry {} is not a regular file; recomputing it",
                path.display()
            );
        }
        return None;
    }
    let mut bytes = Vec::new();
    let file = std::fs::File::open(path).ok()?;
    std::io::Read::read_to_end(&mut std::io::Read::take(file, meta.len()), &mut bytes).ok()?;
    Some(bytes)
}

/// A short tag of this host's name: the first 8 hex digits of its SHA-256
/// (host names may hold `-` and `.`, the tag holds neither).
fn host_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .unwrap_or_default();
        let digest = Sha256::digest(name.trim().as_bytes());
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    })
}

/// The prefix of this process's temporary files: `.tmp-<pid>.<host tag>-`.
fn temporary_prefix() -> String {
    format!(".tmp-{}.{}-", std::process::id(), host_tag())
}

/// Removes temporary files in `dir` left by writers of this host that were
/// killed (their pid is gone, checked under `/proc`; where there is no
/// `/proc`, nothing). Files of other hosts are left alone; `clean` removes
/// them when the whole cluster is idle.
fn remove_stale_temporaries(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let dead = temporary_writer(&name).is_some_and(|(pid, host)| {
            host.is_none_or(|h| h == host_tag())
                && !Path::new("/proc").join(pid.to_string()).exists()
        });
        if dead && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The writer of a temporary file `.tmp-<pid>.<host tag>-<random>`: its pid
/// and host tag (none in the older `.tmp-<pid>-<random>`).
fn temporary_writer(name: &str) -> Option<(u32, Option<&str>)> {
    let writer = name.strip_prefix(".tmp-")?.split('-').next()?;
    match writer.split_once('.') {
        Some((pid, host)) => Some((pid.parse().ok()?, Some(host))),
        None => Some((writer.parse().ok()?, None)),
    }
}

fn store(path: &Path, framed: &[u8]) -> Result<(), PipelineError> {
    let io = |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    remove_stale_temporaries(dir);
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        eprintln!(
            "warning: {} is a folder, not a cache entry; the result is not cached",
            path.display()
        );
        return Ok(());
    }
    let mut tmp = tempfile::Builder::new()
        .prefix(&temporary_prefix())
        .tempfile_in(dir)
        .map_err(io)?;
    tmp.write_all(framed).map_err(io)?;
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

    #[test]
    fn an_entry_at_another_keys_path_is_recomputed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let enc = |v: &Vec<u8>| v.clone();
        let dec = |b: &[u8]| Some(b.to_vec());
        let convex = CacheKey::new("convex", 1, &"a", &[]);
        let nonconvex = CacheKey::new("nonconvex", 1, &"b", &[]);
        cache
            .get_or_compute(&nonconvex, enc, dec, || Ok(vec![7]))
            .unwrap();
        let target = cache.entry_path(&convex).unwrap();
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(cache.entry_path(&nonconvex).unwrap(), &target).unwrap();
        assert!(!cache.contains(&convex));
        let (v, hit) = cache
            .get_or_compute(&convex, enc, dec, || Ok(vec![1]))
            .unwrap();
        assert!(!hit && v == [1], "a misplaced entry must not be used");
        assert_eq!(cache.stats.misplaced.load(Ordering::Relaxed), 1);
        let (v, hit) = cache
            .get_or_compute(&convex, enc, dec, || Ok(vec![9]))
            .unwrap();
        assert!(hit && v == [1]);
    }

    #[test]
    fn entries_of_the_first_format_are_recomputed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let key = CacheKey::new("stage", 1, &1u8, &[]);
        let path = cache.entry_path(&key).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let payload = [5u8];
        let mut old = OLD_MAGIC.to_vec();
        old.extend_from_slice(&1u64.to_le_bytes());
        old.extend_from_slice(&Sha256::digest(payload));
        old.extend_from_slice(&payload);
        std::fs::write(&path, old).unwrap();
        let (v, hit) = cache
            .get_or_compute(
                &key,
                |v: &Vec<u8>| v.clone(),
                |b| Some(b.to_vec()),
                || Ok(vec![6]),
            )
            .unwrap();
        assert!(!hit && v == [6]);
    }

    #[test]
    fn clean_deletes_only_its_own_files_in_a_marked_folder() {
        let dir = tempfile::tempdir().unwrap();
        let stages = ["convex", "nonconvex"];
        // A folder that is not a cache is refused, and nothing in it is touched.
        let mine = dir.path().join("documents");
        std::fs::create_dir_all(mine.join("convex")).unwrap();
        std::fs::write(mine.join("convex/notes.txt"), "keep").unwrap();
        let err = Cache::new(Some(mine.clone()))
            .clean(None, &stages)
            .unwrap_err();
        assert!(err.to_string().contains("not a pathreg cache"), "{err}");
        assert!(mine.join("convex/notes.txt").is_file());
        // In a real cache, only entries (and stale temporary files) go.
        let root = dir.path().join("cache");
        let cache = Cache::new(Some(root.clone()));
        let enc = |v: &Vec<u8>| v.clone();
        let dec = |b: &[u8]| Some(b.to_vec());
        for (stage, value) in [("convex", 1u8), ("convex", 2), ("nonconvex", 3)] {
            let key = CacheKey::new(stage, 1, &value, &[]);
            cache
                .get_or_compute(&key, enc, dec, || Ok(vec![value]))
                .unwrap();
        }
        let stray = root.join("convex/user-file.txt");
        std::fs::write(&stray, "keep").unwrap();
        let key = CacheKey::new("convex", 1, &1u8, &[]);
        let shard = cache
            .entry_path(&key)
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        std::fs::write(shard.join(".tmpAbC123"), "partial").unwrap();
        std::fs::write(shard.join("not-an-entry"), "keep").unwrap();
        let report = cache.clean(Some("convex"), &stages).unwrap();
        assert_eq!((report.files, report.left), (3, 2), "{report:?}");
        assert!(stray.is_file() && shard.join("not-an-entry").is_file());
        assert!(root.join("nonconvex").is_dir());
        assert!(cache.clean(Some("../x"), &stages).is_err());
        let report = cache.clean(None, &stages).unwrap();
        assert_eq!(report.files, 1);
        assert!(stray.is_file(), "unrecognised files stay");
        std::fs::remove_file(&stray).unwrap();
        std::fs::remove_file(shard.join("not-an-entry")).unwrap();
        cache.clean(None, &stages).unwrap();
        assert!(
            !root.exists(),
            "an emptied cache removes its marker and folder"
        );
    }

    #[test]
    fn links_devices_and_stale_temporaries_are_not_trusted_or_left() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(Some(dir.path().to_path_buf()));
        let key = CacheKey::new("stage", 1, &1u8, &[]);
        let path = cache.entry_path(&key).unwrap();
        let shard = path.parent().unwrap().to_path_buf();
        std::fs::create_dir_all(&shard).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &path).unwrap();
        let stale = shard.join(".tmp-4194999-AbCdEf");
        std::fs::write(&stale, "partial").unwrap();
        let ours = shard.join(format!(".tmp-4194998.{}-AbCdEf", host_tag()));
        std::fs::write(&ours, "partial").unwrap();
        // Another host's writer, whose pid says nothing here: never touched.
        let theirs = shard.join(".tmp-4194997.0badcafe-AbCdEf");
        std::fs::write(&theirs, "being written").unwrap();
        let enc = |v: &Vec<u8>| v.clone();
        let dec = |b: &[u8]| Some(b.to_vec());
        let (v, hit) = cache
            .get_or_compute(&key, enc, dec, || Ok(vec![4]))
            .unwrap();
        assert!(!hit && v == [4]);
        assert!(
            std::fs::symlink_metadata(&path).unwrap().is_file(),
            "the link is replaced"
        );
        assert!(!stale.exists(), "a dead writer's temporary file is removed");
        assert!(!ours.exists(), "so is one of this host's");
        assert!(theirs.is_file(), "another host's temporary file stays");
        assert_eq!(std::fs::read_dir(&shard).unwrap().count(), 2);
    }
}
