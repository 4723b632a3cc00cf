//! Verified downloads into the data directory.
//!
//! Every file is pinned by a [`Pin`] (size and SHA-256). The [`Downloader`]
//!
//! - hashes while streaming into `.<name>.part` next to the destination, checks the size
//!   as bytes arrive (a body longer than the pin is cut off at once), fsyncs, and renames
//!   the file into place only once size and SHA-256 match — no unverified file is ever
//!   at a final path;
//! - does nothing for files already present and verified (they are re-hashed);
//! - retries 5xx, 408, 429, connection errors and timeouts with exponential backoff, and
//!   resumes a dropped transfer with an HTTP `Range` request (restarting from zero when
//!   the server ignores it), then verifies the whole file;
//! - applies a timeout to connecting, to the response headers and to every read;
//! - holds an exclusive lock on `.<name>.lock` while fetching a file, so two processes
//!   fetching the same file do not interleave (the second finds it verified);
//! - tries a mirror first when one is configured (a folder laid out like the data
//!   directory, `<mirror>/<dataset dir>/<path>`, or a base URL with the same layout),
//!   then the canonical URL;
//! - extracts members of an unpinned archive (the UCI collection) safely and verifies
//!   each against its own pin.
//!
//! A `.part` file left by a transfer that ran out of attempts is resumed by the next
//! run; a `.part` that fails verification is deleted. Errors name the URL or path and
//! the expected and actual size or SHA-256.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::DataError;
use crate::manifest::{Archive, FileEntry, Manifest, Pin};

/// Where to look for files before the canonical URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mirror {
    /// A folder laid out like the data directory: `<dir>/<dataset dir>/<path>`
    /// (e.g. `../shared/datasets`: `uci/<name>/…`, `mnist/…`, `fashion-mnist/…`).
    Dir(PathBuf),
    /// A base URL with the same layout: `<base>/<dataset dir>/<path>`.
    Url(String),
}

impl Mirror {
    /// `http://…` or `https://…` is a URL mirror, anything else a folder.
    pub fn parse(spec: &str) -> Mirror {
        if spec.starts_with("http://") || spec.starts_with("https://") {
            Mirror::Url(spec.trim_end_matches('/').to_string())
        } else {
            Mirror::Dir(PathBuf::from(spec))
        }
    }

    /// The mirror named by `PATHREG_MIRROR`, if set and non-empty.
    pub fn from_env() -> Option<Mirror> {
        std::env::var("PATHREG_MIRROR")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| Mirror::parse(s.trim()))
    }
}

impl std::fmt::Display for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mirror::Dir(p) => write!(f, "{}", p.display()),
            Mirror::Url(u) => write!(f, "{u}"),
        }
    }
}

/// Downloader settings.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// The data directory (files go to `<data_dir>/<dataset dir>/<path>`).
    pub data_dir: PathBuf,
    /// Tried before the canonical URL.
    pub mirror: Option<Mirror>,
    /// Whether the canonical URLs may be used (false: mirror and data directory only).
    pub canonical: bool,
    /// Timeout for connecting, for the response headers, and for each read of the body.
    pub timeout: Duration,
    /// Requests per source before giving up (at least 1).
    pub attempts: u32,
    /// First backoff delay; doubled after each failed attempt, capped at 30 s.
    pub backoff: Duration,
}

impl FetchOptions {
    /// Defaults: no mirror, canonical URLs allowed, 30 s timeout, 5 attempts, 1 s backoff.
    pub fn new(data_dir: impl Into<PathBuf>) -> FetchOptions {
        FetchOptions {
            data_dir: data_dir.into(),
            mirror: None,
            canonical: true,
            timeout: Duration::from_secs(30),
            attempts: 5,
            backoff: Duration::from_secs(1),
        }
    }
}

/// A progress report, for drawing one bar per file.
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// A transfer of `file` from `from` begins; `total` bytes (0 when unknown).
    Started {
        /// `dataset dir/path`.
        file: &'a str,
        /// Expected bytes (0: unknown).
        total: u64,
        /// URL or path read from.
        from: &'a str,
    },
    /// `done` of `total` bytes are written (counting resumed bytes).
    Bytes {
        /// `dataset dir/path`.
        file: &'a str,
        /// Bytes so far.
        done: u64,
        /// Expected bytes (0: unknown).
        total: u64,
    },
    /// The transfer ended (successfully or not).
    Finished {
        /// `dataset dir/path`.
        file: &'a str,
        /// Whether the file is now in place and verified.
        ok: bool,
    },
}

/// A progress callback.
pub type ProgressFn<'a> = &'a dyn Fn(Progress<'_>);

/// A progress callback that ignores everything.
pub fn no_progress(_: Progress<'_>) {}

/// How a file came to be in the data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Obtained {
    /// It was already there and verified.
    AlreadyPresent,
    /// Downloaded from this URL.
    Downloaded(String),
    /// Copied from this mirror file.
    Copied(PathBuf),
    /// Extracted from the archive at this URL.
    Extracted(String),
    /// Adopted from this file by an import.
    Imported(PathBuf),
}

impl std::fmt::Display for Obtained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Obtained::AlreadyPresent => write!(f, "already present"),
            Obtained::Downloaded(u) => write!(f, "downloaded from {u}"),
            Obtained::Copied(p) => write!(f, "copied from {}", p.display()),
            Obtained::Extracted(u) => write!(f, "extracted from {u}"),
            Obtained::Imported(p) => write!(f, "imported from {}", p.display()),
        }
    }
}

/// A file in place and verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// `dataset dir/path`.
    pub file: String,
    /// Its path in the data directory.
    pub path: PathBuf,
    /// Its (verified) size and SHA-256.
    pub pin: Pin,
    /// Where it came from.
    pub obtained: Obtained,
}

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
fn check_file_size(path: &Path, pin: &Pin) -> Result<(String, u64), DataError> {
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

fn check_bytes_hash(origin: &str, pin: &Pin, size: u64, sha: &str) -> Result<(), DataError> {
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

/// An exclusive advisory lock on a file, released on drop.
struct FileLock {
    _file: File,
}

fn lock(path: &Path) -> Result<FileLock, DataError> {
    let io = |source| DataError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)?;
    file.lock().map_err(io)?;
    Ok(FileLock { _file: file })
}

fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{suffix}"))
}

/// Fsyncs `part`, renames it to `dest`, and fsyncs the folder.
fn place(part: &Path, dest: &Path) -> Result<(), DataError> {
    let io = |p: &Path, source| DataError::Io {
        path: p.display().to_string(),
        source,
    };
    File::open(part)
        .and_then(|f| f.sync_all())
        .map_err(|e| io(part, e))?;
    std::fs::rename(part, dest).map_err(|e| io(dest, e))?;
    if let Some(dir) = dest.parent() {
        // Best effort: not every platform can open a folder for syncing.
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

fn create_parent(dest: &Path) -> Result<(), DataError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Fetches pinned files into the data directory. See the module docs.
pub struct Downloader {
    options: FetchOptions,
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
}

enum Source {
    Dir(PathBuf),
    Url(String),
}

impl Downloader {
    /// A downloader with these options (the HTTP client is built on first use).
    pub fn new(options: FetchOptions) -> Downloader {
        Downloader {
            options,
            client: OnceLock::new(),
        }
    }

    /// The options.
    pub fn options(&self) -> &FetchOptions {
        &self.options
    }

    /// Where `entry` lives in the data directory.
    pub fn destination(&self, entry: &FileEntry) -> PathBuf {
        self.options.data_dir.join(entry.relative_path())
    }

    fn client(&self, url: &str) -> Result<&reqwest::blocking::Client, DataError> {
        let timeout = self.options.timeout;
        self.client
            .get_or_init(|| {
                reqwest::blocking::Client::builder()
                    .timeout(timeout)
                    .connect_timeout(timeout)
                    .user_agent(concat!("pathreg-data/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))
            })
            .as_ref()
            .map_err(|reason| DataError::Fetch {
                url: url.to_string(),
                reason: reason.clone(),
            })
    }

    fn sources(&self, entry: &FileEntry) -> Vec<Source> {
        let mut out = Vec::new();
        match &self.options.mirror {
            Some(Mirror::Dir(dir)) => out.push(Source::Dir(dir.join(entry.relative_path()))),
            Some(Mirror::Url(base)) => out.push(Source::Url(format!(
                "{}/{}",
                base.trim_end_matches('/'),
                entry.label()
            ))),
            None => {}
        }
        if self.options.canonical
            && let Some(url) = &entry.url
        {
            out.push(Source::Url(url.clone()));
        }
        out
    }

    /// Places one file, verified: already present, else from the mirror, else from its
    /// canonical URL. A member of an archive (no URL) can only come from a mirror here;
    /// use [`Downloader::fetch_all`] to fall back to the archive.
    pub fn fetch(&self, entry: &FileEntry, progress: ProgressFn<'_>) -> Result<Fetched, DataError> {
        let dest = self.destination(entry);
        create_parent(&dest)?;
        let _lock = lock(&sibling(&dest, "lock"))?;
        if let Some(done) = self.present(entry, &dest)? {
            return Ok(done);
        }
        let mut errors: Vec<DataError> = Vec::new();
        let label = entry.label();
        for source in self.sources(entry) {
            let result = match &source {
                Source::Dir(path) => {
                    if !path.is_file() {
                        errors.push(DataError::Fetch {
                            url: path.display().to_string(),
                            reason: "not in the mirror".into(),
                        });
                        continue;
                    }
                    copy_verified(path, &dest, &entry.pin, &label, progress)
                        .map(|()| Obtained::Copied(path.clone()))
                }
                Source::Url(url) => self
                    .download_verified(url, &dest, Some(&entry.pin), &label, progress)
                    .map(|_| Obtained::Downloaded(url.clone())),
            };
            match result {
                Ok(obtained) => {
                    return Ok(Fetched {
                        file: label,
                        path: dest,
                        pin: entry.pin.clone(),
                        obtained,
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        Err(match errors.len() {
            0 => DataError::Fetch {
                url: label,
                reason: if entry.url.is_none() {
                    "a member of the dataset's archive; no mirror has it".into()
                } else {
                    "no source: canonical URLs are disabled and no mirror is configured".into()
                },
            },
            1 => errors.remove(0),
            _ => DataError::AllSourcesFailed {
                file: label,
                errors: errors.iter().map(ToString::to_string).collect(),
            },
        })
    }

    /// Some(Fetched) when `dest` exists and verifies; a corrupt file is removed.
    fn present(&self, entry: &FileEntry, dest: &Path) -> Result<Option<Fetched>, DataError> {
        if !dest.exists() {
            return Ok(None);
        }
        match verify_file(dest, &entry.pin) {
            Ok(()) => Ok(Some(Fetched {
                file: entry.label(),
                path: dest.to_path_buf(),
                pin: entry.pin.clone(),
                obtained: Obtained::AlreadyPresent,
            })),
            Err(DataError::SizeMismatch { .. } | DataError::HashMismatch { .. }) => {
                std::fs::remove_file(dest).map_err(|source| DataError::Io {
                    path: dest.display().to_string(),
                    source,
                })?;
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Fetches `entries` of `manifest` (each as [`Downloader::fetch`]); members of the
    /// manifest's archive that no mirror had are then extracted from the downloaded
    /// archive (when canonical URLs are allowed). One result per entry, in order.
    pub fn fetch_all(
        &self,
        manifest: &Manifest,
        entries: &[&FileEntry],
        progress: ProgressFn<'_>,
    ) -> Vec<Result<Fetched, DataError>> {
        let mut results: Vec<Result<Fetched, DataError>> =
            entries.iter().map(|e| self.fetch(e, progress)).collect();
        let (Some(archive), true) = (&manifest.archive, self.options.canonical) else {
            return results;
        };
        let missing: Vec<usize> = (0..entries.len())
            .filter(|&i| results[i].is_err() && entries[i].url.is_none())
            .collect();
        if missing.is_empty() {
            return results;
        }
        let wanted: Vec<&FileEntry> = missing.iter().map(|&i| entries[i]).collect();
        let extracted = self.extract_from_archive(manifest, archive, &wanted, progress);
        for (i, result) in missing.into_iter().zip(extracted) {
            results[i] = match (
                result,
                std::mem::replace(&mut results[i], Ok(placeholder())),
            ) {
                (Ok(f), _) => Ok(f),
                (Err(e), Err(mirror_error)) if self.options.mirror.is_some() => {
                    Err(DataError::AllSourcesFailed {
                        file: entries[i].label(),
                        errors: vec![mirror_error.to_string(), e.to_string()],
                    })
                }
                (Err(e), _) => Err(e),
            };
        }
        results
    }

    /// Downloads the archive (resumable, verified if pinned) and extracts `wanted`,
    /// verifying each member against its pin. The archive is deleted afterwards unless
    /// a transfer failure left it partial (it is then resumed next time).
    fn extract_from_archive(
        &self,
        manifest: &Manifest,
        archive: &Archive,
        wanted: &[&FileEntry],
        progress: ProgressFn<'_>,
    ) -> Vec<Result<Fetched, DataError>> {
        let dir = self.options.data_dir.join(&manifest.directory);
        let name = archive
            .url
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && crate::manifest::check_relative_path(n).is_ok())
            .unwrap_or("archive.tar.gz");
        let archive_dest = dir.join(name);
        let all_fail = |e: DataError| -> Vec<Result<Fetched, DataError>> {
            let reason = reason_about(&e, &archive.url);
            wanted
                .iter()
                .map(|_| {
                    Err(DataError::Fetch {
                        url: archive.url.clone(),
                        reason: reason.clone(),
                    })
                })
                .collect()
        };
        if let Err(e) = create_parent(&archive_dest) {
            return all_fail(e);
        }
        let _lock = match lock(&sibling(&archive_dest, "lock")) {
            Ok(l) => l,
            Err(e) => return all_fail(e),
        };
        // Another process may have extracted them meanwhile.
        let mut results: Vec<Option<Result<Fetched, DataError>>> = wanted
            .iter()
            .map(|e| match self.present(e, &self.destination(e)) {
                Ok(Some(f)) => Some(Ok(f)),
                _ => None,
            })
            .collect();
        if results.iter().all(Option::is_some) {
            return results.into_iter().flatten().collect();
        }
        let part = sibling(&archive_dest, "part");
        let label = format!("{}/{name}", manifest.directory);
        if let Err(e) = self.transfer(&archive.url, &part, archive.pin.as_ref(), &label, progress) {
            return all_fail(e);
        }
        let file = match File::open(&part) {
            Ok(f) => f,
            Err(source) => {
                return all_fail(DataError::Io {
                    path: part.display().to_string(),
                    source,
                });
            }
        };
        let origin = archive.url.clone();
        let walk = crate::archive::visit_tar_gz(
            std::io::BufReader::new(file),
            &origin,
            |member, reader, _| {
                let parts: Vec<String> = member
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                for (i, entry) in wanted.iter().enumerate() {
                    if results[i].is_some() {
                        continue;
                    }
                    let want: Vec<&str> = entry.path.split('/').collect();
                    if parts.len() >= want.len() && parts[parts.len() - want.len()..] == want[..] {
                        let member_origin = format!("{origin} member {}", member.display());
                        results[i] =
                            Some(self.place_member(entry, reader, &member_origin, progress));
                        break;
                    }
                }
                Ok(())
            },
        );
        let _ = std::fs::remove_file(&part);
        if let Err(e) = walk {
            let reason = reason_about(&e, &origin);
            for r in results.iter_mut().filter(|r| r.is_none()) {
                *r = Some(Err(DataError::Fetch {
                    url: origin.clone(),
                    reason: reason.clone(),
                }));
            }
        }
        results
            .into_iter()
            .zip(wanted)
            .map(|(r, e)| {
                r.unwrap_or_else(|| {
                    Err(DataError::Fetch {
                        url: origin.clone(),
                        reason: format!("the archive has no member ending in {}", e.path),
                    })
                })
            })
            .collect()
    }

    fn place_member(
        &self,
        entry: &FileEntry,
        reader: &mut dyn Read,
        origin: &str,
        progress: ProgressFn<'_>,
    ) -> Result<Fetched, DataError> {
        let dest = self.destination(entry);
        create_parent(&dest)?;
        let _lock = lock(&sibling(&dest, "lock"))?;
        let label = entry.label();
        stream_verified(reader, origin, &dest, &entry.pin, &label, progress)?;
        Ok(Fetched {
            file: label,
            path: dest,
            pin: entry.pin.clone(),
            obtained: Obtained::Extracted(origin.to_string()),
        })
    }

    /// Adopts files a user already has: for each entry, the candidates
    /// `<dir>/<dataset dir>/<path>`, `<dir>/<path>` and `<dir>/<file name>` that exist are
    /// verified in that order, and the first that matches the pin is copied into the data
    /// directory. `Ok(None)`: no candidate exists, or every candidate is another pinned
    /// file (MNIST and Fashion-MNIST share file names); `Err`: a candidate failed
    /// verification (nothing is placed).
    pub fn import(
        &self,
        dir: &Path,
        entry: &FileEntry,
        progress: ProgressFn<'_>,
    ) -> Result<Option<Fetched>, DataError> {
        let mut candidates = vec![
            dir.join(entry.relative_path()),
            dir.join(&entry.path),
            dir.join(entry.file_name()),
        ];
        candidates.dedup();
        let mut first_error = None;
        let mut src = None;
        for c in candidates.into_iter().filter(|p| p.is_file()) {
            match verify_file(&c, &entry.pin) {
                Ok(()) => {
                    src = Some(c);
                    break;
                }
                Err(e @ (DataError::SizeMismatch { .. } | DataError::HashMismatch { .. })) => {
                    if !is_other_pinned_file(&c)? {
                        first_error.get_or_insert(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let Some(src) = src else {
            return first_error.map_or(Ok(None), Err);
        };
        let dest = self.destination(entry);
        create_parent(&dest)?;
        let _lock = lock(&sibling(&dest, "lock"))?;
        if let Some(done) = self.present(entry, &dest)? {
            return Ok(Some(done));
        }
        let label = entry.label();
        copy_verified(&src, &dest, &entry.pin, &label, progress)?;
        Ok(Some(Fetched {
            file: label,
            path: dest,
            pin: entry.pin.clone(),
            obtained: Obtained::Imported(src),
        }))
    }

    /// Downloads `url` to `dest` through `.<name>.part`, verifying against `pin` when
    /// given; returns the SHA-256. The caller holds the lock for `dest`.
    fn download_verified(
        &self,
        url: &str,
        dest: &Path,
        pin: Option<&Pin>,
        label: &str,
        progress: ProgressFn<'_>,
    ) -> Result<String, DataError> {
        let part = sibling(dest, "part");
        let sha = self.transfer(url, &part, pin, label, progress)?;
        place(&part, dest)?;
        progress(Progress::Finished {
            file: label,
            ok: true,
        });
        Ok(sha)
    }

    /// Streams `url` into `part` (resuming a partial file), with retries, backoff and
    /// Range resumption; verifies against `pin`. On a verification failure `part` is
    /// deleted; when attempts run out it is kept for a later resume.
    fn transfer(
        &self,
        url: &str,
        part: &Path,
        pin: Option<&Pin>,
        label: &str,
        progress: ProgressFn<'_>,
    ) -> Result<String, DataError> {
        let resumed_old = std::fs::metadata(part)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        let result = self.transfer_once(url, part, pin, label, progress);
        let result = match result {
            // A stale partial from an earlier run: start again from zero once.
            Err(DataError::HashMismatch { .. }) if resumed_old => {
                self.transfer_once(url, part, pin, label, progress)
            }
            other => other,
        };
        if result.is_err() {
            progress(Progress::Finished {
                file: label,
                ok: false,
            });
        }
        result
    }

    fn transfer_once(
        &self,
        url: &str,
        part: &Path,
        pin: Option<&Pin>,
        label: &str,
        progress: ProgressFn<'_>,
    ) -> Result<String, DataError> {
        let client = self.client(url)?;
        let io = |source| DataError::Io {
            path: part.display().to_string(),
            source,
        };
        let fail = |e: DataError| {
            let _ = std::fs::remove_file(part);
            Err(e)
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(part)
            .map_err(io)?;
        let mut hasher = Sha256::new();
        let mut done = file.metadata().map_err(io)?.len();
        if pin.is_some_and(|p| done > p.size) {
            file.set_len(0).map_err(io)?;
            done = 0;
        }
        if done > 0 {
            // Re-hash the bytes of the interrupted run that we resume.
            let mut buf = vec![0u8; 1 << 16];
            let mut left = done;
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            while left > 0 {
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                file.read_exact(&mut buf[..want]).map_err(io)?;
                hasher.update(&buf[..want]);
                left -= want as u64;
            }
        }
        file.seek(SeekFrom::Start(done)).map_err(io)?;
        let mut total = pin.map_or(0, |p| p.size);
        progress(Progress::Started {
            file: label,
            total,
            from: url,
        });
        let attempts = self.options.attempts.max(1);
        let mut last_error = String::from("no attempt made");
        let mut complete = false;
        let mut buf = vec![0u8; 1 << 16];
        for attempt in 0..attempts {
            if attempt > 0 {
                let factor = 1u32 << (attempt - 1).min(16);
                std::thread::sleep(
                    self.options
                        .backoff
                        .saturating_mul(factor)
                        .min(Duration::from_secs(30)),
                );
            }
            if pin.is_some_and(|p| done == p.size) {
                complete = true;
                break;
            }
            let mut request = client.get(url);
            if done > 0 {
                request = request.header(reqwest::header::RANGE, format!("bytes={done}-"));
            }
            let mut response = match request.send() {
                Ok(r) => r,
                Err(e) => {
                    last_error = describe(&e);
                    continue;
                }
            };
            let status = response.status().as_u16();
            let restart =
                |file: &mut File, hasher: &mut Sha256, done: &mut u64| -> Result<(), DataError> {
                    file.set_len(0).map_err(io)?;
                    file.seek(SeekFrom::Start(0)).map_err(io)?;
                    *hasher = Sha256::new();
                    *done = 0;
                    Ok(())
                };
            match status {
                200 => {
                    if done > 0 {
                        // The server ignored the Range request: start again.
                        restart(&mut file, &mut hasher, &mut done)?;
                    }
                    if let Some(len) = response.content_length() {
                        if let Some(p) = pin.filter(|p| p.size != len) {
                            return fail(DataError::SizeMismatch {
                                origin: url.to_string(),
                                expected: p.size,
                                actual: len,
                            });
                        }
                        total = len;
                    }
                }
                206 if done > 0 => {
                    let range = response
                        .headers()
                        .get(reqwest::header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_content_range);
                    match range {
                        Some((start, whole)) if start == done => {
                            if let (Some(p), Some(whole)) = (pin, whole)
                                && whole != p.size
                            {
                                return fail(DataError::SizeMismatch {
                                    origin: url.to_string(),
                                    expected: p.size,
                                    actual: whole,
                                });
                            }
                            if let Some(whole) = whole {
                                total = whole;
                            }
                        }
                        _ => {
                            last_error = format!(
                                "206 response with an unusable Content-Range (asked from byte {done})"
                            );
                            restart(&mut file, &mut hasher, &mut done)?;
                            continue;
                        }
                    }
                }
                416 => {
                    last_error = format!("HTTP status 416 for a Range request from byte {done}");
                    restart(&mut file, &mut hasher, &mut done)?;
                    continue;
                }
                408 | 429 | 500..=599 => {
                    last_error = format!("HTTP status {status}");
                    continue;
                }
                _ => {
                    return fail(DataError::HttpStatus {
                        url: url.to_string(),
                        status,
                    });
                }
            }
            let mut dropped = false;
            loop {
                let n = match response.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        last_error =
                            format!("connection lost after {done} bytes: {}", io_chain(&e));
                        dropped = true;
                        break;
                    }
                };
                if let Some(p) = pin
                    && done + n as u64 > p.size
                {
                    return fail(DataError::SizeMismatch {
                        origin: url.to_string(),
                        expected: p.size,
                        actual: done + n as u64,
                    });
                }
                file.write_all(&buf[..n]).map_err(io)?;
                hasher.update(&buf[..n]);
                done += n as u64;
                progress(Progress::Bytes {
                    file: label,
                    done,
                    total,
                });
            }
            if dropped {
                continue;
            }
            match pin {
                Some(p) if done < p.size => {
                    last_error = format!("the body ended after {done} of {} bytes", p.size);
                }
                _ => {
                    complete = true;
                    break;
                }
            }
        }
        file.flush().map_err(io)?;
        if !complete {
            if done == 0 {
                drop(file);
                let _ = std::fs::remove_file(part);
            }
            let expected = pin.map_or_else(|| "?".to_string(), |p| p.size.to_string());
            let kept = if done > 0 {
                format!(" (kept in {} to resume)", part.display())
            } else {
                String::new()
            };
            return Err(DataError::Fetch {
                url: url.to_string(),
                reason: format!(
                    "gave up after {attempts} attempts with {done} of {expected} bytes{kept}: {last_error}"
                ),
            });
        }
        file.sync_all().map_err(io)?;
        drop(file);
        let actual = hex::encode(hasher.finalize());
        if let Some(p) = pin {
            if done != p.size {
                return fail(DataError::SizeMismatch {
                    origin: url.to_string(),
                    expected: p.size,
                    actual: done,
                });
            }
            if actual != p.sha256 {
                return fail(DataError::HashMismatch {
                    origin: url.to_string(),
                    expected: p.sha256.clone(),
                    actual,
                });
            }
        }
        Ok(actual)
    }
}

/// Whether `path` has the size and SHA-256 of some file of the built-in manifests.
fn is_other_pinned_file(path: &Path) -> Result<bool, DataError> {
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

fn placeholder() -> Fetched {
    Fetched {
        file: String::new(),
        path: PathBuf::new(),
        pin: Pin {
            size: 0,
            sha256: String::new(),
        },
        obtained: Obtained::AlreadyPresent,
    }
}

/// `bytes a-b/t` → (a, Some(t)); `bytes a-b/*` → (a, None).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (range, whole) = rest.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    let start = start.trim().parse().ok()?;
    let whole = match whole.trim() {
        "*" => None,
        w => Some(w.parse().ok()?),
    };
    Some((start, whole))
}

fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut text = format!("{what}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn io_chain(e: &std::io::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Copies `src` to `dest` through `.<name>.part`, verifying against `pin`.
fn copy_verified(
    src: &Path,
    dest: &Path,
    pin: &Pin,
    label: &str,
    progress: ProgressFn<'_>,
) -> Result<(), DataError> {
    let (origin, _) = check_file_size(src, pin)?;
    let mut file = File::open(src).map_err(|source| DataError::Io {
        path: origin.clone(),
        source,
    })?;
    progress(Progress::Started {
        file: label,
        total: pin.size,
        from: &origin,
    });
    let result = stream_verified(&mut file, &origin, dest, pin, label, progress);
    progress(Progress::Finished {
        file: label,
        ok: result.is_ok(),
    });
    result
}

/// Streams `reader` into `.<name>.part`, hashing; verifies size (cut off as soon as it
/// exceeds the pin) and SHA-256; places it at `dest` only when both match.
fn stream_verified(
    reader: &mut dyn Read,
    origin: &str,
    dest: &Path,
    pin: &Pin,
    label: &str,
    progress: ProgressFn<'_>,
) -> Result<(), DataError> {
    let part = sibling(dest, "part");
    let result = (|| {
        let io = |source| DataError::Io {
            path: part.display().to_string(),
            source,
        };
        let mut file = File::create(&part).map_err(io)?;
        let mut hasher = Sha256::new();
        let mut done = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(DataError::Fetch {
                        url: origin.to_string(),
                        reason: format!("read failed after {done} bytes: {e}"),
                    });
                }
            };
            if done + n as u64 > pin.size {
                return Err(DataError::SizeMismatch {
                    origin: origin.to_string(),
                    expected: pin.size,
                    actual: done + n as u64,
                });
            }
            file.write_all(&buf[..n]).map_err(io)?;
            hasher.update(&buf[..n]);
            done += n as u64;
            progress(Progress::Bytes {
                file: label,
                done,
                total: pin.size,
            });
        }
        file.sync_all().map_err(io)?;
        check_bytes_hash(origin, pin, done, &hex::encode(hasher.finalize()))
    })();
    match result {
        Ok(()) => place(&part, dest),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

/// `error`'s message without its leading `origin: `, for an error that is
/// restated as being about `origin` (so the origin is not named twice).
fn reason_about(error: &DataError, origin: &str) -> String {
    let text = error.to_string();
    text.strip_prefix(&format!("{origin}: "))
        .unwrap_or(&text)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn mirror_spec() {
        assert_eq!(
            Mirror::parse("http://h/x/"),
            Mirror::Url("http://h/x".into())
        );
        assert_eq!(Mirror::parse("../shared"), Mirror::Dir("../shared".into()));
    }
}
