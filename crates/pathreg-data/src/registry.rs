//! Datasets by name: what the experiment pipeline calls.
//!
//! | name | data | default split |
//! |---|---|---|
//! | `uci:<dataset>` | one of the 21 datasets of the UCI collection (`manifests/uci.toml`), e.g. `uci:ionosphere`; labels ±1 (binary) or class indices | [`Split::paper`]: stratified 80/20 with `config.seed` |
//! | `mnist`, `fashion-mnist` | 28×28 images, pixels in `[0, 1]`, labels 0–9 | the official 60 000/10 000 files |
//! | `cifar10` | 32×32×3 images, pixels in `[0, 1]`, labels 0–9 | the official 50 000/10 000 batches |
//! | `csv:<path>` | a user CSV file (see [`crate::csv_file`]) | stratified 80/20 when the labels are ≤ 50 distinct integers, else a seeded random 80/20 |
//!
//! [`load`] fetches what is missing on first use (mirror first when configured, then the
//! canonical URL; see [`crate::download`]), reads each file once into memory, checks its
//! size and SHA-256 against the manifest, and parses those same bytes, so every byte
//! that enters an experiment is a pinned byte. [`LoadedDataset::files`] lists the
//! SHA-256s for provenance.
//!
//! Configuration comes from a [`DataConfig`]; [`DataConfig::from_env`] reads
//! `PATHREG_DATA` (data directory, default `<workspace>/.pathreg-data`, git-ignored) and
//! `PATHREG_MIRROR` (a folder like `../shared/datasets`, or a base URL).

use std::path::{Path, PathBuf};
use std::time::Duration;

use ndarray::{Array1, Array2, Axis, concatenate};

use crate::download::{Downloader, FetchOptions, Fetched, Mirror, ProgressFn, verify_bytes};
use crate::manifest::{FileEntry, Manifest, builtin, builtin_named};
use crate::split::{
    Preprocess, Split, preprocess, random_indices, select_rows, stratified_indices,
};
use crate::uci::{LabelKind, encode_labels, parse_dat, parse_folds, parse_info};
use crate::{DataError, Dataset};

/// Where data lives and how it is fetched, split and preprocessed.
#[derive(Debug, Clone)]
pub struct DataConfig {
    /// The data directory (files go to `<data_dir>/<dataset dir>/…`).
    pub data_dir: PathBuf,
    /// Tried before the canonical URLs.
    pub mirror: Option<Mirror>,
    /// Whether canonical URLs may be used (false: mirror and data directory only).
    pub download: bool,
    /// The split; `None` picks the dataset's default (see the module table).
    pub split: Option<Split>,
    /// Seed of the default stratified split.
    pub seed: u64,
    /// Feature preprocessing (fitted on the training set).
    pub preprocess: Preprocess,
    /// Network timeout (connect, headers, each read).
    pub timeout: Duration,
    /// Requests per source.
    pub attempts: u32,
    /// First retry delay (doubled each retry).
    pub backoff: Duration,
}

impl DataConfig {
    /// `<workspace>/.pathreg-data` (git-ignored), the default data directory.
    pub fn workspace_data_dir() -> PathBuf {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        here.parent()
            .and_then(Path::parent)
            .unwrap_or(here)
            .join(".pathreg-data")
    }

    /// `PATHREG_DATA` if set, else [`DataConfig::workspace_data_dir`].
    pub fn default_data_dir() -> PathBuf {
        std::env::var_os("PATHREG_DATA")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(Self::workspace_data_dir)
    }

    /// Defaults with this data directory: no mirror, downloads allowed, default split
    /// with seed 0, no preprocessing, 30 s timeout, 5 attempts, 1 s backoff.
    pub fn new(data_dir: impl Into<PathBuf>) -> DataConfig {
        let fetch = FetchOptions::new(data_dir);
        DataConfig {
            data_dir: fetch.data_dir,
            mirror: None,
            download: true,
            split: None,
            seed: 0,
            preprocess: Preprocess::None,
            timeout: fetch.timeout,
            attempts: fetch.attempts,
            backoff: fetch.backoff,
        }
    }

    /// Defaults with `PATHREG_DATA` and `PATHREG_MIRROR` applied.
    pub fn from_env() -> DataConfig {
        DataConfig {
            mirror: Mirror::from_env(),
            ..DataConfig::new(Self::default_data_dir())
        }
    }

    /// The downloader options this configuration implies.
    pub fn fetch_options(&self) -> FetchOptions {
        FetchOptions {
            data_dir: self.data_dir.clone(),
            mirror: self.mirror.clone(),
            canonical: self.download,
            timeout: self.timeout,
            attempts: self.attempts,
            backoff: self.backoff,
        }
    }
}

/// One file that went into a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// `dataset dir/path` (or the CSV path).
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex).
    pub sha256: String,
}

/// A loaded, verified, split dataset.
#[derive(Debug, Clone)]
pub struct LoadedDataset {
    /// The registry name it was loaded by.
    pub name: String,
    /// Training set.
    pub train: Dataset,
    /// Test set (empty with [`Split::None`]).
    pub test: Dataset,
    /// How `y` encodes the labels.
    pub labels: LabelKind,
    /// The split applied.
    pub split: Split,
    /// The preprocessing applied.
    pub preprocess: Preprocess,
    /// Every file read, with its SHA-256, in reading order.
    pub files: Vec<FileHash>,
}

/// Every registry name: `mnist`, `fashion-mnist`, `cifar10`, then `uci:<dataset>` for
/// each dataset of the UCI manifest (`csv:<path>` is open-ended and not listed).
pub fn names() -> Result<Vec<String>, DataError> {
    let mut out = Vec::new();
    for m in builtin()? {
        if m.name == "uci" {
            out.extend(uci_datasets(&m).into_iter().map(|d| format!("uci:{d}")));
        } else {
            out.push(m.name.clone());
        }
    }
    Ok(out)
}

/// The dataset folders of the UCI manifest, sorted.
pub fn uci_datasets(manifest: &Manifest) -> Vec<String> {
    let mut out: Vec<String> = manifest
        .files
        .iter()
        .filter_map(|f| f.path.split_once('/').map(|(d, _)| d.to_string()))
        .collect();
    out.dedup();
    out.sort();
    out.dedup();
    out
}

/// The manifest and files behind a fetchable name: `mnist`, `fashion-mnist`, `cifar10`,
/// `uci` (all 21), `uci:<dataset>`.
pub fn files_for(name: &str) -> Result<(Manifest, Vec<FileEntry>), DataError> {
    if let Some(dataset) = name.strip_prefix("uci:") {
        let m = builtin_named("uci")?;
        let prefix = format!("{dataset}/");
        let files: Vec<FileEntry> = m
            .files
            .iter()
            .filter(|f| f.path.starts_with(&prefix))
            .cloned()
            .collect();
        if files.is_empty() || dataset.is_empty() {
            return Err(DataError::UnknownDataset {
                name: name.to_string(),
                known: names()?.join(", "),
            });
        }
        return Ok((m, files));
    }
    let m = builtin_named(name).map_err(|_| DataError::UnknownDataset {
        name: name.to_string(),
        known: names().map(|n| n.join(", ")).unwrap_or_default(),
    })?;
    let files = m.files.clone();
    Ok((m, files))
}

/// The outcome of fetching one file.
#[derive(Debug)]
pub struct FetchResult {
    /// `dataset dir/path`.
    pub file: String,
    /// The file in place, or why not.
    pub result: Result<Fetched, DataError>,
}

/// Fetches the files of `names` (`all` = every dataset; see [`files_for`]) into the data
/// directory. Unknown names are an error before anything is fetched; per-file failures
/// are reported in the results.
pub fn fetch(
    names: &[String],
    config: &DataConfig,
    progress: ProgressFn<'_>,
) -> Result<Vec<FetchResult>, DataError> {
    let mut wanted: Vec<(Manifest, Vec<FileEntry>)> = Vec::new();
    let mut add = |manifest: Manifest, files: Vec<FileEntry>| {
        if let Some((_, existing)) = wanted.iter_mut().find(|(m, _)| m.name == manifest.name) {
            for f in files {
                if !existing.contains(&f) {
                    existing.push(f);
                }
            }
        } else {
            wanted.push((manifest, files));
        }
    };
    for name in names {
        if name == "all" {
            for m in builtin()? {
                let files = m.files.clone();
                add(m, files);
            }
        } else {
            let (m, files) = files_for(name)?;
            add(m, files);
        }
    }
    let downloader = Downloader::new(config.fetch_options());
    let mut out = Vec::new();
    for (manifest, files) in &wanted {
        let refs: Vec<&FileEntry> = files.iter().collect();
        for (entry, result) in files
            .iter()
            .zip(downloader.fetch_all(manifest, &refs, progress))
        {
            out.push(FetchResult {
                file: entry.label(),
                result,
            });
        }
    }
    Ok(out)
}

/// Loads a dataset by name (see the module docs), fetching missing files first.
pub fn load(name: &str, config: &DataConfig) -> Result<LoadedDataset, DataError> {
    let (mut train, mut test, labels, split, files) = if let Some(path) = name.strip_prefix("csv:")
    {
        load_csv(Path::new(path), config)?
    } else if let Some(dataset) = name.strip_prefix("uci:") {
        load_uci(name, dataset, config)?
    } else {
        match name {
            "mnist" | "fashion-mnist" => load_idx(name, config)?,
            "cifar10" => load_cifar(config)?,
            _ => {
                return Err(DataError::UnknownDataset {
                    name: name.to_string(),
                    known: format!("{}, csv:<path>", names()?.join(", ")),
                });
            }
        }
    };
    preprocess(config.preprocess, &mut train, &mut test);
    Ok(LoadedDataset {
        name: name.to_string(),
        train,
        test,
        labels,
        split,
        preprocess: config.preprocess,
        files,
    })
}

type Parts = (Dataset, Dataset, LabelKind, Split, Vec<FileHash>);

/// Makes sure `entries` are in the data directory, then reads and verifies each.
fn fetch_and_read(
    manifest: &Manifest,
    entries: &[&FileEntry],
    config: &DataConfig,
) -> Result<Vec<(Vec<u8>, FileHash)>, DataError> {
    let downloader = Downloader::new(config.fetch_options());
    let mut out = Vec::with_capacity(entries.len());
    for (entry, result) in
        entries
            .iter()
            .zip(downloader.fetch_all(manifest, entries, &crate::download::no_progress))
    {
        let fetched = result?;
        let bytes = std::fs::read(&fetched.path).map_err(|source| DataError::Io {
            path: fetched.path.display().to_string(),
            source,
        })?;
        verify_bytes(&fetched.path.display().to_string(), &bytes, &entry.pin)?;
        out.push((
            bytes,
            FileHash {
                file: entry.label(),
                size: entry.pin.size,
                sha256: entry.pin.sha256.clone(),
            },
        ));
    }
    Ok(out)
}

fn empty_like(d: &Dataset) -> Dataset {
    Dataset {
        feature_names: d.feature_names.clone(),
        x: Array2::zeros((0, d.d())),
        y: Array1::zeros(0),
    }
}

fn stack(a: &Dataset, b: &Dataset) -> Result<Dataset, DataError> {
    let err =
        |e: ndarray::ShapeError| DataError::Invalid(format!("cannot pool train and test: {e}"));
    Ok(Dataset {
        feature_names: a.feature_names.clone(),
        x: concatenate(Axis(0), &[a.x.view(), b.x.view()]).map_err(err)?,
        y: concatenate(Axis(0), &[a.y.view(), b.y.view()]).map_err(err)?,
    })
}

/// Splits `all` by `split` (UCI folds handled by the caller); `classes` stratifies.
fn split_pooled(
    all: &Dataset,
    classes: Option<&[usize]>,
    split: Split,
    name: &str,
) -> Result<(Dataset, Dataset), DataError> {
    match split {
        Split::Stratified {
            test_fraction,
            seed,
        } => {
            let (train, test) = match classes {
                Some(c) => stratified_indices(c, test_fraction, seed)?,
                None => random_indices(all.n(), test_fraction, seed)?,
            };
            Ok((select_rows(all, &train), select_rows(all, &test)))
        }
        Split::None => Ok((all.clone(), empty_like(all))),
        other => Err(DataError::Invalid(format!(
            "{name}: split {other:?} is not available for this dataset"
        ))),
    }
}

fn classes_of(y: &Array1<f64>) -> Vec<usize> {
    y.iter().map(|&v| v as usize).collect()
}

fn load_idx(name: &str, config: &DataConfig) -> Result<Parts, DataError> {
    let manifest = builtin_named(name)?;
    let paths = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];
    let entries = paths
        .iter()
        .map(|p| manifest.file(p))
        .collect::<Result<Vec<_>, _>>()?;
    let files = fetch_and_read(&manifest, &entries, config)?;
    let arrays = files
        .iter()
        .map(|(bytes, h)| crate::idx::parse_idx_gz(bytes, &h.file))
        .collect::<Result<Vec<_>, _>>()?;
    let train = crate::idx::images_and_labels(&arrays[0], &arrays[1], &files[0].1.file)?;
    let test = crate::idx::images_and_labels(&arrays[2], &arrays[3], &files[2].1.file)?;
    let hashes = files.into_iter().map(|(_, h)| h).collect();
    finish_official(name, train, test, config, hashes)
}

fn finish_official(
    name: &str,
    train: Dataset,
    test: Dataset,
    config: &DataConfig,
    hashes: Vec<FileHash>,
) -> Result<Parts, DataError> {
    let labels = LabelKind::MultiClass { classes: 10 };
    let split = config.split.unwrap_or(Split::Official);
    let (train, test) = match split {
        Split::Official => (train, test),
        other => {
            let all = stack(&train, &test)?;
            let classes = classes_of(&all.y);
            split_pooled(&all, Some(&classes), other, name)?
        }
    };
    Ok((train, test, labels, split, hashes))
}

fn load_cifar(config: &DataConfig) -> Result<Parts, DataError> {
    let manifest = builtin_named("cifar10")?;
    let entry = manifest.file("cifar-10-binary.tar.gz")?;
    let mut files = fetch_and_read(&manifest, &[entry], config)?;
    let (bytes, hash) = files.remove(0);
    let (train, test) =
        crate::cifar::read_tar_gz(bytes.as_slice(), &hash.file, crate::cifar::BATCH_RECORDS)?;
    finish_official("cifar10", train, test, config, vec![hash])
}

fn load_uci(name: &str, dataset: &str, config: &DataConfig) -> Result<Parts, DataError> {
    let (manifest, entries) = files_for(name)?;
    let refs: Vec<&FileEntry> = entries.iter().collect();
    let files = fetch_and_read(&manifest, &refs, config)?;
    let text_of = |path: &str| -> Result<(String, &FileHash), DataError> {
        let full = format!("{dataset}/{path}");
        let (bytes, hash) = entries
            .iter()
            .zip(&files)
            .find(|(e, _)| e.path == full)
            .map(|(_, f)| (&f.0, &f.1))
            .ok_or_else(|| DataError::Manifest {
                file: manifest.origin.clone(),
                key: "file".into(),
                reason: format!("{} is not pinned (needed by {name})", full),
            })?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| DataError::Malformed {
            path: hash.file.clone(),
            line: 0,
            reason: "not UTF-8 text".into(),
        })?;
        Ok((text, hash))
    };
    let (info_text, info_hash) = text_of(&format!("{dataset}.txt"))?;
    let info = parse_info(&info_text, &info_hash.file)?;
    let mut used = vec![info_hash.clone()];
    let mut tables = Vec::new();
    for (file, rows) in &info.files {
        let (text, hash) = text_of(file)?;
        let table = parse_dat(&text, &hash.file, info.n_inputs, info.n_classes)?;
        if let Some(rows) = rows.filter(|&r| r != table.classes.len()) {
            return Err(DataError::Malformed {
                path: hash.file.clone(),
                line: 0,
                reason: format!(
                    "{} rows, but {dataset}.txt says {rows}",
                    table.classes.len()
                ),
            });
        }
        used.push(hash.clone());
        tables.push(table);
    }
    let feature_names = tables[0].feature_names.clone();
    let views: Vec<_> = tables.iter().map(|t| t.x.view()).collect();
    let x = concatenate(Axis(0), &views).map_err(|e| DataError::Invalid(format!("{name}: {e}")))?;
    let classes: Vec<usize> = tables
        .iter()
        .flat_map(|t| t.classes.iter().copied())
        .collect();
    let (y, labels) = encode_labels(&classes, info.n_classes);
    let all = Dataset {
        feature_names,
        x,
        y,
    };
    let split = config.split.unwrap_or(Split::paper(config.seed));
    let (train, test) = match split {
        Split::Official => {
            if tables.len() != 2 {
                return Err(DataError::Invalid(format!(
                    "{name}: ships as {} file(s); the official split needs separate train and test files",
                    tables.len()
                )));
            }
            let n1 = tables[0].classes.len();
            let rows: Vec<usize> = (0..all.n()).collect();
            (
                select_rows(&all, &rows[..n1]),
                select_rows(&all, &rows[n1..]),
            )
        }
        Split::UciConxuntos | Split::UciKfold { .. } => {
            let (file, fold) = match split {
                Split::UciKfold { fold } => ("conxuntos_kfold.dat", fold),
                _ => ("conxuntos.dat", 0),
            };
            let (text, hash) = text_of(file)?;
            let folds = parse_folds(&text, &hash.file, all.n())?;
            used.push(hash.clone());
            let f = folds.get(fold).ok_or_else(|| {
                DataError::Invalid(format!(
                    "{name}: {file} has {} partition(s), no fold {fold}",
                    folds.len()
                ))
            })?;
            (select_rows(&all, &f.train), select_rows(&all, &f.test))
        }
        other => split_pooled(&all, Some(&classes), other, name)?,
    };
    Ok((train, test, labels, split, used))
}

fn load_csv(path: &Path, config: &DataConfig) -> Result<Parts, DataError> {
    let origin = path.display().to_string();
    let bytes = crate::csv_file::read_csv_bytes(path)?;
    let hash = FileHash {
        file: origin.clone(),
        size: bytes.len() as u64,
        sha256: crate::download::sha256_hex(&bytes),
    };
    let text = String::from_utf8(bytes).map_err(|_| DataError::Malformed {
        path: origin.clone(),
        line: 0,
        reason: "not UTF-8 text".into(),
    })?;
    let all = crate::csv_file::parse_csv(&text, &origin)?;
    let mut distinct: Vec<f64> = Vec::new();
    let integral = all.y.iter().all(|v| v.fract() == 0.0);
    for &v in &all.y {
        if distinct.len() > 50 {
            break;
        }
        if !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    distinct.sort_by(f64::total_cmp);
    let class_like = integral && distinct.len() <= 50;
    let labels = if distinct == [-1.0, 1.0] {
        LabelKind::Binary
    } else {
        LabelKind::Real
    };
    let classes: Option<Vec<usize>> = class_like.then(|| {
        all.y
            .iter()
            .map(|v| distinct.iter().position(|d| d == v).unwrap_or(0))
            .collect()
    });
    let split = config.split.unwrap_or(Split::paper(config.seed));
    let (train, test) = split_pooled(&all, classes.as_deref(), split, &origin)?;
    Ok((train, test, labels, split, vec![hash]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_route_refuses_what_is_not_a_regular_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = DataConfig::new(dir.path());
        let err = load("csv:/dev/zero", &config).unwrap_err().to_string();
        assert!(
            err.starts_with("/dev/zero: a character device, not a regular file"),
            "{err}"
        );
        let err = load(&format!("csv:{}", dir.path().display()), &config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a directory, not a regular file"), "{err}");
        let big = dir.path().join("big.csv");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(crate::csv_file::MAX_CSV_BYTES + 1)
            .unwrap();
        let err = load(&format!("csv:{}", big.display()), &config)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("big.csv") && err.contains("MAX_CSV_BYTES"),
            "{err}"
        );
    }
}
