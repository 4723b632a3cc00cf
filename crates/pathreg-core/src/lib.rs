//! The mathematics of path-regularized three-layer parallel ReLU networks
//! (Ergen & Pilanci, *Path Regularization: A Convexity and Sparsity Inducing
//! Regularization for Parallel ReLU Networks*). No I/O lives here.

pub mod arrangement;
pub mod convex;
pub mod gates;
pub mod gemm;
pub mod limits;
pub mod linalg;
pub mod loss;
pub mod low_rank;
mod lp;
pub mod multiclass;
pub mod network;
mod nnls;
pub mod two_layer;
pub mod unconstrained;

pub use arrangement::{
    ArrangementMode, ArrangementSet, EnumerationEstimate, Mask, NeuronPattern, Triple,
    exact_enumeration_estimate,
};
pub use loss::Loss;
pub use network::{Gradient, ObjectiveValue, ParallelNetwork, Regularizer};

/// Errors of the mathematical core.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Arrays whose shapes do not fit together.
    #[error("shape mismatch: {0}")]
    Shape(String),
    /// Invalid or corrupt hyperplane arrangements.
    #[error("arrangements: {0}")]
    Arrangement(String),
    /// An invalid convex-program solution or parameter.
    #[error("convex program: {0}")]
    Convex(String),
    /// Sizes whose memory or work would exceed a stated limit (see [`limits`]
    /// and [`arrangement::exact_enumeration_estimate`]): refused before any of
    /// it is allocated or done.
    #[error("too large: {0}")]
    TooLarge(String),
}
