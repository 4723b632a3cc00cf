//! ADMM for the constrained program (21) over `K` sampled arrangements
//! (the triples of Table 3 and of [`pathreg_core::unconstrained`]), with
//! exact group zeros and a duality-gap certificate.
//!
//! # The splitting, and why ADMM
//!
//! With the packed variables `W = [Z | Z']` (`d × N`, `N = 2Km1`) the program
//! (21) over the sampled triples reads
//!
//! ```text
//! min  ½‖A(W) − y‖² + β' Σ_b ‖W_b‖_F     s.t.  X W ∈ K,
//! ```
//!
//! where `A(W)_i = Σ_c C_ic (XW)_ic` with `C_ic = ±D2_k(i) D1_kj(i)` (the
//! output of (11)), `W_b` is the `d × m1` block of one triple and sign, and
//! `K` is a product, over samples `i` and blocks `b`, of small polyhedral
//! cones in `R^{m1}`: the signs `(2D1_kj(i) − 1) I_kj u_j ≥ 0` of the first
//! ReLU layer and the half-space `(2D2_k(i) − 1) Σ_j D1_kj(i) u_j ≥ 0` of the
//! second. Every constraint of (21) is a constraint on the pre-activations
//! `U = XW`, one sample at a time. So we split
//!
//! ```text
//! min  ½‖A(W) − y‖² + ι_K(U) + β' Σ_b ‖V_b‖_F    s.t.  U = X W,  V = W
//! ```
//!
//! and run ADMM with `W` as one block and `(U, V)` as the other:
//! - the `(U, V)` step is exact and cheap: `U` is a projection onto each
//!   sample's cone (an orthant cut by one half-space, solved exactly by a
//!   sorted breakpoint search, `project_onto_cone`), and `V` is the
//!   group-lasso prox, which sets whole blocks exactly to zero;
//! - the `W` step is one linear system with matrix
//!   `AᵀA + ρ_u XᵀX ⊗ I + ρ_v I`. In the eigenbasis `XᵀX = Q diag(λ) Qᵀ`
//!   the last two terms are diagonal (`H = ρ_u λ + ρ_v`, the same for every
//!   column), and `AᵀA` has rank at most `n`, so the Woodbury identity solves
//!   it with one `n × n` Cholesky factor of `I + A H⁻¹ Aᵀ =
//!   I + (X̃ H⁻¹ X̃ᵀ) ⊙ (C Cᵀ)`, refactored only when `ρ` changes.
//!
//! An iteration is four products of `n × d` by `d × N` (or their
//! transposes) and one pass over `U`; no `n·m1 × d·m1` constraint matrix is
//! ever formed (for musk-1 one triple's would take 6.4 GB). An augmented
//! Lagrangian with an accelerated proximal inner solver, the other choice the
//! literature makes for two-layer networks (scnn), was tried first: its inner
//! problems inherit the conditioning of `XᵀX` and of the many active cone
//! constraints, and on a 30-point spiral its FISTA solves stalled at an
//! objective 38 % above Clarabel's. Variables are stored rotated
//! (`W̃ = QᵀW`, `X̃ = XQ`): the group norms are invariant, so the prox is
//! unchanged, and `H` is diagonal.
//!
//! The penalties `ρ_v = τ ρ_u` (`τ` the mean eigenvalue of `XᵀX`) adapt to
//! balance the primal and dual residuals (as OSQP does), and the iteration
//! is over-relaxed by [`AdmmSettings::relaxation`].
//!
//! # Stopping, feasibility and the certificate
//!
//! Every [`AdmmSettings::check_every`] iterations the sparse iterate `V` is
//! made feasible and evaluated. ADMM's `V` meets the constraints only in
//! the limit, so each block is moved along a point strictly inside its cone,
//! the gates themselves (`Problem::restore`), by the least step that
//! satisfies every constraint. The returned point is therefore feasible (up
//! to rounding) and its objective is an upper bound on the optimum. Both
//! the objective and the relative violation `h(V)/Σ_b ‖V_b‖_F` (the measure
//! Table 3 reports for (11)+SGD) come from the kernels of (11),
//! independently of the projections above. A lower bound comes from the dual
//! of (21): for any `v ∈ R^n` and multipliers `η_b ∈ K_b*`,
//! `‖X̃ᵀ(C_b ⊙ v + η_b)‖_F ≤ β'` for all `b` makes `yᵀv − ½‖v‖²` a lower
//! bound. We take `v = y − f(V)` and `η = ρ_u Π_{K*}(−Λ)` (at a fixed point
//! of ADMM `−ρ_u Λ` is exactly the optimal multiplier), scale both by the
//! largest ratio and maximize the bound along that ray. The bound holds for
//! any iterate, so the reported gap is a certificate, never an estimate. It
//! certifies optimality over the given triples (the program the penalized
//! form (11) approximates), not over all arrangements.
//!
//! # What limits it, and what did not help
//!
//! On parkinsons (K = 8, m1 = 10, β = 0.5; 7 100 iterations to the default
//! tolerances) the lower bound is within 1e-4 of Clarabel's optimum after
//! about 4 300 iterations and the unrestored `V`'s objective within 1e-7
//! after 4 200, but `V`'s relative violation reaches 1e-6 only near 7 000,
//! and restoring it earlier costs about a hundred times its violation in
//! objective. The primal side, ADMM's linear rate on the cone constraints,
//! is what a faster method must improve. Measured against that baseline
//! (iteration counts and gaps, which do not depend on the machine's load):
//! - type-II Anderson acceleration of the Douglas–Rachford form `s = (U + Λ,
//!   V + Γ)` (memory 5, safeguarded by the residual): 5 420 iterations, but
//!   its extra passes over the state doubled the time per iteration;
//! - float32 products: the certified gap stalls at 3.7e-3 (all four
//!   products in float32) or 4.1e-4 (only `X̃W̃` and `X̃ᵀ(U − Λ)`) within
//!   20 000 iterations, above the 1e-4 default, so the iteration stays float64;
//! - restoring column by column (each neuron along its own gate column, then
//!   the whole gate point for the second layer): 8 280 iterations;
//! - a primal point from the dual side (each block of `V`'s support along
//!   its dual block `X̃ᵀ(C_b ⊙ v + η_b)`, the direction stationarity gives it,
//!   with the scales refitted by coordinate descent, then restored): worse
//!   than the restored `V` at every check (8.549 against 8.530 at 7 000);
//! - biasing the `ρ` rule towards primal feasibility (×10 to ×1 000), or
//!   equilibrating the constraint rows (`x_i/‖x_i‖`): no convergence within
//!   20 000, and 12 390 iterations;
//! - a working set of blocks grown by the priced dual ratios
//!   `‖X̃ᵀ Π_K(C_b ⊙ v)‖/β'` (ionosphere, K = 20, m1 = 10, 8 blocks first):
//!   gap 0.998 after 20 000 iterations against 0.092 on all 40 blocks; the
//!   priced ratio bounds a block's exact one only loosely, and at β = 0.5
//!   most blocks are active anyway (14 of 16 on parkinsons).
//!
//! What did help is second order: a Newton polish of `V` on the faces `U`
//! identifies, with refined multipliers for its certificate (module
//! `polish`, opt-in through [`AdmmSettings::polish_from`]). It meets the
//! default tolerances at 1 600 iterations instead of 7 100 (times in
//! `cargo xtask bench`).

mod polish;

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis, Zip};
use pathreg_core::Loss;
use pathreg_core::convex::group_weight;
use pathreg_core::gemm::matmul;
use pathreg_core::linalg::{Cholesky, gram, symmetric_eigen};
use pathreg_core::unconstrained::{
    Masks, Objective11, Objective11Value, SampledArrangements, SampledVariables, evaluate,
};
use rayon::prelude::*;

use crate::SolverError;

/// The revision of what [`solve_admm`] returns for the same inputs and
/// settings, for the pipeline's cache keys: bumped whenever a change of
/// this module changes its results. 2: the polish releases the faces its
/// multipliers reject. 3: the polish's line search measures the
/// objective's change along the step without cancellation.
pub const REVISION: u32 = 3;

/// Tolerances and limits of [`solve_admm`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdmmSettings {
    /// Relative constraint violation `h(V)/Σ_b ‖V_b‖_F` to reach.
    pub tol_violation: f64,
    /// Relative duality gap to reach.
    pub tol_gap: f64,
    /// Iterations at most.
    pub max_iterations: usize,
    /// Iterations between checks of the stopping rule (and of `ρ`).
    pub check_every: usize,
    /// Initial `ρ_u`.
    pub rho: f64,
    /// Over-relaxation `α ∈ (0, 2)` (1 is plain ADMM).
    pub relaxation: f64,
    /// Adapt `ρ` to balance the residuals.
    pub adapt_rho: bool,
    /// Iterations before the first Newton polish of the iterate on its
    /// identified faces (see the module documentation); the next come at
    /// each doubling of the count. A multiple of `check_every`; 0 for none.
    #[serde(default)]
    pub polish_from: usize,
}

impl Default for AdmmSettings {
    fn default() -> Self {
        Self {
            tol_violation: 1e-6,
            tol_gap: 1e-4,
            max_iterations: 20_000,
            check_every: 10,
            rho: 1.0,
            relaxation: 1.6,
            adapt_rho: true,
            polish_from: 0,
        }
    }
}

impl AdmmSettings {
    fn validate(&self) -> Result<(), SolverError> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        if !positive(self.tol_violation) || !positive(self.tol_gap) || !positive(self.rho) {
            return Err(SolverError::Invalid(format!(
                "ADMM tolerances and ρ must be positive and finite (violation {}, gap {}, ρ {})",
                self.tol_violation, self.tol_gap, self.rho
            )));
        }
        if !(self.relaxation > 0.0 && self.relaxation < 2.0) {
            return Err(SolverError::Invalid(format!(
                "ADMM relaxation must lie in (0, 2), got {}",
                self.relaxation
            )));
        }
        if self.max_iterations == 0 || self.check_every == 0 {
            return Err(SolverError::Invalid(
                "ADMM needs max_iterations ≥ 1 and check_every ≥ 1".into(),
            ));
        }
        if !self.polish_from.is_multiple_of(self.check_every) {
            return Err(SolverError::Invalid(format!(
                "ADMM's polish_from ({}) must be a multiple of check_every ({})",
                self.polish_from, self.check_every
            )));
        }
        Ok(())
    }
}

/// The state at one check, for convergence plots.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdmmPoint {
    /// Iterations so far.
    pub iteration: usize,
    /// Seconds so far (set-up included).
    pub time_s: f64,
    /// Objective of (21) at `V`.
    pub objective: f64,
    /// The certified lower bound.
    pub lower_bound: f64,
    /// `(objective − lower_bound)/objective`.
    pub relative_gap: f64,
    /// `h(V)/Σ_b ‖V_b‖_F`.
    pub violation: f64,
    /// `ρ_u` in force.
    pub rho: f64,
}

/// The result of [`solve_admm`].
#[derive(Debug, Clone)]
pub struct AdmmSolve {
    /// The final sparse iterate `V` (blocks outside the support are exactly zero).
    pub variables: SampledVariables,
    /// Its last check.
    pub last: AdmmPoint,
    /// Both tolerances were met.
    pub converged: bool,
    /// Every check.
    pub history: Vec<AdmmPoint>,
}

/// One sample's cone data for one arrangement `k`: the first-layer signs
/// `σ_j = (2D1_j − 1) I_j`, which neurons are active (`D1_j = 1`) and the
/// second layer's side `2D2 − 1`.
#[derive(Clone, Copy)]
struct ConeRow<'a> {
    sigma: &'a [f64],
    active: &'a [f64],
    side: f64,
}

/// Projects `w` (the `m1` pre-activations of one block at one sample) onto
/// `{u : σ_j u_j ≥ 0 ∀j, side · Σ_{j active} u_j ≥ 0}`, in place.
///
/// With `v = σ ⊙ u` the set is `{v ≥ 0, aᵀv ≥ 0}`, `a_j = side·σ_j` on the
/// active neurons (there `σ_j = I_j`) and 0 elsewhere. If `aᵀ(σ⊙w)+ ≥ 0`
/// the projection is the orthant's; otherwise it is `(σ⊙w + λa)+` with the
/// unique `λ > 0` where `g(λ) = aᵀ(σ⊙w + λa)+` vanishes. `g` is piecewise
/// linear and increasing, so `λ` is found exactly by walking its sorted
/// breakpoints. `events` is scratch space.
fn project_onto_cone(w: &mut [f64], cone: ConeRow<'_>, events: &mut Vec<(f64, i8)>) {
    let mut g = 0.0;
    let mut slope = 0i64;
    events.clear();
    for ((wj, s), act) in w.iter().zip(cone.sigma).zip(cone.active) {
        if *act == 0.0 {
            continue;
        }
        let vj = s * wj;
        let aj = cone.side * s;
        if vj > 0.0 {
            g += aj * vj;
            slope += 1;
            if aj < 0.0 {
                events.push((vj, -1));
            }
        } else if aj > 0.0 {
            events.push((-vj, 1));
        }
    }
    let lambda = if g >= 0.0 {
        0.0
    } else {
        events.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
        let mut at = 0.0;
        let mut root = None;
        for &(point, change) in events.iter() {
            if slope > 0 && g + slope as f64 * (point - at) >= 0.0 {
                root = Some(at - g / slope as f64);
                break;
            }
            g += slope as f64 * (point - at);
            at = point;
            slope += i64::from(change);
            if g >= 0.0 {
                root = Some(at);
                break;
            }
        }
        match root {
            Some(r) => r,
            None if slope > 0 => at - g / slope as f64,
            None => at,
        }
    };
    for ((wj, s), act) in w.iter_mut().zip(cone.sigma).zip(cone.active) {
        let mut vj = s * *wj;
        if *act != 0.0 {
            vj += lambda * cone.side * s;
        }
        *wj = s * vj.max(0.0);
    }
}

/// The fixed data of one solve, in the rotated basis.
struct Problem {
    /// `X̃ = XQ`, `n × d`.
    x_rot: Array2<f64>,
    /// Eigenvalues of `XᵀX` (the columns' squared norms of `X̃`).
    eigenvalues: Array1<f64>,
    /// `Q`, `d × d`.
    basis: Array2<f64>,
    /// `C`, `n × N`: `±D2_k D1_kj` (the output's coefficients).
    coefficients: Array2<f64>,
    /// `C Cᵀ`, `n × n`.
    coefficient_gram: Array2<f64>,
    /// `X̃X̃ᵀ`, `n × n`, computed at the first polish (only the polish
    /// reads it).
    kernel: std::sync::OnceLock<Array2<f64>>,
    /// `σ`, `n × Km1` (shared by `Z` and `Z'`).
    sigma: Array2<f64>,
    /// `D1`, `n × Km1`.
    active: Array2<f64>,
    /// `2D2 − 1`, `n × K`.
    side: Array2<f64>,
    /// `X̃ᵀ (C ⊙ y)`, `d × N`.
    a_t_y: Array2<f64>,
    /// The gates as a point of each cone, rotated: column `k·m1 + j` is
    /// `Qᵀ I_kj |w2_kj| w1_kj`, `d × Km1`.
    gates: Array2<f64>,
    /// `X̃` times [`Self::gates`], `n × Km1`.
    gate_activations: Array2<f64>,
    k: usize,
    m1: usize,
    /// `β'`.
    weight: f64,
    /// `τ = ρ_v/ρ_u`.
    tau: f64,
}

fn product(a: ArrayView2<f64>, b: ArrayView2<f64>) -> Array2<f64> {
    let mut out = Array2::zeros((a.nrows(), b.ncols()));
    matmul(a, b, out.view_mut(), false);
    out
}

impl Problem {
    fn new(
        x: ArrayView2<f64>,
        y: ArrayView1<f64>,
        arrangements: &SampledArrangements,
        masks: &Masks,
        weight: f64,
    ) -> Result<Self, SolverError> {
        let (n, d) = x.dim();
        let (k, m1) = (arrangements.k(), arrangements.m1());
        let signs = Array1::from_iter(
            arrangements
                .signs()
                .iter()
                .map(|positive| if *positive { 1.0 } else { -1.0 }),
        );
        let (eigenvalues, basis) = symmetric_eigen(gram(x).view())?;
        let eigenvalues = eigenvalues.mapv(|l| l.max(0.0));
        let x_rot = product(x, basis.view());
        let km1 = k * m1;
        let d1 = masks.d1();
        let d2 = masks.d2();
        let mut coefficients = Array2::zeros((n, 2 * km1));
        let mut sigma = Array2::zeros((n, km1));
        for i in 0..n {
            for c in 0..km1 {
                let gate = d2[[i, c / m1]] * d1[[i, c]];
                coefficients[[i, c]] = gate;
                coefficients[[i, km1 + c]] = -gate;
                sigma[[i, c]] = (2.0 * d1[[i, c]] - 1.0) * signs[c];
            }
        }
        let positive = coefficients.slice(ndarray::s![.., ..km1]);
        let coefficient_gram = product(positive, positive.t()) * 2.0;
        let a_t_y = product(x_rot.t(), (&coefficients * &y.insert_axis(Axis(1))).view());
        let tau = (eigenvalues.sum() / d.max(1) as f64).max(f64::MIN_POSITIVE);
        let gate_points = Array2::from_shape_fn((d, km1), |(a, c)| {
            let (kk, j) = (c / m1, c % m1);
            signs[c] * arrangements.w2_abs()[[kk, j]] * arrangements.w1()[[kk, a, j]]
        });
        let gates = product(basis.t(), gate_points.view());
        let gate_activations = product(x_rot.view(), gates.view());
        Ok(Self {
            x_rot,
            eigenvalues,
            basis,
            coefficients,
            coefficient_gram,
            kernel: std::sync::OnceLock::new(),
            sigma,
            active: d1.clone(),
            side: d2.mapv(|v| 2.0 * v - 1.0),
            a_t_y,
            gates,
            gate_activations,
            k,
            m1,
            weight,
            tau,
        })
    }

    fn columns(&self) -> usize {
        2 * self.k * self.m1
    }

    /// `X̃X̃ᵀ`, computed once.
    fn kernel(&self) -> &Array2<f64> {
        self.kernel.get_or_init(|| self.x_rot.dot(&self.x_rot.t()))
    }

    /// Projects every sample's every block of `u` onto its cone.
    fn project(&self, u: &mut Array2<f64>) {
        u.axis_iter_mut(Axis(0))
            .into_par_iter()
            .enumerate()
            .for_each_init(Vec::new, |events, (i, mut row)| {
                let row = row.as_slice_mut().expect("rows are contiguous");
                self.project_row(i, row, events);
            });
    }

    /// Projects every block of sample `i`'s row onto its cone, in place.
    fn project_row(&self, i: usize, row: &mut [f64], events: &mut Vec<(f64, i8)>) {
        for (b, block) in row.chunks_exact_mut(self.m1).enumerate() {
            self.project_block(i, b, block, events);
        }
    }

    /// Projects block `b`'s `m1` pre-activations at sample `i` onto its
    /// cone, in place.
    fn project_block(&self, i: usize, b: usize, block: &mut [f64], events: &mut Vec<(f64, i8)>) {
        let (k, m1) = (self.k, self.m1);
        let kk = b % k;
        let sigma = self.sigma.row(i);
        let active = self.active.row(i);
        let (sigma, active) = (sigma.as_slice().unwrap(), active.as_slice().unwrap());
        let cols = kk * m1..(kk + 1) * m1;
        let cone = ConeRow {
            sigma: &sigma[cols.clone()],
            active: &active[cols],
            side: self.side[[i, kk]],
        };
        project_onto_cone(block, cone, events);
    }

    /// `Π_{K*}(w) = w + Π_K(−w)` (Moreau), for every sample and block.
    fn project_dual(&self, w: &Array2<f64>) -> Array2<f64> {
        let mut negative = -w;
        self.project(&mut negative);
        w + &negative
    }

    /// The Cholesky factor of `I + (X̃ H⁻¹ X̃ᵀ) ⊙ (C Cᵀ)` and `H⁻¹`.
    fn factor(&self, rho: f64) -> Result<(Cholesky, Array1<f64>), SolverError> {
        let inverse = self.eigenvalues.mapv(|l| 1.0 / (rho * (l + self.tau)));
        let scaled = &self.x_rot * &inverse.view().insert_axis(Axis(0));
        let mut system = product(scaled.view(), self.x_rot.t()) * &self.coefficient_gram;
        system.diag_mut().mapv_inplace(|v| v + 1.0);
        Ok((Cholesky::new(system.view())?, inverse))
    }

    /// The group-lasso prox with threshold `t` on every `d × m1` block.
    fn prox(&self, w: &mut Array2<f64>, t: f64) {
        for mut block in w.axis_chunks_iter_mut(Axis(1), self.m1) {
            let norm = block.iter().map(|v| v * v).sum::<f64>().sqrt();
            let scale = if norm > t { 1.0 - t / norm } else { 0.0 };
            block.mapv_inplace(|v| v * scale);
        }
    }

    /// Moves every block of `v` along its cone's gate point until it is
    /// feasible: `V_b + ε_b E_k` with the least `ε_b ≥ 0` that makes each
    /// constraint hold, where `E_k = [I_kj |w2_kj| w1_kj]_j` lies in the cone
    /// `C_k` (its pre-activations have the signs the gates define) and
    /// strictly inside every constraint the gates do not meet with equality.
    /// A block that would move further than its own norm is set to zero
    /// instead (zero is feasible); a block with a violated constraint that
    /// its gate point meets with equality is left as it is (its violation
    /// stays reported).
    fn restore(&self, v: &Array2<f64>) -> Array2<f64> {
        let (k, m1) = (self.k, self.m1);
        let blocks = 2 * k;
        let xv = product(self.x_rot.view(), v.view());
        let steps: Vec<Vec<f64>> = (0..xv.nrows())
            .into_par_iter()
            .map(|i| {
                let (u, e) = (xv.row(i), self.gate_activations.row(i));
                let (sigma, active) = (self.sigma.row(i), self.active.row(i));
                (0..blocks)
                    .map(|b| {
                        let kk = b % k;
                        let mut step = 0.0f64;
                        let mut need = |value: f64, direction: f64| {
                            if value < 0.0 {
                                step = step.max(if direction > 0.0 {
                                    -value / direction
                                } else {
                                    f64::INFINITY
                                });
                            }
                        };
                        let (mut sum_u, mut sum_e) = (0.0, 0.0);
                        for j in 0..m1 {
                            let c = kk * m1 + j;
                            let (uj, ej) = (u[b * m1 + j], e[c]);
                            need(sigma[c] * uj, sigma[c] * ej);
                            sum_u += active[c] * uj;
                            sum_e += active[c] * ej;
                        }
                        let side = self.side[[i, kk]];
                        need(side * sum_u, side * sum_e);
                        step
                    })
                    .collect()
            })
            .collect();
        let mut restored = v.clone();
        for b in 0..blocks {
            let step = steps.iter().map(|row| row[b]).fold(0.0, f64::max);
            if step > 0.0 && step.is_finite() {
                let kk = b % k;
                let gate = self.gates.slice(ndarray::s![.., kk * m1..(kk + 1) * m1]);
                let mut block = restored.slice_mut(ndarray::s![.., b * m1..(b + 1) * m1]);
                let frobenius =
                    |a: ndarray::ArrayView2<f64>| a.iter().map(|x| x * x).sum::<f64>().sqrt();
                if step * frobenius(gate) >= frobenius(block.view()) {
                    block.fill(0.0);
                } else {
                    block.scaled_add(step, &gate);
                }
            }
        }
        restored
    }

    /// The dual bound of (21) at `v`: with ADMM's multipliers `eta`
    /// (`η = ρ_u Π_{K*}(−Λ)`; at a fixed point of ADMM `−ρ_u Λ` is exactly
    /// the optimal multiplier), or a
    /// block's ratio from `faces` where it is given and smaller, `v` and `η`
    /// are scaled by the largest ratio `‖X̃ᵀ(C_b ⊙ v + η_b)‖_F / β'` and the
    /// bound `t·yᵀv − ½t²‖v‖²` is maximized over `t ∈ [0, 1/max(1, ratio)]`.
    fn lower_bound(
        &self,
        y: ArrayView1<f64>,
        v: ArrayView1<f64>,
        eta: &Array2<f64>,
        faces: &[Option<f64>],
    ) -> f64 {
        let multipliers = eta + &(&self.coefficients * &v.insert_axis(Axis(1)));
        let dual_blocks = product(self.x_rot.t(), multipliers.view());
        let largest = dual_blocks
            .axis_chunks_iter(Axis(1), self.m1)
            .zip(faces)
            .map(|(b, face)| {
                let ratio = b.iter().map(|v| v * v).sum::<f64>().sqrt() / self.weight;
                face.map_or(ratio, |f| ratio.min(f))
            })
            .fold(0.0, f64::max);
        let (yv, vv) = (y.dot(&v), v.dot(&v));
        let cap = 1.0 / largest.max(1.0);
        let t = if vv > 0.0 {
            (yv / vv).clamp(0.0, cap)
        } else {
            cap
        };
        t * yv - 0.5 * t * t * vv
    }

    /// `W = Q W̃` as the variables of (11).
    fn unrotate(&self, w_rot: &Array2<f64>) -> Result<SampledVariables, SolverError> {
        Ok(SampledVariables::from_packed(
            product(self.basis.view(), w_rot.view()),
            self.k,
            self.m1,
        )?)
    }
}

/// ADMM's iterates (rotated basis, scaled duals).
struct Iterates {
    w: Array2<f64>,
    xw: Array2<f64>,
    u: Array2<f64>,
    v: Array2<f64>,
    lambda: Array2<f64>,
    gamma: Array2<f64>,
    /// Scratch of the `W` step, `n × N` and `d × N`.
    sample_buffer: Array2<f64>,
    variable_buffer: Array2<f64>,
}

fn squared_norm(a: &Array2<f64>) -> f64 {
    a.iter().map(|v| v * v).sum()
}

/// Solves (21) with squared loss over the arrangements' triples on `x` by
/// ADMM (see the [module documentation](self)), from `warm_start` or zero.
pub fn solve_admm(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    arrangements: &SampledArrangements,
    beta: f64,
    m2: usize,
    settings: &AdmmSettings,
    warm_start: Option<&SampledVariables>,
) -> Result<AdmmSolve, SolverError> {
    let start = Instant::now();
    settings.validate()?;
    let (n, d) = x.dim();
    if y.len() != n || arrangements.d() != d {
        return Err(SolverError::Invalid(format!(
            "data {n} × {d}, {} labels, arrangements in R^{}",
            y.len(),
            arrangements.d()
        )));
    }
    if !(beta.is_finite() && beta > 0.0) || m2 == 0 {
        return Err(SolverError::Invalid(format!(
            "need β > 0 and m2 ≥ 1 (β = {beta}, m2 = {m2})"
        )));
    }
    let (k, m1) = (arrangements.k(), arrangements.m1());
    let masks = arrangements.masks(x)?;
    let weight = group_weight(beta, m2);
    let problem = Problem::new(x, y, arrangements, &masks, weight)?;
    let objective = Objective11 {
        loss: Loss::Squared,
        beta,
        m2,
        lambda: 0.0,
    };
    let columns = problem.columns();
    let w0 = match warm_start {
        Some(vars) if vars.k() == k && vars.m1() == m1 && vars.d() == d => {
            product(problem.basis.t(), vars.packed().view())
        }
        Some(_) => {
            return Err(SolverError::Invalid(
                "the warm start's shape differs from the arrangements'".into(),
            ));
        }
        None => Array2::zeros((d, columns)),
    };
    let xw = product(problem.x_rot.view(), w0.view());
    let mut u = xw.clone();
    problem.project(&mut u);
    let mut it = Iterates {
        v: w0.clone(),
        w: w0,
        xw,
        u,
        lambda: Array2::zeros((n, columns)),
        gamma: Array2::zeros((d, columns)),
        sample_buffer: Array2::zeros((n, columns)),
        variable_buffer: Array2::zeros((d, columns)),
    };
    let mut rho = settings.rho;
    let (mut llt, mut inverse) = problem.factor(rho)?;
    let alpha = settings.relaxation;
    let mut history = Vec::new();
    let mut kept = Kept {
        point: None,
        lower_bound: f64::NEG_INFINITY,
    };
    let mut iteration = 0;
    loop {
        // The residuals of the batch's last iteration adapt ρ.
        for _ in 1..settings.check_every {
            step(&problem, &mut it, rho, alpha, &llt, &inverse);
        }
        let (u_old, v_old) = (it.u.clone(), it.v.clone());
        step(&problem, &mut it, rho, alpha, &llt, &inverse);
        iteration += settings.check_every;
        let primal = squared_norm(&(&it.xw - &it.u)) + problem.tau * squared_norm(&(&it.w - &it.v));
        let dual = squared_norm(&(&it.u - &u_old)) + problem.tau * squared_norm(&(&it.v - &v_old));
        let polish_now = settings.polish_from > 0
            && iteration % settings.polish_from == 0
            && (iteration / settings.polish_from).is_power_of_two();
        let (vars, point) = check(
            &problem,
            x,
            y,
            &masks,
            &it,
            rho,
            &objective,
            iteration,
            start,
            polish_now.then_some(settings.tol_violation),
            &mut kept,
        )?;
        history.push(point);
        let converged =
            point.violation <= settings.tol_violation && point.relative_gap <= settings.tol_gap;
        if converged || iteration >= settings.max_iterations {
            return Ok(AdmmSolve {
                variables: vars,
                last: point,
                converged,
                history,
            });
        }
        // OSQP's rule: ρ ← ρ·sqrt(relative primal / relative dual residual).
        let primal_scale =
            (squared_norm(&it.u) + problem.tau * squared_norm(&it.v)).max(f64::MIN_POSITIVE);
        let dual_scale = (squared_norm(&it.lambda) + problem.tau * squared_norm(&it.gamma))
            .max(f64::MIN_POSITIVE);
        let factor = ((primal / primal_scale) / (dual / dual_scale).max(f64::MIN_POSITIVE))
            .sqrt()
            .sqrt();
        if settings.adapt_rho && factor.is_finite() && !(0.2..=5.0).contains(&factor) {
            let factor = factor.clamp(1e-3, 1e3);
            rho *= factor;
            it.lambda /= factor;
            it.gamma /= factor;
            (llt, inverse) = problem.factor(rho)?;
        }
    }
}

/// One ADMM iteration (over-relaxed by `alpha`). Every elementwise pass
/// is fused into one loop per output, with buffers reused between
/// iterations; the arithmetic of each entry is the unfused formula's.
fn step(
    p: &Problem,
    it: &mut Iterates,
    rho: f64,
    alpha: f64,
    llt: &Cholesky,
    inverse: &Array1<f64>,
) {
    let rho_v = rho * p.tau;
    let inverse = inverse.view().insert_axis(Axis(1));
    // W step: (AᵀA + H) W̃ = Aᵀy + ρ_u X̃ᵀ(U − Λ) + ρ_v(V − Γ), by Woodbury.
    Zip::from(&mut it.sample_buffer)
        .and(&it.u)
        .and(&it.lambda)
        .par_for_each(|b, u, l| *b = (u - l) * rho);
    it.w.assign(&p.a_t_y);
    matmul(p.x_rot.t(), it.sample_buffer.view(), it.w.view_mut(), true);
    Zip::from(&mut it.w)
        .and(&it.v)
        .and(&it.gamma)
        .and_broadcast(&inverse)
        .par_for_each(|r, v, g, h| *r = (*r + rho_v * (v - g)) * h);
    matmul(
        p.x_rot.view(),
        it.w.view(),
        it.sample_buffer.view_mut(),
        false,
    );
    let mut t = Array1::from_iter(
        it.sample_buffer
            .rows()
            .into_iter()
            .zip(p.coefficients.rows())
            .map(|(q, c)| (&q * &c).sum()),
    );
    llt.solve_in_place(&mut t);
    Zip::from(&mut it.sample_buffer)
        .and(&p.coefficients)
        .and_broadcast(&t.view().insert_axis(Axis(1)))
        .par_for_each(|e, c, t| *e = c * t);
    matmul(
        p.x_rot.t(),
        it.sample_buffer.view(),
        it.variable_buffer.view_mut(),
        false,
    );
    Zip::from(&mut it.w)
        .and(&it.variable_buffer)
        .and_broadcast(&inverse)
        .par_for_each(|w, c, h| *w -= c * h);
    matmul(p.x_rot.view(), it.w.view(), it.xw.view_mut(), false);
    // (U, V) step on the relaxed point, then the scaled duals: Λ holds the
    // relaxed point until U is its projection.
    it.lambda
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(it.u.axis_iter_mut(Axis(0)))
        .zip(it.xw.axis_iter(Axis(0)))
        .enumerate()
        .for_each_init(Vec::new, |events, (i, ((mut lambda, mut u), xw))| {
            Zip::from(&mut lambda)
                .and(&mut u)
                .and(&xw)
                .for_each(|l, u, x| {
                    *l += x * alpha + *u * (1.0 - alpha);
                    *u = *l;
                });
            p.project_row(i, u.as_slice_mut().expect("rows are contiguous"), events);
            Zip::from(&mut lambda).and(&u).for_each(|l, u| *l -= u);
        });
    Zip::from(&mut it.gamma)
        .and(&mut it.v)
        .and(&it.w)
        .par_for_each(|g, v, w| {
            *g += w * alpha + *v * (1.0 - alpha);
            *v = *g;
        });
    p.prox(&mut it.v, p.weight / rho_v);
    Zip::from(&mut it.gamma)
        .and(&it.v)
        .par_for_each(|g, v| *g -= v);
}

/// `h/Σ‖Z‖` of an evaluation (`h` where every group is zero).
fn relative(value: &Objective11Value) -> f64 {
    if value.group_norms > 0.0 {
        value.violation / value.group_norms
    } else {
        value.violation
    }
}

/// The best restored polish so far (within the violation tolerance), and
/// the best bound any polish certified (`−∞` before one does).
struct Kept {
    point: Option<(SampledVariables, Objective11Value)>,
    lower_bound: f64,
}

/// The restored iterate, or the best restored polish so far where that is
/// lower (`polish`, set to the violation tolerance, polishes now), with
/// its objective, violation and a certified lower bound: the best of this
/// check's and every polish's.
#[allow(clippy::too_many_arguments)]
fn check(
    p: &Problem,
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    masks: &Masks,
    it: &Iterates,
    rho: f64,
    objective: &Objective11,
    iteration: usize,
    start: Instant,
    polish: Option<f64>,
    kept: &mut Kept,
) -> Result<(SampledVariables, AdmmPoint), SolverError> {
    let mut vars = p.unrotate(&p.restore(&it.v))?;
    let (mut value, _) = evaluate(x, y, masks, &vars, objective)?;
    // Dual point: v = y − f(V) before restoration (the residual the
    // multipliers were found with).
    let (_, f) = evaluate(x, y, masks, &p.unrotate(&it.v)?, objective)?;
    let v = &y - &f;
    let no_faces = vec![None; 2 * p.k];
    let eta = p.project_dual(&(-&it.lambda)) * rho;
    let mut lower_bound = p.lower_bound(y, v.view(), &eta, &no_faces);
    if let Some(tolerance) = polish
        && let Some(polished) = polish::polish(p, &it.v, &it.u, y)
    {
        let candidate = p.unrotate(&p.restore(&polished.w))?;
        let (candidate_value, _) = evaluate(x, y, masks, &candidate, objective)?;
        let better = kept
            .point
            .as_ref()
            .is_none_or(|(_, best)| candidate_value.objective < best.objective);
        if better && relative(&candidate_value) <= tolerance {
            kept.point = Some((candidate, candidate_value));
        }
        // Blocks outside the polished support: their multipliers, refined
        // from ADMM's for the polished residual.
        let mut ratios = polished.ratios;
        ratios.par_iter_mut().enumerate().for_each(|(b, ratio)| {
            if ratio.is_none() {
                let columns = ndarray::s![.., b * p.m1..(b + 1) * p.m1];
                *ratio = Some(polish::refined_ratio(
                    p,
                    b,
                    polished.residual.view(),
                    eta.slice(columns),
                ));
            }
        });
        let bound = p.lower_bound(y, polished.residual.view(), &eta, &ratios);
        kept.lower_bound = kept.lower_bound.max(bound);
    }
    // The best polished point and bound so far stay valid at later checks.
    if let Some((best, best_value)) = &kept.point
        && best_value.objective < value.objective
    {
        (vars, value) = (best.clone(), *best_value);
    }
    lower_bound = lower_bound.max(kept.lower_bound);
    let primal = value.objective;
    let point = AdmmPoint {
        iteration,
        time_s: start.elapsed().as_secs_f64(),
        objective: primal,
        lower_bound,
        relative_gap: (primal - lower_bound) / primal.abs().max(f64::MIN_POSITIVE),
        violation: relative(&value),
        rho,
    };
    Ok((vars, point))
}
