//! Dataset manifests (`manifests/*.toml` at the workspace root): one entry per file with
//! its canonical URL, size, SHA-256, format and provenance.
//!
//! The four built-in manifests are embedded in the binary with `include_str!` (see
//! [`builtin`]), so a built `xtask` or test does not depend on the working directory;
//! [`Manifest::parse`] and [`Manifest::read`] accept other manifests of the same format.
//!
//! # Format
//!
//! ```toml
//! [dataset]
//! name = "mnist"                 # registry name
//! directory = "mnist"            # folder in the data directory and in a mirror
//! description = "…"              # optional
//! licence = "…"                  # optional
//!
//! [archive]                      # optional: files without `url` are members of this archive
//! url = "http://…/data.tar.gz"
//! format = "tar.gz"
//! pinned = false                 # true requires size and sha256
//! size = 123                     # optional unless pinned
//! sha256 = "…"                   # optional unless pinned
//! note = "why it is (un)pinned"
//!
//! [[file]]
//! path = "train-images-idx3-ubyte.gz"   # relative, '/'-separated, no '..'
//! url = "https://…"              # canonical URL (absent: a member of [archive])
//! size = 9912422                 # bytes
//! sha256 = "440f…"               # 64 lowercase hex digits
//! format = "idx-gz"
//! provenance = "where the pin comes from"
//! ```
//!
//! Unknown keys, missing keys and invalid values are errors naming the manifest file,
//! the key (`file[3].sha256`) and the reason.

use std::path::{Component, Path, PathBuf};

use crate::DataError;

/// The manifests compiled into the crate: `(file name, text)`.
pub const BUILTIN: [(&str, &str); 4] = [
    (
        "manifests/mnist.toml",
        include_str!("../../../manifests/mnist.toml"),
    ),
    (
        "manifests/fashion-mnist.toml",
        include_str!("../../../manifests/fashion-mnist.toml"),
    ),
    (
        "manifests/cifar10.toml",
        include_str!("../../../manifests/cifar10.toml"),
    ),
    (
        "manifests/uci.toml",
        include_str!("../../../manifests/uci.toml"),
    ),
];

/// A size and SHA-256 that a file must have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// One pinned file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// The dataset's folder (the manifest's `dataset.directory`).
    pub directory: String,
    /// Path inside that folder, `/`-separated (`ionosphere/ionosphere_R.dat`).
    pub path: String,
    /// Canonical URL; `None` for a member of the manifest's archive.
    pub url: Option<String>,
    /// The pinned size and SHA-256.
    pub pin: Pin,
    /// Format tag (`idx-gz`, `uci-data`, `uci-info`, `uci-folds`, `cifar10-bin-tar-gz`).
    pub format: String,
    /// Where the file and its pin come from.
    pub provenance: String,
}

impl FileEntry {
    /// `directory/path`: the file's place in a data directory or mirror directory.
    pub fn relative_path(&self) -> PathBuf {
        let mut p = PathBuf::from(&self.directory);
        for part in self.path.split('/') {
            p.push(part);
        }
        p
    }

    /// `directory/path` as a string, for messages.
    pub fn label(&self) -> String {
        format!("{}/{}", self.directory, self.path)
    }

    /// The file name (last path component).
    pub fn file_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// An archive whose members are the manifest's URL-less files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Archive {
    /// Canonical URL.
    pub url: String,
    /// Format (only `tar.gz` is supported).
    pub format: String,
    /// The archive's own pin, when one is known.
    pub pin: Option<Pin>,
    /// Why the archive is (un)pinned.
    pub note: String,
}

/// A parsed, validated dataset manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Where it was read from (for messages).
    pub origin: String,
    /// Registry name (`mnist`, `fashion-mnist`, `cifar10`, `uci`).
    pub name: String,
    /// Folder in the data directory and in mirrors.
    pub directory: String,
    /// One line on the dataset.
    pub description: String,
    /// Licence note.
    pub licence: String,
    /// The archive holding URL-less files.
    pub archive: Option<Archive>,
    /// The pinned files.
    pub files: Vec<FileEntry>,
}

/// Parses the built-in manifests.
pub fn builtin() -> Result<Vec<Manifest>, DataError> {
    BUILTIN
        .iter()
        .map(|(file, text)| Manifest::parse(text, file))
        .collect()
}

/// The built-in manifest named `name` (`mnist`, `fashion-mnist`, `cifar10`, `uci`).
pub fn builtin_named(name: &str) -> Result<Manifest, DataError> {
    let all = builtin()?;
    let known = all
        .iter()
        .map(|m| m.name.clone())
        .collect::<Vec<_>>()
        .join(", ");
    all.into_iter()
        .find(|m| m.name == name)
        .ok_or_else(|| DataError::UnknownDataset {
            name: name.to_string(),
            known,
        })
}

struct Ctx<'a> {
    file: &'a str,
}

impl Ctx<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> DataError {
        DataError::Manifest {
            file: self.file.to_string(),
            key: key.to_string(),
            reason: reason.into(),
        }
    }

    fn table<'t>(&self, value: &'t toml::Value, key: &str) -> Result<&'t toml::Table, DataError> {
        value
            .as_table()
            .ok_or_else(|| self.err(key, format!("expected a table, found {}", value.type_str())))
    }

    fn check_keys(
        &self,
        table: &toml::Table,
        prefix: &str,
        allowed: &[&str],
    ) -> Result<(), DataError> {
        for key in table.keys() {
            if !allowed.contains(&key.as_str()) {
                return Err(self.err(
                    &join(prefix, key),
                    format!("unknown key (allowed: {})", allowed.join(", ")),
                ));
            }
        }
        Ok(())
    }

    fn string(
        &self,
        table: &toml::Table,
        prefix: &str,
        key: &str,
    ) -> Result<Option<String>, DataError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.err(
                &join(prefix, key),
                format!("expected a string, found {}", v.type_str()),
            )),
        }
    }

    fn required_string(
        &self,
        table: &toml::Table,
        prefix: &str,
        key: &str,
    ) -> Result<String, DataError> {
        let s = self
            .string(table, prefix, key)?
            .ok_or_else(|| self.err(&join(prefix, key), "missing"))?;
        if s.trim().is_empty() {
            return Err(self.err(&join(prefix, key), "must not be empty"));
        }
        Ok(s)
    }

    fn size(&self, table: &toml::Table, prefix: &str, key: &str) -> Result<Option<u64>, DataError> {
        match table.get(key) {
            None => Ok(None),
            Some(toml::Value::Integer(i)) => u64::try_from(*i)
                .map(Some)
                .map_err(|_| self.err(&join(prefix, key), format!("must be ≥ 0, found {i}"))),
            Some(v) => Err(self.err(
                &join(prefix, key),
                format!("expected an integer, found {}", v.type_str()),
            )),
        }
    }

    fn sha256(
        &self,
        table: &toml::Table,
        prefix: &str,
        key: &str,
    ) -> Result<Option<String>, DataError> {
        let Some(s) = self.string(table, prefix, key)? else {
            return Ok(None);
        };
        if s.len() != 64
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(self.err(
                &join(prefix, key),
                format!("expected 64 lowercase hex digits, found {s:?}"),
            ));
        }
        Ok(Some(s))
    }

    fn url(
        &self,
        table: &toml::Table,
        prefix: &str,
        key: &str,
    ) -> Result<Option<String>, DataError> {
        let Some(s) = self.string(table, prefix, key)? else {
            return Ok(None);
        };
        if !(s.starts_with("http://") || s.starts_with("https://"))
            || s.contains(char::is_whitespace)
        {
            return Err(self.err(
                &join(prefix, key),
                format!("expected an http:// or https:// URL, found {s:?}"),
            ));
        }
        Ok(Some(s))
    }
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_string()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Checks that `path` is relative, `/`-separated, and has only normal components.
pub fn check_relative_path(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.contains('\\') || path.contains('\0') {
        return Err(format!("{path:?}: backslashes and NUL are not allowed"));
    }
    for part in path.split('/') {
        if part.is_empty() || part == "." || part == ".." {
            return Err(format!(
                "{path:?}: must be relative with no empty, '.' or '..' components"
            ));
        }
    }
    if Path::new(path)
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return Err(format!("{path:?}: must be a relative path"));
    }
    Ok(())
}

impl Manifest {
    /// Reads and parses a manifest file.
    pub fn read(path: &Path) -> Result<Manifest, DataError> {
        let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Manifest::parse(&text, &path.display().to_string())
    }

    /// Parses manifest text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Manifest, DataError> {
        let cx = Ctx { file: origin };
        let root: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let key = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(syntax)".into());
            cx.err(&key, e.message().to_string())
        })?;
        cx.check_keys(&root, "", &["dataset", "archive", "file"])?;

        let dataset = root
            .get("dataset")
            .ok_or_else(|| cx.err("dataset", "missing"))?;
        let dataset = cx.table(dataset, "dataset")?;
        cx.check_keys(
            dataset,
            "dataset",
            &["name", "directory", "description", "licence"],
        )?;
        let name = cx.required_string(dataset, "dataset", "name")?;
        let directory = cx.required_string(dataset, "dataset", "directory")?;
        check_relative_path(&directory).map_err(|r| cx.err("dataset.directory", r))?;
        let description = cx
            .string(dataset, "dataset", "description")?
            .unwrap_or_default();
        let licence = cx
            .string(dataset, "dataset", "licence")?
            .unwrap_or_default();

        let archive = match root.get("archive") {
            None => None,
            Some(value) => {
                let t = cx.table(value, "archive")?;
                cx.check_keys(
                    t,
                    "archive",
                    &["url", "format", "pinned", "size", "sha256", "note"],
                )?;
                let url = cx
                    .url(t, "archive", "url")?
                    .ok_or_else(|| cx.err("archive.url", "missing"))?;
                let format = cx.required_string(t, "archive", "format")?;
                if format != "tar.gz" {
                    return Err(cx.err(
                        "archive.format",
                        format!("only \"tar.gz\" is supported, found {format:?}"),
                    ));
                }
                let pinned = match t.get("pinned") {
                    None => false,
                    Some(toml::Value::Boolean(b)) => *b,
                    Some(v) => {
                        return Err(cx.err(
                            "archive.pinned",
                            format!("expected a boolean, found {}", v.type_str()),
                        ));
                    }
                };
                let size = cx.size(t, "archive", "size")?;
                let sha256 = cx.sha256(t, "archive", "sha256")?;
                let pin = match (pinned, size, sha256) {
                    (true, Some(size), Some(sha256)) => Some(Pin { size, sha256 }),
                    (true, _, _) => {
                        return Err(cx.err("archive.pinned", "pinned = true needs size and sha256"));
                    }
                    (false, None, None) => None,
                    (false, _, _) => {
                        return Err(cx.err(
                            "archive.pinned",
                            "size/sha256 given but pinned = false; set pinned = true",
                        ));
                    }
                };
                let note = cx.string(t, "archive", "note")?.unwrap_or_default();
                Some(Archive {
                    url,
                    format,
                    pin,
                    note,
                })
            }
        };

        let files_value = root
            .get("file")
            .ok_or_else(|| cx.err("file", "missing: no [[file]] entries"))?;
        let files_array = files_value
            .as_array()
            .ok_or_else(|| cx.err("file", "expected an array of tables ([[file]])"))?;
        if files_array.is_empty() {
            return Err(cx.err("file", "no [[file]] entries"));
        }
        let mut files = Vec::with_capacity(files_array.len());
        for (i, value) in files_array.iter().enumerate() {
            let prefix = format!("file[{i}]");
            let t = cx.table(value, &prefix)?;
            cx.check_keys(
                t,
                &prefix,
                &["path", "url", "size", "sha256", "format", "provenance"],
            )?;
            let path = cx.required_string(t, &prefix, "path")?;
            check_relative_path(&path).map_err(|r| cx.err(&join(&prefix, "path"), r))?;
            let url = cx.url(t, &prefix, "url")?;
            if url.is_none() && archive.is_none() {
                return Err(cx.err(
                    &join(&prefix, "url"),
                    "missing (only files of a manifest with an [archive] may omit it)",
                ));
            }
            let size = cx
                .size(t, &prefix, "size")?
                .ok_or_else(|| cx.err(&join(&prefix, "size"), "missing"))?;
            let sha256 = cx
                .sha256(t, &prefix, "sha256")?
                .ok_or_else(|| cx.err(&join(&prefix, "sha256"), "missing"))?;
            let format = cx.required_string(t, &prefix, "format")?;
            let provenance = cx.required_string(t, &prefix, "provenance")?;
            if files.iter().any(|f: &FileEntry| f.path == path) {
                return Err(cx.err(&join(&prefix, "path"), format!("duplicate path {path:?}")));
            }
            files.push(FileEntry {
                directory: directory.clone(),
                path,
                url,
                pin: Pin { size, sha256 },
                format,
                provenance,
            });
        }
        Ok(Manifest {
            origin: origin.to_string(),
            name,
            directory,
            description,
            licence,
            archive,
            files,
        })
    }

    /// The file whose `path` is `path`.
    pub fn file(&self, path: &str) -> Result<&FileEntry, DataError> {
        self.files
            .iter()
            .find(|f| f.path == path)
            .ok_or_else(|| DataError::Manifest {
                file: self.origin.clone(),
                key: "file".into(),
                reason: format!("no entry with path {path:?}"),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifests_parse() {
        let all = builtin().unwrap();
        let names: Vec<_> = all.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["mnist", "fashion-mnist", "cifar10", "uci"]);
        let uci = &all[3];
        assert_eq!(uci.files.len(), 84);
        assert!(uci.archive.as_ref().is_some_and(|a| a.pin.is_none()));
        assert!(uci.files.iter().all(|f| f.url.is_none()));
        let mnist = &all[0];
        assert_eq!(
            mnist.file("train-images-idx3-ubyte.gz").unwrap().pin.size,
            9912422
        );
    }

    fn err(text: &str) -> String {
        Manifest::parse(text, "m.toml").unwrap_err().to_string()
    }

    #[test]
    fn errors_name_file_key_and_reason() {
        let head = "[dataset]\nname = \"x\"\ndirectory = \"x\"\n";
        let file = |body: &str| format!("{head}[[file]]\n{body}");
        let ok = "path = \"a.gz\"\nurl = \"https://e/a.gz\"\nsize = 3\nsha256 = \"{h}\"\nformat = \"idx-gz\"\nprovenance = \"p\"\n"
            .replace("{h}", &"a".repeat(64));
        assert!(Manifest::parse(&file(&ok), "m.toml").is_ok());
        let e = err(&file(&ok.replace(&"a".repeat(64), "abc")));
        assert!(e.starts_with("m.toml: file[0].sha256: expected 64"), "{e}");
        let e = err(&file(&ok.replace("size = 3", "size = -3")));
        assert!(e.contains("file[0].size: must be ≥ 0"), "{e}");
        let e = err(&file(&ok.replace("size = 3", "size = \"3\"")));
        assert!(e.contains("file[0].size: expected an integer"), "{e}");
        let e = err(&file(&ok.replace("a.gz\"\nurl", "../a.gz\"\nurl")));
        assert!(e.contains("file[0].path:"), "{e}");
        let e = err(&file(&ok.replace("url = \"https://e/a.gz\"\n", "")));
        assert!(e.contains("file[0].url: missing"), "{e}");
        let e = err(&file(&format!("{ok}colour = 1\n")));
        assert!(e.contains("file[0].colour: unknown key"), "{e}");
        let e = err(&file(&ok.replace("url = \"https", "url = \"ftp")));
        assert!(e.contains("file[0].url: expected an http"), "{e}");
        let e = err("[dataset]\nname = \"x\"\n[[file]]\n");
        assert!(e.contains("dataset.directory: missing"), "{e}");
        let e = err("[dataset\n");
        assert!(e.starts_with("m.toml: line 1:"), "{e}");
        let e = err(head);
        assert!(e.contains("m.toml: file: missing"), "{e}");
        let e = err(&format!("{}\n[[file]]\n{ok}", file(&ok)));
        assert!(e.contains("file[1].path: duplicate"), "{e}");
    }
}
