//! Safe reading and extraction of `.tar.gz` archives.
//!
//! Every member is checked before anything is done with it: absolute paths, `..`
//! components and Windows prefixes are refused, and so are symbolic or hard links whose
//! target would resolve outside the extraction folder. Only regular files are ever
//! written (links, devices and FIFOs are never created), each through a temporary file
//! renamed into place, so an archive cannot plant a link that a later member writes
//! through.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use crate::DataError;

/// The member path, lexically checked: relative, only normal components (leading `./`
/// is dropped). `Err` gives the reason it is refused.
pub fn safe_member_path(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains a '..' component".into()),
            Component::RootDir => return Err("is an absolute path".into()),
            Component::Prefix(_) => return Err("has a drive or UNC prefix".into()),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("is empty".into());
    }
    Ok(out)
}

/// Checks that a link stored at `member` (already a safe relative path) with target
/// `target` resolves inside the extraction root. Symbolic links resolve against the
/// member's folder; hard links (`hard = true`) against the archive root.
pub fn check_link(member: &Path, target: &Path, hard: bool) -> Result<(), String> {
    if target.is_absolute()
        || target
            .components()
            .any(|c| matches!(c, Component::Prefix(_)))
    {
        return Err(format!("link to absolute path {}", target.display()));
    }
    let mut depth: Vec<&std::ffi::OsStr> = Vec::new();
    if !hard && let Some(parent) = member.parent() {
        for c in parent.components() {
            if let Component::Normal(p) = c {
                depth.push(p);
            }
        }
    }
    for c in target.components() {
        match c {
            Component::Normal(p) => depth.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth.pop().is_none() {
                    return Err(format!(
                        "link to {} escapes the extraction folder",
                        target.display()
                    ));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("link to absolute path {}", target.display()));
            }
        }
    }
    Ok(())
}

/// Visits the regular files of a gzip-compressed tar stream, in archive order.
///
/// `visit(path, reader, size)` is called for every regular file with its checked relative
/// path; it may read the member or ignore it. Every member (files, folders, links) is
/// checked first, and an unsafe one stops the walk with [`DataError::UnsafeArchive`];
/// malformed archives give [`DataError::Malformed`]. `origin` names the archive in errors.
pub fn visit_tar_gz<R: Read>(
    reader: R,
    origin: &str,
    mut visit: impl FnMut(&Path, &mut dyn Read, u64) -> Result<(), DataError>,
) -> Result<(), DataError> {
    let malformed = |reason: String| DataError::Malformed {
        path: origin.to_string(),
        line: 0,
        reason,
    };
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let entries = archive
        .entries()
        .map_err(|e| malformed(format!("not a tar.gz archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| malformed(format!("bad tar entry: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| malformed(format!("bad member name: {e}")))?
            .into_owned();
        let unsafe_member = |reason: String| DataError::UnsafeArchive {
            archive: origin.to_string(),
            member: raw.display().to_string(),
            reason,
        };
        let kind = entry.header().entry_type();
        // Folder entries "./" are harmless; everything else must have a safe path.
        if kind.is_dir() && raw.components().all(|c| matches!(c, Component::CurDir)) {
            continue;
        }
        let path = safe_member_path(&raw).map_err(&unsafe_member)?;
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name()
                .map_err(|e| malformed(format!("bad link target of {}: {e}", raw.display())))?
                .ok_or_else(|| unsafe_member("link without a target".into()))?;
            check_link(&path, &target, kind.is_hard_link()).map_err(&unsafe_member)?;
            continue;
        }
        if kind.is_file() {
            let size = entry.size();
            visit(&path, &mut entry, size)?;
        }
        // Folders, FIFOs, devices, PAX/GNU metadata: never materialised.
    }
    // Read to the end of the gzip stream so that a truncated or corrupt stream (CRC,
    // length trailer) is an error even when the tar entries were all complete.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
        .map_err(|e| malformed(format!("corrupt or truncated gzip stream: {e}")))?;
    Ok(())
}

/// Extracts the regular files of a `.tar.gz` for which `want(path)` is true into `dest`,
/// safely (see the module docs). Returns the extracted paths (relative to `dest`).
/// Existing files are replaced atomically; nothing outside `dest` is ever written.
pub fn extract_tar_gz(
    archive: &Path,
    dest: &Path,
    mut want: impl FnMut(&Path) -> bool,
) -> Result<Vec<PathBuf>, DataError> {
    let origin = archive.display().to_string();
    let file = std::fs::File::open(archive).map_err(|source| DataError::Io {
        path: origin.clone(),
        source,
    })?;
    let mut out = Vec::new();
    visit_tar_gz(
        std::io::BufReader::new(file),
        &origin,
        |path, reader, _size| {
            if !want(path) {
                return Ok(());
            }
            let target = dest.join(path);
            let parent = target.parent().unwrap_or(dest);
            let io = |source: std::io::Error| DataError::Io {
                path: target.display().to_string(),
                source,
            };
            std::fs::create_dir_all(parent).map_err(io)?;
            let mut tmp = tempfile::Builder::new()
                .prefix(".extract-")
                .tempfile_in(parent)
                .map_err(io)?;
            std::io::copy(reader, &mut tmp).map_err(io)?;
            tmp.as_file_mut().flush().map_err(io)?;
            tmp.persist(&target).map_err(|e| io(e.error))?;
            out.push(path.to_path_buf());
            Ok(())
        },
    )?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths() {
        assert_eq!(
            safe_member_path(Path::new("./a/b")).unwrap(),
            Path::new("a/b")
        );
        assert!(safe_member_path(Path::new("/etc/passwd")).is_err());
        assert!(safe_member_path(Path::new("a/../../b")).is_err());
        assert!(safe_member_path(Path::new("a/..")).is_err());
        assert!(safe_member_path(Path::new(".")).is_err());
    }

    #[test]
    fn links() {
        assert!(check_link(Path::new("a/b/l"), Path::new("../c"), false).is_ok());
        assert!(check_link(Path::new("a/l"), Path::new("../../c"), false).is_err());
        assert!(check_link(Path::new("l"), Path::new("/etc/passwd"), false).is_err());
        assert!(check_link(Path::new("a/b/l"), Path::new("../c"), true).is_err());
        assert!(check_link(Path::new("a/b/l"), Path::new("a/c"), true).is_ok());
    }
}
