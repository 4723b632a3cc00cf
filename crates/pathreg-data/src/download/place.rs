//! Placement: a file reaches its final path only verified. Per-file locks, the
//! `.<name>.lock` and `.<name>.part` siblings, streaming into the part file, and the
//! fsync-and-rename that puts it in place.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::verify::{CopyError, Hashed, check_bytes_hash, copy_hashed};
use super::{Progress, ProgressFn};
use crate::DataError;
use crate::manifest::Pin;

/// An exclusive advisory lock on a file, released on drop.
pub(super) struct FileLock {
    file: File,
    path: PathBuf,
}

/// Takes the lock on `path` (created if missing), waiting while another
/// process holds it. The holder removes the file when it is done, so no lock
/// files are left behind; a waiter whose file was removed or replaced by the
/// time it holds the lock starts over on the current one.
pub(super) fn lock(path: &Path) -> Result<FileLock, DataError> {
    use std::os::unix::fs::MetadataExt;
    let io = |source| DataError::Io {
        path: path.display().to_string(),
        source,
    };
    loop {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .map_err(io)?;
        file.lock().map_err(io)?;
        let held = file.metadata().map_err(io)?;
        let current = std::fs::metadata(path).ok();
        if current.is_some_and(|c| c.dev() == held.dev() && c.ino() == held.ino()) {
            return Ok(FileLock {
                file,
                path: path.to_path_buf(),
            });
        }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, so a waiter sees it gone.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

/// `<dir>/.<name>.<suffix>` for `dest` = `<dir>/<name>`.
pub(super) fn sibling(dest: &Path, suffix: &str) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.{suffix}"))
}

/// Fsyncs `part`, renames it to `dest`, and fsyncs the folder.
pub(super) fn place(part: &Path, dest: &Path) -> Result<(), DataError> {
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

/// Creates the folder `dest` goes into.
pub(super) fn create_parent(dest: &Path) -> Result<(), DataError> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir).map_err(|source| DataError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// Streams `reader` into `.<name>.part`, hashing; verifies size (cut off as soon as it
/// exceeds the pin) and SHA-256; places it at `dest` only when both match.
pub(super) fn stream_verified(
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
        let mut hashed = Hashed::new();
        let on_bytes = |done| {
            progress(Progress::Bytes {
                file: label,
                done,
                total: pin.size,
            })
        };
        copy_hashed(reader, &mut file, &mut hashed, Some(pin.size), &on_bytes).map_err(
            |e| match e {
                CopyError::Read(e) => DataError::Fetch {
                    url: origin.to_string(),
                    reason: format!("read failed after {} bytes: {e}", hashed.size),
                },
                CopyError::Write(e) => io(e),
                CopyError::TooLong { cap, size } => DataError::SizeMismatch {
                    origin: origin.to_string(),
                    expected: cap,
                    actual: size,
                },
            },
        )?;
        file.sync_all().map_err(io)?;
        let size = hashed.size;
        check_bytes_hash(origin, pin, size, &hashed.hex())
    })();
    match result {
        Ok(()) => place(&part, dest),
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}
