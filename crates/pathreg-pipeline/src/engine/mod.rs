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
    /// A relative estimate of the cell's work, which balances the cells
    /// over shards ([`Shard`]); cells of equal cost by default.
    fn cost(&self) -> f64 {
        1.0
    }
}

/// Shard `index` of `count` (0-based, as Slurm's `SLURM_ARRAY_TASK_ID`): a
/// run that computes only its share of every cell loop into the cache and
/// writes no outputs. Shards share nothing but the cache; the run that
/// assembles the outputs afterwards finds every cell cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard, `0 ≤ index < count`.
    pub index: usize,
    /// Shards in all, at least one.
    pub count: usize,
}

impl Shard {
    /// Which shard computes each cell: the longest-processing-time rule over
    /// the cells' [`Cell::cost`] (most costly first, ties in cell order, each
    /// to the least-loaded shard, ties to the lowest index). It depends only
    /// on the cells, so every shard derives the same assignment.
    pub fn assign(count: usize, costs: &[f64]) -> Vec<usize> {
        let count = count.max(1);
        let mut order: Vec<usize> = (0..costs.len()).collect();
        let cost = |i: usize| {
            let c = costs[i];
            if c.is_finite() && c > 0.0 { c } else { 1.0 }
        };
        order.sort_by(|a, b| cost(*b).total_cmp(&cost(*a)).then(a.cmp(b)));
        let mut load = vec![0.0f64; count];
        let mut owner = vec![0; costs.len()];
        for i in order {
            let lightest = (0..count)
                .min_by(|a, b| load[*a].total_cmp(&load[*b]).then(a.cmp(b)))
                .unwrap_or(0);
            owner[i] = lightest;
            load[lightest] += cost(i);
        }
        owner
    }
}

/// What one shard did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardSummary {
    /// Cells of this shard computed now.
    pub computed: usize,
    /// Cells found in the cache (this shard's, or others' it read).
    pub loaded: usize,
    /// Cells of other shards not yet in the cache (0: every cell of the
    /// experiment is cached, and the assembling run computes nothing).
    pub left_to_others: usize,
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
    shard: Option<Shard>,
    /// Cells of other shards found missing so far (shard runs only).
    left_to_others: usize,
}

impl<'o> Run<'o> {
    fn new(options: &'o RunOptions, shard: Option<Shard>) -> Self {
        Self {
            options,
            cache: Cache::new(options.cache_root.clone()),
            start: Instant::now(),
            stage_times: BTreeMap::new(),
            shard,
            left_to_others: 0,
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
            cells.par_iter().with_max_len(1).map(|c| one(c)).collect()
        })
    }

    /// The cell loop for cells whose wall time is a result: one cell at a
    /// time, each free to use every thread, in `cells` order.
    pub fn cells_in_turn<C: Cell>(
        &mut self,
        cells: &[C],
    ) -> Result<Vec<Computed<C::Output>>, PipelineError> {
        self.cell_loop(cells, |cells, one| cells.iter().map(|c| one(c)).collect())
    }

    /// Computes `cells` (in a shard run, only the shard's share: see
    /// [`Self::merge_shard`]) by `each`, through the cache.
    fn cell_loop<C: Cell>(
        &mut self,
        cells: &[C],
        each: impl FnOnce(
            &[&C],
            &(dyn Fn(&C) -> Result<Computed<C::Output>, PipelineError> + Sync),
        ) -> Result<Vec<Computed<C::Output>>, PipelineError>,
    ) -> Result<Vec<Computed<C::Output>>, PipelineError> {
        let owners = self.shard.map(|shard| {
            let costs: Vec<f64> = cells.iter().map(Cell::cost).collect();
            (shard.index, Shard::assign(shard.count, &costs))
        });
        let todo: Vec<&C> = match &owners {
            None => cells.iter().collect(),
            Some((index, owner)) => cells
                .iter()
                .zip(owner)
                .filter(|(_, o)| *o == index)
                .map(|(c, _)| c)
                .collect(),
        };
        let progress = &self.options.progress;
        progress(Progress::CellsStarted(todo.len()));
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
        let computed = each(&todo, &one)?;
        let results = match owners {
            None => Ok(computed),
            Some((index, owner)) => self.merge_shard(cells, index, &owner, computed),
        };
        self.record_time("cells", start.elapsed().as_secs_f64());
        results
    }

    /// A shard's results in `cells` order: its own, computed, and the other
    /// shards' from the cache. When one is not cached yet the kind cannot go
    /// on: the shard's work is done, and the run stops with
    /// [`PipelineError::ShardDone`]. When all are there the kind goes on to
    /// its next cell loop, which is sharded in turn.
    fn merge_shard<C: Cell>(
        &mut self,
        cells: &[C],
        index: usize,
        owner: &[usize],
        computed: Vec<Computed<C::Output>>,
    ) -> Result<Vec<Computed<C::Output>>, PipelineError> {
        let mut own = computed.into_iter();
        let mut results = Vec::with_capacity(cells.len());
        let mut missing = 0;
        for (cell, o) in cells.iter().zip(owner) {
            let found = if *o == index {
                own.next()
            } else {
                self.cache
                    .get(&cell.key(), |b| bincode::deserialize(b).ok())
                    .map(|value| Computed {
                        value,
                        cached: true,
                    })
            };
            match found {
                Some(result) => results.push(result),
                None => missing += 1,
            }
        }
        if missing > 0 {
            self.left_to_others += missing;
            return Err(PipelineError::ShardDone);
        }
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
    let mut run = Run::new(options, None);
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

/// Runs shard `shard` of `experiment`: its share of the cells into the
/// cache, no outputs, no run lock (shards of one experiment run at once, on
/// many hosts). Needs a cache.
pub fn execute_shard(
    experiment: &dyn Experiment,
    options: &RunOptions,
    shard: Shard,
) -> Result<ShardSummary, PipelineError> {
    if options.cache_root.is_none() {
        return Err(PipelineError::ShardWithoutCache);
    }
    if shard.count == 0 || shard.index >= shard.count {
        return Err(PipelineError::BadShard {
            index: shard.index,
            count: shard.count,
        });
    }
    let mut run = Run::new(options, Some(shard));
    match experiment.run(&mut run) {
        Ok(_) | Err(PipelineError::ShardDone) => {}
        Err(e) => return Err(e),
    }
    Ok(ShardSummary {
        computed: run.cache.stats.misses.load(Ordering::Relaxed),
        loaded: run.cache.stats.hits.load(Ordering::Relaxed),
        left_to_others: run.left_to_others,
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

#[cfg(test)]
mod tests {
    use super::Shard;

    #[test]
    fn shards_balance_by_cost_and_agree_on_the_assignment() {
        // Longest first: 8 → 0, 5 → 1, 4 → 1 (5 < 8), 3 → 0 or 1: loads 8 and 9, so 3 → 0.
        assert_eq!(Shard::assign(2, &[3.0, 8.0, 4.0, 5.0]), vec![0, 0, 1, 1]);
        // Equal costs go round in cell order.
        assert_eq!(Shard::assign(3, &[1.0; 5]), vec![0, 1, 2, 0, 1]);
        // One shard takes everything; bad costs count as one.
        assert_eq!(Shard::assign(1, &[2.0, f64::NAN]), vec![0, 0]);
        assert_eq!(Shard::assign(2, &[f64::NAN, -1.0, 0.0]), vec![0, 1, 0]);
    }
}
