//! Figure 1's cells: one per model, each solved by Clarabel over its sampled
//! triples with the certificate over all of them, mapped to its network and
//! evaluated on the grid.

use ndarray::{Array1, Array2, ArrayView1};
use pathreg_core::Loss;
use pathreg_core::convex::{ACTIVE_GROUP_TOLERANCE, Coupling};
use pathreg_core::gates::GatedArrangements;
use pathreg_core::two_layer::TwoLayerNetwork;
use pathreg_data::Dataset;
use pathreg_solvers::{
    CertificationStatus, SolverError, WorkingSetSettings, check_proposition1,
    proposition1_tolerance, solve_certified_with_coupling,
};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::manifest::SpiralExperiment;
use crate::PipelineError;
use crate::engine::Cell;
use crate::engine::cache::{Cache, CacheKey};
use crate::engine::seeds::derive_seed;

/// The cache stage of one solved model.
pub const STAGE: &str = "spiral";
/// Cache schema version: bump when a cell computes something different.
const VERSION: u32 = 1;

/// The three models of Figure 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpiralModelKind {
    /// (a) the two-layer convex program of [29].
    TwoLayer,
    /// (b) the three-layer program with [17]'s decoupled second-layer constraints.
    DecoupledWeightDecay,
    /// (c) the path-regularized three-layer program (21).
    PathRegularized,
}

impl SpiralModelKind {
    /// Every model, in panel order.
    pub const ALL: [SpiralModelKind; 3] = [
        SpiralModelKind::TwoLayer,
        SpiralModelKind::DecoupledWeightDecay,
        SpiralModelKind::PathRegularized,
    ];

    /// The key in results.
    pub fn key(self) -> &'static str {
        match self {
            SpiralModelKind::TwoLayer => "two_layer",
            SpiralModelKind::DecoupledWeightDecay => "three_layer_decoupled",
            SpiralModelKind::PathRegularized => "three_layer_path",
        }
    }

    /// The panel label.
    pub fn label(self) -> &'static str {
        match self {
            SpiralModelKind::TwoLayer => "(a) two-layer, convex [29]",
            SpiralModelKind::DecoupledWeightDecay => "(b) three-layer WD, decoupled [17]",
            SpiralModelKind::PathRegularized => "(c) three-layer PR, ours (21)",
        }
    }
}

/// One solved model (cached as the `spiral` stage).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ModelResult {
    /// The convex objective at the solution.
    pub objective: f64,
    /// Its squared-loss part `½‖f − y‖²`.
    pub loss: f64,
    /// The certificate's lower bound over all sampled triples.
    pub dual: f64,
    /// `(primal − dual)/|primal|`.
    pub relative_gap: f64,
    /// The largest dual-constraint ratio over the triples.
    pub max_ratio: f64,
    /// `certified_global_optimum`, `optimal_for_sampled_arrangements` or `uncertified`.
    pub status: String,
    /// Distinct sampled triples (arrangements).
    pub triples: usize,
    /// Triples in the final working set.
    pub working_set: usize,
    /// Active groups (sub-networks or neurons of the mapped network).
    pub active: usize,
    /// Training accuracy of the convex model's sign.
    pub train_accuracy: f64,
    /// The mapped network's objective.
    pub network_objective: f64,
    /// `|network − convex| / |convex|`.
    pub network_relative_difference: f64,
    /// Training accuracy of the mapped network's sign.
    pub network_train_accuracy: f64,
    /// The convex model's output at every grid point (row-major from the bottom row).
    pub grid: Vec<f64>,
    /// The mapped network's output at every grid point.
    pub network_grid: Vec<f64>,
    /// Fraction of grid points where the mapped network has the convex model's sign.
    pub grid_agreement: f64,
    /// Solve and certification wall time, seconds.
    pub time_s: f64,
}

/// One model, as a cell of the engine's loop.
pub(super) struct ModelCell<'a> {
    pub experiment: &'a SpiralExperiment,
    pub model: SpiralModelKind,
    key: CacheKey,
}

impl<'a> ModelCell<'a> {
    /// The cell of `model`, keyed by every setting of the experiment.
    pub fn new(experiment: &'a SpiralExperiment, model: SpiralModelKind) -> Self {
        let params = serde_json::json!({
            "seed": experiment.seed, "data": experiment.data, "model": experiment.model,
            "plot": experiment.plot, "which": model,
        });
        Self {
            experiment,
            model,
            key: CacheKey::new(STAGE, VERSION, &params, &[]),
        }
    }
}

/// The spiral of the experiment.
pub(super) fn spiral(experiment: &SpiralExperiment) -> Result<Dataset, PipelineError> {
    let d = &experiment.data;
    Ok(pathreg_data::synthetic::spiral(
        d.n,
        d.turns,
        d.noise,
        derive_seed(experiment.seed, &["spiral noise"]),
    )?)
}

/// The grid points `(x_c, y_r, 1)`, row-major from the bottom row.
pub(super) fn grid_points(experiment: &SpiralExperiment) -> Array2<f64> {
    let (g, e) = (experiment.plot.grid, experiment.plot.extent);
    let at = |i: usize| -e + 2.0 * e * i as f64 / (g - 1) as f64;
    Array2::from_shape_fn((g * g, 3), |(p, a)| match a {
        0 => at(p % g),
        1 => at(p / g),
        _ => 1.0,
    })
}

/// The fraction of `f` whose sign (positive against not) matches `y`'s.
fn accuracy(f: ArrayView1<f64>, y: ArrayView1<f64>) -> f64 {
    let right = f
        .iter()
        .zip(y)
        .filter(|(f, y)| (**f > 0.0) == (**y > 0.0))
        .count();
    right as f64 / f.len().max(1) as f64
}

fn agreement(a: &Array1<f64>, b: &Array1<f64>) -> f64 {
    accuracy(a.view(), b.view())
}

impl Cell for ModelCell<'_> {
    type Output = ModelResult;

    fn key(&self) -> CacheKey {
        self.key.clone()
    }

    fn label(&self) -> String {
        format!("spiral {}", self.model.key())
    }

    fn compute(&self, _cache: &Cache) -> Result<ModelResult, PipelineError> {
        let e = self.experiment;
        let m = &e.model;
        let data = spiral(e)?;
        let (x, y) = (data.x.view(), data.y.view());
        let (arrangements, m2, coupling) = match self.model {
            SpiralModelKind::TwoLayer => (
                GatedArrangements::sample_two_layer(
                    x,
                    m.two_layer_arrangements,
                    &mut ChaCha8Rng::seed_from_u64(derive_seed(e.seed, &["two-layer gates"])),
                )?,
                1,
                Coupling::Summed,
            ),
            three_layer => (
                // (b) and (c) share their triples: only the constraints differ.
                GatedArrangements::sample_nested(
                    x,
                    m.m1,
                    m.p1,
                    m.p2,
                    &mut ChaCha8Rng::seed_from_u64(derive_seed(e.seed, &["three-layer gates"])),
                )?,
                m.m2,
                if three_layer == SpiralModelKind::PathRegularized {
                    Coupling::Summed
                } else {
                    Coupling::PerNeuron
                },
            ),
        };
        let solved = solve_certified_with_coupling(
            x,
            y,
            arrangements.set(),
            m.beta,
            m2,
            coupling,
            &WorkingSetSettings::default(),
        )?;
        let solution = &solved.last.solution;
        let value = solution.objective(x, y, m.beta, m2);
        let f_train = solution.predict(x);
        let grid = grid_points(e);
        let f_grid = arrangements.predict(solution, grid.view())?;
        let (network_objective, f_net_train, f_net_grid) = match self.model {
            SpiralModelKind::TwoLayer => {
                let network = TwoLayerNetwork::from_convex(solution)?;
                let objective = network.objective(x, y, m.beta);
                let tolerance =
                    proposition1_tolerance(solution, x, y, Loss::Squared, value.objective);
                let difference = (objective - value.objective).abs() / value.objective.abs();
                if difference.is_nan() || difference > tolerance {
                    return Err(SolverError::Proposition1 {
                        mapped: objective,
                        optimum: value.objective,
                        relative_difference: difference,
                        tolerance,
                    }
                    .into());
                }
                (objective, network.predict(x), network.predict(grid.view()))
            }
            _ => {
                let mapped =
                    check_proposition1(solution, x, y, m.beta, m2, Loss::Squared, value.objective)?;
                (
                    mapped.objective,
                    mapped.network.predict(x)?,
                    mapped.network.predict(grid.view())?,
                )
            }
        };
        let cert = solved.certificate;
        Ok(ModelResult {
            objective: value.objective,
            loss: value.loss,
            dual: cert.dual,
            relative_gap: cert.relative_gap,
            max_ratio: cert.max_ratio,
            status: CertificationStatus::of(&cert, arrangements.set().mode())
                .name()
                .to_string(),
            triples: arrangements.set().len(),
            working_set: solved.working_set,
            active: solution.active_groups(ACTIVE_GROUP_TOLERANCE),
            train_accuracy: accuracy(f_train.view(), y),
            network_objective,
            network_relative_difference: (network_objective - value.objective).abs()
                / value.objective.abs(),
            network_train_accuracy: accuracy(f_net_train.view(), y),
            grid_agreement: agreement(&f_grid, &f_net_grid),
            grid: f_grid.to_vec(),
            network_grid: f_net_grid.to_vec(),
            time_s: solved.time_s,
        })
    }
}
