//! Atomic file replacement: temp file in the same directory, fsync, rename.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::ReportError;

/// Atomically writes `bytes` to `path`.
///
/// Creates missing parent directories, writes a temporary file in the target's directory, fsyncs
/// it, renames it over `path` and fsyncs the directory. A reader sees either the old content or
/// the new one, never a half-written file; on error the temporary file is removed and the target
/// is untouched. A new file gets mode `0644` on Unix; an existing file keeps its permissions.
///
/// # Errors
/// [`ReportError::Io`] naming the path that failed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let mut tmp = temp_sibling(path, ".tmp")?;
    tmp.write_all(bytes)
        .map_err(|e| ReportError::io(tmp.path(), e))?;
    commit(tmp, path)
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Creates the parent directory of `path` and an empty temporary file beside `path`, named
/// `.<file name>.<random><suffix>` (the suffix lets encoders that go by extension pick a format).
pub(crate) fn temp_sibling(path: &Path, suffix: &str) -> Result<NamedTempFile, ReportError> {
    let dir = parent_dir(path);
    std::fs::create_dir_all(&dir).map_err(|e| ReportError::io(&dir, e))?;
    let name = path.file_name().ok_or_else(|| {
        ReportError::io(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "path has no file name"),
        )
    })?;
    let prefix = format!(".{}.", name.to_string_lossy());
    tempfile::Builder::new()
        .prefix(&prefix)
        .suffix(suffix)
        .tempfile_in(&dir)
        .map_err(|e| ReportError::io(&dir, e))
}

/// Fsyncs the finished temporary file, gives it sensible permissions, renames it over `path` and
/// fsyncs the directory.
pub(crate) fn commit(tmp: NamedTempFile, path: &Path) -> Result<(), ReportError> {
    tmp.as_file()
        .sync_all()
        .map_err(|e| ReportError::io(tmp.path(), e))?;
    set_permissions(&tmp, path)?;
    tmp.persist(path)
        .map_err(|e| ReportError::io(path, e.error))?;
    // Make the rename itself durable. Opening a directory for fsync is a Unix idiom; elsewhere
    // it may be refused, which only weakens durability, not atomicity.
    if let Ok(dir) = File::open(parent_dir(path)) {
        let _ = dir.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn set_permissions(tmp: &NamedTempFile, target: &Path) -> Result<(), ReportError> {
    use std::os::unix::fs::PermissionsExt;
    let perms = match std::fs::metadata(target) {
        Ok(meta) => meta.permissions(),
        Err(_) => std::fs::Permissions::from_mode(0o644),
    };
    std::fs::set_permissions(tmp.path(), perms).map_err(|e| ReportError::io(tmp.path(), e))
}

#[cfg(not(unix))]
fn set_permissions(_tmp: &NamedTempFile, _target: &Path) -> Result<(), ReportError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("nested/deeper/out.txt");
        write_atomic(&target, b"first version, rather long").unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            b"first version, rather long"
        );
        write_atomic(&target, b"second").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
        assert_eq!(entries(&dir.path().join("nested/deeper")), vec!["out.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_are_world_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        write_atomic(&target, b"x").unwrap();
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn failure_leaves_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        // The target is an existing non-empty directory: the rename must fail.
        let target = dir.path().join("occupied");
        std::fs::create_dir(&target).unwrap();
        std::fs::write(target.join("keep"), b"k").unwrap();
        let err = write_atomic(&target, b"data").unwrap_err();
        assert!(matches!(err, ReportError::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("occupied"), "{err}");
        assert_eq!(entries(dir.path()), vec!["occupied"]);
    }
}
