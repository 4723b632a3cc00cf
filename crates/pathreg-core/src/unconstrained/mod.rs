//! The unconstrained convex program (11) of the paper (Appendix A.1): the
//! convex model over `K` *sampled* arrangements (Remark 3.3 of [29], used for
//! Table 3 and Figure 5). The trainers for this program (SGD, Adam, FISTA)
//! are in `pathreg_solvers::unconstrained`.
//!
//! # The arrangements
//!
//! Arrangement `k` is defined by the gate vectors of a standard normal network,
//! `w1_kj ∈ R^d` and `w2_kj = I_kj |w2_kj|` (`j = 1..m1`). For any data `X`
//! (training *or* test) its masks are recomputed from the stored gates:
//!
//! ```text
//! D1_kj = 1[X w1_kj > 0],     D2_k = 1[Σ_j w2_kj (X w1_kj)+ > 0].
//! ```
//!
//! # The program
//!
//! We follow the convention of [`crate::convex`] (program (21): the sign
//! pattern inside the first-layer constraint, `A_k z = D2_k Σ_j D1_kj X z_j`).
//! With `β' = β/√m2` and variables `Z_k = [z_k1 … z_km1]`, `Z'_k` (`d × m1`):
//!
//! ```text
//! (11)  min  L( Σ_k A_k (Z_k − Z'_k), y ) + β' Σ_k (‖Z_k‖_F + ‖Z'_k‖_F) + λ (h(Z) + h(Z'))
//!
//!       h(Z) = Σ_{k,j} 1ᵀ( −(2 D1_kj − I) X (I_kj z_kj) )+      (first ReLU layer)
//!            + Σ_k     1ᵀ( −(2 D2_k − I) Σ_j D1_kj X z_kj )+     (second ReLU layer)
//! ```
//!
//! `h` sums the absolute constraint violations of the cones `C_k` of (21), so
//! `h(Z) = 0` iff every `Z_k ∈ C_k`. (The paper's (11) writes the sign pattern
//! in the second-layer term and `X̃(z' − z)`; the substitution `z_j ← I_j z_j`
//! and swapping the names `z ↔ z'` map one form onto the other.)
//!
//! # Storage
//!
//! The variables are stored *packed* ([`SampledVariables`]): one `d × 2Km1`
//! matrix `W = [Z | Z']` whose column `k·m1 + j` is `z_kj` and column
//! `Km1 + k·m1 + j` is `z'_kj`. Then every evaluation is one GEMM
//! `U = X W` (`n × 2Km1`), a masked elementwise pass, and — for the gradient —
//! one GEMM `Xᵀ B`. The `n × (d·m1·K)` matrix X̃ is never formed.
//!
//! # Proposition 1
//!
//! [`to_convex_solution`] turns `(Z, Z')` into a
//! [`ConvexSolution`](crate::convex::ConvexSolution) over the triples the
//! gates induce on the training data, so Proposition 1's map
//! ([`ConvexSolution::to_network`](crate::convex::ConvexSolution::to_network))
//! is reused unchanged. When `h(Z) + h(Z') = 0` the mapped network predicts
//! exactly like the convex model on that data; otherwise
//! `Σ_i |f_net(x_i) − f_convex(x_i)| ≤ h(Z) + h(Z')` (each violated
//! first- or second-layer term moves one output by at most its violation).
//!
//! # Layout
//!
//! - `gates`: the sampled arrangements ([`SampledArrangements`]) and their
//!   masks on any data ([`Masks`]);
//! - `variables`: the packed `(Z, Z')` ([`SampledVariables`]);
//! - `objective`: the kernels of (11) ([`evaluate`], [`data_term_and_gradient`],
//!   [`objective_and_gradient`], [`predict`], [`adjoint`],
//!   [`operator_norm_squared`]);
//! - `map`: Proposition 1 ([`violation_report`], [`to_convex_solution`],
//!   [`to_network`]);
//! - `accuracy`: sign accuracy of outputs, the convex model and networks.

mod accuracy;
mod gates;
mod map;
mod objective;
#[cfg(test)]
mod test_support;
mod variables;

pub use accuracy::{accuracy, hits, model_accuracy, network_accuracy};
pub use gates::{Masks, SampledArrangements};
pub use map::{ViolationReport, to_convex_solution, to_network, violation_report};
pub use objective::{
    DataTerm, Objective11, Objective11Value, Penalty, adjoint, data_term, data_term_and_gradient,
    evaluate, objective_and_gradient, operator_norm_squared, predict,
};
pub use variables::SampledVariables;
