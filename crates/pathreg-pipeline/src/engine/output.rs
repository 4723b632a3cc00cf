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
    check_output_dir(output_dir)?;
    let parent = output_dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    remove_stale_staging(output_dir);
    let staging = staging_dir(output_dir);
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(io_error(&staging))?;
    }
    std::fs::create_dir_all(&staging).map_err(io_error(&staging))?;
    if let Err(e) = fill(&staging) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    std::fs::write(staging.join(MARKER), MARKER_TEXT).map_err(io_error(&staging))?;
    let previous = swap_dir(output_dir);
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

/// The file that marks an output folder as written by pathreg.
const MARKER: &str = ".pathreg-output";
/// Its content.
const MARKER_TEXT: &str =
    "This folder is written by pathreg: `cargo xtask run` replaces it whole.\n";

/// Refuses an output folder path taken by something that is not ours: a file,
/// a link, or a non-empty folder without the marker pathreg writes into every
/// output folder. Results never replace what pathreg did not write.
pub fn check_output_dir(output_dir: &Path) -> Result<(), PipelineError> {
    let Ok(meta) = std::fs::symlink_metadata(output_dir) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Err(PipelineError::OutputNotAFolder(output_dir.to_path_buf()));
    }
    // Folders of earlier versions have no marker, but their run.json.
    let ours = output_dir.join(MARKER).is_file()
        || output_dir.join("run.json").is_file()
        || std::fs::read_dir(output_dir).is_ok_and(|mut entries| entries.next().is_none());
    if !ours {
        return Err(PipelineError::OutputNotOurs(output_dir.to_path_buf()));
    }
    Ok(())
}

/// Removes staging and swap folders of `output_dir` left by runs that were
/// killed: `.<name>.staging-<pid>` and `.<name>.previous-<pid>` whose process is gone (checked under `/proc`;
/// where there is no `/proc`, nothing is removed).
fn remove_stale_staging(output_dir: &Path) {
    let (Some(parent), Some(name)) = (output_dir.parent(), output_dir.file_name()) else {
        return;
    };
    if !Path::new("/proc/self").exists() {
        return;
    }
    let name = name.to_string_lossy();
    let prefixes = [format!(".{name}.staging-"), format!(".{name}.previous-")];
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = prefixes
            .iter()
            .find_map(|p| file_name.strip_prefix(p.as_str()))
        else {
            continue;
        };
        let dead = pid.parse::<u32>().is_ok_and(|pid| {
            pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists()
        });
        if dead && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
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

/// `.<name>.previous-<pid>`: where the old folder waits while the new one
/// moves in (hidden and per process, so it never meets a user's folder).
fn swap_dir(output_dir: &Path) -> PathBuf {
    let name = output_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output_dir.with_file_name(format!(".{name}.previous-{}", std::process::id()))
}

fn staging_dir(output_dir: &Path) -> PathBuf {
    let name = output_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output_dir.with_file_name(format!(".{name}.staging-{}", std::process::id()))
}
