//! What a solve of (21) may claim: the certification policy (the duality gap
//! and the dual constraints (16)–(17) over every triple, and whether those
//! triples are all realizable ones or a sample) and the check that
//! Proposition 1's network reproduces the convex optimum. One tolerance,
//! [`CERTIFICATE_TOLERANCE`], governs all of them.

use ndarray::{ArrayView1, ArrayView2};
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
}

/// Maps `solution` to a network by Proposition 1 and checks that its
/// objective (4) on `(x, y)` equals `optimum` to [`CERTIFICATE_TOLERANCE`]
/// (relative); a larger difference is an error, never a result.
pub fn check_proposition1(
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
    if relative_difference > CERTIFICATE_TOLERANCE {
        return Err(SolverError::Proposition1 {
            mapped: objective,
            optimum,
            relative_difference,
        });
    }
    Ok(MappedNetwork {
        network,
        objective,
        relative_difference,
    })
}
