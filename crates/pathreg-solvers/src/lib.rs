//! Solvers for path-regularized parallel ReLU networks: the exact convex
//! program (21) by the interior-point conic solver Clarabel with a certified
//! working-set scheme, and first-order training of the non-convex objective (4).

pub mod admm;
pub mod certify;
pub mod conic;
pub mod multiclass;
pub mod nonconvex;
pub mod unconstrained;
pub mod working_set;

pub use admm::{AdmmPoint, AdmmSettings, AdmmSolve, Precision, solve_admm, solve_admm_outputs};
pub use certify::{
    CERTIFICATE_TOLERANCE, CertificationStatus, MappedNetwork, check_proposition1,
    map_proposition1, output_error_bounds, proposition1_tolerance,
};
pub use conic::{ConicSettings, ConicSolve, Scaling, solve_conic};
pub use nonconvex::{Optimizer, TrainResult, TrainSettings, train};
pub use unconstrained::{
    ConvexMethod, ConvexTrainResult, ConvexTrainSettings, CurvePoint, train_convex,
};
pub use working_set::{
    Attempt, CertifiedSolve, Recovery, WorkingSetSettings, solve_certified,
    solve_certified_with_coupling,
};

/// Errors of the solvers.
#[derive(Debug, thiserror::Error)]
pub enum SolverError {
    /// Bad parameters or shapes.
    #[error("{0}")]
    Invalid(String),
    /// Clarabel rejected the problem or failed.
    #[error("Clarabel: {0}")]
    Clarabel(String),
    /// Proposition 1's network does not reproduce the convex optimum.
    #[error(
        "Proposition 1 network objective {mapped} differs from the convex optimum {optimum} by {relative_difference:e} (relative), more than the solve's accuracy explains ({tolerance:e})"
    )]
    Proposition1 {
        /// Objective (4) of the mapped network.
        mapped: f64,
        /// The convex optimum.
        optimum: f64,
        /// Their relative difference.
        relative_difference: f64,
        /// The relative difference the solution's accuracy explains.
        tolerance: f64,
    },
    /// An error from the mathematical core.
    #[error(transparent)]
    Core(#[from] pathreg_core::CoreError),
}

/// Checks what every trainer needs: samples, matching labels, and positive
/// batch size and recording period.
pub(crate) fn check_training_input(
    n: usize,
    labels: usize,
    batch_size: usize,
    record_every: usize,
) -> Result<(), SolverError> {
    if n == 0 || labels != n {
        return Err(SolverError::Invalid(format!(
            "{n} samples but {labels} labels"
        )));
    }
    if batch_size == 0 || record_every == 0 {
        return Err(SolverError::Invalid(
            "batch_size and record_every must be at least 1".into(),
        ));
    }
    Ok(())
}
