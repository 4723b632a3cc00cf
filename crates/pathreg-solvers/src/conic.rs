//! Program (21) in Clarabel's conic form
//! `min ½ xᵀPx + qᵀx  s.t.  A x + s = b, s ∈ K`.
//!
//! Variables, in order: the residual `r = X̃(z − z') − y ∈ R^n`, then per
//! triple `t` the blocks `(s_t, z_t, s'_t, z'_t)` with epigraph scalars `s_t ≥ ‖z_t‖_F`.
//!
//! ```text
//! objective   ½ ‖r‖² + β' Σ_t (s_t + s'_t)                 (P = I on r, q = β' on s)
//! zero cone   r − Σ_t A_t z_t + Σ_t A_t z'_t = −y          (n rows)
//! nonneg      B_t z_t ≥ 0,  B_t z'_t ≥ 0                   (the cones C_t of (21))
//! SOC         (s_t, z_t) ∈ Q^{1+d·m1},  (s'_t, z'_t) ∈ Q^{1+d·m1}
//! ```
//! The squared loss enters through `r` and the diagonal `P`, so no dense
//! `X̃ᵀX̃` is ever formed: `A` has the sparsity of the masked data blocks.

use std::time::Instant;

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use ndarray::{Array2, ArrayView1, ArrayView2};
use pathreg_core::Triple;
use pathreg_core::convex::{ConvexSolution, TripleGeometry, group_weight};

use crate::SolverError;

/// Interior-point tolerances and the regularization of its linear systems.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConicSettings {
    /// Absolute and relative duality-gap tolerance.
    pub tol_gap: f64,
    /// Feasibility tolerance.
    pub tol_feas: f64,
    /// Iteration limit.
    pub max_iter: u32,
    /// Clarabel's static regularization constant: the shift added to the
    /// diagonal of each KKT system before factoring it (Clarabel's default,
    /// `1e-8`, unless the working set is recovering from a stalled solve).
    pub static_regularization: f64,
    /// The scaling of the data and labels the program is solved in.
    pub scaling: Scaling,
}

/// A positive rescaling of (21): data `X → a X`, labels `y → b y` and
/// `β → a b β`. Substituting `ẑ = (b/a) z` turns the rescaled program into
/// `b²` times the original one over the same cones `C_t` (they are invariant
/// under positive scaling of `X`), so its solution is `ẑ* = (b/a) z*` and its
/// optimum `b² p*`; [`solve_conic`] maps both back.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scaling {
    /// `a`, the factor of the data.
    pub data: f64,
    /// `b`, the factor of the labels.
    pub labels: f64,
}

impl Scaling {
    /// No rescaling.
    pub const IDENTITY: Self = Self {
        data: 1.0,
        labels: 1.0,
    };

    /// The scaling to `max |x_ij| = 1` and `max |y_i| = 1` (a factor of one
    /// where the data or the labels are all zero or not finite).
    pub fn to_unit(x: ArrayView2<f64>, y: ArrayView1<f64>) -> Self {
        let inverse_max = |largest: f64| {
            if largest > 0.0 && largest.is_finite() {
                1.0 / largest
            } else {
                1.0
            }
        };
        Self {
            data: inverse_max(x.iter().fold(0.0, |m: f64, v| m.max(v.abs()))),
            labels: inverse_max(y.iter().fold(0.0, |m: f64, v| m.max(v.abs()))),
        }
    }
}

impl Default for ConicSettings {
    fn default() -> Self {
        Self {
            tol_gap: 1e-10,
            tol_feas: 1e-10,
            max_iter: 200,
            static_regularization: 1e-8,
            scaling: Scaling::IDENTITY,
        }
    }
}

/// The outcome of one Clarabel solve of (21) over a list of triples.
#[derive(Debug, Clone)]
pub struct ConicSolve {
    /// The primal solution.
    pub solution: ConvexSolution,
    /// Clarabel's status, e.g. "Solved".
    pub status: String,
    /// Whether the status is Solved or AlmostSolved.
    pub converged: bool,
    /// Clarabel's primal objective.
    pub primal_objective: f64,
    /// Clarabel's dual objective.
    pub dual_objective: f64,
    /// Interior-point iterations.
    pub iterations: u32,
    /// Wall time of set-up plus solve, seconds.
    pub time_s: f64,
}

/// Solves (21) with squared loss over `triples` with Clarabel, in the scaling
/// of `settings`; the solution and objectives returned are in the original units.
pub fn solve_conic(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    triples: &[Triple],
    geometries: &[&TripleGeometry],
    beta: f64,
    m2: usize,
    settings: &ConicSettings,
) -> Result<ConicSolve, SolverError> {
    let start = Instant::now();
    let (n, d) = x.dim();
    if y.len() != n {
        return Err(SolverError::Invalid(format!(
            "{n} samples but {} labels",
            y.len()
        )));
    }
    if triples.is_empty() || triples.len() != geometries.len() {
        return Err(SolverError::Invalid(
            "the convex program needs at least one triple".into(),
        ));
    }
    if beta.is_nan() || beta <= 0.0 || m2 == 0 {
        return Err(SolverError::Invalid(format!(
            "need β > 0 and m2 ≥ 1 (β = {beta}, m2 = {m2})"
        )));
    }
    let dim = geometries[0].block.ncols();
    let block = 2 * (1 + dim);
    let num_vars = n + triples.len() * block;
    let Scaling {
        data: data_scale,
        labels: label_scale,
    } = settings.scaling;
    if !(data_scale > 0.0 && label_scale > 0.0 && data_scale.is_finite() && label_scale.is_finite())
    {
        return Err(SolverError::Invalid(format!(
            "scaling factors must be positive and finite ({data_scale}, {label_scale})"
        )));
    }
    let weight = group_weight(beta, m2) * data_scale * label_scale;

    let p = CscMatrix::new_from_triplets(
        num_vars,
        num_vars,
        (0..n).collect(),
        (0..n).collect(),
        vec![1.0; n],
    );
    let mut q = vec![0.0; num_vars];
    let (mut rows, mut cols, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    let mut b = Vec::new();
    // Zero cone: r − Σ A_t z_t + Σ A_t z'_t = −y.
    for i in 0..n {
        rows.push(i);
        cols.push(i);
        vals.push(1.0);
        b.push(-label_scale * y[i]);
    }
    for (t, geometry) in geometries.iter().enumerate() {
        let z = n + t * block + 1;
        let z_prime = z + dim + 1;
        for ((i, c), &a) in geometry.block.indexed_iter() {
            if a != 0.0 {
                rows.extend([i, i]);
                cols.extend([z + c, z_prime + c]);
                vals.extend([-data_scale * a, data_scale * a]);
            }
        }
    }
    let mut next_row = n;
    // Non-negative cone: B_t z ≥ 0 as −B_t z + s = 0.
    for (t, geometry) in geometries.iter().enumerate() {
        for offset in [n + t * block + 1, n + t * block + dim + 2] {
            for row in geometry.constraints.rows() {
                for (c, &v) in row.iter().enumerate() {
                    if v != 0.0 {
                        rows.push(next_row);
                        cols.push(offset + c);
                        vals.push(-data_scale * v);
                    }
                }
                b.push(0.0);
                next_row += 1;
            }
        }
    }
    let nonneg = next_row - n;
    // Second-order cones: (s_t, z_t) with A = −I.
    let mut cones = vec![SupportedConeT::ZeroConeT(n)];
    if nonneg > 0 {
        cones.push(SupportedConeT::NonnegativeConeT(nonneg));
    }
    for t in 0..triples.len() {
        for offset in [n + t * block, n + t * block + dim + 1] {
            q[offset] = weight;
            for c in 0..=dim {
                rows.push(next_row);
                cols.push(offset + c);
                vals.push(-1.0);
                b.push(0.0);
                next_row += 1;
            }
            cones.push(SupportedConeT::SecondOrderConeT(1 + dim));
        }
    }
    let a = CscMatrix::new_from_triplets(next_row, num_vars, rows, cols, vals);
    let clarabel_settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .tol_gap_abs(settings.tol_gap)
        .tol_gap_rel(settings.tol_gap)
        .tol_feas(settings.tol_feas)
        .max_iter(settings.max_iter)
        .static_regularization_constant(settings.static_regularization)
        .build()
        .map_err(|e| SolverError::Clarabel(format!("settings: {e}")))?;
    let mut solver = DefaultSolver::new(&p, &q, &a, &b, &cones, clarabel_settings)
        .map_err(|e| SolverError::Clarabel(e.to_string()))?;
    solver.solve();
    let sol = &solver.solution;
    // z = (a/b) ẑ and p = p̂ / b² (see [`Scaling`]).
    let unscale_z = data_scale / label_scale;
    let unscale_objective = label_scale * label_scale;
    let mut z = Array2::zeros((triples.len(), dim));
    let mut z_prime = Array2::zeros((triples.len(), dim));
    for t in 0..triples.len() {
        let base = n + t * block;
        for c in 0..dim {
            z[[t, c]] = sol.x[base + 1 + c] * unscale_z;
            z_prime[[t, c]] = sol.x[base + dim + 2 + c] * unscale_z;
        }
    }
    let status = sol.status;
    let converged = matches!(status, SolverStatus::Solved | SolverStatus::AlmostSolved);
    Ok(ConicSolve {
        solution: ConvexSolution::new(triples.to_vec(), d, z, z_prime)?,
        status: format!("{status:?}"),
        converged,
        primal_objective: sol.obj_val / unscale_objective,
        dual_objective: sol.obj_val_dual / unscale_objective,
        iterations: sol.iterations,
        time_s: start.elapsed().as_secs_f64(),
    })
}
