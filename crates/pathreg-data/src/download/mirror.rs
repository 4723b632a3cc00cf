//! Mirrors: a folder or a base URL laid out like the data directory, and copying a
//! pinned file from a folder (a mirror's, or one a user imports from).

use std::fs::File;
use std::path::{Path, PathBuf};

use super::http::WhenUnreachable;
use super::place::stream_verified;
use super::verify::check_file_size;
use super::{Progress, ProgressFn, Source};
use crate::DataError;
use crate::manifest::{FileEntry, Pin};

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

    /// Where this mirror keeps `entry`: `<dir>/<dataset dir>/<path>` or
    /// `<base>/<dataset dir>/<path>`.
    pub(super) fn source(&self, entry: &FileEntry) -> Source {
        match self {
            Mirror::Dir(dir) => Source::Dir(dir.join(entry.relative_path())),
            Mirror::Url(base) => {
                let url = format!("{}/{}", base.trim_end_matches('/'), entry.label());
                Source::Url(url, WhenUnreachable::GiveUp)
            }
        }
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

/// Copies `src` to `dest` through `.<name>.part`, verifying against `pin`.
pub(super) fn copy_verified(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_spec() {
        assert_eq!(
            Mirror::parse("http://h/x/"),
            Mirror::Url("http://h/x".into())
        );
        assert_eq!(Mirror::parse("../shared"), Mirror::Dir("../shared".into()));
    }
}
