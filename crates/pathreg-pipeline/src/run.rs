//! Running one manifest: data → arrangements → cells (convex and non-convex
//! fits, in parallel, each a cached stage) → outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use pathreg_core::{ArrangementMode, ArrangementSet, ParallelNetwork, Regularizer};
use pathreg_data::Dataset;
use pathreg_data::csv_file::read_csv;
use pathreg_data::synthetic::{low_rank_teacher_data, teacher_data};
use pathreg_solvers::{TrainSettings, solve_certified, train};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cache::{Cache, CacheKey};
use crate::manifest::{
    self, ConvexSpec, DataSpec, Experiment, ModelSpec, NonconvexSpec, Point, SweepValue,
};
use crate::seeds::derive_seed;
use crate::{PipelineError, outputs, provenance};

/// Progress events, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A stage before the cells started.
    Stage(String),
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
    /// SHA-256 of all results with floats rounded to [`outputs::ROUNDED_DIGITS`] significant digits.
    pub rounded_hash: String,
    /// Per-row hashes, for the lock file and `verify`'s diff.
    pub rows: Vec<outputs::RowHash>,
    /// Number of result rows.
    pub cells: usize,
    /// Cache entries loaded / computed.
    pub cache_hits: usize,
    /// Cache entries computed.
    pub cache_misses: usize,
    /// Wall time, seconds.
    pub wall_s: f64,
}

impl RunSummary {
    /// The summary of a finished run: its hashes, row count and cache use.
    pub(crate) fn new(
        output_dir: PathBuf,
        hashes: outputs::Hashes,
        cells: usize,
        cache: &Cache,
        start: Instant,
    ) -> Self {
        Self {
            output_dir,
            result_hash: hashes.exact,
            rounded_hash: hashes.rounded,
            rows: hashes.rows,
            cells,
            cache_hits: cache.stats.hits.load(Ordering::Relaxed),
            cache_misses: cache.stats.misses.load(Ordering::Relaxed),
            wall_s: start.elapsed().as_secs_f64(),
        }
    }
}

/// One fitted model as stored in the cache (no sweep coordinates).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Fit {
    pub method: String,
    pub seed: u64,
    pub objective: f64,
    pub loss: f64,
    pub regularizer: f64,
    pub time_s: f64,
    pub status: String,
    pub iterations: u64,
    pub subnetworks: usize,
    pub curve: Vec<(usize, f64)>,
    pub convex: Option<ConvexDetails>,
}

/// One row of results.csv: a fit placed at a sweep point.
#[derive(Debug, Clone)]
pub(crate) struct CellResult {
    pub point: usize,
    pub coords: Vec<(String, SweepValue)>,
    pub k: usize,
    pub run: usize,
    pub fit: Fit,
    pub cached: bool,
}

/// What run.json records about a convex solve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ConvexDetails {
    pub solver_status: String,
    pub arrangement_count: usize,
    pub primal_objective: f64,
    pub dual_lower_bound: f64,
    pub duality_gap: f64,
    pub relative_gap: f64,
    pub max_dual_ratio: f64,
    pub triples_checked: usize,
    pub working_set_rounds: usize,
    pub working_set_size: usize,
    pub interior_point_iterations: u32,
    pub active_subnetworks: usize,
    pub mapped_objective: f64,
    pub mapped_relative_difference: f64,
    pub max_constraint_violation: f64,
}

/// A dataset used by some sweep points.
pub(crate) struct PreparedData {
    pub dataset: Dataset,
    pub seed: u64,
    pub sha256: String,
}

/// An arrangement set used by some sweep points.
pub(crate) struct PreparedArrangements {
    pub set: ArrangementSet,
    pub key: CacheKey,
    pub seed: Option<u64>,
    pub cached: bool,
}

/// Everything the cells share.
pub(crate) struct Prepared {
    pub experiment: Experiment,
    pub manifest_text: String,
    pub manifest_path: PathBuf,
    pub data: Vec<PreparedData>,
    pub arrangements: Vec<PreparedArrangements>,
    /// Per point: index into `data` and into `arrangements`.
    pub point_inputs: Vec<(usize, usize)>,
    pub stage_times: BTreeMap<String, f64>,
}

/// Relative agreement required between the convex optimum and the objective
/// (4) of its Proposition 1 network.
const MAP_TOLERANCE: f64 = 1e-6;

/// Cache schema versions: bump when a stage's code changes what it computes.
const ARRANGEMENTS_VERSION: u32 = 1;
const CONVEX_VERSION: u32 = 1;
const NONCONVEX_VERSION: u32 = 1;

enum Job {
    Convex {
        point: usize,
    },
    Nonconvex {
        point: usize,
        k: usize,
        run: usize,
        seed: u64,
    },
}

/// Runs the manifest at `path` and writes `outputs/<name>/`.
pub fn run_manifest(path: &Path, options: &RunOptions) -> Result<RunSummary, PipelineError> {
    let start = Instant::now();
    let (experiment, manifest_text) = match manifest::load_any(path)? {
        (manifest::AnyExperiment::Fits(e), text) => (*e, text),
        (manifest::AnyExperiment::Spectrum(e), text) => {
            let _lock = lock_experiment(&options.outputs_root, &e.name)?;
            return crate::spectrum::run(e, text, path, options, start);
        }
        (manifest::AnyExperiment::Classification(e), text) => {
            let _lock = lock_experiment(&options.outputs_root, &e.name)?;
            return crate::classification::run(*e, text, path, options, start);
        }
    };
    let _lock = lock_experiment(&options.outputs_root, &experiment.name)?;
    if experiment.kind == manifest::ExperimentKind::LowRank {
        return crate::lowrank::run(experiment, manifest_text, path, options, start);
    }
    let cache = Cache::new(options.cache_root.clone());
    let prepared = prepare(experiment, manifest_text, path, &cache, options)?;

    let (jobs, keys) = jobs(&prepared);
    (options.progress)(Progress::CellsStarted(jobs.len()));
    let cells_start = Instant::now();
    let fits: Vec<(Fit, bool)> = jobs
        .par_iter()
        .zip(keys.par_iter())
        .map(|(job, key)| {
            let result = cache.get_or_compute(key, encode, decode, || run_job(&prepared, job));
            if result.is_ok() {
                (options.progress)(Progress::CellDone(job_label(&prepared, job)));
            }
            result
        })
        .collect::<Result<_, _>>()?;
    let mut stage_times = prepared.stage_times.clone();
    stage_times.insert("cells".into(), cells_start.elapsed().as_secs_f64());
    let results = assemble(&prepared, &jobs, fits);

    let hashes = outputs::hashes(&results);
    let output_dir = options.outputs_root.join(&prepared.experiment.name);
    let run_info = provenance::RunInfo::collect(
        &prepared,
        &results,
        &hashes,
        &options.workspace_root,
        &cache,
        stage_times,
        start,
    );
    outputs::write_all(&output_dir, &prepared, &results, &run_info)?;
    Ok(RunSummary::new(
        output_dir,
        hashes,
        results.len(),
        &cache,
        start,
    ))
}

/// Holds an exclusive lock on `outputs/.<name>.lock` for the whole run, so two
/// runs of one experiment never interleave their output swaps.
fn lock_experiment(outputs_root: &Path, name: &str) -> Result<std::fs::File, PipelineError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PipelineError::Io { path, source }
    };
    std::fs::create_dir_all(outputs_root).map_err(io(outputs_root))?;
    let path = outputs_root.join(format!(".{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    file.lock().map_err(io(&path))?;
    Ok(file)
}

fn encode(fit: &Fit) -> Vec<u8> {
    bincode::serialize(fit).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Option<Fit> {
    bincode::deserialize(bytes).ok()
}

/// Figure 4's kept rank `r = max(1, ⌊f·d⌋)`.
pub(crate) fn low_rank(d: usize, fraction: f64) -> usize {
    ((fraction * d as f64).floor() as usize).max(1)
}

pub(crate) fn data_seed(experiment: &Experiment, point: &Point) -> u64 {
    match point.data_tag {
        None => derive_seed(experiment.seed, &["data"]),
        Some(tag) => derive_seed(experiment.seed, &["data", &tag.to_string()]),
    }
}

fn prepare_data(experiment: &Experiment) -> Result<(Vec<PreparedData>, Vec<usize>), PipelineError> {
    let mut data: Vec<PreparedData> = Vec::new();
    let mut data_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut point_data = Vec::new();
    for point in &experiment.points {
        let seed = data_seed(experiment, point);
        let id = serde_json::to_string(&(&point.data, seed)).unwrap_or_default();
        let index = match data_index.get(&id) {
            Some(&i) => i,
            None => {
                let dataset = match &point.data {
                    DataSpec::Teacher {
                        n,
                        d,
                        teacher,
                        noise,
                        rank_fraction: None,
                    } => teacher_data(*n, *d, *teacher, *noise, seed)?.0,
                    DataSpec::Teacher {
                        n,
                        d,
                        teacher,
                        noise,
                        rank_fraction: Some(f),
                    } => low_rank_teacher_data(*n, *d, low_rank(*d, *f), *teacher, *noise, seed)?.0,
                    DataSpec::Csv { path } => read_csv(path)?,
                    DataSpec::Dataset {
                        name,
                        split,
                        preprocess,
                    } => load_named(name, split, preprocess, seed)?,
                };
                let sha256 = hex::encode(Sha256::digest(dataset.to_csv().as_bytes()));
                data.push(PreparedData {
                    dataset,
                    seed,
                    sha256,
                });
                data_index.insert(id, data.len() - 1);
                data.len() - 1
            }
        };
        point_data.push(index);
    }
    Ok((data, point_data))
}

/// The training rows of a pinned dataset, fetched on first use.
fn load_named(
    name: &str,
    split: &str,
    preprocess: &str,
    seed: u64,
) -> Result<Dataset, PipelineError> {
    use pathreg_data::split::{Preprocess, Split};
    let mut config = pathreg_data::registry::DataConfig::from_env();
    config.seed = seed;
    config.split = match split {
        "official" => Some(Split::Official),
        "conxuntos" => Some(Split::UciConxuntos),
        "all" => Some(Split::None),
        _ => None,
    };
    config.preprocess = match preprocess {
        "center" => Preprocess::Center,
        "standardize" => Preprocess::Standardize,
        _ => Preprocess::None,
    };
    Ok(pathreg_data::registry::load(name, &config)?.train)
}

/// The arrangements' cache key and, in sampled mode, their seed.
fn arrangement_key(
    experiment: &Experiment,
    point: &Point,
    data_sha256: &str,
) -> (CacheKey, Option<u64>) {
    let sampled_seed = (point.arrangements.mode == ArrangementMode::Sampled).then(|| {
        let tag = point.data_tag.map(|t| t.to_string()).unwrap_or_default();
        derive_seed(experiment.seed, &["arrangements", &tag])
    });
    let params = serde_json::json!({
        "mode": point.arrangements.mode,
        "m1": point.model.m1,
        "draws": sampled_seed.map(|_| point.arrangements.draws),
        "seed": sampled_seed,
    });
    (
        CacheKey::new(
            "arrangements",
            ARRANGEMENTS_VERSION,
            &params,
            &[data_sha256],
        ),
        sampled_seed,
    )
}

fn prepare(
    experiment: Experiment,
    manifest_text: String,
    path: &Path,
    cache: &Cache,
    options: &RunOptions,
) -> Result<Prepared, PipelineError> {
    let mut stage_times = BTreeMap::new();
    (options.progress)(Progress::Stage("data".into()));
    let data_start = Instant::now();
    let (data, point_data) = prepare_data(&experiment)?;
    stage_times.insert("data".into(), data_start.elapsed().as_secs_f64());

    (options.progress)(Progress::Stage("arrangements".into()));
    let arrangement_start = Instant::now();
    let mut arrangements: Vec<PreparedArrangements> = Vec::new();
    let mut point_inputs = Vec::new();
    for (point, &di) in experiment.points.iter().zip(&point_data) {
        let d = &data[di];
        let (key, sampled_seed) = arrangement_key(&experiment, point, &d.sha256);
        let ai = match arrangements.iter().position(|a| a.key == key) {
            Some(i) => i,
            None => {
                let x = d.dataset.x.view();
                let m1 = point.model.m1;
                let draws = point.arrangements.draws;
                let (set, cached) = cache.get_or_compute(
                    &key,
                    ArrangementSet::to_bytes,
                    |b| ArrangementSet::from_bytes(b).ok(),
                    || {
                        Ok(match sampled_seed {
                            None => ArrangementSet::enumerate_exact(x, m1)?,
                            Some(seed) => ArrangementSet::sample(
                                x,
                                m1,
                                draws,
                                &mut ChaCha8Rng::seed_from_u64(seed),
                            )?,
                        })
                    },
                )?;
                if set.n() != d.dataset.n() || set.m1() != m1 {
                    return Err(PipelineError::Verification(format!(
                        "cached arrangements {} do not match the data",
                        key.hash
                    )));
                }
                arrangements.push(PreparedArrangements {
                    set,
                    key,
                    seed: sampled_seed,
                    cached,
                });
                arrangements.len() - 1
            }
        };
        point_inputs.push((di, ai));
    }
    stage_times.insert(
        "arrangements".into(),
        arrangement_start.elapsed().as_secs_f64(),
    );
    Ok(Prepared {
        experiment,
        manifest_text,
        manifest_path: path.to_path_buf(),
        data,
        arrangements,
        point_inputs,
        stage_times,
    })
}

fn convex_key(prepared: &Prepared, point: usize) -> CacheKey {
    let p = &prepared.experiment.points[point];
    let (di, ai) = prepared.point_inputs[point];
    let params = serde_json::json!({
        "model": ModelParams::from(&p.model),
        "convex": prepared.experiment.convex,
        "map_tolerance": MAP_TOLERANCE,
    });
    CacheKey::new(
        "convex",
        CONVEX_VERSION,
        &params,
        &[
            &prepared.data[di].sha256,
            &prepared.arrangements[ai].key.hash,
        ],
    )
}

#[derive(Serialize)]
struct ModelParams {
    m1: usize,
    m2: usize,
    beta: f64,
    loss: pathreg_core::Loss,
}

impl From<&ModelSpec> for ModelParams {
    fn from(m: &ModelSpec) -> Self {
        Self {
            m1: m.m1,
            m2: m.m2,
            beta: m.beta,
            loss: m.loss,
        }
    }
}

fn nonconvex_seed(experiment: &Experiment, point: &Point, k: usize, run: usize) -> u64 {
    let mut parts = vec!["nonconvex".to_string(), k.to_string(), run.to_string()];
    parts.extend(
        point
            .coords
            .iter()
            .filter(|(key, _)| key != "K")
            .map(|(key, v)| format!("{key}={v}")),
    );
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    derive_seed(experiment.seed, &refs)
}

/// The unique jobs of the run (convex fits shared by points with equal keys),
/// in a fixed order, with their cache keys.
fn jobs(prepared: &Prepared) -> (Vec<Job>, Vec<CacheKey>) {
    let mut jobs = Vec::new();
    let mut keys: Vec<CacheKey> = Vec::new();
    for (pi, point) in prepared.experiment.points.iter().enumerate() {
        let key = convex_key(prepared, pi);
        if !keys.contains(&key) {
            jobs.push(Job::Convex { point: pi });
            keys.push(key);
        }
        if let (Some(nc), Some(k)) = (&point.nonconvex, point.k) {
            let (di, _) = prepared.point_inputs[pi];
            for run in 1..=nc.runs {
                let seed = nonconvex_seed(&prepared.experiment, point, k, run);
                let params = serde_json::json!({
                    "model": ModelParams::from(&point.model),
                    "nonconvex": NonconvexParams::from(nc),
                    "K": k,
                    "seed": seed,
                    "init": "lecun_normal",
                });
                keys.push(CacheKey::new(
                    "nonconvex",
                    NONCONVEX_VERSION,
                    &params,
                    &[&prepared.data[di].sha256],
                ));
                jobs.push(Job::Nonconvex {
                    point: pi,
                    k,
                    run,
                    seed,
                });
            }
        }
    }
    (jobs, keys)
}

#[derive(Serialize)]
struct NonconvexParams {
    optimizer: pathreg_solvers::Optimizer,
    epochs: usize,
    batch_size: usize,
    regularizer: Regularizer,
    record_every: usize,
}

impl From<&NonconvexSpec> for NonconvexParams {
    fn from(nc: &NonconvexSpec) -> Self {
        Self {
            optimizer: nc.optimizer,
            epochs: nc.epochs,
            batch_size: nc.batch_size,
            regularizer: nc.regularizer,
            record_every: nc.record_every,
        }
    }
}

fn job_label(prepared: &Prepared, job: &Job) -> String {
    match job {
        Job::Convex { point } => format!(
            "convex {}",
            prepared.experiment.points[*point].group_label()
        )
        .trim_end()
        .to_string(),
        Job::Nonconvex { point, k, run, .. } => format!(
            "{} K={k} run {run} {}",
            prepared.experiment.points[*point]
                .nonconvex
                .map_or("", |nc| nc.optimizer.name()),
            prepared.experiment.points[*point].group_label()
        )
        .trim_end()
        .to_string(),
    }
}

fn run_job(prepared: &Prepared, job: &Job) -> Result<Fit, PipelineError> {
    match job {
        Job::Convex { point } => run_convex(prepared, *point),
        Job::Nonconvex {
            point,
            k,
            run: _,
            seed,
        } => run_nonconvex(prepared, *point, *k, *seed),
    }
}

/// Places every fit at its sweep points: one convex row per point (shared
/// fits repeat), then the non-convex runs.
fn assemble(prepared: &Prepared, jobs: &[Job], fits: Vec<(Fit, bool)>) -> Vec<CellResult> {
    let mut convex_of_point: BTreeMap<usize, usize> = BTreeMap::new();
    let convex_keys: Vec<(usize, CacheKey)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(j, job)| match job {
            Job::Convex { point } => Some((j, convex_key(prepared, *point))),
            Job::Nonconvex { .. } => None,
        })
        .collect();
    for pi in 0..prepared.experiment.points.len() {
        let key = convex_key(prepared, pi);
        if let Some((j, _)) = convex_keys.iter().find(|(_, k)| *k == key) {
            convex_of_point.insert(pi, *j);
        }
    }
    let mut rows = Vec::new();
    for (pi, point) in prepared.experiment.points.iter().enumerate() {
        let k = point.k.unwrap_or(0);
        if let Some(&j) = convex_of_point.get(&pi) {
            let (fit, cached) = &fits[j];
            rows.push(CellResult {
                point: pi,
                coords: point.coords.clone(),
                k,
                run: 1,
                fit: fit.clone(),
                cached: *cached,
            });
        }
        for (j, job) in jobs.iter().enumerate() {
            if let Job::Nonconvex { point: jp, run, .. } = job
                && *jp == pi
            {
                let (fit, cached) = &fits[j];
                rows.push(CellResult {
                    point: pi,
                    coords: point.coords.clone(),
                    k,
                    run: *run,
                    fit: fit.clone(),
                    cached: *cached,
                });
            }
        }
    }
    rows
}

fn run_convex(prepared: &Prepared, point: usize) -> Result<Fit, PipelineError> {
    let p = &prepared.experiment.points[point];
    let convex: &ConvexSpec = &prepared.experiment.convex;
    let (di, ai) = prepared.point_inputs[point];
    let dataset = &prepared.data[di].dataset;
    let arrangements = &prepared.arrangements[ai].set;
    let (x, y) = (dataset.x.view(), dataset.y.view());
    let settings = convex.working_set_settings();
    let solved = solve_certified(x, y, arrangements, p.model.beta, p.model.m2, &settings)?;
    let solution = &solved.last.solution;
    let objective = solution.objective(x, y, p.model.beta, p.model.m2);
    let network: ParallelNetwork = solution.to_network(p.model.m2, 0.0)?;
    let mapped = network.objective(x, y, p.model.loss, p.model.beta, Regularizer::Path)?;
    let mapped_relative_difference = (mapped.objective - objective.objective).abs()
        / objective.objective.abs().max(f64::MIN_POSITIVE);
    if mapped_relative_difference > MAP_TOLERANCE {
        return Err(PipelineError::Verification(format!(
            "Proposition 1 network objective {} differs from the convex optimum {} by {mapped_relative_difference:e} (relative)",
            mapped.objective, objective.objective
        )));
    }
    let cert = solved.certificate;
    let certified = cert.max_ratio <= 1.0 + 1e-6 && cert.relative_gap <= 1e-6;
    let status = match (certified, arrangements.mode()) {
        (true, ArrangementMode::Exact) => "certified_global_optimum",
        (true, ArrangementMode::Sampled) => "optimal_for_sampled_arrangements",
        (false, _) => "uncertified",
    };
    let active = solution.active_groups(1e-6);
    Ok(Fit {
        method: "convex".into(),
        seed: 0,
        objective: objective.objective,
        loss: objective.loss,
        regularizer: objective.regularizer,
        time_s: solved.time_s,
        status: status.into(),
        iterations: u64::from(solved.total_iterations),
        subnetworks: active,
        curve: Vec::new(),
        convex: Some(ConvexDetails {
            solver_status: solved.last.status.clone(),
            arrangement_count: arrangements.len(),
            primal_objective: cert.primal,
            dual_lower_bound: cert.dual,
            duality_gap: cert.gap,
            relative_gap: cert.relative_gap,
            max_dual_ratio: cert.max_ratio,
            triples_checked: cert.triples_checked,
            working_set_rounds: solved.rounds,
            working_set_size: solved.working_set,
            interior_point_iterations: solved.total_iterations,
            active_subnetworks: active,
            mapped_objective: mapped.objective,
            mapped_relative_difference,
            max_constraint_violation: solution.max_constraint_violation(x),
        }),
    })
}

fn run_nonconvex(
    prepared: &Prepared,
    point: usize,
    k: usize,
    seed: u64,
) -> Result<Fit, PipelineError> {
    let p = &prepared.experiment.points[point];
    let Some(nc) = &p.nonconvex else {
        return Err(PipelineError::Verification(
            "non-convex cell without settings".into(),
        ));
    };
    let (di, _) = prepared.point_inputs[point];
    let dataset = &prepared.data[di].dataset;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let init = ParallelNetwork::lecun_normal(&mut rng, k, dataset.d(), p.model.m1, p.model.m2);
    let settings = TrainSettings {
        optimizer: nc.optimizer,
        epochs: nc.epochs,
        batch_size: nc.batch_size,
        loss: p.model.loss,
        beta: p.model.beta,
        regularizer: nc.regularizer,
        record_every: nc.record_every,
        stop_at_full_accuracy: false,
    };
    let result = train(
        dataset.x.view(),
        dataset.y.view(),
        init,
        &settings,
        &mut rng,
    )?;
    let fin = result.final_objective;
    Ok(Fit {
        method: nc.optimizer.name().into(),
        seed,
        objective: fin.objective,
        loss: fin.loss,
        regularizer: fin.regularizer,
        time_s: result.time_s,
        status: if fin.objective.is_finite() {
            "completed"
        } else {
            "diverged"
        }
        .into(),
        iterations: nc.epochs as u64,
        subnetworks: k,
        curve: result.curve,
        convex: None,
    })
}

/// Each job's label and whether its result is in the cache at `cache_root`
/// (for `cargo xtask list`). Computes cache keys only: no arrangements, no fits.
pub fn cached_cells(path: &Path, cache_root: &Path) -> Result<Vec<(String, bool)>, PipelineError> {
    let (experiment, manifest_text) = match manifest::load_any(path)? {
        (manifest::AnyExperiment::Fits(e), text) => (*e, text),
        (manifest::AnyExperiment::Spectrum(e), _) => {
            return crate::spectrum::cached(&e, cache_root);
        }
        (manifest::AnyExperiment::Classification(e), _) => {
            return crate::classification::cached(&e, cache_root);
        }
    };
    if experiment.kind == manifest::ExperimentKind::LowRank {
        return crate::lowrank::cached(&experiment, cache_root);
    }
    let cache = Cache::new(Some(cache_root.to_path_buf()));
    let (data, point_data) = prepare_data(&experiment)?;
    let mut arrangements: Vec<PreparedArrangements> = Vec::new();
    let mut point_inputs = Vec::new();
    for (point, &di) in experiment.points.iter().zip(&point_data) {
        let (key, seed) = arrangement_key(&experiment, point, &data[di].sha256);
        let ai = match arrangements.iter().position(|a| a.key == key) {
            Some(i) => i,
            None => {
                // Only the key is used below; the set itself stays empty.
                let set = ArrangementSet::from_triples(
                    data[di].dataset.n(),
                    point.model.m1,
                    point.arrangements.mode,
                    [],
                )?;
                let cached = cache.contains(&key);
                arrangements.push(PreparedArrangements {
                    set,
                    key,
                    seed,
                    cached,
                });
                arrangements.len() - 1
            }
        };
        point_inputs.push((di, ai));
    }
    let mut cells: Vec<(String, bool)> = arrangements
        .iter()
        .map(|a| (format!("arrangements {}", &a.key.hash[..12]), a.cached))
        .collect();
    let prepared = Prepared {
        experiment,
        manifest_text,
        manifest_path: path.to_path_buf(),
        data,
        arrangements,
        point_inputs,
        stage_times: BTreeMap::new(),
    };
    let (jobs, keys) = jobs(&prepared);
    cells.extend(
        jobs.iter()
            .zip(&keys)
            .map(|(job, key)| (job_label(&prepared, job), cache.contains(key))),
    );
    Ok(cells)
}
