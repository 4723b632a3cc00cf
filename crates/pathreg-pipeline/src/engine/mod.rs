//! The experiment engine: everything a run needs whatever its kind — the
//! content-addressed cache, the run lock, seeds, result hashing, provenance,
//! the staged output folder, progress, and the cell loop
//! (cells → parallel cached computation → rows → hashes → folder → summary).
//!
//! The engine never names an experiment kind. A kind (see `crate::kinds`)
//! implements [`Experiment`]: it turns its validated manifest into cells
//! ([`Cell`]), asks [`Run::cells`] to compute them, and hands the engine a
//! [`Report`]: its rows to hash, its run.json details and its writer.

pub mod cache;
pub mod hashing;
pub mod output;
pub mod provenance;
pub mod results_lock;
pub mod run_lock;
pub mod seeds;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::PipelineError;
use crate::manifest::ManifestFile;
use cache::{Cache, CacheKey};
use hashing::{HashInput, RowHash, hash_rows};
use provenance::{Identity, Provenance};

/// Progress events, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A stage before the cells started.
    Stage(String),
    /// How far a long stage (e.g. exact enumeration) has come: done of total.
    StageStep {
        /// The stage.
        stage: String,
        /// Units done.
        done: usize,
        /// Units in all.
        total: usize,
    },
    /// The cells are about to run.
    CellsStarted(usize),
    /// One cell finished (computed or loaded from the cache).
    CellDone(String),
}

/// Where to write and whom to tell.
pub struct RunOptions {
    /// Folder holding one sub-folder per experiment (normally `<workspace>/outputs`).
    pub outputs_root: PathBuf,
    /// The workspace root, for provenance (git commit, Cargo.lock versions).
    pub workspace_root: PathBuf,
    /// The cache folder; `None` disables caching (`--no-cache`).
    pub cache_root: Option<PathBuf>,
    /// Called from worker threads as the run advances.
    pub progress: Box<dyn Fn(Progress) + Sync>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// `outputs/<name>`.
    pub output_dir: PathBuf,
    /// SHA-256 of all results without timings, floats by their exact bits.
    pub result_hash: String,
    /// SHA-256 of all results with floats rounded to [`hashing::ROUNDED_DIGITS`] significant digits.
    pub rounded_hash: String,
    /// Per-row hashes, for the lock file and `verify`'s diff.
    pub rows: Vec<RowHash>,
    /// Number of result rows.
    pub cells: usize,
    /// Cache entries loaded.
    pub cache_hits: usize,
    /// Cache entries computed.
    pub cache_misses: usize,
    /// Wall time, seconds.
    pub wall_s: f64,
}

/// A validated experiment of some kind, ready to run.
pub trait Experiment {
    /// The output folder name under `outputs/`.
    fn name(&self) -> &str;
    /// The master seed, if the kind has one (recorded in run.json).
    fn seed(&self) -> Option<u64>;
    /// Computes the experiment's cells through `run` and returns what to report.
    fn run<'a>(&'a self, run: &mut Run<'_>) -> Result<Report<'a>, PipelineError>;
    /// Every cell's label and whether its result is in `cache`, computing keys only.
    fn list(&self, cache: &Cache) -> Result<Vec<(String, bool)>, PipelineError>;
}

/// One unit of cached work: a key that names everything its result depends on.
pub trait Cell: Sync {
    /// The cached result (bincode-encoded in the cache).
    type Output: Serialize + DeserializeOwned + Send;
    /// The content key of the result.
    fn key(&self) -> CacheKey;
    /// A human-readable label (progress, `list`).
    fn label(&self) -> String;
    /// Computes the result; `cache` serves the stages the cell reuses.
    fn compute(&self, cache: &Cache) -> Result<Self::Output, PipelineError>;
}

/// A cell's result and whether it came from the cache.
pub struct Computed<T> {
    /// The result.
    pub value: T,
    /// Loaded from the cache rather than computed.
    pub cached: bool,
}

/// What a kind reports at the end of a run.
pub struct Report<'a> {
    /// Every result row's hash input, in row order.
    pub rows: Vec<HashInput>,
    /// The kind's own run.json fields (an object), after the common ones.
    pub details: serde_json::Value,
    /// Writes the kind's tables and figures into the staging folder.
    pub write: WriteOutputs<'a>,
}

/// A kind's writer of its tables and figures into the staging folder.
pub type WriteOutputs<'a> = Box<dyn FnOnce(&Path) -> Result<(), PipelineError> + 'a>;

/// One run in progress: its options, cache, stage timings and clock.
pub struct Run<'o> {
    options: &'o RunOptions,
    cache: Cache,
    start: Instant,
    stage_times: BTreeMap<String, f64>,
}

impl<'o> Run<'o> {
    fn new(options: &'o RunOptions) -> Self {
        Self {
            options,
            cache: Cache::new(options.cache_root.clone()),
            start: Instant::now(),
            stage_times: BTreeMap::new(),
        }
    }

    /// The run's cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Seconds since the run started.
    pub fn elapsed_s(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Runs a stage before the cells, reporting progress and timing it.
    pub fn stage<T>(
        &mut self,
        name: &str,
        work: impl FnOnce(&Run<'o>) -> Result<T, PipelineError>,
    ) -> Result<T, PipelineError> {
        (self.options.progress)(Progress::Stage(name.to_string()));
        let start = Instant::now();
        let value = work(self)?;
        self.record_time(name, start.elapsed().as_secs_f64());
        Ok(value)
    }

    /// Reports how far the stage `stage` has come (at most about a hundred
    /// reports per stage reach the listener).
    pub fn step(&self, stage: &str, done: usize, total: usize) {
        let every = (total / 100).max(1);
        if done.is_multiple_of(every) || done == total {
            (self.options.progress)(Progress::StageStep {
                stage: stage.to_string(),
                done,
                total,
            });
        }
    }

    /// Records (adds to) a stage's time, seconds.
    pub fn record_time(&mut self, stage: &str, seconds: f64) {
        *self.stage_times.entry(stage.to_string()).or_default() += seconds;
    }

    /// The cell loop: computes every cell in parallel (one cell per task),
    /// each through the cache, and returns the results in `cells` order, so
    /// they do not depend on the thread count.
    pub fn cells<C: Cell>(
        &mut self,
        cells: &[C],
    ) -> Result<Vec<Computed<C::Output>>, PipelineError> {
        self.cell_loop(cells, |cells, one| {
            cells.par_iter().with_max_len(1).map(one).collect()
        })
    }

    /// The cell loop for cells whose wall time is a result: one cell at a
    /// time, each free to use every thread, in `cells` order.
    pub fn cells_in_turn<C: Cell>(
        &mut self,
        cells: &[C],
    ) -> Result<Vec<Computed<C::Output>>, PipelineError> {
        self.cell_loop(cells, |cells, one| cells.iter().map(one).collect())
    }

    fn cell_loop<C: Cell>(
        &mut self,
        cells: &[C],
        each: impl FnOnce(
            &[C],
            &(dyn Fn(&C) -> Result<Computed<C::Output>, PipelineError> + Sync),
        ) -> Result<Vec<Computed<C::Output>>, PipelineError>,
    ) -> Result<Vec<Computed<C::Output>>, PipelineError> {
        let progress = &self.options.progress;
        progress(Progress::CellsStarted(cells.len()));
        let start = Instant::now();
        let cache = &self.cache;
        let one = |cell: &C| {
            let (value, cached) = cache.get_or_compute(
                &cell.key(),
                |v: &C::Output| bincode::serialize(v).unwrap_or_default(),
                |b| bincode::deserialize(b).ok(),
                || cell.compute(cache),
            )?;
            progress(Progress::CellDone(cell.label()));
            Ok(Computed { value, cached })
        };
        let results = each(cells, &one)?;
        self.record_time("cells", start.elapsed().as_secs_f64());
        Ok(results)
    }
}

/// Every cell's label and whether it is cached, for [`Experiment::list`].
pub fn list_cells<C: Cell>(cache: &Cache, cells: &[C]) -> Vec<(String, bool)> {
    cells
        .iter()
        .map(|c| (c.label(), cache.contains(&c.key())))
        .collect()
}

/// Runs `experiment` (from `manifest`, of the registry kind `kind`) under its
/// run lock and writes `outputs/<name>/`: the kind's files plus run.json.
pub fn execute(
    experiment: &dyn Experiment,
    kind: &'static str,
    manifest: &ManifestFile,
    options: &RunOptions,
) -> Result<RunSummary, PipelineError> {
    output::check_output_dir(&options.outputs_root.join(experiment.name()))?;
    let _lock = run_lock::RunLock::acquire(&options.outputs_root, experiment.name())?;
    let mut run = Run::new(options);
    let report = experiment.run(&mut run)?;
    let hashes = hash_rows(&report.rows);
    let identity = Identity {
        name: experiment.name(),
        kind,
        seed: experiment.seed(),
    };
    let provenance = Provenance::collect(
        &identity,
        manifest,
        &hashes,
        &options.workspace_root,
        &run.cache,
        run.stage_times.clone(),
        run.elapsed_s(),
    );
    let run_json = run_json(&provenance, report.details)?;
    let output_dir = options.outputs_root.join(experiment.name());
    let write = report.write;
    output::write_folder(&output_dir, |staging| {
        write(staging)?;
        output::write_json(&staging.join("run.json"), &run_json)
    })?;
    Ok(RunSummary {
        output_dir,
        result_hash: hashes.exact,
        rounded_hash: hashes.rounded,
        cells: hashes.rows.len(),
        rows: hashes.rows,
        cache_hits: run.cache.stats.hits.load(Ordering::Relaxed),
        cache_misses: run.cache.stats.misses.load(Ordering::Relaxed),
        wall_s: run.elapsed_s(),
    })
}

/// The common provenance fields, then the kind's details.
fn run_json(
    provenance: &Provenance,
    details: serde_json::Value,
) -> Result<serde_json::Value, PipelineError> {
    let json_error = |source| PipelineError::Json {
        path: PathBuf::from("run.json"),
        source,
    };
    let mut object = match serde_json::to_value(provenance).map_err(json_error)? {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    if let serde_json::Value::Object(extra) = details {
        object.extend(extra);
    }
    Ok(serde_json::Value::Object(object))
}
