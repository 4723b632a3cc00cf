//! The run lock: an exclusive lock on `outputs/.<name>.lock` held for the whole
//! run, so two runs of one experiment never interleave their output swaps.
//! The holder removes the file when it is done (whether the run succeeded or
//! not), so no empty lock files are left behind; a waiter that finds its file
//! removed or replaced by the time it holds the lock starts over on the new one.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::PipelineError;

/// A held run lock; dropping it removes the lock file and releases the lock.
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Blocks until this process holds the lock of experiment `name`.
    pub fn acquire(outputs_root: &Path, name: &str) -> Result<Self, PipelineError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PipelineError::Io { path, source }
        };
        std::fs::create_dir_all(outputs_root).map_err(io(outputs_root))?;
        let path = outputs_root.join(format!(".{name}.lock"));
        loop {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            file.lock().map_err(io(&path))?;
            let held = file.metadata().map_err(io(&path))?;
            let current = std::fs::metadata(&path).ok();
            if current.is_some_and(|c| c.dev() == held.dev() && c.ino() == held.ino()) {
                return Ok(Self { file, path });
            }
        }
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // Remove the file while still holding the lock, so a waiter sees it gone.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}
