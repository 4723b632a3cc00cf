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
//! - [`kinds`]: the registry and one folder per experiment kind;
//! - [`reproduction`]: the report over every experiment's outputs.

pub mod engine;
pub mod kinds;
pub mod manifest;
pub mod reproduction;
pub mod stages;

use std::path::{Path, PathBuf};

pub use engine::{
    Progress, RunOptions, RunSummary, Shard, ShardSummary, cache, results_lock as lock, seeds,
};
use manifest::ManifestFile;
pub use manifest::budget::Limits;

/// A manifest read and checked by its kind, ready to run.
pub struct Planned {
    kind: &'static kinds::Kind,
    experiment: Box<dyn engine::Experiment>,
    file: ManifestFile,
}

impl Planned {
    /// The experiment's name (its output folder).
    pub fn name(&self) -> &str {
        self.experiment.name()
    }

    /// The manifest it was read from.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Runs it and writes `outputs/<name>/`.
    pub fn run(&self, options: &RunOptions) -> Result<RunSummary, PipelineError> {
        engine::execute(
            self.experiment.as_ref(),
            self.kind.name,
            &self.file,
            options,
        )
    }

    /// Runs shard `shard` of it: that shard's cells into the cache, no outputs.
    pub fn run_shard(
        &self,
        options: &RunOptions,
        shard: Shard,
    ) -> Result<ShardSummary, PipelineError> {
        engine::execute_shard(self.experiment.as_ref(), options, shard)
    }

    /// Each cell's label and whether its result is in the cache at
    /// `cache_root`, computing cache keys only: no fits, and no downloads
    /// (data that is not in the data directory is an error that says so).
    pub fn list(&self, cache_root: &Path) -> Result<Vec<(String, bool)>, PipelineError> {
        self.experiment
            .list(&cache::Cache::new(Some(cache_root.to_path_buf())))
    }
}

/// Reads a manifest and checks it by its kind (limits enforced), without
/// running anything.
pub fn load_manifest(path: &Path) -> Result<Planned, PipelineError> {
    load_manifest_with(path, Limits::Enforced)
}

/// Reads a manifest and checks it by its kind and against `limits`.
pub fn load_manifest_with(path: &Path, limits: Limits) -> Result<Planned, PipelineError> {
    let file = ManifestFile::read(path)?;
    let kind = kinds::kind_of(&file)?;
    let experiment = (kind.load)(&file, limits)?;
    Ok(Planned {
        kind,
        experiment,
        file,
    })
}

/// Reads and checks every manifest before anything runs: each must be valid,
/// their names distinct, and `outputs_root/<name>` a folder or absent.
pub fn plan(
    paths: &[PathBuf],
    outputs_root: &Path,
    limits: Limits,
) -> Result<Vec<Planned>, PipelineError> {
    let mut planned: Vec<Planned> = Vec::with_capacity(paths.len());
    for path in paths {
        let next = load_manifest_with(path, limits)?;
        if let Some(first) = planned.iter().find(|p| p.name() == next.name()) {
            if first.path() == path.as_path() {
                return Err(PipelineError::ListedTwice(path.clone()));
            }
            return Err(PipelineError::DuplicateName {
                name: next.name().to_string(),
                first: first.path().to_path_buf(),
                second: path.clone(),
            });
        }
        engine::output::check_output_dir(&outputs_root.join(next.name()))?;
        planned.push(next);
    }
    Ok(planned)
}

/// Runs the manifest at `path` and writes `outputs/<name>/`.
pub fn run_manifest(path: &Path, options: &RunOptions) -> Result<RunSummary, PipelineError> {
    let planned = load_manifest(path)?;
    engine::output::check_output_dir(&options.outputs_root.join(planned.name()))?;
    planned.run(options)
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
    /// Two manifests of one run write the same output folder.
    #[error("{} and {} both have name = {name:?} (one output folder); rename one", first.display(), second.display())]
    DuplicateName {
        /// The shared name.
        name: String,
        /// The first manifest.
        first: PathBuf,
        /// The second manifest.
        second: PathBuf,
    },
    /// One manifest given twice to one run.
    #[error("{} is listed twice", .0.display())]
    ListedTwice(PathBuf),
    /// The output folder's path is taken by something that is not a folder.
    #[error("{}: exists and is not a folder; move it away to write the results there", .0.display())]
    OutputNotAFolder(PathBuf),
    /// The output folder's path is a folder pathreg did not write.
    #[error("{}: a folder that pathreg did not write (no .pathreg-output marker); move it away or choose another name", .0.display())]
    OutputNotOurs(PathBuf),
    /// `verify` found no lock file.
    #[error("{}: no lock file; record one with `cargo xtask run --update-lock <manifest>…`", .0.display())]
    NoLock(PathBuf),
    /// `clean` was pointed at a folder without the cache marker.
    #[error("{}: not a pathreg cache (no CACHEDIR.TAG marker of this format); refusing to delete anything", path.display())]
    NotACache {
        /// The folder.
        path: PathBuf,
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
    /// An images cell asked for what its method lacks (an optimizer of
    /// `convex_admm`, or its `[constrained]` table).
    #[error("{0}")]
    MethodMismatch(String),
    /// A cell that trains was asked to compute without its data loaded.
    #[error("{0}: its data was not loaded")]
    MissingData(String),
    /// A stage of a layerwise stack left nothing to pass on.
    #[error(
        "stage {stage} of the stack has no features to pass on: {reason} (raise its learning rate or epochs, or lower β)"
    )]
    DeadStage {
        /// 1-based.
        stage: usize,
        /// What was found.
        reason: String,
    },
    /// A file the reproduction report reads is not what a run writes.
    #[error("{}: {reason}", path.display())]
    ReportInput {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Internal: a shard finished its share of a cell loop whose other cells
    /// are not cached yet, so the kind cannot go on (never shown: the shard
    /// run reports its summary).
    #[error("this shard's cells are done; the others are left to their shards")]
    ShardDone,
    /// `--shard` without a cache to put the results in.
    #[error(
        "a shard run needs a cache (drop --no-cache): its results reach the assembling run only through it"
    )]
    ShardWithoutCache,
    /// A shard outside `0..count`.
    #[error("shard {index}/{count} does not exist: shards are numbered 0 to count − 1 (count ≥ 1)")]
    BadShard {
        /// The index asked for.
        index: usize,
        /// The count asked for.
        count: usize,
    },
    /// A non-convex run ended below the certified optimum: a bug in the
    /// solver, the certificate or the objective, never a result.
    #[error(
        "{run} reached objective {objective:e}, below the certified lower bound {lower_bound:e} of the convex program over every arrangement; this is a bug (please report it)"
    )]
    BelowOptimum {
        /// Which run.
        run: String,
        /// Its final objective.
        objective: f64,
        /// The certified lower bound.
        lower_bound: f64,
    },
    /// A listing needs data that is not in the data directory (`list` never downloads).
    #[error("{dataset} is not in the data directory {} ({reason}); fetch it with `cargo xtask fetch {dataset}`", data_dir.display())]
    DataNotLocal {
        /// The registry name.
        dataset: String,
        /// Where it was looked for.
        data_dir: PathBuf,
        /// What the data crate said.
        reason: String,
    },
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
