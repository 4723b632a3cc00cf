//! What a solve of (21) may claim: the certification policy (the duality gap
//! and the dual constraints (16)–(17) over every triple, and whether those
//! triples are all realizable ones or a sample) and the check that
//! Proposition 1's network reproduces the convex optimum. One tolerance,
//! [`CERTIFICATE_TOLERANCE`], governs all of them; the Proposition 1 check
//! widens it only as far as the solution's constraint violations explain.

use ndarray::{Array1, ArrayView1, ArrayView2, s};
use pathreg_core::convex::{Certificate, ConvexSolution};
use pathreg_core::{ArrangementMode, Loss, ParallelNetwork, Regularizer};

use crate::SolverError;

/// Relative tolerance of every certificate check: the duality gap, the
/// dual-constraint ratio (a ratio above `1 + tolerance` is a violation) and
/// the agreement of the Proposition 1 network with the convex optimum.
pub const CERTIFICATE_TOLERANCE: f64 = 1e-6;

/// What a convex solve is, given its certificate and its arrangements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificationStatus {
    /// Exact arrangements, every dual constraint holds and the gap is closed:
    /// the global optimum of the non-convex problem (Theorem 1).
    CertifiedGlobalOptimum,
    /// The same over a sampled set of triples: optimal for that subset only.
    OptimalForSampledArrangements,
    /// The certificate does not hold within [`CERTIFICATE_TOLERANCE`].
    Uncertified,
}

impl CertificationStatus {
    /// The status of a solve over arrangements of `mode` with `certificate`.
    pub fn of(certificate: &Certificate, mode: ArrangementMode) -> Self {
        let certified = certificate.max_ratio <= 1.0 + CERTIFICATE_TOLERANCE
            && certificate.relative_gap <= CERTIFICATE_TOLERANCE;
        match (certified, mode) {
            (true, ArrangementMode::Exact) => Self::CertifiedGlobalOptimum,
            (true, ArrangementMode::Sampled) => Self::OptimalForSampledArrangements,
            (false, _) => Self::Uncertified,
        }
    }

    /// The name written in results: `certified_global_optimum`, ….
    pub fn name(self) -> &'static str {
        match self {
            Self::CertifiedGlobalOptimum => "certified_global_optimum",
            Self::OptimalForSampledArrangements => "optimal_for_sampled_arrangements",
            Self::Uncertified => "uncertified",
        }
    }
}

/// Proposition 1's network of a solution and how closely it reproduces the optimum.
#[derive(Debug, Clone)]
pub struct MappedNetwork {
    /// The parallel network (one sub-network per active group).
    pub network: ParallelNetwork,
    /// Its objective (4) on the data.
    pub objective: f64,
    /// `|objective − optimum| / |optimum|`.
    pub relative_difference: f64,
    /// The largest relative difference the solution's accuracy explains
    /// (see [`proposition1_tolerance`]); never below [`CERTIFICATE_TOLERANCE`].
    pub tolerance: f64,
}

/// The relative difference between Proposition 1's network and the objective
/// `optimum` of `solution` that the solution's own accuracy explains:
/// `max(CERTIFICATE_TOLERANCE, δ / |optimum| + 1000 ε)` (`ε` the machine
/// epsilon: the bound below is attained when the errors add up, and the two
/// objectives carry their own rounding).
///
/// The map reproduces the convex output `f = Σ_t A_t (z_t − z'_t)` exactly
/// when every `z_t, z'_t` lies in its cone `C_t` of (21), and its path norm
/// equals the regularizer of (21) whatever the constraints. An interior-point
/// solution violates the constraints `B_t z ≥ 0` slightly, and the network's
/// output `g_i` then differs from `f_i` by at most `e_i`, the sum of the
/// violations of the constraints of sample `i` ([`output_error_bounds`]). The
/// loss moves by at most `δ = Σ_i (e_i |f_i − y_i| + e_i²/2)` (squared loss)
/// or `δ = Σ_i |y_i| e_i` (hinge and logistic losses, `|y_i|`-Lipschitz in
/// `f_i`). For an accurate solve `δ` is far below the default tolerance, which
/// then applies.
pub fn proposition1_tolerance(
    solution: &ConvexSolution,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    loss: Loss,
    optimum: f64,
) -> f64 {
    let bounds = output_error_bounds(solution, x);
    let explained: f64 = match loss {
        Loss::Squared => {
            let f = solution.predict(x);
            bounds
                .iter()
                .zip(f.iter().zip(y))
                .map(|(e, (f, y))| e * (f - y).abs() + 0.5 * e * e)
                .sum()
        }
        Loss::Hinge | Loss::Logistic => bounds.iter().zip(y).map(|(e, y)| e * y.abs()).sum(),
    };
    (explained / optimum.abs().max(f64::MIN_POSITIVE) + 1e3 * f64::EPSILON)
        .max(CERTIFICATE_TOLERANCE)
}

/// Per sample `i`, a bound `e_i ≥ |g_i − f_i|` on how far the output of
/// Proposition 1's network of `solution` is from the convex output: the sum,
/// over every group `z` (`z_t` or `z'_t`), of the violations of the cone
/// constraints `C_t` at sample `i`,
/// `Σ_j max(0, −(2 D1_{tj} − I)_{ii} I_{tj} x_iᵀ z_j) + max(0, −(2 D2_t − I)_{ii} Σ_{j : i ∈ D1_{tj}} x_iᵀ z_j)`.
///
/// In the network each neuron `j` of the group computes `(I_{tj} x_iᵀ z_j)₊ / m2`;
/// when its first-layer constraint is violated by `ε` that is `ε / m2` away from
/// the value the convex program assumes (`I_{tj} x_iᵀ z_j / m2` on `D1_{tj}`,
/// zero off it); a violation `ε` of the second-layer constraint puts each of
/// the `m2` equal second-layer units `ε / m2` away; the `m2` units add up.
pub fn output_error_bounds(solution: &ConvexSolution, x: ArrayView2<f64>) -> Array1<f64> {
    let (n, d) = x.dim();
    let mut bounds = Array1::zeros(n);
    for (t, triple) in solution.triples().iter().enumerate() {
        for group in [solution.z().row(t), solution.z_prime().row(t)] {
            for (i, bound) in bounds.iter_mut().enumerate() {
                let mut second_layer = 0.0;
                for (j, neuron) in triple.neurons().iter().enumerate() {
                    let pre = x.row(i).dot(&group.slice(s![j * d..(j + 1) * d]));
                    let side = if neuron.d1.contains(i) { 1.0 } else { -1.0 };
                    *bound += (-side * neuron.sign() * pre).max(0.0);
                    if neuron.d1.contains(i) {
                        second_layer += pre;
                    }
                }
                let side = if triple.d2().contains(i) { 1.0 } else { -1.0 };
                *bound += (-side * second_layer).max(0.0);
            }
        }
    }
    bounds
}

/// Maps `solution` to a network by Proposition 1 and measures how closely its
/// objective (4) on `(x, y)` reproduces `optimum`, the objective of
/// `solution`, and how closely it should ([`proposition1_tolerance`]).
pub fn map_proposition1(
    solution: &ConvexSolution,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    beta: f64,
    m2: usize,
    loss: Loss,
    optimum: f64,
) -> Result<MappedNetwork, SolverError> {
    let network = solution.to_network(m2, 0.0)?;
    let objective = network
        .objective(x, y, loss, beta, Regularizer::Path)?
        .objective;
    let relative_difference = (objective - optimum).abs() / optimum.abs().max(f64::MIN_POSITIVE);
    Ok(MappedNetwork {
        network,
        objective,
        relative_difference,
        tolerance: proposition1_tolerance(solution, x, y, loss, optimum),
    })
}

/// [`map_proposition1`], failing when the network's objective differs from
/// `optimum` by more than the solution's accuracy explains: a difference the
/// constraint violations cannot account for is an error, never a result.
pub fn check_proposition1(
    solution: &ConvexSolution,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    beta: f64,
    m2: usize,
    loss: Loss,
    optimum: f64,
) -> Result<MappedNetwork, SolverError> {
    let mapped = map_proposition1(solution, x, y, beta, m2, loss, optimum)?;
    if mapped.relative_difference.is_nan() || mapped.relative_difference > mapped.tolerance {
        return Err(SolverError::Proposition1 {
            mapped: mapped.objective,
            optimum,
            relative_difference: mapped.relative_difference,
            tolerance: mapped.tolerance,
        });
    }
    Ok(mapped)
}
