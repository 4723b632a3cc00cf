//! The fuzz targets: each reads its input files from disk through the
//! project's public parsing entry points, as the loaders do, and checks what
//! a correct parser promises beyond not panicking: an error names the file
//! it is about, and what is accepted is consistent (shapes, indices,
//! extracted paths, cache hits only for valid entries, lock round trips).

use std::path::{Path, PathBuf};

use pathreg_core::ArrangementSet;
use pathreg_data::manifest::{Manifest, check_relative_path};
use pathreg_data::registry::{self, DataConfig};
use pathreg_data::{archive, cifar, csv_file, idx, uci};
use pathreg_pipeline::cache::{Cache, CacheKey};
use pathreg_pipeline::lock::LockFile;

use super::mutate::Input;
use super::seeds::{self, Sources};

/// What one input did.
#[derive(Debug)]
pub enum Outcome {
    /// Parsed (or, for the cache, served from the entry).
    Accepted,
    /// Refused with an error that names its file (or, for the cache, recomputed).
    Rejected,
    /// A broken promise other than a panic: an error that names no file, an
    /// inconsistent result, a corrupt cache entry trusted.
    Violation(String),
}

/// One target: its name, its seed inputs and the function that runs one input.
pub struct Target {
    /// The name `--target` takes.
    pub name: &'static str,
    /// The seed inputs (real files where available).
    pub seeds: fn(&Sources) -> anyhow::Result<Vec<Input>>,
    /// Runs one input whose files are in `Dirs::input`.
    pub run: fn(&Dirs) -> Outcome,
}

/// The folders of one target's run.
pub struct Dirs {
    /// Holds the current input's files, under their member names.
    pub input: PathBuf,
    /// The target's own scratch space (cache root, extraction folder, …).
    pub scratch: PathBuf,
}

impl Dirs {
    fn file(&self, name: &str) -> PathBuf {
        self.input.join(name)
    }
}

/// Every target, in the order they run.
pub const TARGETS: &[Target] = &[
    Target {
        name: "experiment-manifest",
        seeds: seeds::experiment_manifests,
        run: experiment_manifest,
    },
    Target {
        name: "dataset-manifest",
        seeds: seeds::dataset_manifests,
        run: dataset_manifest,
    },
    Target {
        name: "csv",
        seeds: seeds::csv,
        run: csv,
    },
    Target {
        name: "uci",
        seeds: seeds::uci,
        run: uci_folder,
    },
    Target {
        name: "idx",
        seeds: seeds::idx,
        run: idx_raw,
    },
    Target {
        name: "idx-gz",
        seeds: seeds::idx_gz,
        run: idx_gz,
    },
    Target {
        name: "cifar",
        seeds: seeds::cifar,
        run: cifar_batch,
    },
    Target {
        name: "cifar-tar",
        seeds: seeds::cifar_tar,
        run: cifar_tar,
    },
    Target {
        name: "archive",
        seeds: seeds::archive,
        run: tar_archive,
    },
    Target {
        name: "cache",
        seeds: seeds::cache,
        run: cache_entry,
    },
    Target {
        name: "lock",
        seeds: seeds::lock,
        run: lock_file,
    },
];

/// `Rejected` when `error` names `file`, else a violation.
fn named(error: impl std::fmt::Display, file: &Path) -> Outcome {
    let text = error.to_string();
    let file = file.display().to_string();
    if text.contains(&file) {
        Outcome::Rejected
    } else {
        Outcome::Violation(format!("the error does not name {file}: {text}"))
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Outcome {
    if ok {
        Outcome::Accepted
    } else {
        Outcome::Violation(what())
    }
}

/// The only member file of a one-file input.
fn only_file(dirs: &Dirs) -> Option<PathBuf> {
    let mut entries = std::fs::read_dir(&dirs.input).ok()?;
    let first = entries.next()?.ok()?.path();
    entries.next().is_none().then_some(first)
}

fn missing_input() -> Outcome {
    Outcome::Violation("the input folder does not hold exactly one file".into())
}

/// `pathreg_pipeline::load_manifest`: the kind's whole manifest check.
fn experiment_manifest(dirs: &Dirs) -> Outcome {
    let path = dirs.file("manifest.toml");
    match pathreg_pipeline::load_manifest(&path) {
        Ok(_) => Outcome::Accepted,
        Err(e) => named(e, &path),
    }
}

/// `Manifest::read`; an accepted manifest has only safe relative file paths.
fn dataset_manifest(dirs: &Dirs) -> Outcome {
    let Some(path) = only_file(dirs) else {
        return missing_input();
    };
    match Manifest::read(&path) {
        Ok(m) => check(
            check_relative_path(&m.directory).is_ok()
                && m.files.iter().all(|f| check_relative_path(&f.path).is_ok()),
            || "a manifest with an unsafe path was accepted".into(),
        ),
        Err(e) => named(e, &path),
    }
}

/// `csv_file::read_csv`, then (for what parses) `registry::load("csv:<path>")`
/// with its default split, offline.
fn csv(dirs: &Dirs) -> Outcome {
    let path = dirs.file("data.csv");
    let data = match csv_file::read_csv(&path) {
        Ok(data) => data,
        Err(e) => return named(e, &path),
    };
    let shaped = data.x.nrows() == data.y.len()
        && data.feature_names.len() == data.x.ncols()
        && data.x.iter().chain(&data.y).all(|v| v.is_finite());
    if !shaped {
        return Outcome::Violation(format!(
            "inconsistent dataset: x {:?}, {} labels, {} names, or a non-finite value",
            data.x.dim(),
            data.y.len(),
            data.feature_names.len()
        ));
    }
    let config = DataConfig {
        download: false,
        mirror: None,
        ..DataConfig::new(dirs.scratch.join("data"))
    };
    match registry::load(&format!("csv:{}", path.display()), &config) {
        Ok(loaded) => check(loaded.train.n() + loaded.test.n() == data.n(), || {
            "the split lost or duplicated rows".into()
        }),
        Err(e) => named(e, &path),
    }
}

fn read_text(path: &Path) -> Result<String, Outcome> {
    let bytes = std::fs::read(path).map_err(|_| Outcome::Rejected)?;
    String::from_utf8(bytes).map_err(|_| Outcome::Rejected)
}

/// A UCI folder read as `registry::load` reads one: `<name>.txt` with
/// `uci::parse_info`, each data file it names with `uci::parse_dat`, then
/// `conxuntos.dat` and `conxuntos_kfold.dat` with `uci::parse_folds` over the
/// pooled rows. A file the info names but the folder lacks is a rejection.
fn uci_folder(dirs: &Dirs) -> Outcome {
    match uci_steps(dirs) {
        Ok(()) => Outcome::Accepted,
        Err(outcome) => outcome,
    }
}

fn uci_steps(dirs: &Dirs) -> Result<(), Outcome> {
    let entries = std::fs::read_dir(&dirs.input).map_err(|_| missing_input())?;
    let info_path = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "txt"))
        .ok_or_else(missing_input)?;
    let text = read_text(&info_path)?;
    let origin = |p: &Path| p.display().to_string();
    let info = uci::parse_info(&text, &origin(&info_path)).map_err(|e| named(e, &info_path))?;
    let mut rows = 0usize;
    for (file, declared) in &info.files {
        let path = dirs.file(file);
        let text = read_text(&path)?;
        let table = uci::parse_dat(&text, &origin(&path), info.n_inputs, info.n_classes)
            .map_err(|e| named(e, &path))?;
        let (n, d) = table.x.dim();
        if n != table.classes.len()
            || d != info.n_inputs
            || table.feature_names.len() != d
            || table.classes.iter().any(|&c| c >= info.n_classes)
        {
            return Err(Outcome::Violation(format!(
                "{file}: inconsistent table: x {n}×{d}, {} classes",
                table.classes.len()
            )));
        }
        let (labels, _) = uci::encode_labels(&table.classes, info.n_classes);
        if labels.len() != n {
            return Err(Outcome::Violation(format!(
                "{file}: {} labels for {n} rows",
                labels.len()
            )));
        }
        if declared.is_some_and(|r| r != n) {
            return Err(Outcome::Rejected);
        }
        rows += n;
    }
    for file in ["conxuntos.dat", "conxuntos_kfold.dat"] {
        let path = dirs.file(file);
        if !path.exists() {
            continue;
        }
        let text = read_text(&path)?;
        let folds = uci::parse_folds(&text, &origin(&path), rows).map_err(|e| named(e, &path))?;
        for fold in &folds {
            let mut seen = vec![false; rows];
            for &i in fold.train.iter().chain(&fold.test) {
                if i >= rows || std::mem::replace(&mut seen[i], true) {
                    return Err(Outcome::Violation(format!(
                        "{file}: row {i} out of range or repeated in an accepted partition"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Both IDX files with `parse` (`idx::parse_idx` or `idx::parse_idx_gz`), then
/// `idx::images_and_labels`.
fn idx_pair(
    dirs: &Dirs,
    names: [&str; 2],
    parse: fn(&[u8], &str) -> Result<idx::IdxArray, pathreg_data::DataError>,
) -> Outcome {
    let mut arrays = Vec::new();
    for name in names {
        let path = dirs.file(name);
        let Ok(bytes) = std::fs::read(&path) else {
            return missing_input();
        };
        match parse(&bytes, &path.display().to_string()) {
            Ok(a) => {
                let len = a.dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
                if len != Some(a.data.len()) {
                    return Outcome::Violation(format!(
                        "{name}: dimensions {:?} but {} bytes of data",
                        a.dims,
                        a.data.len()
                    ));
                }
                arrays.push(a);
            }
            Err(e) => return named(e, &path),
        }
    }
    let images_path = dirs.file(names[0]);
    match idx::images_and_labels(&arrays[0], &arrays[1], &images_path.display().to_string()) {
        Ok(ds) => check(
            ds.n() == ds.y.len()
                && ds.x.len() == arrays[0].data.len()
                && ds.x.iter().all(|p| (0.0..=1.0).contains(p)),
            || {
                format!(
                    "inconsistent images: x {:?}, {} labels",
                    ds.x.dim(),
                    ds.y.len()
                )
            },
        ),
        Err(e) => named(e, &images_path),
    }
}

fn idx_raw(dirs: &Dirs) -> Outcome {
    idx_pair(dirs, ["images.idx", "labels.idx"], idx::parse_idx)
}

fn idx_gz(dirs: &Dirs) -> Outcome {
    idx_pair(dirs, ["images.idx.gz", "labels.idx.gz"], idx::parse_idx_gz)
}

/// `cifar::records_dataset` on one batch file.
fn cifar_batch(dirs: &Dirs) -> Outcome {
    let path = dirs.file("data_batch_1.bin");
    let Ok(bytes) = std::fs::read(&path) else {
        return missing_input();
    };
    match cifar::records_dataset(&bytes, &path.display().to_string()) {
        Ok(ds) => check(
            ds.n() * cifar::RECORD == bytes.len()
                && ds.d() == cifar::PIXELS
                && ds.y.iter().all(|&l| (0.0..=9.0).contains(&l)),
            || {
                format!(
                    "inconsistent batch: x {:?} from {} bytes",
                    ds.x.dim(),
                    bytes.len()
                )
            },
        ),
        Err(e) => named(e, &path),
    }
}

/// Records per batch of the synthetic CIFAR archives.
pub const CIFAR_RECORDS: usize = 2;

/// `cifar::read_tar_gz` on a whole archive (batches of [`CIFAR_RECORDS`]).
fn cifar_tar(dirs: &Dirs) -> Outcome {
    let path = dirs.file("cifar-10-binary.tar.gz");
    let Ok(bytes) = std::fs::read(&path) else {
        return missing_input();
    };
    match cifar::read_tar_gz(bytes.as_slice(), &path.display().to_string(), CIFAR_RECORDS) {
        Ok((train, test)) => check(
            train.n() == 5 * CIFAR_RECORDS && test.n() == CIFAR_RECORDS,
            || format!("{} train and {} test images", train.n(), test.n()),
        ),
        Err(e) => named(e, &path),
    }
}

/// `archive::extract_tar_gz` of every member into an empty folder inside a
/// sandbox: nothing may appear beside it, only regular files inside it, and
/// every returned path is such a file.
fn tar_archive(dirs: &Dirs) -> Outcome {
    let path = dirs.file("data.tar.gz");
    let sandbox = dirs.scratch.join("sandbox");
    let dest = sandbox.join("out");
    if sandbox.exists() && std::fs::remove_dir_all(&sandbox).is_err() {
        return Outcome::Violation(format!("cannot empty {}", sandbox.display()));
    }
    if std::fs::create_dir_all(&dest).is_err() {
        return Outcome::Violation(format!("cannot create {}", dest.display()));
    }
    let extracted = match archive::extract_tar_gz(&path, &dest, |_| true) {
        Ok(paths) => paths,
        Err(e) => {
            let text = e.to_string();
            return if text.contains(&path.display().to_string())
                || text.contains(&dest.display().to_string())
            {
                escape_check(&sandbox, &dest).unwrap_or(Outcome::Rejected)
            } else {
                Outcome::Violation(format!(
                    "the error names neither the archive nor the folder: {text}"
                ))
            };
        }
    };
    if let Some(v) = escape_check(&sandbox, &dest) {
        return v;
    }
    for p in &extracted {
        let full = dest.join(p);
        let regular = std::fs::symlink_metadata(&full).is_ok_and(|m| m.file_type().is_file());
        if p.is_absolute() || !regular {
            return Outcome::Violation(format!(
                "returned path {} is not a regular file in the folder",
                p.display()
            ));
        }
    }
    Outcome::Accepted
}

/// A violation when the sandbox holds anything but `dest`, or `dest` holds a
/// link or special file.
fn escape_check(sandbox: &Path, dest: &Path) -> Option<Outcome> {
    let beside: Vec<PathBuf> = std::fs::read_dir(sandbox)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p != dest)
        .collect();
    if !beside.is_empty() {
        return Some(Outcome::Violation(format!(
            "written outside the folder: {beside:?}"
        )));
    }
    let mut stack = vec![dest.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.filter_map(Result::ok) {
            let kind = entry.file_type().ok()?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if !kind.is_file() {
                return Some(Outcome::Violation(format!(
                    "extracted something other than a regular file: {}",
                    entry.path().display()
                )));
            }
        }
    }
    None
}

/// A cache decoder: how the pipeline reads one kind of entry back.
#[derive(Clone, Copy)]
enum Decoder {
    /// The arrangements stage: `ArrangementSet::from_bytes`.
    Arrangements,
    /// A bincode cell result shaped like the spectrum kind's.
    Spectrum,
    /// A bincode lock file (strings, maps, nested vectors).
    Lock,
}

/// A bincode value shaped like the spectrum kind's cached cell:
/// `(n, d, singular values, (file, sha256) pairs, load seconds, spectrum seconds)`.
pub type SpectrumShaped = (usize, usize, Vec<f64>, Vec<(String, String)>, f64, f64);

impl Decoder {
    /// Every decoder, by the name member files carry (`<name>.entry`, `<name>.payload`).
    const ALL: [(&str, Decoder); 3] = [
        ("arrangements", Decoder::Arrangements),
        ("spectrum", Decoder::Spectrum),
        ("lock", Decoder::Lock),
    ];

    /// The payload decoded and encoded again (a canonical form to compare), or `None`.
    fn roundtrip(self, payload: &[u8]) -> Option<Vec<u8>> {
        match self {
            Decoder::Arrangements => ArrangementSet::from_bytes(payload)
                .ok()
                .map(|s| s.to_bytes()),
            Decoder::Spectrum => bincode::deserialize::<SpectrumShaped>(payload)
                .ok()
                .and_then(|v| bincode::serialize(&v).ok()),
            Decoder::Lock => bincode::deserialize::<LockFile>(payload)
                .ok()
                .and_then(|v| bincode::serialize(&v).ok()),
        }
    }
}

/// A cache entry: `<decoder>.entry` is written over the entry file as is;
/// `<decoder>.payload` is stored through the cache (so it is well framed)
/// and read back with the decoder. `Cache::contains` and
/// `Cache::get_or_compute` must agree with the decoder: a hit only for an
/// entry that decodes, with its value; otherwise a recomputation that is
/// stored and then served.
fn cache_entry(dirs: &Dirs) -> Outcome {
    let Some(file) = only_file(dirs) else {
        return missing_input();
    };
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((stem, mode)) = name.split_once('.') else {
        return missing_input();
    };
    let Some(&(_, decoder)) = Decoder::ALL.iter().find(|(n, _)| *n == stem) else {
        return missing_input();
    };
    let Ok(bytes) = std::fs::read(&file) else {
        return missing_input();
    };
    let cache = Cache::new(Some(dirs.scratch.join("cache")));
    let key = CacheKey::new("fuzz", 1, &stem, &[]);
    let Some(entry) = cache.entry_path(&key) else {
        return Outcome::Violation("an enabled cache has no entry path".into());
    };
    if entry.exists() && std::fs::remove_file(&entry).is_err() {
        return Outcome::Violation(format!("cannot remove {}", entry.display()));
    }
    // What a hit must return; `None` where the entry must be recomputed.
    let expected = if mode == "payload" {
        let stored = cache.get_or_compute(&key, Vec::clone, |_| None, || Ok(bytes.clone()));
        if let Err(e) = stored {
            return Outcome::Violation(format!("storing a payload failed: {e}"));
        }
        Some(decoder.roundtrip(&bytes))
    } else {
        let written = entry
            .parent()
            .is_some_and(|dir| std::fs::create_dir_all(dir).is_ok())
            && std::fs::write(&entry, &bytes).is_ok();
        if !written {
            return Outcome::Violation(format!("cannot write {}", entry.display()));
        }
        None
    };
    let well_framed = cache.contains(&key);
    let fresh = b"recomputed".to_vec();
    let got = cache.get_or_compute(
        &key,
        Vec::clone,
        |b| decoder.roundtrip(b),
        || Ok(fresh.clone()),
    );
    let (value, hit) = match got {
        Ok(v) => v,
        Err(e) => return Outcome::Violation(format!("get_or_compute failed: {e}")),
    };
    if let Some(expected) = expected {
        if !well_framed {
            return Outcome::Violation("an entry the cache stored is not well framed".into());
        }
        if hit != expected.is_some() || (hit && Some(&value) != expected.as_ref()) {
            return Outcome::Violation(format!(
                "hit = {hit} but the payload {} decode",
                if expected.is_some() {
                    "does"
                } else {
                    "does not"
                }
            ));
        }
    } else if hit && !well_framed {
        return Outcome::Violation("a hit on an entry `contains` calls invalid".into());
    }
    if hit {
        return Outcome::Accepted;
    }
    // Recomputed: now stored, valid, and served.
    if value != fresh || !cache.contains(&key) {
        return Outcome::Violation("the recomputed value was not stored".into());
    }
    match cache.get_or_compute(&key, Vec::clone, |b| Some(b.to_vec()), || Ok(Vec::new())) {
        Ok((again, true)) if again == fresh => Outcome::Rejected,
        _ => Outcome::Violation("the recomputed entry is not served".into()),
    }
}

/// `LockFile::read`; an accepted lock writes and reads back equal.
fn lock_file(dirs: &Dirs) -> Outcome {
    let path = dirs.file("results.lock");
    match LockFile::read(&path) {
        Ok(lock) => {
            let again = dirs.scratch.join("again.lock");
            match lock.write(&again).and_then(|()| LockFile::read(&again)) {
                Ok(read) => check(read == lock, || "the lock does not round-trip".into()),
                Err(e) => Outcome::Violation(format!("writing the accepted lock back failed: {e}")),
            }
        }
        Err(e) => named(e, &path),
    }
}
