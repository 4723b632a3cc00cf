//! The staged output folder: a kind fills a fresh staging folder beside
//! `outputs/<name>/`, which then replaces the old folder by renames, so
//! readers never see a half-written output folder and a killed run leaves the
//! previous results in place.

use std::path::{Path, PathBuf};

use pathreg_report::write_atomic;

use crate::PipelineError;

/// Writes an output folder: `fill` writes into a fresh staging folder beside
/// `output_dir`, which then replaces `output_dir` by renames.
pub fn write_folder(
    output_dir: &Path,
    fill: impl FnOnce(&Path) -> Result<(), PipelineError>,
) -> Result<(), PipelineError> {
    let parent = output_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    let staging = staging_dir(output_dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
    if let Err(e) = fill(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    let previous = output_dir.with_extension("previous");
    if previous.exists() {
        std::fs::remove_dir_all(&previous).map_err(io_error(&previous))?;
    }
    if output_dir.exists() {
        std::fs::rename(output_dir, &previous).map_err(io_error(output_dir))?;
    }
    std::fs::rename(&staging, output_dir).map_err(io_error(output_dir))?;
    if previous.exists() {
        std::fs::remove_dir_all(&previous).map_err(io_error(&previous))?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON (e.g. `run.json`), atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), PipelineError> {
    let json = serde_json::to_string_pretty(value).map_err(|source| PipelineError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    write_atomic(path, json.as_bytes())?;
    Ok(())
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn staging_dir(output_dir: &Path) -> PathBuf {
    let name = output_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output_dir.with_file_name(format!(".{name}.staging-{}", std::process::id()))
}
