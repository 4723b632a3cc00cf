//! The convex program of Theorem 1 in the form of Appendix A.4, eq. (21), its
//! dual certificate (constraints (16)–(17)), and Proposition 1's map back to a
//! parallel network.
//!
//! # The program we solve
//!
//! For each triple `t = (D1_{t1..tm1}, I_t, D2_t)` (see [`crate::arrangement`])
//! there are two blocks of variables, `z_t = (z_{t1}, …, z_{tm1})` and
//! `z'_t`, each `z_{tj} ∈ R^d` (a `d × m1` matrix, stored neuron-major:
//! entry `(j, a)` at index `j·d + a`). With `β' = β / √m2`:
//!
//! ```text
//! (21)  min  L( Σ_t A_t (z_t − z'_t), y ) + β' Σ_t ( ‖z_t‖_F + ‖z'_t‖_F )
//!       s.t. z_t, z'_t ∈ C_t  for every t,
//!
//!       A_t z   = D2_t Σ_j D1_{tj} X z_j                          (the block of X̃)
//!       C_t     = { z : (2 D1_{tj} − I_n) X (I_{tj} z_j) ≥ 0  ∀j,    (first ReLU layer)
//!                       (2 D2_t − I_n) Σ_j D1_{tj} X z_j ≥ 0 }       (second ReLU layer)
//! ```
//!
//! We follow the appendix's placement of the sign pattern (inside the
//! first-layer constraint) rather than the main text's (8) (inside the
//! second-layer constraint and X̃): substituting `z_j ← I_j z_j` turns one into
//! the other, and (21) keeps `A_t` independent of the signs, so `X̃` is shared by
//! all sign patterns of the same masks. Derivation, for one sub-network with
//! `m2 = 1`: write `w̄_j = |w2j| w1j`, `I_j = sign(w2j)`; then
//! `((X W1)+ w2)+ = D2 Σ_j I_j D1_j X w̄_j` (eq. (7)) under
//! `(2D1_j − I) X w̄_j ≥ 0` and `(2D2 − I) Σ_j I_j D1_j X w̄_j ≥ 0`. Setting
//! `z_j = |w3| I_j w̄_j` gives the output `D2 Σ_j D1_j X z_j` (w3 > 0, or its
//! negative for `z'` when w3 < 0), the constraints `C_t` above (using
//! `I_j² = 1`), and path norm `‖z‖_F`. With `m2` equal second-layer columns
//! the output is `m2` times larger while the path norm grows by `√m2`, which is
//! the `β/√m2` weight.
//!
//! # Proposition 1 (Appendix A.5), as implemented
//!
//! Every group with `z_t ≠ 0` becomes one sub-network
//! `W1k = (1/m2) [I_{t1} z_{t1} … I_{tm1} z_{tm1}]`, `W2k[j, :] = I_{tj}` (all
//! `m2` columns equal), `w3k = 1` (and `w3k = −1` for `z'_t`). The appendix's
//! printed `W2k` has index typos (`I_{11l}` in its last column and a `z` for
//! `z'` in `W1k`); the map above is the one whose output and path norm we
//! verify equal the convex ones: output `A_t z_t` and path norm `‖z_t‖_F/√m2`.
//!
//! # Dual certificate
//!
//! With `v = y − f` (the negative gradient of the squared loss at the optimum),
//! zero is optimal for a triple `t` outside the solved set iff
//! `max_{z ∈ C_t, ‖z‖_F ≤ 1} ± vᵀ A_t z ≤ β'` — the dual constraints (16)–(17).
//! The left side equals `‖P_{C_t}(±A_tᵀ v)‖` (projection onto a polyhedral
//! cone), computed exactly by non-negative least squares. If `ρ` is the largest
//! ratio over all triples, `v/max(1, ρ)` is dual feasible and
//! `vᵀy − ½‖v‖²` at that point is a lower bound on (21) over all triples.

use ndarray::{Array1, Array2, Array3, ArrayView1, ArrayView2, s};
use rayon::prelude::*;

use crate::CoreError;
use crate::arrangement::Triple;
use crate::network::{ObjectiveValue, ParallelNetwork};
use crate::nnls::project_onto_cone;

/// A group (a sub-network of Proposition 1's map) counts as active when its
/// norm exceeds this fraction of the largest group norm.
pub const ACTIVE_GROUP_TOLERANCE: f64 = 1e-6;

/// The data of one triple in (21): the block `A_t` of X̃ and the rows `B_t`
/// of the cone `C_t = {z : B_t z ≥ 0}`.
#[derive(Debug, Clone)]
pub struct TripleGeometry {
    /// `A_t`, `n × (d·m1)`.
    pub block: Array2<f64>,
    /// `B_t`, one row per non-trivial inequality, `d·m1` columns.
    pub constraints: Array2<f64>,
}

/// How the second ReLU layer constrains a triple's variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Coupling {
    /// `(2 D2 − I) Σ_j D1_j X z_j ≥ 0`: the first-layer neurons' responses
    /// are summed before the second ReLU, as in a three-layer network ((21)).
    Summed,
    /// `(2 D2 − I) D1_j X z_j ≥ 0` for every `j`: one constraint per
    /// first-layer neuron, the decoupled constraint set the paper's Section
    /// 5 attributes to the weight-decay model of [17]. Its cones lie inside
    /// the summed ones (each term having the sign of `2 D2 − 1`, so does the
    /// sum), so its optimum is never below (21)'s and Proposition 1's map
    /// realizes its solutions too; each sub-network is then as expressive
    /// as a sum of two-layer networks gated by one mask `D2`.
    PerNeuron,
}

impl TripleGeometry {
    /// Builds `A_t` and `B_t` for data `x` (constraints whose row of X is zero,
    /// or second-layer rows that are dead, are `0 ≥ 0` and are omitted).
    pub fn new(x: ArrayView2<f64>, t: &Triple) -> Self {
        Self::with_coupling(x, t, Coupling::Summed)
    }

    /// [`Self::new`] with the second-layer constraints of `coupling`.
    pub fn with_coupling(x: ArrayView2<f64>, t: &Triple, coupling: Coupling) -> Self {
        let (n, d) = x.dim();
        let m1 = t.neurons().len();
        let dim = d * m1;
        let mut block = Array2::zeros((n, dim));
        let mut rows: Vec<f64> = Vec::new();
        let live = |i: usize| x.row(i).iter().any(|v| *v != 0.0);
        for (j, p) in t.neurons().iter().enumerate() {
            for i in (0..n).filter(|&i| live(i)) {
                let side = if p.d1.contains(i) { 1.0 } else { -1.0 };
                let mut row = vec![0.0; dim];
                for a in 0..d {
                    row[j * d + a] = side * p.sign() * x[[i, a]];
                }
                rows.extend(row);
            }
        }
        for i in (0..n).filter(|&i| live(i) && !t.is_dead_row(i)) {
            let side = if t.d2().contains(i) { 1.0 } else { -1.0 };
            let mut row = vec![0.0; dim];
            for (j, p) in t.neurons().iter().enumerate() {
                if p.d1.contains(i) {
                    for a in 0..d {
                        row[j * d + a] = side * x[[i, a]];
                        if t.d2().contains(i) {
                            block[[i, j * d + a]] = x[[i, a]];
                        }
                    }
                    if coupling == Coupling::PerNeuron {
                        let mut single = vec![0.0; dim];
                        single[j * d..(j + 1) * d].copy_from_slice(&row[j * d..(j + 1) * d]);
                        rows.extend(single);
                    }
                }
            }
            if coupling == Coupling::Summed {
                rows.extend(row);
            }
        }
        let num = rows.len() / dim.max(1);
        let constraints =
            Array2::from_shape_vec((num, dim), rows).unwrap_or_else(|_| Array2::zeros((0, dim)));
        Self { block, constraints }
    }

    /// `max(‖P_C(A_tᵀv)‖, ‖P_C(−A_tᵀv)‖) / β'`: the dual constraints (16)–(17)
    /// hold for this triple iff the ratio is at most 1.
    pub fn dual_ratio(&self, v: ArrayView1<f64>, group_weight: f64) -> f64 {
        let g = self.block.t().dot(&v);
        let dim = g.len();
        let b = self.constraints.as_standard_layout();
        let b = b.as_slice().unwrap_or(&[]);
        let g = g.to_vec();
        let plus = project_onto_cone(&g, b, dim).point;
        let minus_g: Vec<f64> = g.iter().map(|v| -v).collect();
        let minus = project_onto_cone(&minus_g, b, dim).point;
        let norm = |p: &[f64]| p.iter().map(|v| v * v).sum::<f64>().sqrt();
        norm(&plus).max(norm(&minus)) / group_weight
    }
}

/// The group weight `β' = β / √m2` of (21).
pub fn group_weight(beta: f64, m2: usize) -> f64 {
    beta / (m2 as f64).sqrt()
}

/// A (possibly approximate) solution of (21) over a list of triples.
#[derive(Debug, Clone)]
pub struct ConvexSolution {
    triples: Vec<Triple>,
    d: usize,
    /// `z_t`, one row per triple (`d·m1` columns, neuron-major).
    z: Array2<f64>,
    /// `z'_t`.
    z_prime: Array2<f64>,
}

impl ConvexSolution {
    /// Wraps solver output; `z` and `z_prime` have one row per triple.
    pub fn new(
        triples: Vec<Triple>,
        d: usize,
        z: Array2<f64>,
        z_prime: Array2<f64>,
    ) -> Result<Self, CoreError> {
        let m1 = triples.first().map_or(0, |t| t.neurons().len());
        let shape = (triples.len(), d * m1);
        if z.dim() != shape || z_prime.dim() != shape {
            return Err(CoreError::Convex(format!(
                "solution blocks {:?} / {:?} do not match {} triples of d·m1 = {}",
                z.dim(),
                z_prime.dim(),
                shape.0,
                shape.1
            )));
        }
        Ok(Self {
            triples,
            d,
            z,
            z_prime,
        })
    }

    /// The triples of the solved program.
    pub fn triples(&self) -> &[Triple] {
        &self.triples
    }
    /// `z_t` per row.
    pub fn z(&self) -> &Array2<f64> {
        &self.z
    }
    /// `z'_t` per row.
    pub fn z_prime(&self) -> &Array2<f64> {
        &self.z_prime
    }

    /// The model output `X̃ (z − z') = Σ_t A_t (z_t − z'_t)`.
    pub fn predict(&self, x: ArrayView2<f64>) -> Array1<f64> {
        let mut f = Array1::zeros(x.nrows());
        for (t, triple) in self.triples.iter().enumerate() {
            let diff = &self.z.row(t) - &self.z_prime.row(t);
            if diff.iter().all(|v| *v == 0.0) {
                continue;
            }
            let geometry = TripleGeometry::new(x, triple);
            f += &geometry.block.dot(&diff);
        }
        f
    }

    /// `(‖z_t‖_F, ‖z'_t‖_F)` per triple.
    pub fn group_norms(&self) -> Vec<(f64, f64)> {
        self.z
            .rows()
            .into_iter()
            .zip(self.z_prime.rows())
            .map(|(a, b)| (a.dot(&a).sqrt(), b.dot(&b).sqrt()))
            .collect()
    }

    /// Objective (21) with squared loss; `regularizer` is
    /// `(1/√m2) Σ_t (‖z_t‖ + ‖z'_t‖)`, so `objective = loss + β·regularizer`
    /// is directly comparable with objective (4).
    pub fn objective(
        &self,
        x: ArrayView2<f64>,
        y: ArrayView1<f64>,
        beta: f64,
        m2: usize,
    ) -> ObjectiveValue {
        let f = self.predict(x);
        let loss = 0.5 * f.iter().zip(y).map(|(a, b)| (a - b) * (a - b)).sum::<f64>();
        let norms: f64 = self.group_norms().iter().map(|(a, b)| a + b).sum();
        let regularizer = norms / (m2 as f64).sqrt();
        ObjectiveValue {
            loss,
            regularizer,
            objective: loss + beta * regularizer,
        }
    }

    /// Largest violation `max(0, −B_t z)` over all cone constraints, relative to
    /// the largest group norm.
    pub fn max_constraint_violation(&self, x: ArrayView2<f64>) -> f64 {
        let scale = self
            .group_norms()
            .iter()
            .map(|(a, b)| a.max(*b))
            .fold(0.0, f64::max)
            .max(f64::MIN_POSITIVE);
        let mut worst: f64 = 0.0;
        for (t, triple) in self.triples.iter().enumerate() {
            let geometry = TripleGeometry::new(x, triple);
            for block in [self.z.row(t), self.z_prime.row(t)] {
                let values = geometry.constraints.dot(&block);
                worst = worst.max(values.iter().fold(0.0, |m: f64, v| m.max(-v)));
            }
        }
        worst / scale
    }

    /// Number of non-zero groups (`z_t` and `z'_t` counted separately): the
    /// number of sub-networks of the mapped network. A group counts when its
    /// norm exceeds `rel_tol` times the largest group norm.
    pub fn active_groups(&self, rel_tol: f64) -> usize {
        let norms = self.group_norms();
        let max = norms.iter().map(|(a, b)| a.max(*b)).fold(0.0, f64::max);
        norms
            .iter()
            .map(|(a, b)| usize::from(*a > rel_tol * max) + usize::from(*b > rel_tol * max))
            .sum()
    }

    /// Proposition 1: the parallel network with one sub-network per active
    /// group (see the module documentation for the exact map), keeping groups
    /// whose norm exceeds `rel_tol` times the largest.
    pub fn to_network(&self, m2: usize, rel_tol: f64) -> Result<ParallelNetwork, CoreError> {
        if m2 == 0 {
            return Err(CoreError::Convex("m2 must be at least 1".into()));
        }
        let m1 = self.triples.first().map_or(0, |t| t.neurons().len());
        let d = self.d;
        let norms = self.group_norms();
        let max = norms.iter().map(|(a, b)| a.max(*b)).fold(0.0, f64::max);
        let mut groups: Vec<(usize, bool)> = Vec::new();
        for (t, (a, b)) in norms.iter().enumerate() {
            if *a > rel_tol * max {
                groups.push((t, true));
            }
            if *b > rel_tol * max {
                groups.push((t, false));
            }
        }
        let k = groups.len();
        crate::limits::check_allocation(
            || format!("Proposition 1's network with (K, d, m1, m2) = ({k}, {d}, {m1}, {m2})"),
            ParallelNetwork::parameter_bytes(k, d, m1, m2),
        )?;
        let mut w1 = Array3::zeros((k, d, m1));
        let mut w2 = Array3::zeros((k, m1, m2));
        let mut w3 = Array2::zeros((k, m2));
        for (kk, &(t, positive)) in groups.iter().enumerate() {
            let block = if positive {
                self.z.row(t)
            } else {
                self.z_prime.row(t)
            };
            for (j, p) in self.triples[t].neurons().iter().enumerate() {
                let zj = block.slice(s![j * d..(j + 1) * d]);
                w1.slice_mut(s![kk, .., j])
                    .assign(&(&zj * (p.sign() / m2 as f64)));
                w2.slice_mut(s![kk, j, ..]).fill(p.sign());
            }
            w3.row_mut(kk).fill(if positive { 1.0 } else { -1.0 });
        }
        ParallelNetwork::new(w1, w2, w3)
    }
}

/// For each triple, `max(‖P_C(A_tᵀv)‖, ‖P_C(−A_tᵀv)‖) / β'`: the dual
/// constraints (16)–(17) hold for `t` iff this is at most 1. Computed in
/// parallel; every entry is independent, so the result does not depend on
/// the thread count.
pub fn dual_constraint_ratios(
    x: ArrayView2<f64>,
    v: ArrayView1<f64>,
    triples: &[Triple],
    group_weight: f64,
) -> Vec<f64> {
    triples
        .par_iter()
        .map(|t| TripleGeometry::new(x, t).dual_ratio(v, group_weight))
        .collect()
}

/// A certificate of (near-)optimality of a squared-loss solution of (21)
/// over a given triple set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Certificate {
    /// Primal objective at the solution.
    pub primal: f64,
    /// A lower bound on the optimum: the dual objective at a scaled, feasible dual point.
    pub dual: f64,
    /// `primal − dual ≥ 0`.
    pub gap: f64,
    /// `gap / max(|primal|, tiny)`.
    pub relative_gap: f64,
    /// Largest dual-constraint ratio over the triple set before scaling (≤ 1 means feasible).
    pub max_ratio: f64,
    /// Number of triples checked.
    pub triples_checked: usize,
}

/// Checks the dual constraints of every triple in `all_triples` at `v = y − f`
/// and returns the duality gap (see the module documentation).
pub fn squared_loss_certificate(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    solution: &ConvexSolution,
    all_triples: &[Triple],
    beta: f64,
    m2: usize,
) -> Certificate {
    let ratios = dual_constraint_ratios(
        x,
        (&y - &solution.predict(x)).view(),
        all_triples,
        group_weight(beta, m2),
    );
    certificate_from_ratios(x, y, solution, &ratios, beta, m2)
}

/// The certificate of [`squared_loss_certificate`] given precomputed dual
/// ratios (one per triple of the full set) at `v = y − f`.
pub fn certificate_from_ratios(
    x: ArrayView2<f64>,
    y: ArrayView1<f64>,
    solution: &ConvexSolution,
    ratios: &[f64],
    beta: f64,
    m2: usize,
) -> Certificate {
    let objective = solution.objective(x, y, beta, m2);
    let v = &y - &solution.predict(x);
    let max_ratio = ratios.iter().copied().fold(0.0, f64::max);
    let scaled = &v / max_ratio.max(1.0);
    let dual = scaled.dot(&y) - 0.5 * scaled.dot(&scaled);
    let gap = objective.objective - dual;
    Certificate {
        primal: objective.objective,
        dual,
        gap,
        relative_gap: gap / objective.objective.abs().max(f64::MIN_POSITIVE),
        max_ratio,
        triples_checked: ratios.len(),
    }
}
