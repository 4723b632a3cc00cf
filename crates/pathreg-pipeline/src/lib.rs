//! The experiment pipeline: manifest → its kind's validated experiment →
//! cells (each with its own derived seed, each a cached stage) → results →
//! tables, figures and provenance under `outputs/<name>/`. The pipeline
//! orchestrates; the mathematics lives in `pathreg-core` and
//! `pathreg-solvers`.
//!
//! - [`engine`]: cache, run lock, seeds, hashes, provenance, output folder,
//!   progress and the cell loop, for any kind;
//! - [`manifest`]: the validation toolkit and the shared manifest sections;
//! - [`stages`]: stages several kinds share (data, arrangements);
//! - [`kinds`]: the registry and one folder per experiment kind.

pub mod engine;
pub mod kinds;
pub mod manifest;
pub mod stages;

use std::path::{Path, PathBuf};

pub use engine::{Progress, RunOptions, RunSummary, cache, results_lock as lock, seeds};
use manifest::ManifestFile;

/// Reads a manifest and checks it by its kind, without running anything.
pub fn load_manifest(
    path: &Path,
) -> Result<
    (
        &'static kinds::Kind,
        Box<dyn engine::Experiment>,
        ManifestFile,
    ),
    PipelineError,
> {
    let file = ManifestFile::read(path)?;
    let kind = kinds::kind_of(&file)?;
    let experiment = (kind.load)(&file)?;
    Ok((kind, experiment, file))
}

/// Runs the manifest at `path` and writes `outputs/<name>/`.
pub fn run_manifest(path: &Path, options: &RunOptions) -> Result<RunSummary, PipelineError> {
    let (kind, experiment, file) = load_manifest(path)?;
    engine::execute(experiment.as_ref(), kind.name, &file, options)
}

/// Each cell's label and whether its result is in the cache at `cache_root`
/// (for `cargo xtask list`). Computes cache keys only: no fits.
pub fn cached_cells(path: &Path, cache_root: &Path) -> Result<Vec<(String, bool)>, PipelineError> {
    let (_, experiment, _) = load_manifest(path)?;
    experiment.list(&cache::Cache::new(Some(cache_root.to_path_buf())))
}

/// Errors of the pipeline, each naming the file or stage at fault.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A manifest that does not parse or validate.
    #[error("{}:{line}:{column}: {}{reason}", path.display(), if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// 1-based line (0 if unknown).
        line: usize,
        /// 1-based column (0 if unknown).
        column: usize,
        /// The offending key, dotted.
        key: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A file-system failure.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Writing or reading JSON (run.json, the lock file) failed.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// `clean --stage` named something that is not a cache stage.
    #[error("{0:?} is not a cache stage name")]
    CacheStage(String),
    /// A cached arrangement set that does not fit the data it is keyed by.
    #[error("cached arrangements {key} do not match the data")]
    ArrangementsMismatch {
        /// The entry's key.
        key: String,
    },
    /// A classification cell with an empty learning-rate grid (the manifest
    /// check refuses those).
    #[error("the learning-rate grid is empty")]
    EmptyLearningRateGrid,
    /// A convex classification model scored without its sampled arrangements.
    #[error("a convex model without its arrangements")]
    MissingArrangements,
    /// Loading or generating data failed.
    #[error("data: {0}")]
    Data(#[from] pathreg_data::DataError),
    /// The mathematical core rejected its input.
    #[error("{0}")]
    Core(#[from] pathreg_core::CoreError),
    /// A solver failed, or its result failed its own verification (e.g. the
    /// Proposition 1 map).
    #[error("solver: {0}")]
    Solver(#[from] pathreg_solvers::SolverError),
    /// Writing tables or figures failed.
    #[error("report: {0}")]
    Report(#[from] pathreg_report::ReportError),
}
