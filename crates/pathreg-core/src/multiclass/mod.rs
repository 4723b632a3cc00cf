//! Ten-class (in general `C`-class) image classification at scale, in
//! float32: the non-convex parallel network with vector outputs and the
//! unconstrained convex program (11) with vector outputs (Appendix A.11),
//! as Figure 5 trains them.
//!
//! # Vector outputs (Appendix A.11)
//!
//! With labels `Y ∈ R^{n×C}` (one-hot) the network is
//! `f(X) = Σ_k ((X W1k)+ W2k)+ W3k` with `W3k ∈ R^{m2×C}`, and the path
//! regularizer replaces the last weight's square by the squared norm of the
//! row it contributes to all outputs:
//!
//! ```text
//! R(θ) = Σ_k sqrt( Σ_{j1,j2} ‖w1_kj1‖² w2_kj1j2² ‖w3_kj2‖² ).
//! ```
//!
//! A.11's dual has a matrix `V ∈ R^{n×C}` and the constraints
//! `‖Vᵀ ((X W1k)+ W2k)+‖_2 ≤ β`: an ℓ2 norm over the outputs where the scalar
//! case has an absolute value. Taking the dual of the dual over the same
//! arrangements as Section A.4 makes each triple's variable a `d × m1 × C`
//! block (one `d × m1` block per output) and its regularizer a norm over
//! the whole block. We use the group norm `‖Z_k‖_F` over that block, as the
//! two-layer convex reference implementations do for one-hot targets with
//! the squared loss: masks shared by all classes, one `d × C` matrix
//! `Z_kj = [z_kj1 … z_kjC]` per (triple, neuron), and
//!
//! ```text
//! (11)  min  (1/(nC)) Σ_i ‖f_i − y_i‖² + (λ/n) Σ_i h_i + β' Σ_{s,k} ‖Z^s_k‖_F,
//!       f_i,c = Σ_k D2_k(i) Σ_j D1_kj(i) x_iᵀ (z_kjc − z'_kjc),
//!       h_i   = Σ_{s,k,c} [ Σ_j ( −(2D1_kj(i) − 1) I_kj x_iᵀ z^s_kjc )+
//!                         + ( −(2D2_k(i) − 1) Σ_j D1_kj(i) x_iᵀ z^s_kjc )+ ]
//! ```
//!
//! with `β' = β/√m2`: the scalar program of [`crate::unconstrained`] per
//! output, its constraints holding for every class's column, and the group
//! norm joining the classes ([`Grouping::Joint`]). Taking one group per
//! class instead ([`Grouping::OneVsRest`]) separates the program into `C`
//! scalar programs, class `c` against the rest, on the same masks.
//! Predictions are by argmax. The loss is PyTorch's `MSELoss()`, the mean
//! over the `n·C` entries (the paper's (11) writes a sum `L`; Figure 5's
//! learning rates are those of its PyTorch code, which this scale matches:
//! see [`Model`]).
//!
//! The network that realizes a solution is [`to_network`] (Proposition 1
//! per block), checked by [`check_map`].
//!
//! # Float32 and determinism
//!
//! The large kernels are the masked forward products `U = X_b W`, the
//! adjoint `X_bᵀ B` and the network's two products, all through
//! [`crate::gemm::matmul`]: fixed blocks of output columns, each one
//! single-threaded faer product, so results do not depend on the thread
//! count. The elementwise passes split rows into fixed blocks and sum each
//! block's values in row order. Masks are stored as bits ([`Masks`]), and
//! computed in float32 from float32 data and gates, for training and test
//! data alike.
//!
//! # Layout
//!
//! - `data`: [`ImageSet`] (float32 samples and labels), one-hot targets,
//!   argmax accuracy;
//! - `masks`: [`Masks`];
//! - `model`: the [`Model`] trait the trainers use;
//! - `network`: [`NetworkModel`];
//! - `deep`: [`DeepNetworkModel`], stacked blocks trained end to end;
//! - `convex`: [`ConvexModel`] and [`Grouping`];
//! - `map`: [`to_network`] and [`check_map`].

mod convex;
mod data;
mod deep;
mod map;
mod masks;
mod model;
mod network;
#[cfg(test)]
mod tests;

pub use convex::{ConvexModel, Grouping};
pub use data::{ImageSet, argmax_rows, correct};
pub use deep::{DeepNetworkModel, DeepShape};
pub use map::{MapCheck, MappedNetwork, check_map, to_network};
pub use masks::Masks;
pub use model::{BatchValue, Model};
pub use network::{NetworkModel, NetworkShape};
