//! The path's one cell: the split, the `K` sampled arrangements, and (21)
//! solved by ADMM at each β from the largest down, warm-started at the
//! previous solution. At each β the solution's group sparsity is counted and
//! Proposition 1's network is built from it and checked against the convex
//! model: its objective (4) against (21)'s, its outputs against the convex
//! model's on the training rows, and its test predictions.

use std::time::Instant;

use pathreg_core::unconstrained::{self, SampledArrangements, SampledVariables};
use pathreg_core::{Loss, Regularizer};
use pathreg_data::registry;
use pathreg_data::split::Split;
use pathreg_solvers::solve_admm;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::manifest::SparsityPathExperiment;
use crate::PipelineError;
use crate::engine::Cell;
use crate::engine::cache::{Cache, CacheKey};
use crate::engine::seeds::derive_seed;
use crate::stages::data::{Access, files_content_hash, registry_source};

/// The cache stage of the path.
pub const STAGE: &str = "sparsity_path";
/// Cache schema version: bump when the computation changes what it computes.
const SPARSITY_VERSION: u32 = 1;

/// The split, labels ±1.
pub(super) struct PathData {
    pub train: pathreg_data::Dataset,
    pub test: pathreg_data::Dataset,
    /// SHA-256 over the data files' SHA-256s (what the arrangement seed and
    /// the cache key derive from, never the dataset's name).
    pub content: String,
    pub files: Vec<(String, String)>,
}

/// Loads the split and maps the two label values to −1 and +1.
pub(super) fn load_data(
    experiment: &SparsityPathExperiment,
    access: Access,
) -> Result<PathData, PipelineError> {
    let mut config = access.config();
    config.seed = experiment.split_seed;
    config.split = Some(Split::Stratified {
        test_fraction: experiment.test_fraction,
        seed: experiment.split_seed,
    });
    config.preprocess = experiment.preprocess;
    let name = &experiment.dataset;
    let source = registry_source(name, &experiment.base_dir);
    let mut loaded = registry::load(&source, &config).map_err(|e| access.explain(name, e))?;
    let mut distinct: Vec<f64> = Vec::new();
    for &v in loaded.train.y.iter().chain(&loaded.test.y) {
        if !distinct.contains(&v) {
            distinct.push(v);
        }
    }
    if distinct.len() != 2 {
        return Err(PipelineError::Data(pathreg_data::DataError::Invalid(
            format!(
                "{name} (data.dataset): the labels take {} distinct values; the path needs two classes",
                distinct.len()
            ),
        )));
    }
    distinct.sort_by(f64::total_cmp);
    for y in [&mut loaded.train.y, &mut loaded.test.y] {
        y.mapv_inplace(|v| if v == distinct[1] { 1.0 } else { -1.0 });
    }
    let content = files_content_hash(&loaded.files).ok_or_else(|| {
        PipelineError::Data(pathreg_data::DataError::Invalid(format!(
            "{name} (data.dataset): read from no file, so it has no content to derive the seeds from"
        )))
    })?;
    Ok(PathData {
        content,
        files: loaded
            .files
            .iter()
            .map(|f| (f.file.clone(), f.sha256.clone()))
            .collect(),
        train: loaded.train,
        test: loaded.test,
    })
}

/// One β of the path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct PathPoint {
    pub beta: f64,
    /// (21) at ADMM's feasible point.
    pub objective: f64,
    /// The certified lower bound.
    pub lower_bound: f64,
    pub relative_gap: f64,
    /// `h/Σ‖Z‖` on the training rows.
    pub violation: f64,
    pub iterations: usize,
    pub converged: bool,
    /// Groups above `ACTIVE_GROUP_TOLERANCE` times the largest.
    pub active_groups: usize,
    /// Groups exactly zero.
    pub zero_groups: usize,
    pub total_groups: usize,
    pub train_accuracy: f64,
    pub test_accuracy: f64,
    /// Proposition 1's network: objective (4) with the path regularizer.
    pub network_objective: f64,
    /// Its sub-networks (one per non-zero group).
    pub network_subnetworks: usize,
    /// Largest `|network − convex|` output on the training rows, over the
    /// largest convex output there (0 up to rounding where (21)'s
    /// constraints hold: Proposition 1).
    pub network_output_difference: f64,
    /// Fraction of test rows where the network and the convex model predict
    /// the same class. On new rows the network's ReLU patterns need not be
    /// the gates', so the two may differ there.
    pub network_test_agreement: f64,
    /// Seconds of this β's solve.
    pub time_s: f64,
}

/// The path, cached as one entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Path {
    pub n_train: usize,
    pub n_test: usize,
    pub d: usize,
    pub points: Vec<PathPoint>,
}

/// The path as a cell of the engine's loop.
pub(super) struct PathCell<'a> {
    pub experiment: &'a SparsityPathExperiment,
    pub data: &'a PathData,
}

impl Cell for PathCell<'_> {
    type Output = Path;

    fn key(&self) -> CacheKey {
        let e = self.experiment;
        let params = serde_json::json!({
            "seed": e.seed, "split_seed": e.split_seed, "test_fraction": e.test_fraction,
            "preprocess": format!("{:?}", e.preprocess), "K": e.k, "m1": e.m1, "m2": e.m2,
            "betas": e.betas, "admm": e.admm, "admm_revision": pathreg_solvers::admm::REVISION,
        });
        CacheKey::new(STAGE, SPARSITY_VERSION, &params, &[&self.data.content])
    }

    fn label(&self) -> String {
        format!("sparsity path {}", self.experiment.dataset)
    }

    fn compute(&self, _cache: &Cache) -> Result<Path, PipelineError> {
        solve_path(self.experiment, self.data)
    }
}

/// The arrangements: from the manifest seed, the data's content and the split seed.
fn arrangements(
    experiment: &SparsityPathExperiment,
    data: &PathData,
) -> Result<SampledArrangements, PipelineError> {
    let seed = derive_seed(
        experiment.seed,
        &[
            "arrangements",
            &data.content,
            &experiment.split_seed.to_string(),
        ],
    );
    Ok(SampledArrangements::sample(
        &mut ChaCha8Rng::seed_from_u64(seed),
        experiment.k,
        data.train.d(),
        experiment.m1,
    )?)
}

fn accuracy(scores: &ndarray::Array1<f64>, y: &ndarray::Array1<f64>) -> f64 {
    let hits = scores
        .iter()
        .zip(y)
        .filter(|(f, t)| (**f > 0.0) == (**t > 0.0))
        .count();
    hits as f64 / y.len().max(1) as f64
}

fn solve_path(experiment: &SparsityPathExperiment, data: &PathData) -> Result<Path, PipelineError> {
    let arrangements = arrangements(experiment, data)?;
    let (x, y) = (data.train.x.view(), data.train.y.view());
    let x_test = data.test.x.view();
    let masks = arrangements.masks(x)?;
    let test_masks = arrangements.masks(x_test)?;
    let mut warm: Option<SampledVariables> = None;
    let mut points = Vec::with_capacity(experiment.betas.len());
    for &beta in &experiment.betas {
        let start = Instant::now();
        let solve = solve_admm(
            x,
            y,
            &arrangements,
            beta,
            experiment.m2,
            &experiment.admm,
            warm.as_ref(),
        )?;
        let time_s = start.elapsed().as_secs_f64();
        let vars = solve.variables;
        let norms = vars.group_norms();
        let train_scores = unconstrained::predict(x, &masks, &vars)?;
        let test_scores = unconstrained::predict(x_test, &test_masks, &vars)?;
        let network = unconstrained::to_network(&arrangements, x, &vars, experiment.m2)?;
        let network_value = network.objective(x, y, Loss::Squared, beta, Regularizer::Path)?;
        let scale = train_scores
            .iter()
            .fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
        let network_train = network.predict(x)?;
        let difference = network_train
            .iter()
            .zip(&train_scores)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        let network_test = network.predict(x_test)?;
        let agreeing = network_test
            .iter()
            .zip(&test_scores)
            .filter(|(a, b)| (**a > 0.0) == (**b > 0.0))
            .count();
        points.push(PathPoint {
            beta,
            objective: solve.last.objective,
            lower_bound: solve.last.lower_bound,
            relative_gap: solve.last.relative_gap,
            violation: solve.last.violation,
            iterations: solve.last.iteration,
            converged: solve.converged,
            active_groups: vars.active_groups(),
            zero_groups: norms.iter().filter(|&&g| g == 0.0).count(),
            total_groups: norms.len(),
            train_accuracy: accuracy(&train_scores, &data.train.y),
            test_accuracy: accuracy(&test_scores, &data.test.y),
            network_objective: network_value.objective,
            network_subnetworks: network.num_subnetworks(),
            network_output_difference: difference / scale,
            network_test_agreement: agreeing as f64 / network_test.len().max(1) as f64,
            time_s,
        });
        warm = Some(vars);
    }
    Ok(Path {
        n_train: data.train.n(),
        n_test: data.test.n(),
        d: data.train.d(),
        points,
    })
}
