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
//! # Vector outputs (Figure 5)
//!
//! With `C` outputs (Appendix A.11, [`solve_admm_outputs`]) every class has
//! its own columns `W_c`, the loss is `½‖A(W_c) − y_c‖²` summed over the
//! classes and every class's pre-activations meet the same cones. `A` is
//! the same map for every class, so the `W` step is `C` solves with the one
//! Woodbury factor, and the projections are per class. With joint groups
//! (a block's norm over its classes, the grouping of Figure 5's (11)) only
//! the prox couples the classes; the certificate's dual constraint is then
//! `‖[X̃ᵀ(C_b ⊙ v_c + η_bc)]_c‖_F ≤ β'`. One-vs-rest groups separate the
//! program by class, so it is solved as `C` scalar programs, each with its
//! own `ρ` and polish: on three classes of different scales one shared `ρ`
//! left a relative gap of 2.1e-3 after 20 000 iterations where the scalar
//! solves converge in 6 000–9 000. The size that fits is set by the `n × n`
//! factor and the `n × 2KCm1` iterates ([`memory_bytes`]): Figure 5 at full
//! size (60 000 rows) is out of reach, and the images kind refuses it.
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
//! - float32 products throughout: the certified gap stalls at 3.7e-3 (all
//!   four products in float32) or 4.1e-4 (only `X̃W̃` and `X̃ᵀ(U − Λ)`) within
//!   20 000 iterations, above the 1e-4 default; the residuals stop near
//!   1e-6. [`Precision::Float32`] therefore runs float32 products only while
//!   the residuals are above `200 ε32` (about 2.4e-5) and float64 after: parkinsons
//!   converges at 7 100 iterations (2 890 of them float32) to an objective
//!   within 3e-8 of float64's. On small `d` the conversions cost what the
//!   float32 products save. On musk-1 (`d` = 166, K = 40, m1 = 100, with the
//!   polish; `cargo xtask bench --only constrained`, one run each) both meet
//!   the tolerances at 1 600 iterations, in 310 s with float32 products (all
//!   of them: the polish at 1 600 converged before the residuals reached the
//!   floor) against 438 s in float64, 1.41×;
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
//! - the best point on the ray through the restored `V` (the cones and the
//!   relative violation are invariant along it, so `t·V` with the `t ≥ 0`
//!   that minimizes the quadratic loss plus the linear penalty is feasible
//!   and never worse than zero): on ionosphere (K = 8, m1 = 10) it takes the
//!   check at 510 iterations from 668.7 to 133.6 (zero scores 140.5) but
//!   the one at 19 510 only from 5.444948 to 5.444932, so the solve still
//!   stops at the 20 000 cap with a gap of 1.3e-3; not adopted, since it
//!   would change every locked result for no change in convergence.
//!
//! What did help is second order: a Newton polish of `V` on the faces `U`
//! identifies, with refined multipliers for its certificate (module
//! `polish`, opt-in through [`AdmmSettings::polish_from`]). It meets the
//! default tolerances at 1 600 iterations instead of 7 100 (times in
//! `cargo xtask bench`). Clarabel's cost grows far faster with `d` than
//! ADMM's: with the same model (K = 8, m1 = 10) the polished solve meets
//! the tolerances at 100 iterations on sonar (`d` = 60) and 200 on musk-1
//! (`d` = 166), where Clarabel's interior point takes 107 and 148 times as
//! long (`cargo xtask bench --only constrained`, one run each).
//! On ionosphere (`d` = 33) its lower bound is within 4e-6 of Clarabel's
//! optimum after 9 000 iterations, but its restored `V` is not within 1e-4
//! by the 20 000 cap, and no polish settles by full Newton steps; a polish
//! that continues by steps stopped at the first face crossed (an active
//! set) settles at 6 400 iterations, and the solve converges at 7 010.

mod polish;

use std::time::Instant;

use ndarray::{Array1, Array2, ArrayView1, ArrayView2, ArrayViewMut2, Axis, Zip};
use pathreg_core::Loss;
use pathreg_core::convex::group_weight;
use pathreg_core::gemm::matmul;
use pathreg_core::linalg::{Cholesky, gram, symmetric_eigen};
use pathreg_core::multiclass::Grouping;
use pathreg_core::unconstrained::{
    Masks, Objective11, Objective11Value, SampledArrangements, SampledVariables, evaluate,
};
use rayon::prelude::*;

use crate::SolverError;

/// The revision of what [`solve_admm`] returns for the same inputs and
/// settings, for the pipeline's cache keys: bumped whenever a change of
/// this module changes its results. 2: the polish releases the faces its
/// multipliers reject. 3: the polish's line search measures the
/// objective's change along the step without cancellation. 4: a polish
/// whose faces nearly settle continues by steps stopped at the first face
/// crossed.
pub const REVISION: u32 = 4;

/// Bytes ADMM holds on `n` samples in `R^d` with `columns` columns
/// (`2KCm1`): the `n × n` system and its factor (and the polish's kernel),
/// about ten `n × columns` arrays (data, iterates, scratch and the check's
/// copies) and eight `d × columns` ones, in float64, and with float32
/// products their float32 operands.
pub fn memory_bytes(n: usize, d: usize, columns: usize, precision: Precision) -> u64 {
    use pathreg_core::limits::{array_bytes, total_bytes};
    let float32 = match precision {
        Precision::Float64 => 0,
        Precision::Float32 => 1,
    };
    total_bytes(&[
        array_bytes(8, &[3, n, n]),
        array_bytes(8, &[10, n, columns]),
        array_bytes(8, &[8, d, columns]),
        array_bytes(8, &[n + d, d]),
        array_bytes(4, &[float32, n + d, columns + d]),
    ])
}

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
    /// The arithmetic of the iteration's four products (the checks, the
    /// certificate and the polish are float64 either way).
    #[serde(default, skip_serializing_if = "Precision::is_float64")]
    pub precision: Precision,
}

/// The arithmetic of ADMM's products with `X̃` and `X̃ᵀ`, the iteration's
/// whole `O(n·d·N)` work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Float64 throughout.
    #[default]
    Float64,
    /// Products in float32 (rounded operands, float32 accumulation), the
    /// iterates float64, until the residuals come down to float32's
    /// rounding (`FLOAT32_FLOOR`, 200 ε32); float64 products from there on.
    Float32,
}

impl Precision {
    fn is_float64(&self) -> bool {
        *self == Self::Float64
    }
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
            precision: Precision::Float64,
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
    /// `ρ_u` in force (NaN in a one-vs-rest result's last point: each
    /// class has its own).
    pub rho: f64,
}

/// The result of [`solve_admm`] (variables of the scalar program) or of
/// [`solve_admm_outputs`] (a `d × 2KCm1` matrix).
#[derive(Debug, Clone)]
pub struct AdmmSolve<V = SampledVariables> {
    /// The final sparse iterate `V` (blocks outside the support are exactly zero).
    pub variables: V,
    /// Its last check.
    pub last: AdmmPoint,
    /// Both tolerances were met.
    pub converged: bool,
    /// Every check.
    pub history: Vec<AdmmPoint>,
    /// Iterations run with float32 products ([`Precision::Float32`]; summed
    /// over the classes of a one-vs-rest solve), 0 with float64 ones.
    pub float32_iterations: usize,
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
    // g(0) and its slope, without branches: a neuron adds `a_j v_j` where
    // it is active and `v_j > 0` (adding ±0 elsewhere leaves g's bits).
    let mut g = 0.0;
    let mut slope = 0i64;
    for ((wj, s), act) in w.iter().zip(cone.sigma).zip(cone.active) {
        let positive = *act != 0.0 && s * wj > 0.0;
        g += if positive {
            cone.side * s * (s * wj)
        } else {
            0.0
        };
        slope += i64::from(positive);
    }
    let lambda = if g >= 0.0 {
        0.0
    } else {
        // The breakpoints: where an active neuron's term switches off
        // (`a_j < 0`) or on (`a_j > 0`) as λ grows.
        events.clear();
        for ((wj, s), act) in w.iter().zip(cone.sigma).zip(cone.active) {
            if *act == 0.0 {
                continue;
            }
            let vj = s * wj;
            let aj = cone.side * s;
            if vj > 0.0 {
                if aj < 0.0 {
                    events.push((vj, -1));
                }
            } else if aj > 0.0 {
                events.push((-vj, 1));
            }
        }
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
    /// `C`, `n × N·C_out`: `±D2_k D1_kj` (the output's coefficients), one
    /// copy per output class in the column layout of
    /// [`pathreg_core::multiclass::ConvexModel`].
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
    /// `X̃ᵀ (C ⊙ y)`, `d × N·C_out` (each class's column of `y` with its
    /// own columns).
    a_t_y: Array2<f64>,
    /// The gates as a point of each cone, rotated: column `k·m1 + j` is
    /// `Qᵀ I_kj |w2_kj| w1_kj`, `d × Km1`.
    gates: Array2<f64>,
    /// `X̃` times [`Self::gates`], `n × Km1`.
    gate_activations: Array2<f64>,
    k: usize,
    m1: usize,
    /// Outputs `C_out` (1 for the scalar program of Table 3).
    classes: usize,
    /// Columns per group norm, `m1·C_out` (joint groups: one-vs-rest ones
    /// are solved one class at a time).
    group_width: usize,
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
        y: ArrayView2<f64>,
        arrangements: &SampledArrangements,
        masks: &Masks,
        weight: f64,
    ) -> Result<Self, SolverError> {
        let (n, d) = x.dim();
        let (k, m1, classes) = (arrangements.k(), arrangements.m1(), y.ncols());
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
        let mut scalar_coefficients = Array2::zeros((n, 2 * km1));
        let mut sigma = Array2::zeros((n, km1));
        for i in 0..n {
            for c in 0..km1 {
                let gate = d2[[i, c / m1]] * d1[[i, c]];
                scalar_coefficients[[i, c]] = gate;
                scalar_coefficients[[i, km1 + c]] = -gate;
                sigma[[i, c]] = (2.0 * d1[[i, c]] - 1.0) * signs[c];
            }
        }
        let positive = scalar_coefficients.slice(ndarray::s![.., ..km1]);
        let coefficient_gram = product(positive, positive.t()) * 2.0;
        // Column ((s·K + k)·C_out + class)·m1 + j carries ±D2_k D1_kj.
        let columns = 2 * km1 * classes;
        let coefficients = if classes == 1 {
            scalar_coefficients
        } else {
            Array2::from_shape_fn((n, columns), |(i, column)| {
                let (chunk, j) = (column / m1, column % m1);
                scalar_coefficients[[i, (chunk / classes) * m1 + j]]
            })
        };
        let targets = Array2::from_shape_fn((n, columns), |(i, column)| {
            coefficients[[i, column]] * y[[i, (column / m1) % classes]]
        });
        let a_t_y = product(x_rot.t(), targets.view());
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
            classes,
            group_width: m1 * classes,
            weight,
            tau,
        })
    }

    fn columns(&self) -> usize {
        2 * self.k * self.m1 * self.classes
    }

    /// The arrangement of chunk `chunk` (columns `chunk·m1 ..`).
    fn arrangement_of(&self, chunk: usize) -> usize {
        (chunk / self.classes) % self.k
    }

    /// `Σ q_c c_c` over output `class`'s columns of one row.
    fn class_dot(&self, q: ArrayView1<f64>, c: ArrayView1<f64>, class: usize) -> f64 {
        if self.classes == 1 {
            return (&q * &c).sum();
        }
        let products: Array1<f64> = q
            .iter()
            .zip(c)
            .enumerate()
            .filter(|(column, _)| self.class_of(*column) == class)
            .map(|(_, (q, c))| q * c)
            .collect();
        products.sum()
    }

    /// The output class of column `column`.
    fn class_of(&self, column: usize) -> usize {
        (column / self.m1) % self.classes
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

    /// Projects every chunk of sample `i`'s row onto its cone, in place.
    fn project_row(&self, i: usize, row: &mut [f64], events: &mut Vec<(f64, i8)>) {
        for (chunk, block) in row.chunks_exact_mut(self.m1).enumerate() {
            self.project_block(i, chunk, block, events);
        }
    }

    /// Projects chunk `chunk`'s `m1` pre-activations at sample `i` (one
    /// block's, for one output) onto its cone, in place.
    fn project_block(
        &self,
        i: usize,
        chunk: usize,
        block: &mut [f64],
        events: &mut Vec<(f64, i8)>,
    ) {
        let m1 = self.m1;
        let kk = self.arrangement_of(chunk);
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

    /// The group-lasso prox with threshold `t` on every group of
    /// [`Self::group_width`] columns.
    fn prox(&self, w: &mut Array2<f64>, t: f64) {
        for mut block in w.axis_chunks_iter_mut(Axis(1), self.group_width) {
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
    /// stays reported). With several outputs each class's chunk of a block
    /// moves on its own (every class's columns meet the same constraints).
    fn restore(&self, v: &Array2<f64>) -> Array2<f64> {
        let m1 = self.m1;
        let blocks = self.columns() / m1;
        let xv = product(self.x_rot.view(), v.view());
        let steps: Vec<Vec<f64>> = (0..xv.nrows())
            .into_par_iter()
            .map(|i| {
                let (u, e) = (xv.row(i), self.gate_activations.row(i));
                let (sigma, active) = (self.sigma.row(i), self.active.row(i));
                (0..blocks)
                    .map(|b| {
                        let kk = self.arrangement_of(b);
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
                let kk = self.arrangement_of(b);
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

    /// The dual bound of (21) at `v` (`n × C_out`): with ADMM's multipliers
    /// `eta` (`η = ρ_u Π_{K*}(−Λ)`; at a fixed point of ADMM `−ρ_u Λ` is
    /// exactly the optimal multiplier), or a group's ratio from `faces` where
    /// it is given and smaller, `v` and `η` are scaled by the largest ratio
    /// `‖X̃ᵀ(C_g ⊙ v + η_g)‖_F / β'` over the groups `g` and the bound
    /// `t·⟨y, v⟩ − ½t²‖v‖²` is maximized over `t ∈ [0, 1/max(1, ratio)]`.
    /// With several outputs a group's columns carry each class's `v`
    /// (Appendix A.11's dual: the norm over outputs).
    fn lower_bound(
        &self,
        y: ArrayView2<f64>,
        v: ArrayView2<f64>,
        eta: &Array2<f64>,
        faces: &[Option<f64>],
    ) -> f64 {
        let mut multipliers = eta.clone();
        Zip::indexed(&mut multipliers)
            .and(&self.coefficients)
            .par_for_each(|(i, column), m, c| *m += c * v[[i, self.class_of(column)]]);
        let dual_blocks = product(self.x_rot.t(), multipliers.view());
        let largest = dual_blocks
            .axis_chunks_iter(Axis(1), self.group_width)
            .zip(faces)
            .map(|(b, face)| {
                let ratio = b.iter().map(|v| v * v).sum::<f64>().sqrt() / self.weight;
                face.map_or(ratio, |f| ratio.min(f))
            })
            .fold(0.0, f64::max);
        let (yv, vv) = y
            .columns()
            .into_iter()
            .zip(v.columns())
            .fold((0.0, 0.0), |(yv, vv), (y, v)| {
                (yv + y.dot(&v), vv + v.dot(&v))
            });
        let cap = 1.0 / largest.max(1.0);
        let t = if vv > 0.0 {
            (yv / vv).clamp(0.0, cap)
        } else {
            cap
        };
        t * yv - 0.5 * t * t * vv
    }

    /// `W = Q W̃`, `d × N·C_out`.
    fn unrotate(&self, w_rot: &Array2<f64>) -> Array2<f64> {
        product(self.basis.view(), w_rot.view())
    }

    /// Output `class`'s columns of the unrotated `w` as the variables of
    /// the scalar program (11).
    fn class_variables(
        &self,
        w: &Array2<f64>,
        class: usize,
    ) -> Result<SampledVariables, SolverError> {
        let packed = if self.classes == 1 {
            w.clone()
        } else {
            class_columns(w, self.k, self.m1, self.classes, class)
        };
        Ok(SampledVariables::from_packed(packed, self.k, self.m1)?)
    }

    /// The objective of (21) at the unrotated `w` and its outputs `f`
    /// (`n × C_out`), from the kernels of (11) one class at a time: the
    /// losses and violations add up over the classes, and the group norms
    /// are taken over each group's columns of every class.
    fn evaluate(
        &self,
        x: ArrayView2<f64>,
        y: ArrayView2<f64>,
        masks: &Masks,
        w: &Array2<f64>,
        objective: &Objective11,
    ) -> Result<(Objective11Value, Array2<f64>), SolverError> {
        if self.classes == 1 {
            let (value, f) = evaluate(
                x,
                y.column(0),
                masks,
                &self.class_variables(w, 0)?,
                objective,
            )?;
            return Ok((value, f.insert_axis(Axis(1))));
        }
        let mut outputs = Array2::zeros(y.dim());
        let mut total = Objective11Value {
            loss: 0.0,
            group_norms: 0.0,
            violation: 0.0,
            objective: 0.0,
        };
        for class in 0..self.classes {
            let vars = self.class_variables(w, class)?;
            let (value, f) = evaluate(x, y.column(class), masks, &vars, objective)?;
            outputs.column_mut(class).assign(&f);
            total.loss += value.loss;
            total.violation += value.violation;
        }
        total.group_norms = w
            .axis_chunks_iter(Axis(1), self.group_width)
            .map(|g| g.iter().map(|v| v * v).sum::<f64>().sqrt())
            .sum();
        total.objective = total.loss + objective.group_weight() * total.group_norms;
        Ok((total, outputs))
    }
}

/// Class `class`'s `d × 2Km1` columns of `w` (`d × 2KCm1`, column
/// `((s·K + k)·C + c)·m1 + j`), in the scalar program's layout
/// (`(s·K + k)·m1 + j`).
fn class_columns(
    w: &Array2<f64>,
    k: usize,
    m1: usize,
    classes: usize,
    class: usize,
) -> Array2<f64> {
    Array2::from_shape_fn((w.nrows(), 2 * k * m1), |(a, column)| {
        w[[a, (column / m1 * classes + class) * m1 + column % m1]]
    })
}

/// The relative residual (the larger of ADMM's primal and dual ones, as
/// the `ρ` rule measures them) below which float32 products give way to
/// float64 ones: `200 ε32`. A float32 product's entries are off by a few
/// `ε32` relative, so the iteration stalls near that level; on parkinsons
/// (K = 8, m1 = 10) its residuals stop at 2.5e-7 (primal) and 1e-6 (dual),
/// with the certified gap stuck at 3.7e-3, and they part from float64's
/// below about 1.5e-5 on parkinsons and ionosphere.
const FLOAT32_FLOOR: f64 = 200.0 * f32::EPSILON as f64;

/// ADMM's products with `X̃` and `X̃ᵀ` in the arithmetic of [`Precision`].
enum Products {
    Float64,
    /// `X̃` rounded to float32, and float32 scratch for the operands and
    /// results, `d × N` and `n × N`.
    Float32 {
        x_rot: Array2<f32>,
        variables: Array2<f32>,
        samples: Array2<f32>,
    },
}

impl Products {
    fn new(precision: Precision, p: &Problem) -> Self {
        match precision {
            Precision::Float64 => Self::Float64,
            Precision::Float32 => {
                let (n, d) = p.x_rot.dim();
                Self::Float32 {
                    x_rot: p.x_rot.mapv(|v| v as f32),
                    variables: Array2::zeros((d, p.columns())),
                    samples: Array2::zeros((n, p.columns())),
                }
            }
        }
    }

    /// `out ← X̃ w` (`w`: `d × N`).
    fn rows(&mut self, x_rot: &Array2<f64>, w: ArrayView2<f64>, out: ArrayViewMut2<f64>) {
        match self {
            Self::Float64 => matmul(x_rot.view(), w, out, false),
            Self::Float32 {
                x_rot,
                variables,
                samples,
            } => {
                Zip::from(&mut *variables)
                    .and(w)
                    .par_for_each(|r, w| *r = *w as f32);
                matmul(x_rot.view(), variables.view(), samples.view_mut(), false);
                Zip::from(out)
                    .and(&*samples)
                    .par_for_each(|o, s| *o = f64::from(*s));
            }
        }
    }

    /// `out ← X̃ᵀ u` (`u`: `n × N`), or `out ← out + X̃ᵀ u` when `accumulate`.
    fn columns(
        &mut self,
        x_rot: &Array2<f64>,
        u: ArrayView2<f64>,
        out: ArrayViewMut2<f64>,
        accumulate: bool,
    ) {
        match self {
            Self::Float64 => matmul(x_rot.t(), u, out, accumulate),
            Self::Float32 {
                x_rot,
                variables,
                samples,
            } => {
                Zip::from(&mut *samples)
                    .and(u)
                    .par_for_each(|r, u| *r = *u as f32);
                matmul(x_rot.t(), samples.view(), variables.view_mut(), false);
                let zip = Zip::from(out).and(&*variables);
                if accumulate {
                    zip.par_for_each(|o, v| *o += f64::from(*v));
                } else {
                    zip.par_for_each(|o, v| *o = f64::from(*v));
                }
            }
        }
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
    let (k, m1) = (arrangements.k(), arrangements.m1());
    if warm_start.is_some_and(|vars| vars.k() != k || vars.m1() != m1) {
        return Err(SolverError::Invalid(
            "the warm start's shape differs from the arrangements'".into(),
        ));
    }
    let solve = solve(
        x,
        y.insert_axis(Axis(1)),
        arrangements,
        (beta, m2),
        settings,
        warm_start.map(SampledVariables::packed),
    )?;
    Ok(AdmmSolve {
        variables: SampledVariables::from_packed(solve.variables, k, m1)?,
        last: solve.last,
        converged: solve.converged,
        history: solve.history,
        float32_iterations: solve.float32_iterations,
    })
}

/// Solves (21) with `C` outputs (Appendix A.11; targets `y`, `n × C`, the
/// squared loss `½‖F − y‖²` summed over the outputs) over the arrangements'
/// triples, from `warm_start` or zero. The variables are laid out as
/// [`pathreg_core::multiclass::ConvexModel`]'s (column `((s·K + k)·C + c)·m1
/// + j` is `z^s_kjc`) and every class's columns meet the constraints of (21).
///
/// - [`Grouping::Joint`]: a group norm spans a block's classes, which
///   couples them; one ADMM runs on all of them, with one `ρ` and one
///   Woodbury factor (the classes share `A`'s blocks), and no polish (it
///   handles one output).
/// - [`Grouping::OneVsRest`]: the program separates into one scalar program
///   per class, so each is solved by [`solve_admm`] in turn, with its own
///   `ρ` and polish. The result sums their objectives and bounds; its
///   violation is the largest class's relative violation (an upper bound on
///   the whole program's), it has converged when every class has, and its
///   history is each class's checks in turn, with iterations and times
///   counted from the first class's start.
pub fn solve_admm_outputs(
    x: ArrayView2<f64>,
    (y, grouping): (ArrayView2<f64>, Grouping),
    arrangements: &SampledArrangements,
    beta: f64,
    m2: usize,
    settings: &AdmmSettings,
    warm_start: Option<&Array2<f64>>,
) -> Result<AdmmSolve<Array2<f64>>, SolverError> {
    let classes = y.ncols();
    if classes <= 1 || grouping == Grouping::Joint {
        if classes > 1 && settings.polish_from > 0 {
            return Err(SolverError::Invalid(format!(
                "the Newton polish handles one output, not {classes}; set polish_from = 0"
            )));
        }
        return solve(x, y, arrangements, (beta, m2), settings, warm_start);
    }
    let (d, k, m1) = (x.ncols(), arrangements.k(), arrangements.m1());
    let columns = 2 * k * m1 * classes;
    if let Some(w) = warm_start
        && w.dim() != (d, columns)
    {
        return Err(SolverError::Invalid(
            "the warm start's shape differs from the arrangements'".into(),
        ));
    }
    // Column ((s·K + k)·C + c)·m1 + j of the whole is column (s·K + k)·m1 + j
    // of class c's.
    let whole = |block: usize, class: usize, j: usize| (block * classes + class) * m1 + j;
    let mut variables = Array2::zeros((d, columns));
    let mut history: Vec<AdmmPoint> = Vec::new();
    let (mut objective, mut lower_bound, mut violation) = (0.0, 0.0, 0.0f64);
    let mut converged = true;
    let (mut iterations, mut seconds, mut float32_iterations) = (0, 0.0, 0);
    for class in 0..classes {
        let warm = warm_start
            .map(|w| SampledVariables::from_packed(class_columns(w, k, m1, classes, class), k, m1))
            .transpose()?;
        let solve = solve_admm(
            x,
            y.column(class),
            arrangements,
            beta,
            m2,
            settings,
            warm.as_ref(),
        )?;
        for (column, values) in solve.variables.packed().columns().into_iter().enumerate() {
            variables
                .column_mut(whole(column / m1, class, column % m1))
                .assign(&values);
        }
        history.extend(solve.history.iter().map(|p| AdmmPoint {
            iteration: iterations + p.iteration,
            time_s: seconds + p.time_s,
            ..*p
        }));
        iterations += solve.last.iteration;
        seconds += solve.last.time_s;
        objective += solve.last.objective;
        lower_bound += solve.last.lower_bound;
        violation = violation.max(solve.last.violation);
        converged &= solve.converged;
        float32_iterations += solve.float32_iterations;
    }
    let last = AdmmPoint {
        iteration: iterations,
        time_s: seconds,
        objective,
        lower_bound,
        relative_gap: (objective - lower_bound) / objective.abs().max(f64::MIN_POSITIVE),
        violation,
        rho: f64::NAN,
    };
    Ok(AdmmSolve {
        variables,
        last,
        converged,
        history,
        float32_iterations,
    })
}

/// [`solve_admm_outputs`] with joint groups (one output: the scalar program).
fn solve(
    x: ArrayView2<f64>,
    y: ArrayView2<f64>,
    arrangements: &SampledArrangements,
    (beta, m2): (f64, usize),
    settings: &AdmmSettings,
    warm_start: Option<&Array2<f64>>,
) -> Result<AdmmSolve<Array2<f64>>, SolverError> {
    let start = Instant::now();
    settings.validate()?;
    let (n, d) = x.dim();
    if y.nrows() != n || y.ncols() == 0 || arrangements.d() != d {
        return Err(SolverError::Invalid(format!(
            "data {n} × {d}, {} × {} targets, arrangements in R^{}",
            y.nrows(),
            y.ncols(),
            arrangements.d()
        )));
    }
    if !(beta.is_finite() && beta > 0.0) || m2 == 0 {
        return Err(SolverError::Invalid(format!(
            "need β > 0 and m2 ≥ 1 (β = {beta}, m2 = {m2})"
        )));
    }
    let columns = 2 * arrangements.k() * arrangements.m1() * y.ncols();
    pathreg_core::limits::check_allocation(
        || format!("ADMM on {n} samples in R^{d} with {columns} columns"),
        memory_bytes(n, d, columns, settings.precision),
    )?;
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
        Some(w) if w.dim() == (d, columns) => product(problem.basis.t(), w.view()),
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
    let mut products = Products::new(settings.precision, &problem);
    let mut float32_iterations = 0;
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
            step(&problem, &mut products, &mut it, rho, alpha, &llt, &inverse);
        }
        let (u_old, v_old) = (it.u.clone(), it.v.clone());
        step(&problem, &mut products, &mut it, rho, alpha, &llt, &inverse);
        iteration += settings.check_every;
        if matches!(products, Products::Float32 { .. }) {
            float32_iterations = iteration;
        }
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
                float32_iterations,
            });
        }
        // OSQP's rule: ρ ← ρ·sqrt(relative primal / relative dual residual).
        let primal_scale =
            (squared_norm(&it.u) + problem.tau * squared_norm(&it.v)).max(f64::MIN_POSITIVE);
        let dual_scale = (squared_norm(&it.lambda) + problem.tau * squared_norm(&it.gamma))
            .max(f64::MIN_POSITIVE);
        let residual = (primal / primal_scale).max(dual / dual_scale).sqrt();
        if matches!(products, Products::Float32 { .. }) && residual < FLOAT32_FLOOR {
            products = Products::Float64;
        }
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
    products: &mut Products,
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
    products.columns(&p.x_rot, it.sample_buffer.view(), it.w.view_mut(), true);
    Zip::from(&mut it.w)
        .and(&it.v)
        .and(&it.gamma)
        .and_broadcast(&inverse)
        .par_for_each(|r, v, g, h| *r = (*r + rho_v * (v - g)) * h);
    products.rows(&p.x_rot, it.w.view(), it.sample_buffer.view_mut());
    // One Woodbury solve per output: A is block diagonal over the classes,
    // with the same blocks.
    let mut t = Array2::zeros((it.sample_buffer.nrows(), p.classes));
    for (class, mut column) in t.columns_mut().into_iter().enumerate() {
        let mut rhs = Array1::from_iter(
            it.sample_buffer
                .rows()
                .into_iter()
                .zip(p.coefficients.rows())
                .map(|(q, c)| p.class_dot(q, c, class)),
        );
        llt.solve_in_place(&mut rhs);
        column.assign(&rhs);
    }
    Zip::indexed(&mut it.sample_buffer)
        .and(&p.coefficients)
        .par_for_each(|(i, column), e, c| *e = c * t[[i, p.class_of(column)]]);
    products.columns(
        &p.x_rot,
        it.sample_buffer.view(),
        it.variable_buffer.view_mut(),
        false,
    );
    Zip::from(&mut it.w)
        .and(&it.variable_buffer)
        .and_broadcast(&inverse)
        .par_for_each(|w, c, h| *w -= c * h);
    products.rows(&p.x_rot, it.w.view(), it.xw.view_mut());
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
    point: Option<(Array2<f64>, Objective11Value)>,
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
    y: ArrayView2<f64>,
    masks: &Masks,
    it: &Iterates,
    rho: f64,
    objective: &Objective11,
    iteration: usize,
    start: Instant,
    polish: Option<f64>,
    kept: &mut Kept,
) -> Result<(Array2<f64>, AdmmPoint), SolverError> {
    let mut vars = p.unrotate(&p.restore(&it.v));
    let (mut value, _) = p.evaluate(x, y, masks, &vars, objective)?;
    // Dual point: v = y − f(V) before restoration (the residual the
    // multipliers were found with).
    let (_, f) = p.evaluate(x, y, masks, &p.unrotate(&it.v), objective)?;
    let v = &y - &f;
    let no_faces = vec![None; p.columns() / p.group_width];
    let eta = p.project_dual(&(-&it.lambda)) * rho;
    let mut lower_bound = p.lower_bound(y, v.view(), &eta, &no_faces);
    // The polish is for one output (`solve_admm_outputs` refuses it for more).
    if let Some(tolerance) = polish
        && let Some(polished) = polish::polish(p, &it.v, &it.u, y.column(0))
    {
        let candidate = p.unrotate(&p.restore(&polished.w));
        let (candidate_value, _) = p.evaluate(x, y, masks, &candidate, objective)?;
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
        let residual = polished.residual.view().insert_axis(Axis(1));
        let bound = p.lower_bound(y, residual, &eta, &ratios);
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
