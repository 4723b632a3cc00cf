//! Running a convex-vs-non-convex experiment: data → arrangements → cells
//! (one certified convex fit per distinct point, `runs` non-convex runs per
//! point, each a cached cell) → rows placed at their sweep points.

use std::collections::BTreeMap;

use pathreg_core::convex::ACTIVE_GROUP_TOLERANCE;
use pathreg_core::{ArrangementSet, ParallelNetwork};
use pathreg_data::Dataset;
use pathreg_solvers::{
    CERTIFICATE_TOLERANCE, CertificationStatus, TrainSettings, check_proposition1, solve_certified,
    train,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::manifest::{Experiment, NonconvexSpec, Point};
use crate::PipelineError;
use crate::engine::cache::{Cache, CacheKey};
use crate::engine::seeds::derive_seed;
use crate::engine::{Cell, Computed, Run};
use crate::manifest::sections::ModelSpec;
use crate::manifest::sweep::SweepValue;
use crate::stages::arrangements::{ArrangementRequest, arrangements};
use crate::stages::data::{Access, content_hash, data_seed, load_data};

/// The cache stage of one convex fit.
pub const CONVEX_STAGE: &str = "convex";
/// The cache stage of one non-convex training run.
pub const NONCONVEX_STAGE: &str = "nonconvex";
/// Cache schema versions: bump when a stage's code changes what it computes.
const CONVEX_VERSION: u32 = 2;
const NONCONVEX_VERSION: u32 = 1;

/// One fitted model as stored in the cache (no sweep coordinates).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Fit {
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
pub(super) struct CellResult {
    pub point: usize,
    pub coords: Vec<(String, SweepValue)>,
    pub k: usize,
    pub run: usize,
    pub fit: Fit,
    pub cached: bool,
}

/// What run.json records about a convex solve.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ConvexDetails {
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
    /// The relative difference the solution's constraint violations explain.
    pub map_tolerance: f64,
    pub max_constraint_violation: f64,
    /// One line per working-set attempt (the recovery from stalled solves).
    pub solve_attempts: Vec<String>,
}

/// A dataset used by some sweep points.
pub(super) struct PreparedData {
    pub dataset: Dataset,
    pub seed: u64,
    pub sha256: String,
}

/// What the cells read: the datasets, the arrangement requests and their
/// keys, and per point its data and arrangements.
pub(super) struct Inputs<'e> {
    pub experiment: &'e Experiment,
    pub data: Vec<PreparedData>,
    pub arrangements: Vec<(ArrangementRequest, CacheKey)>,
    /// Per point: index into `data` and into `arrangements`.
    pub point_inputs: Vec<(usize, usize)>,
}

/// One computed (or cached) arrangement set, with whether it was cached.
pub(super) type LoadedArrangements = Vec<(ArrangementSet, bool)>;

#[derive(Debug, Clone, Copy)]
enum Job {
    Convex {
        point: usize,
    },
    Nonconvex {
        point: usize,
        k: usize,
        run: usize,
        seed: u64,
        settings: NonconvexSpec,
    },
}

/// A job as a cell of the engine's loop.
struct FitCell<'a> {
    inputs: &'a Inputs<'a>,
    sets: &'a LoadedArrangements,
    job: Job,
    key: CacheKey,
}

impl Cell for FitCell<'_> {
    type Output = Fit;

    fn key(&self) -> CacheKey {
        self.key.clone()
    }

    fn label(&self) -> String {
        job_label(self.inputs.experiment, &self.job)
    }

    /// Multiply-adds of a run's epochs (`epochs · n · K · m1 · (d + m2)`),
    /// and for the convex solve the same with K = 1 per arrangement set
    /// member: a balance for shards, not a prediction.
    fn cost(&self) -> f64 {
        let point_cost = |point: usize, width: f64, epochs: f64| {
            let p = &self.inputs.experiment.points[point];
            let dataset = &self.inputs.data[self.inputs.point_inputs[point].0].dataset;
            epochs * dataset.n() as f64 * width * (p.model.m1 * (dataset.d() + p.model.m2)) as f64
        };
        match self.job {
            Job::Convex { point } => {
                let set = &self.sets[self.inputs.point_inputs[point].1].0;
                point_cost(point, set.len() as f64, 100.0)
            }
            Job::Nonconvex {
                point, k, settings, ..
            } => point_cost(point, k as f64, settings.epochs as f64),
        }
    }

    fn compute(&self, _cache: &Cache) -> Result<Fit, PipelineError> {
        match self.job {
            Job::Convex { point } => run_convex(self.inputs, self.sets, point),
            Job::Nonconvex {
                point,
                k,
                seed,
                settings,
                ..
            } => run_nonconvex(self.inputs, point, k, seed, &settings),
        }
    }
}

/// Loads (or generates) every point's data, sharing equal datasets, and
/// names every point's arrangements.
pub(super) fn inputs(experiment: &Experiment, access: Access) -> Result<Inputs<'_>, PipelineError> {
    let mut data: Vec<PreparedData> = Vec::new();
    let mut data_index: BTreeMap<String, usize> = BTreeMap::new();
    let mut arrangements: Vec<(ArrangementRequest, CacheKey)> = Vec::new();
    let mut point_inputs = Vec::new();
    for point in &experiment.points {
        let seed = data_seed(experiment.seed, point.data_tag);
        let id = serde_json::to_string(&(&point.data, seed)).unwrap_or_default();
        let di = match data_index.get(&id) {
            Some(&i) => i,
            None => {
                let dataset = load_data(&point.data, seed, access)?;
                let sha256 = content_hash(&dataset);
                data.push(PreparedData {
                    dataset,
                    seed,
                    sha256,
                });
                data_index.insert(id, data.len() - 1);
                data.len() - 1
            }
        };
        let request = arrangement_request(experiment, point);
        let key = request.key(&data[di].sha256);
        let ai = match arrangements.iter().position(|(_, k)| *k == key) {
            Some(i) => i,
            None => {
                arrangements.push((request, key));
                arrangements.len() - 1
            }
        };
        point_inputs.push((di, ai));
    }
    Ok(Inputs {
        experiment,
        data,
        arrangements,
        point_inputs,
    })
}

/// The point's arrangements; sampled ones draw from a seed of the replicate tag.
fn arrangement_request(experiment: &Experiment, point: &Point) -> ArrangementRequest {
    let tag = point.data_tag.map(|t| t.to_string()).unwrap_or_default();
    ArrangementRequest::new(
        point.arrangements.mode,
        point.model.m1,
        point.arrangements.draws,
        derive_seed(experiment.seed, &["arrangements", &tag]),
    )
}

/// Computes (or loads) every distinct arrangement set.
fn load_arrangements(
    inputs: &Inputs<'_>,
    run: &Run<'_>,
) -> Result<LoadedArrangements, PipelineError> {
    let mut sets = Vec::with_capacity(inputs.arrangements.len());
    for (ai, (request, _)) in inputs.arrangements.iter().enumerate() {
        let di = inputs
            .point_inputs
            .iter()
            .find(|(_, a)| *a == ai)
            .map_or(0, |(d, _)| *d);
        let data = &inputs.data[di];
        sets.push(arrangements(
            run.cache(),
            *request,
            data.dataset.x.view(),
            &data.sha256,
            &|done, total| run.step("arrangements", done, total),
        )?);
    }
    Ok(sets)
}

/// Runs the experiment's cells through `run` and places them at their points.
pub(super) fn run_cells<'e>(
    experiment: &'e Experiment,
    run: &mut Run<'_>,
) -> Result<(Inputs<'e>, LoadedArrangements, Vec<CellResult>), PipelineError> {
    let inputs = run.stage("data", |_| inputs(experiment, Access::Fetch))?;
    let sets = run.stage("arrangements", |stage| load_arrangements(&inputs, stage))?;
    let cells: Vec<FitCell<'_>> = jobs(&inputs)
        .into_iter()
        .map(|(job, key)| FitCell {
            inputs: &inputs,
            sets: &sets,
            job,
            key,
        })
        .collect();
    let fits = run.cells(&cells)?;
    let jobs: Vec<Job> = cells.iter().map(|c| c.job).collect();
    let results = assemble(&inputs, &jobs, fits);
    Ok((inputs, sets, results))
}

/// Every arrangement set's and job's label with its key, for `list`.
pub(super) fn labelled_keys(inputs: &Inputs<'_>) -> Vec<(String, CacheKey)> {
    let mut labelled: Vec<(String, CacheKey)> = inputs
        .arrangements
        .iter()
        .map(|(_, key)| (format!("arrangements {}", &key.hash[..12]), key.clone()))
        .collect();
    labelled.extend(
        jobs(inputs)
            .into_iter()
            .map(|(job, key)| (job_label(inputs.experiment, &job), key)),
    );
    labelled
}

fn convex_key(inputs: &Inputs<'_>, point: usize) -> CacheKey {
    let p = &inputs.experiment.points[point];
    let (di, ai) = inputs.point_inputs[point];
    let params = serde_json::json!({
        "model": ModelParams::from(&p.model),
        "convex": inputs.experiment.convex,
        "map_tolerance": CERTIFICATE_TOLERANCE,
    });
    CacheKey::new(
        CONVEX_STAGE,
        CONVEX_VERSION,
        &params,
        &[&inputs.data[di].sha256, &inputs.arrangements[ai].1.hash],
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
fn jobs(inputs: &Inputs<'_>) -> Vec<(Job, CacheKey)> {
    let mut jobs: Vec<(Job, CacheKey)> = Vec::new();
    for (pi, point) in inputs.experiment.points.iter().enumerate() {
        let key = convex_key(inputs, pi);
        if !jobs.iter().any(|(_, k)| *k == key) {
            jobs.push((Job::Convex { point: pi }, key));
        }
        if let (Some(nc), Some(k)) = (&point.nonconvex, point.k) {
            let (di, _) = inputs.point_inputs[pi];
            for run in 1..=nc.runs {
                let seed = nonconvex_seed(inputs.experiment, point, k, run);
                let params = serde_json::json!({
                    "model": ModelParams::from(&point.model),
                    "nonconvex": NonconvexParams::from(nc),
                    "K": k,
                    "seed": seed,
                    "init": "lecun_normal",
                });
                let key = CacheKey::new(
                    NONCONVEX_STAGE,
                    NONCONVEX_VERSION,
                    &params,
                    &[&inputs.data[di].sha256],
                );
                jobs.push((
                    Job::Nonconvex {
                        point: pi,
                        k,
                        run,
                        seed,
                        settings: *nc,
                    },
                    key,
                ));
            }
        }
    }
    jobs
}

#[derive(Serialize)]
struct NonconvexParams {
    optimizer: pathreg_solvers::Optimizer,
    epochs: usize,
    batch_size: usize,
    regularizer: pathreg_core::Regularizer,
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

fn job_label(experiment: &Experiment, job: &Job) -> String {
    match job {
        Job::Convex { point } => format!("convex {}", experiment.points[*point].group_label())
            .trim_end()
            .to_string(),
        Job::Nonconvex {
            point,
            k,
            run,
            settings,
            ..
        } => format!(
            "{} K={k} run {run} {}",
            settings.optimizer.name(),
            experiment.points[*point].group_label()
        )
        .trim_end()
        .to_string(),
    }
}

/// Places every fit at its sweep points: one convex row per point (shared
/// fits repeat), then the non-convex runs.
fn assemble(inputs: &Inputs<'_>, jobs: &[Job], fits: Vec<Computed<Fit>>) -> Vec<CellResult> {
    let convex_keys: Vec<(usize, CacheKey)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(j, job)| match job {
            Job::Convex { point } => Some((j, convex_key(inputs, *point))),
            Job::Nonconvex { .. } => None,
        })
        .collect();
    let mut rows = Vec::new();
    for (pi, point) in inputs.experiment.points.iter().enumerate() {
        let k = point.k.unwrap_or(0);
        let key = convex_key(inputs, pi);
        let row = |j: usize, run: usize| CellResult {
            point: pi,
            coords: point.coords.clone(),
            k,
            run,
            fit: fits[j].value.clone(),
            cached: fits[j].cached,
        };
        if let Some((j, _)) = convex_keys.iter().find(|(_, k)| *k == key) {
            rows.push(row(*j, 1));
        }
        for (j, job) in jobs.iter().enumerate() {
            if let Job::Nonconvex { point: jp, run, .. } = job
                && *jp == pi
            {
                rows.push(row(j, *run));
            }
        }
    }
    rows
}

fn run_convex(
    inputs: &Inputs<'_>,
    sets: &LoadedArrangements,
    point: usize,
) -> Result<Fit, PipelineError> {
    let p = &inputs.experiment.points[point];
    let (di, ai) = inputs.point_inputs[point];
    let dataset = &inputs.data[di].dataset;
    let arrangements = &sets[ai].0;
    let (x, y) = (dataset.x.view(), dataset.y.view());
    let settings = inputs.experiment.convex.working_set_settings();
    let solved = solve_certified(x, y, arrangements, p.model.beta, p.model.m2, &settings)?;
    let solution = &solved.last.solution;
    let objective = solution.objective(x, y, p.model.beta, p.model.m2);
    let mapped = check_proposition1(
        solution,
        x,
        y,
        p.model.beta,
        p.model.m2,
        p.model.loss,
        objective.objective,
    )?;
    let cert = solved.certificate;
    let status = CertificationStatus::of(&cert, arrangements.mode());
    let active = solution.active_groups(ACTIVE_GROUP_TOLERANCE);
    Ok(Fit {
        method: "convex".into(),
        seed: 0,
        objective: objective.objective,
        loss: objective.loss,
        regularizer: objective.regularizer,
        time_s: solved.time_s,
        status: status.name().into(),
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
            mapped_relative_difference: mapped.relative_difference,
            map_tolerance: mapped.tolerance,
            max_constraint_violation: solution.max_constraint_violation(x),
            solve_attempts: solved.attempts.iter().map(ToString::to_string).collect(),
        }),
    })
}

fn run_nonconvex(
    inputs: &Inputs<'_>,
    point: usize,
    k: usize,
    seed: u64,
    nc: &NonconvexSpec,
) -> Result<Fit, PipelineError> {
    let p = &inputs.experiment.points[point];
    let (di, _) = inputs.point_inputs[point];
    let dataset = &inputs.data[di].dataset;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let init = ParallelNetwork::lecun_normal(&mut rng, k, dataset.d(), p.model.m1, p.model.m2)?;
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
