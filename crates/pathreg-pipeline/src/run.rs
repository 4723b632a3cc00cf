//! Running one manifest: data → arrangements → cells (convex and non-convex
//! fits, in parallel) → outputs.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{Array1, Array2};
use pathreg_core::{ArrangementMode, ArrangementSet, ParallelNetwork};
use pathreg_data::Dataset;
use pathreg_data::csv_file::read_csv;
use pathreg_data::synthetic::teacher_data;
use pathreg_solvers::{ConicSettings, TrainSettings, WorkingSetSettings, solve_certified, train};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::manifest::{self, DataSpec, Experiment};
use crate::seeds::derive_seed;
use crate::{PipelineError, outputs, provenance};

/// Progress events, for a progress bar.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A stage before the cells started.
    Stage(String),
    /// The cells are about to run.
    CellsStarted(usize),
    /// One cell finished.
    CellDone(String),
}

/// Where to write and whom to tell.
pub struct RunOptions {
    /// Folder holding one sub-folder per experiment (normally `<workspace>/outputs`).
    pub outputs_root: PathBuf,
    /// The workspace root, for provenance (git commit, Cargo.lock versions).
    pub workspace_root: PathBuf,
    /// Called from worker threads as the run advances.
    pub progress: Box<dyn Fn(Progress) + Sync>,
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// `outputs/<name>`.
    pub output_dir: PathBuf,
    /// SHA-256 of the results without timings (bit-exact floats).
    pub result_hash: String,
    /// Number of fitted models.
    pub cells: usize,
    /// Wall time, seconds.
    pub wall_s: f64,
}

/// One fitted model: a row of results.csv.
#[derive(Debug, Clone)]
pub(crate) struct CellResult {
    pub method: String,
    pub k: usize,
    pub run: usize,
    pub seed: u64,
    pub objective: f64,
    pub loss: f64,
    pub regularizer: f64,
    pub time_s: f64,
    pub status: String,
    pub iterations: u64,
    pub curve: Vec<(usize, f64)>,
    pub convex: Option<ConvexDetails>,
}

/// What run.json records about the convex solve.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct ConvexDetails {
    pub solver_status: String,
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

enum Cell {
    Convex,
    Nonconvex { k: usize, run: usize },
}

/// Everything the cells share.
pub(crate) struct Prepared {
    pub experiment: Experiment,
    pub manifest_text: String,
    pub manifest_path: PathBuf,
    pub dataset: Dataset,
    pub data_seed: u64,
    pub arrangements: ArrangementSet,
    pub arrangement_seed: Option<u64>,
    pub arrangement_time_s: f64,
}

/// Relative agreement required between the convex optimum and the objective
/// (4) of its Proposition 1 network.
const MAP_TOLERANCE: f64 = 1e-6;

/// Runs the manifest at `path` and writes `outputs/<name>/`.
pub fn run_manifest(path: &Path, options: &RunOptions) -> Result<RunSummary, PipelineError> {
    let start = Instant::now();
    let (experiment, manifest_text) = manifest::load(path)?;
    (options.progress)(Progress::Stage("data".into()));
    let data_seed = derive_seed(experiment.seed, &["data"]);
    let dataset = load_data(&experiment, data_seed)?;
    if dataset.n() == 0 {
        return Err(PipelineError::Verification(
            "the dataset has no samples".into(),
        ));
    }
    (options.progress)(Progress::Stage("arrangements".into()));
    let arrangement_start = Instant::now();
    let (arrangements, arrangement_seed) = match experiment.arrangements.mode {
        ArrangementMode::Exact => (
            ArrangementSet::enumerate_exact(dataset.x.view(), experiment.model.m1)?,
            None,
        ),
        ArrangementMode::Sampled => {
            let seed = derive_seed(experiment.seed, &["arrangements"]);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let set = ArrangementSet::sample(
                dataset.x.view(),
                experiment.model.m1,
                experiment.arrangements.draws,
                &mut rng,
            )?;
            (set, Some(seed))
        }
    };
    let prepared = Prepared {
        arrangement_time_s: arrangement_start.elapsed().as_secs_f64(),
        experiment,
        manifest_text,
        manifest_path: path.to_path_buf(),
        dataset,
        data_seed,
        arrangements,
        arrangement_seed,
    };
    let cells = cells(&prepared.experiment);
    (options.progress)(Progress::CellsStarted(cells.len()));
    let results: Vec<CellResult> = cells
        .par_iter()
        .map(|cell| {
            let result = run_cell(&prepared, cell);
            if let Ok(r) = &result {
                (options.progress)(Progress::CellDone(format!(
                    "{} K={} run {}",
                    r.method, r.k, r.run
                )));
            }
            result
        })
        .collect::<Result<_, _>>()?;
    let result_hash = outputs::result_hash(&results);
    let output_dir = options.outputs_root.join(&prepared.experiment.name);
    let run_info = provenance::RunInfo::collect(
        &prepared,
        &results,
        &result_hash,
        &options.workspace_root,
        start,
    );
    outputs::write_all(&output_dir, &prepared, &results, &run_info)?;
    Ok(RunSummary {
        output_dir,
        result_hash,
        cells: results.len(),
        wall_s: start.elapsed().as_secs_f64(),
    })
}

fn load_data(experiment: &Experiment, seed: u64) -> Result<Dataset, PipelineError> {
    match &experiment.data {
        DataSpec::Teacher {
            n,
            d,
            teacher,
            noise,
        } => Ok(teacher_data(*n, *d, *teacher, *noise, seed)?.0),
        DataSpec::Csv { path } => Ok(read_csv(path)?),
    }
}

fn cells(experiment: &Experiment) -> Vec<Cell> {
    let mut cells = vec![Cell::Convex];
    if let Some(nc) = &experiment.nonconvex {
        for &k in &experiment.sweep_k {
            for run in 1..=nc.runs {
                cells.push(Cell::Nonconvex { k, run });
            }
        }
    }
    cells
}

fn run_cell(prepared: &Prepared, cell: &Cell) -> Result<CellResult, PipelineError> {
    match cell {
        Cell::Convex => run_convex(prepared),
        Cell::Nonconvex { k, run } => run_nonconvex(prepared, *k, *run),
    }
}

fn run_convex(prepared: &Prepared) -> Result<CellResult, PipelineError> {
    let e = &prepared.experiment;
    let (x, y): (&Array2<f64>, &Array1<f64>) = (&prepared.dataset.x, &prepared.dataset.y);
    let settings = WorkingSetSettings {
        initial: e.convex.working_set_initial,
        add_per_round: e.convex.working_set_add,
        conic: ConicSettings {
            tol_gap: e.convex.tolerance,
            tol_feas: e.convex.tolerance,
            ..ConicSettings::default()
        },
        ..WorkingSetSettings::default()
    };
    let solved = solve_certified(
        x.view(),
        y.view(),
        &prepared.arrangements,
        e.model.beta,
        e.model.m2,
        &settings,
    )?;
    let solution = &solved.last.solution;
    let objective = solution.objective(x.view(), y.view(), e.model.beta, e.model.m2);
    let network: ParallelNetwork = solution.to_network(e.model.m2, 0.0)?;
    let mapped = network.objective(
        x.view(),
        y.view(),
        e.model.loss,
        e.model.beta,
        pathreg_core::Regularizer::Path,
    )?;
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
    let status = match (certified, prepared.arrangements.mode()) {
        (true, ArrangementMode::Exact) => "certified_global_optimum",
        (true, ArrangementMode::Sampled) => "optimal_for_sampled_arrangements",
        (false, _) => "uncertified",
    };
    let active = solution.active_groups(1e-6);
    Ok(CellResult {
        method: "convex".into(),
        k: active,
        run: 1,
        seed: 0,
        objective: objective.objective,
        loss: objective.loss,
        regularizer: objective.regularizer,
        time_s: solved.time_s,
        status: status.into(),
        iterations: u64::from(solved.total_iterations),
        curve: Vec::new(),
        convex: Some(ConvexDetails {
            solver_status: solved.last.status.clone(),
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
            max_constraint_violation: solution.max_constraint_violation(x.view()),
        }),
    })
}

fn run_nonconvex(prepared: &Prepared, k: usize, run: usize) -> Result<CellResult, PipelineError> {
    let e = &prepared.experiment;
    let Some(nc) = &e.nonconvex else {
        return Err(PipelineError::Verification(
            "non-convex cell without settings".into(),
        ));
    };
    let seed = derive_seed(e.seed, &["nonconvex", &k.to_string(), &run.to_string()]);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (x, y) = (&prepared.dataset.x, &prepared.dataset.y);
    let init = ParallelNetwork::lecun_normal(&mut rng, k, x.ncols(), e.model.m1, e.model.m2);
    let settings = TrainSettings {
        optimizer: nc.optimizer,
        epochs: nc.epochs,
        batch_size: nc.batch_size,
        loss: e.model.loss,
        beta: e.model.beta,
        regularizer: nc.regularizer,
        record_every: nc.record_every,
    };
    let result = train(x.view(), y.view(), init, &settings, &mut rng)?;
    let fin = result.final_objective;
    Ok(CellResult {
        method: nc.optimizer.name().into(),
        k,
        run,
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
        curve: result.curve,
        convex: None,
    })
}
