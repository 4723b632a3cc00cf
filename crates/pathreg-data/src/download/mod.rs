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
//!   the server ignores it), then verifies the whole file; a mirror URL that cannot be
//!   reached at all (connection refused, unknown host) is not retried: the next source
//!   is tried at once;
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
//!
//! This module holds the public API and the order in which sources are tried (data
//! directory, mirror, canonical URL, archive, import); `mirror` holds the mirror layouts
//! and copying from a folder, `http` the transfers, `place` the locks and the `.part`
//! files that are renamed into place, and `verify` the size and SHA-256 checks, with the
//! one hashing copy loop that every copy (folder, archive member) and transfer uses.

mod http;
mod mirror;
mod place;
mod verify;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use crate::DataError;
use crate::manifest::{Archive, FileEntry, Manifest, Pin};

pub use mirror::Mirror;
pub use verify::{hash_file, sha256_hex, verify_bytes, verify_file};

use http::WhenUnreachable;
use mirror::copy_verified;
use place::{create_parent, lock, sibling, stream_verified};
use verify::is_other_pinned_file;

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
    /// Requests per source before giving up (at least 1; a mirror URL that cannot be
    /// reached at all gets one).
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

/// Fetches pinned files into the data directory. See the module docs.
pub struct Downloader {
    options: FetchOptions,
    client: OnceLock<Result<reqwest::blocking::Client, String>>,
}

/// Where one attempt at a file reads from.
enum Source {
    /// A file in a mirror folder.
    Dir(PathBuf),
    /// A mirror's URL (which gives up on a mirror that cannot be reached) or the
    /// canonical URL (which retries).
    Url(String, WhenUnreachable),
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

    fn sources(&self, entry: &FileEntry) -> Vec<Source> {
        let mut out: Vec<Source> = self
            .options
            .mirror
            .iter()
            .map(|m| m.source(entry))
            .collect();
        if self.options.canonical
            && let Some(url) = &entry.url
        {
            out.push(Source::Url(url.clone(), WhenUnreachable::Retry));
        }
        out
    }

    /// Places one file, verified: already present, else from the mirror, else from its
    /// canonical URL. A member of an archive (no URL) can only come from a mirror here;
    /// use [`Downloader::fetch_all`] to fall back to the archive.
    pub fn fetch(&self, entry: &FileEntry, progress: ProgressFn<'_>) -> Result<Fetched, DataError> {
        let dest = self.destination(entry);
        let sources = self.sources(entry);
        // With nothing to fetch from, only look: no folders, no lock files.
        if !sources.is_empty() {
            create_parent(&dest)?;
        }
        let _lock = if sources.is_empty() {
            None
        } else {
            Some(lock(&sibling(&dest, "lock"))?)
        };
        if let Some(done) = self.present(entry, &dest)? {
            return Ok(done);
        }
        let mut errors: Vec<DataError> = Vec::new();
        let label = entry.label();
        for source in sources {
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
                Source::Url(url, unreachable) => self
                    .download_verified(url, &dest, Some(&entry.pin), &label, *unreachable, progress)
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
        let pin = archive.pin.as_ref();
        let retry = WhenUnreachable::Retry;
        if let Err(e) = self.transfer(&archive.url, &part, pin, &label, retry, progress) {
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

/// `error`'s message without its leading `origin: `, for an error that is
/// restated as being about `origin` (so the origin is not named twice).
fn reason_about(error: &DataError, origin: &str) -> String {
    let text = error.to_string();
    text.strip_prefix(&format!("{origin}: "))
        .unwrap_or(&text)
        .to_string()
}
