//! The run lock: an exclusive lock on `outputs/.<name>.lock` held for the whole
//! run, so two runs of one experiment never interleave their output swaps.

use std::fs::File;
use std::path::Path;

use crate::PipelineError;

/// Blocks until this process holds the lock of experiment `name`; the lock is
/// released when the returned file is dropped.
pub fn lock_experiment(outputs_root: &Path, name: &str) -> Result<File, PipelineError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PipelineError::Io { path, source }
    };
    std::fs::create_dir_all(outputs_root).map_err(io(outputs_root))?;
    let path = outputs_root.join(format!(".{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    file.lock().map_err(io(&path))?;
    Ok(file)
}
