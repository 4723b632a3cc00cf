//! HTTP: one client with timeouts, retries with exponential backoff, resumption of a
//! dropped transfer with a `Range` request (and `Content-Range` parsing), and the
//! description of reqwest errors. A server that cannot be reached at all (connection
//! refused, unknown host) is retried only when asked to ([`WhenUnreachable`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use super::place::{place, sibling};
use super::verify::{CopyError, Hashed, check_bytes_hash, copy_hashed};
use super::{Downloader, Progress, ProgressFn};
use crate::DataError;
use crate::manifest::Pin;

/// What a transfer does when a request cannot connect for another reason than a
/// timeout (connection refused, host name not resolved, no route to the host): the
/// server is not there, so retrying with backoff only delays the next source. Timeouts,
/// dropped connections and 5xx are retried either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WhenUnreachable {
    /// Retry with backoff like any other failure (the canonical URLs).
    Retry,
    /// Give up on this source at once (a mirror: the next source is tried).
    GiveUp,
}

impl Downloader {
    /// The HTTP client, built on first use (the error, if building failed, is about `url`).
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

    /// Downloads `url` to `dest` through `.<name>.part`, verifying against `pin` when
    /// given; returns the SHA-256. The caller holds the lock for `dest`.
    pub(super) fn download_verified(
        &self,
        url: &str,
        dest: &Path,
        pin: Option<&Pin>,
        label: &str,
        unreachable: WhenUnreachable,
        progress: ProgressFn<'_>,
    ) -> Result<String, DataError> {
        let part = sibling(dest, "part");
        let sha = self.transfer(url, &part, pin, label, unreachable, progress)?;
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
    pub(super) fn transfer(
        &self,
        url: &str,
        part: &Path,
        pin: Option<&Pin>,
        label: &str,
        unreachable: WhenUnreachable,
        progress: ProgressFn<'_>,
    ) -> Result<String, DataError> {
        let resumed_old = std::fs::metadata(part)
            .map(|m| m.len() > 0)
            .unwrap_or(false);
        let result = self.transfer_once(url, part, pin, label, unreachable, progress);
        let result = match result {
            // A stale partial from an earlier run: start again from zero once.
            Err(DataError::HashMismatch { .. }) if resumed_old => {
                self.transfer_once(url, part, pin, label, unreachable, progress)
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

    /// One pass of [`Downloader::transfer`]: resumes from what `part` holds (re-hashing
    /// it), then makes up to `attempts` requests, each asking with `Range` for the bytes
    /// still missing (only one when the server is unreachable and `unreachable` says
    /// to give up).
    fn transfer_once(
        &self,
        url: &str,
        part: &Path,
        pin: Option<&Pin>,
        label: &str,
        unreachable: WhenUnreachable,
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
        let mut hashed = Hashed::new();
        let mut resumed = file.metadata().map_err(io)?.len();
        if pin.is_some_and(|p| resumed > p.size) {
            file.set_len(0).map_err(io)?;
            resumed = 0;
        }
        if resumed > 0 {
            // Re-hash the bytes of the interrupted run that we resume.
            let mut buf = vec![0u8; 1 << 16];
            file.seek(SeekFrom::Start(0)).map_err(io)?;
            while hashed.size < resumed {
                let left = resumed - hashed.size;
                let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                file.read_exact(&mut buf[..want]).map_err(io)?;
                hashed.update(&buf[..want]);
            }
        }
        file.seek(SeekFrom::Start(hashed.size)).map_err(io)?;
        let mut total = pin.map_or(0, |p| p.size);
        progress(Progress::Started {
            file: label,
            total,
            from: url,
        });
        let attempts = self.options.attempts.max(1);
        let mut last_error = String::from("no attempt made");
        let mut complete = false;
        let mut made = 0;
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
            // The byte this request asks from (bytes before it are in `part`).
            let from = hashed.size;
            if pin.is_some_and(|p| from == p.size) {
                complete = true;
                break;
            }
            let mut request = client.get(url);
            if from > 0 {
                request = request.header(reqwest::header::RANGE, format!("bytes={from}-"));
            }
            made += 1;
            let mut response = match request.send() {
                Ok(r) => r,
                Err(e) => {
                    last_error = describe(&e);
                    if unreachable == WhenUnreachable::GiveUp && is_unreachable(&e) {
                        break;
                    }
                    continue;
                }
            };
            let status = response.status().as_u16();
            let restart = |file: &mut File, hashed: &mut Hashed| -> Result<(), DataError> {
                file.set_len(0).map_err(io)?;
                file.seek(SeekFrom::Start(0)).map_err(io)?;
                *hashed = Hashed::new();
                Ok(())
            };
            match status {
                200 => {
                    if from > 0 {
                        // The server ignored the Range request: start again.
                        restart(&mut file, &mut hashed)?;
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
                206 if from > 0 => {
                    let range = response
                        .headers()
                        .get(reqwest::header::CONTENT_RANGE)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_content_range);
                    match range {
                        Some((start, whole)) if start == from => {
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
                                "206 response with an unusable Content-Range (asked from byte {from})"
                            );
                            restart(&mut file, &mut hashed)?;
                            continue;
                        }
                    }
                }
                416 => {
                    last_error = format!("HTTP status 416 for a Range request from byte {from}");
                    restart(&mut file, &mut hashed)?;
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
            let on_bytes = |done| {
                progress(Progress::Bytes {
                    file: label,
                    done,
                    total,
                })
            };
            match copy_hashed(
                &mut response,
                &mut file,
                &mut hashed,
                pin.map(|p| p.size),
                &on_bytes,
            ) {
                Ok(()) => {}
                Err(CopyError::Read(e)) => {
                    last_error = format!(
                        "connection lost after {} bytes: {}",
                        hashed.size,
                        io_chain(&e)
                    );
                    continue;
                }
                Err(CopyError::Write(e)) => return Err(io(e)),
                Err(CopyError::TooLong { cap, size }) => {
                    return fail(DataError::SizeMismatch {
                        origin: url.to_string(),
                        expected: cap,
                        actual: size,
                    });
                }
            }
            let done = hashed.size;
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
        let done = hashed.size;
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
                    "gave up after {made} attempt{} with {done} of {expected} bytes{kept}: \
                     {last_error}",
                    if made == 1 { "" } else { "s" }
                ),
            });
        }
        file.sync_all().map_err(io)?;
        drop(file);
        let actual = hashed.hex();
        if let Some(p) = pin
            && let Err(e) = check_bytes_hash(url, p, done, &actual)
        {
            return fail(e);
        }
        Ok(actual)
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

/// Whether `e` is a failure to connect that is not a timeout: connection refused, host
/// name not resolved, no route to the host.
fn is_unreachable(e: &reqwest::Error) -> bool {
    e.is_connect() && !e.is_timeout()
}

/// A reqwest error with what kind it is (timeout, connection) and its whole cause chain.
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

/// An I/O error with its whole cause chain.
fn io_chain(e: &std::io::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
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
}
